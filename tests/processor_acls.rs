//! The access rights (ACLs) the processor needs, against the test broker's authorizer: its
//! SASL user `limited` has only the ACLs `deploy/kafka/Acls.java` grants (topics `acl-`: read,
//! describe, describe configs; topics `acl-w-`: write; groups `acl-g-`; transactional ids
//! `acl-`). Topics are created and read back as a super user (the plaintext listener).
//!
//! - With the ACLs README "Access rights" lists, the processor's outputs equal the replay.
//! - Each one missing stops it at once, naming the operation refused and what to grant, with
//!   nothing committed (`topics::reach::access_hint`).
//! - The tools say what they were refused: `tail` and `replay --bootstrap` a topic they may
//!   not describe (before: "does not exist"), `produce` a topic it may not write (before:
//!   librdkafka's `TopicAuthorizationFailed` alone), `topics ensure` topics it may not create (before,
//!   it also said the event log and the snapshots existed but did not show in the metadata). Before, a missing group ACL left it
//!   polling, assigned nothing, for ever; a missing WRITE aborted and recreated the producer
//!   for every batch, for ever; a missing transactional id ACL stopped it with librdkafka's
//!   text alone.
//! - An access right taken away while the processor runs (a DENY added on one topic) stops it
//!   the same way, at its next write or fetch; once the right is back, the next run's outputs
//!   equal the replay (nothing lost, nothing twice).

#[path = "support/processor.rs"]
mod processor;
mod support;

use support::{as_env, sasl_bootstrap, sasl_plain, unique};

/// A setup whose topics have `prefix` and whose group is `group` (both made unique), with its
/// stream produced as a super user, and what the processor must derive from it.
fn setup(bs: &str, prefix: &str, group: &str) -> (processor::Setup, processor::Expected) {
    let mut setup = processor::Setup::new(bs, prefix, 2);
    setup.group = unique(group);
    let file = setup.generate("events.jsonl", 60, 79);
    setup.produce(&file);
    let expected = processor::expected(&setup, &file);
    (setup, expected)
}

/// The environment that makes a command connect as `limited` to the SASL listener.
fn limited(sasl: &str) -> Vec<(&'static str, String)> {
    let mut env = vec![("KAFKA_BOOTSTRAP", sasl.to_owned())];
    env.extend(sasl_plain("limited", "limited-test-secret"));
    env
}

#[test]
fn the_processor_runs_with_the_acls_the_readme_lists() {
    let Some(sasl) = sasl_bootstrap("the_processor_runs_with_the_acls_the_readme_lists") else {
        return;
    };
    let bs = support::bootstrap("plaintext").expect("the plaintext listener");
    let (setup, expected) = setup(&bs, "acl-w-ok", "acl-g-ok");
    let env = limited(&sasl);
    let report = setup.instance("x").run_to_idle(&setup, 2.0, &as_env(&env));
    processor::assert_counts(&report, &expected.counts);
    let (actual, _) = setup.read_back(&setup.output_topics());
    processor::assert_outputs_equal(&expected.outputs, &actual);
}

#[test]
fn a_missing_acl_stops_the_processor_naming_what_to_grant() {
    let Some(sasl) = sasl_bootstrap("a_missing_acl_stops_the_processor_naming_what_to_grant")
    else {
        return;
    };
    let bs = support::bootstrap("plaintext").expect("the plaintext listener");
    let env = limited(&sasl);
    // (topic prefix, group, what the stop must say)
    let cases: [(&str, &str, &[&str]); 3] = [
        // The group: no ACL on groups `acl-nog-`.
        (
            "acl-w-nogroup",
            "acl-nog",
            &[
                "GroupAuthorizationFailed",
                "READ and DESCRIBE on the group \"acl-nog-",
            ],
        ),
        // WRITE: topics `acl-ro-` are only readable.
        (
            "acl-ro",
            "acl-g-ro",
            &[
                "TopicAuthorizationFailed",
                "WRITE on every topic hirestate writes",
                "\"acl-ro-",
            ],
        ),
        // The transactional id (`<group>-<instance>`): no ACL on ids `nacl-`.
        (
            "acl-w-notxn",
            "nacl",
            &[
                "TransactionalIdAuthorizationFailed",
                "WRITE and DESCRIBE on the transactional id \"nacl-",
            ],
        ),
    ];
    for (prefix, group, said) in cases {
        let (setup, _) = setup(&bs, prefix, group);
        let instance = setup.instance("x");
        let mut child = instance.spawn(&setup, 5.0, &as_env(&env));
        let mut needles = vec!["refused this principal an operation", "Access rights"];
        needles.extend(said);
        instance.stopped_with(&mut child, &needles);
        setup.assert_nothing_committed(prefix);
    }
}

#[test]
fn the_tools_say_what_the_cluster_refused_them() {
    let Some(sasl) = sasl_bootstrap("the_tools_say_what_the_cluster_refused_them") else {
        return;
    };
    let bs = support::bootstrap("plaintext").expect("the plaintext listener");
    // Topics `noacl-` exist (created as a super user), but `limited` may not even describe them.
    let (hidden, _) = setup(&bs, "noacl", "acl-g-hidden");
    let env = limited(&sasl);
    let events = hidden.topic("hiring.events.v1");
    let tail = [
        "tail",
        "--topic",
        events.as_str(),
        "--from-beginning",
        "--until-end",
    ];
    let replay = ["replay", "--bootstrap", sasl.as_str()];
    for args in [&tail[..], &replay[..]] {
        let out = hidden
            .command(args, &as_env(&env))
            .output()
            .expect("running");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {said}");
        assert!(
            said.contains(&format!(
                "topic {events}: the cluster refused this principal DESCRIBE"
            )) && !said.contains("does not exist"),
            "{args:?}: {said}"
        );
    }

    // Topics `acl-ro` it may read and describe, not write: `produce` names the refusal and what
    // to grant (before: `delivery failed: … TopicAuthorizationFailed` alone).
    let readable = processor::Setup::new(&bs, "acl-ro", 2);
    let file = readable.generate("events.jsonl", 3, 5);
    let file = file.to_str().expect("a UTF-8 path");
    let out = readable
        .command(&["produce", "--from-file", file], &as_env(&env))
        .output()
        .expect("running produce");
    let said = String::from_utf8_lossy(&out.stderr);
    let events = readable.topic("hiring.events.v1");
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!("was not delivered to {events}"))
            && said.contains(&format!("refused this principal WRITE on {events}"))
            && said.contains("0 events of the input before it were delivered"),
        "{said}"
    );

    // `limited` may create no topic.
    let prefix = unique("acl-new");
    let out = hidden
        .command(&["topics", "ensure"], &as_env(&env))
        .env("HIRESTATE_TOPIC_PREFIX", &prefix)
        .output()
        .expect("running topics ensure");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "{prefix}.hiring.events.v1: TopicAuthorizationFailed"
        )) && said.contains("grant it CREATE")
            && !said.contains("it exists"),
        "{said}"
    );
}

/// Adds (`deny`) or removes (`undeny`) a DENY of `operation` on `topic` for `limited`, through
/// `deploy/kafka/Acls.java` as a super user of the plaintext listener `bs`.
fn deny(bs: &str, action: &str, operation: &str, topic: &str) {
    support::acls_java(bs, &[action, operation, topic]);
}

#[test]
fn an_acl_taken_away_while_running_stops_the_processor_and_nothing_is_lost() {
    let Some(sasl) =
        sasl_bootstrap("an_acl_taken_away_while_running_stops_the_processor_and_nothing_is_lost")
    else {
        return;
    };
    let bs = support::bootstrap("plaintext").expect("the plaintext listener");
    let mut setup = processor::Setup::new(&bs, "acl-w-revoked", 2);
    setup.group = unique("acl-g-revoked");
    let file = setup.generate("events.jsonl", 90, 61);
    let expected = processor::expected(&setup, &file);
    let thirds = setup.thirds(&file);
    let env = limited(&sasl);
    let instance = setup.instance("x");
    let outputs = setup.output_topics();
    // (the DENY, the third produced once it is in place, what the stop must say)
    let commands = setup.topic("ats.commands.greenhouse.v1");
    let events = setup.topic("hiring.events.v1");
    let revoked = [
        (
            "WRITE",
            &commands,
            &thirds[1],
            "WRITE on every topic hirestate writes",
        ),
        ("READ", &events, &thirds[2], "READ and DESCRIBE on"),
    ];
    setup.produce(&thirds[0]);
    for (operation, topic, next, said) in revoked {
        let mut child = instance.spawn(&setup, 120.0, &as_env(&env));
        instance.await_log(
            &mut child,
            "assigned and restored",
            instance.log_count("assigned and restored"),
            "the processor never got its partitions",
        );
        setup.await_outputs_settled(&outputs);
        deny(&bs, "deny", operation, topic);
        setup.produce(next);
        let stop = instance.stopped_with(
            &mut child,
            &[
                "refused this principal an operation",
                "TopicAuthorizationFailed",
                said,
            ],
        );
        deny(&bs, "undeny", operation, topic);
        eprintln!("{operation} on {topic} taken away: {stop}");
    }
    instance.run_to_idle(&setup, 3.0, &as_env(&env));
    let (actual, _) = setup.read_back(&outputs);
    processor::assert_outputs_equal(&expected.outputs, &actual);
}
