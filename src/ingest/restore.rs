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
//! - the group's committed offset behind the store's (offsets reset) → the store's, with a
//!   warning saying so: its states already hold that range's event ids;
//! - a store or snapshots reflecting offsets past the log's end (the topic was recreated) →
//!   [`RestoreError::AheadOfLog`]: the processor stops. Seeking past the end would reset the
//!   consumer to the log's start, below the restored offset, and every record would be dropped
//!   as already folded.
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
use rdkafka::message::{Headers, Message};
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

/// The offset `committed` (what `committed_offsets` returned) holds for `topic`/`partition`, if
/// the group committed one.
pub fn committed_offset(
    committed: &TopicPartitionList,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    match committed.find_partition(topic, partition)?.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

/// Restores the `partitions` (each with its committed offset), one task per partition on up
/// to `fold_tasks` threads: a partition's restore reads, folds and stores only that
/// partition's candidates, and the store serialises the writes. The results come back in the
/// order asked.
pub fn restore_all(
    env: &RestoreEnv,
    partitions: &[(i32, Option<i64>)],
) -> Vec<(i32, Result<PartitionState, RestoreError>)> {
    let started = Instant::now();
    let tasks = env.config.fold_tasks().clamp(1, partitions.len().max(1));
    let next = AtomicUsize::new(0);
    let task = || {
        let mut done = Vec::new();
        while let Some(&(p, committed)) = partitions.get(next.fetch_add(1, Ordering::Relaxed)) {
            done.push((p, restore(env, p, committed)));
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

/// Restores `partition` up to `committed` (the group's committed offset, if any). Returns its
/// in-memory state, whose `next` is where the consumer must start.
///
/// # Errors
/// [`RestoreError`]: a retention gap, Kafka or store failures.
pub fn restore(
    env: &RestoreEnv,
    partition: i32,
    committed: Option<i64>,
) -> Result<PartitionState, RestoreError> {
    let started = Instant::now();
    let events = env.topics.events.as_str();
    let stored = env.store.next_offset(events, partition)?;
    let mut ps = PartitionState::default();
    let mut from_snapshots = Vec::new();
    let mut tally = Tally::default();
    let base = match stored {
        Some(s) => s,
        None => {
            let (states, round) = read_snapshots(env, partition)?;
            for s in states {
                tally.add_statuses_of(&s);
                ps.candidates.insert(s.candidate_id.clone(), s);
            }
            from_snapshots = ps.candidates.keys().cloned().collect();
            round.unwrap_or(0)
        }
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
    let mut touched = std::collections::BTreeSet::new();
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
    if target > base {
        tracing::info!(
            partition,
            from = base,
            to = target,
            "restoring: folding the log without emitting"
        );
        if low > base {
            return Err(RestoreError::Gap {
                partition,
                from: base,
                low,
                missing: low - base,
            });
        }
        read_range(
            env.reading(),
            events,
            partition,
            base,
            target,
            |offset, key, value| {
                crate::failpoint::hit(crate::failpoint::DURING_RESTORE);
                let event = loop {
                    match env.admission.admit(key, value, partition) {
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
                Ok(())
            },
        )?;
    }
    ps.dirty = env.store.dirty(partition)?.into_iter().collect();
    ps.dirty.extend(touched.iter().cloned());
    let write: Vec<&CandidateState> = touched
        .iter()
        .chain(from_snapshots.iter())
        .filter_map(|c| ps.candidates.get(c))
        .collect();
    // Every deadline the restored states wait for goes (back) into the index: an entry that is
    // already there is the same key, so this only adds what the store was missing.
    let timers = write
        .iter()
        .flat_map(|s| {
            fold::timers::pending(s, &env.policy)
                .into_iter()
                .map(|due| index::Entry {
                    partition,
                    candidate_id: s.candidate_id.clone(),
                    due,
                })
        })
        .collect();
    env.store.commit(Commit {
        states: EncodedStates::of(&write),
        offsets: vec![(events, partition, target)],
        dirty: touched.iter().map(|c| (partition, c.as_str())).collect(),
        snapshot_rounds: vec![],
        timers,
        timers_done: vec![],
    })?;
    env.metrics.record_restore(&tally);
    ps.next = target;
    tracing::info!(
        partition,
        stored = ?stored,
        committed = ?committed,
        from = base,
        to = target,
        snapshots = from_snapshots.len(),
        // Candidates the folded events changed (the events themselves are `to - from`).
        candidates_changed = touched.len(),
        ms = started.elapsed().as_millis() as u64,
        "partition restored"
    );
    Ok(ps)
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
        .consumer_config()
        .set("group.id", format!("{}-restore", config.group_id))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
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
/// `each` on every record's offset, key and value; stops early, with
/// [`RestoreError::Interrupted`], once `shutdown` is set.
fn read_range(
    (config, shutdown): (&Config, &AtomicBool),
    topic: &str,
    partition: i32,
    from: i64,
    until: i64,
    mut each: impl FnMut(i64, Option<&[u8]>, Option<&[u8]>) -> Result<(), RestoreError>,
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
                each(m.offset(), m.key(), m.payload())?;
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

/// The newest snapshot of every candidate of `partition`, and the newest round's offset.
fn read_snapshots(
    env: &RestoreEnv,
    partition: i32,
) -> Result<(Vec<CandidateState>, Option<i64>), RestoreError> {
    let topic = env.topics.snapshots.as_str();
    let c = reader(&env.config).map_err(kafka(partition, topic))?;
    let (_, high) = c
        .fetch_watermarks(topic, partition, Duration::from_secs(30))
        .map_err(kafka(partition, topic))?;
    if high == 0 {
        return Ok((Vec::new(), None));
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)
        .map_err(kafka(partition, topic))?;
    c.assign(&tpl).map_err(kafka(partition, topic))?;
    let mut latest: HashMap<String, Option<CandidateState>> = HashMap::new();
    let mut round: Option<i64> = None;
    let mut idle = Instant::now();
    loop {
        match c.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                idle = Instant::now();
                let key = m
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .unwrap_or_default();
                let reflects = m.headers().and_then(|h| {
                    h.iter()
                        .find(|x| x.key == SNAPSHOT_OFFSET_HEADER)
                        .and_then(|x| x.value)
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|v| v.parse::<i64>().ok())
                });
                round = round.max(reflects);
                // A null value is a tombstone: the candidate has no state. A snapshot that does
                // not decode stops the restore: dropped, its candidate would restart from the
                // events after the round, without its history.
                let state = match m.payload() {
                    None => None,
                    Some(v) => Some(env.admission.decode::<CandidateState>(v).map_err(|e| {
                        RestoreError::UndecodableSnapshot {
                            partition,
                            topic: topic.to_owned(),
                            offset: m.offset(),
                            candidate: key.clone(),
                            error: e.to_string(),
                        }
                    })?),
                };
                latest.insert(key, state);
                if m.offset() + 1 >= high {
                    break;
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(e)) if transient(&e) => {
                tracing::warn!(partition, topic, error = %e, "restore reader: broker unreachable; polling on");
            }
            Some(Err(e)) => return Err(kafka(partition, topic)(e)),
            None if idle.elapsed() > Duration::from_secs(60) => {
                return Err(RestoreError::Stalled {
                    partition,
                    topic: topic.to_owned(),
                    at: -1,
                    target: high,
                    secs: 60,
                })
            }
            None => {}
        }
    }
    Ok((latest.into_values().flatten().collect(), round))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

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
                read_range((&config, &shutdown), "log", 0, 0, 50, |_, _, v| {
                    values.push(String::from_utf8_lossy(v.unwrap_or_default()).into_owned());
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
}
