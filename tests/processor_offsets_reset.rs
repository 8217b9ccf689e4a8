//! The group's offsets reset behind the state store (`kafka-consumer-groups.sh
//! --reset-offsets --to-earliest`, an operator who wants the log processed again). The store
//! already holds every event id of that range, so folding it again would decide each one a
//! duplicate and emit nothing: the processor goes on from the store, and must say so, naming
//! the partition, both offsets and how to fold the log again. Before, it carried on without a
//! word, and the reset seemed to do nothing.

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

#[test]
fn offsets_reset_behind_the_store_are_named_and_re_emit_nothing() {
    let Some(bs) =
        support::bootstrap("offsets_reset_behind_the_store_are_named_and_re_emit_nothing")
    else {
        return;
    };
    let setup = processor::Setup::new(&bs, "reset", 2);
    let file = setup.generate("events.jsonl", 60, 53);
    setup.produce(&file);
    // A short session, so the group is empty soon after the instance exits.
    let instance = setup
        .instance("x")
        .with_env("HIRESTATE_SESSION_TIMEOUT_MS", "6000")
        .with_env("HIRESTATE_TRANSACTION_TIMEOUT_MS", "5000");
    instance.run_to_idle(&setup, 2.0, &[]);
    let outputs = setup.output_topics();
    let (before, _) = setup.read_back(&outputs);

    reset_to_earliest(&bs, &setup.group, &setup.topic("hiring.events.v1"), 2);
    let again = instance.run_to_idle(&setup, 2.0, &[]);
    assert_eq!(again["counts"]["consumed"].as_u64(), Some(0), "{again}");
    let warned = instance.log_count("the group's committed offset is behind the state store");
    assert_eq!(
        warned,
        2,
        "one warning per partition\n{}",
        instance.log_tail()
    );
    let log = std::fs::read_to_string(&instance.log).expect("log");
    let line = log
        .lines()
        .find(|l| l.contains("committed offset is behind"))
        .expect("the warning");
    for part in ["\"committed\":0", "empty state directory"] {
        assert!(line.contains(part), "{part:?} not in {line}");
    }
    let (after, _) = setup.read_back(&outputs);
    assert!(before == after, "the run after the reset emitted outputs");
}

/// Commits offset 0 for every partition of `topic` in `group`, as `kafka-consumer-groups.sh
/// --reset-offsets --to-earliest --execute` does: allowed once the group has no member (the
/// instance that just exited may hold its static membership until its session times out).
fn reset_to_earliest(bootstrap: &str, group: &str, topic: &str, partitions: i32) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Offset(0))
            .expect("tpl");
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match c.commit(&tpl, CommitMode::Sync) {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("reset: {e}; retrying");
                std::thread::sleep(Duration::from_secs(2));
            }
            Err(e) => panic!("resetting {group}'s offsets: {e}"),
        }
    }
}
