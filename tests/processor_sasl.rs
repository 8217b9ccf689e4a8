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
