//! Stage 1: Kafka in — the consumer group (`read_committed`, manual offsets: offsets move
//! only inside the processor's transactions), rebalances, and restore on assignment.
//!
//! Invariants:
//! - No transaction is ever open while the consumer is polled (the processor collects a
//!   batch, then opens, fills and ends one transaction), so a revocation or a lost partition
//!   never finds one open: "commit on revoke / abort on lost" reduce to dropping the
//!   partitions' in-memory state, which sled and Kafka already hold up to the last commit. A
//!   batch already folded but not yet sent may wait across a poll; the processor discards it
//!   when the poll changed the assignment (`app::batch`).
//! - On assignment every partition is restored ([`restore`]) before it is handed to the
//!   consumer, and it is assigned at exactly the offset its restored state reflects.
//! - An assignment is refused, before any partition is restored or read, when the event log's
//!   partition count is no longer the one the state was built from (`RestoreEnv::
//!   event_partitions`): partitions were added while the processor ran, and many candidates'
//!   new events now sit on other partitions than their history. The processor stops
//!   ([`crate::topics::repartitioned`] says why and what to do). Until the rebalance the new
//!   partitions cause, nothing of them is read, and the old partitions still hold every event
//!   of the candidates they place.
//! - An assignment is refused likewise when the group's committed offsets were committed under
//!   another placement (partition count or `events_partitioner`, recorded in each offset's
//!   metadata): with an empty state directory the store records no count, and the offsets
//!   still do ([`placement`]).
//! - Each assignment of a partition gets a fresh epoch; records collected under an older
//!   epoch are dropped, so a partition revoked and re-assigned mid-batch is never folded twice.
//! - A fatal consumer error stops the processor, with one exception: a static member fenced
//!   within two session timeouts of losing its assignment (its session timed out, say, in a
//!   broker outage) was fenced by its own earlier membership, not by another instance
//!   ([`collect`]); the processor replaces the consumer, once per lost assignment. The lost
//!   assignment has already dropped every partition's in-memory state, as a revocation does,
//!   so the new consumer's assignment restores from the store like any other.

mod admit;
pub mod placement;
pub mod restore;
mod source;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::config::Config;
use crate::metrics::{partition_lag, PartitionStats};
use crate::model::CandidateState;
use crate::topics::reach::Refusals;

pub use admit::{validate, Admission, Admitted, Refused, STOP_HINT};
pub use restore::{RestoreEnv, RestoreError};
pub use source::OwnedRecord;

/// The in-memory state of one assigned partition.
#[derive(Debug, Default)]
pub struct PartitionState {
    /// Assignment epoch (see module doc).
    pub epoch: u64,
    /// The next input offset the committed state reflects.
    pub next: i64,
    /// Candidates of this partition held in memory: loaded lazily from the store, dropped
    /// again when the processor holds more than `max_candidates_in_memory` (`app::batch`).
    pub candidates: HashMap<String, CandidateState>,
    /// Candidates changed by a committed batch since the last such drop: the ones kept.
    pub recent: std::collections::HashSet<String>,
    /// Candidates changed since the last snapshot round (mirrors the store's set).
    pub dirty: std::collections::BTreeSet<String>,
    pub batches_since_snapshot: u32,
    /// The offset after the last record handed to the processor under this epoch (0: none):
    /// with `next`, tells the lag gauge whether anything delivered is still uncommitted.
    pub delivered_next: i64,
    /// No deadline index entry of this partition is due before this time; `None`: not known,
    /// read the index. Lets a batch skip the index (a sled read, which waits for the write in
    /// flight) while nothing can be due.
    pub timers_from: Option<crate::model::Timestamp>,
}

/// What the rebalance callback and the processor loop share. The loop never holds the lock
/// across a poll, and the callback only runs inside a poll: no contention, no deadlock.
#[derive(Debug, Default)]
pub struct Assignment {
    pub partitions: HashMap<i32, PartitionState>,
    next_epoch: u64,
    /// A restore that failed, or a fatal consumer error (e.g. fenced by an instance with the
    /// same id): the processor stops with it.
    pub fatal: Option<String>,
    /// Restored partitions ready (for `/readyz`).
    pub generation: u64,
    /// The consumer was fenced right after it lost its assignment (its own session timed out),
    /// not by another instance ([`collect`]): the processor rejoins with a new consumer.
    pub rejoin: bool,
}

impl Assignment {
    /// Candidate states held in memory, over every assigned partition.
    pub fn candidates_held(&self) -> usize {
        self.partitions.values().map(|ps| ps.candidates.len()).sum()
    }
}

/// The consumer's context: handles rebalances by restoring on assign, turns librdkafka's
/// statistics into the consumer-lag gauge, and notes when the assignment was lost.
pub struct IngestContext {
    pub assignment: Arc<Mutex<Assignment>>,
    pub env: Arc<RestoreEnv>,
    /// When librdkafka last took the assignment away as lost (the group session timed out, or
    /// the coordinator no longer knew the member), until a fence that follows it is answered by
    /// a rejoin ([`collect`]).
    session_lost: Mutex<Option<Instant>>,
    /// Where refusals of the client (credentials, TLS) are noted (the processor stops on them).
    refusals: Arc<Refusals>,
}

impl IngestContext {
    pub fn new(
        assignment: Arc<Mutex<Assignment>>,
        env: Arc<RestoreEnv>,
        refusals: Arc<Refusals>,
    ) -> IngestContext {
        IngestContext {
            assignment,
            env,
            session_lost: Mutex::new(None),
            refusals,
        }
    }

    /// Whether the assignment was lost shortly before now (within two session timeouts),
    /// forgetting it: one rejoin answers one lost session.
    fn take_lost_session(&self) -> bool {
        let window = Duration::from_millis(self.env.config.session_timeout_ms.saturating_mul(2));
        lock(&self.session_lost)
            .take()
            .is_some_and(|at| at.elapsed() <= window)
    }
}

impl ClientContext for IngestContext {
    /// [`Refusals::error`]: logged, and noted if it is a refusal of the client.
    fn error(&self, error: KafkaError, reason: &str) {
        self.refusals.error(&error, reason);
    }

    /// Lag per assigned partition of the event log, measured from the offset the committed
    /// state reflects ([`crate::metrics::partition_lag`]). Called inside `poll`; skips a round
    /// rather than wait when the assignment is locked (a resync holds it across Kafka calls).
    fn stats(&self, statistics: Statistics) {
        let topic = &self.env.topics.events;
        let Some(t) = statistics.topics.get(topic) else {
            return;
        };
        let Ok(a) = self.assignment.try_lock() else {
            return;
        };
        let lags: Vec<(i32, i64)> = a
            .partitions
            .iter()
            .filter_map(|(p, ps)| {
                let s = t.partitions.get(p)?;
                let stats = PartitionStats {
                    ls_offset: s.ls_offset,
                    hi_offset: s.hi_offset,
                    app_offset: s.app_offset,
                    fetchq_cnt: s.fetchq_cnt,
                };
                Some((*p, partition_lag(&stats, ps.next, ps.delivered_next)?))
            })
            .collect();
        drop(a);
        self.env
            .metrics
            .set_consumer_lag(&self.env.config.group_id, topic, lags);
    }
}

impl ConsumerContext for IngestContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let topic = self.env.topics.events.clone();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Some(why) = self.repartitioned(consumer, tpl) {
                    tracing::error!(reason = %why, "assignment refused");
                    lock(&self.assignment).fatal = Some(why);
                    let _ = consumer.assign(&TopicPartitionList::new());
                    return;
                }
                let committed = consumer
                    .committed_offsets(tpl.clone(), Duration::from_secs(30))
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "committed offsets unavailable; restoring from the store alone");
                        tpl.clone()
                    });
                if let Some(why) = self.placement_changed(&committed) {
                    tracing::error!(reason = %why, "assignment refused");
                    lock(&self.assignment).fatal = Some(why);
                    let _ = consumer.assign(&TopicPartitionList::new());
                    return;
                }
                let wanted: Vec<(i32, restore::Committed)> = tpl
                    .elements()
                    .iter()
                    .map(|el| {
                        let p = el.partition();
                        (p, restore::Committed::of(&committed, el.topic(), p))
                    })
                    .collect();
                let mut assigned = TopicPartitionList::new();
                for (p, restored) in restore::restore_all(&self.env, &wanted) {
                    match restored {
                        Ok(mut ps) => {
                            let _ =
                                assigned.add_partition_offset(&topic, p, Offset::Offset(ps.next));
                            let mut a = lock(&self.assignment);
                            a.next_epoch += 1;
                            ps.epoch = a.next_epoch;
                            a.partitions.insert(p, ps);
                        }
                        Err(e @ restore::RestoreError::Interrupted { .. }) => {
                            tracing::info!(partition = p, reason = %e, "restore stopped");
                        }
                        Err(e) => {
                            tracing::error!(partition = p, error = %e, "restore failed");
                            lock(&self.assignment).fatal = Some(e.to_string());
                        }
                    }
                }
                if let Err(e) = consumer.assign(&assigned) {
                    lock(&self.assignment).fatal = Some(format!("assign failed: {e}"));
                }
                lock(&self.assignment).generation += 1;
                tracing::info!(partitions = ?assigned.elements().iter().map(|e| e.partition()).collect::<Vec<_>>(), "assigned and restored");
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // librdkafka clears the flag when the partitions are unassigned below.
                if consumer.assignment_lost() {
                    *lock(&self.session_lost) = Some(Instant::now());
                }
                let mut a = lock(&self.assignment);
                for el in tpl.elements() {
                    a.partitions.remove(&el.partition());
                }
                drop(a);
                let _ = consumer.unassign();
                tracing::info!(partitions = tpl.count(), "revoked");
            }
            other => {
                tracing::error!(error = ?other, "rebalance error; dropping the assignment");
                lock(&self.assignment).partitions.clear();
                let _ = consumer.unassign();
            }
        }
    }
}

impl IngestContext {
    /// Why an assignment of the event log must be refused, if its partition count is not the
    /// one the state is built from (see the module doc). The count is the cluster's; when the
    /// metadata request fails, a partition assigned past the old count still tells.
    fn repartitioned(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &TopicPartitionList,
    ) -> Option<String> {
        let built = self.env.event_partitions;
        let topic = &self.env.topics.events;
        let now = match consumer.fetch_metadata(Some(topic), Duration::from_secs(30)) {
            Ok(md) => crate::topics::partition_count(&md).ok(),
            Err(e) => {
                tracing::warn!(error = %e, "event log metadata unavailable at assignment; checking the assigned partitions alone");
                None
            }
        };
        let past = tpl.elements().iter().map(|e| e.partition() + 1).max();
        let now = now.or_else(|| {
            past.and_then(|p| usize::try_from(p).ok())
                .filter(|p| *p > built)
        });
        now.filter(|now| *now != built)
            .map(|now| crate::topics::repartitioned(topic, built, now))
    }

    /// Why the log must not be folded on from the `committed` offsets, if any was committed
    /// under another placement than this processor's (see `placement`).
    fn placement_changed(&self, committed: &TopicPartitionList) -> Option<String> {
        let now = self.env.admission.placement();
        committed.elements().iter().find_map(|el| {
            let then = placement::Placement::from_offset_metadata(el.metadata())?;
            now.changed_from(&then, &self.env.topics.events)
        })
    }
}

/// Polls until `max` records are collected or `wait` has passed, tagging each record with its
/// partition's assignment epoch (records of partitions not assigned are not kept).
pub fn collect(
    consumer: &BaseConsumer<IngestContext>,
    assignment: &Mutex<Assignment>,
    max: usize,
    wait: Duration,
) -> Vec<OwnedRecord> {
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + wait;
    while records.len() < max {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match consumer.poll(left) {
            Some(Ok(m)) => {
                let epoch = lock(assignment)
                    .partitions
                    .get_mut(&rdkafka::Message::partition(&m))
                    .map(|p| {
                        p.delivered_next = p.delivered_next.max(rdkafka::Message::offset(&m) + 1);
                        p.epoch
                    });
                if let Some(epoch) = epoch {
                    records.push(OwnedRecord::from_message(&m, epoch));
                }
            }
            Some(Err(KafkaError::MessageConsumptionFatal(code))) => {
                // The consumer is unusable from here on (librdkafka raised a fatal error): the
                // processor stops with it rather than poll on, assigned nothing, for ever —
                // unless it is a static member fenced right after it lost its assignment (its
                // session timed out, so the revocation was served first).
                // librdkafka then forgets the member id and rejoins, and a coordinator that
                // still holds the earlier membership (a broker restarted within the session
                // loads the group back with it) refuses the forgotten id as another instance's
                // (librdkafka #3437): no other instance is there, and a new consumer rejoins.
                let ctx = consumer.context();
                if code == RDKafkaErrorCode::FencedInstanceId && ctx.take_lost_session() {
                    lock(assignment).rejoin = true;
                } else {
                    lock(assignment).fatal = Some(fatal_consumer_error(&ctx.env.config, code));
                }
                break;
            }
            Some(Err(e)) => {
                let config = &consumer.context().env.config;
                match crate::topics::reach::access_refusal(config, &e) {
                    // Refused by the cluster's ACLs (the group, the event log): no retry can
                    // pass, and librdkafka retries without a word while nothing is assigned.
                    Some(refusal) => {
                        lock(assignment).fatal = Some(refusal);
                        break;
                    }
                    None => tracing::warn!(error = %e, "consumer error"),
                }
            }
            None => break,
        }
    }
    records
}

/// The consumer's fatal error, if librdkafka raised one, as [`collect`] reports it: after it
/// every consumer call fails with a local error that does not say why.
pub fn fatal_error(consumer: &BaseConsumer<IngestContext>) -> Option<String> {
    let (code, _) = consumer.client().fatal_error()?;
    Some(fatal_consumer_error(&consumer.context().env.config, code))
}

/// What the processor stops with after a fatal consumer error: for a fenced static member,
/// which id was taken and how to give each instance its own.
fn fatal_consumer_error(config: &Config, code: RDKafkaErrorCode) -> String {
    match code {
        RDKafkaErrorCode::FencedInstanceId => format!(
            "consumer fenced: another instance joined group {:?} with this instance's id {:?} \
             (HIRESTATE_INSTANCE_ID, by default the host name); each running instance needs an \
             id of its own",
            config.group_id, config.instance_id
        ),
        other => format!("fatal consumer error: {other}"),
    }
}

/// Locks, recovering from a poisoned mutex (a panic elsewhere already stops the processor).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The group consumer for the event log.
///
/// # Errors
/// When librdkafka refuses the configuration or the subscription.
pub fn consumer(
    config: &Config,
    ctx: IngestContext,
) -> Result<BaseConsumer<IngestContext>, rdkafka::error::KafkaError> {
    let topic = ctx.env.topics.events.clone();
    let c: BaseConsumer<IngestContext> = config
        .consumer_config()
        .set("group.id", &config.group_id)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Static membership: a restarted instance takes its partitions back at once instead of
        // waiting out the session of its dead predecessor.
        .set("group.instance.id", &config.instance_id)
        .set("partition.assignment.strategy", "range")
        .set(
            "statistics.interval.ms",
            config.statistics_interval_ms.to_string(),
        )
        .create_with_context(ctx)?;
    c.subscribe(&[&topic])?;
    Ok(c)
}
