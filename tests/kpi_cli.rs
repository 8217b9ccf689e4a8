//! The built binary's `hirestate kpi`: `--json` on the shipped sample has every key the issue
//! lists, with the values the sample's README lets one work out by hand; `--as-of` moves the
//! stuck counts; malformed lines are reported by number and skipped; the table renders.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_hirestate");

mod support;

use support::policy_dir;

fn kpi(file: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("kpi")
        .arg("--from-file")
        .arg(file)
        .arg("--policy")
        .arg(policy_dir())
        .args(extra)
        .output()
        .expect("run hirestate kpi")
}

fn kpi_json(file: &Path, extra: &[&str]) -> (Value, String) {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let out = kpi(file, &args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "kpi failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "one JSON object: {stdout}"
    );
    (serde_json::from_str(&stdout).expect("JSON"), stderr)
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/samples/events.jsonl")
}

#[test]
fn json_on_the_sample_has_every_key() {
    let (v, stderr) = kpi_json(&sample(), &[]);
    assert!(stderr.is_empty(), "{stderr}");
    for key in [
        "commands_issued",
        "confirmed",
        "failed",
        "rejected",
        "pending",
        "writeback_success_rate",
        "field_conflicts",
        "latency_seconds",
        "stuck_applications",
        "stuck_commands",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    for key in ["p50", "p95"] {
        assert!(v["latency_seconds"].get(key).is_some(), "missing {key}");
    }
    let n = |k: &str| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("{k} is a count: {v}"))
    };
    assert_eq!(
        n("confirmed") + n("failed") + n("rejected") + n("pending"),
        n("commands_issued")
    );
    // From the sample's README and lines: two confirmed acks (evt-0005, 2.318 s after evt-0003;
    // evt-0006, 3 s after evt-0004), one failed (evt-0105), none rejected; evt-0403 names an
    // unknown command and counts for nothing. Nearest rank over [2.318, 3]: p50 = rank 1,
    // p95 = rank 2. One field-conflict incident: evt-0303 (the ATS asserting screening.*).
    assert_eq!((n("confirmed"), n("failed"), n("rejected")), (2, 1, 0));
    assert_eq!(v["latency_seconds"]["p50"], json!(2.318));
    assert_eq!(v["latency_seconds"]["p95"], json!(3.0));
    assert_eq!(n("field_conflicts"), 1);
    assert_eq!(v["field_conflicts_by_source"], json!({"ats": 1}));
    let rate = v["writeback_success_rate"].as_f64().expect("a rate");
    assert_eq!(rate, 2.0 / n("commands_issued") as f64);
    // The default as-of is the latest occurred_at in the sample (evt-0011, the hire), not
    // the last line's.
    assert_eq!(v["as_of"], json!("2026-11-25T09:30:00Z"));
    let stages = v["stuck_applications"].as_object().expect("an object");
    let keys: Vec<&str> = stages.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "applied",
            "interview",
            "offer",
            "screened",
            "screening",
            "triage"
        ]
    );
}

#[test]
fn as_of_moves_the_stuck_counts() {
    // c1 is created (applied, 2 d SLA) at 2026-11-09T09:30:00Z and never moves.
    let file = tempfile::NamedTempFile::new().unwrap();
    let lines = [
        json!({"event_id":"e1","candidate_id":"c1","application_id":"a1","source_system":"ats",
               "source_principal":"p","occurred_at":"2026-11-09T09:30:00Z",
               "kind":"application_created","requisition_id":"r","region":"na"}),
        // The vendor moves c2 to triage (3 d SLA) at 2026-11-10T00:00:00Z: one pending
        // greenhouse/move_stage command from then on (15 min SLA).
        json!({"event_id":"e2","candidate_id":"c2","application_id":"a2","source_system":"ats",
               "source_principal":"p","occurred_at":"2026-11-01T00:00:00Z",
               "kind":"application_created","requisition_id":"r","region":"na"}),
        json!({"event_id":"e3","candidate_id":"c2","application_id":"a2",
               "source_system":"screening_vendor","source_principal":"p",
               "occurred_at":"2026-11-10T00:00:00Z","kind":"stage_changed","to_stage":"triage"}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    std::fs::write(file.path(), lines).unwrap();

    let stuck = |as_of: &str| {
        let (v, _) = kpi_json(file.path(), &["--as-of", as_of]);
        (
            v["stuck_applications"]["applied"].as_u64().unwrap(),
            v["stuck_applications"]["triage"].as_u64().unwrap(),
            v["stuck_commands"].as_u64().unwrap(),
        )
    };
    // Default as-of = 2026-11-10T00:00:00Z: a1 in applied 14.5 h; the command 0 s old.
    assert_eq!(stuck("2026-11-10T00:00:00Z"), (0, 0, 0));
    // a1: 2 d − 1 s, then 2 d + 1 s. The command: 15 min + 1 s is past its SLA.
    assert_eq!(stuck("2026-11-11T09:29:59Z"), (0, 0, 1));
    assert_eq!(stuck("2026-11-11T09:30:01Z"), (1, 0, 1));
    // a2: 3 d after its move, then 3 d + 1 s; an offset is the same instant in UTC.
    assert_eq!(stuck("2026-11-13T00:00:00Z"), (1, 0, 1));
    assert_eq!(stuck("2026-11-13T01:00:01+01:00"), (1, 1, 1));
    // A minute after the move, the command is not yet stuck.
    assert_eq!(stuck("2026-11-10T00:01:00Z"), (0, 0, 0));
}

#[test]
fn a_bad_as_of_is_refused() {
    let out = kpi(&sample(), &["--as-of", "yesterday"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--as-of"), "{stderr}");
}

#[test]
fn malformed_lines_go_to_stderr_with_their_number() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let good = std::fs::read_to_string(sample()).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    lines.insert(2, "{\"event_id\": 3");
    std::fs::write(file.path(), lines.join("\n")).unwrap();
    let (v, stderr) = kpi_json(file.path(), &[]);
    assert!(stderr.contains("line 3"), "{stderr}");
    assert_eq!(v["malformed_lines"], json!(1));
    let (clean, _) = kpi_json(&sample(), &[]);
    assert_eq!(v["commands_issued"], clean["commands_issued"]);
}

#[test]
fn the_table_renders() {
    let out = kpi(&sample(), &[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for heading in [
        "write-back KPIs as of 2026-11-25T09:30:00Z",
        "greenhouse/move_stage",
        "total",
        "field conflicts: 1",
        "stuck applications",
        "stuck commands",
    ] {
        assert!(text.contains(heading), "missing {heading:?}:\n{text}");
    }
}
