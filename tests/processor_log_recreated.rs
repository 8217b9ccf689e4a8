//! The event log deleted and recreated under the same name (a reset environment, a topic
//! re-created by hand) while a state directory survives: the store reflects offsets the new
//! log does not have. The processor must stop with an error saying so, naming the partition,
//! both offsets and what to do — not seek past the end, have the consumer reset to the start,
//! drop every record below the stored offset as already folded and exit 0 having folded
//! nothing (what it did before this test).
//!
//! Also the other way a log loses what a store needs: retention (or `kafka-delete-records.sh`)
//! deleted the start of the log, and an instance with an empty state directory and no
//! snapshots must fold it from offset 0. DESIGN.md: such a gap stops the processor with a clear
//! error; it is never skipped. Nothing tested that before.

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::time::{Duration, Instant};

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

#[test]
fn a_store_ahead_of_a_recreated_log_stops_the_processor_naming_both_offsets() {
    let Some(bs) = support::bootstrap(
        "a_store_ahead_of_a_recreated_log_stops_the_processor_naming_both_offsets",
    ) else {
        return;
    };
    let setup = processor::Setup::new(&bs, "recreated", 1);
    let file = setup.generate("events.jsonl", 100, 31);
    setup.produce(&file);
    let instance = setup.instance("x");
    let report = instance.run_to_idle(&setup, 2.0, &[]);
    let folded = report["counts"]["consumed"].as_u64().expect("consumed");

    let events = setup.topic("hiring.events.v1");
    recreate(&bs, &events);
    // A shorter log than the one the store reflects.
    let head = setup.slice(&file, 0, 50, "head.jsonl");
    setup.produce(&head);

    let mut child = instance.spawn(&setup, 5.0, &[]);
    instance.stopped_with(
        &mut child,
        &[
            "partition 0",
            &format!("up to offset {folded}"),
            "the log ends at 50",
            "recreated",
            "state directory",
        ],
    );
}

#[test]
fn a_gap_retention_left_in_the_log_stops_a_restore_and_nothing_is_skipped() {
    let Some(bs) = support::bootstrap(
        "a_gap_retention_left_in_the_log_stops_a_restore_and_nothing_is_skipped",
    ) else {
        return;
    };
    let setup = processor::Setup::new(&bs, "gap", 1);
    let file = setup.generate("events.jsonl", 40, 37);
    setup.produce(&file);
    // No snapshot round: a fresh state directory can only restore from the log's start.
    let no_snapshots = [("HIRESTATE_SNAPSHOT_EVERY_BATCHES", "1000000")];
    setup.instance("x").run_to_idle(&setup, 2.0, &no_snapshots);
    let outputs = setup.output_topics();
    let (before, _) = setup.read_back(&outputs);

    // The log's first 10 records deleted, as retention deletes a segment.
    let events = setup.topic("hiring.events.v1");
    let (admin, opts) = support::admin(&bs);
    let mut below = TopicPartitionList::new();
    below
        .add_partition_offset(&events, 0, Offset::Offset(10))
        .expect("a partition");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let deleted = rt
        .block_on(admin.delete_records(&below, &opts))
        .expect("delete records");
    for el in deleted.elements() {
        assert!(el.error().is_ok(), "deleting records: {:?}", el.error());
    }

    // Another instance of the group, its state directory empty: the group's offsets are at the
    // end, the store is at 0, and offsets 0–9 are gone.
    let fresh = setup.instance("y");
    let mut child = fresh.spawn(&setup, 5.0, &no_snapshots);
    fresh.stopped_with(
        &mut child,
        &[
            "partition 0",
            "from offset 0",
            "starts at 10",
            "deleted 10 records",
            "refusing to skip them",
            "retention.ms=-1",
        ],
    );
    let (after, _) = setup.read_back(&outputs);
    assert_eq!(before, after, "the stopped restore emitted something");
}

/// Deletes `topic` and creates it again (1 partition), retrying while the deletion completes.
fn recreate(bootstrap: &str, topic: &str) {
    let (admin, opts) = support::admin(bootstrap);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        for r in admin
            .delete_topics(&[topic], &opts)
            .await
            .expect("delete request")
        {
            r.unwrap_or_else(|(t, e)| panic!("deleting {t}: {e}"));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1)).set("retention.ms", "-1");
            let r = admin
                .create_topics(&[new], &opts)
                .await
                .expect("create request");
            match r.into_iter().next().expect("one result") {
                Ok(_) => return,
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err((t, e)) => panic!("recreating {t}: {e}"),
            }
        }
    });
}
