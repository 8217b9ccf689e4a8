//! Durable timers: the processor's half of the write-back lifecycle's deadlines (the pure half,
//! which deadlines a state implies and what firing one does, is `fold::timers`).
//!
//! - [`clock`]: the injected clock, the only place wall-clock time enters the processor.
//! - [`index`]: the deadline index held in sled next to the projection (`t/<partition>/<due>/…`),
//!   written in the same atomic sled batch as the states whose outcomes scheduled the entries.
//!
//! How a timer fires (invariants, tested in `tests/processor_timers.rs` and `app::batch`):
//! 1. Each batch, for every assigned partition, the entries due (5) are read (while the store
//!    is still writing an earlier batch, at most once per `timers_read_interval_ms`: a read
//!    waits for that write); an entry whose deadline no longer applies to the candidate's
//!    current state is dropped,
//!    a live one becomes a `deadline_reached` event produced into the *input* topic partition
//!    of its candidate, inside the batch's transaction.
//! 2. The entry is removed in the post-commit sled batch. A crash between the Kafka commit and
//!    the sled write fires it again: the event id is deterministic, so the fold sees a
//!    `duplicate`. No alert is raised twice, none is lost (the entry only goes once the event is
//!    in the log, and the log is folded by every restore).
//! 3. The index only ever holds entries implied by outcomes the store has committed or by
//!    states loaded from snapshots; `fold::timers::pending` of a state is always a subset of it,
//!    except for what 4 fires before it is ever written. A batch writes only the deadlines its
//!    states still wait for when it ends: one a later event of the batch made moot never goes
//!    in (`app::batch`, tested there).
//! 4. A deadline a batch schedules that is already due (5) when the batch is sent (events
//!    older than their SLA: a backfill, a consumer far behind) never goes into the index: it is
//!    checked against the state as the batch left it and, when live, fired in the batch's own
//!    transaction — what the index would have done one batch later, without the entry's sled
//!    write, its removal and the read that waits for the write in flight. A crash after that
//!    commit and before the store write is repaired as in 2: restore refolds the batch and puts
//!    every pending deadline of the states it restores into the index, so it fires again and the
//!    fold sees a duplicate.
//! 5. Due means due by the clock's `now` and, in a partition the batch read events of, by the
//!    latest `occurred_at` among them: a partition catching up (a backfill, a consumer far
//!    behind) has its deadlines fire as its log reaches them in event time, not all at once by
//!    the clock while the events that make them moot are still unread (such a firing is a
//!    no-op when folded, but it is one more record in the log). An idle partition, or one
//!    whose events are current, goes by the clock alone.

pub mod clock;
pub mod index;

pub use clock::Clock;
