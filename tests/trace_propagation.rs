//! W3C trace context through the live processor, on the real broker: events are produced with
//! rdkafka directly, each with one of five kinds of trace headers — none, a valid sampled
//! `traceparent`, a valid unsampled one with a `tracestate`, an uppercase (invalid) one, an
//! all-zero trace id (invalid) — plus two undecodable records, one with a valid `traceparent`.
//! Every command, rejection, alert and DLQ record read back must carry exactly one valid
//! `traceparent` whose trace id is the inbound one (or, for an event without a valid one, the
//! id derived from its event id as the trace context module documents: the first 16 bytes of
//! SHA-256 over `"hirestate.trace" 0x1f event_id`, recomputed here), a span id of its own, the
//! inbound sampled flag, and the inbound `tracestate`.

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use sha2::{Digest, Sha256};

const PARTITIONS: i32 = 3;

/// The trace headers one input record is produced with, and what its outputs must carry.
#[derive(Debug, Clone)]
struct Inbound {
    class: &'static str,
    traceparent: Option<String>,
    tracestate: Option<String>,
    /// The trace id the outputs must carry.
    expect_trace: String,
    /// The span the outputs must not reuse (the sender's).
    sender_span: Option<String>,
    expect_flags: &'static str,
}

fn derived_trace(event_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"hirestate.trace");
    h.update([0x1f]);
    h.update(event_id.as_bytes());
    hex::encode(&h.finalize()[..16])
}

fn inbound_for(i: usize, event_id: &str) -> Inbound {
    let trace = format!("{:032x}", 0x7e57_0000_0000_u64 + i as u64);
    let span = format!("{:016x}", 0xabc0_u64 + i as u64);
    let fresh = |class, traceparent: Option<String>| Inbound {
        class,
        traceparent,
        tracestate: None,
        expect_trace: derived_trace(event_id),
        sender_span: None,
        expect_flags: "01",
    };
    match i % 5 {
        0 => fresh("none", None),
        1 => Inbound {
            class: "sampled",
            traceparent: Some(format!("00-{trace}-{span}-01")),
            tracestate: None,
            expect_trace: trace.clone(),
            sender_span: Some(span),
            expect_flags: "01",
        },
        2 => Inbound {
            class: "unsampled+tracestate",
            traceparent: Some(format!("00-{trace}-{span}-00")),
            tracestate: Some(format!("vendor=t{i},other=x")),
            expect_trace: trace.clone(),
            sender_span: Some(span),
            expect_flags: "00",
        },
        3 => fresh(
            "uppercase",
            Some(format!("00-{}-{span}-01", trace.to_uppercase())),
        ),
        _ => fresh(
            "zero-trace",
            Some(format!("00-{}-{span}-01", "0".repeat(32))),
        ),
    }
}

fn headers_of(inb: &Inbound) -> OwnedHeaders {
    let mut h = OwnedHeaders::new().insert(Header {
        key: "x-test",
        value: Some(inb.class),
    });
    if let Some(tp) = &inb.traceparent {
        h = h.insert(Header {
            key: "traceparent",
            value: Some(tp.as_str()),
        });
    }
    if let Some(ts) = &inb.tracestate {
        h = h.insert(Header {
            key: "tracestate",
            value: Some(ts.as_str()),
        });
    }
    h
}

/// A record read back: where it is, its decoded value (filled in from `tail`), its headers in
/// order.
struct Raw {
    topic: String,
    partition: i32,
    offset: i64,
    value: Value,
    headers: Vec<(String, String)>,
}

/// Every committed record of `topic`, with every header (repeated keys kept).
fn read_raw(bootstrap: &str, topic: &str) -> Vec<Raw> {
    support::read_raw(bootstrap, topic, PARTITIONS)
        .into_iter()
        .map(|r| Raw {
            topic: topic.to_owned(),
            partition: r.partition,
            offset: r.offset,
            value: Value::Null,
            headers: r.headers,
        })
        .collect()
}

/// The one `traceparent` of `r`, split into (trace id, span id, flags); panics unless there is
/// exactly one and it is well-formed, lowercase, version 00, with non-zero ids.
fn traceparent(r: &Raw, what: &str) -> (String, String, String) {
    let tps: Vec<&String> = r
        .headers
        .iter()
        .filter(|(k, _)| k == "traceparent")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        tps.len(),
        1,
        "{what}: exactly one traceparent: {:?}",
        r.headers
    );
    let parts: Vec<&str> = tps[0].split('-').collect();
    assert_eq!(parts.len(), 4, "{what}: {}", tps[0]);
    let lower_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    assert_eq!(parts[0], "00", "{what}: version");
    assert!(lower_hex(parts[1], 32), "{what}: trace id {}", parts[1]);
    assert!(lower_hex(parts[2], 16), "{what}: span id {}", parts[2]);
    assert!(lower_hex(parts[3], 2), "{what}: flags {}", parts[3]);
    assert_ne!(parts[1], "0".repeat(32), "{what}: zero trace id");
    assert_ne!(parts[2], "0".repeat(16), "{what}: zero span id");
    (
        parts[1].to_owned(),
        parts[2].to_owned(),
        parts[3].to_owned(),
    )
}

fn header<'a>(r: &'a Raw, key: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn every_output_carries_the_inbound_trace() {
    let Some(bs) = support::bootstrap("every_output_carries_the_inbound_trace") else {
        return;
    };
    let setup = processor::Setup::new(&bs, "trace", PARTITIONS);
    let file = setup.generate("events.jsonl", 40, 4_242);
    let lines = processor::read_lines(&file);
    let events_topic = setup.topic("hiring.events.v1");

    // Produce every event in its JSON form with its trace headers, then two undecodable records.
    let mut inbound: BTreeMap<String, Inbound> = BTreeMap::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .set("enable.idempotence", "true")
        // Where the processor's default `events_partitioner` (murmur2) expects each key.
        .set("partitioner", "murmur2_random")
        .create()
        .expect("producer");
    for (i, line) in lines.iter().enumerate() {
        let e: Value = serde_json::from_str(line).expect("an event line");
        let id = e["event_id"].as_str().expect("event_id").to_owned();
        let key = e["candidate_id"].as_str().expect("candidate_id").to_owned();
        let inb = inbound_for(i, &id);
        let record = FutureRecord::to(&events_topic)
            .key(&key)
            .payload(line.as_bytes())
            .headers(headers_of(&inb));
        rt.block_on(producer.send(record, Duration::from_secs(30)))
            .unwrap_or_else(|(e, _)| panic!("producing {id}: {e}"));
        // A duplicated event (same id, later in its partition) emits nothing: its outputs are
        // the first copy's.
        inbound.entry(id).or_insert(inb);
    }
    let poison_trace = "0af7651916cd43dd8448eb211c80319c";
    let poison_span = "b7ad6b7169203331";
    for (name, tp) in [
        (
            "traced",
            Some(format!("00-{poison_trace}-{poison_span}-01")),
        ),
        ("untraced", None),
    ] {
        let mut h = OwnedHeaders::new().insert(Header {
            key: "x-test-poison",
            value: Some(name),
        });
        if let Some(tp) = &tp {
            h = h.insert(Header {
                key: "traceparent",
                value: Some(tp.as_str()),
            });
        }
        let record = FutureRecord::to(&events_topic)
            .key("cand-000001")
            .payload(b"\xC3\x01 not an event".as_slice())
            .headers(h);
        rt.block_on(producer.send(record, Duration::from_secs(30)))
            .unwrap_or_else(|(e, _)| panic!("producing poison {name}: {e}"));
    }

    let report = setup.instance("a").run_to_idle(&setup, 3.0, &[]);
    assert_eq!(
        report["counts"]["consumed"].as_u64(),
        Some(lines.len() as u64 + 2),
        "every record folded once: {report}"
    );
    assert_eq!(report["counts"]["dlq"].as_u64(), Some(2), "{report}");

    // Values, from `tail` (decoded), and headers, read raw; both in (partition, offset) order.
    let (_, decoded) = setup.read_back(&setup.output_topics());
    let mut checked: BTreeMap<(String, &'static str), usize> = BTreeMap::new();
    let mut spans = BTreeSet::new();
    for topic in setup.output_topics() {
        let mut raw = read_raw(&bs, &topic);
        let values = &decoded[&topic];
        assert_eq!(raw.len(), values.len(), "{topic}: tail and raw read agree");
        for r in &mut raw {
            r.value = values
                .iter()
                .find(|v| {
                    v["partition"].as_i64() == Some(i64::from(r.partition))
                        && v["offset"].as_i64() == Some(r.offset)
                })
                .map(|v| v["value"].clone())
                .unwrap_or_else(|| {
                    panic!("{topic}: no decoded record at {}/{}", r.partition, r.offset)
                });
        }
        for r in &raw {
            let event_id = if topic.contains(".commands.") {
                r.value["causing_event_id"].as_str()
            } else {
                r.value["event_id"].as_str()
            }
            .expect("the value names its event")
            .to_owned();
            let inb = &inbound[&event_id];
            let what = format!("{}: output of {event_id} ({})", r.topic, inb.class);
            let (trace, span, flags) = traceparent(r, &what);
            assert_eq!(trace, inb.expect_trace, "{what}: trace id");
            assert_eq!(flags, inb.expect_flags, "{what}: flags");
            assert_ne!(Some(&span), inb.sender_span.as_ref(), "{what}: own span id");
            assert!(spans.insert(span.clone()), "{what}: span id {span} reused");
            assert_eq!(
                header(r, "tracestate"),
                inb.tracestate.as_deref(),
                "{what}: tracestate"
            );
            let family = if topic.contains(".commands.") {
                "commands"
            } else if topic.ends_with("rejections.v1") {
                "rejections"
            } else {
                "alerts"
            };
            *checked.entry((family.to_owned(), inb.class)).or_default() += 1;
        }
    }
    eprintln!("outputs checked by family and inbound class: {checked:?}");
    for class in [
        "none",
        "sampled",
        "unsampled+tracestate",
        "uppercase",
        "zero-trace",
    ] {
        assert!(
            checked
                .get(&("commands".to_owned(), class))
                .copied()
                .unwrap_or(0)
                > 0,
            "no command of an event of class {class} was checked: {checked:?}"
        );
    }
    let rejections: usize = checked
        .iter()
        .filter(|((f, _), _)| f == "rejections")
        .map(|(_, n)| n)
        .sum();
    assert!(rejections > 0, "no rejection was checked: {checked:?}");
    let traced_rejections: usize = checked
        .iter()
        .filter(|((f, c), _)| f == "rejections" && c.contains("sampled"))
        .map(|(_, n)| n)
        .sum();
    assert!(
        traced_rejections > 0,
        "no rejection of a traced event was checked: {checked:?}"
    );

    // DLQ: the original trace headers are replaced, not duplicated; a traced record keeps its
    // trace, an untraced one gets a trace of its own.
    let dlq = read_raw(&bs, &setup.topic("hiring.dlq.v1"));
    assert_eq!(dlq.len(), 2, "two records dead-lettered");
    for r in &dlq {
        let name = header(r, "x-test-poison").expect("original headers are kept");
        let (trace, span, _) = traceparent(r, &format!("dlq record {name}"));
        if name == "traced" {
            assert_eq!(trace, poison_trace, "dlq: the inbound trace");
            assert_ne!(span, poison_span, "dlq: hirestate's own span");
        } else {
            assert_ne!(trace, poison_trace);
        }
    }
}
