//! `/metrics` of a live processor on the real broker agrees with what is derived independently
//! from the same log:
//! - with the offline replay (`hirestate replay`): events by decision and reject reason,
//!   commands by target/op, DLQ records (undecodable records produced among the good ones);
//! - with the replayed KPIs (`hirestate::kpi` over the same file): commands by write-back
//!   status (pending included) and acks by status, the write-back latency histogram per
//!   target/op bucket by bucket, field conflicts by field, source and outcome;
//! - with the run report printed at shutdown;
//! - consumer lag is reported for every partition and reaches 0 once caught up, also on
//!   partitions whose log ends in a transaction marker (the poison records are produced in a
//!   transaction, after the stream).
//!
//! Then the same instance restarts on an empty state directory and restores every partition
//! from the log: restore progress counts every good event, nothing is counted as decided again,
//! and the command-status gauge (which mirrors state) equals the KPI's statuses once more.

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::process::Child;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;

/// How long the processor may take to reach a state the test waits for (not a speed claim).
const DEADLINE: Duration = Duration::from_secs(240);
const PARTITIONS: i32 = 4;

/// One sample of the exposition: metric name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses Prometheus text (the subset `/metrics` writes: no timestamps, no escapes in the
/// label values this test looks at).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("sample line {l:?}"));
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => {
                    let body = rest.strip_suffix('}').expect("closing brace");
                    let labels = body
                        .split("\",")
                        .filter(|kv| !kv.is_empty())
                        .map(|kv| {
                            let (k, v) = kv.split_once("=\"").expect("label=\"value\"");
                            (k.to_owned(), v.trim_end_matches('"').to_owned())
                        })
                        .collect();
                    (n.to_owned(), labels)
                }
                None => (series.to_owned(), BTreeMap::new()),
            };
            Sample {
                name,
                labels,
                value: value
                    .parse()
                    .unwrap_or_else(|e| panic!("value of {l:?}: {e}")),
            }
        })
        .collect()
}

/// The sum of `name`'s samples whose labels include all of `with`.
fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// Scrapes until `done` holds (returning the samples), or panics after [`DEADLINE`] with the
/// last scrape and the instance log.
fn scrape_until(
    addr: &str,
    child: &mut Child,
    node: &processor::Instance,
    what: &str,
    done: impl Fn(&[Sample]) -> bool,
) -> Vec<Sample> {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < DEADLINE {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!(
                "processor exited ({status}) before {what}\n{}",
                node.log_tail()
            );
        }
        if let Some((200, body)) = support::http_get(addr, "/metrics") {
            let samples = parse(&body);
            if done(&samples) {
                eprintln!("{what}: after {:?}", started.elapsed());
                return samples;
            }
            last = body;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let _ = child.kill();
    panic!(
        "{what}: not reached within {DEADLINE:?}; last /metrics:\n{last}\n{}",
        node.log_tail()
    );
}

/// Stops the processor with SIGTERM (finish the batch, leave) and returns its report.
fn stop(mut child: Child, node: &processor::Instance) -> Value {
    let pid = child.id().to_string();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    assert!(ok.success(), "kill -TERM {pid}");
    let status = processor::wait_for(&mut child, DEADLINE)
        .unwrap_or_else(|| panic!("no exit after SIGTERM\n{}", node.log_tail()));
    assert!(status.success(), "exit {status}\n{}", node.log_tail());
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut out)
        .expect("reading the report");
    let line = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .expect("a report line");
    serde_json::from_str(line).expect("the report is JSON")
}

/// Produces `n` undecodable records onto the event log in one transaction (so partitions they
/// land on end in a commit marker).
fn produce_poison_in_a_transaction(bootstrap: &str, topic: &str, n: usize) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", support::unique("metrics-poison"))
        .create()
        .expect("transactional producer");
    let t = Duration::from_secs(30);
    p.init_transactions(t).expect("init_transactions");
    p.begin_transaction().expect("begin_transaction");
    for i in 0..n {
        let key = format!("poison-{i}");
        let value = [0xAB, 0xCD, i as u8, 0x00, 0xFF];
        p.send(BaseRecord::to(topic).key(&key).payload(&value[..]))
            .map_err(|(e, _)| e)
            .expect("sending a poison record");
    }
    p.commit_transaction(t).expect("commit_transaction");
}

/// Every `writeback_acked` of the file names a different command: acks counted per ack then
/// equal the KPI's statuses counted per command (the comparison below relies on it).
fn assert_at_most_one_ack_per_command(file: &std::path::Path) {
    let mut acks: BTreeMap<String, u32> = BTreeMap::new();
    for line in processor::read_lines(file) {
        let v: Value = serde_json::from_str(&line).expect("event line");
        if v["kind"] == "writeback_acked" {
            *acks
                .entry(v["command_id"].as_str().expect("command_id").to_owned())
                .or_default() += 1;
        }
    }
    assert!(!acks.is_empty(), "the stream should carry acks");
    let twice: Vec<_> = acks.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "commands acked twice: {twice:?}");
}

fn lag_caught_up(samples: &[Sample], topic: &str) -> bool {
    (0..PARTITIONS).all(|p| {
        let p = p.to_string();
        let series: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.name == "hirestate_consumer_lag")
            .filter(|s| {
                s.labels
                    .get("messaging_destination_name")
                    .map(String::as_str)
                    == Some(topic)
                    && s.labels.get("messaging_destination_partition_id") == Some(&p)
            })
            .collect();
        series.len() == 1 && series[0].value == 0.0
    })
}

#[test]
fn metrics_agree_with_the_replay_and_the_replayed_kpis() {
    let Some(bs) = support::bootstrap("metrics_agree_with_the_replay_and_the_replayed_kpis") else {
        return;
    };
    let setup = processor::Setup::new(&bs, "metrics", PARTITIONS);
    let file = setup.generate("events.jsonl", 400, 90_210);
    assert_at_most_one_ack_per_command(&file);
    let expected = processor::expected(&setup, &file);
    let policy =
        hirestate::policy::load(&hirestate::policy::default_dir()).expect("default policy");
    let kpi = hirestate::kpi::replay_file(
        BufReader::new(std::fs::File::open(&file).expect("stream file")),
        &policy,
        None,
        &mut std::io::sink(),
    )
    .expect("replayed KPIs");
    assert!(
        kpi.confirmed > 0 && kpi.failed > 0 && kpi.rejected > 0 && kpi.pending > 0,
        "the stream should exercise every status: {kpi:?}"
    );
    assert!(
        kpi.field_conflicts > 0,
        "the stream should have field conflicts"
    );

    setup.produce(&file);
    let events_topic = setup.topic("hiring.events.v1");
    const POISON: usize = 3;
    produce_poison_in_a_transaction(&bs, &events_topic, POISON);
    let good = expected.events as f64;
    let consumed = good + POISON as f64;

    // Run 1: fold the whole log, scrape while running.
    let addr = support::free_addr();
    let node = setup.instance("metrics-1");
    let env = [
        ("HIRESTATE_HEALTH_ADDR", addr.as_str()),
        ("HIRESTATE_STATISTICS_INTERVAL_MS", "200"),
        // No snapshot rounds: the restore of run 2 then folds the whole log.
        ("HIRESTATE_SNAPSHOT_EVERY_BATCHES", "100000"),
    ];
    let mut child = node.spawn(&setup, 600.0, &env);
    let m = scrape_until(
        &addr,
        &mut child,
        &node,
        "every record counted, lag 0",
        |s| {
            sum(s, "hirestate_events_total", &[]) + sum(s, "hirestate_dlq_records_total", &[])
                == consumed
                && lag_caught_up(s, &events_topic)
        },
    );
    let report = stop(child, &node);

    // Against the replay, and the run report.
    let counts = &expected.counts;
    for decision in ["applied", "stale", "duplicate", "rejected"] {
        let want = counts[decision].as_f64().expect("a count");
        let got = sum(
            &m,
            "hirestate_events_total",
            &[("hirestate_decision", decision)],
        );
        assert_eq!(got, want, "events decided {decision}");
        assert_eq!(
            report["counts"][decision].as_f64(),
            Some(got),
            "report {decision}"
        );
    }
    let reasons = counts["by_reason"].as_object().expect("by_reason");
    assert!(!reasons.is_empty());
    for (reason, n) in reasons {
        let got = sum(
            &m,
            "hirestate_events_total",
            &[
                ("hirestate_decision", "rejected"),
                ("hirestate_reject_reason", reason),
            ],
        );
        assert_eq!(Some(got), n.as_f64(), "rejected {reason}");
    }
    let commands = counts["commands"].as_object().expect("commands");
    assert!(commands.len() >= 3, "{commands:?}");
    for (key, n) in commands {
        let (target, op) = key.split_once('/').expect("target/op");
        let got = sum(
            &m,
            "hirestate_commands_total",
            &[("hirestate_target", target), ("hirestate_command_op", op)],
        );
        assert_eq!(Some(got), n.as_f64(), "commands {key}");
    }
    assert_eq!(
        sum(&m, "hirestate_commands_total", &[]),
        commands.values().filter_map(Value::as_f64).sum::<f64>(),
        "no command series beyond the replay's"
    );
    assert_eq!(
        sum(
            &m,
            "hirestate_dlq_records_total",
            &[("hirestate_dlq_stage", "decode")]
        ),
        POISON as f64
    );
    assert_eq!(report["counts"]["dlq"].as_f64(), Some(POISON as f64));
    let batches = report["batches"].as_f64().expect("batches");
    assert_eq!(sum(&m, "hirestate_batch_size_count", &[]), batches);
    assert_eq!(sum(&m, "hirestate_batch_size_sum", &[]), consumed);
    assert_eq!(
        sum(
            &m,
            "hirestate_transaction_commit_duration_seconds_count",
            &[("hirestate_transaction_result", "committed")]
        ),
        batches
    );
    // Each committed batch's stages: one observation each, and some time in those that
    // always work (a stage that is never timed sums to 0).
    for stage in ["collect", "fold", "transaction", "store"] {
        let of = |what: &str| {
            sum(
                &m,
                &format!("hirestate_batch_stage_duration_seconds_{what}"),
                &[("hirestate_batch_stage", stage)],
            )
        };
        assert_eq!(of("count"), batches, "stage {stage}");
        if stage != "store" {
            assert!(of("sum") > 0.0, "stage {stage} never timed");
        }
    }
    assert!(
        sum(
            &m,
            "hirestate_batch_stage_duration_seconds_sum",
            &[("hirestate_batch_stage", "transaction")]
        ) >= sum(
            &m,
            "hirestate_transaction_commit_duration_seconds_sum",
            &[("hirestate_transaction_result", "committed")]
        ),
        "a transaction is timed from before its records are sent to after its commit"
    );
    assert_eq!(sum(&m, "hirestate_restore_events_total", &[]), 0.0);
    for s in m.iter().filter(|s| s.name == "hirestate_consumer_lag") {
        assert_eq!(
            s.labels.get("messaging_consumer_group_name"),
            Some(&setup.group),
            "{s:?}"
        );
        assert_eq!(
            s.labels.get("messaging_system").map(String::as_str),
            Some("kafka")
        );
    }

    // Against the replayed KPIs.
    assert_kpis(&m, &kpi);

    // Run 2: same instance, empty state directory: a full restore from the log.
    let restored = processor::Instance {
        state_dir: setup.dir.path().join("state-metrics-1-fresh"),
        ..setup.instance("metrics-1")
    };
    let addr = support::free_addr();
    let env = [
        ("HIRESTATE_HEALTH_ADDR", addr.as_str()),
        ("HIRESTATE_STATISTICS_INTERVAL_MS", "200"),
        ("HIRESTATE_SNAPSHOT_EVERY_BATCHES", "100000"),
    ];
    let mut child = restored.spawn(&setup, 600.0, &env);
    let m = scrape_until(&addr, &mut child, &restored, "restored, lag 0", |s| {
        sum(s, "hirestate_restore_events_total", &[]) == good && lag_caught_up(s, &events_topic)
    });
    let report = stop(child, &restored);
    assert_eq!(report["restored_events"].as_f64(), Some(good));
    assert_eq!(
        sum(&m, "hirestate_events_total", &[]),
        0.0,
        "a restore folds without counting decisions"
    );
    assert_eq!(sum(&m, "hirestate_dlq_records_total", &[]), 0.0);
    assert_eq!(sum(&m, "hirestate_commands_total", &[]), 0.0);
    assert_eq!(sum(&m, "hirestate_writeback_acks_total", &[]), 0.0);
    assert_statuses(&m, &kpi);
}

/// The command-status gauge (pending included) equals the KPI's statuses per target/op.
fn assert_statuses(m: &[Sample], kpi: &hirestate::kpi::KpiReport) {
    for g in &kpi.by_target_op {
        for (status, n) in [
            ("pending", g.pending),
            ("confirmed", g.confirmed),
            ("failed", g.failed),
            ("rejected", g.rejected),
        ] {
            let l = [
                ("hirestate_target", g.target.as_str()),
                ("hirestate_command_op", g.op.as_str()),
                ("hirestate_writeback_status", status),
            ];
            assert_eq!(
                sum(m, "hirestate_writeback_commands", &l),
                n as f64,
                "{status} commands {}/{}",
                g.target,
                g.op
            );
        }
    }
    assert_eq!(
        sum(m, "hirestate_writeback_commands", &[]),
        kpi.commands_issued as f64
    );
}

/// Live KPIs (metrics) equal the replayed ones.
fn assert_kpis(m: &[Sample], kpi: &hirestate::kpi::KpiReport) {
    let acks = |status| {
        sum(
            m,
            "hirestate_writeback_acks_total",
            &[("hirestate_writeback_status", status)],
        )
    };
    assert_eq!(acks("confirmed"), kpi.confirmed as f64, "confirmed");
    assert_eq!(acks("failed"), kpi.failed as f64, "failed");
    assert_eq!(acks("rejected"), kpi.rejected as f64, "rejected");
    assert_statuses(m, kpi);

    let mut buckets_checked = 0;
    for g in &kpi.by_target_op {
        let tl = [
            ("hirestate_target", g.target.as_str()),
            ("hirestate_command_op", g.op.as_str()),
        ];
        let count = sum(m, "hirestate_writeback_latency_seconds_count", &tl);
        assert_eq!(
            count, g.latency_seconds.count as f64,
            "{}/{}",
            g.target, g.op
        );
        for b in &g.latency_seconds.histogram {
            let le = b.le.map(|v| v.to_string()).unwrap_or_else(|| "+Inf".into());
            let mut l = tl.to_vec();
            l.push(("le", le.as_str()));
            assert_eq!(
                sum(m, "hirestate_writeback_latency_seconds_bucket", &l),
                b.count as f64,
                "latency bucket {}/{} le={le}",
                g.target,
                g.op
            );
            buckets_checked += 1;
        }
    }
    assert!(buckets_checked > 0);
    // Every bound of the KPI histogram is a bucket of the live one.
    let les: std::collections::BTreeSet<&str> = m
        .iter()
        .filter(|s| s.name == "hirestate_writeback_latency_seconds_bucket")
        .filter_map(|s| s.labels.get("le").map(String::as_str))
        .collect();
    assert_eq!(
        les.len(),
        hirestate::kpi::LATENCY_BUCKETS_SECS.len() + 1,
        "{les:?}"
    );

    let mut conflicts = 0.0;
    for (field, by_source) in &kpi.field_conflicts_by_field_source {
        for (source, t) in by_source {
            for (outcome, n) in [("rejected", t.rejected), ("accepted", t.accepted)] {
                let got = sum(
                    m,
                    "hirestate_field_conflicts_total",
                    &[
                        ("hirestate_field", field.as_str()),
                        ("hirestate_source_system", source.as_str()),
                        ("hirestate_conflict_outcome", outcome),
                    ],
                );
                assert_eq!(got, n as f64, "field conflicts {field}/{source}/{outcome}");
                conflicts += got;
            }
        }
    }
    assert_eq!(sum(m, "hirestate_field_conflicts_total", &[]), conflicts);
}
