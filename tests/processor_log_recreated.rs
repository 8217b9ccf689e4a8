//! The event log deleted and recreated under the same name (a reset environment, a topic
//! re-created by hand) while a state directory survives: the store reflects offsets the new
//! log does not have. The processor must stop with an error saying so, naming the partition,
//! both offsets and what to do — not seek past the end, have the consumer reset to the start,
//! drop every record below the stored offset as already folded and exit 0 having folded
//! nothing (what it did before this test).

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::time::{Duration, Instant};

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;

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
