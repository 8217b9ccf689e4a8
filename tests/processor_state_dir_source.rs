//! A state directory reflects one event log. Pointed at another (another topic prefix, another
//! cluster), the processor must not fold that log onto the first one's candidates: it moves
//! the store aside and rebuilds it from the new log, as it does a store that fails to verify.
//! Before this test the second log's events met the first log's states under the same
//! candidate and event ids (generated streams share them), were counted as duplicates, and no
//! command was emitted for them.

#[path = "support/processor.rs"]
mod processor;
mod support;

#[test]
fn a_state_dir_of_another_event_log_is_moved_aside_and_rebuilt() {
    let Some(bs) =
        support::bootstrap("a_state_dir_of_another_event_log_is_moved_aside_and_rebuilt")
    else {
        return;
    };
    // Two logs whose candidates and event ids overlap: same generator, other seeds.
    let (first, second) = (
        processor::Setup::new(&bs, "source-a", 2),
        processor::Setup::new(&bs, "source-b", 2),
    );
    let file_a = first.generate("a.jsonl", 150, 101);
    let file_b = second.generate("b.jsonl", 150, 202);
    first.produce(&file_a);
    second.produce(&file_b);
    let expected = processor::expected(&second, &file_b);

    let on_a = first.instance("shared");
    on_a.run_to_idle(&first, 3.0, &[]);
    // The same state directory, now under the second log's prefix and group.
    let mut on_b = second.instance("shared");
    on_b.state_dir = on_a.state_dir.clone();
    let report = on_b.run_to_idle(&second, 3.0, &[]);

    let moved = on_b.log_count(&format!(
        "it reflects {} on cluster",
        first.topic("hiring.events.v1")
    ));
    assert_eq!(
        moved,
        1,
        "no warning that the store reflects the first log\n{}",
        on_b.log_tail()
    );
    let aside = on_a.state_dir.join("projection.broken-1");
    assert!(aside.exists(), "{} was not kept", aside.display());
    processor::assert_counts(&report, &expected.counts);
    let (actual, raw) = second.read_back(&second.output_topics());
    processor::assert_outputs_equal(&expected.outputs, &actual);
    processor::assert_command_headers(&raw);
    processor::assert_states_equal(
        &on_b.state_dump(&second),
        &processor::clean_states(&[&file_b]),
    );

    // Run again on the second log: the store is its own now and is kept.
    on_b.run_to_idle(&second, 1.0, &[]);
    assert_eq!(
        on_b.log_count("state store rebuilt"),
        1,
        "a store of this log was rebuilt\n{}",
        on_b.log_tail()
    );
}
