//! End-to-end throughput of the processor, each figure side by side with its ceiling in the same
//! run, so what this reports are RATIOS (absolute times on shared 2-core machines are noise).
//! `cargo bench --bench e2e` (or `make bench`); `KAFKA_BOOTSTRAP` names the broker, without it
//! only part 3 runs. `HIRESTATE_BENCH_EVENTS` (default 50 000) sets the stream size,
//! `HIRESTATE_BENCH_ROUNDS` (default 1) repeats part 1 and reports medians,
//! `HIRESTATE_BENCH_LOCAL_ROUNDS` (default 15) sets part 3's rounds, `HIRESTATE_KAFKA_*`
//! (and `HIRESTATE_KAFKA_CONSUMER_*` / `_PRODUCER_*`) pass librdkafka settings to the
//! processor's and the pipe's clients alike, read by the processor's own configuration, so a
//! tuning is tried on both sides at once; `HIRESTATE_FOLD_TASKS` sets the processor's fold and
//! restore tasks (default 0: one per core), `HIRESTATE_BATCH_MAX_RECORDS` the batch size of
//! all three parts (default: the processor's, 2 000), and `HIRESTATE_CLOCK` the processor's
//! timers' clock (default: frozen before the weeks-old generated events, so no deadline fires;
//! `wall` fires them all, as for a processor catching up).
//!
//! 1. **Live EOS path vs the raw transactional pipe.** The events (`generate::stream`, ~12 per
//!    candidate) are produced once, Avro single-object, to the event log of a fresh topic
//!    prefix. Then, each with its own consumer group and transactional id:
//!    - *pipe*: a `read_committed` group consumer that collects batches exactly as the
//!      processor does (up to `batch_max_records` or `batch_max_ms`), copies every record
//!      (key and value) to one output topic in a transaction through a `ThreadedProducer` with
//!      the processor's producer settings, adds the batch's next offsets with
//!      `send_offsets_to_transaction` and commits: no logic at all. It runs twice (see
//!      [`PipeMode`]): once leaving the wait for the deliveries to `commit_transaction`, which
//!      in rust-rdkafka 0.39 stalls ≥ 100 ms (its flush polls for the full 100 ms while
//!      anything is in flight), once waiting for the last delivery report itself before
//!      sending the offsets and committing, as `publish::Publisher` does. The second is the
//!      ceiling the target is checked against: a ceiling must not carry a stall that what it
//!      bounds avoids;
//!      A third run, [`PipeMode::Spread`], is a diagnostic: the ceiling's pipe writing as many
//!      records as the processor does, spread over five topics as the processor's outputs are,
//!      so what the topic layout alone costs shows beside what the processor's logic costs;
//!    - *processor*: the real thing, `app::run` in-process on its own thread.
//!
//!    **Timing method.** One watcher, identical for both, polls the group's committed offsets
//!    (an OffsetFetch every 5 ms from a client that never joins the group, `read_uncommitted`
//!    so it is not held back by a pending transaction). A group's committed offsets only move
//!    when a transaction carrying the batch's outputs commits, so "committed = end of the log"
//!    is exactly "the last output is committed". The figure is the *steady* rate: events
//!    committed between the first observed commit and the last, over that window. It leaves
//!    out start-up (producer `init_transactions`, group join, restore of empty partitions) and
//!    the idle-exit wait, which are not per-event costs; the run is stopped through
//!    `Status::shutdown` as soon as the watcher has seen the end, so the idle window is never
//!    waited for. The whole-run rate (start of the run to the last commit) is printed too.
//!
//!    **Where the time goes.** Each pipe run prints its own per-batch breakdown; the processor's
//!    comes from its metrics (`hirestate.batch.stage.duration`, means per committed batch:
//!    collect, fold, transaction, store), read from the run's `/metrics` text.
//!
//!    **CPU per event.** The watcher also reads, at the first observed commit and at the last,
//!    the CPU time (user + system, all threads, `/proc/<pid>/stat`) of this process and of the
//!    broker's — the pid in `HIRESTATE_BENCH_BROKER_PID`, else the test broker's pid file
//!    (`target/kafka/broker.pid`) when `KAFKA_BOOTSTRAP` names that broker. Divided by the
//!    window's events, it says what each side costs the machine per event. Both share its
//!    cores with the broker: were both sides bound by those cores, the throughput ratio would
//!    be the inverse ratio of these costs; a side that waits on the broker instead (the pipe,
//!    at about one core here) leaves the measured ratio above it. This process's figure
//!    includes the watcher's polling, the same on both sides.
//! 2. **Restore.** A second processor run of the SAME group (its committed offsets are at the
//!    end of the log) with a NEW empty state dir: every partition is restored by folding the
//!    whole log without emitting. `snapshot_every_batches` is set very high in both runs so no
//!    snapshot exists to shorten the restore — so part 1 measures the processor without its
//!    snapshot rounds. The time is the one restore itself logs per assignment ("partitions
//!    restored", `ms`: the wall time of restoring them, one task per partition on up to
//!    `fold_tasks` threads), captured by a tracing layer; rebalance callbacks run one after the
//!    other, so their sum is the restore's wall time. `RunReport.restored_events` gives the
//!    count. Time from the start of the run to `Status::ready` is printed as well.
//! 3. **In-process, no Kafka.** The same events, encoded once. *Processor path*: per event
//!    `Codec::decode_local` → `fold::apply` on an in-memory `HashMap` of `CandidateState`
//!    (a candidate seen for the first time is looked up in the store first, as the live batch
//!    does); per batch the touched states encoded (`EncodedStates::of`) and one
//!    `Store::commit` on a `SledStore` writing each touched candidate once, with the batch's
//!    offset and the dirty markers the live path writes between snapshot rounds (it writes
//!    behind, as live: sled applies batch N while batch N+1 folds, and commits that come
//!    while a write runs join the next one; the time waited for the last write is counted).
//!    The table gives the shares of encoding and of `Store::commit`. *Ceiling*: sled's own
//!    `apply_batch` of a batch's worth of inserts of 300-byte values over as many keys as
//!    there are candidates. Both in fresh temp dirs with the
//!    store's settings, alternating rounds (15 unless `HIRESTATE_BENCH_LOCAL_ROUNDS`); the ratio
//!    is the median of the rounds' ratios, each of a pair run back to back; the rates are
//!    medians. Freeing the states is not timed.

use std::collections::{BTreeSet, HashMap};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

use hirestate::app::{self, RunOptions, RunReport, Status};
use hirestate::codec::{Codec, Framing};
use hirestate::config::{Config, Overrides};
use hirestate::fold;
use hirestate::generate::{stream, Spec};
use hirestate::model::{CandidateState, Decision, Event};
use hirestate::policy::Policy;
use hirestate::project::{state_codec, Commit, EncodedStates, SledStore, Store};
use hirestate::topics::Topics;

const DEFAULT_EVENTS: usize = 50_000;
/// What the generator makes per candidate, on average.
const EVENTS_PER_CANDIDATE: usize = 12;
/// Rounds of part 3 (`HIRESTATE_BENCH_LOCAL_ROUNDS` sets it). Each round's two figures swing by
/// ±20 % from round to round here, and five rounds' medians gave ratios of 0.71 to 0.87 for one
/// build in one hour: 15 pairs, and the median of the pairs' ratios.
const IN_PROCESS_ROUNDS: usize = 15;
const RAW_VALUE_BYTES: usize = 300;
/// High enough that no snapshot round happens (see part 2).
const NO_SNAPSHOTS: u32 = 1_000_000;
/// A run that has not committed everything by then is broken, not slow.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// Safety net only: runs are stopped through `Status::shutdown`.
const SAFETY_IDLE: Duration = Duration::from_secs(60);
const WATCH_EVERY: Duration = Duration::from_millis(5);
/// Stream size when run by `cargo test` rather than `cargo bench`.
const SMOKE_EVENTS: usize = 2_000;

fn main() -> anyhow::Result<()> {
    init_tracing()?;
    // `cargo bench` passes `--bench`; `cargo test --all-targets` (so `make test`) does not:
    // there the harness runs once as a smoke test on a small stream, not as a measurement.
    let measuring = std::env::args().any(|a| a == "--bench");
    let default_events = if measuring {
        DEFAULT_EVENTS
    } else {
        SMOKE_EVENTS
    };
    let wanted = env_usize("HIRESTATE_BENCH_EVENTS", default_events)?;
    let rounds = env_usize("HIRESTATE_BENCH_ROUNDS", 1)?.max(1);
    let policy = Arc::new(
        hirestate::policy::load(&hirestate::policy::default_dir())
            .map_err(|e| anyhow::anyhow!("default policy: {e}"))?,
    );
    let spec = Spec {
        candidates: wanted.div_ceil(EVENTS_PER_CANDIDATE).max(1),
        ..Spec::default()
    };
    let events = stream(&spec, &policy);
    // The processor's own reading of its environment (parsed and checked as `hirestate run`
    // does, e.g. a batch of 0 records refused by name); of it the bench takes the fold tasks
    // and the batch size, its other settings are its own.
    let configured = Config::load(None, std::env::vars(), &Overrides::default())
        .map_err(|e| anyhow::anyhow!("bench configuration: {e}"))?;
    let defaults = Config {
        fold_tasks: configured.fold_tasks,
        batch_max_records: configured.batch_max_records,
        kafka: configured.kafka,
        kafka_consumer: configured.kafka_consumer,
        kafka_producer: configured.kafka_producer,
        ..Config::default()
    };
    let params = Params {
        events: events.len(),
        candidates: spec.candidates,
        batch: defaults.batch_max_records,
        batch_ms: defaults.batch_max_ms,
        fold_tasks: defaults.fold_tasks,
        rounds,
        // The generated events are weeks old: on the wall clock every SLA timer would fire and
        // the processor would write deadline events the raw pipe has no counterpart for. So
        // the clock is frozen before them, unless `HIRESTATE_CLOCK` asks for another (`wall`:
        // how the timers cost a processor catching up on old events).
        clock: match std::env::var("HIRESTATE_CLOCK") {
            Ok(_) => configured.clock.clone(),
            Err(_) => "fixed:1970-01-01T00:00:00Z".to_owned(),
        },
    };
    eprintln!(
        "e2e: {} events for {} candidates (seed {})",
        params.events, params.candidates, spec.seed
    );

    let in_process = in_process(&events, &policy, params.batch)?;
    let kafka = match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(b) if !b.trim().is_empty() => {
            Some(with_kafka(b.trim(), &events, &policy, &params, &defaults)?)
        }
        _ => {
            eprintln!(
                "e2e: KAFKA_BOOTSTRAP is not set: running part 3 (in-process) only; \
                 `make bench` starts the test broker"
            );
            None
        }
    };
    print_table(&params, kafka.as_ref(), &in_process);
    Ok(())
}

struct Params {
    events: usize,
    candidates: usize,
    batch: usize,
    batch_ms: u64,
    /// `Config::fold_tasks` of the processor runs (0: one per core).
    fold_tasks: usize,
    rounds: usize,
    /// The processor's timers' clock (`Config::clock`).
    clock: String,
}

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .replace('_', "")
            .parse()
            .with_context(|| format!("{name}={v:?} is not a whole number")),
        _ => Ok(default),
    }
}

fn unique(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("bench-e2e-{what}-{}-{nanos}", std::process::id())
}

fn rate(events: u64, d: Duration) -> f64 {
    events as f64 / d.as_secs_f64().max(1e-9)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// Restore timing: the restore's own per-partition log line, captured.

/// Milliseconds of each "partitions restored" line: the wall time of one assignment's restore.
static RESTORES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn restores() -> std::sync::MutexGuard<'static, Vec<u64>> {
    RESTORES.lock().unwrap_or_else(|p| p.into_inner())
}

struct RestoreTimes;

#[derive(Default)]
struct RestoreLine {
    message: String,
    ms: Option<u64>,
}

impl tracing::field::Visit for RestoreLine {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "ms" {
            self.ms = Some(value);
        }
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        if field.name() == "ms" {
            self.ms = u64::try_from(value).ok();
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for RestoreTimes {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut line = RestoreLine::default();
        event.record(&mut line);
        if line.message == "partitions restored" {
            if let Some(ms) = line.ms {
                restores().push(ms);
            }
        }
    }
}

/// Warnings and errors to stderr (a failing run says why; `RUST_LOG` shows more, e.g.
/// `RUST_LOG=rdkafka=debug` with `HIRESTATE_KAFKA_DEBUG=eos`); the restore lines to
/// [`RestoreTimes`]. Every other callsite stays disabled, so the hot path pays nothing.
fn init_tracing() -> anyhow::Result<()> {
    use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
    let shown = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .from_env_lossy();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(shown),
        )
        .with(RestoreTimes.with_filter(
            Targets::new().with_target("hirestate::ingest::restore", tracing::Level::INFO),
        ));
    tracing::subscriber::set_global_default(subscriber)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Part 3: in-process, no Kafka.

struct InProcess {
    rounds: usize,
    /// The median of the rounds' ratios (processor path / raw sled, each pair run back to
    /// back), and the least and the greatest of them.
    ratio: f64,
    spread: (f64, f64),
    /// Median events/s of decode + fold + project.
    processor: f64,
    /// Shares of the processor path's time spent encoding the touched states
    /// (`EncodedStates::of`) and in `Store::commit` and the final settle (median rounds).
    encode_share: f64,
    store_share: f64,
    /// Median values/s of raw sled `apply_batch`.
    raw_sled: f64,
    touched_per_batch: f64,
    /// Mean size of a stored state, as the store encodes it (`project::state_codec`).
    state_bytes: f64,
    /// The same states as JSON, for comparison (the store held JSON before).
    json_bytes: f64,
}

fn in_process(events: &[Event], policy: &Policy, batch: usize) -> anyhow::Result<InProcess> {
    let codec = Codec::embedded()?;
    let encoded = events
        .iter()
        .map(|e| codec.encode_local(e, Framing::SingleObject))
        .collect::<Result<Vec<_>, _>>()?;
    let keys = events
        .iter()
        .map(|e| e.candidate_id.as_str())
        .collect::<BTreeSet<_>>()
        .len();
    let rounds = env_usize("HIRESTATE_BENCH_LOCAL_ROUNDS", IN_PROCESS_ROUNDS)?.max(1);
    let (mut proc, mut raw, mut shares, mut encode_shares) = (vec![], vec![], vec![], vec![]);
    let mut ratios = vec![];
    let (mut touched, mut state_bytes, mut json_bytes) = (0.0, 0.0, 0.0);
    for round in 0..rounds {
        let r = raw_sled(events.len(), keys, batch, round as u64)?;
        raw.push(rate(events.len() as u64, r));
        let p = processor_path(&encoded, &codec, policy, batch)?;
        proc.push(rate(events.len() as u64, p.elapsed));
        ratios.push(proc[round] / raw[round]);
        let share = |d: Duration| d.as_secs_f64() / p.elapsed.as_secs_f64().max(1e-9);
        shares.push(share(p.store));
        encode_shares.push(share(p.encode));
        touched = p.touched as f64 / encoded.len().div_ceil(batch) as f64;
        state_bytes = p.state_bytes;
        json_bytes = p.json_bytes;
        eprintln!(
            "e2e part 3 round {}: raw sled {:.0} values/s, processor path {:.0} events/s",
            round + 1,
            raw[round],
            proc[round]
        );
    }
    let spread = (
        ratios.iter().copied().fold(f64::INFINITY, f64::min),
        ratios.iter().copied().fold(0.0, f64::max),
    );
    Ok(InProcess {
        rounds,
        ratio: median(ratios),
        spread,
        processor: median(proc),
        encode_share: median(encode_shares),
        store_share: median(shares),
        raw_sled: median(raw),
        touched_per_batch: touched,
        state_bytes,
        json_bytes,
    })
}

fn sled_db(dir: &Path) -> anyhow::Result<sled::Db> {
    // The store's own settings (project::SledStore::open).
    Ok(sled::Config::new()
        .path(dir)
        .flush_every_ms(Some(500))
        .open()?)
}

/// `n` inserts of 300-byte values in `apply_batch`es of `batch`, keys drawn over `keys`.
fn raw_sled(n: usize, keys: usize, batch: usize, seed: u64) -> anyhow::Result<Duration> {
    let dir = tempfile::tempdir()?;
    let db = sled_db(dir.path())?;
    let names: Vec<Vec<u8>> = (0..keys)
        .map(|i| format!("c/cand-{i:06}").into_bytes())
        .collect();
    let mut value = [0u8; RAW_VALUE_BYTES];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let mut b = sled::Batch::default();
        for _ in 0..batch.min(n - done) {
            // xorshift: a cheap spread over the key space, and values that differ.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            value[..8].copy_from_slice(&x.to_le_bytes());
            b.insert(&names[(x % keys as u64) as usize][..], &value[..]);
        }
        db.apply_batch(b)?;
        done += batch;
    }
    let elapsed = start.elapsed();
    drop(db);
    Ok(elapsed)
}

struct PathTimes {
    elapsed: Duration,
    encode: Duration,
    store: Duration,
    touched: usize,
    /// Mean size of a stored state at the end of the run: as stored, and as JSON.
    state_bytes: f64,
    json_bytes: f64,
}

fn processor_path(
    encoded: &[Vec<u8>],
    codec: &Codec,
    policy: &Policy,
    batch: usize,
) -> anyhow::Result<PathTimes> {
    const TOPIC: &str = "bench.hiring.events.v1";
    let dir = tempfile::tempdir()?;
    let store = SledStore::open(&dir.path().join("projection"))?;
    let mut states: HashMap<String, CandidateState> = HashMap::new();
    let (mut encode_time, mut store_time) = (Duration::ZERO, Duration::ZERO);
    let mut touched_total = 0;
    let start = Instant::now();
    for (i, chunk) in encoded.chunks(batch).enumerate() {
        let mut touched: BTreeSet<String> = BTreeSet::new();
        for bytes in chunk {
            let event: Event = codec.decode_local(bytes)?;
            // As `app::batch` does: one search for a candidate in memory, the key copied only
            // for one loaded from the store, and once per batch into `touched`.
            let state = match states.get_mut(&event.candidate_id) {
                Some(state) => state,
                None => {
                    let loaded = store.candidate(&event.candidate_id)?.unwrap_or_default();
                    states.entry(event.candidate_id.clone()).or_insert(loaded)
                }
            };
            let outcome = fold::apply(state, &event, policy);
            if outcome.decision != Decision::Duplicate
                && !touched.contains(event.candidate_id.as_str())
            {
                touched.insert(event.candidate_id.clone());
            }
            black_box(outcome);
        }
        let t = Instant::now();
        let encoded = EncodedStates::of(
            &touched
                .iter()
                .filter_map(|c| states.get(c))
                .collect::<Vec<_>>(),
        );
        encode_time += t.elapsed();
        let t = Instant::now();
        store.commit(Commit {
            states: encoded,
            offsets: vec![(TOPIC, 0, (i * batch + chunk.len()) as i64)],
            dirty: touched.iter().map(|c| (0, c.as_str())).collect(),
            snapshot_rounds: vec![],
            // No deadline index: what the live path schedules per batch is not measured here.
            ..Default::default()
        })?;
        store_time += t.elapsed();
        touched_total += touched.len();
    }
    // The last write lands before the clock stops (commits write behind, as live).
    let t = Instant::now();
    store.settle()?;
    store_time += t.elapsed();
    let elapsed = start.elapsed();
    // What one candidate write costs sled, in bytes (not timed).
    let (mut stored, mut json, mut buf) = (0, 0, Vec::new());
    for s in states.values() {
        buf.clear();
        state_codec::encode(s, &mut buf);
        stored += buf.len();
        json += serde_json::to_vec(s)?.len();
    }
    let per_state = |total: usize| total as f64 / states.len().max(1) as f64;
    let (state_bytes, json_bytes) = (per_state(stored), per_state(json));
    drop(states);
    drop(store);
    Ok(PathTimes {
        elapsed,
        encode: encode_time,
        store: store_time,
        touched: touched_total,
        state_bytes,
        json_bytes,
    })
}

// ---------------------------------------------------------------------------------------------
// Parts 1 and 2: against the broker.

struct Run {
    /// Events committed in the steady window, and the window.
    steady_events: u64,
    steady: Duration,
    /// Start of the run to the last commit.
    whole: Duration,
    /// CPU time spent in the steady window by this process and by the broker.
    cpu: CpuUse,
}

/// CPU seconds of this process (the side measured, plus the watcher both sides have) and of
/// the broker's, when its process is known: what a rate costs, since both share the machine.
#[derive(Debug, Clone, Copy, Default)]
struct CpuUse {
    process: Option<f64>,
    broker: Option<f64>,
}

impl CpuUse {
    /// CPU seconds so far of this process and of `broker`.
    fn now(broker: Option<u32>) -> CpuUse {
        CpuUse {
            process: cpu_seconds("self"),
            broker: broker.and_then(|pid| cpu_seconds(&pid.to_string())),
        }
    }

    fn since(self, start: CpuUse) -> CpuUse {
        let d = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        CpuUse {
            process: d(self.process, start.process),
            broker: d(self.broker, start.broker),
        }
    }
}

/// User + system CPU seconds of process `pid` (`self` for this one), all its threads, from
/// `/proc/<pid>/stat`; `None` where there is no such file (not Linux, a broker elsewhere).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name (which may hold spaces), fields 3… of proc(5): utime is the 14th
    // field and stime the 15th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf reads a constant of the system and has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| (utime + stime) as f64 / ticks as f64)
}

/// The broker's process on this machine, when known: `HIRESTATE_BENCH_BROKER_PID`, else the
/// test broker's (`deploy/kafka/kafka.sh`, which `make bench` uses: its pid file) if that
/// process is a running Kafka and `bootstrap` names its advertised listener.
///
/// # Errors
/// `HIRESTATE_BENCH_BROKER_PID` set to something that is not the id of a running process (a
/// wrong pid would only print "broker's not known" far down the table).
fn broker_pid(bootstrap: &str) -> anyhow::Result<Option<u32>> {
    const VAR: &str = "HIRESTATE_BENCH_BROKER_PID";
    match std::env::var(VAR) {
        Ok(v) if !v.trim().is_empty() => {
            let pid: u32 = v
                .trim()
                .parse()
                .with_context(|| format!("{VAR}={v:?}: not a process id"))?;
            if cpu_seconds(&pid.to_string()).is_none() {
                bail!("{VAR}={pid}: no such process here (/proc/{pid}/stat unreadable)");
            }
            Ok(Some(pid))
        }
        _ => Ok(test_broker_pid(bootstrap)),
    }
}

/// The test broker's pid, if it runs and `bootstrap` names its advertised listener.
fn test_broker_pid(bootstrap: &str) -> Option<u32> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/kafka");
    let properties = std::fs::read_to_string(dir.join("server.properties")).ok()?;
    let advertised = properties
        .lines()
        .find_map(|l| l.trim().strip_prefix("advertised.listeners="))?;
    let listener = advertised.split("://").nth(1)?.split(',').next()?;
    if !bootstrap.split(',').any(|b| b.trim() == listener) {
        return None;
    }
    let pid: u32 = std::fs::read_to_string(dir.join("broker.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    String::from_utf8_lossy(&cmdline)
        .contains("kafka.Kafka")
        .then_some(pid)
}

struct KafkaFigures {
    bootstrap: String,
    overrides: String,
    partitions: i32,
    logged: u64,
    /// Per mode ([`PipeMode::ALL`] order): the runs, and the last round's breakdown.
    pipes: Vec<(PipeMode, Vec<Run>, PipeTimes)>,
    processor: Vec<Run>,
    report: RunReport,
    /// The last round's processor stages, per batch ([`stages_per_batch`]).
    stages: String,
    restore_events: u64,
    restore_logged: Duration,
    restore_to_ready: Duration,
}

fn with_kafka(
    bootstrap: &str,
    events: &[Event],
    policy: &Arc<Policy>,
    params: &Params,
    // The librdkafka passthrough settings, read from the environment as the processor reads
    // them (all clients, consumers only, producers only).
    passthrough: &Config,
) -> anyhow::Result<KafkaFigures> {
    let prefix = unique("t");
    let scratch = tempfile::tempdir()?;
    let base = Config {
        bootstrap: bootstrap.to_owned(),
        topic_prefix: prefix.clone(),
        group_id: unique("g"),
        instance_id: "bench-0".to_owned(),
        state_dir: scratch.path().join("unused"),
        snapshot_every_batches: NO_SNAPSHOTS,
        clock: params.clock.clone(),
        kafka: passthrough.kafka.clone(),
        kafka_consumer: passthrough.kafka_consumer.clone(),
        kafka_producer: passthrough.kafka_producer.clone(),
        fold_tasks: params.fold_tasks,
        batch_max_records: params.batch,
        ..Config::default()
    };
    let topics = Topics::new(&prefix);
    let pipe_out = format!("{prefix}.bench.pipe.out.v1");
    let spread_out: Vec<String> = (0..SPREAD_TOPICS)
        .map(|i| format!("{prefix}.bench.pipe.spread{i}.v1"))
        .collect();

    let mut jsonl = Vec::new();
    for e in events {
        serde_json::to_writer(&mut jsonl, e)?;
        jsonl.push(b'\n');
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let ensured = hirestate::topics::ensure(&base, policy).await?;
        if !ensured.problems.is_empty() {
            bail!("topics ensure: {}", ensured.problems.join("; "));
        }
        for t in std::iter::once(&pipe_out).chain(&spread_out) {
            create_topic(&base, t).await?;
        }
        let started = Instant::now();
        let produced = hirestate::tools::produce::produce(
            &base,
            &jsonl[..],
            &topics.events,
            Framing::SingleObject,
            &mut std::io::stderr(),
        )
        .await?;
        eprintln!(
            "e2e: produced {} events to {} in {:.1}s ({} bad lines)",
            produced.produced,
            topics.events,
            started.elapsed().as_secs_f64(),
            produced.bad_lines
        );
        anyhow::Ok(())
    })?;
    drop(rt);
    let logged = log_end(&base, &topics.events)?;

    let mut pipes: Vec<(PipeMode, Vec<Run>, PipeTimes)> = PipeMode::ALL
        .iter()
        .map(|m| (*m, Vec::new(), PipeTimes::default()))
        .collect();
    let mut processor = Vec::new();
    let mut last = None;
    let mut stages = String::new();
    for round in 0..params.rounds {
        for (mode, runs, last_times) in pipes.iter_mut() {
            let outputs = match mode {
                PipeMode::Spread => spread_out.clone(),
                _ => vec![pipe_out.clone()],
            };
            let (p, times) = run_pipe(&base, &topics.events, &outputs, logged, round, *mode)?;
            eprintln!(
                "e2e part 1 round {}: pipe ({}) {:.0} events/s steady; {}",
                round + 1,
                mode.label(),
                rate(p.steady_events, p.steady),
                times.per_batch()
            );
            runs.push(p);
            *last_times = times;
        }
        let config = Config {
            group_id: format!("{}-r{round}", base.group_id),
            state_dir: scratch.path().join(format!("state-r{round}")),
            ..base.clone()
        };
        let (r, report, metrics) = run_processor(&config, policy, logged)?;
        stages = stages_per_batch(&metrics);
        eprintln!(
            "e2e part 1 round {}: processor {:.0} events/s steady ({} consumed, {} batches; {stages})",
            round + 1,
            rate(r.steady_events, r.steady),
            report.counts.consumed,
            report.batches
        );
        processor.push(r);
        last = Some((config, report));
    }
    let Some((config, report)) = last else {
        bail!("no round ran");
    };

    // Part 2: the same group, a new empty state dir.
    let config = Config {
        state_dir: scratch.path().join("state-restore"),
        ..config
    };
    let (restore_events, restore_logged, restore_to_ready) = run_restore(&config, policy)?;
    if restore_events != logged {
        eprintln!("e2e: WARNING restore folded {restore_events} events, the log holds {logged}");
    }
    Ok(KafkaFigures {
        bootstrap: bootstrap.to_owned(),
        overrides: format!(
            "{:?}, consumers {:?}, producers {:?}",
            base.kafka, base.kafka_consumer, base.kafka_producer
        ),
        partitions: base.partitions,
        logged,
        pipes,
        processor,
        report,
        stages,
        restore_events,
        restore_logged,
        restore_to_ready,
    })
}

async fn create_topic(config: &Config, name: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = config.client_config().create()?;
    let topic = NewTopic::new(
        name,
        config.partitions,
        TopicReplication::Fixed(config.replication_factor),
    );
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in admin.create_topics([&topic], &opts).await? {
        r.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
    }
    Ok(())
}

/// The sum of the high watermarks of `topic`: what "everything committed" means.
fn log_end(config: &Config, topic: &str) -> anyhow::Result<u64> {
    let c: BaseConsumer = config.consumer_config().create()?;
    let mut total = 0;
    for p in 0..config.partitions {
        let (_, high) = c.fetch_watermarks(topic, p, Duration::from_secs(30))?;
        total += high;
    }
    Ok(u64::try_from(total)?)
}

/// Polls `group`'s committed offsets on `topic` until they add up to `target`, or `gave_up`.
struct Watcher {
    consumer: BaseConsumer,
    tpl: TopicPartitionList,
    broker: Option<u32>,
}

impl Watcher {
    fn new(config: &Config, group: &str, topic: &str) -> anyhow::Result<Watcher> {
        let consumer: BaseConsumer = config
            .consumer_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            // No require_stable: a pending transaction must not hold the answer back.
            .set("isolation.level", "read_uncommitted")
            .create()?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..config.partitions {
            tpl.add_partition(topic, p);
        }
        let w = Watcher {
            consumer,
            tpl,
            broker: broker_pid(&config.bootstrap)?,
        };
        // Finds the coordinator before the clock starts. On a broker that has just started,
        // the offsets topic is created by this first request and its coordinator is still
        // loading: librdkafka answers that at once, without retrying it.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match w.committed_offsets() {
                Err(KafkaError::MetadataFetch(
                    RDKafkaErrorCode::NotCoordinator
                    | RDKafkaErrorCode::CoordinatorLoadInProgress
                    | RDKafkaErrorCode::CoordinatorNotAvailable,
                )) if Instant::now() < deadline => thread::sleep(Duration::from_millis(500)),
                other => break other.map(drop)?,
            }
        }
        Ok(w)
    }

    fn committed_offsets(&self) -> Result<TopicPartitionList, KafkaError> {
        self.consumer
            .committed_offsets(self.tpl.clone(), Duration::from_secs(10))
    }

    fn committed(&self) -> anyhow::Result<u64> {
        let c = self.committed_offsets()?;
        Ok(c.elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => u64::try_from(o).ok(),
                _ => None,
            })
            .sum())
    }

    /// Watches from `t0` until `target` is committed; `gave_up` says the run ended on its own.
    fn watch(&self, t0: Instant, target: u64, gave_up: impl Fn() -> bool) -> anyhow::Result<Run> {
        let mut first: Option<(Duration, u64, CpuUse)> = None;
        loop {
            let sum = self.committed()?;
            let now = t0.elapsed();
            if sum > 0 && first.is_none() {
                first = Some((now, sum, CpuUse::now(self.broker)));
            }
            if sum >= target {
                let cpu = CpuUse::now(self.broker);
                let (at, n, cpu0) = first.unwrap_or((now, sum, cpu));
                return Ok(Run {
                    steady_events: target.saturating_sub(n),
                    steady: now.saturating_sub(at),
                    whole: now,
                    cpu: cpu.since(cpu0),
                });
            }
            if gave_up() {
                bail!("the run ended with {sum} of {target} offsets committed");
            }
            if now > RUN_TIMEOUT {
                bail!("only {sum} of {target} offsets committed after {RUN_TIMEOUT:?}");
            }
            thread::sleep(WATCH_EVERY);
        }
    }
}

/// `app::run` on a thread named `name` (so `perf report --comm <name>` isolates it).
fn spawn_processor(
    name: &str,
    config: &Config,
    policy: &Arc<Policy>,
    status: &Arc<Status>,
) -> std::io::Result<thread::JoinHandle<anyhow::Result<RunReport>>> {
    let (config, policy, status) = (config.clone(), policy.clone(), status.clone());
    thread::Builder::new().name(name.to_owned()).spawn(move || {
        app::run(
            &config,
            policy,
            status,
            &RunOptions {
                exit_when_idle: Some(SAFETY_IDLE),
                mock_cluster: false,
            },
        )
    })
}

/// Returns the run, its report and its metrics as `/metrics` renders them.
fn run_processor(
    config: &Config,
    policy: &Arc<Policy>,
    target: u64,
) -> anyhow::Result<(Run, RunReport, String)> {
    let watcher = Watcher::new(
        config,
        &config.group_id,
        &Topics::new(&config.topic_prefix).events,
    )?;
    let status = Arc::new(Status::default());
    let t0 = Instant::now();
    let handle = spawn_processor("processor", config, policy, &status)?;
    let watched = watcher.watch(t0, target, || handle.is_finished());
    status.shutdown.store(true, Ordering::Relaxed);
    let report = handle
        .join()
        .map_err(|_| anyhow::anyhow!("the processor thread panicked"))?
        .context("processor run")?;
    Ok((watched?, report, status.metrics.render()))
}

/// The processor's `hirestate.batch.stage.duration` means from its rendered metrics: where a
/// committed batch's time went (the fold runs beside the batch before's transaction, so the
/// longer of the two is what bounds the processor).
fn stages_per_batch(metrics: &str) -> String {
    let of = |what: &str, stage: &str| -> f64 {
        let series = format!(
            "hirestate_batch_stage_duration_seconds_{what}{{hirestate_batch_stage=\"{stage}\"}} "
        );
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let means: Vec<String> = hirestate::metrics::Stage::ALL
        .iter()
        .map(|stage| {
            let (sum, n) = (of("sum", stage.as_str()), of("count", stage.as_str()));
            format!("{} {:.1} ms", stage.as_str(), sum * 1e3 / n.max(1.0))
        })
        .collect();
    format!("per batch: {}", means.join(", "))
}

/// Returns (restored events, restore time as logged, start to ready).
fn run_restore(config: &Config, policy: &Arc<Policy>) -> anyhow::Result<(u64, Duration, Duration)> {
    restores().clear();
    let status = Arc::new(Status::default());
    let t0 = Instant::now();
    let handle = spawn_processor("restore", config, policy, &status)?;
    while !status.ready.load(Ordering::Relaxed) && !handle.is_finished() {
        if t0.elapsed() > RUN_TIMEOUT {
            status.shutdown.store(true, Ordering::Relaxed);
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    let to_ready = t0.elapsed();
    status.shutdown.store(true, Ordering::Relaxed);
    let report = handle
        .join()
        .map_err(|_| anyhow::anyhow!("the restore run's thread panicked"))?
        .context("restore run")?;
    let logged: u64 = restores().iter().sum();
    Ok((
        report.restored_events,
        Duration::from_millis(logged),
        to_ready,
    ))
}

// The pipe: the ceiling of part 1.

/// How the pipe ends a transaction.
#[derive(Debug, Clone, Copy, PartialEq)]
enum PipeMode {
    /// `send_offsets_to_transaction` then `commit_transaction`, which in rust-rdkafka 0.39 first
    /// flushes: `rd_kafka_flush(0)`, and while deliveries are outstanding `poll(100 ms)`, which
    /// always waits the full 100 ms.
    Undrained,
    /// The same after waiting (sleeps of 0.2 ms) until `in_flight_count()` is 0, so that flush
    /// returns at once, as `publish::Publisher::commit` does: the ceiling.
    Drained,
    /// A diagnostic, not the ceiling: [`PipeMode::Drained`] writing as many records as the
    /// processor writes (3 of every 7 input records, by offset; the processor writes ~0.42 an
    /// event) spread over five topics of the event log's partition count, as the processor's
    /// outputs are spread over three command topics, rejections and alerts. librdkafka sends
    /// one produce request per partition (librdkafka #1700), so a transaction then asks the
    /// broker for five requests and five markers where the ceiling's asks for one: what the
    /// topic layout DESIGN.md gives costs, apart from any logic.
    Spread,
}

/// How many topics [`PipeMode::Spread`] writes.
const SPREAD_TOPICS: usize = 5;

impl PipeMode {
    const ALL: [PipeMode; 3] = [PipeMode::Undrained, PipeMode::Drained, PipeMode::Spread];
    fn label(self) -> &'static str {
        match self {
            PipeMode::Undrained => "commit_transaction waits for the deliveries",
            PipeMode::Drained => "deliveries drained before commit",
            PipeMode::Spread => "drained, 3 records of 7 copied, spread over 5 topics",
        }
    }
    fn short(self) -> &'static str {
        match self {
            PipeMode::Undrained => "undrained",
            PipeMode::Drained => "drained",
            PipeMode::Spread => "spread",
        }
    }
    /// Whether the record at `offset` is copied, and to which of `outputs`.
    fn output(self, outputs: &[String], offset: i64) -> Option<&str> {
        match self {
            PipeMode::Spread => ((offset * 3) % 7 < 3)
                .then(|| outputs[usize::try_from(offset).unwrap_or(0) % outputs.len()].as_str()),
            _ => outputs.first().map(String::as_str),
        }
    }
}

/// Where the pipe's time goes, summed over its batches (the first batch's collect includes the
/// group join).
#[derive(Debug, Default, Clone)]
struct PipeTimes {
    batches: u32,
    collect: Duration,
    produce: Duration,
    drain: Duration,
    offsets: Duration,
    commit: Duration,
}

impl PipeTimes {
    fn per_batch(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3 / f64::from(self.batches.max(1));
        format!(
            "{} batches, per batch: collect {:.1} ms, produce {:.1} ms, drain {:.1} ms, \
             send_offsets_to_transaction {:.1} ms, commit_transaction {:.1} ms",
            self.batches,
            ms(self.collect),
            ms(self.produce),
            ms(self.drain),
            ms(self.offsets),
            ms(self.commit)
        )
    }
}

struct Copied {
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

fn run_pipe(
    base: &Config,
    input: &str,
    outputs: &[String],
    target: u64,
    round: usize,
    mode: PipeMode,
) -> anyhow::Result<(Run, PipeTimes)> {
    let group = format!("{}-pipe-{}-r{round}", base.group_id, mode.short());
    let watcher = Watcher::new(base, &group, input)?;
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let handle = {
        let (base, input, outputs, stop) = (
            base.clone(),
            input.to_owned(),
            outputs.to_vec(),
            stop.clone(),
        );
        thread::Builder::new()
            .name("pipe".to_owned())
            .spawn(move || pipe(&base, &group, &input, &outputs, target, &stop, mode))?
    };
    let watched = watcher.watch(t0, target, || handle.is_finished());
    stop.store(true, Ordering::Relaxed);
    let times = handle
        .join()
        .map_err(|_| anyhow::anyhow!("the pipe thread panicked"))??;
    Ok((watched?, times))
}

/// Consume → produce in one transaction per batch, batches closed as the processor closes
/// them, with the processor's producer settings (`publish::create`).
fn pipe(
    base: &Config,
    group: &str,
    input: &str,
    outputs: &[String],
    target: u64,
    stop: &AtomicBool,
    mode: PipeMode,
) -> anyhow::Result<PipeTimes> {
    let timeout = Duration::from_millis(base.transaction_timeout_ms);
    let producer: ThreadedProducer<DefaultProducerContext> = base
        .producer_config()
        .set("transactional.id", format!("{group}-tx"))
        .set("enable.idempotence", "true")
        .set(
            "transaction.timeout.ms",
            base.transaction_timeout_ms.to_string(),
        )
        .set("linger.ms", "5")
        .set("compression.type", "zstd")
        .create()?;
    producer.init_transactions(Duration::from_secs(60))?;
    let consumer: BaseConsumer = base
        .consumer_config()
        .set("group.id", group)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "range")
        .create()?;
    consumer.subscribe(&[input])?;

    let wait = Duration::from_millis(base.batch_max_ms);
    let mut times = PipeTimes::default();
    let mut copied = 0u64;
    let mut records: Vec<Copied> = Vec::with_capacity(base.batch_max_records);
    let mut next: HashMap<i32, i64> = HashMap::new();
    while copied < target && !stop.load(Ordering::Relaxed) {
        records.clear();
        next.clear();
        let started = Instant::now();
        let deadline = started + wait;
        while records.len() < base.batch_max_records {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match consumer.poll(left) {
                Some(Ok(m)) => {
                    next.insert(m.partition(), m.offset() + 1);
                    records.push(Copied {
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                    });
                }
                Some(Err(e)) => eprintln!("e2e pipe: consumer error: {e}"),
                None => break,
            }
        }
        if records.is_empty() {
            continue;
        }
        let collected = Instant::now();
        times.collect += collected.duration_since(started);
        producer.begin_transaction()?;
        for r in &records {
            let Some(output) = mode.output(outputs, r.offset) else {
                continue;
            };
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(output);
            if let Some(k) = &r.key {
                record = record.key(&k[..]);
            }
            if let Some(v) = &r.value {
                record = record.payload(&v[..]);
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        thread::sleep(Duration::from_millis(2));
                    }
                    Err((e, _)) => return Err(e.into()),
                }
            }
        }
        let enqueued = Instant::now();
        times.produce += enqueued.duration_since(collected);
        if mode != PipeMode::Undrained {
            // The background thread serves delivery reports as they come: wait for the last.
            let deadline = enqueued + timeout;
            while producer.in_flight_count() > 0 {
                if Instant::now() > deadline {
                    bail!("deliveries still in flight after {timeout:?}");
                }
                thread::sleep(Duration::from_micros(200));
            }
        }
        let sent = Instant::now();
        times.drain += sent.duration_since(enqueued);
        let mut offsets = TopicPartitionList::new();
        for (p, n) in &next {
            offsets.add_partition_offset(input, *p, Offset::Offset(*n))?;
        }
        let meta = consumer
            .group_metadata()
            .context("no consumer group metadata")?;
        producer.send_offsets_to_transaction(&offsets, &meta, timeout)?;
        let offsets_sent = Instant::now();
        times.offsets += offsets_sent.duration_since(sent);
        producer.commit_transaction(timeout)?;
        times.commit += offsets_sent.elapsed();
        times.batches += 1;
        copied += records.len() as u64;
    }
    consumer.unsubscribe();
    Ok(times)
}

// ---------------------------------------------------------------------------------------------
// The report.

fn verdict(ratio: f64, target: f64) -> &'static str {
    if ratio >= target {
        "meets target"
    } else {
        "BELOW target"
    }
}

fn print_table(p: &Params, kafka: Option<&KafkaFigures>, local: &InProcess) {
    println!();
    println!("hirestate e2e benchmark (ratios are the result; absolute rates are this machine's)");
    println!(
        "parameters: {} events, {} candidates, batch_max_records {}, batch_max_ms {}, \
         snapshot_every_batches {NO_SNAPSHOTS} (no snapshots), fold_tasks {} \
         (HIRESTATE_FOLD_TASKS; 0: one per core), Avro single-object input, timers' clock {} \
         (HIRESTATE_CLOCK)",
        p.events, p.candidates, p.batch, p.batch_ms, p.fold_tasks, p.clock
    );
    match kafka {
        Some(k) => println!(
            "broker: {} ({} partitions; {} records in the log); part 1 rounds: {} (medians); \
             librdkafka overrides: {}",
            k.bootstrap, k.partitions, k.logged, p.rounds, k.overrides
        ),
        None => println!("broker: none (KAFKA_BOOTSTRAP unset): parts 1 and 2 skipped"),
    }
    println!();
    println!("| # | measurement | events/s | ratio | target |");
    println!("| --- | --- | ---: | ---: | --- |");
    if let Some(k) = kafka {
        let steady = |runs: &[Run]| {
            median(
                runs.iter()
                    .map(|r| rate(r.steady_events, r.steady))
                    .collect(),
            )
        };
        let whole = |runs: &[Run]| median(runs.iter().map(|r| rate(k.logged, r.whole)).collect());
        let proc = steady(&k.processor);
        let proc_w = whole(&k.processor);
        println!("| 1 | processor `app::run` with EOS, steady | {proc:.0} | | |");
        for (mode, runs, _) in &k.pipes {
            let (pipe, pipe_w) = (steady(runs), whole(runs));
            let r = proc / pipe;
            let (name, target) = match mode {
                PipeMode::Drained => ("**ceiling**", format!("≥ 0.70: {}", verdict(r, 0.7))),
                PipeMode::Undrained => ("with the stall", String::new()),
                PipeMode::Spread => ("diagnostic: the processor's output layout", String::new()),
            };
            println!(
                "| 1 | raw transactional pipe, {} ({name}), steady | {pipe:.0} | processor / pipe **{r:.2}** | {target} |",
                mode.label()
            );
            println!(
                "| 1 | (whole runs incl. start-up: this pipe {pipe_w:.0}, processor {proc_w:.0}) | | {:.2} | |",
                proc_w / pipe_w
            );
        }
        // CPU per event in the steady windows (medians over the rounds), µs: this process and
        // the broker (see the module doc for what their ratio says).
        let cpu = |runs: &[Run]| {
            let per = |f: fn(&CpuUse) -> Option<f64>| {
                let v: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| Some(f(&r.cpu)? * 1e6 / r.steady_events.max(1) as f64))
                    .collect();
                (v.len() == runs.len()).then(|| median(v))
            };
            (per(|c| c.process), per(|c| c.broker))
        };
        let show = |(process, broker): (Option<f64>, Option<f64>)| match (process, broker) {
            (Some(p), Some(b)) => format!("{p:.1} + broker {b:.1} = {:.1}", p + b),
            (Some(p), None) => format!("{p:.1} (broker's not known)"),
            _ => "not measured".to_owned(),
        };
        let pipe_cpu = |mode: PipeMode| {
            k.pipes
                .iter()
                .find(|(m, ..)| *m == mode)
                .map_or((None, None), |(_, runs, _)| cpu(runs))
        };
        let (proc_cpu, pipe_cpu, spread_cpu) = (
            cpu(&k.processor),
            pipe_cpu(PipeMode::Drained),
            pipe_cpu(PipeMode::Spread),
        );
        let total = |(p, b): (Option<f64>, Option<f64>)| Some(p? + b?);
        println!(
            "| 1 | CPU µs per event in the steady window: processor {}; ceiling pipe {}; spread pipe {} | | {} | |",
            show(proc_cpu),
            show(pipe_cpu),
            show(spread_cpu),
            match (total(pipe_cpu), total(proc_cpu)) {
                (Some(pipe), Some(proc)) => format!("pipe / processor CPU **{:.2}**", pipe / proc),
                _ => String::new(),
            }
        );
        println!(
            "| 2 | restore: fold the whole log, no emit ({} events, {:.2}s) | {:.0} | {:.2} × live processor | |",
            k.restore_events,
            k.restore_logged.as_secs_f64(),
            rate(k.restore_events, k.restore_logged),
            rate(k.restore_events, k.restore_logged) / proc
        );
        println!(
            "| 2 | (restore run start to ready: {:.2}s) | {:.0} | | |",
            k.restore_to_ready.as_secs_f64(),
            rate(k.restore_events, k.restore_to_ready)
        );
    }
    println!(
        "| 3 | raw sled apply_batch({}) of {RAW_VALUE_BYTES} B values (ceiling) | {:.0} | | |",
        p.batch, local.raw_sled
    );
    println!(
        "| 3 | decode + fold + project (sled), {:.0} candidates (~{:.0} B stored each; ~{:.0} B as JSON) written per batch; of its time {:.0}% encoding them, {:.0}% in Store::commit | {:.0} | | |",
        local.touched_per_batch,
        local.state_bytes,
        local.json_bytes,
        local.encode_share * 100.0,
        local.store_share * 100.0,
        local.processor
    );
    let r = local.ratio;
    println!(
        "| 3 | **in-process path / raw sled** (median of {} rounds' ratios; they ranged {:.2}–{:.2}) | | **{r:.2}** | ≥ 0.80: {} |",
        local.rounds,
        local.spread.0,
        local.spread.1,
        verdict(r, 0.8)
    );
    if let Some(k) = kafka {
        let c = &k.report.counts;
        let commands: u64 = c.commands.values().sum();
        println!();
        println!(
            "processor run (last round): consumed {}, applied {}, stale {}, duplicate {}, rejected {}, dlq {}; \
             outputs: {} commands, {} rejections, {} alerts ({:.2} per event), {} deadline events; {} batches, {} aborted",
            c.consumed,
            c.applied,
            c.stale,
            c.duplicate,
            c.rejected,
            c.dlq,
            commands,
            c.rejected,
            c.alerts,
            (commands + c.rejected + c.alerts + c.dlq) as f64 / c.consumed.max(1) as f64,
            k.report.timers_fired,
            k.report.batches,
            k.report.aborted_batches
        );
        println!("processor (last round), {}", k.stages);
        for (mode, _, times) in &k.pipes {
            println!("pipe, {} (last round): {}", mode.label(), times.per_batch());
        }
    }
}
