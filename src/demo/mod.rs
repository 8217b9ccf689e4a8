//! `hirestate demo` (and `make demo`): the whole live path with nothing installed.
//!
//! Without `KAFKA_BOOTSTRAP` it starts librdkafka's in-process mock cluster; with it, it uses
//! that cluster (under a fresh topic prefix). Then: `topics ensure`; a generated, realistic
//! stream (forbidden jumps, an ATS asserting forbidden moves, duplicates, late screening
//! results, field conflicts, acks from a SIMULATED sink) plus a few undecodable records is
//! produced keyed by candidate; the processor runs until idle; every output topic is read back
//! (read_committed) and counted, and the counts are reconciled with an offline replay of the
//! same events. The mock cluster does not hide aborted records nor store transactional offsets,
//! so the demo shows the data flow, not the exactly-once guarantees (`make test` checks those
//! against a real broker).

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::app::{self, RunOptions, Status};
use crate::config::{Config, Overrides};
use crate::generate::{self, Spec};
use crate::replay::{Replayer, Row, Summary};
use crate::tools::tail::{self, TailOptions};
use crate::topics::{self, Topics};

/// Runs the demo over `candidates` generated candidates.
///
/// # Errors
/// When the shipped policy fails its checks, the cluster cannot be reached, or the counts do
/// not reconcile (which would be a bug, and is reported as one).
pub fn run(candidates: usize, seed: u64) -> anyhow::Result<ExitCode> {
    let mut out = io::stdout().lock();
    let policy = Arc::new(crate::cli::load_policy(None)?);
    let mut config = Config::load(None, std::env::vars(), &Overrides::default())?;
    let _mock; // keeps the in-process cluster alive for the whole demo
    let state = tempfile::tempdir()?;
    config.state_dir = state.path().to_path_buf();
    config.instance_id = "demo".to_owned();
    config.snapshot_every_batches = 2;
    if config.bootstrap.is_empty() {
        let cluster = MockCluster::new(1)?;
        config.bootstrap = cluster.bootstrap_servers();
        _mock = Some(cluster);
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
        _mock = None;
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
    match &_mock {
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
    let events = generate::stream(
        &Spec {
            seed,
            candidates,
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
    let producer: FutureProducer = config.client_config().create()?;
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

    // The processor, until the log is drained.
    let started = Instant::now();
    let status = Arc::new(Status::default());
    let opts = RunOptions {
        exit_when_idle: Some(Duration::from_secs(2)),
    };
    let report = app::run(&config, policy.clone(), status, &opts)?;
    writeln!(
        out,
        "processor: {} records in {} transactions, {:.1} s (including 2 s idle wait)",
        report.counts.consumed,
        report.batches,
        started.elapsed().as_secs_f64()
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
        };
        let r = tail::tail(&config, &opts, &mut io::sink(), &mut io::sink())?;
        writeln!(out, "  {t:<36} {:>7}", r.records)?;
        landed.insert(t.clone(), r.records);
    }

    // The same events replayed offline must give the same counts.
    let mut replayer = Replayer::new(&policy);
    let mut summary = Summary::default();
    for e in &events {
        summary.count(&Row::new(e, replayer.fold(e)));
    }
    let c = &report.counts;
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
    writeln!(
        out,
        "\nnext: `hirestate replay --from-file schemas/samples/events.jsonl --format table`"
    )?;
    drop(out);
    Ok(ExitCode::SUCCESS)
}
