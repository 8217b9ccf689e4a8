//! The cluster's security settings, against a broker that checks them: the test broker's
//! SASL/PLAIN listener (`deploy/kafka/server.properties.in`, user `hirestate`).
//!
//! - Every command authenticates: `topics ensure`, `produce`, `run` (its group consumer,
//!   producer, restore readers and admin checks), and `tail` reading the outputs back; the
//!   outputs equal the offline replay, and the password is in no log.
//! - A client without SASL (`plaintext`) at the SASL listener stops every command at once,
//!   told the listener requires SASL and what to set (before: the whole wait, then asked
//!   whether the protocol matched the listener).
//! - Refused credentials stop every command that talks to Kafka at once, saying the cluster
//!   refused them and naming the settings (`topics::reach`). Before, `run` waited 30 s and
//!   asked "is KAFKA_BOOTSTRAP right and the cluster up?", `topics ensure` waited 60 s for
//!   `OperationTimedOut`, `tail` and `replay --bootstrap` failed on a metadata fetch error, and
//!   `produce` never ended (each record waited for its delivery timeout).
//! - Credentials revoked while the processor runs (a SCRAM user deleted; the test broker makes
//!   SCRAM sessions re-authenticate every 5 s) stop it once a fresh connection is refused too,
//!   its wait on the cluster (`HIRESTATE_TRANSACTION_TIMEOUT_MS`) after the first refusal,
//!   saying so and naming the settings; with new credentials, the next run's outputs equal the
//!   replay (nothing lost, nothing twice). A refusal that passes within the wait (the user made
//!   again) does not stop it. Before, it logged the refusal once, then "AllBrokersDown" every
//!   10 s, for ever, folding nothing.

#[path = "support/processor.rs"]
mod processor;
mod support;

use support::{acls_java, as_env, sasl_bootstrap, sasl_plain};

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
    let log = processor::outputs_equal_the_replay(&bs, &as_env(&settings), "sasl", 73);
    assert!(!log.contains(SECRET), "the SASL password is in the log");
}

#[test]
fn refused_credentials_stop_every_command_at_once_naming_the_settings() {
    let Some(bs) =
        sasl_bootstrap("refused_credentials_stop_every_command_at_once_naming_the_settings")
    else {
        return;
    };
    let wrong = security("wr0ng-secret");
    processor::assert_every_command_stops(
        &bs,
        &as_env(&wrong),
        "sasl-refused",
        &[
            "refused hirestate's credentials",
            "Authentication failed",
            "HIRESTATE_KAFKA_SASL_PASSWORD",
        ],
    );
}

#[test]
fn a_plaintext_client_at_the_sasl_listener_stops_at_once_told_it_requires_sasl() {
    let Some(sasl) = sasl_bootstrap(
        "a_plaintext_client_at_the_sasl_listener_stops_at_once_told_it_requires_sasl",
    ) else {
        return;
    };
    processor::assert_every_command_stops(
        &sasl,
        &[],
        "plaintext-at-sasl",
        &[
            &format!("the Kafka listener at {sasl} requires SASL authentication"),
            "HIRESTATE_KAFKA_SECURITY_PROTOCOL is \"plaintext\": set it to SASL_PLAINTEXT",
            "HIRESTATE_KAFKA_SASL_USERNAME",
        ],
    );
}

/// The settings that make a command connect to the SASL listener `sasl` as the SCRAM user
/// `rotating` with `password`, waiting `wait_ms` on the cluster.
fn scram(sasl: &str, password: &str, wait_ms: &str) -> Vec<(&'static str, String)> {
    vec![
        ("KAFKA_BOOTSTRAP", sasl.to_owned()),
        (
            "HIRESTATE_KAFKA_SECURITY_PROTOCOL",
            "SASL_PLAINTEXT".to_owned(),
        ),
        (
            "HIRESTATE_KAFKA_SASL_MECHANISMS",
            "SCRAM-SHA-256".to_owned(),
        ),
        ("HIRESTATE_KAFKA_SASL_USERNAME", "rotating".to_owned()),
        ("HIRESTATE_KAFKA_SASL_PASSWORD", password.to_owned()),
        ("HIRESTATE_TRANSACTION_TIMEOUT_MS", wait_ms.to_owned()),
    ]
}

#[test]
fn credentials_revoked_while_running_stop_the_processor_and_nothing_is_lost() {
    let Some(sasl) =
        sasl_bootstrap("credentials_revoked_while_running_stop_the_processor_and_nothing_is_lost")
    else {
        return;
    };
    let bs = support::bootstrap("plaintext").expect("the plaintext listener");
    let setup = processor::Setup::new(&bs, "scram-revoked", 2);
    let file = setup.generate("events.jsonl", 60, 67);
    let expected = processor::expected(&setup, &file);
    let thirds = setup.thirds(&file);
    let outputs = setup.output_topics();

    acls_java(&bs, &["scram", "rotating", "first-secret"]);
    let env = scram(&sasl, "first-secret", "10000");
    let instance = setup.instance("x");
    setup.produce(&thirds[0]);
    let health = support::free_addr();
    let mut with_health = as_env(&env);
    with_health.push(("HIRESTATE_HEALTH_ADDR", health.as_str()));
    let mut child = instance.spawn(&setup, 120.0, &with_health);
    instance.await_log(
        &mut child,
        "assigned and restored",
        0,
        "the processor never got its partitions",
    );
    setup.await_outputs_settled(&outputs);
    let ready = |what: &str, code: u16, says: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut last = None;
        while std::time::Instant::now() < deadline {
            last = support::http_get(&health, "/readyz");
            if last
                .as_ref()
                .is_some_and(|(c, body)| *c == code && body.contains(says))
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "{what}: /readyz never answered {code} {says:?}; last {last:?}\n{}",
            instance.log_tail()
        );
    };
    ready("running", 200, "ready");

    // A refusal that passes: the user is deleted until a re-authentication is refused, then
    // made again with the same password, well within the 10 s wait. The fresh connection made
    // once the wait is over is answered, and the processor goes on.
    let refused = "Authentication failed";
    acls_java(&bs, &["unscram", "rotating"]);
    instance.await_log(&mut child, refused, 0, "no re-authentication was refused");
    // Not ready while refused, saying why.
    let unready = "not ready: the Kafka cluster refuses hirestate's credentials";
    ready("refused", 503, unready);
    acls_java(&bs, &["scram", "rotating", "first-secret"]);
    instance.await_log(
        &mut child,
        "takes hirestate's client again",
        0,
        "the passing refusal was not checked, or stopped the processor",
    );
    ready("taken again", 200, "ready");
    setup.produce(&thirds[1]);
    setup.await_outputs_settled(&outputs);

    // Revoked for good: the processor stops, naming the settings.
    acls_java(&bs, &["unscram", "rotating"]);
    setup.produce(&thirds[2]);
    ready("revoked", 503, unready);
    let stop = instance.stopped_with(
        &mut child,
        &[
            "refused hirestate's credentials while hirestate ran",
            "again on a fresh connection 10 s later",
            refused,
            "HIRESTATE_KAFKA_SASL_PASSWORD",
        ],
    );
    eprintln!("credentials revoked: {stop}");

    // Rotated: the user back with a new password, which the next run is given.
    acls_java(&bs, &["scram", "rotating", "second-secret"]);
    let env = scram(&sasl, "second-secret", "10000");
    instance.run_to_idle(&setup, 3.0, &as_env(&env));
    let (actual, _) = setup.read_back(&outputs);
    processor::assert_outputs_equal(&expected.outputs, &actual);
    let log = std::fs::read_to_string(&instance.log).expect("the instance log");
    for secret in ["first-secret", "second-secret"] {
        assert!(!log.contains(secret), "a SCRAM password is in the log");
    }
}
