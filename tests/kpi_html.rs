//! `hirestate kpi --html FILE`: on a generated stream the page has one SVG per chart, the
//! numbers of the same run's `--json` report (reformatted here, not taken from the page's code),
//! every stage of the policy in the state-machine picture, one arrowhead per transition, and no
//! script or outside reference; names with HTML-special characters come out escaped; an empty
//! log gives "no data" placeholders; an unwritable path fails naming the path and the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hirestate::kpi::{self, ConflictTally, KpiReport};
use hirestate::policy::{Policy, Stage, Transition};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hirestate");

/// The figures of the page, each holding one chart.
const CHARTS: [&str; 4] = [
    "chart-latency",
    "chart-success",
    "chart-conflicts",
    "chart-stuck",
];
const MACHINE: &str = "chart-state-machine";

mod support;

use support::policy_dir;

fn policy() -> Policy {
    hirestate::policy::load(policy_dir()).expect("the shipped policy loads")
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("HIRESTATE_POLICY_DIR", policy_dir())
        .output()
        .expect("run hirestate")
}

fn kpi(file: &Path, extra: &[&std::ffi::OsStr]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "kpi".as_ref(),
        "--from-file".as_ref(),
        file.as_os_str(),
        "--policy".as_ref(),
        policy_dir().as_os_str(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// A generated stream (`hirestate generate`, with acks) in `dir`.
fn generated(dir: &Path) -> PathBuf {
    let out = run(&[
        "generate".as_ref(),
        "--candidates".as_ref(),
        "150".as_ref(),
        "--seed".as_ref(),
        "11".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = dir.join("events.jsonl");
    std::fs::write(&file, out.stdout).unwrap();
    file
}

/// The part of `html` from the element with `id` to the end of its figure.
fn figure<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element {id}"));
    let end = html[start..]
        .find("</figure>")
        .unwrap_or_else(|| panic!("figure {id} is not closed"));
    &html[start..start + end]
}

/// Undoes the five escapes HTML and SVG text may carry.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The contents of the `<text>` elements of `svg`, in drawing order, trimmed and unescaped.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .map(|t| {
            let body = &t[t.find('>').expect("a text element's tag ends") + 1..];
            let end = body.find("</text>").expect("a text element is closed");
            unescape(body[..end].trim())
        })
        .collect()
}

/// `label` is drawn, and the next text drawn is `value` (each bar's total follows its name).
fn labelled(texts: &[String], label: &str, value: &str) -> bool {
    texts.windows(2).any(|w| w[0] == label && w[1] == value)
}

/// The headline table's row for `label`.
fn row(label: &str, value: &str) -> String {
    format!("<tr><th scope=\"row\">{label}</th><td class=\"n\">{value}</td></tr>")
}

/// What a self-contained page must never hold.
fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    for bad in [
        "<script",
        "javascript:",
        "http://",
        "https://",
        "url(",
        "@import",
        "<link",
        "<img",
        "<iframe",
        " src=",
        " href=",
        " onload=",
    ] {
        assert!(!lower.contains(bad), "the page contains {bad:?}");
    }
    assert!(html.starts_with("<!DOCTYPE html>\n"), "{}", &html[..40]);
    assert!(html.trim_end().ends_with("</html>"));
    for tag in ["figure", "table", "svg", "text", "tr", "p"] {
        assert_eq!(
            html.matches(&format!("<{tag}>")).count() + html.matches(&format!("<{tag} ")).count(),
            html.matches(&format!("</{tag}>")).count(),
            "<{tag}> opened and closed as often"
        );
    }
}

/// `1` → `1s`, `900` → `15m`: the largest unit that divides a whole number of seconds.
fn bound(le: f64) -> String {
    let secs = le as i64;
    for (unit, per) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs % per == 0 {
            return format!("{}{unit}", secs / per);
        }
    }
    format!("{secs}s")
}

#[test]
fn a_generated_stream_gives_every_chart_with_the_json_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let events = generated(dir.path());
    let page = dir.path().join("report.html");
    let out = kpi(
        &events,
        &["--json".as_ref(), "--html".as_ref(), page.as_os_str()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("--json still goes to stdout");
    let html = std::fs::read_to_string(&page).expect("the page was written");
    assert_self_contained(&html);

    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} is a count"));
    // The stream must exercise every chart, or this test proves little.
    assert!(n("confirmed") > 0 && n("failed") > 0 && n("rejected") > 0);
    assert!(n("field_conflicts") > 0, "{v}");
    let stuck: BTreeMap<String, u64> =
        serde_json::from_value(v["stuck_applications"].clone()).unwrap();
    assert!(stuck.values().any(|&s| s > 0), "{v}");

    for id in CHARTS.iter().chain([&MACHINE]) {
        let f = figure(&html, id);
        assert_eq!(f.matches("<svg").count(), 1, "one picture in {id}");
        assert!(f.contains("</svg>"), "{id}");
        assert!(!f.contains("no data"), "{id}");
    }

    // The headline table, value by value from the JSON.
    let rate = v["writeback_success_rate"].as_f64().unwrap();
    let secs = |k: &str| format!("{} s", v["latency_seconds"][k].as_f64().unwrap());
    for (label, value) in [
        ("as of", v["as_of"].as_str().unwrap().to_owned()),
        (
            "policy version",
            v["policy_version"].as_str().unwrap().to_owned(),
        ),
        ("events", n("events").to_string()),
        ("commands issued", n("commands_issued").to_string()),
        ("confirmed", n("confirmed").to_string()),
        ("failed", n("failed").to_string()),
        ("rejected", n("rejected").to_string()),
        ("pending", n("pending").to_string()),
        ("write-back success rate", format!("{:.1}%", rate * 100.0)),
        ("write-back latency p50", secs("p50")),
        ("write-back latency p95", secs("p95")),
        ("field conflicts", n("field_conflicts").to_string()),
        (
            "field conflicts rejected (golden_wins)",
            n("field_conflicts_rejected").to_string(),
        ),
        (
            "field conflicts accepted (latest_wins)",
            n("field_conflicts_accepted").to_string(),
        ),
        (
            "stuck applications",
            stuck.values().sum::<u64>().to_string(),
        ),
        ("stuck commands", n("stuck_commands").to_string()),
    ] {
        assert!(
            html.contains(&row(label, &value)),
            "missing {}",
            row(label, &value)
        );
    }

    // Latency: each bucket's own count (the JSON histogram is cumulative) under its bound.
    let latency = texts(figure(&html, "chart-latency"));
    let mut below = 0;
    let mut previous = None;
    for b in v["latency_seconds"]["histogram"].as_array().unwrap() {
        let count = b["count"].as_u64().unwrap();
        let label = match (b["le"].as_f64(), previous) {
            (Some(le), _) => format!("≤ {}", bound(le)),
            (None, Some(prev)) => format!("> {}", bound(prev)),
            (None, None) => unreachable!("+Inf comes last"),
        };
        assert!(
            labelled(&latency, &label, &(count - below).to_string()),
            "bucket {label}: {} in {latency:?}",
            count - below
        );
        below = count;
        previous = b["le"].as_f64();
    }

    // Success by target: the (target, op) rows summed per target.
    let success = texts(figure(&html, "chart-success"));
    let mut by_target: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for t in v["by_target_op"].as_array().unwrap() {
        let e = by_target
            .entry(t["target"].as_str().unwrap().to_owned())
            .or_default();
        e.0 += t["commands_issued"].as_u64().unwrap();
        e.1 += t["confirmed"].as_u64().unwrap();
    }
    assert!(by_target.len() > 1, "{by_target:?}");
    for (target, (issued, confirmed)) in &by_target {
        let label = format!(
            "{:.1}% of {issued}",
            100.0 * *confirmed as f64 / *issued as f64
        );
        assert!(
            labelled(&success, target, &label),
            "{target} {label} in {success:?}"
        );
    }

    let conflicts = texts(figure(&html, "chart-conflicts"));
    for (field, count) in v["field_conflicts_by_field"].as_object().unwrap() {
        assert!(
            labelled(&conflicts, field, &count.to_string()),
            "{field} in {conflicts:?}"
        );
    }
    let stuck_texts = texts(figure(&html, "chart-stuck"));
    for (stage, count) in &stuck {
        assert!(
            labelled(&stuck_texts, stage, &count.to_string()),
            "{stage} in {stuck_texts:?}"
        );
    }

    // The state machine: every stage drawn by name, one arrowhead per transition plus the one
    // into the initial stage.
    let policy = policy();
    let machine = figure(&html, MACHINE);
    let svg = &machine[..machine.find("</svg>").unwrap()];
    let names = texts(svg);
    for stage in policy.stages.keys() {
        assert!(
            names.iter().any(|n| n == stage),
            "{stage} not drawn: {names:?}"
        );
    }
    assert_eq!(
        svg.matches("<polygon").count(),
        policy.transitions.len() + 1
    );
    assert!(svg.matches("<rect").count() > policy.stages.len());
}

/// A policy with one more stage, named with every HTML-special character, reachable from the
/// initial stage; and a report naming such a target, field and stage.
#[test]
fn html_special_characters_are_escaped() {
    const NASTY_STAGE: &str = "<b>on&\"hold'</b>";
    const NASTY_FIELD: &str = "<script>alert(\"x\")</script>";
    const NASTY_TARGET: &str = "ats'<i>&co";

    let mut policy = policy();
    policy.stages.insert(
        NASTY_STAGE.to_owned(),
        Stage {
            name: NASTY_STAGE.to_owned(),
            rank: None,
            terminal: false,
            dwell_sla_secs: Some(3_600),
            owner: "ops <team>".to_owned(),
        },
    );
    let from = policy.initial_stage.to_string();
    let authority = policy.transitions[0].authority.clone();
    policy.transitions.push(Transition {
        from,
        to: NASTY_STAGE.into(),
        authority,
        owner: "a&b".to_owned(),
    });

    // Real numbers, with names replaced and added.
    let mut report = {
        let dir = tempfile::tempdir().unwrap();
        let events = std::fs::read(generated(dir.path())).unwrap();
        let mut err = Vec::new();
        kpi::replay_file(&events[..], &policy, None, &mut err).unwrap()
    };
    report.policy_version = "v<1>&\"2\"".to_owned();
    report.by_target_op[0].target = NASTY_TARGET.to_owned();
    report
        .field_conflicts_by_field
        .insert(NASTY_FIELD.to_owned(), 3);
    report.field_conflicts_by_field_source.insert(
        NASTY_FIELD.to_owned(),
        BTreeMap::from([(
            "ats".to_owned(),
            ConflictTally {
                rejected: 2,
                accepted: 1,
            },
        )]),
    );
    report.stuck_applications.insert(NASTY_STAGE.to_owned(), 4);

    let mut page = Vec::new();
    kpi::write_html(&mut page, &report, &policy).unwrap();
    let html = String::from_utf8(page).unwrap();
    assert_self_contained(&html);
    for raw in [
        NASTY_STAGE,
        NASTY_FIELD,
        NASTY_TARGET,
        "v<1>",
        "ops <team>",
        "<b>",
        "<i>",
    ] {
        assert!(!html.contains(raw), "{raw:?} went in unescaped");
    }
    // …and each is there, escaped, where it belongs.
    assert!(html.contains("v&lt;1&gt;&amp;&quot;2&quot;"));
    assert!(texts(figure(&html, MACHINE)).contains(&NASTY_STAGE.to_owned()));
    assert!(labelled(
        &texts(figure(&html, "chart-conflicts")),
        NASTY_FIELD,
        "3"
    ));
    assert!(labelled(
        &texts(figure(&html, "chart-stuck")),
        NASTY_STAGE,
        "4"
    ));
    assert!(texts(figure(&html, "chart-success")).contains(&NASTY_TARGET.to_owned()));
    // The transitions table names the new stage and the move's owner.
    let authority: Vec<&str> = policy.transitions[0]
        .authority
        .iter()
        .map(|a| a.as_str())
        .collect();
    let expected = format!(
        "<tr><td>{}</td><td>&lt;b&gt;on&amp;&quot;hold&#39;&lt;/b&gt;</td><td>{}</td>\
         <td>a&amp;b</td></tr>",
        policy.initial_stage,
        authority.join(", ")
    );
    assert!(html.contains(&expected), "missing {expected}");
}

fn empty_report(policy: &Policy) -> KpiReport {
    let mut err = Vec::new();
    let r = kpi::replay_file(&b""[..], policy, None, &mut err).unwrap();
    assert!(err.is_empty());
    r
}

#[test]
fn an_empty_log_gives_no_data_placeholders() {
    let policy = policy();
    let report = empty_report(&policy);
    assert_eq!((report.events, report.commands_issued), (0, 0));
    let mut page = Vec::new();
    kpi::write_html(&mut page, &report, &policy).unwrap();
    let html = String::from_utf8(page).unwrap();
    assert_self_contained(&html);
    for id in CHARTS {
        let f = figure(&html, id);
        assert!(f.contains("no data"), "{id}: {f}");
        assert!(!f.contains("<svg"), "{id}");
    }
    // The policy is there even when the log is not.
    let machine = figure(&html, MACHINE);
    assert!(machine.contains("<svg"));
    for stage in policy.stages.keys() {
        assert!(texts(machine).iter().any(|n| n == stage), "{stage}");
    }
    for (label, value) in [
        ("as of", "n/a (no events)"),
        ("commands issued", "0"),
        ("write-back success rate", "n/a"),
        ("write-back latency p50", "n/a"),
        ("stuck commands", "0"),
    ] {
        assert!(html.contains(&row(label, value)), "{}", row(label, value));
    }

    // The same through the binary, with the table on stdout.
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("empty.jsonl");
    std::fs::write(&events, "").unwrap();
    let page = dir.path().join("empty.html");
    let out = kpi(&events, &["--html".as_ref(), page.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("write-back KPIs as of -"));
    let written = std::fs::read_to_string(&page).unwrap();
    assert_eq!(written, html, "the CLI writes what write_html renders");
}

#[test]
fn an_unwritable_path_fails_naming_it_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/samples/events.jsonl");
    for path in [
        dir.path().join("no-such-dir").join("report.html"),
        // A directory is not a file.
        dir.path().to_path_buf(),
    ] {
        let why = std::fs::write(&path, b"").expect_err("the path is unwritable");
        let out = kpi(
            &sample,
            &["--json".as_ref(), "--html".as_ref(), path.as_os_str()],
        );
        assert!(!out.status.success(), "{}", path.display());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&path.display().to_string()),
            "the error names {}: {stderr}",
            path.display()
        );
        assert!(
            stderr.contains(&why.to_string()),
            "the error says why ({why}): {stderr}"
        );
        assert!(out.stdout.is_empty(), "nothing printed before the failure");
    }
}
