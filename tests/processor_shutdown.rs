//! SIGTERM and the health endpoints: `/healthz` answers as soon as the process is up,
//! `/readyz` only once partitions are assigned and restored; SIGTERM finishes the batch,
//! flushes the store, leaves the group and exits 0 within a bounded time, printing its report.

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::io::Read;
use std::time::{Duration, Instant};

use processor::{wait_for, Setup};

/// The status code of `GET path` on `addr`, or `None` when nothing answers.
fn get(addr: &str, path: &str) -> Option<u16> {
    support::http_get(addr, path).map(|(code, _)| code)
}

/// Sends SIGTERM to `child`.
fn sigterm(child: &std::process::Child) {
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("running kill");
    assert!(kill.success(), "kill -TERM {} failed", child.id());
}

fn wait_status(addr: &str, path: &str, want: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if get(addr, path) == Some(want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn health_endpoints_and_sigterm_shutdown() {
    let Some(bs) = support::bootstrap("health_endpoints_and_sigterm_shutdown") else {
        return;
    };
    let setup = Setup::new(&bs, "shutdown", 2);
    let file = setup.generate("events.jsonl", 50, 11);
    setup.produce(&file);
    let addr = support::free_addr();
    let inst = setup.instance("a");
    // Idle exit far away: only the signal may stop it.
    let mut child = inst.spawn(&setup, 600.0, &[("HIRESTATE_HEALTH_ADDR", addr.as_str())]);

    assert!(
        wait_status(&addr, "/healthz", 200, Duration::from_secs(30)),
        "/healthz never answered 200"
    );
    assert!(
        wait_status(&addr, "/readyz", 200, Duration::from_secs(60)),
        "/readyz never became ready:\n{}",
        inst.log_tail()
    );

    let sent = Instant::now();
    sigterm(&child);
    let status = wait_for(&mut child, Duration::from_secs(20)).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("no exit within 20 s of SIGTERM:\n{}", inst.log_tail())
    });
    assert!(
        status.success(),
        "exit {status:?} after SIGTERM:\n{}",
        inst.log_tail()
    );
    assert!(sent.elapsed() < Duration::from_secs(20));
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("report {out:?}: {e}"));
    assert!(
        get(&addr, "/healthz").is_none(),
        "the endpoints go away with the process"
    );

    // What the first run committed before the signal is not consumed again: a second run
    // consumes exactly the rest.
    let lines = processor::read_lines(&file).len() as u64;
    let first = report["counts"]["consumed"].as_u64().expect("consumed");
    assert!(first <= lines, "{report}");
    let second = inst.run_to_idle(&setup, 2.0, &[]);
    assert_eq!(
        second["counts"]["consumed"].as_u64(),
        Some(lines - first),
        "first {first}, then {second}"
    );
}

/// SIGTERM while a partition restores (here a cold start folding the whole log, slowed by a
/// fail point to ~60 s): the restore stops at the next record and the processor exits 0 within
/// the same bound as from a batch, writing nothing of what it folded; the next start restores
/// in full and the projection equals a clean replay. Before, the signal waited for the whole
/// restore (minutes on a long log) — past any orchestrator's grace period.
#[test]
fn sigterm_during_a_restore_stops_it_and_the_next_start_restores_in_full() {
    let Some(bs) =
        support::bootstrap("sigterm_during_a_restore_stops_it_and_the_next_start_restores_in_full")
    else {
        return;
    };
    let setup = Setup::new(&bs, "shutdown-restore", 1);
    let file = setup.generate("events.jsonl", 100, 12);
    setup.produce(&file);
    let inst = setup.instance("r");
    inst.run_to_idle(&setup, 2.0, &[]);
    // Cold start: the group's offsets are at the end, the store is gone, so the restore folds
    // the log from its start; 50 ms a record makes it take about a minute.
    std::fs::remove_dir_all(&inst.state_dir).expect("removing the state directory");
    let mut child = inst.spawn(
        &setup,
        600.0,
        &[("HIRESTATE_FAILPOINTS", "during_restore=sleep:50")],
    );
    inst.await_log(
        &mut child,
        "restoring: folding",
        0,
        "the restore never started",
    );
    std::thread::sleep(Duration::from_millis(500));
    sigterm(&child);
    let status = wait_for(&mut child, Duration::from_secs(20)).unwrap_or_else(|| {
        panic!(
            "no exit within 20 s of SIGTERM during a restore:\n{}",
            inst.log_tail()
        )
    });
    assert!(
        status.success(),
        "exit {status:?} after SIGTERM:\n{}",
        inst.log_tail()
    );
    assert_eq!(
        inst.log_count("restore interrupted"),
        1,
        "{}",
        inst.log_tail()
    );

    let again = inst.run_to_idle(&setup, 2.0, &[]);
    assert_eq!(again["counts"]["consumed"].as_u64(), Some(0), "{again}");
    processor::assert_states_equal(&inst.state_dump(&setup), &processor::clean_states(&[&file]));
}

#[test]
fn sigterm_while_waiting_for_the_cluster_ends_the_wait_and_exits_0() {
    // No broker is needed: the cluster is a port nothing listens on, and the start-up check
    // would wait 60 s for it. Before, SIGTERM was served only once that wait had ended (by
    // hand: 28 s after the signal, at the default 30 s).
    let addr = support::free_addr();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = processor::bare_command(&["run"])
        .env("KAFKA_BOOTSTRAP", support::free_addr())
        .env("HIRESTATE_POLICY_DIR", support::policy_dir())
        .env("HIRESTATE_STATE_DIR", dir.path().join("state"))
        .env("HIRESTATE_HEALTH_ADDR", &addr)
        .env("HIRESTATE_TRANSACTION_TIMEOUT_MS", "60000")
        .env("HIRESTATE_SESSION_TIMEOUT_MS", "90000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawning hirestate run");
    // The endpoints answer once the signals are watched.
    assert!(
        wait_status(&addr, "/healthz", 200, Duration::from_secs(30)),
        "/healthz never answered 200"
    );
    sigterm(&child);
    // Well before the 60 s wait could end on its own.
    let status = wait_for(&mut child, Duration::from_secs(40));
    let out = child.wait_with_output().expect("its output");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?} after SIGTERM during the start-up wait:\n{said}"
    );
    assert!(
        said.contains("shutdown requested while waiting for the Kafka cluster"),
        "{said}"
    );
}
