//! The live processor and the offline replay agree: over a ≥ 20 000-event stream on 4
//! partitions, every command (all three command topics), rejection record and alert read back
//! with `hirestate tail` equals, record for record and per candidate in order, what `hirestate
//! replay` derives from the same file; the run's counts equal the replay's; the projection
//! equals a clean replay's final states.

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::time::Instant;

#[test]
fn live_outputs_counts_and_projection_equal_the_replay() {
    let Some(bs) = support::bootstrap("live_outputs_counts_and_projection_equal_the_replay") else {
        return;
    };
    let started = Instant::now();
    let setup = processor::Setup::new(&bs, "eq", 4);
    let file = setup.generate("events.jsonl", 1_700, 20_231);
    let expected = processor::expected(&setup, &file);
    assert!(
        expected.events >= 20_000,
        "the stream has only {} events",
        expected.events
    );
    setup.produce(&file);

    let node = setup.instance("eq-1");
    let report = node.run_to_idle(&setup, 3.0, &[]);
    processor::assert_counts(&report, &expected.counts);
    assert_eq!(
        report["aborted_batches"], 0,
        "a clean run aborts nothing: {report}"
    );

    let (actual, raw) = setup.read_back(&setup.output_topics());
    processor::assert_outputs_equal(&expected.outputs, &actual);
    processor::assert_command_headers(&raw);
    for t in [
        "ats.commands.greenhouse.v1",
        "ats.commands.lever.v1",
        "hris.commands.workday.v1",
    ] {
        assert!(
            !raw[&setup.topic(t)].is_empty(),
            "the stream should cause commands on {t}"
        );
    }

    processor::assert_states_equal(&node.state_dump(&setup), &processor::clean_states(&[&file]));
    eprintln!(
        "equivalence: {} events, {:?}",
        expected.events,
        started.elapsed()
    );
}
