//! Durable timers: the processor's half of the write-back lifecycle's deadlines (the pure half,
//! which deadlines a state implies and what firing one does, is `fold::timers`).
//!
//! - [`clock`]: the injected clock, the only place wall-clock time enters the processor.
//! - [`index`]: the deadline index held in sled next to the projection (`t/<partition>/<due>/…`),
//!   written in the same atomic sled batch as the states whose outcomes scheduled the entries.
//!
//! How a timer fires (invariants, tested in `tests/processor_timers.rs`):
//! 1. Each batch, for every assigned partition, the entries due at the clock's `now` are read;
//!    an entry whose deadline no longer applies to the candidate's current state is dropped,
//!    a live one becomes a `deadline_reached` event produced into the *input* topic partition
//!    of its candidate, inside the batch's transaction.
//! 2. The entry is removed in the post-commit sled batch. A crash between the Kafka commit and
//!    the sled write fires it again: the event id is deterministic, so the fold sees a
//!    `duplicate`. No alert is raised twice, none is lost (the entry only goes once the event is
//!    in the log, and the log is folded by every restore).
//! 3. The index only ever holds entries implied by outcomes the store has committed or by
//!    states loaded from snapshots; `fold::timers::pending` of a state is always a subset of it.

pub mod clock;
pub mod index;

pub use clock::Clock;
