//! Restore on assignment (DESIGN.md "State, recovery, exactly-once"): bring one partition's
//! state up to the group's committed offset before the consumer reads it, without emitting.
//!
//! - store behind the committed offset → fold the gap (no outputs: they were committed before);
//! - no store state for the partition → the latest snapshots plus the log tail after them, or
//!   the log from its start when there are none;
//! - a gap the log no longer holds (retention deleted it) → [`RestoreError::Gap`]: the processor
//!   stops; it never skips.
//! - a snapshot that does not decode → [`RestoreError::UndecodableSnapshot`]: the processor
//!   stops (dropped, its candidate would be restored without its history). Snapshots are
//!   written single-object, so a restore needs no registry; Confluent-framed ones (written
//!   before that) are decoded through it.
//! - a snapshot on another partition than the event log's placement gives its key →
//!   [`RestoreError::MisplacedSnapshot`]: the processor stops. The processor writes each
//!   snapshot to the partition its candidate's events were folded on, so the snapshots (and
//!   the log) were placed under another partition count or partitioner; restored, candidates'
//!   histories would be split. This is what refuses a new group on a grown log, which has no
//!   store and no committed offsets to tell (`ingest::placement`).
//! - the group's committed offset behind the store's (offsets reset) → the store's, with a
//!   warning saying so: its states already hold that range's event ids;
//! - the group's last commit folded under another policy than the configured one (the
//!   offsets' metadata names its digest) → restored under the configured one, with a warning
//!   when the restore folds events so committed (their states can differ from the commands
//!   committed for them), an info line otherwise ([`policy_changed`]);
//! - a store or snapshots reflecting offsets past the log's end (the topic was recreated) →
//!   [`RestoreError::AheadOfLog`]: the processor stops. Seeking past the end would reset the
//!   consumer to the log's start, below the restored offset, and every record would be dropped
//!   as already folded.
//!
//! Memory: a restore holds at most `held` candidate states, `max_candidates_in_memory` shared
//! among the assignment's partitions ([`held_per_partition`]; 0: no limit). Before, it held
//! every state it restored until its end and stored them in one commit, past that limit.
//! - The log is folded in chunks: once `held` states are in memory, the states the chunk
//!   changed are stored with their dirty markers, their deadlines and the offset after the
//!   last record folded, in one commit, and let go; a later event of such a candidate reloads
//!   it from the store. That offset is at most the restore's target, the group's committed
//!   offset, so the store stays behind Kafka, never ahead, and a crash between two chunks is a
//!   store behind Kafka like any other: the next restore folds on from the last chunk's offset.
//! - Snapshots are read twice: first their keys and offsets only (the newest record of each
//!   candidate: a compacted topic keeps older ones until the cleaner runs), then only those
//!   records are decoded and stored in chunks of `held`, WITHOUT an offset; the last chunk
//!   goes with the log's first one, which stores the offset (or alone with the round's offset
//!   when no log follows). Until then the partition has no stored offset, so a crash in between
//!   restores from the snapshots again: each newest snapshot replaces what the interrupted attempt stored,
//!   and a candidate it stored whose newest record is now a tombstone is left an empty state
//!   (the same to the fold as none). Such a stored state was counted by the command-status
//!   gauge at start-up: the restore takes it away before counting what replaces it.
//!
//! The partitions of one assignment restore as tasks of their own ([`restore_all`]), in
//! parallel: a partition's restore reads only its own log and snapshots and writes only its own
//! candidates, offset, dirty markers and deadline entries, so the tasks share nothing but the
//! store, which applies their writes one at a time.
//!
//! Why the snapshot tail starts at the newest round: every round (one transaction) snapshots
//! every candidate changed since the previous round, so a candidate whose newest snapshot is
//! older than the newest round had no event between the two; its state at the newest round's
//! offset is that snapshot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use thiserror::Error;

use super::{Admission, Admitted, PartitionState};
use crate::config::Config;
use crate::fold;
use crate::metrics::{self, Metrics, Tally};
use crate::model::CandidateState;
use crate::policy::Policy;
use crate::project::{Commit, EncodedStates, Store, StoreError};
use crate::telemetry::EofReaderContext;
use crate::timers::index;
use crate::topics::Topics;

/// Header on snapshot records: the input offset (next) the snapshot reflects.
pub const SNAPSHOT_OFFSET_HEADER: &str = "hirestate.reflects-offset";

/// Everything a restore needs.
pub struct RestoreEnv {
    pub config: Config,
    pub topics: Topics,
    pub policy: Arc<Policy>,
    /// The live path's decoding and validation: restore folds exactly what it would have.
    pub admission: Admission,
    pub store: Arc<dyn Store + Sync>,
    /// Events folded by restores so far: progress, shared with `/readyz`.
    pub restored_events: Arc<AtomicU64>,
    /// Restore progress, and the command-status gauge (restores change state, and it mirrors
    /// state).
    /// Nothing a restore folds is counted as decided: it was counted when first committed.
    pub metrics: Arc<Metrics>,
    /// Set on shutdown: a restore stops at the next record ([`RestoreError::Interrupted`]).
    pub shutdown: Arc<std::sync::atomic::AtomicBool>,
    /// The event log's partition count the state is built from (the store's record of it):
    /// an assignment of a log with another count is refused (`ingest`'s module doc).
    pub event_partitions: usize,
}

impl RestoreEnv {
    /// What a restore reader needs of it: the configuration and the shutdown flag.
    fn reading(&self) -> (&Config, &AtomicBool) {
        (&self.config, &self.shutdown)
    }
}

/// Why a partition could not be restored.
#[derive(Debug, Error)]
pub enum RestoreError {
    #[error(
        "partition {partition}: restore needs the log from offset {from}, but it starts at {low} \
         (retention deleted {missing} records); refusing to skip them. The event log must keep \
         every event after the latest snapshot round: give it unlimited retention \
         (retention.ms=-1, as `hirestate topics ensure` creates it); this partition can only be \
         restored from a state directory or snapshots that reach offset {low} or later"
    )]
    Gap {
        partition: i32,
        from: i64,
        low: i64,
        missing: i64,
    },
    #[error(
        "partition {partition}: {from} reflects {topic} up to offset {reflects}, but the log \
         ends at {end}: the topic was deleted and recreated (or truncated) since, and this state \
         cannot be matched to it; move the state directory aside (and recreate the snapshots \
         topic if it outlived the old log), then start again to rebuild from the new log"
    )]
    AheadOfLog {
        partition: i32,
        topic: String,
        /// The state store, or the snapshots.
        from: &'static str,
        reflects: i64,
        end: i64,
    },
    #[error(
        "partition {partition}: the snapshot of candidate {candidate:?} at offset {offset} of \
         {topic} does not decode ({error}); refusing to restore without it"
    )]
    UndecodableSnapshot {
        partition: i32,
        topic: String,
        offset: i64,
        candidate: String,
        error: String,
    },
    /// A snapshot on another partition than the placement gives its key: the snapshots (and
    /// the events folded into them) were placed under another partition count or partitioner.
    #[error(
        "partition {partition}: {topic} holds a snapshot of candidate {candidate:?} (offset \
         {offset}) on partition {partition}, but {placement} (events_partitioner) places that \
         key on partition {belongs} of the {partitions} the event log has now: the snapshots \
         were written under another placement, so the log was too. Either partitions were \
         added to the event log (and to the snapshots), and many candidates' new events now \
         land on another partition than their history: partitions cannot be removed, so copy \
         the events into a new event log with the partitions wanted (`hirestate topics \
         copy-events`, README \"Adding partitions\") and run a new group on it; or \
         events_partitioner was changed: set it back. Restored from these snapshots, \
         candidates' histories would be split between partitions"
    )]
    MisplacedSnapshot {
        partition: i32,
        topic: String,
        offset: i64,
        candidate: String,
        placement: crate::ingest::placement::Partitioner,
        belongs: i32,
        partitions: usize,
    },
    // `error`, not `source`: the message carries it, and `{:#}` repeated a source.
    #[error("partition {partition}: reading {topic}: {error}")]
    Kafka {
        partition: i32,
        topic: String,
        error: KafkaError,
    },
    #[error("partition {partition}: no progress reading {topic} at offset {at} (target {target}) for {secs}s")]
    Stalled {
        partition: i32,
        topic: String,
        at: i64,
        target: i64,
        secs: u64,
    },
    /// An event that cannot be decoded because of the configuration ([`Admitted::Stop`]).
    #[error(
        "partition {partition} offset {offset}: {} ({}): {error}",
        crate::ingest::STOP_HINT,
        crate::config::REGISTRY_CREDENTIALS
    )]
    Configuration {
        partition: i32,
        offset: i64,
        error: crate::codec::CodecError,
    },
    /// Shutdown was asked for: nothing folded so far is written, the next start restores
    /// again from where the store stands.
    #[error("partition {partition}: restore interrupted at offset {at} by shutdown")]
    Interrupted { partition: i32, at: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the group committed for a partition: the offset a restore brings the state up to,
/// and the digest of the policy the last committed batch was folded under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    pub offset: Option<i64>,
    pub policy_digest: Option<String>,
}

impl Committed {
    /// Up to `offset`, with no policy recorded (as an older version committed it).
    pub fn at(offset: i64) -> Committed {
        Committed {
            offset: Some(offset),
            policy_digest: None,
        }
    }

    /// What `committed` (what `committed_offsets` returned) holds for `topic`/`partition`: no
    /// offset when the group committed none.
    pub fn of(committed: &TopicPartitionList, topic: &str, partition: i32) -> Committed {
        let Some(el) = committed.find_partition(topic, partition) else {
            return Committed::default();
        };
        Committed {
            offset: match el.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            },
            policy_digest: super::placement::policy_of_offset_metadata(el.metadata())
                .map(str::to_owned),
        }
    }
}

/// Restores the `partitions` (each with its committed offset), one task per partition on up
/// to `fold_tasks` threads: a partition's restore reads, folds and stores only that
/// partition's candidates, and the store serialises the writes. Each holds at most its share
/// of `max_candidates_in_memory` ([`held_per_partition`]). The results come back in the order
/// asked.
pub fn restore_all(
    env: &RestoreEnv,
    partitions: &[(i32, Committed)],
) -> Vec<(i32, Result<PartitionState, RestoreError>)> {
    let started = Instant::now();
    let tasks = env.config.fold_tasks().clamp(1, partitions.len().max(1));
    let held = held_per_partition(env.config.max_candidates_in_memory, partitions.len());
    let next = AtomicUsize::new(0);
    let task = || {
        let mut done = Vec::new();
        while let Some((p, committed)) = partitions.get(next.fetch_add(1, Ordering::Relaxed)) {
            done.push((*p, restore(env, *p, committed, held)));
        }
        done
    };
    let mut all: Vec<_> = crate::tasks::map_on_threads((0..tasks).collect(), |_| task())
        .into_iter()
        .flatten()
        .collect();
    let order = |p: i32| partitions.iter().position(|(q, _)| *q == p);
    all.sort_by_key(|(p, _)| order(*p));
    tracing::info!(
        partitions = partitions.len(),
        tasks,
        ms = started.elapsed().as_millis() as u64,
        "partitions restored"
    );
    all
}

/// Says so when the partition's last batch was committed under another policy than the
/// configured one: from `target` on, events are folded under the configured policy (logged
/// once per assignment, for the audit trail); and when the restore folds `base..target`,
/// events committed under another policy are folded under this one — the restored states are
/// what this policy makes of them, which can differ from the commands committed for them.
fn policy_changed(env: &RestoreEnv, partition: i32, committed: &Committed, base: i64, target: i64) {
    let now = &env.policy.approval;
    let Some(then) = committed
        .policy_digest
        .as_deref()
        .filter(|d| *d != &*now.digest)
    else {
        return;
    };
    if target > base {
        tracing::warn!(
            partition,
            from = base,
            to = target,
            committed_policy_digest = then,
            policy_version = %now.version,
            policy_digest = %now.digest,
            "restoring events committed under another policy (the offsets' policy digest) with \
             the configured one: the restored states are what the configured policy makes of \
             them, which can differ from the commands already committed for them (a write-back \
             ack of a command it would not have issued is then rejected as unknown_command). \
             To restore them as they were committed, run once more with the policy of that \
             digest until the processor has caught up, then switch"
        );
    } else {
        tracing::info!(
            partition,
            from = target,
            committed_policy_digest = then,
            policy_version = %now.version,
            policy_digest = %now.digest,
            "the policy changed since the partition's last commit: events from this offset on \
             are folded under the configured one"
        );
    }
}

/// The states one partition's restore may hold: `max_candidates_in_memory` (`cap`) shared
/// among the assignment's `partitions`, so that what they hand the live path together stays
/// within it (at least one each); no limit when `cap` is 0.
fn held_per_partition(cap: usize, partitions: usize) -> usize {
    match cap {
        0 => usize::MAX,
        cap => (cap / partitions.max(1)).max(1),
    }
}

/// Restores `partition` up to `committed` (the group's committed offset, if any), holding at
/// most `held` states (module doc, "Memory"). Returns its in-memory state, whose `next` is
/// where the consumer must start.
///
/// # Errors
/// [`RestoreError`]: a retention gap, Kafka or store failures.
pub fn restore(
    env: &RestoreEnv,
    partition: i32,
    committed_as: &Committed,
    held: usize,
) -> Result<PartitionState, RestoreError> {
    let committed = committed_as.offset;
    let started = Instant::now();
    let events = env.topics.events.as_str();
    let stored = env.store.next_offset(events, partition)?;
    let mut ps = PartitionState::default();
    let mut tally = Tally::default();
    let snapshots = match stored {
        Some(_) => None,
        None => snapshot_index(env, partition)?,
    };
    let base = match (stored, &snapshots) {
        (Some(s), _) => s,
        (None, Some(index)) => index.round.unwrap_or(0),
        (None, None) => 0,
    };
    let target = committed.unwrap_or(base).max(base);
    if let Some(c) = committed.filter(|c| stored.is_some_and(|s| *c < s)) {
        // Offsets reset behind the store: its states hold every event id of that range, so a
        // fold from there would decide each a duplicate and emit nothing.
        tracing::warn!(
            partition,
            committed = c,
            store = base,
            "the group's committed offset is behind the state store (offsets reset, or a state \
             directory of another group): the processor goes on from the store, so the events \
             in between are not folded or emitted again. To fold the log again, start with an \
             empty state directory (and offsets where the folding should start)"
        );
    }
    let (low, end) = watermarks(env, events, partition)?;
    if base > end {
        return Err(RestoreError::AheadOfLog {
            partition,
            topic: events.to_owned(),
            from: match stored {
                Some(_) => "the state store",
                None => "the snapshots",
            },
            reflects: base,
            end,
        });
    }
    if target > base && low > base {
        return Err(RestoreError::Gap {
            partition,
            from: base,
            low,
            missing: low - base,
        });
    }
    policy_changed(env, partition, committed_as, base, target);
    // Read before anything is stored: it waits for the store's writes in flight.
    ps.dirty = env.store.dirty(partition)?.into_iter().collect();
    let from_snapshots = match snapshots {
        Some(index) => load_snapshots(env, partition, index, held, &mut ps, &mut tally)?,
        None => 0,
    };
    // The snapshot states held are not stored yet: they go with the log's first chunk.
    let mut unstored = !ps.candidates.is_empty();
    let mut touched = std::collections::BTreeSet::new();
    // States stored (once per chunk each) for the log folded here, and chunks stored before
    // the last.
    let (mut written, mut chunks) = (0, 0);
    if target > base {
        tracing::info!(
            partition,
            from = base,
            to = target,
            "restoring: folding the log without emitting"
        );
        read_range(env.reading(), events, partition, base, target, |m| {
            let offset = m.offset();
            crate::failpoint::hit(crate::failpoint::DURING_RESTORE);
            let event = loop {
                match env.admission.admit(m.key(), m.payload(), partition) {
                    Admitted::Event(e) => break e,
                    // Went to the DLQ when it was first consumed.
                    Admitted::Refused(_) => return Ok(()),
                    Admitted::Retry(e) => {
                        tracing::warn!(error = %e, partition, "restore waits for the schema registry");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    Admitted::Stop(error) => {
                        return Err(RestoreError::Configuration {
                            partition,
                            offset,
                            error,
                        })
                    }
                }
            };
            let state = match ps.candidates.entry(event.candidate_id.clone()) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(
                    env.store
                        .candidate(&event.candidate_id)?
                        .unwrap_or_default(),
                ),
            };
            let before = metrics::status_before(state, &event);
            let stuck_before = metrics::stuck_of(state, &event);
            let outcome = fold::apply(state, &event, &env.policy);
            tally.observe_stuck(&stuck_before, &metrics::stuck_of(state, &event));
            tally.observe(&event, &outcome, state, before);
            touched.insert(event.candidate_id);
            env.restored_events.fetch_add(1, Ordering::Relaxed);
            env.metrics.restored_event(partition);
            if ps.candidates.len() >= held {
                // Past the limit: what is folded so far is stored up to here, and let go.
                written += touched.len();
                chunks += 1;
                store_folded(env, partition, &mut ps, &touched, offset + 1, unstored)?;
                unstored = false;
                ps.candidates.clear();
                touched.clear();
            }
            Ok(())
        })?;
    }
    written += touched.len();
    store_folded(env, partition, &mut ps, &touched, target, unstored)?;
    env.metrics.record_restore(&tally);
    ps.next = target;
    tracing::info!(
        partition,
        stored = ?stored,
        committed = ?committed,
        from = base,
        to = target,
        snapshots = from_snapshots,
        // States the folded events changed, stored once per chunk (the events themselves are
        // `to - from`), and the chunks stored before the last when `held` was reached.
        states_written = written,
        chunks,
        held = ps.candidates.len(),
        ms = started.elapsed().as_millis() as u64,
        "partition restored"
    );
    Ok(ps)
}

/// Stores the states of `touched` (held in `ps`), marked changed since the last snapshot
/// round (in `ps.dirty` too), with the deadlines they wait for, and `next` as the partition's
/// offset: one commit. With `everything`, every state `ps` holds goes too (snapshot states not
/// stored yet).
fn store_folded(
    env: &RestoreEnv,
    partition: i32,
    ps: &mut PartitionState,
    touched: &std::collections::BTreeSet<String>,
    next: i64,
    everything: bool,
) -> Result<(), RestoreError> {
    ps.dirty.extend(touched.iter().cloned());
    let states: Vec<&CandidateState> = match everything {
        true => ps.candidates.values().collect(),
        false => touched
            .iter()
            .filter_map(|c| ps.candidates.get(c))
            .collect(),
    };
    env.store.commit(Commit {
        dirty: touched.iter().map(|c| (partition, c.as_str())).collect(),
        offsets: vec![(env.topics.events.as_str(), partition, next)],
        ..restored_states(partition, &states, &env.policy)
    })?;
    Ok(())
}

/// A commit of restored `states` and every deadline they wait for: an entry that is already in
/// the index is the same key, so this only adds what the store was missing.
fn restored_states<'a>(partition: i32, states: &[&CandidateState], policy: &Policy) -> Commit<'a> {
    let timers = states
        .iter()
        .flat_map(|s| {
            fold::timers::pending(s, policy)
                .into_iter()
                .map(|due| index::Entry {
                    partition,
                    candidate_id: s.candidate_id.clone(),
                    due,
                })
        })
        .collect();
    Commit {
        states: EncodedStates::of(states),
        offsets: vec![],
        dirty: vec![],
        snapshot_rounds: vec![],
        timers,
        timers_done: vec![],
    }
}

fn kafka(partition: i32, topic: &str) -> impl Fn(KafkaError) -> RestoreError + '_ {
    move |error| RestoreError::Kafka {
        partition,
        topic: topic.to_owned(),
        error,
    }
}

type Reader = BaseConsumer<EofReaderContext>;

fn reader(config: &Config) -> Result<Reader, KafkaError> {
    config
        .log_reader_config(format!("{}-restore", config.group_id), true)
        .create_with_context(EofReaderContext)
}

fn watermarks(env: &RestoreEnv, topic: &str, partition: i32) -> Result<(i64, i64), RestoreError> {
    let c = reader(&env.config).map_err(kafka(partition, topic))?;
    c.fetch_watermarks(topic, partition, Duration::from_secs(30))
        .map_err(kafka(partition, topic))
}

/// Whether a consumer error is one librdkafka recovers from by itself (the broker unreachable
/// for a moment): a restore reader goes on polling, bounded by its no-progress limit. It
/// stopped the restore before, and with it the processor: `processor_shutdown` failed so in
/// CI, under load, on `AllBrokersDown` from a restore reader of a broker that was up.
fn transient(e: &KafkaError) -> bool {
    matches!(
        e,
        KafkaError::MessageConsumption(
            RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::OperationTimedOut
        )
    )
}

/// Reads `topic`/`partition` from `from` until offset `until` (exclusive) or the end, calling
/// `each` on every record; stops early, with [`RestoreError::Interrupted`], once `shutdown` is
/// set.
fn read_range(
    (config, shutdown): (&Config, &AtomicBool),
    topic: &str,
    partition: i32,
    from: i64,
    until: i64,
    mut each: impl FnMut(&BorrowedMessage<'_>) -> Result<(), RestoreError>,
) -> Result<(), RestoreError> {
    let c = reader(config).map_err(kafka(partition, topic))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(from))
        .map_err(kafka(partition, topic))?;
    c.assign(&tpl).map_err(kafka(partition, topic))?;
    let mut last_progress = Instant::now();
    let mut at = from;
    while at < until {
        match c.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                if m.offset() >= until {
                    break;
                }
                if shutdown.load(Ordering::Relaxed) {
                    return Err(RestoreError::Interrupted {
                        partition,
                        at: m.offset(),
                    });
                }
                at = m.offset() + 1;
                last_progress = Instant::now();
                each(&m)?;
            }
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(e)) if transient(&e) => {
                tracing::warn!(partition, topic, error = %e, "restore reader: broker unreachable; polling on");
            }
            Some(Err(e)) => return Err(kafka(partition, topic)(e)),
            None => {
                // Transaction markers take offsets but are never delivered: ask where we are.
                if let Ok(pos) = c.position() {
                    if let Some(Offset::Offset(p)) =
                        pos.find_partition(topic, partition).map(|e| e.offset())
                    {
                        at = at.max(p);
                    }
                }
                if last_progress.elapsed() > Duration::from_secs(60) {
                    return Err(RestoreError::Stalled {
                        partition,
                        topic: topic.to_owned(),
                        at,
                        target: until,
                        secs: 60,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Where the newest snapshot record of each candidate of a partition is: the first pass over
/// its snapshots, which decodes nothing.
struct SnapshotIndex {
    /// Candidate (the record's key) → offset of its newest record.
    newest: HashMap<Box<str>, i64>,
    /// The newest round's offset: the input offset (next) it reflects.
    round: Option<i64>,
    /// The snapshot partition's low and high watermarks when indexed.
    range: (i64, i64),
}

/// The record's key, as the candidate id it is.
fn key_of<'m>(m: &'m BorrowedMessage<'_>) -> std::borrow::Cow<'m, str> {
    String::from_utf8_lossy(m.key().unwrap_or_default())
}

/// Indexes the snapshots of `partition` (None: there are none).
fn snapshot_index(env: &RestoreEnv, partition: i32) -> Result<Option<SnapshotIndex>, RestoreError> {
    let topic = env.topics.snapshots.as_str();
    let (low, high) = watermarks(env, topic, partition)?;
    if high <= low {
        return Ok(None);
    }
    let mut index = SnapshotIndex {
        newest: HashMap::new(),
        round: None,
        range: (low, high),
    };
    read_range(env.reading(), topic, partition, low, high, |m| {
        let reflects = m.headers().and_then(|h| {
            h.iter()
                .find(|x| x.key == SNAPSHOT_OFFSET_HEADER)
                .and_then(|x| x.value)
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.parse::<i64>().ok())
        });
        index.round = index.round.max(reflects);
        let placement = env.admission.placement();
        if let Some(belongs) = placement
            .partitioner
            .partition_of(m.key().unwrap_or_default(), placement.partitions)
            .filter(|p| *p != partition)
        {
            return Err(RestoreError::MisplacedSnapshot {
                partition,
                topic: topic.to_owned(),
                offset: m.offset(),
                candidate: key_of(m).into_owned(),
                placement: placement.partitioner,
                belongs,
                partitions: placement.partitions,
            });
        }
        index.newest.insert(key_of(m).into(), m.offset());
        Ok(())
    })?;
    Ok(Some(index))
}

/// The second pass over the snapshots of `partition`: decodes the newest record of each
/// candidate ([`SnapshotIndex`]) and stores the states in commits of at most `held`, without
/// an offset (module doc, "Memory"); the last chunk stays in `ps`, not stored yet. Returns how
/// many states it loaded.
fn load_snapshots(
    env: &RestoreEnv,
    partition: i32,
    index: SnapshotIndex,
    held: usize,
    ps: &mut PartitionState,
    tally: &mut Tally,
) -> Result<usize, RestoreError> {
    let topic = env.topics.snapshots.as_str();
    let store = |ps: &PartitionState| -> Result<(), RestoreError> {
        let states: Vec<&CandidateState> = ps.candidates.values().collect();
        env.store
            .commit(restored_states(partition, &states, &env.policy))?;
        Ok(())
    };
    let mut loaded = 0;
    let (low, high) = index.range;
    read_range(env.reading(), topic, partition, low, high, |m| {
        let key = key_of(m);
        if index.newest.get(key.as_ref()) != Some(&m.offset()) {
            return Ok(()); // an older snapshot of the candidate, not compacted away yet
        }
        crate::failpoint::hit(crate::failpoint::DURING_RESTORE);
        // A snapshot that does not decode stops the restore: dropped, its candidate would
        // restart from the events after the round, without its history.
        let state = match m.payload() {
            Some(v) => Some(env.admission.decode::<CandidateState>(v).map_err(|e| {
                RestoreError::UndecodableSnapshot {
                    partition,
                    topic: topic.to_owned(),
                    offset: m.offset(),
                    candidate: key.to_string(),
                    error: e.to_string(),
                }
            })?),
            // A tombstone: the candidate has no state.
            None => None,
        };
        // The store holds a state of this candidate only if an interrupted restore stored it
        // (no offset was stored yet): start-up counted it, and this one replaces it. A
        // tombstoned one is replaced by an empty state, the same to the fold as none.
        let earlier = env.store.candidate(&key)?;
        if let Some(earlier) = &earlier {
            tally.remove_statuses_of(earlier);
        }
        let state = match (state, earlier) {
            (Some(state), _) => state,
            (None, Some(_)) => CandidateState {
                candidate_id: key.into_owned(),
                ..CandidateState::default()
            },
            (None, None) => return Ok(()),
        };
        tally.add_statuses_of(&state);
        ps.candidates.insert(state.candidate_id.clone(), state);
        loaded += 1;
        if ps.candidates.len() >= held {
            store(ps)?;
            ps.candidates.clear();
        }
        Ok(())
    })?;
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    use crate::codec::{Codec, Framing};
    use crate::ingest::placement::Placement;
    use crate::project::SledStore;
    use crate::replay::Replayer;

    /// A restore reader that finds every broker down for a moment polls on and reads the range
    /// once the broker is back (it stopped at the first `AllBrokersDown` before).
    #[test]
    fn a_restore_reader_polls_on_through_a_broker_down_for_a_moment() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("log", 1, 1).expect("topic");
        let config = Config {
            bootstrap: cluster.bootstrap_servers(),
            ..Config::default()
        };
        let producer: BaseProducer = config.producer_config().create().expect("producer");
        for i in 0..50 {
            let value = format!("v{i}");
            producer
                .send(BaseRecord::to("log").key("k").payload(&value))
                .map_err(|(e, _)| e)
                .expect("send");
        }
        producer.flush(Duration::from_secs(10)).expect("flush");

        cluster.broker_down(1).expect("broker down");
        let read = std::thread::scope(|scope| {
            let reading = scope.spawn(|| {
                let mut values = Vec::new();
                let shutdown = AtomicBool::new(false);
                read_range((&config, &shutdown), "log", 0, 0, 50, |m| {
                    values.push(
                        String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                    );
                    Ok(())
                })
                .map(|()| values)
            });
            std::thread::sleep(Duration::from_secs(2));
            cluster.broker_up(1).expect("broker up");
            reading.join().expect("the reader thread")
        });
        let values = read.expect("the range is read once the broker is back");
        assert_eq!(values, (0..50).map(|i| format!("v{i}")).collect::<Vec<_>>());
    }

    /// The store, recording how many states each commit carried; with `stop`, it asks for
    /// shutdown once it took that many commits.
    struct Counting {
        inner: SledStore,
        commits: std::sync::Mutex<Vec<usize>>,
        stop: Option<(usize, Arc<AtomicBool>)>,
    }

    impl Store for Counting {
        fn candidate(&self, candidate: &str) -> Result<Option<CandidateState>, StoreError> {
            self.inner.candidate(candidate)
        }
        fn next_offset(&self, topic: &str, partition: i32) -> Result<Option<i64>, StoreError> {
            self.inner.next_offset(topic, partition)
        }
        fn dirty(&self, partition: i32) -> Result<Vec<String>, StoreError> {
            self.inner.dirty(partition)
        }
        fn commit(&self, commit: Commit<'_>) -> Result<(), StoreError> {
            let mut commits = self.commits.lock().unwrap();
            commits.push(commit.states.len());
            if let Some((after, stop)) = &self.stop {
                if commits.len() == *after {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            self.inner.commit(commit)
        }
        fn writing(&self) -> bool {
            self.inner.writing()
        }
        fn settle(&self) -> Result<(), StoreError> {
            self.inner.settle()
        }
        fn due_timers(
            &self,
            partition: i32,
            now: crate::model::Timestamp,
            limit: usize,
        ) -> Result<Vec<(Vec<u8>, index::Entry)>, StoreError> {
            self.inner.due_timers(partition, now, limit)
        }
        fn first_due_after(
            &self,
            partition: i32,
            now: crate::model::Timestamp,
        ) -> Result<Option<crate::model::Timestamp>, StoreError> {
            self.inner.first_due_after(partition, now)
        }
        fn candidates(
            &self,
        ) -> Result<Box<dyn Iterator<Item = Result<CandidateState, StoreError>> + '_>, StoreError>
        {
            self.inner.candidates()
        }
        fn flush(&self) -> Result<(), StoreError> {
            self.inner.flush()
        }
    }

    /// A one-partition event log on a mock cluster, with two snapshot rounds of its first half
    /// (every candidate at a quarter, again at the half: the older records are not compacted
    /// away yet) and a tombstone after them; what a restore of it must leave.
    struct Logged {
        cluster: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
        policy: Arc<Policy>,
        events: usize,
        /// The snapshot states of the quarter round: what an interrupted restore may have
        /// written.
        quarter: Vec<CandidateState>,
        /// The candidate whose newest snapshot record is a tombstone (no event after the half),
        /// and its state in the half round before that.
        tombstoned: String,
        tombstoned_state: CandidateState,
        /// Every state after the whole log: the newest snapshots (the tombstoned one left out)
        /// with the events after the half folded in.
        expected: BTreeMap<String, CandidateState>,
    }

    fn logged() -> Logged {
        let policy = Arc::new(crate::policy::load(&crate::policy::default_dir()).expect("policy"));
        let topics = Topics::new("");
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic(&topics.events, 1, 1).expect("topic");
        cluster
            .create_topic(&topics.snapshots, 1, 1)
            .expect("topic");
        let codec = Codec::embedded().expect("codec");
        let events = crate::generate::stream(
            &crate::generate::Spec {
                candidates: 60,
                ..Default::default()
            },
            &policy,
        );
        let (quarter, half) = (events.len() / 4, events.len() / 2);
        let config = Config {
            bootstrap: cluster.bootstrap_servers(),
            ..Config::default()
        };
        let producer: BaseProducer = config.producer_config().create().expect("producer");
        let send = |record: BaseRecord<'_, str, [u8]>| {
            producer.send(record).map_err(|(e, _)| e).expect("send");
        };
        for e in &events {
            let value = codec
                .encode_local(e, Framing::SingleObject)
                .expect("encode");
            send(
                BaseRecord::to(&topics.events)
                    .key(e.candidate_id.as_str())
                    .payload(value.as_slice()),
            );
        }
        let mut replayer = Replayer::new(&policy);
        let round = |replayer: &mut Replayer, at: usize| -> Vec<CandidateState> {
            let reflects = at.to_string();
            let states: Vec<CandidateState> = replayer.states().values().cloned().collect();
            for s in &states {
                let value = codec
                    .encode_local(s, Framing::SingleObject)
                    .expect("encode");
                let headers = OwnedHeaders::new().insert(Header {
                    key: SNAPSHOT_OFFSET_HEADER,
                    value: Some(&reflects),
                });
                send(
                    BaseRecord::to(&topics.snapshots)
                        .key(s.candidate_id.as_str())
                        .payload(value.as_slice())
                        .headers(headers),
                );
            }
            states
        };
        events[..quarter]
            .iter()
            .for_each(|e| drop(replayer.fold(e)));
        let at_quarter = round(&mut replayer, quarter);
        events[quarter..half]
            .iter()
            .for_each(|e| drop(replayer.fold(e)));
        let at_half = round(&mut replayer, half);
        let tombstoned_state = at_half
            .iter()
            .find(|s| {
                !s.commands.is_empty()
                    && events[half..]
                        .iter()
                        .all(|e| e.candidate_id != s.candidate_id)
            })
            .expect("a candidate with commands and no event after the half")
            .clone();
        let tombstoned = tombstoned_state.candidate_id.clone();
        send(BaseRecord::to(&topics.snapshots).key(tombstoned.as_str()));
        producer.flush(Duration::from_secs(10)).expect("flush");

        let mut expected: BTreeMap<String, CandidateState> = at_half
            .into_iter()
            .filter(|s| s.candidate_id != tombstoned)
            .map(|s| (s.candidate_id.clone(), s))
            .collect();
        for e in &events[half..] {
            let state = expected.entry(e.candidate_id.clone()).or_default();
            drop(fold::apply(state, e, &policy));
        }
        Logged {
            cluster,
            policy,
            events: events.len(),
            quarter: at_quarter,
            tombstoned,
            tombstoned_state,
            expected,
        }
    }

    /// A restore of `log`'s partition into `store`, holding at most `cap` states (0: no limit).
    fn restore_env(
        log: &Logged,
        store: Arc<Counting>,
        cap: usize,
        runtime: &tokio::runtime::Runtime,
    ) -> RestoreEnv {
        let config = Config {
            bootstrap: log.cluster.bootstrap_servers(),
            max_candidates_in_memory: cap,
            ..Config::default()
        };
        RestoreEnv {
            topics: Topics::new(""),
            policy: log.policy.clone(),
            admission: Admission::new(
                Codec::embedded().expect("codec"),
                runtime.handle().clone(),
                Placement::UNCHECKED,
            ),
            store,
            restored_events: Arc::new(AtomicU64::new(0)),
            metrics: Arc::new(Metrics::new(None).expect("metrics")),
            shutdown: Arc::new(AtomicBool::new(false)),
            event_partitions: 1,
            config,
        }
    }

    fn counting_store(dir: &tempfile::TempDir) -> Arc<Counting> {
        Arc::new(Counting {
            inner: SledStore::open(&dir.path().join("db")).expect("store"),
            commits: Default::default(),
            stop: None,
        })
    }

    /// The lines of the command-status gauges in `metrics`' Prometheus text.
    fn status_gauges(metrics: &Metrics) -> Vec<String> {
        metrics
            .render()
            .lines()
            .filter(|l| {
                l.starts_with("hirestate_writeback_commands")
                    || l.starts_with("hirestate_writeback_stuck")
                    || l.starts_with("hirestate_applications_stuck")
            })
            .map(str::to_owned)
            .collect()
    }

    /// The command-status gauges of a processor that holds `states` (as counted at start-up).
    fn gauges_of<'a>(states: impl IntoIterator<Item = &'a CandidateState>) -> Vec<String> {
        let metrics = Metrics::new(None).expect("metrics");
        let mut t = Tally::default();
        states.into_iter().for_each(|s| t.add_statuses_of(s));
        metrics.record_stored(&t);
        status_gauges(&metrics)
    }

    fn stored(store: &Counting) -> BTreeMap<String, CandidateState> {
        store
            .all_candidates()
            .expect("stored states")
            .into_iter()
            .map(|s| (s.candidate_id.clone(), s))
            .collect()
    }

    /// A cold restore (snapshots, then the log after them) under `max_candidates_in_memory`
    /// holds no more states than that: it stores what it folded in commits of at most that
    /// many states (the snapshots first, without an offset, then the log's in chunks, each
    /// with the offset it reached), and hands the live path at most that many. It ends with the
    /// same store as a restore with no limit: the newest snapshot of each candidate (not the
    /// older records of a compacted topic not yet compacted, nor a tombstoned one) with the
    /// log after the round folded in, and the command-status gauge counts exactly that.
    /// Before, one commit carried every state at the end, whatever the limit.
    #[test]
    fn a_cold_restore_holds_no_more_states_than_the_limit_and_stores_the_same() {
        let log = logged();
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let cap = 10;
        for cap in [cap, 0] {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = counting_store(&dir);
            let env = restore_env(&log, store.clone(), cap, &runtime);
            let restored = restore_all(&env, &[(0, Committed::at(log.events as i64))]);
            let ps = match restored.into_iter().next() {
                Some((0, Ok(ps))) => ps,
                other => panic!("restore: {other:?}"),
            };
            assert_eq!(ps.next, log.events as i64);
            assert_eq!(
                store.next_offset(&env.topics.events, 0).unwrap(),
                Some(log.events as i64)
            );
            let stored = stored(&store);
            assert_eq!(
                stored.len(),
                log.expected.len(),
                "cap {cap}: candidates stored"
            );
            for (c, s) in &log.expected {
                assert_eq!(stored.get(c), Some(s), "cap {cap}: the state of {c}");
            }
            assert_eq!(
                status_gauges(&env.metrics),
                gauges_of(log.expected.values()),
                "cap {cap}"
            );
            let commits = store.commits.lock().unwrap().clone();
            if cap > 0 {
                assert!(
                    commits.iter().all(|n| *n <= cap) && ps.candidates.len() <= cap,
                    "a restore limited to {cap} states committed {commits:?} and handed on {}",
                    ps.candidates.len()
                );
                assert!(commits.len() > log.expected.len() / cap, "{commits:?}");
            }
        }
    }

    /// A cold restore that was interrupted after writing some snapshot states (no offset yet)
    /// and starts again overwrites them with the newest snapshots; a candidate the store holds
    /// whose newest snapshot record is a tombstone is left empty (the same to the fold as no
    /// state); and the command-status gauge, which counted those states at start-up, counts
    /// what the store holds after the restore, not both.
    #[test]
    fn a_cold_restore_started_again_overwrites_what_an_interrupted_one_stored() {
        let log = logged();
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let store = counting_store(&dir);
        let mut orphans: Vec<&CandidateState> = log
            .quarter
            .iter()
            .filter(|s| s.candidate_id != log.tombstoned)
            .collect();
        orphans.push(&log.tombstoned_state);
        store
            .commit(Commit {
                states: EncodedStates::of(&orphans),
                offsets: vec![],
                dirty: vec![],
                snapshot_rounds: vec![],
                timers: vec![],
                timers_done: vec![],
            })
            .expect("the interrupted attempt's states");
        let env = restore_env(&log, store.clone(), 10, &runtime);
        // What start-up counts from the store.
        let mut t = Tally::default();
        orphans.iter().for_each(|s| t.add_statuses_of(s));
        env.metrics.record_stored(&t);

        let restored = restore_all(&env, &[(0, Committed::at(log.events as i64))]);
        assert!(matches!(restored[0], (0, Ok(_))), "{restored:?}");
        let stored = stored(&store);
        let mut expected = log.expected.clone();
        let empty = CandidateState {
            candidate_id: log.tombstoned.clone(),
            ..CandidateState::default()
        };
        expected.insert(log.tombstoned.clone(), empty);
        assert_same(&stored, &expected);
        assert_eq!(status_gauges(&env.metrics), gauges_of(expected.values()));
    }

    /// A restore stopped between two of its chunks (here by shutdown, as by a crash: what the
    /// chunks stored stays) goes on, at the next start, from the offset the last chunk stored
    /// and ends with the same store as one that was never stopped.
    #[test]
    fn a_restore_stopped_between_chunks_goes_on_from_the_last_one_stored() {
        let log = logged();
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let shutdown = Arc::new(AtomicBool::new(false));
        // The snapshots' ~60 states take the first commits (chunks of 10, no offset; the last
        // go with the log's first chunk): by the 9th, chunks of the log have stored an offset.
        let stopping = Arc::new(Counting {
            inner: SledStore::open(&dir.path().join("db")).expect("store"),
            commits: Default::default(),
            stop: Some((9, shutdown.clone())),
        });
        let mut env = restore_env(&log, stopping.clone(), 10, &runtime);
        env.shutdown = shutdown;
        let first = restore_all(&env, &[(0, Committed::at(log.events as i64))]);
        assert!(
            matches!(first[0], (0, Err(RestoreError::Interrupted { .. }))),
            "{first:?}"
        );
        let stopped_at = stopping
            .next_offset(&env.topics.events, 0)
            .unwrap()
            .expect("the chunks stored an offset");
        assert!(stopped_at < log.events as i64, "{stopped_at}");
        drop((env, first));
        let Counting { inner, .. } = Arc::into_inner(stopping).expect("the only handle");
        let store = Arc::new(Counting {
            inner,
            commits: Default::default(),
            stop: None,
        });
        let env = restore_env(&log, store.clone(), 10, &runtime);
        let again = restore_all(&env, &[(0, Committed::at(log.events as i64))]);
        assert!(matches!(again[0], (0, Ok(_))), "{again:?}");
        assert_eq!(
            env.restored_events.load(Ordering::Relaxed),
            (log.events as i64 - stopped_at) as u64,
            "the second restore folds from where the first stopped"
        );
        assert_same(&stored(&store), &log.expected);
    }

    /// `stored` equals `expected`, naming the candidates that differ.
    fn assert_same(
        stored: &BTreeMap<String, CandidateState>,
        expected: &BTreeMap<String, CandidateState>,
    ) {
        let differ: Vec<&String> = stored
            .keys()
            .chain(expected.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|c| stored.get(*c) != expected.get(*c))
            .collect();
        assert!(
            differ.is_empty(),
            "stored states that differ from the expected: {differ:?}"
        );
    }
}
