//! Cold start from snapshots (DESIGN.md "State, recovery, exactly-once": no sled state →
//! latest snapshot plus the log tail): the first half of a stream is processed, the state
//! directory is deleted, the second half — events of the same candidates — is produced and a
//! fresh instance (same instance id, empty state directory) runs. It must not re-emit anything
//! of the first half, must rebuild the first half's states, and end equal to a clean replay.
//!
//! Twice: with the events placed by librdkafka's default partitioner (CRC-32) and by Java
//! clients' murmur2 (`events_partitioner` set to match, for `produce` and the processor): a
//! candidate's snapshot must land on its events' partition whichever partitioner placed them,
//! or the restore of that partition never finds it (the processor's own producer placed
//! snapshots with librdkafka's default partitioner once).

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::collections::BTreeSet;
use std::time::Instant;

#[test]
fn a_fresh_state_dir_restores_from_snapshots_and_re_emits_nothing() {
    cold_start(
        "a_fresh_state_dir_restores_from_snapshots_and_re_emits_nothing",
        "crc32",
    );
}

/// Also: the restore holds at most `max_candidates_in_memory` states (40 here, 10 a
/// partition: it stores them in chunks), and a first attempt is killed by a fail point after
/// it stored some snapshot states but no offset yet; the next start restores from the
/// snapshots again over what the first stored.
#[test]
fn snapshots_follow_the_events_of_a_java_partitioned_log() {
    cold_start(
        "snapshots_follow_the_events_of_a_java_partitioned_log",
        "murmur2",
    );
}

/// The test, with the events placed by `partitioner` (`HIRESTATE_EVENTS_PARTITIONER`); with
/// Java's, also a limit on the states in memory and an interrupted first restore.
fn cold_start(test: &str, partitioner: &str) {
    let interrupted = partitioner == "murmur2";
    let produce_env = [("HIRESTATE_EVENTS_PARTITIONER", partitioner)];
    let Some(bs) = support::bootstrap(test) else {
        return;
    };
    let produce = |setup: &processor::Setup, file: &std::path::Path| {
        let path = file.display().to_string();
        setup.cli_ok(&["produce", "--from-file", &path], &produce_env);
    };
    let started = Instant::now();
    let setup = processor::Setup::new(&bs, "cold", 4);
    let file = setup.generate("events.jsonl", 300, 4_242);
    let lines = processor::read_lines(&file);
    // The stream is in event-time order: halves split most candidates' histories in two.
    let half = lines.len() / 2;
    let first = setup.slice(&file, 0, half, "first.jsonl");
    let second = setup.slice(&file, half, lines.len(), "second.jsonl");
    let candidates = |f: &std::path::Path| -> BTreeSet<String> {
        processor::read_lines(f)
            .iter()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("event")["candidate_id"]
                    .as_str()
                    .expect("id")
                    .to_owned()
            })
            .collect()
    };
    let (c1, c2) = (candidates(&first), candidates(&second));
    let spanning = c1.intersection(&c2).count();
    let only_first = c1.difference(&c2).count();
    assert!(
        spanning > 50,
        "only {spanning} candidates have events in both halves"
    );
    let expected = processor::expected(&setup, &file);

    let node = setup
        .instance("cold-1")
        .with_env("HIRESTATE_BATCH_MAX_RECORDS", "100")
        .with_env("HIRESTATE_SNAPSHOT_EVERY_BATCHES", "2")
        .with_env("HIRESTATE_EVENTS_PARTITIONER", partitioner);
    produce(&setup, &first);
    let r1 = node.run_to_idle(&setup, 2.0, &[]);
    assert_eq!(
        r1["counts"]["consumed"].as_u64(),
        Some(half as u64),
        "run 1: {r1}"
    );
    assert!(
        r1["counts"]["snapshots"].as_u64().unwrap_or(0) > 0,
        "run 1 wrote no snapshot: {r1}"
    );

    std::fs::remove_dir_all(&node.state_dir).expect("deleting the state directory");
    produce(&setup, &second);
    let node = if interrupted {
        let node = node.with_env("HIRESTATE_MAX_CANDIDATES_IN_MEMORY", "40");
        // The 25th snapshot decoded (or event folded) by the restore: past the first chunk of
        // 10 states of some partition.
        node.run_expecting_abort(&setup, "during_restore=25");
        node
    } else {
        node
    };
    let r2 = node.run_to_idle(&setup, 2.0, &[]);
    eprintln!(
        "cold start: {spanning} candidates span both halves, {only_first} only in the first; \
         run 2 restored_events {}",
        r2["restored_events"]
    );
    // `--exit-when-idle` counts from "partitions assigned" (RunOptions docs): a restore that
    // takes longer than the idle time must not end the run before it read anything. If it
    // did, a follow-up run finishes the work so the restore's correctness is still checked,
    // and the early exit is reported at the end.
    let mut consumed = r2["counts"]["consumed"].as_u64().unwrap_or(0);
    let mut early_exit = None;
    if consumed == 0 {
        early_exit = Some(r2.clone());
        let r3 = node.run_to_idle(&setup, 2.0, &[]);
        consumed += r3["counts"]["consumed"].as_u64().unwrap_or(0);
    }
    // Nothing of the first half was re-read as new.
    assert_eq!(
        consumed,
        (lines.len() - half) as u64,
        "the runs after the cold start must consume only the second half"
    );
    // The second half's commands are derived with the first half's state in place (a replay
    // of the second half alone, knowing no applications, would reject most of it).
    let (actual, raw) = setup.read_back(&setup.output_topics());
    processor::assert_outputs_equal(&expected.outputs, &actual);
    processor::assert_command_headers(&raw);

    // The projection holds every candidate, also those whose events are all in the first half:
    // only the restore can have put them there.
    let dump = node.state_dump(&setup);
    assert_eq!(
        dump.len(),
        c1.union(&c2).count(),
        "state-dump after the cold start"
    );
    processor::assert_states_equal(&dump, &processor::clean_states(&[&file]));
    eprintln!("cold start: done in {:?}", started.elapsed());
    assert!(
        early_exit.is_none(),
        "BUG: `run --exit-when-idle 2` after a cold-start restore exited without consuming \
         anything (the restore alone outlasted the idle time, counted from process start): {}",
        early_exit.unwrap_or_default()
    );
}

/// A snapshot record that does not decode (written by hand, by another tool, or damaged) stops
/// a cold start naming it: dropped, its candidate would be restored from the events after the
/// snapshot round alone, without its history (what happened before).
#[test]
fn an_undecodable_snapshot_stops_the_restore_naming_it() {
    let Some(bs) = support::bootstrap("an_undecodable_snapshot_stops_the_restore_naming_it") else {
        return;
    };
    let setup = processor::Setup::new(&bs, "cold-garbage", 1);
    let file = setup.generate("events.jsonl", 40, 4_243);
    setup.produce(&file);
    let node = setup
        .instance("cold-g")
        .with_env("HIRESTATE_BATCH_MAX_RECORDS", "100")
        .with_env("HIRESTATE_SNAPSHOT_EVERY_BATCHES", "1");
    let r1 = node.run_to_idle(&setup, 2.0, &[]);
    assert!(r1["counts"]["snapshots"].as_u64() > Some(0), "{r1}");

    let snapshots = setup.topic("hiring.snapshots.v1");
    let producer: rdkafka::producer::BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .create()
        .expect("producer");
    producer
        .send(
            rdkafka::producer::BaseRecord::to(&snapshots)
                .partition(0)
                .key("cand-000001")
                .payload("not a snapshot"),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    rdkafka::producer::Producer::flush(&producer, std::time::Duration::from_secs(30))
        .expect("flush");

    std::fs::remove_dir_all(&node.state_dir).expect("deleting the state directory");
    let mut child = node.spawn(&setup, 2.0, &[]);
    node.stopped_with(
        &mut child,
        &["partition 0", "cand-000001", "does not decode", &snapshots],
    );
}
