//! The cluster over TLS, against a broker that speaks it: the test broker's TLS listener
//! (`deploy/kafka/server.properties.in`; `kafka.sh` makes its self-signed certificate).
//!
//! - Trusting the broker's certificate (`ssl.ca.location`), every command works over TLS, and
//!   with SASL/PLAIN over TLS (`SASL_SSL`, how most managed clusters are reached); the
//!   processor's outputs equal the offline replay.
//! - Trusting another certificate, every command stops at once, saying the TLS handshake
//!   failed and why, and naming the settings (`topics::reach`).
//! - A security protocol that does not match the listener: a TLS client at a plaintext
//!   listener stops at once the same way (before, every command waited its whole wait and then
//!   asked "is KAFKA_BOOTSTRAP right and the cluster up?"); a plaintext (or SASL_PLAINTEXT)
//!   client at a TLS listener too, told the listener speaks TLS and which protocol to set
//!   (before, it waited its whole wait and was asked whether the protocol matched); while a
//!   port where nothing listens is told to check the address after its wait.
//! - At the listener that requires a client certificate (mutual TLS), every command works
//!   presenting the one it trusts, as PEM files and as a PKCS#12 keystore; with none, or with
//!   one it does not trust, every command stops at once, saying the cluster refused the client
//!   certificate and naming the settings (before, each waited its whole wait and was then asked
//!   whether its security protocol matched the listener).

#[path = "support/processor.rs"]
mod processor;
mod support;

use support::{
    as_env, client_certificate, mtls_bootstrap, sasl_plain, sasl_ssl_bootstrap, tls_bootstrap,
    tls_trusting,
};

#[test]
fn every_command_verifies_the_broker_over_tls_and_the_outputs_equal_the_replay() {
    let Some((bs, tls)) = tls_bootstrap(
        "every_command_verifies_the_broker_over_tls_and_the_outputs_equal_the_replay",
    ) else {
        return;
    };
    let settings = tls_trusting(&tls.join("ca.pem"));
    processor::outputs_equal_the_replay(&bs, &as_env(&settings), "tls", 79);
}

#[test]
fn every_command_works_with_sasl_over_tls_and_the_outputs_equal_the_replay() {
    let Some((bs, tls)) = sasl_ssl_bootstrap(
        "every_command_works_with_sasl_over_tls_and_the_outputs_equal_the_replay",
    ) else {
        return;
    };
    let [_, mechanisms, user, password] = sasl_plain("hirestate", "hirestate-test-secret");
    let [_, ca] = tls_trusting(&tls.join("ca.pem"));
    let settings = [
        ("HIRESTATE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL".to_owned()),
        mechanisms,
        user,
        password,
        ca,
    ];
    let log = processor::outputs_equal_the_replay(&bs, &as_env(&settings), "sasl-ssl", 83);
    assert!(
        !log.contains("hirestate-test-secret"),
        "the SASL password is in the log"
    );
}

#[test]
fn a_broker_certificate_not_trusted_stops_every_command_at_once_naming_the_settings() {
    let Some((bs, tls)) = tls_bootstrap(
        "a_broker_certificate_not_trusted_stops_every_command_at_once_naming_the_settings",
    ) else {
        return;
    };
    let settings = tls_trusting(&tls.join("other-ca.pem"));
    processor::assert_every_command_stops(
        &bs,
        &as_env(&settings),
        "tls-untrusted",
        &[
            "the TLS handshake with the Kafka cluster",
            "certificate verify failed",
            "HIRESTATE_KAFKA_SSL_CA_LOCATION",
        ],
    );
}

#[test]
fn a_tls_client_at_a_plaintext_listener_stops_at_once_naming_the_protocol() {
    let Some((_, tls)) =
        tls_bootstrap("a_tls_client_at_a_plaintext_listener_stops_at_once_naming_the_protocol")
    else {
        return;
    };
    let plain = support::bootstrap("plaintext listener").expect("KAFKA_BOOTSTRAP");
    let settings = tls_trusting(&tls.join("ca.pem"));
    processor::assert_every_command_stops(
        &plain,
        &as_env(&settings),
        "tls-at-plaintext",
        &[
            "the TLS handshake with the Kafka cluster",
            "HIRESTATE_KAFKA_SECURITY_PROTOCOL (now \"SSL\"",
        ],
    );
}

/// `run` against `bootstrap`, waiting 4 s for the cluster: the line it stopped with.
fn run_unanswered(bootstrap: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    processor::stopped_with_output(&processor::run_bare(
        dir.path(),
        &[
            ("KAFKA_BOOTSTRAP", bootstrap),
            ("HIRESTATE_TRANSACTION_TIMEOUT_MS", "4000"),
        ],
    ))
}

#[test]
fn a_plaintext_client_at_a_tls_listener_stops_at_once_told_the_listener_speaks_tls() {
    let Some((bs, _)) = tls_bootstrap(
        "a_plaintext_client_at_a_tls_listener_stops_at_once_told_the_listener_speaks_tls",
    ) else {
        return;
    };
    processor::assert_every_command_stops(
        &bs,
        &[],
        "plaintext-at-tls",
        &[
            &format!("the Kafka listener at {bs} speaks TLS"),
            "HIRESTATE_KAFKA_SECURITY_PROTOCOL is \"plaintext\": set it to SSL",
        ],
    );
    // SASL without TLS at it: told to use SASL over TLS.
    let sasl = sasl_plain("hirestate", "hirestate-secret");
    processor::assert_every_command_stops(
        &bs,
        &as_env(&sasl),
        "sasl-plaintext-at-tls",
        &[
            "speaks TLS",
            "HIRESTATE_KAFKA_SECURITY_PROTOCOL is \"SASL_PLAINTEXT\": set it to SASL_SSL",
        ],
    );
}

#[test]
fn a_port_where_nothing_listens_is_told_to_check_the_address() {
    // No broker needed: a port just freed. The address is what to check.
    let last = run_unanswered(&support::free_addr());
    for needle in [
        "nothing accepted a connection",
        "is KAFKA_BOOTSTRAP right",
        "within 4000 ms",
    ] {
        assert!(last.contains(needle), "{needle:?} not in: {last}");
    }
}

#[test]
fn every_command_presents_a_client_certificate_over_mutual_tls_and_the_outputs_equal_the_replay() {
    let Some((bs, tls)) = mtls_bootstrap(
        "every_command_presents_a_client_certificate_over_mutual_tls_and_the_outputs_equal_the_replay",
    ) else {
        return;
    };
    let settings: Vec<_> = tls_trusting(&tls.join("ca.pem"))
        .into_iter()
        .chain(client_certificate(&tls, "client"))
        .collect();
    processor::outputs_equal_the_replay(&bs, &as_env(&settings), "mtls-pem", 89);

    // The same certificate and key in a PKCS#12 keystore.
    let keystore = tls.join("client.p12");
    let settings: Vec<_> = tls_trusting(&tls.join("ca.pem"))
        .into_iter()
        .chain([
            (
                "HIRESTATE_KAFKA_SSL_KEYSTORE_LOCATION",
                keystore.to_str().expect("a UTF-8 path").to_owned(),
            ),
            (
                "HIRESTATE_KAFKA_SSL_KEYSTORE_PASSWORD",
                "hirestate-test-tls".to_owned(),
            ),
        ])
        .collect();
    let log = processor::outputs_equal_the_replay(&bs, &as_env(&settings), "mtls-p12", 97);
    assert!(
        !log.contains("hirestate-test-tls"),
        "the keystore password is in the log"
    );
}

#[test]
fn no_client_certificate_at_a_mutual_tls_listener_stops_every_command_at_once_naming_the_settings()
{
    let Some((bs, tls)) = mtls_bootstrap(
        "no_client_certificate_at_a_mutual_tls_listener_stops_every_command_at_once_naming_the_settings",
    ) else {
        return;
    };
    let settings = tls_trusting(&tls.join("ca.pem"));
    processor::assert_every_command_stops(
        &bs,
        &as_env(&settings),
        "mtls-none",
        &[
            "refused hirestate's TLS client certificate",
            "alert bad certificate",
            "no client certificate is configured",
            "HIRESTATE_KAFKA_SSL_CERTIFICATE_LOCATION",
            "HIRESTATE_KAFKA_SSL_KEYSTORE_LOCATION",
        ],
    );

    // A certificate the listener does not trust.
    let settings: Vec<_> = tls_trusting(&tls.join("ca.pem"))
        .into_iter()
        .chain(client_certificate(&tls, "stranger"))
        .collect();
    let stranger = tls.join("stranger.pem");
    let configured = format!(
        "ssl.certificate.location = {:?}",
        stranger.to_str().expect("a UTF-8 path")
    );
    processor::assert_every_command_stops(
        &bs,
        &as_env(&settings),
        "mtls-stranger",
        &[
            "refused hirestate's TLS client certificate",
            &configured,
            "HIRESTATE_KAFKA_SSL_CERTIFICATE_LOCATION",
        ],
    );
}
