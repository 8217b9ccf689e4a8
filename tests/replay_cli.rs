//! The built binary's `replay --from-file`: one output row per good event with the decision,
//! reason, stages and commands DESIGN.md "Offline replay output" promises; malformed lines
//! reported by number (and field), counted, never fatal; a bad policy refused with file:line.
//!
//! Expected rows are written by hand from DESIGN.md and schemas/policy/; command ids are
//! recomputed here with `sha2`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_hirestate");

/// DESIGN.md: lowercase hex of the first 16 bytes of SHA-256(event_id 0x1F op 0x1F target).
fn expected_id(event_id: &str, op: &str, target: &str) -> String {
    let digest = Sha256::digest(format!("{event_id}\x1f{op}\x1f{target}").as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

mod support;

use support::policy_dir;

fn event(id: &str, source: &str, at: &str, kind: Value) -> String {
    let mut e = json!({
        "event_id": id,
        "candidate_id": "cand-1",
        "application_id": "app-1",
        "source_system": source,
        "source_principal": format!("{source}-principal"),
        "occurred_at": at,
    });
    let obj = e.as_object_mut().unwrap();
    for (k, v) in kind.as_object().unwrap() {
        obj.insert(k.clone(), v.clone());
    }
    e.to_string()
}

const MEDIA: &str = "https://media.brightscreen.example/r/8f1c2a";
const TRANSCRIPT: &str = "https://media.brightscreen.example/t/8f1c2a";

/// The input file, line by line (1-based numbers in the comments are what stderr must name).
fn input_lines() -> Vec<String> {
    let base = |id: &str| {
        json!({
            "event_id": id, "candidate_id": "cand-1", "application_id": "app-1",
            "source_system": "ats", "source_principal": "gh",
            "occurred_at": "2026-11-02T12:00:00Z",
        })
    };
    let with = |mut v: Value, extra: Value| {
        for (k, x) in extra.as_object().unwrap() {
            v.as_object_mut().unwrap().insert(k.clone(), x.clone());
        }
        v.to_string()
    };
    vec![
        // 1: good
        event(
            "e1",
            "ats",
            "2026-11-02T09:00:00Z",
            json!({"kind": "application_created", "requisition_id": "req-eng-12", "region": "na"}),
        ),
        // 2: good
        event(
            "e2",
            "screening_vendor",
            "2026-11-02T10:00:00Z",
            json!({"kind": "stage_changed", "to_stage": "triage"}),
        ),
        // 3: unknown kind
        with(
            base("bad3"),
            json!({"kind": "stage_teleported", "to_stage": "offer"}),
        ),
        // 4: good (rejected by the fold, still a row)
        event(
            "e3",
            "screening_vendor",
            "2026-11-02T11:00:00Z",
            json!({"kind": "stage_changed", "to_stage": "offer"}),
        ),
        // 5: missing field
        with(base("bad5"), json!({"kind": "stage_changed"})),
        // 6: good
        event(
            "e4",
            "ats",
            "2026-11-03T09:00:00Z",
            json!({"kind": "stage_changed", "to_stage": "screening"}),
        ),
        // 7: wrong type
        with(
            base("bad7"),
            json!({"kind": "screening_completed", "score": "high", "recommendation": "advance",
                   "rubric_version": "r", "reviewer_ids": ["rev-1"]}),
        ),
        // 8: good
        event(
            "e5",
            "screening_vendor",
            "2026-11-05T18:12:44Z",
            json!({"kind": "screening_completed", "score": 82.5, "recommendation": "advance",
                   "rubric_version": "swe-2026.3", "reviewer_ids": ["rev-17", "rev-22"],
                   "media_url": MEDIA, "transcript_url": TRANSCRIPT}),
        ),
        // 9: not RFC 3339
        with(
            {
                let mut v = base("bad9");
                v["occurred_at"] = json!("yesterday");
                v
            },
            json!({"kind": "stage_changed", "to_stage": "triage"}),
        ),
        // 10: empty id
        with(
            base(""),
            json!({"kind": "stage_changed", "to_stage": "triage"}),
        ),
        // 11: oversize string
        with(
            base("bad11"),
            json!({"kind": "stage_changed", "to_stage": "triage", "reason": "x".repeat(9_000)}),
        ),
        // 12: good: e2 again
        event(
            "e2",
            "screening_vendor",
            "2026-11-02T10:00:00Z",
            json!({"kind": "stage_changed", "to_stage": "triage"}),
        ),
        // 13: good: the sink confirms e2's move_stage
        event(
            "e6",
            "ats_sink",
            "2026-11-02T10:00:02.318Z",
            json!({"kind": "writeback_acked", "command_id": expected_id("e2", "move_stage", "greenhouse"),
                   "status": "confirmed", "remote_ref": "gh-1"}),
        ),
        // 14: good: an application nobody created
        {
            let mut v: Value = serde_json::from_str(&event(
                "e7",
                "ats",
                "2026-11-06T09:00:00Z",
                json!({"kind": "stage_changed", "to_stage": "interview"}),
            ))
            .unwrap();
            v["candidate_id"] = json!("cand-2");
            v["application_id"] = json!("app-2");
            v.to_string()
        },
        // 15: blank, skipped
        String::new(),
        // 16: not JSON at all
        "{this is not json".to_owned(),
    ]
}

const GOOD_EVENTS: usize = 8;
const MALFORMED: [usize; 7] = [3, 5, 7, 9, 10, 11, 16];

fn write_input(dir: &Path) -> PathBuf {
    let path = dir.join("events.jsonl");
    std::fs::write(&path, input_lines().join("\n") + "\n").unwrap();
    path
}

fn replay(file: &Path, format: &str, policy: &Path) -> Output {
    Command::new(BIN)
        .args(["replay", "--from-file"])
        .arg(file)
        .args(["--format", format, "--policy"])
        .arg(policy)
        .env_remove("HIRESTATE_POLICY_DIR")
        .env_remove("RUST_LOG")
        .output()
        .expect("run hirestate")
}

fn cmd(event_id: &str, op: &str, target: &str) -> (String, String, String) {
    (
        expected_id(event_id, op, target),
        op.to_owned(),
        target.to_owned(),
    )
}

#[test]
fn replay_jsonl_prints_one_row_per_good_event() {
    let dir = tempfile::tempdir().unwrap();
    let out = replay(&write_input(dir.path()), "jsonl", policy_dir());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);

    let rows: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(rows.len(), GOOD_EVENTS, "{stdout}");

    // (event, candidate, application, decision, reason, before, after, commands)
    type Want<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        Vec<(String, String, String)>,
    );
    let want: Vec<Want> = vec![
        (
            "e1",
            "cand-1",
            "app-1",
            "applied",
            None,
            None,
            Some("applied"),
            vec![],
        ),
        (
            "e2",
            "cand-1",
            "app-1",
            "applied",
            None,
            Some("applied"),
            Some("triage"),
            vec![cmd("e2", "move_stage", "greenhouse")],
        ),
        (
            "e3",
            "cand-1",
            "app-1",
            "rejected",
            Some("forbidden_transition"),
            Some("triage"),
            Some("triage"),
            vec![],
        ),
        (
            "e4",
            "cand-1",
            "app-1",
            "applied",
            None,
            Some("triage"),
            Some("screening"),
            vec![],
        ),
        (
            "e5",
            "cand-1",
            "app-1",
            "applied",
            None,
            Some("screening"),
            Some("screened"),
            vec![
                cmd("e5", "move_stage", "greenhouse"),
                cmd("e5", "update_fields", "greenhouse"),
            ],
        ),
        (
            "e2",
            "cand-1",
            "app-1",
            "duplicate",
            None,
            Some("screened"),
            Some("screened"),
            vec![],
        ),
        (
            "e6",
            "cand-1",
            "app-1",
            "applied",
            None,
            Some("screened"),
            Some("screened"),
            vec![],
        ),
        (
            "e7",
            "cand-2",
            "app-2",
            "rejected",
            Some("unknown_application"),
            None,
            None,
            vec![],
        ),
    ];
    for (row, (id, cand, app, decision, reason, before, after, cmds)) in rows.iter().zip(want) {
        let ctx = format!("row {row}");
        assert_eq!(row["event_id"], json!(id), "{ctx}");
        assert_eq!(row["candidate_id"], json!(cand), "{ctx}");
        assert_eq!(row["application_id"], json!(app), "{ctx}");
        assert_eq!(row["decision"], json!(decision), "{ctx}");
        assert_eq!(row["reason"], json!(reason), "{ctx}");
        assert_eq!(row["stage_before"], json!(before), "{ctx}");
        assert_eq!(row["stage_after"], json!(after), "{ctx}");
        let got = row["commands"].as_array().expect("commands is a list");
        let mut got: Vec<(String, String, String)> = got
            .iter()
            .map(|c| {
                (
                    c["command_id"].as_str().unwrap().to_owned(),
                    c["op"].as_str().unwrap().to_owned(),
                    c["target"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        got.sort();
        let mut cmds = cmds;
        cmds.sort();
        assert_eq!(got, cmds, "{ctx}");
    }

    // The payloads, in the target's vocabulary.
    let find = |row: &Value, op: &str| -> Value {
        row["commands"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["op"] == json!(op))
            .cloned()
            .unwrap()
    };
    assert_eq!(
        find(&rows[1], "move_stage")["remote_stage"],
        json!("Recruiter Triage")
    );
    assert_eq!(
        find(&rows[4], "move_stage")["remote_stage"],
        json!("Screen Complete")
    );
    assert_eq!(
        find(&rows[4], "update_fields")["fields"],
        json!({
            "screening_score": 82.5,
            "screening_recommendation": "advance",
            "screening_rubric_version": "swe-2026.3",
            "screening_reviewers": ["rev-17", "rev-22"],
            "screening_recording_url": MEDIA,
            "screening_transcript_url": TRANSCRIPT,
        })
    );
}

#[test]
fn replay_reports_each_malformed_line_by_number_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = replay(&write_input(dir.path()), "jsonl", policy_dir());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);
    let mentions = |n: usize| {
        stderr
            .lines()
            .filter(|l| {
                l.split(|c: char| !c.is_ascii_alphanumeric())
                    .collect::<Vec<_>>()
                    .windows(2)
                    .any(|w| w[0] == "line" && w[1] == n.to_string())
            })
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    for n in MALFORMED {
        assert_eq!(mentions(n).len(), 1, "line {n} reported once:\n{stderr}");
    }
    // Good lines and the blank line are not reported.
    for n in [1, 2, 4, 6, 8, 12, 13, 14, 15] {
        assert!(
            mentions(n).is_empty(),
            "line {n} is not malformed:\n{stderr}"
        );
    }
    // The ones that name their field today.
    for (n, field) in [(5, "to_stage"), (10, "event_id"), (11, "reason")] {
        assert!(
            mentions(n)[0].contains(field),
            "line {n} names `{field}`:\n{stderr}"
        );
    }
    assert!(
        stderr.contains(&format!("malformed lines: {}", MALFORMED.len())),
        "malformed lines are counted:\n{stderr}"
    );
}

#[test]
fn replay_names_the_field_of_every_malformed_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = replay(&write_input(dir.path()), "jsonl", policy_dir());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (n, field) in [
        (3, "kind"),
        (5, "to_stage"),
        (7, "score"),
        (9, "occurred_at"),
        (10, "event_id"),
        (11, "reason"),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.contains(&format!("line {n}:")))
            .unwrap_or_else(|| panic!("line {n} not reported:\n{stderr}"));
        assert!(
            line.contains(field),
            "line {n} should name `{field}`: {line}"
        );
    }
}

#[test]
fn replay_table_format_prints_a_row_per_good_event() {
    let dir = tempfile::tempdir().unwrap();
    let out = replay(&write_input(dir.path()), "table", policy_dir());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].contains("decision") && lines[0].contains("reason"),
        "header: {}",
        lines[0]
    );
    let rows_of = |id: &str| {
        lines[1..]
            .iter()
            .filter(|l| l.split_whitespace().next() == Some(id))
            .copied()
            .collect::<Vec<_>>()
    };
    for (id, n) in [
        ("e1", 1),
        ("e2", 2),
        ("e3", 1),
        ("e4", 1),
        ("e5", 1),
        ("e6", 1),
        ("e7", 1),
    ] {
        assert_eq!(rows_of(id).len(), n, "{id}:\n{stdout}");
    }
    assert!(
        rows_of("e3")[0].contains("forbidden_transition"),
        "{stdout}"
    );
    assert!(rows_of("e7")[0].contains("unknown_application"), "{stdout}");
    assert!(rows_of("e2")[1].contains("duplicate"), "{stdout}");
    assert!(
        rows_of("e5")[0].contains("greenhouse"),
        "commands shown: {stdout}"
    );
    for n in MALFORMED {
        assert!(stderr.contains(&format!("line {n}")), "{stderr}");
    }
}

#[test]
fn replay_refuses_a_bad_policy_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path());
    let policy = dir.path().join("policy");
    std::fs::create_dir(&policy).unwrap();
    for entry in std::fs::read_dir(policy_dir()).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_file() {
            std::fs::copy(entry.path(), policy.join(entry.file_name())).unwrap();
        }
    }
    let stages = policy.join("stages.toml");
    let mut text = std::fs::read_to_string(&stages).unwrap();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let header_line = text.lines().count() + 1;
    text.push_str("[stage.limbo]\nrank = \"seven\"\n");
    std::fs::write(&stages, text).unwrap();

    let out = replay(&input, "jsonl", &policy);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad policy must fail:\n{stderr}");
    assert!(out.stdout.is_empty(), "no row under a refused policy");
    let named = [header_line, header_line + 1]
        .iter()
        .any(|n| stderr.contains(&format!("stages.toml:{n}")));
    assert!(
        named,
        "stderr names stages.toml:{header_line} or :{}:\n{stderr}",
        header_line + 1
    );
}

#[test]
fn replay_refuses_a_missing_policy_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = replay(
        &write_input(dir.path()),
        "jsonl",
        &dir.path().join("no-such-policy"),
    );
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

/// Runs `args`, reads the first line of its standard output and closes the pipe (as `| head -1`
/// does), then waits for it: the line read, and how it ended.
fn first_line_then_close(args: &[&str]) -> (String, Output) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(BIN)
        .args(args)
        .env("HIRESTATE_POLICY_DIR", policy_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawning hirestate");
    let mut line = String::new();
    {
        let mut out = BufReader::new(child.stdout.take().expect("its stdout"));
        out.read_line(&mut line).expect("reading the first line");
    }
    (line, child.wait_with_output().expect("its exit"))
}

#[test]
fn a_reader_that_goes_away_ends_a_tool_quietly() {
    // Megabytes of output, far more than a pipe holds: the tools write after the reader left.
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dir.path().join("events.jsonl");
    let generated = Command::new(BIN)
        .args(["generate", "--candidates", "3000"])
        .output()
        .expect("running generate");
    assert!(generated.status.success());
    std::fs::write(&events, &generated.stdout).expect("writing the events");
    let events = events.to_str().expect("a UTF-8 path");
    for args in [
        &["generate", "--candidates", "3000"][..],
        &["replay", "--from-file", events, "--format", "jsonl"][..],
    ] {
        let (line, out) = first_line_then_close(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(line.starts_with("{\"event_id\""), "{args:?}: {line}");
        // Before: `hirestate: Broken pipe (os error 32)` and exit 1, as if the tool had failed.
        assert!(
            out.status.success() && !err.contains("Broken pipe") && !err.contains("panicked"),
            "{args:?}: {} {err}",
            out.status
        );
    }
}
