//! The KPIs of `hirestate::kpi` on small hand-written logs. Every expected number is worked out
//! by hand in the comments from DESIGN.md "Write-back lifecycle and KPIs", the issue's `--json`
//! definitions and the default policy (`schemas/policy/`: region `na` → ATS `greenhouse`,
//! write-back SLA 15 min, every field `golden_wins`); command ids are recomputed here with
//! `sha2`, never taken from the code under test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hirestate::kpi::{self, KpiAccumulator, KpiReport};
use hirestate::model::Timestamp;
use hirestate::policy::{ConflictRule, Policy};
use hirestate::replay::{parse_line, Replayer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The shipped policy (a stale digest fails here, not silently re-signed).
fn policy() -> Policy {
    hirestate::policy::load(&hirestate::policy::default_dir()).expect("the shipped policy loads")
}

/// DESIGN.md: lowercase hex of the first 16 bytes of SHA-256(event_id 0x1F op 0x1F target).
fn id(event_id: &str, op: &str, target: &str) -> String {
    let digest = Sha256::digest(format!("{event_id}\x1f{op}\x1f{target}").as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// 2026-11-02T09:00:00Z plus `secs`.
fn t(secs: i64) -> String {
    const T0: i64 = 1_793_610_000; // 2026-11-02T09:00:00Z in Unix seconds
    Timestamp((T0 + secs) * 1_000_000).to_rfc3339()
}

const DAY: i64 = 86_400;

fn ev(id: &str, cand: &str, source: &str, at: i64, kind: Value) -> String {
    let mut e = json!({
        "event_id": id,
        "candidate_id": cand,
        "application_id": format!("app-{cand}"),
        "source_system": source,
        "source_principal": format!("{source}-1"),
        "occurred_at": t(at),
    });
    let obj = e.as_object_mut().unwrap();
    for (k, v) in kind.as_object().unwrap() {
        obj.insert(k.clone(), v.clone());
    }
    e.to_string()
}

fn created(id: &str, cand: &str, at: i64) -> String {
    ev(
        id,
        cand,
        "ats",
        at,
        json!({"kind": "application_created", "requisition_id": "req-1", "region": "na"}),
    )
}

fn moved(id: &str, cand: &str, source: &str, at: i64, to: &str) -> String {
    ev(
        id,
        cand,
        source,
        at,
        json!({"kind": "stage_changed", "to_stage": to}),
    )
}

fn ack(id: &str, cand: &str, source: &str, at: i64, command_id: &str, status: &str) -> String {
    ev(
        id,
        cand,
        source,
        at,
        json!({"kind": "writeback_acked", "command_id": command_id, "status": status}),
    )
}

fn asserted(id: &str, cand: &str, source: &str, at: i64, fields: Value) -> String {
    ev(
        id,
        cand,
        source,
        at,
        json!({"kind": "fields_asserted", "fields": fields}),
    )
}

fn report(policy: &Policy, lines: &[String], as_of: Option<&str>) -> KpiReport {
    let text = lines.join("\n");
    let as_of = as_of.map(|s| Timestamp::parse_rfc3339(s).unwrap());
    let mut err = Vec::new();
    let r = kpi::replay_file(text.as_bytes(), policy, as_of, &mut err).unwrap();
    assert!(err.is_empty(), "{}", String::from_utf8_lossy(&err));
    r
}

/// Seven candidates, each created by the ATS and moved to `triage` by the vendor at 100 s:
/// one `greenhouse/move_stage` command each, caused at 100 s.
fn seven_moves() -> Vec<String> {
    let mut lines = Vec::new();
    for c in 1..=7 {
        let cand = format!("c{c}");
        lines.push(created(&format!("cr{c}"), &cand, 0));
        lines.push(moved(
            &format!("mv{c}"),
            &cand,
            "screening_vendor",
            100,
            "triage",
        ));
    }
    lines
}

fn mv(c: u32) -> String {
    id(&format!("mv{c}"), "move_stage", "greenhouse")
}

#[test]
fn statuses_by_latest_ack_success_rate_and_nearest_rank_latency() {
    let policy = policy();
    let mut lines = seven_moves();
    // c1..c4 confirmed 3, 7, 1 and 100 s after the move; c4 failed first (at 50 s), so its
    // latency runs to the confirming ack. c5 failed, c6 rejected, c7 never acked.
    lines.push(ack("k1", "c1", "ats_sink", 103, &mv(1), "confirmed"));
    lines.push(ack("k2", "c2", "ats_sink", 107, &mv(2), "confirmed"));
    lines.push(ack("k3", "c3", "ats_sink", 101, &mv(3), "confirmed"));
    lines.push(ack("k4a", "c4", "ats_sink", 150, &mv(4), "failed"));
    lines.push(ack("k4b", "c4", "ats_sink", 200, &mv(4), "confirmed"));
    lines.push(ack("k5", "c5", "ats_sink", 110, &mv(5), "failed"));
    lines.push(ack("k6", "c6", "ats_sink", 110, &mv(6), "rejected"));
    // Acks the fold rejects count for nothing: the wrong source (unauthorized_source), a
    // command of another candidate (unknown_command), and a resent ack (duplicate).
    lines.push(ack("k7", "c7", "ats", 120, &mv(7), "confirmed"));
    lines.push(ack("k8", "c7", "ats_sink", 120, &mv(1), "confirmed"));
    lines.push(ack("k9", "c7", "ats_sink", 130, "0000", "confirmed"));
    lines.push(ack("k5", "c5", "ats_sink", 110, &mv(5), "failed"));
    // A latest ack overrides an earlier one: c6's rejected stays, c5 gets no new ack.
    let r = report(&policy, &lines, None);

    assert_eq!(r.commands_issued, 7);
    assert_eq!((r.confirmed, r.failed, r.rejected, r.pending), (4, 1, 1, 1));
    assert_eq!(r.writeback_success_rate, Some(4.0 / 7.0));
    // Sorted latencies 1, 3, 7, 100: p50 is rank ⌈0.5·4⌉ = 2 → 3 s (not the interpolated 5);
    // p95 is rank ⌈0.95·4⌉ = 4 → 100 s.
    assert_eq!(r.latency_seconds.count, 4);
    assert_eq!(r.latency_seconds.p50, Some(3.0));
    assert_eq!(r.latency_seconds.p95, Some(100.0));
    // Cumulative buckets: ≤1: {1}; ≤5: {1,3}; ≤15 and ≤60: {1,3,7}; ≤300 and up: all four.
    let hist: Vec<(Option<f64>, u64)> = r
        .latency_seconds
        .histogram
        .iter()
        .map(|b| (b.le, b.count))
        .collect();
    assert_eq!(
        hist,
        vec![
            (Some(1.0), 1),
            (Some(5.0), 2),
            (Some(15.0), 3),
            (Some(60.0), 3),
            (Some(300.0), 4),
            (Some(900.0), 4),
            (Some(1800.0), 4),
            (Some(3600.0), 4),
            (Some(14_400.0), 4),
            (Some(86_400.0), 4),
            (None, 4),
        ]
    );
    // One target/op only, so its breakdown is the total.
    assert_eq!(r.by_target_op.len(), 1);
    let g = &r.by_target_op[0];
    assert_eq!(
        (g.target.as_str(), g.op.as_str()),
        ("greenhouse", "move_stage")
    );
    assert_eq!(
        (
            g.commands_issued,
            g.confirmed,
            g.failed,
            g.rejected,
            g.pending
        ),
        (7, 4, 1, 1, 1)
    );
    assert_eq!(g.latency_seconds.p95, Some(100.0));
    // Default as-of: the latest occurred_at, 200 s. c7 (pending since 100 s) is 100 s old.
    assert_eq!(r.as_of.map(|t| t.to_rfc3339()), Some(t(200)));
    assert_eq!(r.stuck_commands, 0);
}

#[test]
fn a_later_ack_replaces_the_status() {
    let policy = policy();
    let mut lines = seven_moves();
    // c1: confirmed then (a sink's correction) rejected → rejected, no latency.
    lines.push(ack("k1", "c1", "ats_sink", 110, &mv(1), "confirmed"));
    lines.push(ack("k1b", "c1", "ats_sink", 120, &mv(1), "rejected"));
    let r = report(&policy, &lines, None);
    assert_eq!((r.confirmed, r.failed, r.rejected, r.pending), (0, 0, 1, 6));
    assert_eq!(r.writeback_success_rate, Some(0.0));
    assert_eq!(r.latency_seconds.count, 0);
    assert_eq!((r.latency_seconds.p50, r.latency_seconds.p95), (None, None));
}

#[test]
fn nothing_issued_has_no_rate_and_no_percentiles() {
    let policy = policy();
    let r = report(&policy, &[created("cr1", "c1", 0)], None);
    assert_eq!(r.commands_issued, 0);
    assert_eq!(r.writeback_success_rate, None);
    assert_eq!(r.latency_seconds.p50, None);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["writeback_success_rate"], Value::Null);
    assert_eq!(v["latency_seconds"]["p95"], Value::Null);
}

/// target, op, issued, confirmed, pending, success rate, p50.
type GroupRow = (String, String, u64, u64, u64, Option<f64>, Option<f64>);

#[test]
fn breakdown_by_target_and_op() {
    let policy = policy();
    let lines = vec![
        created("cr1", "c1", 0),
        // The vendor: applied → screening (move_stage), then screening_completed (screened:
        // move_stage, and the screening fields: update_fields), both to greenhouse.
        moved("s1", "c1", "screening_vendor", 10, "screening"),
        ev(
            "s2",
            "c1",
            "screening_vendor",
            20,
            json!({"kind": "screening_completed", "score": 80, "recommendation": "advance",
                   "rubric_version": "v1", "reviewer_ids": ["r1"]}),
        ),
        ack(
            "k1",
            "c1",
            "ats_sink",
            70,
            &id("s1", "move_stage", "greenhouse"),
            "confirmed",
        ),
        ack(
            "k2",
            "c1",
            "ats_sink",
            22,
            &id("s2", "update_fields", "greenhouse"),
            "confirmed",
        ),
    ];
    let r = report(&policy, &lines, None);
    assert_eq!((r.commands_issued, r.confirmed, r.pending), (3, 2, 1));
    let rows: Vec<GroupRow> = r
        .by_target_op
        .iter()
        .map(|g| {
            (
                g.target.clone(),
                g.op.clone(),
                g.commands_issued,
                g.confirmed,
                g.pending,
                g.writeback_success_rate,
                g.latency_seconds.p50,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            // s1 confirmed 60 s after it; s2's move pending.
            (
                "greenhouse".into(),
                "move_stage".into(),
                2,
                1,
                1,
                Some(0.5),
                Some(60.0)
            ),
            // s2's fields confirmed 2 s after it.
            (
                "greenhouse".into(),
                "update_fields".into(),
                1,
                1,
                0,
                Some(1.0),
                Some(2.0)
            ),
        ]
    );
    // Over all three: latencies 2, 60 → p50 rank 1 = 2 s, p95 rank 2 = 60 s.
    assert_eq!(r.latency_seconds.p50, Some(2.0));
    assert_eq!(r.latency_seconds.p95, Some(60.0));
}

#[test]
fn field_conflicts_count_golden_wins_rejections_and_latest_wins_overrides() {
    let mut policy = policy();
    // A policy where the vendor may override the candidate's email (latest_wins).
    policy
        .fields
        .get_mut("candidate.email")
        .expect("candidate.email in the dictionary")
        .conflict = ConflictRule::LatestWins;
    let score = "screening.score";
    let lines = vec![
        created("cr1", "c1", 0),
        // 1. The ATS asserts a vendor-owned field: rejected field_conflict, one incident.
        asserted("f1", "c1", "ats", 10, json!({ score: 90 })),
        // 2. Two vendor-owned fields from the ATS: one incident naming both fields.
        asserted(
            "f2",
            "c1",
            "ats",
            20,
            json!({ score: 80, "screening.recommendation": "hold" }),
        ),
        // 3. Resent: duplicate, not counted again.
        asserted("f2", "c1", "ats", 20, json!({ score: 80 })),
        // 4. The golden source itself: no conflict.
        asserted("f3", "c1", "screening_vendor", 30, json!({ score: 70 })),
        // 5. latest_wins: accepted override, one incident.
        asserted(
            "f4",
            "c1",
            "screening_vendor",
            40,
            json!({"candidate.email": "a@example.org"}),
        ),
        // 6. latest_wins and golden_wins together: the event is rejected by candidate.name;
        //    the email rode on a refused event and is not an accepted override.
        asserted(
            "f5",
            "c1",
            "screening_vendor",
            50,
            json!({"candidate.email": "b@example.org", "candidate.name": "B"}),
        ),
        // 7. A conflicting assertion on an application never created: unknown_application.
        ev(
            "f6",
            "c9",
            "ats",
            60,
            json!({"kind": "fields_asserted", "fields": { score: 1 }}),
        ),
        // 8. A rejected ack (unauthorized source) is no conflict either.
        ack("f7", "c1", "ats", 70, "0000", "confirmed"),
    ];
    let r = report(&policy, &lines, None);
    // Incidents: f1, f2, f5 rejected; f4 accepted.
    assert_eq!(r.field_conflicts, 4);
    assert_eq!(r.field_conflicts_rejected, 3);
    assert_eq!(r.field_conflicts_accepted, 1);
    let map = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    };
    assert_eq!(
        r.field_conflicts_by_source,
        map(&[("ats", 2), ("screening_vendor", 2)])
    );
    assert_eq!(
        r.field_conflicts_by_field,
        map(&[
            ("candidate.email", 1),
            ("candidate.name", 1),
            ("screening.recommendation", 1),
            ("screening.score", 2),
        ])
    );
    let email = r.field_conflicts_by_field_source["candidate.email"]["screening_vendor"];
    assert_eq!((email.rejected, email.accepted), (0, 1));
    let s = r.field_conflicts_by_field_source["screening.score"]["ats"];
    assert_eq!((s.rejected, s.accepted), (2, 0));
}

#[test]
fn stuck_applications_at_an_explicit_as_of() {
    let policy = policy();
    let as_of = 30 * DAY;
    let lines = vec![
        // applied (2 d): 1 s over → stuck; 1 s under → not.
        created("a1", "over", as_of - 2 * DAY - 1),
        created("a2", "under", as_of - 2 * DAY + 1),
        // Exactly at the SLA is not "exceeds".
        created("a3", "exact", as_of - 2 * DAY),
        // triage (3 d), measured from the move, not from creation: created 20 d ago, moved
        // 3 d + 1 s ago → stuck; created 20 d ago, moved 1 d ago → not.
        created("b1", "tri-over", as_of - 20 * DAY),
        moved("b2", "tri-over", "ats", as_of - 3 * DAY - 1, "triage"),
        created("b3", "tri-new", as_of - 20 * DAY),
        moved("b4", "tri-new", "ats", as_of - DAY, "triage"),
        // Refused and stale moves do not restart the clock: created 5 d ago, a forbidden jump
        // (applied → offer) an hour ago leaves it in applied since 5 d → stuck.
        created("c1", "refused", as_of - 5 * DAY),
        moved("c2", "refused", "ats", as_of - 3600, "offer"),
        // Terminal stages are never stuck, however long ago.
        created("d1", "gone", as_of - 20 * DAY),
        moved("d2", "gone", "ats", as_of - 19 * DAY, "withdrawn"),
        created("d3", "no", as_of - 20 * DAY),
        moved("d4", "no", "ats", as_of - 19 * DAY, "rejected"),
        // A later event elsewhere: the default as-of would be this one.
        created("z1", "late", as_of + 10 * DAY),
    ];
    let r = report(&policy, &lines, Some(&t(as_of)));
    let expected: BTreeMap<String, u64> = [
        ("applied", 2),
        ("triage", 1),
        ("screening", 0),
        ("screened", 0),
        ("interview", 0),
        ("offer", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(r.stuck_applications, expected);
    assert_eq!(r.as_of.map(|t| t.to_rfc3339()), Some(t(as_of)));

    // Default as-of = the latest occurred_at (as_of + 10 d): every non-terminal application
    // but "late" is then past its SLA: over, under, exact, refused in applied; the two
    // triage ones (3 d SLA) too.
    let r = report(&policy, &lines, None);
    assert_eq!(r.stuck_applications["applied"], 4);
    assert_eq!(r.stuck_applications["triage"], 2);
}

#[test]
fn stuck_commands_are_pending_past_the_writeback_sla() {
    let policy = policy();
    // SLA 15 min = 900 s. Moves caused at 100 s (seven_moves); acks: c1 confirmed, c2 failed,
    // c3 rejected (none of them pending, so never stuck).
    let mut lines = seven_moves();
    lines.push(ack("k1", "c1", "ats_sink", 150, &mv(1), "confirmed"));
    lines.push(ack("k2", "c2", "ats_sink", 150, &mv(2), "failed"));
    lines.push(ack("k3", "c3", "ats_sink", 150, &mv(3), "rejected"));
    // One more pending command caused at 500 s.
    lines.push(created("cr8", "c8", 0));
    lines.push(moved("mv8", "c8", "screening_vendor", 500, "triage"));

    // At 1001 s: c4..c7 are 901 s old → 4 stuck; c8 is 501 s old → not.
    let r = report(&policy, &lines, Some(&t(1001)));
    assert_eq!(r.pending, 5);
    assert_eq!(r.stuck_commands, 4);
    // At 1000 s: exactly 900 s is not longer than the SLA.
    assert_eq!(report(&policy, &lines, Some(&t(1000))).stuck_commands, 0);
    // At 1401 s: c8 is 901 s old too.
    assert_eq!(report(&policy, &lines, Some(&t(1401))).stuck_commands, 5);
    // Before anything was issued: nothing is stuck.
    assert_eq!(report(&policy, &lines, Some(&t(0))).stuck_commands, 0);
}

#[test]
fn malformed_lines_are_reported_by_number_and_skipped() {
    let policy = policy();
    let text = [
        created("cr1", "c1", 0),
        "{not json".to_owned(),
        String::new(),
        moved("mv1", "c1", "screening_vendor", 10, "triage"),
        "{\"event_id\":\"x\"}".to_owned(),
    ]
    .join("\n");
    let mut err = Vec::new();
    let r = kpi::replay_file(text.as_bytes(), &policy, None, &mut err).unwrap();
    let err = String::from_utf8(err).unwrap();
    assert_eq!(r.malformed_lines, 2, "{err}");
    assert_eq!(r.events, 2);
    assert_eq!(r.commands_issued, 1);
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("line 5"), "{err}");
    assert_eq!(err.lines().count(), 2, "{err}");
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/samples/events.jsonl")
}

/// The sample's events, parsed.
fn sample_events() -> Vec<hirestate::model::Event> {
    std::fs::read_to_string(sample())
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_line(l, i + 1).unwrap())
        .collect()
}

#[test]
fn the_accumulator_tracks_stages_as_the_projection_does() {
    let policy = policy();
    let mut replayer = Replayer::new(&policy);
    let mut acc = KpiAccumulator::new();
    for e in sample_events() {
        let outcome = replayer.fold(&e);
        acc.observe(&e, &outcome);
    }
    for (cand, state) in replayer.states() {
        for (app_id, app) in &state.applications {
            let tracked = &acc.applications[cand][app_id];
            assert_eq!(tracked.stage, &*app.stage, "{app_id}");
            assert_eq!(tracked.entered_at, app.stage_entered_at, "{app_id}");
        }
        let issued: Vec<&str> = state.commands.keys().map(|k| &**k).collect();
        let tracked: Vec<&str> = acc
            .commands
            .get(cand)
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(tracked, issued, "{cand}");
    }
}

#[test]
fn any_interleaving_of_candidates_gives_the_same_report() {
    // What a multi-partition topic (or the live processor's tasks) may do: keep each
    // candidate's order, interleave candidates differently.
    let policy = policy();
    let events = sample_events();
    let run = |order: &[usize]| {
        let mut replayer = Replayer::new(&policy);
        let mut acc = KpiAccumulator::new();
        for &i in order {
            let outcome = replayer.fold(&events[i]);
            acc.observe(&events[i], &outcome);
        }
        serde_json::to_string(&acc.report(&policy, None)).unwrap()
    };
    let forward: Vec<usize> = (0..events.len()).collect();
    // Round-robin over candidates, each candidate's own events in order.
    let mut queues: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        queues.entry(e.candidate_id.as_str()).or_default().push(i);
    }
    let mut round_robin = Vec::new();
    let mut depth = 0;
    while round_robin.len() < events.len() {
        for q in queues.values().rev() {
            if let Some(&i) = q.get(depth) {
                round_robin.push(i);
            }
        }
        depth += 1;
    }
    assert_ne!(forward, round_robin);
    assert_eq!(run(&forward), run(&round_robin));
}
