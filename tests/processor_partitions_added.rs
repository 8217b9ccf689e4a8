//! Partitions added to the event log of a running deployment (an operator scaling out with
//! `kafka-topics.sh --alter --partitions`). Kafka keys by `hash(candidate_id) mod partitions`,
//! so from then on many candidates' new events land on another partition than their earlier
//! ones, and every fold per partition is wrong: a moved candidate's new partition has none of
//! its history (its events are rejected as for an unknown application), its old partition
//! never sees its later events. The processor must refuse, saying why and what to do, and
//! emit nothing from the re-partitioned log:
//! - between runs: the state store records the partition count it was built from, and a
//!   processor started on a log with another count stops before it joins the group — even when
//!   the snapshot topic was grown to match, which the start-up check's partition message used
//!   to invite;
//! - while running: the rebalance the new partitions cause stops it before any of them is
//!   restored or read (events of candidates that did not move may be folded until then:
//!   their partitions still hold all of their events);
//! - with an empty state directory, which records no count: the group's committed offsets
//!   carry the placement they were committed under, and an assignment under another is
//!   refused before any partition is restored (before, such a start folded the grown log).

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::collections::BTreeSet;

use rdkafka::admin::NewPartitions;

#[test]
fn a_store_built_from_fewer_partitions_is_refused_with_why_and_what_to_do() {
    refused_after_growth(
        "a_store_built_from_fewer_partitions_is_refused_with_why_and_what_to_do",
        41,
        false,
    );
}

#[test]
fn an_empty_state_dir_on_a_grown_log_is_refused_by_the_committed_offsets() {
    refused_after_growth(
        "an_empty_state_dir_on_a_grown_log_is_refused_by_the_committed_offsets",
        47,
        true,
    );
}

/// Half a stream folded on 2 partitions; the event log grown to 4, and the snapshot topic
/// with it (so the start-up check's partition comparison passes); the rest of the stream
/// produced; the state directory deleted when `empty_state_dir`. The next start must stop,
/// saying why and what to do, having emitted nothing more.
fn refused_after_growth(test: &str, seed: u64, empty_state_dir: bool) {
    let Some(bs) = support::bootstrap(test) else {
        return;
    };
    let setup = processor::Setup::new(&bs, "repartitioned", 2);
    let file = setup.generate("events.jsonl", 80, seed);
    let (head, tail) = setup.halves(&file);
    setup.produce(&head);
    let instance = setup.instance("x");
    instance.run_to_idle(&setup, 2.0, &[]);
    let outputs = setup.output_topics();
    let (before, _) = setup.read_back(&outputs);

    let events = setup.topic("hiring.events.v1");
    add_partitions(&bs, &[&events, &setup.topic("hiring.snapshots.v1")], 4);
    setup.produce(&tail);
    if empty_state_dir {
        std::fs::remove_dir_all(&instance.state_dir).expect("deleting the state directory");
    }

    instance.stopped_with(
        &mut instance.spawn(&setup, 5.0, &[]),
        &[&events, "has 4 partitions", "built from 2", "new event log"],
    );
    let (after, _) = setup.read_back(&outputs);
    assert!(
        before == after,
        "the refused run emitted outputs from the re-partitioned log"
    );
}

#[test]
fn partitions_added_while_running_stop_the_processor_before_it_reads_them() {
    let Some(bs) = support::bootstrap(
        "partitions_added_while_running_stop_the_processor_before_it_reads_them",
    ) else {
        return;
    };
    let setup = processor::Setup::new(&bs, "grown", 2);
    let file = setup.generate("events.jsonl", 80, 43);
    let (head, tail) = setup.halves(&file);
    setup.produce(&head);
    let instance = setup.instance("x");
    let outputs = setup.output_topics();
    // The consumer notices new partitions at its next metadata refresh (librdkafka's default:
    // every 5 minutes); a second here.
    let mut child = instance.spawn(
        &setup,
        60.0,
        &[(
            "HIRESTATE_KAFKA_CONSUMER_TOPIC_METADATA_REFRESH_INTERVAL_MS",
            "1000",
        )],
    );
    instance.await_log(
        &mut child,
        "assigned and restored",
        0,
        "the processor never got its partitions",
    );
    // The head folded and committed: its outputs stop changing.
    let before = setup.await_outputs_settled(&outputs);

    add_partitions(&bs, &[&setup.topic("hiring.events.v1")], 4);
    setup.produce(&tail);
    instance.stopped_with(
        &mut child,
        &[
            &setup.topic("hiring.events.v1"),
            "has 4 partitions",
            "built from 2",
            "new event log",
        ],
    );
    // Events of candidates that stayed on partitions 0 and 1 may have been folded before the
    // rebalance (rightly: those partitions still hold all of their events); a moved candidate's
    // outputs must not have changed.
    let moved: BTreeSet<String> = setup
        .tail(&setup.topic("hiring.events.v1"))
        .iter()
        .filter(|r| r["partition"].as_i64() >= Some(2))
        .filter_map(|r| r["key"].as_str().map(str::to_owned))
        .collect();
    assert!(
        !moved.is_empty(),
        "no candidate's events moved to partition 2 or 3"
    );
    let (after, _) = setup.read_back(&outputs);
    for (topic, keys) in &after {
        for key in keys.keys().filter(|k| moved.contains(*k)) {
            assert_eq!(
                before.get(topic).and_then(|b| b.get(key)),
                keys.get(key),
                "{topic}: outputs for {key}, whose events moved to a new partition, changed"
            );
        }
    }
}

/// Grows each of `topics` to `partitions`.
fn add_partitions(bootstrap: &str, topics: &[&str], partitions: usize) {
    let (admin, opts) = support::admin(bootstrap);
    let new: Vec<NewPartitions<'_>> = topics
        .iter()
        .map(|t| NewPartitions::new(t, partitions))
        .collect();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for r in rt
        .block_on(admin.create_partitions(&new, &opts))
        .expect("create_partitions request")
    {
        r.unwrap_or_else(|(t, e)| panic!("adding partitions to {t}: {e}"));
    }
}
