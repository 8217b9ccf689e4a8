//! The cluster's security settings, against a broker that checks them: the test broker's
//! SASL/PLAIN listener (`deploy/kafka/server.properties.in`, user `hirestate`).
//!
//! - Every command authenticates: `topics ensure`, `produce`, `run` (its group consumer,
//!   producer, restore readers and admin checks), and `tail` reading the outputs back; the
//!   outputs equal the offline replay, and the password is in no log.
//! - Refused credentials stop every command that talks to Kafka at once, saying the cluster
//!   refused them and naming the settings (`topics::reach`). Before, `run` waited 30 s and
//!   asked "is KAFKA_BOOTSTRAP right and the cluster up?", `topics ensure` waited 60 s for
//!   `OperationTimedOut`, `tail` and `replay --bootstrap` failed on a metadata fetch error, and
//!   `produce` never ended (each record waited for its delivery timeout).

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::process::Stdio;
use std::time::Duration;

use support::{as_env, sasl_bootstrap, sasl_plain};

const SECRET: &str = "hirestate-test-secret";

fn security(password: &str) -> [(&'static str, String); 4] {
    sasl_plain("hirestate", password)
}

#[test]
fn every_command_authenticates_with_sasl_and_the_outputs_equal_the_replay() {
    let Some(bs) =
        sasl_bootstrap("every_command_authenticates_with_sasl_and_the_outputs_equal_the_replay")
    else {
        return;
    };
    let settings = security(SECRET);
    let setup = processor::Setup::with_env(&bs, "sasl", 2, &as_env(&settings));
    let file = setup.generate("events.jsonl", 150, 73);
    setup.produce(&file);
    let expected = processor::expected(&setup, &file);

    let instance = setup.instance("x");
    let report = instance.run_to_idle(&setup, 2.0, &[]);
    processor::assert_counts(&report, &expected.counts);
    let (actual, _) = setup.read_back(&setup.output_topics());
    processor::assert_outputs_equal(&expected.outputs, &actual);
    let log = std::fs::read_to_string(&instance.log).expect("the instance log");
    assert!(!log.contains(SECRET), "the SASL password is in the log");
}

#[test]
fn refused_credentials_stop_every_command_at_once_naming_the_settings() {
    let Some(bs) =
        sasl_bootstrap("refused_credentials_stop_every_command_at_once_naming_the_settings")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        processor::bare_command(&["generate", "--candidates", "3"])
            .output()
            .expect("generate")
            .stdout,
    )
    .expect("events file");
    let events = events.to_str().expect("a UTF-8 path");
    let prefix = support::unique("sasl-refused");
    let topic = format!("{prefix}.hiring.events.v1");
    let state = dir.path().join("state");
    let wrong = security("wr0ng-secret");
    let commands: [&[&str]; 5] = [
        &["run", "--exit-when-idle", "2"],
        &["topics", "ensure"],
        &["produce", "--from-file", events, "--topic", &topic],
        &["tail", "--topic", &topic, "--from-beginning", "--until-end"],
        &["replay", "--bootstrap", &bs],
    ];
    for args in commands {
        let mut child = processor::bare_command(args)
            .env("KAFKA_BOOTSTRAP", &bs)
            .env("HIRESTATE_TOPIC_PREFIX", &prefix)
            .env("HIRESTATE_GROUP_ID", &prefix)
            .env("HIRESTATE_STATE_DIR", &state)
            .envs(as_env(&wrong))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning hirestate");
        // A guard against waiting for ever (before, `produce` did), not a measure of speed.
        let status = processor::wait_for(&mut child, Duration::from_secs(120));
        let out = child.wait_with_output().expect("its stderr");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            status.is_some_and(|s| !s.success()),
            "{args:?}: {status:?}\n{said}"
        );
        let last = said.lines().last().unwrap_or_default();
        assert!(
            last.contains("refused hirestate's credentials")
                && last.contains("Authentication failed")
                && last.contains("HIRESTATE_KAFKA_SASL_PASSWORD"),
            "{args:?}: {last}"
        );
        assert!(
            !said.contains("wr0ng-secret"),
            "{args:?}: the password in: {said}"
        );
    }
}
