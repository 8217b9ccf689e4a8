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
//!   refused before any partition is restored (before, such a start folded the grown log);
//! - by a new group, which has neither: the snapshots an earlier group wrote sit on the
//!   partitions their candidates' events were folded on, and one the placement puts elsewhere
//!   stops the restore (before, the new group restored from them and folded the grown log).

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
        Next::SameInstance,
    );
}

#[test]
fn an_empty_state_dir_on_a_grown_log_is_refused_by_the_committed_offsets() {
    refused_after_growth(
        "an_empty_state_dir_on_a_grown_log_is_refused_by_the_committed_offsets",
        47,
        Next::EmptyStateDir,
    );
}

/// A new group has no committed offsets to tell the placement, nor a store: the snapshots
/// the first group wrote do, since each sits on the partition its candidate's events were
/// folded on. Before, the new group restored from them and folded the grown log: the refused
/// run below exited 0 and emitted outputs.
#[test]
fn a_new_group_on_a_grown_log_with_snapshots_is_refused_by_them() {
    refused_after_growth(
        "a_new_group_on_a_grown_log_with_snapshots_is_refused_by_them",
        53,
        Next::NewGroup,
    );
}

/// What starts on the grown log.
#[derive(Clone, Copy, PartialEq)]
enum Next {
    /// The instance that folded the head, with its state directory.
    SameInstance,
    /// The same group, its state directory deleted.
    EmptyStateDir,
    /// Another group with an empty state directory.
    NewGroup,
}

/// Half a stream folded on 2 partitions, with a snapshot round after every batch; the event
/// log grown to 4, and the snapshot topic with it (so the start-up check's partition
/// comparison passes); the rest of the stream produced; then `next` starts. It must stop,
/// saying why and what to do, having emitted nothing more.
fn refused_after_growth(test: &str, seed: u64, next: Next) {
    let Some(bs) = support::bootstrap(test) else {
        return;
    };
    let setup = processor::Setup::new(&bs, "repartitioned", 2);
    let file = setup.generate("events.jsonl", 80, seed);
    let (head, tail) = setup.halves(&file);
    setup.produce(&head);
    let instance = setup
        .instance("x")
        .with_env("HIRESTATE_BATCH_MAX_RECORDS", "100")
        .with_env("HIRESTATE_SNAPSHOT_EVERY_BATCHES", "1");
    let first = instance.run_to_idle(&setup, 2.0, &[]);
    assert!(first["counts"]["snapshots"].as_u64() > Some(0), "{first}");
    let outputs = setup.output_topics();
    let (before, _) = setup.read_back(&outputs);

    let events = setup.topic("hiring.events.v1");
    let snapshots = setup.topic("hiring.snapshots.v1");
    add_partitions(&bs, &[&events, &snapshots], 4);
    setup.produce(&tail);
    let (started, said): (_, &[&str]) = match next {
        Next::SameInstance => (
            instance,
            &[&events, "has 4 partitions", "built from 2", "new event log"],
        ),
        Next::EmptyStateDir => {
            std::fs::remove_dir_all(&instance.state_dir).expect("deleting the state directory");
            (
                instance,
                &[&events, "has 4 partitions", "built from 2", "new event log"],
            )
        }
        Next::NewGroup => (
            setup
                .instance("y")
                .with_env("HIRESTATE_GROUP_ID", &support::unique("repartitioned-new")),
            &[
                &snapshots,
                "holds a snapshot of candidate",
                "of the 4 the event log has now",
                "hirestate topics copy-events",
            ],
        ),
    };
    started.stopped_with(&mut started.spawn(&setup, 5.0, &[]), said);
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
