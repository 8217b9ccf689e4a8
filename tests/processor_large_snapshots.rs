//! A candidate whose state outgrows a Kafka record. The duplicate check keeps every event id a
//! candidate has had (DESIGN.md), so a long-lived candidate — a vendor's monitoring probe
//! sending an event a minute, say — grows a snapshot past the 1 MB the broker accepts by
//! default after ~27 000 events with UUID ids. Before, the broker refused the snapshot, the
//! batch rolled back, and the processor retried it for ever, every 10 s: its partition (and,
//! since one transaction carries every partition's batch, the whole instance) made no more
//! progress, and `/readyz` stayed ready. Now:
//! - `hirestate topics ensure` creates the snapshot topic for records up to 16 MiB (and the
//!   processor's producer sends them), so such a candidate goes through;
//! - a snapshot topic that still refuses a record (created before, or by hand) is warned about
//!   by `topics ensure` and the start-up check, and stops the processor with the broker's
//!   refusal, the candidate, the record's size and the fix, instead of a retry loop.

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::io::Write;
use std::path::PathBuf;

use rdkafka::admin::{AlterConfig, ResourceSpecifier};

const BIG: &str = "cand-probe";

#[test]
fn a_snapshot_over_a_megabyte_is_written_and_restored() {
    let Some(bs) = support::bootstrap("a_snapshot_over_a_megabyte_is_written_and_restored") else {
        return;
    };
    let setup = processor::Setup::new(&bs, "large", 1);
    // ~1.3 MB of event ids in one state.
    let file = long_lived(&setup, 35_000);
    setup.produce(&file);
    let instance = setup
        .instance("x")
        .with_env("HIRESTATE_SNAPSHOT_EVERY_BATCHES", "1");
    let report = instance.run_to_idle(&setup, 3.0, &[]);
    assert_eq!(
        report["counts"]["consumed"].as_u64(),
        Some(35_000),
        "{report}"
    );
    assert_eq!(report["aborted_batches"].as_u64(), Some(0), "{report}");
    let snapshots = setup.tail(&setup.topic("hiring.snapshots.v1"));
    let newest = snapshots
        .iter()
        .rev()
        .find(|r| r["key"] == BIG)
        .expect("no snapshot of the long-lived candidate");
    let ids = newest["value"]["seen_event_ids"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(ids, 35_000, "the newest snapshot holds {ids} event ids");

    // A cold start reads it back.
    std::fs::remove_dir_all(&instance.state_dir).expect("deleting the state directory");
    let report = instance.run_to_idle(&setup, 3.0, &[]);
    assert_eq!(report["counts"]["consumed"].as_u64(), Some(0), "{report}");
    let dump = instance.state_dump(&setup);
    let restored = dump
        .iter()
        .find(|s| s["candidate_id"] == BIG)
        .and_then(|s| s["seen_event_ids"].as_array())
        .map_or(0, Vec::len);
    assert_eq!(restored, 35_000, "restored with {restored} event ids");
}

#[test]
fn a_snapshot_the_broker_refuses_stops_the_processor_naming_it() {
    let Some(bs) =
        support::bootstrap("a_snapshot_the_broker_refuses_stops_the_processor_naming_it")
    else {
        return;
    };
    let setup = processor::Setup::new(&bs, "refused", 1);
    let snapshots = setup.topic("hiring.snapshots.v1");
    // A snapshot topic as created before (or by hand): Kafka's default limit is ~1 MB; 50 kB
    // here keeps the stream small.
    limit_records(&bs, &snapshots, 50_000);
    // `topics ensure` and the processor's start-up check warn about such a topic.
    const WARNING: &str = "the snapshot topic's max.message.bytes is below";
    let ensure = setup
        .command(&["topics", "ensure"], &[])
        .output()
        .expect("topics ensure");
    let stderr = String::from_utf8_lossy(&ensure.stderr);
    assert!(
        ensure.status.success() && stderr.contains(WARNING),
        "topics ensure: {}\n{stderr}",
        ensure.status
    );
    let file = long_lived(&setup, 4_000);
    setup.produce(&file);
    let instance = setup
        .instance("x")
        .with_env("HIRESTATE_SNAPSHOT_EVERY_BATCHES", "1");
    let mut child = instance.spawn(&setup, 30.0, &[]);
    instance.stopped_with(
        &mut child,
        &[
            "Message size too large",
            &snapshots,
            BIG,
            "max.message.bytes",
        ],
    );
    assert_eq!(instance.log_count(WARNING), 1, "{}", instance.log_tail());
    // Stopped at the first refusal: the batch was not retried.
    assert_eq!(
        instance.log_count("batch rolled back; rewinding"),
        0,
        "{}",
        instance.log_tail()
    );
}

/// One candidate with `events` - 1 field assertions after its application, each with a
/// UUID-like event id (what most vendors send), as JSON lines.
fn long_lived(setup: &processor::Setup, events: usize) -> PathBuf {
    let path = setup.dir.path().join("long-lived.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let common = format!(
        r#""candidate_id":"{BIG}","application_id":"app-probe","source_system":"ats","source_principal":"ats-main""#
    );
    writeln!(
        out,
        r#"{{"event_id":"probe-0",{common},"occurred_at":"2026-11-02T00:00:00Z","kind":"application_created","requisition_id":"req-22","region":"na"}}"#
    )
    .expect("write");
    // Random ids, as UUIDs are: the broker's limit applies to the compressed record batch.
    let mut rng = processor::Rng(0x5eed);
    for i in 1..events {
        let (h, m, s) = (i / 3600 % 24, i / 60 % 60, i % 60);
        let day = 3 + i / 86_400;
        let (a, b) = (rng.next_u64(), rng.next_u64());
        writeln!(
            out,
            r#"{{"event_id":"{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",{common},"occurred_at":"2026-11-{day:02}T{h:02}:{m:02}:{s:02}Z","kind":"fields_asserted","fields":{{"candidate.email":"probe@mail.example"}}}}"#,
            a >> 32,
            a >> 16 & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        )
        .expect("write");
    }
    out.flush().expect("flush");
    path
}

/// Sets `topic`'s `max.message.bytes` (keeping it compacted).
fn limit_records(bootstrap: &str, topic: &str, bytes: usize) {
    let (admin, opts) = support::admin(bootstrap);
    let limit = bytes.to_string();
    // AlterConfigs replaces the topic's whole configuration: compaction is given again.
    let alter = AlterConfig::new(ResourceSpecifier::Topic(topic))
        .set("cleanup.policy", "compact")
        .set("max.message.bytes", &limit);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for r in rt
        .block_on(admin.alter_configs(&[alter], &opts))
        .expect("alter_configs request")
    {
        r.unwrap_or_else(|(t, e)| panic!("limiting {t:?}: {e}"));
    }
}
