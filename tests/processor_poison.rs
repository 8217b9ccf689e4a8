//! Poison input: records that cannot become events — empty, random bytes, a truncated Avro
//! single-object record, a wrong magic byte, Confluent framing with no registry, JSON with an
//! unknown kind, an event keyed by another candidate, an event with an oversize field — are
//! produced among good events with rdkafka directly. The processor keeps going; each lands in
//! `hiring.dlq.v1` with its original key, value and headers plus the Kafka Connect error
//! headers; the counts reconcile; the good events' outputs equal the replay's.
//!
//! Then a fresh instance restores the whole partition history from the log (no snapshots): the
//! records the live path dead-lettered must not be folded by the restore either, so the
//! projection still equals a clean replay of the good events.

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use hirestate::codec::{Codec, Framing};
use hirestate::model::Event;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};

const POISON_HEADER: &str = "x-test-poison";

/// One record the processor must dead-letter.
struct Poison {
    name: &'static str,
    key: String,
    value: Vec<u8>,
    partition: i32,
    offset: i64,
}

fn single_object(event: &Value) -> Vec<u8> {
    let e: Event = serde_json::from_value(event.clone()).expect("a well-formed JSON-form event");
    Codec::embedded()
        .expect("codec")
        .encode_local(&e, Framing::SingleObject)
        .expect("encoding")
}

/// The poison records, aimed at candidates of the good stream where that makes them tempting.
fn poison_records(victim: &str, app: &str) -> Vec<(&'static str, String, Vec<u8>)> {
    let event = |id: &str, name: &str| {
        json!({
            "event_id": id, "candidate_id": victim, "application_id": app,
            "source_system": "ats", "source_principal": "ats-main",
            "occurred_at": "2027-03-01T10:00:00Z", "kind": "fields_asserted",
            "fields": {"candidate.name": name},
        })
    };
    let valid = single_object(&event("poison-valid", "Mallory"));
    let mut truncated = valid.clone();
    truncated.truncate(valid.len() / 2);
    let mut wrong_magic = valid.clone();
    wrong_magic[0] = 0xC4;
    let mut confluent = vec![0x00, 0, 0, 0, 7];
    confluent.extend_from_slice(&valid[10..]);
    let mut random = vec![0xAB];
    let mut rng = processor::Rng(99);
    random.extend((0..63).map(|_| rng.next_u64() as u8));
    let unknown_kind = serde_json::to_vec(&json!({
        "event_id": "poison-json", "candidate_id": victim, "application_id": app,
        "source_system": "ats", "source_principal": "ats-main",
        "occurred_at": "2027-03-01T10:00:00Z", "kind": "teleported", "to": "hired",
    }))
    .expect("json");
    vec![
        ("empty", victim.to_owned(), Vec::new()),
        ("random", victim.to_owned(), random),
        ("truncated", victim.to_owned(), truncated),
        ("wrong_magic", victim.to_owned(), wrong_magic),
        ("confluent_without_registry", victim.to_owned(), confluent),
        ("unknown_kind", victim.to_owned(), unknown_kind),
        // Decodes, but its key is not its candidate_id: it sits on the wrong partition.
        (
            "key_mismatch",
            format!("{victim}-other"),
            single_object(&event("poison-key", "Mallory Key")),
        ),
        // Decodes, but a string is over the per-field limit.
        (
            "oversize_field",
            victim.to_owned(),
            single_object(&event("poison-big", &"M".repeat(9_000))),
        ),
    ]
}

fn produce_poison(
    bootstrap: &str,
    topic: &str,
    records: Vec<(&'static str, String, Vec<u8>)>,
) -> Vec<Poison> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    records
        .into_iter()
        .map(|(name, key, value)| {
            let headers = OwnedHeaders::new().insert(Header {
                key: POISON_HEADER,
                value: Some(name),
            });
            let record = FutureRecord::to(topic)
                .key(&key)
                .payload(&value)
                .headers(headers);
            let d = rt
                .block_on(producer.send(record, Duration::from_secs(30)))
                .unwrap_or_else(|(e, _)| panic!("producing poison {name}: {e}"));
            Poison {
                name,
                key,
                value,
                partition: d.partition,
                offset: d.offset,
            }
        })
        .collect()
}

/// A record as read back: key, value, headers.
type RawRecord = (Vec<u8>, Vec<u8>, BTreeMap<String, String>);

/// Every committed record of `topic`.
fn read_raw(bootstrap: &str, topic: &str, partitions: i32) -> Vec<RawRecord> {
    support::read_raw(bootstrap, topic, partitions)
        .into_iter()
        .map(|r| (r.key, r.value, r.headers.into_iter().collect()))
        .collect()
}

#[test]
fn poison_records_are_dead_lettered_with_their_bytes_and_error_headers() {
    let Some(bs) =
        support::bootstrap("poison_records_are_dead_lettered_with_their_bytes_and_error_headers")
    else {
        return;
    };
    let setup = processor::Setup::new(&bs, "poison", 4);
    let file = setup.generate("events.jsonl", 60, 5_150);
    let lines = processor::read_lines(&file);
    let cut = lines.len() * 4 / 5;
    let head = setup.slice(&file, 0, cut, "head.jsonl");
    let tail = setup.slice(&file, cut, lines.len(), "tail.jsonl");
    let expected = processor::expected(&setup, &file);
    // The victim: an application created in the head, so a folded poison event would change it.
    let created: Value = lines[..cut]
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("event"))
        .find(|e| e["kind"] == "application_created")
        .expect("an application_created in the head");
    let victim = created["candidate_id"].as_str().expect("candidate_id");
    let app = created["application_id"].as_str().expect("application_id");

    setup.produce(&head);
    let poison = produce_poison(
        &bs,
        &setup.topic("hiring.events.v1"),
        poison_records(victim, app),
    );
    setup.produce(&tail);

    // No snapshots: the restore below must fold the log from its start.
    let node = setup
        .instance("poison-1")
        .with_env("HIRESTATE_SNAPSHOT_EVERY_BATCHES", "1000000");
    let report = node.run_to_idle(&setup, 3.0, &[]);
    let mut counts = expected.counts.clone();
    counts["consumed"] = json!(expected.events + poison.len());
    counts["dlq"] = json!(poison.len());
    processor::assert_counts(&report, &counts);

    let dlq = read_raw(&bs, &setup.topic("hiring.dlq.v1"), setup.partitions);
    assert_eq!(
        dlq.len(),
        poison.len(),
        "one DLQ record per poison record, no more, no less"
    );
    let events_topic = setup.topic("hiring.events.v1");
    for p in &poison {
        let found: Vec<_> = dlq
            .iter()
            .filter(|(_, _, h)| h.get(POISON_HEADER).map(String::as_str) == Some(p.name))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{}: expected exactly one DLQ record carrying its original header",
            p.name
        );
        let (key, value, h) = found[0];
        assert_eq!(key, p.key.as_bytes(), "{}: DLQ key", p.name);
        assert_eq!(
            value, &p.value,
            "{}: DLQ value must be the original bytes",
            p.name
        );
        let header = |k: &str| {
            h.get(k)
                .cloned()
                .unwrap_or_else(|| panic!("{}: DLQ record lacks header {k}: {h:?}", p.name))
        };
        assert_eq!(header("__connect.errors.topic"), events_topic, "{}", p.name);
        assert_eq!(
            header("__connect.errors.partition"),
            p.partition.to_string(),
            "{}",
            p.name
        );
        assert_eq!(
            header("__connect.errors.offset"),
            p.offset.to_string(),
            "{}",
            p.name
        );
        for k in [
            "__connect.errors.stage",
            "__connect.errors.exception.class.name",
            "__connect.errors.exception.message",
        ] {
            assert!(
                !header(k).trim().is_empty(),
                "{}: header {k} is empty",
                p.name
            );
        }
        eprintln!(
            "{}: {}/{} → DLQ [{}] {}: {}",
            p.name,
            p.partition,
            p.offset,
            header("__connect.errors.stage"),
            header("__connect.errors.exception.class.name"),
            header("__connect.errors.exception.message")
        );
    }

    let (actual, raw) = setup.read_back(&setup.output_topics());
    processor::assert_outputs_equal(&expected.outputs, &actual);
    processor::assert_command_headers(&raw);
    let clean = processor::clean_states(&[&file]);
    processor::assert_states_equal(&node.state_dump(&setup), &clean);

    // A fresh state directory: the restore folds every partition from offset 0 and must skip
    // exactly what the live path dead-lettered.
    std::fs::remove_dir_all(&node.state_dir).expect("deleting the state directory");
    let again = node.run_to_idle(&setup, 2.0, &[]);
    assert_eq!(
        again["counts"]["consumed"], 0,
        "nothing new to consume: {again}"
    );
    let dump = node.state_dump(&setup);
    let victim_state = dump
        .iter()
        .find(|s| s["candidate_id"] == victim)
        .cloned()
        .unwrap_or_default();
    assert!(
        !processor::canonical(&victim_state).contains("poison-"),
        "BUG: the restore folded dead-lettered records into {victim}: seen_event_ids {}",
        victim_state["seen_event_ids"]
    );
    processor::assert_states_equal(&dump, &clean);
}
