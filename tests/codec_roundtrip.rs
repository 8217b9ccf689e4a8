//! Round trips of every record type in every framing (Confluent through a registry double),
//! framing detection of the encoded bytes, the single-object fingerprint checked against an
//! independent CRC-64-AVRO, and the shipped sample events in every framing.

#[path = "codec_fixtures.rs"]
mod fixtures;

use std::fmt::Debug;

use hirestate::codec::{detect, Codec, Framing, Record, CONFLUENT_MAGIC, SINGLE_OBJECT_MARKER};
use hirestate::model::Event;

use fixtures::RegistryDouble;

fn local_round_trip<R: Record + PartialEq + Debug>(codec: &Codec, records: &[R]) {
    for r in records {
        for framing in [Framing::SingleObject, Framing::Json] {
            let bytes = codec.encode_local(r, framing).expect("encode");
            assert_eq!(detect(&bytes), Ok(framing));
            let back: R = codec.decode_local(&bytes).expect("decode");
            assert_eq!(&back, r, "{framing}");
        }
    }
}

async fn confluent_round_trip<R: Record + PartialEq + Debug>(
    codec: &Codec,
    records: &[R],
    topic: &str,
) {
    for r in records {
        let bytes = codec
            .encode(r, Framing::Confluent, topic)
            .await
            .expect("encode");
        assert_eq!(bytes[0], CONFLUENT_MAGIC);
        assert_eq!(detect(&bytes), Ok(Framing::Confluent));
        let back: R = codec.decode(&bytes).await.expect("decode");
        assert_eq!(&back, r);
        // The async decode handles the local framings too.
        let so = codec
            .encode(r, Framing::SingleObject, topic)
            .await
            .expect("encode");
        assert_eq!(&codec.decode::<R>(&so).await.expect("decode"), r);
    }
}

#[test]
fn every_record_round_trips_in_single_object_and_json() {
    let codec = Codec::embedded().expect("codec");
    local_round_trip(&codec, &fixtures::events());
    local_round_trip(&codec, &fixtures::commands());
    local_round_trip(&codec, &fixtures::rejections());
    local_round_trip(&codec, &fixtures::alerts());
    local_round_trip(&codec, &fixtures::snapshots());
}

#[tokio::test]
async fn every_record_round_trips_in_confluent_framing() {
    let registry = RegistryDouble::start().await;
    let codec = Codec::embedded()
        .unwrap()
        .with_registry(&registry.url())
        .unwrap();
    confluent_round_trip(&codec, &fixtures::events(), "hiring.events.v1").await;
    confluent_round_trip(&codec, &fixtures::commands(), "ats.commands.greenhouse.v1").await;
    confluent_round_trip(&codec, &fixtures::rejections(), "hiring.rejections.v1").await;
    confluent_round_trip(&codec, &fixtures::alerts(), "hiring.alerts.v1").await;
    confluent_round_trip(&codec, &fixtures::snapshots(), "hiring.snapshots.v1").await;

    // TopicNameStrategy: exactly one subject per topic, `<topic>-value`.
    let requests = registry.server.received_requests().await.unwrap();
    let mut subjects: Vec<String> = requests
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| r.url.path().to_string())
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(
        subjects,
        vec![
            "/subjects/ats.commands.greenhouse.v1-value/versions",
            "/subjects/hiring.alerts.v1-value/versions",
            "/subjects/hiring.events.v1-value/versions",
            "/subjects/hiring.rejections.v1-value/versions",
            "/subjects/hiring.snapshots.v1-value/versions",
        ]
    );
}

#[test]
fn single_object_header_is_c3_01_and_the_crc64_avro_of_the_canonical_form() {
    let codec = Codec::embedded().unwrap();
    let e = &fixtures::events()[0];
    let bytes = codec.encode_local(e, Framing::SingleObject).unwrap();
    assert_eq!(bytes[..2], SINGLE_OBJECT_MARKER);
    let schema = apache_avro::Schema::parse_str(codec.schema_json("HiringEvent").unwrap()).unwrap();
    let expected = crc64_avro(schema.canonical_form().as_bytes()).to_le_bytes();
    assert_eq!(bytes[2..10], expected);
    assert_eq!(codec.fingerprint("HiringEvent"), Some(expected));
}

/// CRC-64-AVRO (Rabin) from the Avro specification, written independently of the codec.
fn crc64_avro(data: &[u8]) -> u64 {
    const EMPTY: u64 = 0xc15d_213a_a4d7_a795;
    let mut table = [0u64; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut fp = i as u64;
        for _ in 0..8 {
            fp = (fp >> 1) ^ (EMPTY & (0u64.wrapping_sub(fp & 1)));
        }
        *slot = fp;
    }
    let mut fp = EMPTY;
    for b in data {
        fp = (fp >> 8) ^ table[((fp ^ u64::from(*b)) & 0xff) as usize];
    }
    fp
}

#[test]
fn embedded_schemas_are_self_contained_documented_and_distinct() {
    let codec = Codec::embedded().unwrap();
    let mut fps = std::collections::BTreeSet::new();
    for name in hirestate::codec::TOP_LEVEL {
        let json = codec.schema_json(name).unwrap();
        // Self-contained: parses alone.
        apache_avro::Schema::parse_str(json).unwrap();
        fps.insert(codec.fingerprint(name).unwrap());
    }
    assert_eq!(fps.len(), hirestate::codec::TOP_LEVEL.len());
    // Every field of every .avsc file has a doc.
    for (file, src) in hirestate::codec::EMBEDDED_SOURCES {
        let v: serde_json::Value = serde_json::from_str(src).unwrap();
        assert!(v["doc"].is_string(), "{file} has no doc");
        for f in v["fields"].as_array().into_iter().flatten() {
            assert!(f["doc"].is_string(), "{file}.{} has no doc", f["name"]);
        }
    }
}

#[tokio::test]
async fn shipped_sample_events_decode_in_every_framing() {
    let registry = RegistryDouble::start().await;
    let codec = Codec::embedded()
        .unwrap()
        .with_registry(&registry.url())
        .unwrap();
    let expected = fixtures::sample_events();
    let mut n = 0;
    for (line, want) in fixtures::SAMPLES.lines().zip(&expected) {
        let from_line: Event = codec.decode_local(line.as_bytes()).expect(line);
        assert_eq!(&from_line, want);
        for framing in [Framing::SingleObject, Framing::Json, Framing::Confluent] {
            let bytes = codec
                .encode(want, framing, "hiring.events.v1")
                .await
                .unwrap();
            let back: Event = codec.decode(&bytes).await.unwrap();
            assert_eq!(&back, want, "{framing}: {line}");
        }
        n += 1;
    }
    assert_eq!(n, expected.len());
}
