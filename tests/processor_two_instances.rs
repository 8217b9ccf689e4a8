//! Failover: two instances in one group share the partitions; one is SIGKILLed mid-run and
//! never restarted. After its session times out the survivor takes its partitions over
//! (restoring them from snapshots and the log) and runs to idle. Half the events are produced
//! before the start and half after the kill, so the survivor always has work left on the dead
//! instance's partitions (a fast first instance could otherwise finish everything first). The outputs must be exactly
//! the replay set — the dead instance's open transaction is aborted, never half-visible — and
//! per candidate in the replay's order.

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::time::{Duration, Instant};

#[test]
fn the_survivor_takes_over_a_dead_instances_partitions_exactly_once() {
    let Some(bs) =
        support::bootstrap("the_survivor_takes_over_a_dead_instances_partitions_exactly_once")
    else {
        return;
    };
    let started = Instant::now();
    let seed = processor::seed("processor_two_instances");
    let mut rng = processor::Rng(seed);
    let setup = processor::Setup::new(&bs, "two", 4);
    let file = setup.generate("events.jsonl", 500, 777);
    let expected = processor::expected(&setup, &file);
    // The first half before the instances start, the second after the kill: however fast the
    // first instance is, the survivor has work left that includes the dead one's partitions.
    let (head, tail) = setup.halves(&file);
    setup.produce(&head);

    let (doomed, survivor) = (
        setup.failover_instance("two-a"),
        setup.failover_instance("two-b"),
    );
    // The survivor's idle time must outlast the dead member's session plus the rebalance.
    let mut b = survivor.spawn(&setup, 20.0, &[]);
    let mut a = doomed.spawn(&setup, 20.0, &[]);
    if !doomed.wait_for_log(&mut a, "assigned and restored", 0, Duration::from_secs(60)) {
        let (_, _) = (a.kill(), b.kill());
        panic!("instance a never got partitions\n{}", doomed.log_tail());
    }
    // Both must be members before the kill, or the survivor's first assignment may already
    // include the dead instance's partitions (a slow join under load).
    if !survivor.wait_for_log(&mut b, "assigned and restored", 0, Duration::from_secs(90)) {
        let (_, _) = (a.kill(), b.kill());
        panic!("instance b never got partitions\n{}", survivor.log_tail());
    }
    let assignments_before_kill = survivor.log_count("assigned and restored");
    let after = rng.millis(300, 2_000);
    if let Some(status) = processor::kill_after(&mut a, after) {
        panic!(
            "instance a exited on its own ({status}) before its kill\n{}",
            doomed.log_tail()
        );
    }
    eprintln!("two instances: a SIGKILLed {after:?} after it was assigned partitions");
    setup.produce(&tail);

    let status = processor::wait_for(&mut b, Duration::from_secs(180))
        .unwrap_or_else(|| panic!("the survivor did not finish\n{}", survivor.log_tail()));
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut b.stdout.take().expect("stdout"), &mut stdout)
        .expect("report");
    assert!(
        status.success(),
        "the survivor exited {status}\n{}",
        survivor.log_tail()
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("the survivor's report");
    eprintln!("two instances: survivor report {report}");
    let consumed = report["counts"]["consumed"].as_u64().unwrap_or(0);
    assert!(consumed > 0, "the survivor consumed nothing: {report}");
    assert!(
        survivor.log_count("assigned and restored") > assignments_before_kill,
        "the survivor was never re-assigned the dead instance's partitions\n{}",
        survivor.log_tail()
    );

    let (actual, raw) = setup.read_back(&setup.output_topics());
    processor::assert_outputs_equal(&expected.outputs, &actual);
    processor::assert_command_headers(&raw);
    // The survivor now owns every partition: its projection is the whole clean replay.
    processor::assert_states_equal(
        &survivor.state_dump(&setup),
        &processor::clean_states(&[&file]),
    );
    eprintln!(
        "two instances: {} events, survivor consumed {consumed}, discarded {} batch(es) folded \
         ahead of a rebalance; done in {:?}",
        expected.events,
        survivor.log_count("batch folded ahead of a rebalance discarded"),
        started.elapsed()
    );
}
