//! Exactly-once under hard kills (DESIGN.md "State, recovery, exactly-once"): the processor is
//! SIGKILLed at ≥ 20 seeded random points and restarted each time with the same instance id
//! and state directory, then aborted by each fail point (`after_produce_before_commit`,
//! `after_commit_before_store`, `during_restore`), then run to idle. What a `read_committed`
//! consumer sees must be exactly the replay set — nothing lost, nothing twice — and the
//! projection must equal a clean replay.
//!
//! The instance holds at most 60 candidate states in memory (`max_candidates_in_memory`): its
//! batches drop and reload states, and its restores store what they fold in chunks of 15 (a
//! quarter each), so kills land between a restore's chunks too.
//!
//! `HIRESTATE_SOAK=1` (`make soak`) scales the stream and the number of kills up;
//! `HIRESTATE_TEST_SEED` reruns a given kill schedule.

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::time::Instant;

/// The log line of a processor whose partitions are assigned and restored.
const READY: &str = "assigned and restored";

#[test]
fn hard_kills_and_fail_points_lose_and_duplicate_nothing() {
    let Some(bs) = support::bootstrap("hard_kills_and_fail_points_lose_and_duplicate_nothing")
    else {
        return;
    };
    let soak = std::env::var("HIRESTATE_SOAK").as_deref() == Ok("1");
    let (candidates, kills): (usize, usize) = if soak { (3_000, 120) } else { (400, 20) };
    let seed = processor::seed("processor_kills");
    let mut rng = processor::Rng(seed);
    let started = Instant::now();

    let setup = processor::Setup::new(&bs, "kills", 4);
    let file = setup.generate("events.jsonl", candidates, seed % 1_000);
    let expected = processor::expected(&setup, &file);
    eprintln!(
        "kills: {} events, {kills} kills (soak: {soak})",
        expected.events
    );

    // The stream arrives in parts, so kills keep landing while there is work: part k before
    // kill round k·kills/4, then one part before each fail point, the last before the final run.
    let n = expected.events;
    let cut = |i: usize| n * i / 8;
    let parts: Vec<_> = (0..8)
        .map(|i| setup.slice(&file, cut(i), cut(i + 1), &format!("part-{i}.jsonl")))
        .collect();

    let node = setup
        .instance("kills-1")
        .with_env("HIRESTATE_BATCH_MAX_RECORDS", "50")
        .with_env("HIRESTATE_BATCH_MAX_MS", "50")
        .with_env("HIRESTATE_SNAPSHOT_EVERY_BATCHES", "3")
        .with_env("HIRESTATE_MAX_CANDIDATES_IN_MEMORY", "60");

    for k in 0..kills {
        let every = (kills / 4).max(1);
        if k.is_multiple_of(every) && k / every < 4 {
            setup.produce(&parts[k / every]);
        }
        // A quarter of the kills land anywhere in start-up (group join, restore); the rest
        // after the partitions are restored, while batches are being committed.
        let ready_before = node.log_count(READY);
        let mut child = node.spawn(&setup, 30.0, &[]);
        let in_startup = rng.next_u64().is_multiple_of(4);
        if !in_startup {
            node.await_log(
                &mut child,
                READY,
                ready_before,
                &format!("kill {k}: the processor never became ready"),
            );
        }
        let after = if in_startup {
            rng.millis(50, 3_000)
        } else {
            rng.millis(0, 1_500)
        };
        if let Some(status) = processor::kill_after(&mut child, after) {
            panic!(
                "kill {k}: the processor exited on its own ({status}) before its kill\n{}",
                node.log_tail()
            );
        }
        eprintln!(
            "kill {k}: SIGKILL {after:?} after {}",
            if in_startup { "spawn" } else { "ready" }
        );
    }
    eprintln!("kills: {kills} SIGKILLs done in {:?}", started.elapsed());

    setup.produce(&parts[4]);
    node.run_expecting_abort(&setup, "after_produce_before_commit=3");
    setup.produce(&parts[5]);
    node.run_expecting_abort(&setup, "after_commit_before_store=3");
    // The store is now one committed batch behind Kafka: the next start must restore the gap.
    node.run_expecting_abort(&setup, "during_restore=1");
    // And one more SIGKILL mid-restore-or-run for good measure.
    setup.produce(&parts[6]);
    let mut child = node.spawn(&setup, 30.0, &[]);
    let _ = processor::kill_after(&mut child, rng.millis(300, 2_000));

    setup.produce(&parts[7]);
    let report = node.run_to_idle(&setup, 3.0, &[]);
    let total = report["counts"]["consumed"].as_u64().unwrap_or(0);
    assert!(
        total > 0,
        "the final run should have had the last part to consume: {report}"
    );

    let (actual, raw) = setup.read_back(&setup.output_topics());
    processor::assert_outputs_equal(&expected.outputs, &actual);
    processor::assert_command_headers(&raw);
    processor::assert_states_equal(&node.state_dump(&setup), &processor::clean_states(&[&file]));
    eprintln!("kills: seed {seed}, done in {:?}", started.elapsed());
}
