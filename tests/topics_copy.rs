//! `hirestate topics copy-events`: the way to more partitions (README "Adding partitions").
//! An event log of 2 partitions is copied into the empty event log of another prefix with 4;
//! a new group on the copy must fold exactly what a replay of the stream derives (every output,
//! per candidate in order, and the counts), each copied record must keep its key, bytes and
//! headers, in its candidate's order, and what the processor would dead-letter (a record that
//! does not decode, an event keyed other than by its candidate) must be reported and left out,
//! not folded by the new log. The copy is exactly once and resumable: killed half way (a fail
//! point between sending a record and committing its transaction), it is run again and goes
//! on from what it committed, and the copy holds each record once; a third run copies nothing.
//! A log something else wrote to is refused. A source written to while it is copied fails the
//! run, naming the partitions that grew, and the run after the writes stop copies the rest.

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::Value;

/// A key's records as bytes and headers, in log order.
type Contents<'a> = Vec<(&'a [u8], &'a [(String, String)])>;

#[test]
fn a_copy_into_more_partitions_folds_to_the_same_outputs() {
    let Some(bs) = support::bootstrap("a_copy_into_more_partitions_folds_to_the_same_outputs")
    else {
        return;
    };
    let from = processor::Setup::new(&bs, "copyfrom", 2);
    let file = from.generate("events.jsonl", 120, 83);
    let (head, tail) = from.halves(&file);
    from.produce(&head);

    // After the first half (produced by `hirestate produce`, Avro single-object), two records
    // the processor dead-letters: bytes that do not decode, and a good event keyed by another
    // candidate than its own. Then the second half as JSON framing, each record with a header
    // the copy must keep.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .set("partitioner", "murmur2_random")
        .create()
        .expect("producer");
    let events_topic = from.topic("hiring.events.v1");
    let send = |key: &[u8], value: &[u8], header: Option<&str>| {
        let mut r = BaseRecord::to(&events_topic).key(key).payload(value);
        if let Some(h) = header {
            r = r.headers(OwnedHeaders::new().insert(Header {
                key: "x-origin",
                value: Some(h),
            }));
        }
        producer.send(r).map_err(|(e, _)| e).expect("send");
    };
    let lines = processor::read_lines(&tail);
    let misfiled = lines[0].as_bytes();
    send(b"cand-undecodable", b"\x00\x00not avro", None);
    send(b"someone-else", misfiled, None);
    for line in &lines {
        let event: Value = serde_json::from_str(line).expect("an event line");
        let key = event["candidate_id"].as_str().expect("candidate_id");
        let id = event["event_id"].as_str().expect("event_id");
        send(key.as_bytes(), line.as_bytes(), Some(id));
    }
    producer.flush(Duration::from_secs(30)).expect("flush");

    let to = processor::Setup::new(&bs, "copyto", 4);
    let expected = processor::expected(&to, &file);
    // Transactions of 50 records; killed (SIGABRT) as the 175th record is sent: three
    // transactions committed, the fourth left open.
    let run_copy = |env: &[(&str, &str)]| {
        from.command(
            &[
                "topics",
                "copy-events",
                "--to-prefix",
                &to.prefix,
                "--batch-records",
                "50",
            ],
            env,
        )
        .output()
        .expect("spawning copy-events")
    };
    let killed = run_copy(&[("HIRESTATE_FAILPOINTS", "copy_after_send=175")]);
    assert!(
        !killed.status.success() && killed.stdout.is_empty(),
        "the copy was not killed: {}",
        String::from_utf8_lossy(&killed.stderr)
    );
    let out = run_copy(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "copy-events failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(report["from"], events_topic.as_str(), "{report}");
    assert_eq!(report["to"], to.topic("hiring.events.v1").as_str());
    assert_eq!(report["resumed"], true, "{report}");
    assert_eq!(
        report["copied"].as_u64(),
        Some(expected.events as u64 - 150),
        "the resumed run copies what the killed one did not commit: {report}"
    );
    assert_eq!(report["not_copied"], 1, "{report}");
    assert_eq!(report["undecodable"], 1, "{report}");
    assert!(
        stderr.contains("not copied: ") && stderr.contains("someone-else"),
        "the misfiled record is reported with its position and why: {stderr}"
    );
    let source_records = support::read_raw(&bs, &events_topic, 2);
    let bad = source_records
        .iter()
        .find(|r| r.key == b"cand-undecodable")
        .expect("the undecodable record in the source");
    let at = format!(
        "undecodable: {events_topic}/{}@{}: ",
        bad.partition, bad.offset
    );
    assert!(
        stderr.contains(&at),
        "the undecodable record is reported with its position ({at}): {stderr}"
    );

    // Every copied record as it was, per key in order, all of a key's on one partition (the
    // one its key gives: the new group below dead-letters nothing).
    let by_key = |records: Vec<support::RawRecord>| {
        let mut m: BTreeMap<Vec<u8>, Vec<support::RawRecord>> = BTreeMap::new();
        for r in records {
            m.entry(r.key.clone()).or_default().push(r);
        }
        m
    };
    fn contents(v: &[support::RawRecord]) -> Contents<'_> {
        v.iter()
            .map(|r| (r.value.as_slice(), r.headers.as_slice()))
            .collect()
    }
    let mut source = by_key(source_records);
    source.remove(&b"cand-undecodable"[..]);
    source.remove(&b"someone-else"[..]);
    let copy = by_key(support::read_raw(&bs, &to.topic("hiring.events.v1"), 4));
    assert_eq!(source.len(), copy.len(), "candidates copied");
    let mut moved = 0;
    for (key, records) in &source {
        let copied = &copy[key];
        assert_eq!(contents(records), contents(copied), "records of {key:?}");
        let partitions: BTreeSet<i32> = copied.iter().map(|r| r.partition).collect();
        assert_eq!(partitions.len(), 1, "{key:?} copied onto {partitions:?}");
        moved += usize::from(records[0].partition != copied[0].partition);
    }
    assert!(
        moved > 0,
        "no candidate changed partition: the copy proves nothing"
    );
    let with_headers = copy
        .values()
        .flatten()
        .filter(|r| !r.headers.is_empty())
        .count();
    assert_eq!(
        with_headers,
        lines.len(),
        "records copied with their header"
    );

    // Run again, the copy goes on from its progress and finds nothing new.
    let again = run_copy(&[]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let report: Value = serde_json::from_slice(&again.stdout).expect("a JSON report");
    assert_eq!(
        (report["resumed"].as_bool(), report["copied"].as_u64()),
        (Some(true), Some(0)),
        "{report}"
    );

    // A new group on the copy folds exactly what the replay derives.
    let report = to.instance("copy-1").run_to_idle(&to, 2.0, &[]);
    processor::assert_counts(&report, &expected.counts);
    let (actual, _) = to.read_back(&to.output_topics());
    processor::assert_outputs_equal(&expected.outputs, &actual);

    // A log something else wrote to: refused, saying why (the copy would add to it).
    let other = processor::Setup::new(&bs, "copyother", 4);
    producer
        .send(
            BaseRecord::to(&other.topic("hiring.events.v1"))
                .key("k")
                .payload(misfiled),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    producer.flush(Duration::from_secs(30)).expect("flush");
    let o = from
        .command(
            &["topics", "copy-events", "--to-prefix", &other.prefix],
            &[],
        )
        .output()
        .expect("spawning copy-events");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && stderr.contains("already holds records"),
        "{stderr}"
    );
    // Into itself or into a log that does not exist: refused too.
    for (prefix, says) in [
        (from.prefix.as_str(), "is the event log copied from"),
        ("copy-nowhere", "does not exist"),
    ] {
        let o = from
            .command(&["topics", "copy-events", "--to-prefix", prefix], &[])
            .output()
            .expect("spawning copy-events");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && stderr.contains(says),
            "{prefix}: {stderr}"
        );
    }
}

/// Records written to the source while it is copied may be behind where its partition's read
/// ended: the run must fail, saying so, not report success (before, it did, and the records
/// written after a partition's read were simply missing from the new log). Once the writes
/// stop, the next run copies the rest: the copy then holds every record of the source once.
#[test]
fn a_source_written_to_during_the_copy_fails_the_run_and_the_next_copies_the_rest() {
    let Some(bs) = support::bootstrap(
        "a_source_written_to_during_the_copy_fails_the_run_and_the_next_copies_the_rest",
    ) else {
        return;
    };
    let from = processor::Setup::new(&bs, "copygrowfrom", 2);
    let file = from.generate("events.jsonl", 40, 84);
    from.produce(&file);
    let to = processor::Setup::new(&bs, "copygrowto", 4);

    // A feed still producing: one event (JSON framing; a duplicate to the fold) every 20 ms,
    // each acknowledged before the next, from before the copy starts until after it ends.
    let lines = processor::read_lines(&file);
    let produced = lines.len();
    let stop = Arc::new(AtomicBool::new(false));
    let feed = {
        let (bs, topic, stop) = (bs.clone(), from.topic("hiring.events.v1"), stop.clone());
        std::thread::spawn(move || {
            let producer: BaseProducer = ClientConfig::new()
                .set("bootstrap.servers", &bs)
                .set("partitioner", "murmur2_random")
                .create()
                .expect("producer");
            let mut sent = 0;
            for line in lines.iter().cycle() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let event: Value = serde_json::from_str(line).expect("an event line");
                let key = event["candidate_id"].as_str().expect("candidate_id");
                producer
                    .send(BaseRecord::to(&topic).key(key).payload(line.as_str()))
                    .map_err(|(e, _)| e)
                    .expect("send");
                producer.flush(Duration::from_secs(10)).expect("flush");
                sent += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            sent
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let out = from
        .command(&["topics", "copy-events", "--to-prefix", &to.prefix], &[])
        .output()
        .expect("spawning copy-events");
    stop.store(true, Ordering::Relaxed);
    let sent = feed.join().expect("the feed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(sent > 1, "the feed sent only {sent} records");
    assert!(
        !out.status.success(),
        "a copy of a log written to meanwhile succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(&format!(
            "{} grew while it was copied (partition ",
            from.topic("hiring.events.v1")
        )) && stderr.contains("run the copy again"),
        "{stderr}"
    );

    let last = from
        .command(&["topics", "copy-events", "--to-prefix", &to.prefix], &[])
        .output()
        .expect("spawning copy-events");
    assert!(
        last.status.success(),
        "{}",
        String::from_utf8_lossy(&last.stderr)
    );
    let contents = |topic: &str, partitions| {
        let mut m: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
        for r in support::read_raw(&bs, topic, partitions) {
            m.entry(r.key).or_default().push(r.value);
        }
        m
    };
    let source = contents(&from.topic("hiring.events.v1"), 2);
    assert_eq!(
        source.values().map(Vec::len).sum::<usize>(),
        produced + sent,
        "the source's records"
    );
    assert!(
        source == contents(&to.topic("hiring.events.v1"), 4),
        "the copy does not hold each record of the source once, per key in order"
    );
}

/// A transaction of no records is refused by the argument parser, naming the flag (before,
/// 0 was taken as 1 without a word). Needs no broker: nothing is asked of one.
#[test]
fn a_batch_of_no_records_is_refused_naming_the_flag() {
    let out = processor::bare_command(&[
        "topics",
        "copy-events",
        "--to-prefix",
        "anywhere",
        "--batch-records",
        "0",
    ])
    .output()
    .expect("spawning copy-events");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--batch-records") && stderr.contains("'0'"),
        "{stderr}"
    );
}
