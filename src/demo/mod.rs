//! `hirestate demo` (and `make demo`): the whole live path with nothing installed.
//!
//! Without `KAFKA_BOOTSTRAP` it starts librdkafka's in-process mock cluster; with it, it uses
//! that cluster (under a fresh topic prefix). Then: `topics ensure`; a generated, realistic
//! stream (forbidden jumps, an ATS asserting forbidden moves, duplicates, late screening
//! results, field conflicts) plus a few undecodable records is produced keyed by candidate; the
//! processor runs while a SIMULATED ATS/HRIS sink ([`sink`]) consumes its commands and publishes
//! `writeback_acked` events back into the event log, which the processor folds in turn. When the
//! processor has been idle, the sink catches up; should it have acked anything the processor did
//! not fold yet, the processor runs again (same state directory and group), until the log is
//! drained. Every output topic is read back (read_committed) and counted, the counts are
//! reconciled with an offline replay of everything the event log holds (generated events and
//! the sink's acks), and the write-back KPIs of that replay are printed — as `hirestate kpi`
//! computes them — and written as an HTML report. The mock cluster does not hide aborted
//! records nor store transactional offsets, so the demo shows the data flow, not the
//! exactly-once guarantees (`make test` checks those against a real broker).

pub mod sink;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::app::{self, Counts, RunOptions, Status};
use crate::config::{Config, Overrides};
use crate::generate::{self, Spec};
use crate::kpi::KpiAccumulator;
use crate::replay::{Replayer, Row, Summary};
use crate::tools::tail::{self, TailOptions};
use crate::topics::{self, Topics};

pub use sink::SinkOptions;

/// Where the demo writes its HTML KPI report by default (relative to the working directory,
/// the repository root under `make demo`).
pub const DEFAULT_HTML_REPORT: &str = "target/demo/report.html";

/// Processor runs before the demo gives up on draining the log: acks cause no commands, so
/// one run normally suffices and a second folds acks that came after its idle exit.
const MAX_ROUNDS: usize = 5;

/// What the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Candidates in the generated stream.
    pub candidates: usize,
    /// Seed of the generated stream.
    pub seed: u64,
    /// The simulated sink's behaviour (its own seed included).
    pub sink: SinkOptions,
    /// Where to write the HTML KPI report; `None` to skip it.
    pub html: Option<PathBuf>,
}

/// Writes the HTML KPI report to `path`, creating its directory.
fn write_html_report(
    path: &Path,
    report: &crate::kpi::KpiReport,
    policy: &crate::policy::Policy,
) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = io::BufWriter::new(std::fs::File::create(path)?);
    crate::kpi::write_html(&mut file, report, policy)?;
    file.flush()?;
    Ok(())
}

/// Runs the demo.
///
/// # Errors
/// When the shipped policy fails its checks, the sink options are invalid, the cluster cannot
/// be reached, or the counts do not reconcile (which would be a bug, and is reported as one).
pub fn run(demo: &DemoOptions) -> anyhow::Result<ExitCode> {
    let (candidates, seed) = (demo.candidates, demo.seed);
    demo.sink
        .validate()
        .map_err(|e| anyhow::anyhow!("simulated sink options: {e}"))?;
    let mut out = io::stdout().lock();
    let policy = Arc::new(crate::cli::load_policy(None)?);
    let mut config = Config::load(None, std::env::vars(), &Overrides::default())?;
    let mock; // keeps the in-process cluster alive for the whole demo
    let state = tempfile::tempdir()?;
    config.state_dir = state.path().to_path_buf();
    config.instance_id = "demo".to_owned();
    config.snapshot_every_batches = 2;
    if config.bootstrap.is_empty() {
        let cluster = MockCluster::new(1)?;
        config.bootstrap = cluster.bootstrap_servers();
        mock = Some(cluster);
        writeln!(
            out,
            "hirestate demo — embedded default: librdkafka's in-process mock cluster at {}",
            config.bootstrap
        )?;
        writeln!(
            out,
            "  (the mock accepts transactions but neither hides aborted records nor stores"
        )?;
        writeln!(out, "   transactional offsets: this shows the data flow; `make test` proves exactly-once on a real broker)")?;
    } else {
        mock = None;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        config.topic_prefix = format!("demo{stamp}");
        config.group_id = format!("demo{stamp}");
        writeln!(
            out,
            "hirestate demo — cluster {} (KAFKA_BOOTSTRAP), topic prefix {}",
            config.bootstrap, config.topic_prefix
        )?;
    }
    writeln!(
        out,
        "policy version {}, digest {}… verified",
        policy.version(),
        &policy.digest()[..16]
    )?;

    let rt = tokio::runtime::Runtime::new()?;
    let names = Topics::new(&config.topic_prefix);
    match &mock {
        // The mock cluster answers no CreateTopics request; it has its own call.
        Some(cluster) => {
            for (t, _) in names.all(&policy) {
                cluster.create_topic(&t, config.partitions, 1)?;
            }
            writeln!(
                out,
                "topics: {} created on the mock cluster",
                names.all(&policy).len()
            )?;
        }
        None => {
            let ensured = rt.block_on(topics::ensure(&config, &policy))?;
            anyhow::ensure!(
                ensured.problems.is_empty(),
                "topics ensure: {}",
                ensured.problems.join("; ")
            );
            writeln!(
                out,
                "topics: {} created, {} existing",
                ensured.created.len(),
                ensured.existing.len()
            )?;
        }
    }

    // Feed: the generated stream, plus undecodable records as a broken producer sends them.
    // No acks in it: the simulated sink answers the commands the processor actually emits.
    let events = generate::stream(
        &Spec {
            seed,
            candidates,
            acks: false,
            ..Spec::default()
        },
        &policy,
    );
    let mut lines = Vec::new();
    for e in &events {
        serde_json::to_writer(&mut lines, e)?;
        lines.push(b'\n');
    }
    let produced = rt.block_on(crate::tools::produce::produce(
        &config,
        &lines[..],
        &names.events,
        crate::codec::Framing::SingleObject,
        &mut io::stderr(),
    ))?;
    let poison: [&[u8]; 3] = [
        b"\xC3\x01truncated",
        b"{\"kind\":\"teleported\"}",
        b"\x07not a framing",
    ];
    let producer: FutureProducer = config.producer_config().create()?;
    for (i, bytes) in poison.iter().enumerate() {
        let key = format!("cand-{i:06}");
        rt.block_on(producer.send(
            FutureRecord::to(&names.events).key(&key).payload(*bytes),
            Duration::from_secs(10),
        ))
        .map_err(|(e, _)| e)?;
    }
    writeln!(
        out,
        "produced {} generated events for {candidates} candidates (seed {seed}) + {} undecodable records",
        produced.produced,
        poison.len()
    )?;

    // The processor and the simulated sink side by side, until the log is drained: the sink
    // acks commands as they commit; after each processor run it catches up, and the processor
    // runs again while the log holds records it has not folded.
    let s = &demo.sink;
    writeln!(
        out,
        "simulated ATS/HRIS sink (no real system is called): latency {}–{} s, failure rate {}, \
         rejection rate {}, seed {}",
        s.latency_min_secs, s.latency_max_secs, s.failure_rate, s.rejection_rate, s.seed
    )?;
    let mut sink = sink::Sink::new(&config, &policy, demo.sink.clone())?;
    let started = Instant::now();
    let opts = RunOptions {
        exit_when_idle: Some(Duration::from_secs(2)),
        mock_cluster: mock.is_some(),
    };
    let mut live = Counts::default();
    let mut batches = 0;
    let mut rounds = 0;
    let mut deadlines = 0;
    loop {
        rounds += 1;
        let stop = AtomicBool::new(false);
        let (report, sank) = std::thread::scope(|scope| {
            let acking = scope.spawn(|| sink.run_until(&stop));
            let report = app::run(&config, policy.clone(), Arc::new(Status::default()), &opts);
            stop.store(true, Ordering::Relaxed);
            let sank = acking
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the simulated sink panicked")));
            (report, sank)
        });
        let report = report?;
        sank?;
        sink.drain()?;
        live.merge(&report.counts);
        batches += report.batches;
        deadlines += report.timers_fired;
        let in_log = produced.produced + poison.len() as u64 + sink.stats.acks_sent + deadlines;
        if live.consumed >= in_log {
            break;
        }
        anyhow::ensure!(
            rounds < MAX_ROUNDS,
            "the processor folded {} of the {in_log} records in the log after {rounds} runs",
            live.consumed
        );
    }
    let st = &sink.stats;
    writeln!(
        out,
        "processor: {} records in {batches} transactions over {rounds} run(s), {:.1} s \
         (including 2 s idle wait per run)",
        live.consumed,
        started.elapsed().as_secs_f64()
    )?;
    writeln!(
        out,
        "simulated sink: {} commands read, {} acks published (confirmed {}, failed {} of which \
         retryable {}, rejected {}), {} redeliveries ignored",
        st.commands_read,
        st.acks_sent,
        st.confirmed,
        st.failed,
        st.failed_retryable,
        st.rejected,
        st.redeliveries_ignored
    )?;

    // What landed on each output topic (read_committed).
    writeln!(out, "\noutput topics:")?;
    let mut landed = std::collections::BTreeMap::new();
    let mut topics_out: Vec<String> = names.all_commands(&policy);
    topics_out.extend([
        names.rejections.clone(),
        names.alerts.clone(),
        names.dlq.clone(),
        names.snapshots.clone(),
    ]);
    for t in &topics_out {
        let opts = TailOptions {
            topic: t.clone(),
            from_beginning: true,
            until_end: true,
            idle_exit: Some(Duration::from_secs(5)),
            registry_wait: tail::REGISTRY_WAIT,
            stop: None,
            partition: None,
        };
        let r = tail::tail(&config, &opts, &mut io::sink(), &mut io::sink())?;
        writeln!(out, "  {t:<36} {:>7}", r.records)?;
        landed.insert(t.clone(), r.records);
    }

    // Everything the event log holds — generated events, the sink's acks and the deadlines
    // hirestate's timers wrote — replayed offline must give the same counts; the KPIs come
    // from the same replay.
    let log = tail::read_events(&config, &names.events)?;
    anyhow::ensure!(
        log.len() as u64 == produced.produced + sink.stats.acks_sent + deadlines,
        "the event log holds {} decodable events, {} generated + {} acks + {deadlines} \
         deadlines were published",
        log.len(),
        produced.produced,
        sink.stats.acks_sent
    );
    writeln!(
        out,
        "timers: {deadlines} deadlines passed on the wall clock were written into the log \
         (the generated events are weeks old, so most SLAs have run out: stuck and \
         writeback_stuck alerts, retries after backoff)"
    )?;
    let mut replayer = Replayer::new(&policy);
    let mut summary = Summary::default();
    let mut kpis = KpiAccumulator::new();
    for e in &log {
        let outcome = replayer.fold(e);
        kpis.observe(e, &outcome);
        summary.count(&Row::new(e, outcome));
    }
    let c = &live;
    writeln!(
        out,
        "\ndecisions (live):  applied {}  stale {}  duplicate {}  rejected {}  dlq {}",
        c.applied, c.stale, c.duplicate, c.rejected, c.dlq
    )?;
    writeln!(
        out,
        "rejected by reason: {}",
        c.by_reason
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(
        out,
        "commands by target/op: {}",
        c.commands
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    let live_total = c.applied + c.stale + c.duplicate + c.rejected + c.dlq;
    writeln!(
        out,
        "reconciles: consumed {} = applied+stale+duplicate+rejected+dlq {}",
        c.consumed, live_total
    )?;
    let replay_commands: u64 = summary.commands_by_target.values().sum();
    let live_commands: u64 = topics_out
        .iter()
        .filter(|t| t.contains(".commands."))
        .map(|t| landed[t])
        .sum();
    writeln!(out, "commands on the topics {live_commands} = commands an offline replay derives {replay_commands}")?;
    anyhow::ensure!(c.consumed == live_total, "the live counts do not reconcile");
    anyhow::ensure!(
        live_commands == replay_commands,
        "live and replayed commands differ"
    );
    anyhow::ensure!(
        landed[&names.dlq] == poison.len() as u64,
        "DLQ count differs from the records corrupted"
    );

    // The write-back KPIs of the whole log, as `hirestate kpi` computes them.
    let kpi_report = kpis.report(&policy, None);
    writeln!(
        out,
        "\nwrite-back KPIs (replay of the event log, event time; acks from the SIMULATED sink):"
    )?;
    crate::kpi::write_table(&mut out, &kpi_report)?;
    if let Some(path) = &demo.html {
        write_html_report(path, &kpi_report, &policy)?;
        writeln!(out, "\nHTML report: {}", path.display())?;
    }
    writeln!(
        out,
        "\nnext: `hirestate replay --from-file schemas/samples/events.jsonl --format table`"
    )?;
    drop(out);
    Ok(ExitCode::SUCCESS)
}
