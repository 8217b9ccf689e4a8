//! A snapshot round must cover every candidate changed since the previous round — also those
//! changed before a restart and not touched since (they are dirty in the store, not in
//! memory). Otherwise a later cold start restores them from an older snapshot.
//!
//! Run 1 processes candidates of group A and stops between rounds (some of A dirty). Run 2
//! (same store) processes only group B for several rounds. Run 3 starts cold (store deleted)
//! and must rebuild A and B exactly.

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::collections::BTreeSet;

const BATCH: usize = 10;
const EVERY: usize = 3;

#[test]
fn rounds_snapshot_candidates_dirty_from_before_a_restart() {
    let Some(bs) = support::bootstrap("rounds_snapshot_candidates_dirty_from_before_a_restart")
    else {
        return;
    };
    let setup = processor::Setup::new(&bs, "rounds", 1);
    let file = setup.generate("events.jsonl", 60, 77);
    let lines = processor::read_lines(&file);
    let candidate = |l: &String| -> String {
        serde_json::from_str::<serde_json::Value>(l).expect("event")["candidate_id"]
            .as_str()
            .expect("id")
            .to_owned()
    };
    let ids: BTreeSet<String> = lines.iter().map(candidate).collect();
    let group_a: BTreeSet<&String> = ids.iter().take(ids.len() / 2).collect();
    let (mut a, b): (Vec<&String>, Vec<&String>) =
        lines.iter().partition(|l| group_a.contains(&candidate(l)));
    // Run 1 must end between rounds: a batch count that is not a multiple of EVERY.
    while a.len().div_ceil(BATCH) % EVERY == 0 {
        a.pop();
    }
    assert!(
        b.len() > BATCH * EVERY * 2,
        "group B must span several rounds"
    );
    let write = |name: &str, rows: &[&String]| {
        let path = setup.dir.path().join(name);
        std::fs::write(
            &path,
            rows.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .expect("write");
        path
    };
    let (file_a, file_b) = (write("a.jsonl", &a), write("b.jsonl", &b));

    let node = setup
        .instance("rounds")
        .with_env("HIRESTATE_BATCH_MAX_RECORDS", &BATCH.to_string())
        .with_env("HIRESTATE_BATCH_MAX_MS", "2000")
        .with_env("HIRESTATE_SNAPSHOT_EVERY_BATCHES", &EVERY.to_string());
    setup.produce(&file_a);
    let r1 = node.run_to_idle(&setup, 3.0, &[]);
    assert_eq!(
        r1["counts"]["consumed"].as_u64(),
        Some(a.len() as u64),
        "run 1: {r1}"
    );
    assert_ne!(
        r1["batches"].as_u64().unwrap_or(0) % EVERY as u64,
        0,
        "run 1 must stop between rounds: {r1}"
    );

    setup.produce(&file_b);
    let r2 = node.run_to_idle(&setup, 3.0, &[]);
    assert_eq!(
        r2["counts"]["consumed"].as_u64(),
        Some(b.len() as u64),
        "run 2: {r2}"
    );

    std::fs::remove_dir_all(&node.state_dir).expect("deleting the state directory");
    let r3 = node.run_to_idle(&setup, 3.0, &[]);
    assert_eq!(
        r3["counts"]["consumed"].as_u64(),
        Some(0),
        "run 3 has nothing new to consume: {r3}"
    );
    let clean = processor::clean_states(&[&file_a, &file_b]);
    processor::assert_states_equal(&node.state_dump(&setup), &clean);
}
