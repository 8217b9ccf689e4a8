//! Bounded memory changes nothing: with `HIRESTATE_MAX_CANDIDATES_IN_MEMORY` far below the
//! number of candidates, the processor keeps dropping states and reloading them from the store,
//! and still emits, record for record, what `hirestate replay` derives, with the replay's
//! counts and a projection equal to a clean replay's.

#[path = "support/processor.rs"]
mod processor;
mod support;

#[test]
fn dropping_states_from_memory_and_reloading_them_changes_no_output() {
    let Some(bs) =
        support::bootstrap("dropping_states_from_memory_and_reloading_them_changes_no_output")
    else {
        return;
    };
    let setup = processor::Setup::new(&bs, "evict", 4);
    let file = setup.generate("events.jsonl", 500, 4_242);
    let expected = processor::expected(&setup, &file);
    setup.produce(&file);

    let node = setup
        .instance("evict-1")
        .with_env("HIRESTATE_MAX_CANDIDATES_IN_MEMORY", "40")
        .with_env("HIRESTATE_BATCH_MAX_RECORDS", "100");
    let report = node.run_to_idle(&setup, 3.0, &[]);
    processor::assert_counts(&report, &expected.counts);
    let evicted = report["evicted_candidates"].as_u64().unwrap_or_default();
    // A candidate's events are spread over the whole stream, so most states dropped are
    // needed again later and reloaded from the store.
    assert!(
        evicted >= 250,
        "the states of at least half the 500 candidates should have been dropped: {report}"
    );

    let (actual, raw) = setup.read_back(&setup.output_topics());
    processor::assert_outputs_equal(&expected.outputs, &actual);
    processor::assert_command_headers(&raw);
    processor::assert_states_equal(&node.state_dump(&setup), &processor::clean_states(&[&file]));
    eprintln!(
        "eviction: {} events, {evicted} states dropped",
        expected.events
    );
}
