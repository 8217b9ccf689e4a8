//! A health address that cannot be bound stops `hirestate run` at start-up, naming the address
//! and the setting. Before, the bind error was only logged and the processor ran on without
//! `/healthz`, `/readyz` or `/metrics`, its probes answered by whatever held the port (by hand:
//! a Python `http.server` on the port, and `hirestate run` folded its log and exited 0).
//! The check comes before the cluster is asked, so no broker is needed here.

use std::process::Command;

#[test]
fn a_health_address_in_use_refuses_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("its address").to_string();
    let state = tempfile::tempdir().expect("state dir");
    let out = Command::new(env!("CARGO_BIN_EXE_hirestate"))
        .args(["run", "--health-addr", &addr, "--bootstrap", "127.0.0.1:9"])
        .env("HIRESTATE_STATE_DIR", state.path())
        .env(
            "HIRESTATE_POLICY_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/policy"),
        )
        .env("HIRESTATE_TRANSACTION_TIMEOUT_MS", "3000")
        .output()
        .expect("hirestate run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exited {}:\n{stderr}", out.status);
    let last = stderr.lines().last().unwrap_or_default();
    for needle in [
        format!("cannot serve the health endpoints on {addr}"),
        "HIRESTATE_HEALTH_ADDR".to_owned(),
    ] {
        assert!(
            last.contains(&needle),
            "{needle:?} not in the last line: {last}"
        );
    }
}
