//! Schema evolution with writer/reader pairs: a v2 schema adding an optional field with a
//! default, written by a newer producer and read by our v1 reader (single-object and Confluent),
//! and v1 data read by a v2 reader; an incompatible v2 (required field, no default) is refused
//! with a schema mismatch. Union branches must resolve by name, not by shape.

#[path = "codec_fixtures.rs"]
mod fixtures;

use apache_avro::headers::{HeaderBuilder, RabinFingerprintHeader};
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use hirestate::codec::{Codec, CodecError, Framing, Record};
use hirestate::model::{Command, Event};

use fixtures::RegistryDouble;

/// Our v1 schema of `name` plus one more field.
fn v2_schema(codec: &Codec, name: &str, field: serde_json::Value) -> String {
    let mut v: serde_json::Value = serde_json::from_str(codec.schema_json(name).unwrap()).unwrap();
    v["fields"].as_array_mut().unwrap().push(field);
    v.to_string()
}

fn trace_field() -> serde_json::Value {
    serde_json::json!({"name": "trace_id", "type": ["null", "string"], "default": null,
                       "doc": "v2: the producer's trace id"})
}

/// The v2 value of a v1 record: the v1 fields plus `trace_id`.
fn v2_value<R: Record>(r: &R) -> Value {
    match r.to_avro().unwrap() {
        Value::Record(mut fields) => {
            fields.push((
                "trace_id".to_string(),
                Value::Union(1, Box::new(Value::String("t-1".into()))),
            ));
            Value::Record(fields)
        }
        other => panic!("not a record: {other:?}"),
    }
}

fn body(schema: &Schema, value: Value) -> Vec<u8> {
    GenericDatumWriter::builder(schema)
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .unwrap()
}

#[test]
fn v2_single_object_data_is_read_by_the_v1_reader() {
    let codec = Codec::embedded().unwrap();
    let v2_json = v2_schema(&codec, "Command", trace_field());
    let v2 = Schema::parse_str(&v2_json).unwrap();
    // Unknown until the v2 schema is made known.
    let c = &fixtures::commands()[0];
    let mut bytes = RabinFingerprintHeader::from_schema(&v2).build_header();
    bytes.extend(body(&v2, v2_value(c)));
    assert!(matches!(
        codec.decode_local::<Command>(&bytes),
        Err(CodecError::UnknownFingerprint { .. })
    ));

    let codec = codec.with_writer_schema(&v2_json).unwrap();
    for c in fixtures::commands() {
        let mut bytes = RabinFingerprintHeader::from_schema(&v2).build_header();
        bytes.extend(body(&v2, v2_value(&c)));
        // Every op, including CreatePreHire, which structurally also fits UpdateFields.
        assert_eq!(codec.decode_local::<Command>(&bytes).unwrap(), c);
    }
}

#[test]
fn v1_data_is_read_by_a_v2_reader_with_the_default() {
    let codec = Codec::embedded().unwrap();
    let v2_json = v2_schema(&codec, "HiringEvent", trace_field());
    let v2_reader = codec.clone().with_reader_schema(&v2_json).unwrap();
    for e in fixtures::events() {
        let v1_bytes = codec.encode_local(&e, Framing::SingleObject).unwrap();
        assert_eq!(v2_reader.decode_local::<Event>(&v1_bytes).unwrap(), e);
    }
    let v2_cmd = v2_schema(&codec, "Command", trace_field());
    let v2_reader = codec.clone().with_reader_schema(&v2_cmd).unwrap();
    for c in fixtures::commands() {
        let v1_bytes = codec.encode_local(&c, Framing::SingleObject).unwrap();
        assert_eq!(v2_reader.decode_local::<Command>(&v1_bytes).unwrap(), c);
    }
}

#[test]
fn an_incompatible_reader_is_a_schema_mismatch_naming_the_field() {
    let codec = Codec::embedded().unwrap();
    let required = serde_json::json!({"name": "tenant", "type": "string", "doc": "no default"});
    let v2_reader = codec
        .clone()
        .with_reader_schema(&v2_schema(&codec, "HiringEvent", required))
        .unwrap();
    let bytes = codec
        .encode_local(&fixtures::events()[0], Framing::SingleObject)
        .unwrap();
    match v2_reader.decode_local::<Event>(&bytes) {
        Err(CodecError::SchemaMismatch { detail, .. }) => {
            assert!(detail.contains("tenant"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_different_record_type_is_a_schema_mismatch() {
    let codec = Codec::embedded().unwrap();
    let bytes = codec
        .encode_local(&fixtures::commands()[0], Framing::SingleObject)
        .unwrap();
    match codec.decode_local::<Event>(&bytes) {
        Err(CodecError::SchemaMismatch { writer, reader, .. }) => {
            assert_eq!(writer, "dev.hirestate.v1.Command");
            assert_eq!(reader, "dev.hirestate.v1.HiringEvent");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn v2_confluent_data_from_the_registry_is_read_by_the_v1_reader() {
    let registry = RegistryDouble::start().await;
    let codec = Codec::embedded()
        .unwrap()
        .with_registry(&registry.url())
        .unwrap();
    let v2_json = v2_schema(&codec, "HiringEvent", trace_field());
    let v2 = Schema::parse_str(&v2_json).unwrap();
    let id = registry.register(&v2_json);
    for e in fixtures::events() {
        let mut bytes = vec![0u8];
        bytes.extend(id.to_be_bytes());
        bytes.extend(body(&v2, v2_value(&e)));
        assert_eq!(codec.decode::<Event>(&bytes).await.unwrap(), e);
    }
}
