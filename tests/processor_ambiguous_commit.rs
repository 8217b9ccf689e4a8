//! An ambiguous commit (DESIGN.md: "a commit or abort that times out or is ambiguous is fatal
//! for that producer — recreate it, rewind the consumer to the committed offsets"), in both of
//! its real outcomes, on the real broker: fail points tell the processor "outcome unknown" once
//! after a commit that did happen and once instead of a commit that never happened. Either way
//! the producer is recreated, the partitions re-synced with the committed offsets, and the
//! outputs and the projection end exactly equal to a clean replay: nothing lost, nothing twice —
//! also for the batch folded ahead while each of those commits was in flight.

#[path = "support/processor.rs"]
mod processor;
mod support;

#[test]
fn ambiguous_commits_neither_lose_nor_duplicate() {
    let Some(bs) = support::bootstrap("ambiguous_commits_neither_lose_nor_duplicate") else {
        return;
    };
    let setup = processor::Setup::new(&bs, "ambiguous", 2);
    // Enough events that a batch is folded ahead whenever a commit is in flight.
    let file = setup.generate("events.jsonl", 600, 4_711);
    let expected = processor::expected(&setup, &file);
    setup.produce(&file);

    let node = setup
        .instance("ambiguous-1")
        .with_env("HIRESTATE_BATCH_MAX_RECORDS", "50")
        .with_env("HIRESTATE_SNAPSHOT_EVERY_BATCHES", "2");
    let report = node.run_to_idle(
        &setup,
        3.0,
        &[(
            "HIRESTATE_FAILPOINTS",
            "ambiguous_after_commit=3,ambiguous_instead_of_commit=7",
        )],
    );
    assert_eq!(
        report["producer_recreated"], 2,
        "both fail points fired: {report}"
    );
    assert_eq!(report["aborted_batches"], 2, "{report}");
    assert_eq!(node.log_count("fires (pass"), 2, "{}", node.log_tail());
    // Each failed commit had the next batch folded ahead of it: that batch (and its states)
    // were dropped too, and folded again after the re-sync.
    assert_eq!(
        node.log_count("batch folded ahead discarded"),
        2,
        "{}",
        node.log_tail()
    );
    // The batch whose commit did happen is folded again by the re-sync, without emitting.
    assert!(
        report["restored_events"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );

    let (actual, raw) = setup.read_back(&setup.output_topics());
    processor::assert_outputs_equal(&expected.outputs, &actual);
    processor::assert_command_headers(&raw);
    processor::assert_states_equal(&node.state_dump(&setup), &processor::clean_states(&[&file]));
}
