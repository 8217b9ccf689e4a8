//! Wires the stages into the live processor and owns its lifecycle: start-up checks, the
//! batch loop, shutdown and drain. Reads as the data flow:
//! ingest (poll a batch) → codec (decode) → fold → derive → publish (one transaction with the
//! input offsets) → project (sled, after the commit). Batches overlap by one step: batch N+1
//! is decoded and folded while batch N's commit is in flight ([`batch`] says what keeps that
//! exactly equivalent to folding one batch after the other).
//!
//! The loop runs on its own OS thread: every transactional call blocks, and none may run on the
//! async runtime. The async side (signals, health endpoints) talks to it through atomics and
//! the [`Metrics`] instruments.

mod batch;
mod outputs;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use serde::Serialize;

use crate::codec::Codec;
use crate::config::Config;
use crate::ingest::placement::Placement;
use crate::ingest::{self, lock, Admission, Assignment, IngestContext, RestoreEnv};
use crate::metrics::{Metrics, Tally};
use crate::policy::Policy;
use crate::project::{self, Store};
use crate::publish::Publisher;
use crate::topics::Topics;

pub use batch::Counts;
pub use outputs::ATTEMPT_HEADER;

/// How the processor should run beyond its configuration.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop (exit 0) after this long without a record, once partitions are assigned.
    pub exit_when_idle: Option<Duration>,
    /// The cluster is librdkafka's in-process mock (the demo's embedded default). It answers no
    /// `DescribeConfigs`, so the start-up check leaves the snapshot topic's `cleanup.policy`
    /// unchecked instead of waiting for the request to time out.
    pub mock_cluster: bool,
}

/// What the outside world can see of a running processor.
#[derive(Debug, Default)]
pub struct Status {
    /// Set by a signal handler (or a test): finish the batch, flush, leave the group. Shared
    /// with restores, which stop early on it (what they folded is not written; the next start
    /// restores again).
    pub shutdown: Arc<AtomicBool>,
    /// Partitions assigned and restored, producer ready.
    pub ready: AtomicBool,
    /// Events folded by restores so far (restore progress).
    pub restored_events: Arc<std::sync::atomic::AtomicU64>,
    /// The run's instruments (`/metrics`, OTLP). One per run: the command-status gauge starts
    /// from the store at each run's start.
    pub metrics: Arc<Metrics>,
    /// Refusals of the credentials or of TLS, noted by the consumer's and the producer's
    /// contexts: while the cluster refuses the client, the processor is not ready.
    pub refusals: Arc<crate::topics::reach::Refusals>,
}

impl Status {
    /// A status whose metrics are `metrics` (e.g. with an OTLP exporter).
    pub fn with_metrics(metrics: Arc<Metrics>) -> Status {
        Status {
            shutdown: Arc::default(),
            ready: AtomicBool::new(false),
            restored_events: Arc::default(),
            metrics,
            refusals: Arc::default(),
        }
    }
}

/// Totals of a run, printed as one JSON line when the processor stops.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RunReport {
    pub counts: Counts,
    pub batches: u64,
    pub aborted_batches: u64,
    pub producer_recreated: u64,
    /// Consumers replaced after a group session lost in an outage (`ingest::collect`).
    pub rejoined: u64,
    pub restored_events: u64,
    pub store_rebuilt: Option<String>,
    /// `deadline_reached` events the timers wrote into the log (committed batches).
    pub timers_fired: u64,
    /// Candidate states dropped from memory to stay within `max_candidates_in_memory`.
    pub evicted_candidates: u64,
}

/// After a rolled-back batch: the commit may have happened after all (a timed-out commit is
/// ambiguous, and recreating the producer completes or aborts it), so each partition is
/// restored against the group's committed offsets — folding, without emitting, whatever the
/// store is behind — and the consumer is rewound to where the restored state ends.
///
/// # Errors
/// When committed offsets cannot be read or a restore fails.
fn resync(
    consumer: &rdkafka::consumer::BaseConsumer<IngestContext>,
    a: &mut Assignment,
    env: &RestoreEnv,
) -> anyhow::Result<()> {
    let topic = &env.topics.events;
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in a.partitions.keys() {
        tpl.add_partition(topic, *p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(30))?;
    let wanted: Vec<(i32, ingest::restore::Committed)> = a
        .partitions
        .keys()
        .map(|p| (*p, ingest::restore::Committed::of(&committed, topic, *p)))
        .collect();
    for (p, restored) in ingest::restore::restore_all(env, &wanted) {
        let Some(ps) = a.partitions.get_mut(&p) else {
            continue;
        };
        let epoch = ps.epoch;
        *ps = match restored {
            // Shutting down: the loop stops before it uses this assignment again.
            Err(ingest::RestoreError::Interrupted { .. }) => return Ok(()),
            r => r?,
        };
        ps.epoch = epoch;
        consumer.seek(
            topic,
            p,
            rdkafka::Offset::Offset(ps.next),
            Duration::from_secs(10),
        )?;
    }
    Ok(())
}

/// The command-status gauge (pending commands among them) mirrors state: it starts from the
/// commands in the store; restores and committed batches move it from there.
///
/// # Errors
/// When the store cannot be read.
fn count_stored_commands(store: &dyn Store, metrics: &Metrics) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut t = Tally::default();
    let mut candidates = 0u64;
    for s in store.candidates()? {
        t.add_statuses_of(&s?);
        candidates += 1;
    }
    metrics.record_stored(&t);
    tracing::info!(
        candidates,
        ms = started.elapsed().as_millis() as u64,
        "write-back statuses counted from the store"
    );
    Ok(())
}

/// Runs the processor until shutdown (or idle, with [`RunOptions::exit_when_idle`]).
///
/// # Errors
/// Start-up failures (the cluster or a topic not there: [`crate::topics::check_for_run`];
/// store, producer, consumer), a restore that cannot complete (e.g. a retention gap, a log
/// recreated behind the store), a fatal consumer error (e.g. fenced by an instance started
/// with the same instance id), an operation the cluster's ACLs refuse, a refusal of the
/// credentials or of TLS that a fresh connection confirms a transaction timeout after it began
/// ([`crate::topics::reach::Refusals`]), a store write that fails after a commit.
pub fn run(
    config: &Config,
    policy: Arc<Policy>,
    status: Arc<Status>,
    opts: &RunOptions,
) -> anyhow::Result<RunReport> {
    // What needs no cluster first: a state directory that cannot be made is named at once.
    std::fs::create_dir_all(&config.state_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the state directory {} (HIRESTATE_STATE_DIR / state_dir): {e}",
            config.state_dir.display()
        )
    })?;
    let target =
        match crate::topics::check_for_run(config, &policy, !opts.mock_cluster, &status.shutdown) {
            Ok(target) => target,
            Err(e) => match e.downcast_ref::<crate::topics::reach::ReachError>() {
                // Nothing was started, so there is nothing to finish: a shutdown, not a failure.
                Some(stopped @ crate::topics::reach::ReachError::Stopped { .. }) => {
                    tracing::warn!("{stopped}");
                    return Ok(RunReport::default());
                }
                _ => return Err(e),
            },
        };
    let topics = Topics::new(&config.topic_prefix);
    let codec = Codec::configured(config)?;
    let dir = config.state_dir.join("projection");
    let source = format!("{} on cluster {}", topics.events, target.cluster);
    let partitions = target.event_partitions;
    let (mut store, mut rebuilt) =
        project::open_for_source(&dir, &source, partitions).map_err(|e| match e {
            project::StoreError::Repartitioned { built, now } => {
                anyhow::anyhow!(crate::topics::repartitioned(&topics.events, built, now))
            }
            e => e.into(),
        })?;
    // Counting the stored commands decodes every stored state: one that does not decode means
    // the store fails to verify, and it is rebuilt from Kafka like one that does not open.
    if let Err(e) = count_stored_commands(&store, &status.metrics) {
        match e.downcast_ref::<project::StoreError>() {
            Some(corrupt @ project::StoreError::Corrupt { .. }) => {
                let why = corrupt.to_string();
                drop(store);
                (store, rebuilt) = project::rebuild(&dir, &why)?;
                store.record_source(&source, partitions)?;
            }
            _ => return Err(e),
        }
    }
    if let Some(why) = &rebuilt {
        tracing::warn!(reason = %why, "state store rebuilt from Kafka");
    }
    let store: Arc<dyn Store + Sync> = Arc::new(store);
    // Registry calls are made with `Handle::block_on` from the fold and restore threads: only
    // a runtime with a worker of its own drives their I/O then (on a current-thread runtime
    // nothing does, and the first Confluent-framed record waited for ever).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("hirestate-registry")
        .enable_all()
        .build()?;
    runtime.block_on(codec.check_registry())?.log();
    let placement = Placement {
        partitioner: config.events_partitioner,
        partitions,
    };
    let admission = Admission::new(codec.clone(), runtime.handle().clone(), placement);
    let env = Arc::new(RestoreEnv {
        config: config.clone(),
        topics: topics.clone(),
        policy: policy.clone(),
        admission: admission.clone(),
        store: store.clone(),
        restored_events: status.restored_events.clone(),
        metrics: status.metrics.clone(),
        shutdown: status.shutdown.clone(),
        event_partitions: partitions,
    });
    let refusals = &status.refusals;
    let mut publisher = Publisher::noting_refusals(config, refusals.clone()).map_err(|e| {
        match crate::topics::reach::access_refusal(config, &e) {
            Some(refusal) => anyhow::anyhow!(refusal),
            None => e.into(),
        }
    })?;
    publisher.stop_waiting_on(status.shutdown.clone());
    let assignment = Arc::new(Mutex::new(Assignment::default()));
    let new_consumer = || {
        ingest::consumer(
            config,
            IngestContext::new(assignment.clone(), env.clone(), refusals.clone()),
        )
    };
    let mut consumer = new_consumer()?;
    let mut folder = batch::BatchFolder::new(
        &policy,
        admission,
        &topics,
        config,
        status.metrics.clone(),
        crate::timers::clock::from_spec(&config.clock).map_err(anyhow::Error::msg)?,
    );

    let mut report = RunReport {
        store_rebuilt: rebuilt,
        ..Default::default()
    };
    let mut last_record = Instant::now();
    let mut seen_generation = 0;
    let mut retry_wait = Duration::ZERO;
    let batch_wait = Duration::from_millis(config.batch_max_ms);
    // How long a refusal of the client may last before a fresh connection decides (`Refusals`).
    let cluster_wait = Duration::from_millis(config.transaction_timeout_ms);
    // The batch folded while the transaction before it committed (see `batch`).
    let mut ahead: Option<batch::Folded> = None;
    // The loop runs as a closure so that whatever it stops on can be checked against the
    // consumer's own state: once fenced, every consumer call fails ("Erroneous state"), and
    // the fatal error is what the operator needs to read.
    let looped = (|| -> anyhow::Result<()> {
        while !status.shutdown.load(Ordering::Relaxed) {
            // 1. ingest: collect a batch (rebalances and restores happen inside poll; no
            //    transaction is open here).
            let collecting = Instant::now();
            let mut records =
                ingest::collect(&consumer, &assignment, config.batch_max_records, batch_wait);
            let collected = collecting.elapsed();
            let mut a = lock(&assignment);
            if let Some(fatal) = a.fatal.take() {
                anyhow::bail!("{fatal}");
            }
            if let Some(refused) = refusals.confirmed(config, cluster_wait, &status.shutdown) {
                anyhow::bail!(refused);
            }
            if std::mem::take(&mut a.rejoin) {
                // Fenced after it lost its assignment (`ingest::collect`): the partitions are
                // gone already, and what was folded ahead of them goes too.
                if let Some(f) = ahead.take() {
                    f.discard(&mut a);
                }
                a.partitions.clear();
                drop(a);
                status.ready.store(false, Ordering::Relaxed);
                tracing::warn!(
                    group = %config.group_id,
                    instance = %config.instance_id,
                    "the consumer lost its assignment (its group session timed out, e.g. in a \
                     broker outage), and the coordinator then refused its rejoin as if another \
                     instance had its id (librdkafka #3437): rejoining with a new consumer"
                );
                consumer = new_consumer()?;
                report.rejoined += 1;
                continue;
            }
            if a.generation != seen_generation {
                // A (re)assignment just finished restoring: idle time counts from now.
                seen_generation = a.generation;
                last_record = Instant::now();
            }
            status
                .ready
                .store(!a.partitions.is_empty(), Ordering::Relaxed);
            if ahead.as_ref().is_some_and(|f| !f.still_assigned(&a)) {
                // Folded under an assignment that has changed since: dropped, and every partition
                // re-synced, so its records (and those just collected) come again.
                if let Some(f) = ahead.take() {
                    f.discard(&mut a);
                }
                tracing::info!("batch folded ahead of a rebalance discarded; rewinding");
                resync(&consumer, &mut a, &env)?;
                continue;
            }
            records.retain(|r| {
                let folded = ahead.as_ref().and_then(|f| f.next_of(r.partition));
                a.partitions.get(&r.partition).is_some_and(|p| {
                    p.epoch == r.epoch && r.offset >= p.next && folded.is_none_or(|n| r.offset >= n)
                })
            });
            let batch = match ahead.take() {
                Some(f) => f,
                None => {
                    if records.is_empty() && !folder.timers_due(&a, store.as_ref())? {
                        drop(a);
                        if let Some(idle) = opts.exit_when_idle {
                            if status.ready.load(Ordering::Relaxed) && last_record.elapsed() >= idle
                            {
                                break;
                            }
                        }
                        continue;
                    }
                    // 2–5. decode, fold, derive: outputs wait in the batch's outbox.
                    let mut f = folder.fold(&mut a, &records, store.as_ref())?;
                    f.collected_in(collected);
                    if !records.is_empty() {
                        // The pipeline starts: the next collect gives this batch's commit the
                        // records to fold while it is in flight.
                        ahead = Some(f);
                        continue;
                    }
                    f
                }
            };
            last_record = Instant::now();

            // 6–7. publish in one transaction (the records just collected fold meanwhile), then
            //      project.
            let group = consumer
                .group_metadata()
                .ok_or_else(|| anyhow::anyhow!("no consumer group metadata"))?;
            match folder.transact(
                &mut a,
                batch,
                &records,
                &mut publisher,
                &group,
                store.as_ref(),
            )? {
                (batch::BatchEnd::Committed, next) => {
                    // The cluster took the client: any refusal before was not the last word.
                    refusals.clear();
                    report.batches += 1;
                    retry_wait = Duration::ZERO;
                    // Folded from the records this pass collected.
                    ahead = next.filter(|f| !f.is_empty()).map(|mut f| {
                        f.collected_in(collected);
                        f
                    });
                }
                (batch::BatchEnd::RolledBack(why), _)
                    if status.shutdown.load(Ordering::Relaxed) =>
                {
                    // Stopping: no rewind, no retry (a broker that does not answer would hold
                    // the exit for as long as it is away). Nothing of the batch is visible and
                    // the store is behind it; the next start restores, as after a crash.
                    report.aborted_batches += 1;
                    tracing::warn!(reason = %why, "batch not committed before shutdown; the next start folds its records again");
                }
                (batch::BatchEnd::RolledBack(why), _) => {
                    report.aborted_batches += 1;
                    // Back off: what failed (a registry, a broker) may need a moment.
                    retry_wait =
                        (retry_wait * 2).clamp(Duration::from_millis(100), Duration::from_secs(10));
                    tracing::warn!(reason = %why, wait_ms = retry_wait.as_millis() as u64, "batch rolled back; rewinding");
                    std::thread::sleep(retry_wait);
                    resync(&consumer, &mut a, &env)?;
                    // The back-off and the rewind are not idleness: the batch's records come
                    // again, and `--exit-when-idle` must wait for them (it exited 0 with nothing
                    // committed when the first collect after a long back-off came back empty).
                    last_record = Instant::now();
                }
            }
        }
        Ok(())
    })();
    if let Err(e) = looped {
        return Err(match ingest::fatal_error(&consumer) {
            Some(fatal) if !format!("{e:#}").contains(&fatal) => {
                anyhow::anyhow!("{fatal} (the processor then stopped on: {e:#})")
            }
            _ => e,
        });
    }
    store.flush()?;
    report.counts = folder.counts.clone();
    report.timers_fired = folder.timers_fired;
    report.evicted_candidates = folder.evicted;
    report.producer_recreated = publisher.recreated();
    report.restored_events = env.restored_events.load(Ordering::Relaxed);
    consumer.unsubscribe();
    Ok(report)
}
