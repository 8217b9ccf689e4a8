//! The direct readers against the schemas they were written for, and the primitives against
//! apache-avro's reading of the same bytes. Equivalence with the generic path over generated
//! and mutated events is in `tests/codec_direct.rs`.

use super::*;
use crate::codec::Codec;

#[test]
fn fingerprints_are_the_compiled_in_schemas() {
    let codec = Codec::embedded().expect("codec");
    assert_eq!(codec.fingerprint("HiringEvent"), Some(event::FINGERPRINT));
    assert_eq!(codec.fingerprint("Command"), Some(outbound::COMMAND));
    assert_eq!(codec.fingerprint("Rejection"), Some(outbound::REJECTION));
    assert_eq!(codec.fingerprint("Alert"), Some(outbound::ALERT));
    assert_eq!(codec.fingerprint("Snapshot"), Some(snapshot::FINGERPRINT));
}

/// The direct reader itself (not a fallback) reads what the codec writes, for every kind.
#[test]
fn the_direct_reader_reads_generated_events_itself() {
    let codec = Codec::embedded().expect("codec");
    let policy = crate::policy::load(&crate::policy::default_dir()).expect("policy");
    let spec = crate::generate::Spec {
        acks: true,
        ..Default::default()
    };
    let events = crate::generate::stream(&spec, &policy);
    let mut kinds = std::collections::HashSet::new();
    for e in &events {
        let bytes = codec
            .encode_local(e, crate::codec::Framing::SingleObject)
            .expect("encodes");
        assert_eq!(event::read(&bytes[10..]).as_ref(), Some(e));
        kinds.insert(std::mem::discriminant(&e.kind));
    }
    assert!(kinds.len() >= 5, "{} kinds", kinds.len());
}

#[test]
fn a_codec_reading_with_another_schema_resolves_instead() {
    let codec = Codec::embedded().expect("codec");
    let mut schema: serde_json::Value =
        serde_json::from_str(codec.schema_json("HiringEvent").expect("schema")).expect("json");
    schema["fields"]
        .as_array_mut()
        .expect("fields")
        .push(serde_json::json!({"name": "trace", "type": ["null", "string"], "default": null}));
    let other = codec
        .clone()
        .with_reader_schema(&schema.to_string())
        .expect("schema");
    assert_eq!(codec.direct_read.len(), 5);
    assert_eq!(other.direct_read.len(), 4);
    assert_eq!(other.direct_write.len(), 5, "what it writes is unchanged");
}

#[test]
fn varints_and_zigzag_read_as_apache_avro_reads_them() {
    let long = |bytes: &[u8]| Body::new(bytes).long();
    assert_eq!(long(&[0]), Some(0));
    assert_eq!(long(&[1]), Some(-1));
    assert_eq!(long(&[2]), Some(1));
    assert_eq!(long(&[0x80, 0x01]), Some(64));
    // Ten bytes: what does not fit 64 bits is dropped, as apache-avro does.
    let max = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
    assert_eq!(long(&max), Some(i64::MAX));
    assert_eq!(long(&[0xff; 10]), None, "eleven bytes");
    assert_eq!(long(&[0x80]), None, "cut");
    // A count is a non-negative `int`.
    assert_eq!(
        Body::new(&[0xfe, 0xff, 0xff, 0xff, 0x0f]).count(),
        Some(i32::MAX as u32)
    );
    assert_eq!(Body::new(&[0x80, 0x80, 0x80, 0x80, 0x10]).count(), None);
    assert_eq!(Body::new(&[1]).count(), None);
}

#[test]
fn strings_beyond_the_input_or_not_utf8_are_left_to_the_generic_path() {
    assert_eq!(Body::new(&[4, b'a', b'b']).string().as_deref(), Some("ab"));
    assert_eq!(Body::new(&[6, b'a', b'b']).string(), None);
    assert_eq!(Body::new(&[3, b'a']).string(), None, "negative length");
    assert_eq!(Body::new(&[2, 0xff]).string(), None);
}
