//! A policy changed between runs. Every offset the processor commits names the digest of the
//! policy its batch was folded under; a restore that folds, under the configured policy, events
//! committed under another must say so (its states are what the new policy makes of them, not
//! what the commands already committed said), and a switch at a caught-up store is logged with
//! the offset it takes effect from. Before, both happened without a word.

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::path::Path;

const SWITCHED: &str = "the policy changed since the partition's last commit";
const RESTORED_UNDER_ANOTHER: &str = "restoring events committed under another policy";

#[test]
fn a_restore_under_another_policy_than_the_commits_says_so() {
    let Some(bs) = support::bootstrap("a_restore_under_another_policy_than_the_commits_says_so")
    else {
        return;
    };
    let setup = processor::Setup::new(&bs, "polchange", 2);
    let file = setup.generate("events.jsonl", 40, 61);
    setup.produce(&file);
    let instance = setup.instance("x");
    let first = instance.run_to_idle(&setup, 2.0, &[]);
    let consumed = first["counts"]["consumed"].as_u64().expect("consumed");
    assert!(consumed > 0, "{first}");

    // The same policy again: nothing to say.
    instance.run_to_idle(&setup, 1.0, &[]);
    assert_eq!(instance.log_count(SWITCHED), 0, "{}", instance.log_tail());
    assert_eq!(instance.log_count(RESTORED_UNDER_ANOTHER), 0);

    // A second policy: the shipped one with one setting changed, signed.
    let b = setup.dir.path().join("policy-b");
    copy_policy(support::policy_dir(), &b);
    let policy_toml = b.join("policy.toml");
    let text = std::fs::read_to_string(&policy_toml).expect("policy.toml");
    assert!(
        text.contains("max_attempts = 5"),
        "the shipped policy changed"
    );
    std::fs::write(
        &policy_toml,
        text.replace("max_attempts = 5", "max_attempts = 6"),
    )
    .expect("writing policy.toml");
    let b_dir = b.display().to_string();
    setup.cli_ok(&["policy", "sign", &b_dir, "--version", "2024.2-test"], &[]);
    let digest = |dir: &Path| {
        hirestate::policy::load(dir)
            .expect("policy loads")
            .approval
            .digest
            .to_string()
    };
    let (a_digest, b_digest) = (digest(support::policy_dir()), digest(&b));
    assert_ne!(a_digest, b_digest);
    let with_b = [("HIRESTATE_POLICY_DIR", b_dir.as_str())];

    // Switched with the store caught up: nothing is restored under it; the switch is logged,
    // per partition, with the offset it takes effect from.
    let switched = instance.run_to_idle(&setup, 1.0, &with_b);
    assert_eq!(
        switched["counts"]["consumed"].as_u64(),
        Some(0),
        "{switched}"
    );
    assert_eq!(instance.log_count(RESTORED_UNDER_ANOTHER), 0);
    assert_eq!(instance.log_count(SWITCHED), 2, "{}", instance.log_tail());
    for line in log_lines(&instance, SWITCHED) {
        for part in [
            format!("\"committed_policy_digest\":\"{a_digest}\""),
            format!("\"policy_digest\":\"{b_digest}\""),
            "\"policy_version\":\"2024.2-test\"".to_owned(),
        ] {
            assert!(line.contains(&part), "{part} not in {line}");
        }
    }

    // A cold start under B, from the log (no snapshots were written at this cadence): every
    // event was committed under A and is restored under B, which must be said, per partition,
    // with the range.
    std::fs::remove_dir_all(&instance.state_dir).expect("removing the state directory");
    let cold = instance.run_to_idle(&setup, 1.0, &with_b);
    assert_eq!(cold["counts"]["consumed"].as_u64(), Some(0), "{cold}");
    let warned = log_lines(&instance, RESTORED_UNDER_ANOTHER);
    assert_eq!(
        warned.len(),
        2,
        "one per partition\n{}",
        instance.log_tail()
    );
    let mut restored = 0;
    for line in &warned {
        for part in [
            format!("\"committed_policy_digest\":\"{a_digest}\""),
            format!("\"policy_digest\":\"{b_digest}\""),
            "\"from\":0".to_owned(),
            "run once more with the policy of that digest".to_owned(),
        ] {
            assert!(line.contains(&part), "{part} not in {line}");
        }
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
        restored += v["fields"]["to"].as_u64().expect("to");
    }
    assert_eq!(restored, consumed, "the ranges cover the log");
}

/// The log lines of `instance` that contain `needle`.
fn log_lines(instance: &processor::Instance, needle: &str) -> Vec<String> {
    std::fs::read_to_string(&instance.log)
        .expect("log")
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// Copies the policy files of `from` into a new directory `to`.
fn copy_policy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("policy dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
        }
    }
}
