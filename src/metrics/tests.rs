//! The Prometheus rendering (format, escaping, cumulative buckets), the tally's agreement with
//! the replayed KPIs, and the OTLP export reaching a collector.

use std::collections::BTreeMap;

use super::*;
use crate::kpi::KpiAccumulator;
use crate::replay::Replayer;

/// The value of the sample `name{labels}` (labels in any order, all of them given), or `None`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}')?),
            None => (series, ""),
        };
        if n != name {
            return None;
        }
        let mut got: Vec<String> = split_labels(rest);
        got.sort();
        let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        want.sort();
        (got == want).then(|| value.parse().ok()).flatten()
    })
}

/// `a="x",b="y\"z"` → `["a=\"x\"", "b=\"y\\\"z\""]` (escapes kept as written).
fn split_labels(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for ch in s.chars() {
        if escaped {
            cur.push(ch);
            escaped = false;
            continue;
        }
        match ch {
            '\\' if quoted => {
                cur.push(ch);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(ch);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[test]
fn counters_have_help_type_and_total_suffix() {
    let m = Metrics::default();
    let mut t = Tally::default();
    t.events.insert(("applied", None), 3);
    t.events.insert(("rejected", Some("field_conflict")), 2);
    t.records = 5;
    m.record_batch(&t);
    let text = m.render();
    assert!(
        text.contains(
            "# HELP hirestate_events_total Events folded in committed batches, by decision\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("# TYPE hirestate_events_total counter\n"),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "hirestate_events_total",
            &[("hirestate_decision", "applied")]
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            "hirestate_events_total",
            &[
                ("hirestate_decision", "rejected"),
                ("hirestate_reject_reason", "field_conflict")
            ]
        ),
        Some(2.0)
    );
    assert!(
        text.contains("# TYPE hirestate_batch_size histogram\n"),
        "{text}"
    );
    assert_eq!(sample(&text, "hirestate_batch_size_count", &[]), Some(1.0));
    assert_eq!(sample(&text, "hirestate_batch_size_sum", &[]), Some(5.0));
    // No scope labels: the only labels are the instrument's own.
    assert!(!text.contains("otel_scope_name"), "{text}");
}

#[test]
fn label_values_are_escaped() {
    let m = Metrics::default();
    let mut t = Tally::default();
    t.stuck_applications.insert("a\"b\\c\nd".into(), 4);
    m.record_stored(&t);
    let text = m.render();
    assert!(
        text.contains(r#"hirestate_applications_stuck{hirestate_stage="a\"b\\c\nd"} 4"#),
        "{text}"
    );
    assert!(
        text.contains("# TYPE hirestate_applications_stuck gauge\n"),
        "{text}"
    );
}

#[test]
fn histogram_buckets_are_cumulative_with_the_kpi_bounds() {
    let m = Metrics::default();
    let mut t = Tally::default();
    for secs in [0.5, 1.0, 3.0, 3.0, 900.0, 100_000.0] {
        t.latencies.push(("greenhouse".into(), "move_stage", secs));
    }
    m.record_batch(&t);
    let text = m.render();
    let labels = |le: &'static str| {
        [
            ("hirestate_target", "greenhouse"),
            ("hirestate_command_op", "move_stage"),
            ("le", le),
        ]
    };
    let bucket = |le| {
        sample(
            &text,
            "hirestate_writeback_latency_seconds_bucket",
            &labels(le),
        )
    };
    assert!(
        text.contains("# TYPE hirestate_writeback_latency_seconds histogram\n"),
        "{text}"
    );
    // Upper bounds are inclusive, as the KPI's `≤ le`.
    let expected = [
        ("1", 2.0),
        ("5", 4.0),
        ("15", 4.0),
        ("60", 4.0),
        ("300", 4.0),
        ("900", 5.0),
        ("1800", 5.0),
        ("3600", 5.0),
        ("14400", 5.0),
        ("86400", 5.0),
        ("+Inf", 6.0),
    ];
    assert_eq!(expected.len(), LATENCY_BUCKETS_SECS.len() + 1);
    for (le, n) in expected {
        assert_eq!(bucket(le), Some(n), "bucket le={le}\n{text}");
    }
    let tl = [
        ("hirestate_target", "greenhouse"),
        ("hirestate_command_op", "move_stage"),
    ];
    assert_eq!(
        sample(&text, "hirestate_writeback_latency_seconds_count", &tl),
        Some(6.0)
    );
    assert_eq!(
        sample(&text, "hirestate_writeback_latency_seconds_sum", &tl),
        Some(100_907.5)
    );
}

#[test]
fn consumer_lag_follows_the_assignment() {
    let m = Metrics::default();
    m.set_consumer_lag("g", "hiring.events.v1", [(0, 5), (1, 0)]);
    let labels = |p: &'static str| {
        [
            ("messaging_system", "kafka"),
            ("messaging_destination_name", "hiring.events.v1"),
            ("messaging_destination_partition_id", p),
            ("messaging_consumer_group_name", "g"),
        ]
    };
    let text = m.render();
    assert_eq!(
        sample(&text, "hirestate_consumer_lag", &labels("0")),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "hirestate_consumer_lag", &labels("1")),
        Some(0.0)
    );
    // Partition 0 revoked: no longer reported.
    m.set_consumer_lag("g", "hiring.events.v1", [(1, 2)]);
    let text = m.render();
    assert_eq!(
        sample(&text, "hirestate_consumer_lag", &labels("0")),
        None,
        "{text}"
    );
    assert_eq!(
        sample(&text, "hirestate_consumer_lag", &labels("1")),
        Some(2.0)
    );
}

/// The tally of a fold over a generated stream (with acks) gives, once recorded, the replayed
/// KPIs: commands by status (pending included), the latency histogram per (target, op), field
/// conflicts; and acks by status, since the generator acks each command at most once.
#[test]
fn recorded_tally_agrees_with_the_replayed_kpis() {
    let policy = crate::policy::load(&crate::policy::default_dir()).expect("default policy");
    let spec = crate::generate::Spec {
        seed: 7,
        candidates: 150,
        ..Default::default()
    };
    let mut replayer = Replayer::new(&policy);
    let mut acc = KpiAccumulator::new();
    let mut tally = Tally::default();
    for e in crate::generate::stream(&spec, &policy) {
        let first = replayer
            .states()
            .get(&e.candidate_id)
            .and_then(|s| status_before(s, &e));
        let outcome = replayer.fold(&e);
        acc.observe(&e, &outcome);
        let state = &replayer.states()[&e.candidate_id];
        tally.observe(&e, &outcome, state, first);
    }
    let m = Metrics::default();
    m.record_batch(&tally);
    let text = m.render();
    let kpi = acc.report(&policy, None);
    assert!(
        kpi.confirmed > 0 && kpi.failed + kpi.rejected > 0,
        "{kpi:?}"
    );

    let sum_where = |name: &str, label: &str, value: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .filter(|l| l.contains(&format!("{label}=\"{value}\"")))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum()
    };
    let acks = |status| {
        sum_where(
            "hirestate_writeback_acks_total",
            "hirestate_writeback_status",
            status,
        )
    };
    assert_eq!(acks("confirmed"), kpi.confirmed as f64);
    assert_eq!(acks("failed"), kpi.failed as f64);
    assert_eq!(acks("rejected"), kpi.rejected as f64);

    for g in &kpi.by_target_op {
        let tl = [
            ("hirestate_target", g.target.as_str()),
            ("hirestate_command_op", g.op.as_str()),
        ];
        for (status, n) in [
            ("pending", g.pending),
            ("confirmed", g.confirmed),
            ("failed", g.failed),
            ("rejected", g.rejected),
        ] {
            let mut l = tl.to_vec();
            l.push(("hirestate_writeback_status", status));
            assert_eq!(
                sample(&text, "hirestate_writeback_commands", &l).unwrap_or(0.0),
                n as f64,
                "{status} {}/{}",
                g.target,
                g.op
            );
        }
        for b in &g.latency_seconds.histogram {
            let le = b.le.map(|v| v.to_string()).unwrap_or_else(|| "+Inf".into());
            let mut l = tl.to_vec();
            l.push(("le", le.as_str()));
            let got = sample(&text, "hirestate_writeback_latency_seconds_bucket", &l);
            // A (target, op) with no confirmed command has no latency series at all.
            assert_eq!(
                got.unwrap_or(0.0),
                b.count as f64,
                "{}/{} le={le}",
                g.target,
                g.op
            );
        }
    }

    let mut conflicts: BTreeMap<(String, String, &str), f64> = BTreeMap::new();
    for (field, by_source) in &kpi.field_conflicts_by_field_source {
        for (source, t) in by_source {
            for (outcome, n) in [("rejected", t.rejected), ("accepted", t.accepted)] {
                if n > 0 {
                    conflicts.insert((field.clone(), source.clone(), outcome), n as f64);
                }
            }
        }
    }
    assert!(
        !conflicts.is_empty(),
        "the stream should have field conflicts"
    );
    for ((field, source, outcome), n) in &conflicts {
        assert_eq!(
            sample(
                &text,
                "hirestate_field_conflicts_total",
                &[
                    ("hirestate_field", field.as_str()),
                    ("hirestate_source_system", source.as_str()),
                    ("hirestate_conflict_outcome", outcome),
                ]
            ),
            Some(*n),
            "{field}/{source}/{outcome}"
        );
    }
}

/// With an OTLP endpoint, a flush POSTs protobuf to `<endpoint>/v1/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_export_posts_protobuf_to_the_collector() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/metrics"))
        .and(header("content-type", "application/x-protobuf"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1..)
        .mount(&server)
        .await;
    let uri = server.uri();
    tokio::task::spawn_blocking(move || {
        let m = Metrics::new(Some(&uri)).expect("metrics with OTLP");
        assert_eq!(
            m.otlp_endpoint(),
            Some(format!("{uri}/v1/metrics").as_str())
        );
        let mut t = Tally::default();
        t.events.insert(("applied", None), 1);
        m.record_batch(&t);
        m.force_flush().expect("OTLP export");
        m.shutdown();
    })
    .await
    .expect("export thread");
    server.verify().await;
}

#[test]
fn stuck_gauges_follow_alerts_moves_and_acks() {
    use crate::fold::{self, timers};
    use crate::model::{
        AckStatus, CandidateState, Event, EventKind, SourceSystem, TimerKind, Timestamp,
    };
    let policy = crate::policy::load(&crate::policy::default_dir()).expect("shipped policy");
    let mut state = CandidateState::default();
    let mut t = Tally::default();
    let mut n = 0;
    let mut fold_one = |state: &mut CandidateState, t: &mut Tally, source, kind| {
        n += 1;
        let e = Event {
            event_id: format!("e{n}"),
            candidate_id: "c".into(),
            application_id: "a".into(),
            source_system: source,
            source_principal: "p".into(),
            occurred_at: Timestamp(1_793_610_000_000_000 + n * 1_000_000),
            signature: None,
            kind,
        };
        let before = stuck_of(state, &e);
        let out = fold::apply(state, &e, &policy);
        t.observe_stuck(&before, &stuck_of(state, &e));
        out
    };
    let fire = |state: &mut CandidateState, t: &mut Tally, timer| {
        let due = timers::pending(state, &policy)
            .into_iter()
            .find(|d| d.timer == timer)
            .expect("a pending timer");
        let e = timers::event("c", &due);
        let before = stuck_of(state, &e);
        fold::apply(state, &e, &policy);
        t.observe_stuck(&before, &stuck_of(state, &e));
    };
    let stage = |to: &str| EventKind::StageChanged {
        to_stage: to.into(),
        reason: None,
    };
    fold_one(
        &mut state,
        &mut t,
        SourceSystem::Ats,
        EventKind::ApplicationCreated {
            requisition_id: "r".into(),
            region: "na".into(),
        },
    );
    let out = fold_one(
        &mut state,
        &mut t,
        SourceSystem::ScreeningVendor,
        stage("triage"),
    );
    let id = out.commands[0].command_id.clone();
    fire(&mut state, &mut t, TimerKind::StageDwell);
    fire(&mut state, &mut t, TimerKind::WritebackSla);
    assert_eq!(t.stuck_applications.get("triage"), Some(&1));
    assert_eq!(t.stuck_commands, 1);
    fold_one(&mut state, &mut t, SourceSystem::Ats, stage("screening"));
    assert_eq!(t.stuck_applications.get("triage"), Some(&0));
    let ack = EventKind::WritebackAcked {
        command_id: id.to_string(),
        status: AckStatus::Confirmed,
        remote_ref: None,
        error: None,
        retryable: false,
    };
    fold_one(&mut state, &mut t, SourceSystem::AtsSink, ack);
    assert_eq!(t.stuck_commands, 0);
    // A state loaded from the store counts what it holds.
    let mut loaded = Tally::default();
    fire(&mut state, &mut loaded, TimerKind::StageDwell);
    let mut stored = Tally::default();
    stored.add_statuses_of(&state);
    assert_eq!(stored.stuck_applications.get("screening"), Some(&1));
    assert_eq!(loaded.stuck_applications.get("screening"), Some(&1));
}

#[test]
fn tallies_of_two_parts_of_a_stream_merge_into_the_tally_of_the_whole() {
    let policy = crate::policy::load(&crate::policy::default_dir()).expect("default policy");
    let spec = crate::generate::Spec {
        candidates: 150,
        ..Default::default()
    };
    let mut events = crate::generate::stream(&spec, &policy);
    // Then every deadline the states wait for comes due: stuck alerts, retries.
    let mut replayer = Replayer::new(&policy);
    for e in &events {
        replayer.fold(e);
    }
    let mut due: Vec<crate::model::Event> = replayer
        .states()
        .iter()
        .flat_map(|(c, s)| {
            crate::fold::timers::pending(s, &policy)
                .into_iter()
                .map(|d| crate::fold::timers::event(c, &d))
        })
        .collect();
    due.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    events.extend(due);

    let mut replayer = Replayer::new(&policy);
    let (mut all, mut parts) = (Tally::default(), [Tally::default(), Tally::default()]);
    for (i, e) in events.iter().enumerate() {
        let state = replayer.states().get(&e.candidate_id);
        let first = state.and_then(|s| status_before(s, e));
        let stuck = state.map(|s| stuck_of(s, e)).unwrap_or_default();
        let outcome = replayer.fold(e);
        let state = &replayer.states()[&e.candidate_id];
        // Tallied whole and in two parts; every eleventh event also counts a dead letter.
        let part = &mut parts[usize::from(e.candidate_id.len() % 2 == 0 || i % 3 == 0)];
        for t in [&mut all, part] {
            t.observe(e, &outcome, state, first);
            t.observe_stuck(&stuck, &stuck_of(state, e));
            if i % 11 == 0 {
                t.dead_letter("deserialize", "schema");
            }
        }
    }
    let [mut merged, b] = parts;
    assert!(merged.records > 0 && b.records > 0);
    merged.merge(b);
    let by_value = |t: &mut Tally| {
        t.latencies
            .sort_by(|x, y| (&x.0, x.1).cmp(&(&y.0, y.1)).then(x.2.total_cmp(&y.2)))
    };
    by_value(&mut merged);
    by_value(&mut all);
    assert!(!all.latencies.is_empty() && !all.acks.is_empty() && !all.conflicts.is_empty());
    assert!(all.stuck_commands != 0 && !all.stuck_applications.is_empty());
    assert_eq!(merged, all);
}

#[test]
fn memory_gauge_shows_the_last_batch_and_evictions_add_up() {
    let m = Metrics::default();
    m.record_memory(120, 0);
    m.record_memory(40, 95);
    m.record_memory(55, 0);
    m.record_memory(41, 14);
    let text = m.render();
    assert!(
        text.contains("# TYPE hirestate_candidates_in_memory gauge\n"),
        "{text}"
    );
    assert_eq!(
        sample(&text, "hirestate_candidates_in_memory", &[]),
        Some(41.0)
    );
    assert_eq!(
        sample(&text, "hirestate_candidates_evicted_total", &[]),
        Some(109.0)
    );
}

#[test]
fn stage_durations_are_one_series_per_stage_with_an_observation_per_batch() {
    let m = Metrics::default();
    let ms = Duration::from_millis;
    m.record_stages(&StageTimes {
        collect: ms(2),
        fold: ms(11),
        transaction: ms(40),
        store: Duration::ZERO,
    });
    m.record_stages(&StageTimes {
        collect: ms(3),
        fold: ms(30),
        transaction: ms(20),
        store: ms(1),
    });
    let text = m.render();
    assert!(
        text.contains("# TYPE hirestate_batch_stage_duration_seconds histogram\n"),
        "{text}"
    );
    let stage = |s: &'static str| [("hirestate_batch_stage", s)];
    let of = |what: &str, s: &'static str| {
        sample(
            &text,
            &format!("hirestate_batch_stage_duration_seconds_{what}"),
            &stage(s),
        )
    };
    for (s, sum) in [
        ("collect", 0.005),
        ("fold", 0.041),
        ("transaction", 0.06),
        ("store", 0.001),
    ] {
        assert_eq!(of("count", s), Some(2.0), "{s}\n{text}");
        let got = of("sum", s).expect("a sum");
        assert!((got - sum).abs() < 1e-9, "{s}: {got} != {sum}\n{text}");
    }
    // Each stage's observations land in its own buckets: 11 and 30 ms of folding lie either
    // side of 25 ms, the transactions' 40 and 20 ms likewise.
    let bucket = |s: &'static str, le: &'static str| {
        sample(
            &text,
            "hirestate_batch_stage_duration_seconds_bucket",
            &[("hirestate_batch_stage", s), ("le", le)],
        )
    };
    assert_eq!(bucket("fold", "0.025"), Some(1.0), "{text}");
    assert_eq!(bucket("transaction", "0.025"), Some(1.0), "{text}");
    assert_eq!(bucket("store", "0.0005"), Some(1.0), "{text}");
    assert_eq!(bucket("collect", "0.0025"), Some(1.0), "{text}");
    assert_eq!(bucket("collect", "0.005"), Some(2.0), "{text}");
}
