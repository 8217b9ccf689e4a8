//! Durable timers on the real broker, with the processor's clock driven by the test
//! (`HIRESTATE_CLOCK=file:…`): a retryable failure is retried under the same command id with
//! attempt 2 once the backoff passed; `writeback_stuck` and `stuck` fire once each, also when
//! the processor is aborted between the Kafka commit and the store write of the batch that
//! fired them, and when a new instance restores everything from the log into an empty state
//! directory. Expected alerts and commands are derived by hand from the events below and the
//! shipped policy (write-back SLA 15 min, backoff 30 s, dwell 2 d in `applied`, 3 d in
//! `triage`); command ids are recomputed with sha2.

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::collections::BTreeMap;
use std::fs;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// 2026-11-02T09:00:00Z, the events' time base.
const T0: &str = "2026-11-02T09:00:";

fn at(secs: u32) -> String {
    format!("{T0}{secs:02}Z")
}

fn command_id(event_id: &str, op: &str, target: &str) -> String {
    let digest = Sha256::digest(format!("{event_id}\x1f{op}\x1f{target}").as_bytes());
    hex::encode(&digest[..16])
}

fn event(id: &str, cand: &str, source: &str, t: &str, kind: Value) -> String {
    let mut e = json!({
        "event_id": id,
        "candidate_id": cand,
        "application_id": format!("app-{cand}"),
        "source_system": source,
        "source_principal": "p",
        "occurred_at": t,
    });
    for (k, v) in kind.as_object().expect("kind fields") {
        e[k] = v.clone();
    }
    e.to_string()
}

fn created(cand: &str) -> String {
    event(
        &format!("{cand}-created"),
        cand,
        "ats",
        &at(0),
        json!({"kind": "application_created", "requisition_id": "req-1", "region": "na"}),
    )
}

fn to_triage(cand: &str, secs: u32) -> String {
    event(
        &format!("{cand}-triage"),
        cand,
        "screening_vendor",
        &at(secs),
        json!({"kind": "stage_changed", "to_stage": "triage"}),
    )
}

/// Alerts on the topic: alert id → (kind, application), and how often each id was seen.
fn alerts(setup: &processor::Setup) -> (BTreeMap<String, (String, String)>, BTreeMap<String, u32>) {
    let mut by_id = BTreeMap::new();
    let mut seen = BTreeMap::new();
    for row in setup.tail(&setup.topic("hiring.alerts.v1")) {
        let v = &row["value"];
        let id = v["alert_id"].as_str().expect("alert_id").to_owned();
        let kind = v["kind"].as_str().expect("kind").to_owned();
        let app = v["application_id"]
            .as_str()
            .expect("application_id")
            .to_owned();
        by_id.insert(id.clone(), (kind, app));
        *seen.entry(id).or_default() += 1;
    }
    (by_id, seen)
}

/// (kind, application) → count, over distinct alert ids.
fn kinds(by_id: &BTreeMap<String, (String, String)>) -> BTreeMap<(String, String), u32> {
    let mut out = BTreeMap::new();
    for k in by_id.values() {
        *out.entry(k.clone()).or_default() += 1;
    }
    out
}

fn expect(pairs: &[(&str, &str)]) -> BTreeMap<(String, String), u32> {
    pairs
        .iter()
        .map(|(k, a)| ((k.to_string(), a.to_string()), 1))
        .collect()
}

fn assert_each_once(seen: &BTreeMap<String, u32>) {
    for (id, n) in seen {
        assert_eq!(*n, 1, "alert {id} is on the topic {n} times");
    }
}

#[test]
fn retries_and_sla_timers_fire_once_across_crashes_and_restores() {
    let Some(bs) =
        support::bootstrap("retries_and_sla_timers_fire_once_across_crashes_and_restores")
    else {
        return;
    };
    let setup = processor::Setup::new(&bs, "timers", 2);
    let cmd_a = command_id("a-triage", "move_stage", "greenhouse");
    let cmd_b = command_id("b-triage", "move_stage", "greenhouse");
    let lines = [
        created("a"),
        to_triage("a", 1),
        created("b"),
        to_triage("b", 2),
        event(
            "b-ack-1",
            "b",
            "ats_sink",
            &at(10),
            json!({"kind": "writeback_acked", "command_id": cmd_b, "status": "failed",
                   "error": "HTTP 503", "retryable": true}),
        ),
        created("c"),
    ];
    let file = setup.dir.path().join("events.jsonl");
    fs::write(&file, lines.join("\n") + "\n").expect("writing the events");
    setup.produce(&file);

    let clock = setup.dir.path().join("clock");
    let clock_env = format!("file:{}", clock.display());
    let node = setup.instance("n1").with_env("HIRESTATE_CLOCK", &clock_env);
    let set_clock = |t: &str| fs::write(&clock, t).expect("writing the clock file");

    // 1. One minute in: only the retry of b (failed at +10 s, backoff 30 s) is due.
    set_clock("2026-11-02T09:01:00Z");
    node.run_to_idle(&setup, 3.0, &[]);
    let greenhouse = setup.tail(&setup.topic("ats.commands.greenhouse.v1"));
    let mut attempts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for row in &greenhouse {
        let v = &row["value"];
        attempts
            .entry(v["command_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(v["attempt"].as_i64().unwrap());
        assert_eq!(
            row["headers"]["hirestate.attempt"].as_str(),
            Some(v["attempt"].as_i64().unwrap().to_string().as_str()),
            "the attempt header follows the record"
        );
    }
    assert_eq!(attempts.get(&cmd_a), Some(&vec![1]), "{attempts:?}");
    assert_eq!(attempts.get(&cmd_b), Some(&vec![1, 2]), "{attempts:?}");
    let (by_id, _) = alerts(&setup);
    assert!(
        by_id.is_empty(),
        "nothing is stuck after a minute: {by_id:?}"
    );

    // 2. An hour in: both commands are past the 15-minute write-back SLA. The batch that
    //    fires them is aborted after its commit, before the store write: the restarted
    //    processor fires the same deadlines again, and the fold sees duplicates.
    set_clock("2026-11-02T10:00:00Z");
    node.run_expecting_abort(&setup, "after_commit_before_store=1");
    node.run_to_idle(&setup, 3.0, &[]);
    let (by_id, seen) = alerts(&setup);
    assert_each_once(&seen);
    assert_eq!(
        kinds(&by_id),
        expect(&[("writeback_stuck", "app-a"), ("writeback_stuck", "app-b")]),
    );

    // 3. Four days in, with the state directory deleted: everything is restored from the log
    //    (deadline events included), the index is rebuilt from the states, and only the dwell
    //    SLAs fire: triage (3 d) for a and b, applied (2 d) for c.
    set_clock("2026-11-06T09:00:00Z");
    fs::remove_dir_all(&node.state_dir).expect("deleting the state directory");
    node.run_to_idle(&setup, 3.0, &[]);
    node.run_to_idle(&setup, 3.0, &[]); // and once more: nothing new
    let (by_id, seen) = alerts(&setup);
    assert_each_once(&seen);
    assert_eq!(
        kinds(&by_id),
        expect(&[
            ("writeback_stuck", "app-a"),
            ("writeback_stuck", "app-b"),
            ("stuck", "app-a"),
            ("stuck", "app-b"),
            ("stuck", "app-c"),
        ]),
    );
    // The retry was not repeated by the restore.
    let greenhouse = setup.tail(&setup.topic("ats.commands.greenhouse.v1"));
    assert_eq!(greenhouse.len(), 3, "{greenhouse:?}");

    // 4. A stored state that does not decode: the store fails to verify at start-up, is moved
    //    aside and rebuilt from the log; nothing is emitted again.
    {
        let db = sled::open(node.state_dir.join("projection")).expect("opening the store");
        db.insert(b"c/a", &b"\xff not a state"[..])
            .expect("corrupting");
        db.flush().expect("flushing");
    }
    let report = node.run_to_idle(&setup, 3.0, &[]);
    let why = report["store_rebuilt"].as_str().unwrap_or_default();
    assert!(why.contains("does not decode"), "{report}");
    let (by_id, seen) = alerts(&setup);
    assert_each_once(&seen);
    assert_eq!(by_id.len(), 5);

    // `kpi --bootstrap` reads the live topic (deadline events included) and agrees with `kpi
    // --from-file` over the same log read back: two commands issued, a's never acked
    // (pending), b's latest ack a failure.
    let log: Vec<String> = setup
        .tail(&setup.topic("hiring.events.v1"))
        .into_iter()
        .map(|row| row["value"].to_string())
        .collect();
    // The two SLA deadlines are in the log twice: fired once by the aborted run, once more by
    // the run after it (folded as duplicates, so alerted once).
    assert_eq!(
        log.len(),
        lines.len() + 1 + 2 * 2 + 3,
        "events + retry + 2 sla (twice) + 3 dwell deadlines"
    );
    let read_back = setup.dir.path().join("log.jsonl");
    fs::write(&read_back, log.join("\n") + "\n").expect("writing the log");
    let live: Value = serde_json::from_slice(&setup.cli_ok(
        &[
            "kpi",
            "--bootstrap",
            &bs,
            "--topic-prefix",
            &setup.prefix,
            "--json",
        ],
        &[],
    ))
    .expect("kpi --json");
    let offline: Value = serde_json::from_slice(&setup.cli_ok(
        &[
            "kpi",
            "--from-file",
            &read_back.display().to_string(),
            "--json",
        ],
        &[],
    ))
    .expect("kpi --json");
    assert_eq!(live, offline);
    assert_eq!(live["commands_issued"], 2);
    assert_eq!(live["failed"], 1);
    assert_eq!(live["pending"], 1);
}
