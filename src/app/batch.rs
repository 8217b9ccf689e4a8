//! One batch, start to end, in two steps: [`BatchFolder::fold`] (decode → fold → outputs
//! encoded into an outbox) and [`BatchFolder::transact`] (one transaction carrying the outbox,
//! due timers, snapshots and the input offsets → store). `transact` folds the NEXT batch's
//! records while its own commit is in flight, so a batch's decoding and folding overlap the
//! broker round trips of the transaction before it.
//!
//! Invariants (the processor suites under `make test` — equivalence, kills, ambiguous commits,
//! two instances — are what would catch a violation):
//! - A batch is folded against the states its predecessors left in memory, in input order:
//!   folding ahead changes when, never what, is folded.
//! - One task per partition: a batch's partitions fold on up to `fold_tasks` threads, each
//!   partition whole on one of them and in its input order. A partition owns its candidates (the
//!   key decides the partition), so no state is shared between tasks, and the tasks' results
//!   merge in partition order: the batch is the same whatever the number of tasks (unit test
//!   below, against one task and against `hirestate replay`).
//! - Nothing of a batch folded ahead is sent before its predecessor's commit is known to have
//!   succeeded: its records wait in its outbox, and its transaction begins after that commit.
//! - The states a commit writes to the store are encoded before the next batch folds, so the
//!   store gets each batch's states exactly as that batch left them, and only after its commit.
//! - On any failure before a commit is known to have succeeded, the in-memory states that
//!   batch touched are dropped, and so is the batch folded ahead of it with its states — the
//!   store still holds them as of the last commit and they reload from there — so memory,
//!   sled and Kafka agree again after the rewind.
//! - Memory is bounded without changing any output: past `max_candidates_in_memory` states,
//!   only states a batch changed since the previous drop, or the batch folded ahead changed,
//!   stay in memory ([`sweep`] says why that is safe; `tests/processor_eviction.rs` runs the
//!   equivalence with a cap of 40 states for 500 candidates).
//! - A batch folded ahead is only sent under the assignment it was folded in: a rebalance in
//!   between (the consumer is polled with no transaction open, but a folded batch may wait)
//!   discards it (the caller re-syncs and the records come again).
//! - A batch whose output cannot be encoded rolls back; it is retried only when the cause may
//!   pass (the registry out of reach). Otherwise ([`outputs::unencodable`]: the registry refuses
//!   the schema, a value the schema cannot hold) the open transaction is aborted and the
//!   processor stops, saying so: nothing of the batch is committed, and its retries could only
//!   fail the same way (before, every 10 s, for ever, never asking the registry again).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use super::outputs::{self, Outbox, Outputs};
use crate::config::{Config, REGISTRY_CREDENTIALS};
use crate::fold::{self, Outcome};
use crate::ingest::STOP_HINT;
use crate::ingest::{Admission, Admitted, Assignment, OwnedRecord, PartitionState};
use crate::metrics::{self, Metrics, Tally};
use crate::model::{CandidateState, Decision, Timestamp};
use crate::policy::Policy;
use crate::project::{Commit, EncodedStates, Store};
use crate::publish::{Publisher, TxnEnd};
use crate::telemetry::trace_context::TraceContext;
use crate::timers::{index, Clock};
use crate::topics::Topics;

/// How a batch ended.
#[derive(Debug)]
pub enum BatchEnd {
    Committed,
    /// Nothing of it is visible; the caller rewinds the consumer.
    RolledBack(String),
}

/// Committed totals: `consumed = applied + stale + duplicate + rejected + dlq`.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Counts {
    pub consumed: u64,
    pub applied: u64,
    pub stale: u64,
    pub duplicate: u64,
    pub rejected: u64,
    pub dlq: u64,
    pub by_reason: BTreeMap<String, u64>,
    /// `target/op` → commands.
    pub commands: BTreeMap<String, u64>,
    pub alerts: u64,
    pub snapshots: u64,
}

impl Counts {
    fn count(&mut self, o: &Outcome) {
        self.consumed += 1;
        match o.decision {
            Decision::Applied => self.applied += 1,
            Decision::Stale => self.stale += 1,
            Decision::Duplicate => self.duplicate += 1,
            Decision::Rejected(r) => {
                self.rejected += 1;
                *self.by_reason.entry(r.as_str().to_owned()).or_default() += 1;
            }
        }
        for c in &o.commands {
            *self
                .commands
                .entry(format!("{}/{}", c.target, c.op().as_str()))
                .or_default() += 1;
        }
        self.alerts += o.alerts.len() as u64;
    }

    /// Adds `b` to these totals.
    pub fn merge(&mut self, b: &Counts) {
        self.consumed += b.consumed;
        self.applied += b.applied;
        self.stale += b.stale;
        self.duplicate += b.duplicate;
        self.rejected += b.rejected;
        self.dlq += b.dlq;
        self.alerts += b.alerts;
        self.snapshots += b.snapshots;
        for (k, v) in &b.by_reason {
            *self.by_reason.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &b.commands {
            *self.commands.entry(k.clone()).or_default() += v;
        }
    }
}

/// Folds batches; holds what stays the same from batch to batch.
pub struct BatchFolder<'a> {
    policy: &'a Policy,
    admission: Admission,
    events_topic: String,
    outputs: Outputs,
    snapshot_every: u32,
    /// Totals over committed batches.
    pub counts: Counts,
    /// `deadline_reached` events sent by committed batches.
    pub timers_fired: u64,
    /// Recorded to with each committed batch's tally, where `counts` is merged.
    metrics: Arc<Metrics>,
    /// When timers are due.
    clock: Arc<dyn Clock>,
    timers_per_batch: usize,
    /// The deadline index is read at most this often while the store is writing…
    index_read_every: Duration,
    /// …and was last read then.
    index_read_at: Option<Instant>,
    trace_sample_ratio: f64,
    /// Threads a batch's partitions are folded on, at most.
    fold_tasks: usize,
    /// Candidate states held in memory at most (0: no limit); see [`sweep`].
    max_in_memory: usize,
    /// Candidate states dropped from memory so far.
    pub evicted: u64,
}

/// One partition's part of a batch: its number, its states and its records in input order.
type PartitionWork<'a, 'r> = (i32, &'a mut PartitionState, Vec<&'r OwnedRecord>);

/// Deals `work` out to `tasks` shares of about equal record counts: the partition with the
/// most records first, each to the share with the fewest records so far.
fn deal<'a, 'r>(
    work: &mut Vec<PartitionWork<'a, 'r>>,
    tasks: usize,
) -> Vec<Vec<PartitionWork<'a, 'r>>> {
    work.sort_by_key(|(p, _, rs)| (std::cmp::Reverse(rs.len()), *p));
    let mut shares: Vec<Vec<PartitionWork<'a, 'r>>> = (0..tasks).map(|_| Vec::new()).collect();
    let mut load = vec![0usize; tasks];
    for w in work.drain(..) {
        let least = (0..tasks).min_by_key(|&i| (load[i], i)).unwrap_or(0);
        load[least] += w.2.len();
        shares[least].push(w);
    }
    shares
}

/// Bounds the candidate states held in memory. When `a` holds more than `cap` (0: no limit),
/// it drops every state that no committed batch changed since the previous drop and that
/// `ahead` (folded, not yet committed) did not change either; returns how many it dropped.
///
/// Safe because such a state equals what the store holds: every change to it was committed
/// and handed to the store, whose reads wait for the writes before them, and the next event of
/// that candidate reloads it, as it loads a candidate never seen. States `ahead` changed exist
/// nowhere else, so they stay. A state reloaded, or restored from snapshots, and not changed
/// since goes at the next drop.
fn sweep(a: &mut Assignment, cap: usize, ahead: &Folded) -> u64 {
    let before = a.candidates_held();
    if cap == 0 || before <= cap {
        return 0;
    }
    for (p, ps) in a.partitions.iter_mut() {
        let mut keep = std::mem::take(&mut ps.recent);
        keep.extend(touched_in(&ahead.touched, *p).cloned());
        ps.candidates.retain(|c, _| keep.contains(c));
    }
    let dropped = (before - a.candidates_held()) as u64;
    tracing::info!(
        before,
        dropped,
        cap,
        "candidate states no recent batch changed dropped from memory"
    );
    dropped
}

/// What the processor stops with when a batch was refused for a record's size (`why`, the
/// refusal; `largest`, the batch's largest record as (topic, key, bytes)): retrying the batch
/// cannot succeed, and it blocks every partition behind it. The record that outgrows a limit
/// is a snapshot (a state grows with its candidate's history); the fix is the topic's limit.
fn refused(why: &str, largest: Option<(String, String, usize)>) -> String {
    let (topic, record) = match largest {
        Some((topic, key, bytes)) => {
            let record = format!("{bytes} bytes to {topic}, key {key:?}");
            (topic, record)
        }
        None => ("<topic>".to_owned(), "unknown".to_owned()),
    };
    format!(
        "a record of the batch was refused for its size ({why}); the batch's largest record: \
         {record}. Retrying the batch cannot succeed, so the processor stops. A candidate's \
         snapshot grows with its history (every event id is kept for the duplicate check): \
         raise the topic's limit to what `hirestate topics ensure` gives a snapshot topic it \
         creates (kafka-configs.sh --alter --entity-type topics --entity-name {topic} \
         --add-config max.message.bytes={}) and start again",
        crate::topics::SNAPSHOT_TOPIC_MAX_MESSAGE_BYTES
    )
}

/// The candidates of `partition` among `touched` ([`Folded`]'s (partition, candidate) set).
fn touched_in(touched: &BTreeSet<(i32, String)>, partition: i32) -> impl Iterator<Item = &String> {
    touched
        .range((partition, String::new())..)
        .take_while(move |(p, _)| *p == partition)
        .map(|(_, c)| c)
}

/// Whether due deadline index entries are read now: always when the store is not writing (the
/// read does not wait then); while it is, only when `every` has passed since the last read
/// (`since`; `None`: never read). Under load, a deadline thus fires up to `every` late instead
/// of every batch waiting for the write before it.
fn index_read_due(writing: bool, since: Option<Duration>, every: Duration) -> bool {
    !writing || since.is_none_or(|s| s >= every)
}

/// What firing the due timers of a batch produced.
#[derive(Default)]
struct Fired {
    /// Index keys fired or found moot: removed with the batch's store commit.
    done: Vec<Vec<u8>>,
    /// `deadline_reached` events sent.
    sent: u64,
}

impl<'a> BatchFolder<'a> {
    /// A folder for `policy`, admitting records through `admission` (whose codec and runtime
    /// also encode the outputs), writing outputs to `topics`.
    pub fn new(
        policy: &'a Policy,
        admission: Admission,
        topics: &Topics,
        config: &Config,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        BatchFolder {
            policy,
            outputs: Outputs::new(
                topics,
                admission.codec(),
                config.schema_registry.is_some(),
                admission.runtime().clone(),
            ),
            admission,
            events_topic: topics.events.clone(),
            snapshot_every: config.snapshot_every_batches.max(1),
            counts: Counts::default(),
            timers_fired: 0,
            metrics,
            clock,
            timers_per_batch: config.timers_per_batch.max(1),
            index_read_every: Duration::from_millis(config.timers_read_interval_ms),
            index_read_at: None,
            trace_sample_ratio: config.trace_sample_ratio,
            fold_tasks: config.fold_tasks(),
            max_in_memory: config.max_candidates_in_memory,
            evicted: 0,
        }
    }

    /// Whether any assigned partition has a timer due (a batch with no records then still
    /// runs, to fire it).
    ///
    /// # Errors
    /// Storage failures.
    pub fn timers_due(&self, a: &Assignment, store: &dyn Store) -> anyhow::Result<bool> {
        let now = self.clock.now();
        for (p, ps) in &a.partitions {
            if ps.timers_from.is_some_and(|t| now < t) {
                continue;
            }
            if !store.due_timers(*p, now, 1)?.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Fires the timers due in `a`'s partitions: a live one becomes a `deadline_reached` event
    /// in its candidate's input partition (folded when consumed, like any event); a moot one
    /// (the state moved on) is just dropped. An index entry goes with the commit either way;
    /// a deadline the batch itself scheduled that is due already never reaches the index (see
    /// `crate::timers`, 4): it is taken out of `scheduled` and fired or dropped here, against
    /// the state as the batch left it. A partition whose next deadline is known to be later is
    /// not read at all.
    ///
    /// Due means due by the clock and, in a partition the batch read events of, by the latest
    /// of their times (`event_time`; see `crate::timers`, 5). While the store is still writing
    /// an earlier batch, the index is read only when [`index_read_due`] says so.
    fn fire_timers(
        &mut self,
        a: &mut Assignment,
        scheduled: &mut Vec<index::Entry>,
        event_time: &BTreeMap<i32, Timestamp>,
        out: &mut Outbox,
        store: &dyn Store,
    ) -> anyhow::Result<Fired> {
        let now = self.clock.now();
        let due_by = |p: &i32| event_time.get(p).map_or(now, |t| now.min(*t));
        let mut fired = Fired::default();
        let (mut due_now, later): (Vec<index::Entry>, Vec<index::Entry>) =
            std::mem::take(scheduled)
                .into_iter()
                .partition(|e| e.due.at <= due_by(&e.partition));
        *scheduled = later;
        // The batch's entries due later go to the index with its commit: nothing of their
        // partition can be due before the first of them.
        let mut first_scheduled: BTreeMap<i32, Timestamp> = BTreeMap::new();
        for e in scheduled.iter() {
            let first = first_scheduled.entry(e.partition).or_insert(e.due.at);
            *first = (*first).min(e.due.at);
        }
        let since = self.index_read_at.map(|t| t.elapsed());
        let may_wait = index_read_due(store.writing(), since, self.index_read_every);
        let mut read = false;
        for (p, ps) in a.partitions.iter_mut() {
            let by = due_by(p);
            let first = first_scheduled.get(p).copied();
            if let (Some(from), Some(first)) = (ps.timers_from, first) {
                ps.timers_from = Some(from.min(first));
            }
            match ps.timers_from {
                Some(t) if by < t => continue,
                // Something is due, but reading now would wait for the store's write: later.
                Some(_) if !may_wait => continue,
                // Nothing is due, or it is not known (never read, or over the limit last time).
                _ => read = true,
            }
            let due = store.due_timers(*p, by, self.timers_per_batch)?;
            // Entries left over the limit are due already: read again next batch.
            ps.timers_from = if due.len() < self.timers_per_batch {
                let stored = store.first_due_after(*p, by)?;
                Some(
                    first
                        .into_iter()
                        .chain(stored)
                        .min()
                        .unwrap_or(Timestamp(i64::MAX)),
                )
            } else {
                None
            };
            for (key, entry) in due {
                let stored;
                let state = match ps.candidates.get(&entry.candidate_id) {
                    Some(s) => Some(s),
                    None => {
                        stored = store.candidate(&entry.candidate_id)?;
                        stored.as_ref()
                    }
                };
                fired.sent += u64::from(self.fire(out, *p, state, &entry)?);
                fired.done.push(key);
            }
        }
        if read {
            self.index_read_at = Some(Instant::now());
        }
        // In index order, each deadline once (two outcomes may name the same one).
        due_now.sort_by_cached_key(index::Entry::key);
        due_now.dedup();
        for entry in due_now {
            let ps = a.partitions.get(&entry.partition);
            match ps.and_then(|ps| ps.candidates.get(&entry.candidate_id)) {
                Some(state) => {
                    fired.sent +=
                        u64::from(self.fire(out, entry.partition, Some(state), &entry)?);
                }
                // Folded by this batch, so held; were it not, the index fires it later.
                None => {
                    if let Some(ps) = a.partitions.get_mut(&entry.partition) {
                        ps.timers_from = ps.timers_from.map(|t| t.min(entry.due.at));
                    }
                    scheduled.push(entry);
                }
            }
        }
        Ok(fired)
    }

    /// Sends the `deadline_reached` event of `entry` into `partition` when its deadline still
    /// applies to `state`; whether it did.
    fn fire(
        &self,
        out: &mut Outbox,
        partition: i32,
        state: Option<&CandidateState>,
        entry: &index::Entry,
    ) -> anyhow::Result<bool> {
        if !state.is_some_and(|s| fold::timers::live(s, &entry.due, self.policy)) {
            return Ok(false);
        }
        let event = fold::timers::event(&entry.candidate_id, &entry.due);
        self.outputs.deadline(out, partition, &event)?;
        Ok(true)
    }

    /// Decodes and folds `records` (all of partitions in `a`, each at or past its `next`) into
    /// the in-memory states, and encodes their outputs into the batch's outbox. Nothing is
    /// sent: [`BatchFolder::transact`] does that.
    ///
    /// One task per partition: the partitions' records are folded on up to `fold_tasks`
    /// threads, each partition by one task in input order (a partition owns its candidates,
    /// so no two tasks touch one state), and the results are merged in partition order — the
    /// same batch whatever the number of tasks.
    ///
    /// # Errors
    /// A store read that failed (loading a candidate not in memory).
    pub fn fold(
        &self,
        a: &mut Assignment,
        records: &[OwnedRecord],
        store: &(dyn Store + Sync),
    ) -> anyhow::Result<Folded> {
        let started = Instant::now();
        let mut by_partition: BTreeMap<i32, Vec<&OwnedRecord>> = BTreeMap::new();
        for r in records {
            by_partition.entry(r.partition).or_default().push(r);
        }
        // Records of a partition no longer assigned are skipped (a rebalance re-syncs them).
        let mut work: Vec<PartitionWork<'_, '_>> = a
            .partitions
            .iter_mut()
            .filter_map(|(p, ps)| by_partition.remove(p).map(|rs| (*p, ps, rs)))
            .collect();
        let tasks = self.fold_tasks.clamp(1, work.len().max(1));
        let shares = deal(&mut work, tasks);
        let mut folded: Vec<(i32, anyhow::Result<Folded>)> =
            crate::tasks::map_on_threads(shares, |share| self.fold_share(share, store))
                .into_iter()
                .flatten()
                .collect();
        folded.sort_by_key(|(p, _)| *p);
        let mut f = Folded::default();
        for (_, part) in folded {
            f.absorb(part?);
        }
        f.stages.fold = started.elapsed();
        Ok(f)
    }

    /// One task's partitions, folded one after the other.
    fn fold_share(
        &self,
        share: Vec<PartitionWork<'_, '_>>,
        store: &(dyn Store + Sync),
    ) -> Vec<(i32, anyhow::Result<Folded>)> {
        share
            .into_iter()
            .map(|(p, ps, rs)| (p, self.fold_partition(p, ps, &rs, store)))
            .collect()
    }

    /// Folds one partition's `records`, in order, into its states `ps`.
    fn fold_partition(
        &self,
        partition: i32,
        ps: &mut PartitionState,
        records: &[&OwnedRecord],
        store: &(dyn Store + Sync),
    ) -> anyhow::Result<Folded> {
        let mut f = Folded::default();
        f.epochs.insert(partition, ps.epoch);
        let mut latest: Option<Timestamp> = None;
        // The candidates this batch changed (each id copied once, not per event), with the
        // deadlines their outcomes scheduled; joined to `f` at the end.
        let mut changed: BTreeMap<String, Vec<fold::timers::Due>> = BTreeMap::new();
        for r in records {
            f.next.insert(partition, r.offset + 1);
            let admitted = self
                .admission
                .admit(r.key.as_deref(), r.value.as_deref(), r.partition);
            let event = match admitted {
                Admitted::Event(e) => e,
                Admitted::Retry(e) => {
                    f.failure = Some(format!(
                        "retryable decode error at {}/{}: {e}",
                        r.partition, r.offset
                    ));
                    break;
                }
                Admitted::Stop(e) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "stopping at partition {} offset {}: {STOP_HINT} ({REGISTRY_CREDENTIALS})",
                        r.partition, r.offset
                    )))
                }
                Admitted::Refused(why) => {
                    f.counts.consumed += 1;
                    f.counts.dlq += 1;
                    f.tally.dead_letter(why.stage, why.class);
                    self.outputs.dlq(&mut f.outbox, r, &why);
                    continue;
                }
            };
            latest = latest.max(Some(event.occurred_at));
            // One search for a candidate already in memory (nearly every event); the key is
            // copied only for one loaded from the store.
            let state = match ps.candidates.get_mut(&event.candidate_id) {
                Some(state) => state,
                None => {
                    let loaded = store.candidate(&event.candidate_id)?.unwrap_or_default();
                    ps.candidates
                        .entry(event.candidate_id.clone())
                        .or_insert(loaded)
                }
            };
            // A span per event, for the sampled share of traces (by trace id, so vendor,
            // hirestate and sink sample the same traces); nothing is computed unless `debug`
            // is on.
            let _event_span = tracing::enabled!(tracing::Level::DEBUG)
                .then(|| TraceContext::for_event(r.trace.as_ref(), &event.event_id))
                .filter(|trace| trace.within_ratio(self.trace_sample_ratio))
                .map(|trace| {
                    tracing::debug_span!(
                        "event",
                        event_id = %event.event_id,
                        trace_id = %trace.trace_id_hex(),
                        partition = r.partition,
                        offset = r.offset
                    )
                    .entered()
                });
            let before = metrics::status_before(state, &event);
            let stuck_before = metrics::stuck_of(state, &event);
            let mut outcome = fold::apply(state, &event, self.policy);
            f.tally
                .observe_stuck(&stuck_before, &metrics::stuck_of(state, &event));
            f.counts.count(&outcome);
            f.tally.observe(&event, &outcome, state, before);
            // Before the outputs: a batch that fails below still discards this state. (A
            // duplicate changes nothing and schedules nothing.)
            if outcome.decision != Decision::Duplicate {
                let scheduled = match changed.get_mut(event.candidate_id.as_str()) {
                    Some(scheduled) => scheduled,
                    None => changed.entry(event.candidate_id.clone()).or_default(),
                };
                scheduled.append(&mut outcome.scheduled);
            }
            if let Err(e) = self.outputs.emit(
                &mut f.outbox,
                &event,
                r.trace.as_ref(),
                &outcome,
                self.policy,
            ) {
                if outputs::unencodable(&e) {
                    return Err(unencodable_stop(e));
                }
                f.failure = Some(e.to_string());
                break;
            }
        }
        for (candidate_id, mut scheduled) in changed {
            // The index needs only what the state waits for as the batch leaves it (`crate::
            // timers`, 3): a deadline a later event of the batch made moot (the application
            // moved on, the command was answered) would only be written, read when due and
            // removed.
            if !scheduled.is_empty() {
                let state = ps.candidates.get(&candidate_id);
                scheduled
                    .retain(|due| state.is_some_and(|s| fold::timers::live(s, due, self.policy)));
                f.scheduled
                    .extend(scheduled.into_iter().map(|due| index::Entry {
                        partition,
                        candidate_id: candidate_id.clone(),
                        due,
                    }));
            }
            f.touched.insert((partition, candidate_id));
        }
        if let Some(t) = latest {
            f.event_time.insert(partition, t);
        }
        Ok(f)
    }

    /// Runs `f`'s transaction — its outbox, the timers due, the snapshot rounds due and its
    /// input offsets — and, while the commit is in flight, folds `next` (records collected after
    /// `f`'s, of the same assignment). After a commit, `f`'s states go to the store and the
    /// batch folded from `next` is returned, to be transacted next. After a rollback, both
    /// batches' states are dropped and nothing is returned: the caller rewinds.
    ///
    /// # Errors
    /// A store write that failed after a successful commit (the store would fall behind
    /// silently otherwise), a store read that failed, or an output that cannot be encoded.
    pub fn transact(
        &mut self,
        a: &mut Assignment,
        mut f: Folded,
        next: &[OwnedRecord],
        publisher: &mut Publisher,
        group: &ConsumerGroupMetadata,
        store: &(dyn Store + Sync),
    ) -> anyhow::Result<(BatchEnd, Option<Folded>)> {
        let span = tracing::info_span!("batch", records = f.counts.consumed);
        let _entered = span.enter();
        if let Some(why) = f.failure.take() {
            f.discard(a);
            return Ok((BatchEnd::RolledBack(why), None));
        }
        if let Err(e) = publisher.begin() {
            f.discard(a);
            return Ok((
                BatchEnd::RolledBack(format!("begin_transaction: {e}")),
                None,
            ));
        }
        let mut failure: Option<anyhow::Error> = None;

        // Timers due by now, checked against the states as this batch left them.
        let mut fired = Fired::default();
        match self.fire_timers(a, &mut f.scheduled, &f.event_time, &mut f.outbox, store) {
            Ok(x) => fired = x,
            Err(e) => failure = Some(e.context("firing timers")),
        }

        // Snapshot rounds for partitions whose cadence is due.
        let mut rounds = Vec::new();
        if failure.is_none() {
            'rounds: for (p, n) in &f.next {
                let ps = &a.partitions[p];
                if ps.batches_since_snapshot + 1 < self.snapshot_every {
                    continue;
                }
                rounds.push(*p);
                let changed: BTreeSet<&String> =
                    ps.dirty.iter().chain(touched_in(&f.touched, *p)).collect();
                for c in changed {
                    // A candidate changed in an earlier batch may no longer be in memory (e.g.
                    // dirty since before a restart): its committed state is in the store.
                    let stored;
                    let state = match ps.candidates.get(c) {
                        Some(s) => s,
                        None => match store.candidate(c)? {
                            Some(s) => {
                                stored = s;
                                &stored
                            }
                            None => continue,
                        },
                    };
                    if let Err(e) = self.outputs.snapshot(&mut f.outbox, state, *p, *n) {
                        failure = Some(e);
                        break 'rounds;
                    }
                    f.counts.snapshots += 1;
                }
            }
        }
        if let Some(e) = failure {
            let end = publisher.abort(&format!("{e:#}"));
            f.discard(a);
            if outputs::unencodable(&e) {
                return Err(unencodable_stop(e));
            }
            return Ok((BatchEnd::RolledBack(format!("{end:?}")), None));
        }

        // Each offset carries the placement it was folded under (`ingest::placement`).
        let placed = self
            .admission
            .placement()
            .offset_metadata(&self.policy.approval.digest);
        let mut tpl = TopicPartitionList::new();
        for (p, n) in &f.next {
            let mut el = tpl.add_partition(&self.events_topic, *p);
            el.set_offset(Offset::Offset(*n))?;
            el.set_metadata(placed.as_str());
        }
        // The records are sent and the transaction committed on a thread of their own (that
        // waits on the broker); meanwhile this one encodes the states the commit will write —
        // before the next batch folds on from them — and folds the next batch.
        let outbox = &mut f.outbox;
        let (end, took, transaction, states, ahead) = std::thread::scope(|scope| {
            let committing = scope.spawn(|| {
                let sending = Instant::now();
                let sent = outbox.send(publisher);
                let started = Instant::now();
                let end = match sent {
                    Ok(()) => publisher.commit(&tpl, group),
                    Err(e) => publisher.abort_on(&e),
                };
                (end, started.elapsed(), sending.elapsed())
            });
            let states = EncodedStates::of(
                &f.touched
                    .iter()
                    .filter_map(|(p, c)| a.partitions.get(p).and_then(|ps| ps.candidates.get(c)))
                    .collect::<Vec<_>>(),
            );
            let ahead = self.fold(a, next, store);
            match committing.join() {
                Ok((end, took, transaction)) => (end, took, transaction, states, ahead),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        });
        self.metrics.record_commit(took, end == TxnEnd::Committed);
        if end != TxnEnd::Committed {
            if let Ok(ahead) = ahead {
                if !ahead.is_empty() {
                    tracing::info!(
                        records = ahead.counts.consumed,
                        "batch folded ahead discarded with the batch before it"
                    );
                }
                ahead.discard(a);
            }
            let largest = f.outbox.largest();
            f.discard(a);
            match end {
                TxnEnd::Refused(why) => anyhow::bail!(refused(&why, largest)),
                TxnEnd::Denied(why) => anyhow::bail!(why),
                _ => {}
            }
            return Ok((BatchEnd::RolledBack(format!("{end:?}")), None));
        }

        crate::failpoint::hit(crate::failpoint::AFTER_COMMIT_BEFORE_STORE);
        let dirty: Vec<(i32, &str)> = f
            .touched
            .iter()
            .filter(|(p, _)| !rounds.contains(p))
            .map(|(p, c)| (*p, c.as_str()))
            .collect();
        let storing = Instant::now();
        store.commit(Commit {
            states,
            offsets: f
                .next
                .iter()
                .map(|(p, n)| (self.events_topic.as_str(), *p, *n))
                .collect(),
            dirty,
            snapshot_rounds: rounds.clone(),
            timers: std::mem::take(&mut f.scheduled),
            timers_done: fired.done,
        })?;
        f.stages.transaction = transaction;
        f.stages.store = storing.elapsed();
        if fired.sent > 0 {
            tracing::debug!(sent = fired.sent, "due timers fired into the log");
        }
        self.timers_fired += fired.sent;
        for (p, n) in &f.next {
            let Some(ps) = a.partitions.get_mut(p) else {
                continue;
            };
            ps.next = *n;
            // Kept at the next sweep; with no cap there is none, so nothing to remember.
            if self.max_in_memory != 0 {
                ps.recent.extend(touched_in(&f.touched, *p).cloned());
            }
            if rounds.contains(p) {
                ps.dirty.clear();
                ps.batches_since_snapshot = 0;
            } else {
                ps.dirty.extend(touched_in(&f.touched, *p).cloned());
                ps.batches_since_snapshot += 1;
            }
        }
        self.counts.merge(&f.counts);
        self.metrics.record_batch(&f.tally);
        self.metrics.record_stages(&f.stages);
        let ahead = ahead?;
        let evicted = sweep(a, self.max_in_memory, &ahead);
        self.evicted += evicted;
        self.metrics
            .record_memory(a.candidates_held() as u64, evicted);
        Ok((BatchEnd::Committed, Some(ahead)))
    }
}

/// What the processor stops with when a batch's output cannot be encoded and retrying cannot
/// succeed (module doc).
const UNENCODABLE: &str = "stopping: an output record cannot be encoded, and retrying cannot \
    succeed; nothing of the batch was committed. Start again once the cause is mended: for a \
    schema registry's refusal, the subject's compatibility setting or the schemas registered \
    under it (409), or the registry's credentials and rights (401/403)";

/// `e`, an output retrying cannot encode, as what the processor stops with.
fn unencodable_stop(e: anyhow::Error) -> anyhow::Error {
    e.context(format!("{UNENCODABLE}, set in {REGISTRY_CREDENTIALS}"))
}

/// A batch folded, its outputs encoded, waiting for its transaction.
#[derive(Default)]
pub struct Folded {
    /// The assignment epoch of each partition it read.
    epochs: BTreeMap<i32, u64>,
    /// (partition, candidate) whose state it changed.
    touched: BTreeSet<(i32, String)>,
    /// Per partition, the input offset after its last record.
    next: BTreeMap<i32, i64>,
    /// Per partition, the latest `occurred_at` of the events it folded: how far the log has
    /// got in event time, which a batch catching up reads far behind the clock.
    event_time: BTreeMap<i32, Timestamp>,
    counts: Counts,
    tally: Tally,
    /// Deadline index entries its outcomes scheduled.
    scheduled: Vec<index::Entry>,
    outbox: Outbox,
    /// Why it cannot be committed (it is rolled back instead).
    failure: Option<String>,
    /// Where its time went: collect and fold so far; the rest when it commits.
    stages: metrics::StageTimes,
}

impl Folded {
    /// Whether it was folded under `a`'s current assignment (no rebalance since).
    pub fn still_assigned(&self, a: &Assignment) -> bool {
        self.epochs
            .iter()
            .all(|(p, epoch)| a.partitions.get(p).is_some_and(|ps| ps.epoch == *epoch))
    }

    /// Drops the in-memory states it touched (they reload from the store, which holds them as
    /// of the last commit): it will not be committed.
    pub fn discard(self, a: &mut Assignment) {
        for (p, c) in &self.touched {
            if let Some(ps) = a.partitions.get_mut(p) {
                if self.epochs.get(p) == Some(&ps.epoch) {
                    ps.candidates.remove(c);
                }
            }
        }
    }

    /// Takes in `b`, the part of the same batch from other partitions.
    fn absorb(&mut self, b: Folded) {
        self.epochs.extend(b.epochs);
        self.touched.extend(b.touched);
        self.next.extend(b.next);
        self.event_time.extend(b.event_time);
        self.counts.merge(&b.counts);
        self.tally.merge(b.tally);
        self.scheduled.extend(b.scheduled);
        self.outbox.append(b.outbox);
        self.failure = self.failure.take().or(b.failure);
    }

    /// Notes how long collecting its records took (the loop collects, the folder folds).
    pub fn collected_in(&mut self, took: Duration) {
        self.stages.collect = took;
    }

    /// Whether it read no record (a batch of due timers alone).
    pub fn is_empty(&self) -> bool {
        self.next.is_empty()
    }

    /// The input offset after its last record of `partition`, if it read any.
    pub fn next_of(&self, partition: i32) -> Option<i64> {
        self.next.get(&partition).copied()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::app::outputs::{OutgoingParts, COMMAND_ID_HEADER, EVENT_ID_HEADER};
    use crate::codec::Codec;
    use crate::generate::{stream, Spec};
    use crate::ingest::placement::Placement;
    use crate::model::{CandidateState, Event};
    use crate::project::SledStore;
    use crate::replay::Replayer;
    use crate::timers::clock::FixedClock;

    const PARTITIONS: i32 = 4;

    /// What folding a stream batch by batch left: every batch's outbox, in order, the totals,
    /// the merged tallies and the in-memory states.
    #[derive(Debug, PartialEq)]
    struct Run {
        outbox: Vec<OutgoingParts>,
        counts: Counts,
        tally: Tally,
        states: BTreeMap<String, CandidateState>,
    }

    /// The records of `events` spread over the partitions by candidate (one partition owns a
    /// candidate, as the key decides), with an undecodable record after every 97th.
    fn records(events: &[Event], codec: &Codec) -> Vec<OwnedRecord> {
        let mut offsets: HashMap<i32, i64> = HashMap::new();
        let mut out = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let partition = (e
                .candidate_id
                .bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31) + u32::from(b))
                % PARTITIONS as u32) as i32;
            let mut values = vec![codec
                .encode_local(e, crate::codec::Framing::SingleObject)
                .expect("a generated event encodes")];
            if i % 97 == 0 {
                values.push(b"not an event".to_vec());
            }
            for value in values {
                let offset = offsets.entry(partition).or_default();
                out.push(OwnedRecord {
                    partition,
                    offset: *offset,
                    key: Some(e.candidate_id.clone().into_bytes()),
                    value: Some(value),
                    headers: None,
                    epoch: 1,
                    trace: None,
                });
                *offset += 1;
            }
        }
        out
    }

    /// What a batch is folded with: a folder on `tasks` threads, a store, and an assignment of
    /// every partition at epoch 1. The runtime and the store's directory live as long as it.
    struct Bench<'p> {
        folder: BatchFolder<'p>,
        store: SledStore,
        a: Assignment,
        _runtime: tokio::runtime::Runtime,
        _dir: tempfile::TempDir,
    }

    fn bench(tasks: usize, policy: &Policy) -> Bench<'_> {
        bench_at(tasks, policy, Timestamp(0))
    }

    /// [`bench`] with the timers' clock at `now`.
    fn bench_at(tasks: usize, policy: &Policy, now: Timestamp) -> Bench<'_> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let codec = Codec::embedded().expect("the embedded codec");
        let config = Config {
            fold_tasks: tasks,
            ..Config::default()
        };
        // The records' own placement (`records`) is not a partitioner's.
        let admission = Admission::new(codec, runtime.handle().clone(), Placement::UNCHECKED);
        let folder = BatchFolder::new(
            policy,
            admission,
            &Topics::new(""),
            &config,
            Arc::new(Metrics::new(None).expect("metrics")),
            Arc::new(FixedClock(now)),
        );
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = SledStore::open(&dir.path().join("db")).expect("a store");
        let mut a = Assignment::default();
        for p in 0..PARTITIONS {
            a.partitions.insert(
                p,
                PartitionState {
                    epoch: 1,
                    ..Default::default()
                },
            );
        }
        Bench {
            folder,
            store,
            a,
            _runtime: runtime,
            _dir: dir,
        }
    }

    fn fold_on(tasks: usize, policy: &Policy, records: &[OwnedRecord]) -> Run {
        let Bench {
            folder,
            store,
            mut a,
            ..
        } = bench(tasks, policy);
        let mut run = Run {
            outbox: Vec::new(),
            counts: Counts::default(),
            tally: Tally::default(),
            states: BTreeMap::new(),
        };
        for batch in records.chunks(500) {
            let f = folder.fold(&mut a, batch, &store).expect("the batch folds");
            assert_eq!(f.failure, None);
            assert_eq!(f.next.len(), PARTITIONS as usize, "every partition read");
            for (p, next) in &f.next {
                let last = batch.iter().filter(|r| r.partition == *p).map(|r| r.offset);
                assert_eq!(Some(*next), last.max().map(|o| o + 1), "partition {p}");
            }
            run.outbox.extend(f.outbox.contents());
            run.counts.merge(&f.counts);
            run.tally.merge(f.tally);
        }
        for ps in a.partitions.into_values() {
            run.states.extend(ps.candidates);
        }
        run
    }

    /// The header `name` of an outgoing record.
    fn header<'a>(r: &'a OutgoingParts, name: &str) -> &'a [u8] {
        r.4.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
            .unwrap_or_default()
    }

    /// The shipped policy, a generated stream of `candidates` and its records.
    fn stream_of(candidates: usize) -> (Policy, Vec<Event>, Vec<OwnedRecord>) {
        let policy = crate::policy::load(&crate::policy::default_dir()).expect("shipped policy");
        let spec = Spec {
            candidates,
            ..Spec::default()
        };
        let events = stream(&spec, &policy);
        let codec = Codec::embedded().expect("the embedded codec");
        let records = records(&events, &codec);
        (policy, events, records)
    }

    #[test]
    fn a_batch_folds_the_same_on_one_task_or_several_and_as_the_replay_does() {
        let (policy, events, records) = stream_of(300);
        let one = fold_on(1, &policy, &records);
        let three = fold_on(3, &policy, &records);
        assert_eq!(one, three, "the number of tasks changed the batch");

        // Independently, the sequential replay: same states, decisions and, per candidate,
        // the same outputs in the same order.
        let mut replay = Replayer::new(&policy);
        let mut expected: BTreeMap<String, Vec<(&str, String)>> = BTreeMap::new();
        let (mut applied, mut rejected) = (0, 0);
        for e in &events {
            let o = replay.fold(e);
            applied += u64::from(o.decision == Decision::Applied);
            rejected += u64::from(o.decision.reason().is_some());
            let outputs = expected.entry(e.candidate_id.clone()).or_default();
            outputs.extend(
                o.commands
                    .iter()
                    .map(|c| ("command", c.command_id.to_string())),
            );
            if o.decision.reason().is_some() {
                outputs.push(("rejection", e.event_id.clone()));
            }
            outputs.extend(o.alerts.iter().map(|_| ("alert", e.event_id.clone())));
        }
        let replayed: BTreeMap<String, CandidateState> =
            replay.states().clone().into_iter().collect();
        assert_eq!(three.states, replayed);
        let dlq = records.len() - events.len();
        assert!(dlq > 0);
        assert_eq!(three.counts.consumed, records.len() as u64);
        assert_eq!(three.counts.dlq, dlq as u64);
        assert_eq!(
            (three.counts.applied, three.counts.rejected),
            (applied, rejected)
        );
        assert_eq!(three.tally.records, records.len() as u64);

        let topics = Topics::new("");
        let mut got: BTreeMap<String, Vec<(&str, String)>> = BTreeMap::new();
        let mut dead = 0;
        for r in &three.outbox {
            let (kind, id) = if r.0 == topics.dlq {
                dead += 1;
                continue;
            } else if r.0 == topics.rejections {
                ("rejection", header(r, EVENT_ID_HEADER))
            } else if r.0 == topics.alerts {
                ("alert", header(r, EVENT_ID_HEADER))
            } else {
                ("command", header(r, COMMAND_ID_HEADER))
            };
            let id = String::from_utf8(id.to_vec()).expect("utf-8 header");
            got.entry(r.2.clone()).or_default().push((kind, id));
        }
        expected.retain(|_, v| !v.is_empty());
        assert_eq!(dead, dlq);
        assert_eq!(got, expected);
    }

    #[test]
    fn a_due_deadline_of_a_candidate_no_longer_in_memory_goes_to_the_index_and_is_read_next() {
        let policy = crate::policy::load(&crate::policy::default_dir()).expect("shipped policy");
        let created = r#""kind":"application_created","requisition_id":"req-1","region":"na""#;
        let events = [event_at(
            "o1",
            "old",
            "ats",
            "2026-11-01T00:00:00Z",
            created,
        )];
        let codec = Codec::embedded().expect("the embedded codec");
        let recs = records(&events, &codec);
        let time = |s: &str| Timestamp::parse_rfc3339(s).expect("a time");
        let mut b = bench_at(1, &policy, time("2026-11-10T00:00:00Z"));
        let mut f = b.folder.fold(&mut b.a, &recs, &b.store).expect("folds");
        let p = recs[0].partition;
        // Known, but not held (as if dropped from memory since): the index takes it.
        b.a.partitions.get_mut(&p).expect("assigned").timers_from = Some(Timestamp(i64::MAX));
        b.a.partitions
            .get_mut(&p)
            .expect("assigned")
            .candidates
            .clear();
        let fired = b
            .folder
            .fire_timers(
                &mut b.a,
                &mut f.scheduled,
                &BTreeMap::new(), // as if its events were current: due by the clock
                &mut Outbox::default(),
                &b.store,
            )
            .expect("fires");
        assert_eq!(fired.sent, 0);
        let due = time("2026-11-03T00:00:00Z");
        let kept: Vec<(&str, Timestamp)> = f
            .scheduled
            .iter()
            .map(|e| (e.candidate_id.as_str(), e.due.at))
            .collect();
        assert_eq!(kept, vec![("old", due)]);
        assert_eq!(
            b.a.partitions[&p].timers_from,
            Some(due),
            "read again from then on"
        );
    }

    #[test]
    fn under_load_the_deadline_index_is_read_once_per_interval() {
        let second = Duration::from_secs(1);
        let ms = Duration::from_millis;
        // (store writing, since the last read, due?)
        for (writing, since, due) in [
            (false, None, true),
            (false, Some(ms(1)), true),
            (true, None, true),
            (true, Some(ms(999)), false),
            (true, Some(ms(1000)), true),
            (true, Some(ms(5000)), true),
        ] {
            assert_eq!(
                index_read_due(writing, since, second),
                due,
                "writing {writing}, since {since:?}"
            );
        }
    }

    #[test]
    fn partitions_are_dealt_to_tasks_by_record_count() {
        let records: Vec<OwnedRecord> = [(0, 5), (1, 1), (2, 3), (3, 3)]
            .iter()
            .flat_map(|&(p, n)| {
                (0..n).map(move |o| OwnedRecord {
                    partition: p,
                    offset: o,
                    key: None,
                    value: None,
                    headers: None,
                    epoch: 1,
                    trace: None,
                })
            })
            .collect();
        let mut states: Vec<PartitionState> = (0..4).map(|_| PartitionState::default()).collect();
        let mut work: Vec<PartitionWork<'_, '_>> = states
            .iter_mut()
            .enumerate()
            .map(|(p, ps)| {
                let p = p as i32;
                (p, ps, records.iter().filter(|r| r.partition == p).collect())
            })
            .collect();
        let shares = deal(&mut work, 2);
        let dealt: Vec<Vec<i32>> = shares
            .iter()
            .map(|s| s.iter().map(|(p, ..)| *p).collect())
            .collect();
        // 5 | 3 → 5+1 | 3+3: each partition whole, in one share, loads 6 and 6.
        assert_eq!(dealt, vec![vec![0, 1], vec![2, 3]]);
    }

    #[test]
    fn a_batch_folded_before_a_rebalance_is_discarded_without_touching_the_new_epochs_states() {
        let (policy, _, records) = stream_of(60);
        let mut b = bench(2, &policy);
        let (first, ahead) = records.split_at(records.len() / 2);
        let f = b.folder.fold(&mut b.a, first, &b.store).expect("folds");
        assert!(f.still_assigned(&b.a));
        drop(f);
        let f = b.folder.fold(&mut b.a, ahead, &b.store).expect("folds");
        assert!(f.still_assigned(&b.a));
        let held = |a: &Assignment, p: i32| a.partitions[&p].candidates.len();
        assert!((0..PARTITIONS).all(|p| held(&b.a, p) > 0));

        // A rebalance while `f` waited: partition 1 was revoked and assigned again (restored
        // afresh under a new epoch), partition 3 revoked.
        b.a.partitions.get_mut(&1).expect("assigned").epoch = 2;
        b.a.partitions.remove(&3);
        assert!(!f.still_assigned(&b.a));
        // Per partition, the candidates in memory that `f` did not touch.
        let untouched = |a: &Assignment, p: i32| -> BTreeSet<String> {
            a.partitions[&p]
                .candidates
                .keys()
                .filter(|c| !f.touched.contains(&(p, (*c).clone())))
                .cloned()
                .collect()
        };
        let (reassigned, kept) = (held(&b.a, 1), [untouched(&b.a, 0), untouched(&b.a, 2)]);
        // The test means something: the batch touched candidates of both partitions, and left
        // others of the first batch alone.
        assert!([0, 2].iter().all(|q| f.touched.iter().any(|(p, _)| p == q)));
        assert!(kept.iter().any(|k| !k.is_empty()));
        f.discard(&mut b.a);
        // What the batch touched under its own epoch is gone (it reloads from the store); the
        // states of the new epoch, and the ones it did not touch, stay.
        assert_eq!(held(&b.a, 1), reassigned);
        let left = |p: i32| -> BTreeSet<String> {
            b.a.partitions[&p].candidates.keys().cloned().collect()
        };
        assert_eq!([left(0), left(2)], kept);
    }

    #[test]
    fn a_batch_sends_to_the_index_only_deadlines_still_pending_when_it_ends() {
        use fold::timers::{self, Due};
        let (policy, events, records) = stream_of(300);
        let mut replay = Replayer::new(&policy);
        let scheduled: usize = events.iter().map(|e| replay.fold(e).scheduled.len()).sum();
        let mut b = bench(2, &policy);
        let mut kept: BTreeMap<String, BTreeSet<Due>> = BTreeMap::new();
        let mut sent = 0;
        for batch in records.chunks(500) {
            let f = b.folder.fold(&mut b.a, batch, &b.store).expect("folds");
            sent += f.scheduled.len();
            for e in &f.scheduled {
                let state = &b.a.partitions[&e.partition].candidates[&e.candidate_id];
                assert!(
                    timers::live(state, &e.due, &policy),
                    "{} was moot when its batch ended: {:?}",
                    e.candidate_id,
                    e.due
                );
                kept.entry(e.candidate_id.clone())
                    .or_default()
                    .insert(e.due.clone());
            }
        }
        // Some were made moot within their batch, so the test can tell.
        assert!(sent < scheduled, "{sent} of {scheduled}");
        // `crate::timers`, 3: every deadline the final states wait for was sent to the index.
        let mut pending = 0;
        for ps in b.a.partitions.values() {
            for (c, state) in &ps.candidates {
                for due in timers::pending(state, &policy) {
                    pending += 1;
                    assert!(
                        kept.get(c).is_some_and(|k| k.contains(&due)),
                        "{c}: {due:?} never sent"
                    );
                }
            }
        }
        assert!(pending > 0);
    }

    #[test]
    fn over_the_cap_only_states_changed_recently_or_by_the_batch_ahead_stay_in_memory() {
        let mut a = Assignment::default();
        for p in 0..2 {
            let ps = a.partitions.entry(p).or_default();
            for c in ["a", "b", "c", "d"] {
                ps.candidates
                    .insert(format!("{c}{p}"), CandidateState::default());
            }
        }
        a.partitions.get_mut(&0).expect("p0").recent = ["a0".to_owned()].into();
        let mut ahead = Folded::default();
        ahead.touched.insert((1, "b1".to_owned()));
        // Under the cap (8 held): nothing goes, and what counts as recent is kept for later.
        assert_eq!(sweep(&mut a, 8, &ahead), 0);
        assert_eq!(sweep(&mut a, 0, &ahead), 0);
        assert!(a.partitions[&0].recent.contains("a0"));
        // Over it: a0 (changed by a committed batch) and b1 (by the batch ahead) stay.
        assert_eq!(sweep(&mut a, 7, &ahead), 6);
        let held =
            |p: i32| -> BTreeSet<String> { a.partitions[&p].candidates.keys().cloned().collect() };
        assert_eq!(held(0), BTreeSet::from(["a0".to_owned()]));
        assert_eq!(held(1), BTreeSet::from(["b1".to_owned()]));
        // The next sweep starts a new round: a0 was not changed since, so it goes too.
        assert!(a.partitions[&0].recent.is_empty());
        assert_eq!(sweep(&mut a, 1, &Folded::default()), 2);
    }

    #[test]
    fn touched_in_gives_one_partitions_candidates_only() {
        let touched: BTreeSet<(i32, String)> = [(0, "zz"), (1, ""), (1, "a"), (1, "b"), (2, "a")]
            .into_iter()
            .map(|(p, c)| (p, c.to_owned()))
            .collect();
        let of = |p| touched_in(&touched, p).cloned().collect::<Vec<_>>();
        assert_eq!(of(1), vec!["", "a", "b"]);
        assert_eq!(of(0), vec!["zz"]);
        assert!(of(3).is_empty() && of(-1).is_empty());
    }

    /// `hirestate`'s JSON form of an event of candidate `c` (application `app-<c>`).
    fn event_at(id: &str, c: &str, source: &str, at: &str, kind: &str) -> Event {
        let line = format!(
            r#"{{"event_id":"{id}","candidate_id":"{c}","application_id":"app-{c}","source_system":"{source}","source_principal":"p","occurred_at":"{at}",{kind}}}"#
        );
        Codec::embedded()
            .and_then(|c| c.decode_local(line.as_bytes()))
            .expect("a valid event")
    }

    /// Folds `recs` and fires the batch's timers into `out`, as `transact` does.
    fn fold_then_fire(
        b: &mut Bench<'_>,
        recs: &[OwnedRecord],
        out: &mut Outbox,
    ) -> (Folded, Fired) {
        let mut f = b.folder.fold(&mut b.a, recs, &b.store).expect("folds");
        let fired = b
            .folder
            .fire_timers(&mut b.a, &mut f.scheduled, &f.event_time, out, &b.store)
            .expect("fires");
        (f, fired)
    }

    #[test]
    fn deadlines_due_when_their_batch_is_sent_fire_in_it_and_never_reach_the_index() {
        use crate::model::TimerKind;
        let policy = crate::policy::load(&crate::policy::default_dir()).expect("shipped policy");
        let created = r#""kind":"application_created","requisition_id":"req-1","region":"na""#;
        let triage = r#""kind":"stage_changed","to_stage":"triage""#;
        // The shipped policy: 2 days in `applied`, 3 in `triage`. The clock: 10 November.
        let events = [
            // applied on the 1st: due on the 3rd, live.
            event_at("o1", "old", "ats", "2026-11-01T00:00:00Z", created),
            // applied on the 1st, in triage an hour later: the applied deadline is moot, the
            // triage one due on the 4th at 01:00.
            event_at("m1", "moved", "ats", "2026-11-01T00:00:00Z", created),
            event_at(
                "m2",
                "moved",
                "screening_vendor",
                "2026-11-01T01:00:00Z",
                triage,
            ),
            // applied on the 7th at 18:00: due on the 9th at 18:00, by the clock but not yet
            // by the log, which this batch has read up to the 9th at noon.
            event_at("p1", "pending", "ats", "2026-11-07T18:00:00Z", created),
            // applied on the 9th at noon: due on the 11th, later than the clock.
            event_at("f1", "fresh", "ats", "2026-11-09T12:00:00Z", created),
            // In `fresh`'s partition, applied an hour before it: its deadline is that
            // partition's first.
            event_at("l1", "late", "ats", "2026-11-09T11:00:00Z", created),
        ];
        let time = |s: &str| Timestamp::parse_rfc3339(s).expect("a time");
        let codec = Codec::embedded().expect("the embedded codec");
        let recs = records(&events, &codec);
        let mut b = bench_at(1, &policy, time("2026-11-10T00:00:00Z"));
        let mut out = Outbox::default();
        let (mut f, fired) = fold_then_fire(&mut b, &recs, &mut out);
        assert_eq!(f.counts.applied, 6, "{:?}", f.counts);

        let topics = Topics::new("");
        let sent = |out: &Outbox| -> BTreeSet<(String, String, Timestamp)> {
            out.contents()
                .iter()
                .map(|r| {
                    assert_eq!(r.0, topics.events, "a deadline goes to the event log");
                    let e: Event = codec.decode_local(&r.3).expect("a deadline event");
                    let Some(due) = fold::timers::named(&e) else {
                        panic!("not a deadline: {e:?}");
                    };
                    let what = match due.timer {
                        TimerKind::StageDwell => format!("dwell in {}", due.subject),
                        other => other.as_str().to_owned(),
                    };
                    (e.candidate_id, what, due.at)
                })
                .collect()
        };
        let expected: BTreeSet<(String, String, Timestamp)> = [
            ("old", "dwell in applied", "2026-11-03T00:00:00Z"),
            ("moved", "dwell in triage", "2026-11-04T01:00:00Z"),
            // The move to triage came from the vendor: a command to the ATS, whose 15-minute
            // write-back SLA passed without an ack.
            ("moved", "writeback_sla", "2026-11-01T01:15:00Z"),
        ]
        .iter()
        .map(|(c, s, at)| ((*c).to_owned(), (*s).to_owned(), time(at)))
        .collect();
        assert_eq!(sent(&out), expected);
        assert_eq!((fired.sent, fired.done.len()), (3, 0));

        // What the commit writes to the index: the deadlines not yet due, alone.
        let kept: BTreeSet<(&str, &str, Timestamp)> = f
            .scheduled
            .iter()
            .map(|e| (e.candidate_id.as_str(), &*e.due.subject, e.due.at))
            .collect();
        let (pending_due, fresh_due) = (time("2026-11-09T18:00:00Z"), time("2026-11-11T12:00:00Z"));
        let expected_kept = [
            ("pending", "applied", pending_due),
            ("fresh", "applied", fresh_due),
            ("late", "applied", time("2026-11-11T11:00:00Z")),
        ];
        assert_eq!(kept, expected_kept.into_iter().collect());
        // Nothing of a partition is read again before its first entry is due.
        let first_due = |scheduled: &[index::Entry], p: i32| {
            scheduled
                .iter()
                .filter(|e| e.partition == p)
                .map(|e| e.due.at)
                .min()
        };
        for e in &f.scheduled {
            let p = e.partition;
            assert_eq!(b.a.partitions[&p].timers_from, first_due(&f.scheduled, p));
        }
        let stored = std::mem::take(&mut f.scheduled);

        // A next batch's deadline due before any other still moves its partition's next read
        // forward, though that partition is not read now (its log is at the 7th).
        let next = [event_at(
            "n1",
            "next",
            "ats",
            "2026-11-07T00:00:00Z",
            created,
        )];
        let recs: Vec<OwnedRecord> = records(&next, &codec)
            .into_iter()
            .map(|mut r| {
                r.offset += 10;
                r
            })
            .collect();
        let (f, fired) = fold_then_fire(&mut b, &recs, &mut Outbox::default());
        assert_eq!(fired.sent, 0);
        let p = f.scheduled[0].partition;
        let next_due = time("2026-11-09T00:00:00Z");
        assert_eq!(b.a.partitions[&p].timers_from, Some(next_due));

        // The first batch's entries in the index, and a batch that reads no event: by the
        // clock alone, `pending`'s deadline is due; `fresh`'s is not.
        b.store
            .commit(Commit {
                states: EncodedStates::default(),
                offsets: vec![],
                dirty: vec![],
                snapshot_rounds: vec![],
                timers: stored,
                timers_done: vec![],
            })
            .expect("the index written");
        b.store.settle().expect("written");
        let mut out = Outbox::default();
        let fired = b
            .folder
            .fire_timers(&mut b.a, &mut vec![], &BTreeMap::new(), &mut out, &b.store)
            .expect("fires");
        let pending = (
            "pending".to_owned(),
            "dwell in applied".to_owned(),
            pending_due,
        );
        assert_eq!(sent(&out), [pending].into_iter().collect());
        assert_eq!((fired.sent, fired.done.len()), (1, 1));
    }
}
