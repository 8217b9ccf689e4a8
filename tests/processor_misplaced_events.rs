//! Events of one candidate on two partitions (`ingest::placement`): two producers keyed by
//! `candidate_id` but hashing keys differently — a Java client's murmur2 and librdkafka's
//! default CRC-32, as two vendors' clients do — put most shared candidates' events on two
//! partitions. Folded per partition, each half of such a history lacks the other: commands
//! were lost and `unknown_application` rejections made up, with no error (in a first version
//! of this test, the halves' partitioners swapped, 74 of 1 360 commands were missing and 180
//! rejections extra; this one's counts failed: 255 `unknown_application` instead of 1).
//!
//! With the default `events_partitioner` (murmur2), every record not on the partition murmur2
//! gives its key goes to the DLQ with error headers naming where it belongs; the outputs and
//! the states are a replay of the stream without those records, live and after a cold
//! restore, and so are `replay` and `kpi` of the topic; a later start with another
//! `events_partitioner` is refused. Where murmur2 places a key is learnt from librdkafka
//! itself: the whole stream is produced once more, with `partitioner=murmur2_random`, to a
//! second log.

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use serde_json::Value;

#[test]
fn events_on_another_partition_than_their_key_are_dead_lettered_not_folded() {
    let Some(bs) = support::bootstrap(
        "events_on_another_partition_than_their_key_are_dead_lettered_not_folded",
    ) else {
        return;
    };
    let setup = processor::Setup::new(&bs, "misplaced", 4);
    let file = setup.generate("events.jsonl", 300, 4_242);
    let (first, second) = setup.halves(&file);
    let produce = |s: &processor::Setup, f: &std::path::Path, partitioner: &str| {
        s.cli_ok(
            &["produce", "--from-file", &f.display().to_string()],
            &[("HIRESTATE_KAFKA_PRODUCER_PARTITIONER", partitioner)],
        );
    };
    let events = setup.topic("hiring.events.v1");

    // Where librdkafka's Java-compatible partitioner puts each candidate.
    let reference = processor::Setup::new(&bs, "misplaced-ref", 4);
    produce(&reference, &file, "murmur2_random");
    let mut home: BTreeMap<String, i64> = BTreeMap::new();
    for r in reference.tail(&reference.topic("hiring.events.v1")) {
        let (key, p) = (r["key"].as_str().expect("key"), r["partition"].as_i64());
        let was = home.insert(key.to_owned(), p.expect("partition"));
        assert!(
            was.is_none() || was == p,
            "murmur2 placed {key} on two partitions"
        );
    }

    produce(&setup, &first, "murmur2_random");
    produce(&setup, &second, "consistent_random");
    let log = setup.tail(&events);
    let misplaced: BTreeMap<(i64, i64), (String, i64)> = log
        .iter()
        .filter(|r| r["partition"].as_i64() != home.get(r["key"].as_str().expect("key")).copied())
        .map(|r| {
            let at = (
                r["partition"].as_i64().unwrap(),
                r["offset"].as_i64().unwrap(),
            );
            let id = r["value"]["event_id"]
                .as_str()
                .expect("event_id")
                .to_owned();
            (at, (id, home[r["key"].as_str().unwrap()]))
        })
        .collect();
    let lines = processor::read_lines(&file);
    assert_eq!(log.len(), lines.len());
    assert!(
        misplaced.len() > lines.len() / 10,
        "only {} of {} records misplaced: the two partitioners agree too often for a test",
        misplaced.len(),
        lines.len()
    );
    // The stream without the misplaced records: what must be folded.
    let dropped: BTreeSet<&str> = misplaced.values().map(|(id, _)| id.as_str()).collect();
    let kept = setup.dir.path().join("kept.jsonl");
    let mut out = std::fs::File::create(&kept).expect("kept.jsonl");
    for l in &lines {
        let e: Value = serde_json::from_str(l).expect("event");
        if !dropped.contains(e["event_id"].as_str().expect("event_id")) {
            writeln!(out, "{l}").expect("write");
        }
    }
    drop(out);
    let expected = processor::expected(&setup, &kept);

    let node = setup
        .instance("misplaced-1")
        .with_env("HIRESTATE_BATCH_MAX_RECORDS", "100")
        .with_env("HIRESTATE_SNAPSHOT_EVERY_BATCHES", "3");
    let report = node.run_to_idle(&setup, 2.0, &[]);
    let mut counts = expected.counts.clone();
    counts["consumed"] = lines.len().into();
    counts["dlq"] = misplaced.len().into();
    processor::assert_counts(&report, &counts);

    // Each misplaced record, and nothing else, is in the DLQ, saying where it belongs.
    let dlq = support::read_raw(&bs, &setup.topic("hiring.dlq.v1"), setup.partitions);
    let mut dead: BTreeSet<(i64, i64)> = BTreeSet::new();
    for r in &dlq {
        let h: BTreeMap<&str, &str> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let num = |k: &str| -> i64 { h[k].parse().unwrap_or_else(|_| panic!("{k}: {h:?}")) };
        let at = (
            num("__connect.errors.partition"),
            num("__connect.errors.offset"),
        );
        let (id, belongs) = misplaced
            .get(&at)
            .unwrap_or_else(|| panic!("DLQ record {at:?} was not misplaced: {h:?}"));
        assert_eq!(h["__connect.errors.topic"], events, "{id}");
        assert_eq!(h["__connect.errors.stage"], "validate", "{id}");
        assert_eq!(
            h["__connect.errors.exception.class.name"], "hirestate::partition",
            "{id}"
        );
        let message = h["__connect.errors.exception.message"];
        for part in [
            format!("on partition {}, but murmur2", at.0),
            format!("on partition {belongs} of 4"),
        ] {
            assert!(message.contains(&part), "{id}: {part:?} not in {message}");
        }
        assert!(dead.insert(at), "{at:?} dead-lettered twice");
    }
    assert_eq!(
        dead.len(),
        misplaced.len(),
        "every misplaced record in the DLQ"
    );

    let (actual, raw) = setup.read_back(&setup.output_topics());
    processor::assert_outputs_equal(&expected.outputs, &actual);
    processor::assert_command_headers(&raw);
    let clean = processor::clean_states(&[&kept]);
    processor::assert_states_equal(&node.state_dump(&setup), &clean);

    // An audit replay and the KPIs of the topic fold what the processor folded: the stream
    // without the misplaced records (before, both read every decodable record).
    // Rows by event id (a duplicated event has a row per copy), in their order.
    let by_event = |out: &[u8]| -> BTreeMap<String, Vec<Value>> {
        let mut rows: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for l in String::from_utf8_lossy(out).lines() {
            let r: Value = serde_json::from_str(l).expect("a replay row");
            let id = r["event_id"].as_str().expect("event_id").to_owned();
            rows.entry(id).or_default().push(r);
        }
        rows
    };
    let kept_path = kept.display().to_string();
    let from_file = |cmd: &str, extra: &[&str]| {
        let args = [&[cmd, "--from-file", &kept_path][..], extra].concat();
        setup.cli_ok(&args, &[])
    };
    let from_topic = |cmd: &str, extra: &[&str]| {
        let args = [&[cmd, "--bootstrap", &bs][..], extra].concat();
        setup.cli_ok(&args, &[])
    };
    let (file_rows, topic_rows) = (
        by_event(&from_file("replay", &["--format", "jsonl"])),
        by_event(&from_topic("replay", &["--format", "jsonl"])),
    );
    let rows = |r: &BTreeMap<String, Vec<Value>>| r.values().map(Vec::len).sum::<usize>();
    assert_eq!(rows(&file_rows), lines.len() - misplaced.len());
    assert!(
        file_rows == topic_rows,
        "replay --bootstrap: {} rows, {} event ids' differ from the replay of the kept events",
        rows(&topic_rows),
        topic_rows
            .iter()
            .filter(|(id, r)| file_rows.get(*id) != Some(r))
            .count()
    );
    let kpi = |out: Vec<u8>| -> Value { serde_json::from_slice(&out).expect("kpi json") };
    let mut topic_kpi = kpi(from_topic("kpi", &["--json"]));
    let file_kpi = kpi(from_file("kpi", &["--json"]));
    assert_eq!(
        topic_kpi["malformed_lines"],
        misplaced.len(),
        "kpi --bootstrap"
    );
    topic_kpi["malformed_lines"] = 0.into();
    assert_eq!(
        topic_kpi, file_kpi,
        "kpi --bootstrap against kpi of the kept events"
    );

    // A cold restore (snapshots, then the log after them) skips them the same way.
    std::fs::remove_dir_all(&node.state_dir).expect("deleting the state directory");
    let again = node.run_to_idle(&setup, 2.0, &[]);
    assert_eq!(again["counts"]["consumed"].as_u64(), Some(0), "{again}");
    // The restore folded a log tail after the snapshots, or it skipped nothing.
    assert!(again["restored_events"].as_u64() > Some(0), "{again}");
    processor::assert_states_equal(&node.state_dump(&setup), &clean);

    // Another setting would dead-letter other records: the group's offsets, committed under
    // murmur2, refuse it before anything is restored.
    let switched = node.with_env("HIRESTATE_EVENTS_PARTITIONER", "crc32");
    switched.stopped_with(
        &mut switched.spawn(&setup, 5.0, &[]),
        &[
            &events,
            "events_partitioner = murmur2, but this processor runs with crc32",
        ],
    );
}
