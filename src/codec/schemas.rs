//! The Avro contracts compiled into the binary (`schemas/avro/*.avsc`, one named type a file)
//! and the per-schema machinery built from them once: self-contained writer schemas with their
//! CRC-64-AVRO fingerprints, prebuilt datum readers, resolved reader schemas. Also the one place
//! Avro bodies are decoded and encoded, so every framing bounds and classifies errors the same.
//!
//! Invariant: every [`WriterSchema`] and [`ReaderSchema`] is self-contained (denormalised), so
//! its canonical form, fingerprint and registry registration do not depend on other files.

use std::error::Error as _;
use std::io::ErrorKind;

use apache_avro::error::Details;
use apache_avro::headers::{HeaderBuilder, RabinFingerprintHeader};
use apache_avro::reader::single_object::GenericSingleObjectReader;
use apache_avro::schema::ResolvedSchema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;

use super::resolve::{resolve, Names};
use super::{BodyProblem, CodecError};

/// The Avro namespace of every hirestate contract.
pub const NAMESPACE: &str = "dev.hirestate.v1";

/// Every compiled-in `.avsc` file: (file stem, source). Named types referenced across files are
/// resolved by parsing them together.
pub const EMBEDDED_SOURCES: &[(&str, &str)] = &[
    (
        "SourceSystem",
        include_str!("../../schemas/avro/SourceSystem.avsc"),
    ),
    (
        "AckStatus",
        include_str!("../../schemas/avro/AckStatus.avsc"),
    ),
    (
        "RejectReason",
        include_str!("../../schemas/avro/RejectReason.avsc"),
    ),
    (
        "AlertKind",
        include_str!("../../schemas/avro/AlertKind.avsc"),
    ),
    (
        "CommandOp",
        include_str!("../../schemas/avro/CommandOp.avsc"),
    ),
    (
        "TargetSystem",
        include_str!("../../schemas/avro/TargetSystem.avsc"),
    ),
    (
        "CommandStatus",
        include_str!("../../schemas/avro/CommandStatus.avsc"),
    ),
    (
        "ApplicationCreated",
        include_str!("../../schemas/avro/ApplicationCreated.avsc"),
    ),
    (
        "StageChanged",
        include_str!("../../schemas/avro/StageChanged.avsc"),
    ),
    (
        "ScreeningCompleted",
        include_str!("../../schemas/avro/ScreeningCompleted.avsc"),
    ),
    (
        "FieldsAsserted",
        include_str!("../../schemas/avro/FieldsAsserted.avsc"),
    ),
    (
        "WritebackAcked",
        include_str!("../../schemas/avro/WritebackAcked.avsc"),
    ),
    (
        "ErasureRequested",
        include_str!("../../schemas/avro/ErasureRequested.avsc"),
    ),
    (
        "TimerKind",
        include_str!("../../schemas/avro/TimerKind.avsc"),
    ),
    (
        "DeadlineReached",
        include_str!("../../schemas/avro/DeadlineReached.avsc"),
    ),
    (
        "HiringEvent",
        include_str!("../../schemas/avro/HiringEvent.avsc"),
    ),
    (
        "MoveStage",
        include_str!("../../schemas/avro/MoveStage.avsc"),
    ),
    (
        "UpdateFields",
        include_str!("../../schemas/avro/UpdateFields.avsc"),
    ),
    (
        "CreatePreHire",
        include_str!("../../schemas/avro/CreatePreHire.avsc"),
    ),
    ("Command", include_str!("../../schemas/avro/Command.avsc")),
    (
        "Rejection",
        include_str!("../../schemas/avro/Rejection.avsc"),
    ),
    ("Alert", include_str!("../../schemas/avro/Alert.avsc")),
    (
        "Application",
        include_str!("../../schemas/avro/Application.avsc"),
    ),
    (
        "CommandRecord",
        include_str!("../../schemas/avro/CommandRecord.avsc"),
    ),
    ("Snapshot", include_str!("../../schemas/avro/Snapshot.avsc")),
];

/// The top-level records that travel on topics (the others are parts of these).
pub const TOP_LEVEL: &[&str] = &["HiringEvent", "Command", "Rejection", "Alert", "Snapshot"];

/// The full name `dev.hirestate.v1.<name>`.
pub fn full_name(name: &str) -> String {
    format!("{NAMESPACE}.{name}")
}

/// A schema data may have been written with: a compiled-in one, one supplied for evolution, or
/// one fetched from a registry.
pub(crate) struct WriterSchema {
    /// `namespace.name` of the top-level record.
    pub full_name: String,
    /// The self-contained schema (with docs and defaults).
    pub schema: Schema,
    /// The self-contained schema as JSON (what is registered with a registry).
    pub json: String,
    /// The 10-byte single-object header: `C3 01` + CRC-64-AVRO of the canonical form.
    pub header: [u8; 10],
    names: Names,
    /// A datum reader built once. apache-avro's `GenericSingleObjectReader` is its only reader
    /// that owns its resolved schema (`GenericDatumReader` borrows); given an empty expected
    /// header it decodes a bare body, which is how it is used here.
    reader: GenericSingleObjectReader,
}

impl WriterSchema {
    /// Builds the writer side of a self-contained schema.
    pub fn new(schema: Schema) -> Result<Self, CodecError> {
        let full_name = schema
            .name()
            .map(|n| n.fullname(None))
            .unwrap_or_else(|| "<unnamed>".to_string());
        let json = serde_json::to_string(&schema).map_err(|e| CodecError::Schema {
            name: full_name.clone(),
            detail: e.to_string(),
        })?;
        let built = RabinFingerprintHeader::from_schema(&schema).build_header();
        let header: [u8; 10] = built.try_into().map_err(|_| CodecError::Schema {
            name: full_name.clone(),
            detail: "single-object header is not 10 bytes".to_string(),
        })?;
        let names = names_of(&schema, &full_name)?;
        let reader = GenericSingleObjectReader::builder()
            .schema(schema.clone())
            .header(Vec::new())
            .build()
            .map_err(|e| schema_error(&full_name, &e))?;
        Ok(WriterSchema {
            full_name,
            schema,
            json,
            header,
            names,
            reader,
        })
    }

    /// The 8 fingerprint bytes, as they appear in the single-object header.
    pub fn fingerprint(&self) -> [u8; 8] {
        let mut f = [0u8; 8];
        f.copy_from_slice(&self.header[2..]);
        f
    }

    /// Decodes a bare Avro body written with this schema, then resolves it against `reader`.
    ///
    /// Refuses a body with bytes left over: a valid record never has any, and accepting them
    /// would let a corrupted record pass as a shorter one.
    pub fn decode(&self, body: &[u8], reader: &ReaderSchema) -> Result<Value, CodecError> {
        if self.full_name != reader.full_name {
            return Err(CodecError::SchemaMismatch {
                writer: self.full_name.clone(),
                reader: reader.full_name.clone(),
                detail: "a different record type".to_string(),
            });
        }
        let mut input = EofGuard {
            rest: body,
            hit_eof: false,
        };
        let decoded = self.reader.read_value(&mut input);
        let problem = if input.hit_eof {
            // apache-avro turns EOF at a union index into `null` and at a boolean into `Null`
            // instead of failing; a valid body never reads past its end, so any EOF is a cut.
            Some(BodyProblem::Truncated)
        } else if let Err(e) = &decoded {
            Some(classify(e))
        } else if !input.rest.is_empty() {
            Some(BodyProblem::TrailingBytes {
                count: input.rest.len(),
            })
        } else {
            None
        };
        let value = match (problem, decoded) {
            (None, Ok(value)) => value,
            (Some(problem), _) => {
                return Err(CodecError::AvroBody {
                    schema: self.full_name.clone(),
                    problem,
                })
            }
            (None, Err(e)) => {
                return Err(CodecError::AvroBody {
                    schema: self.full_name.clone(),
                    problem: classify(&e),
                })
            }
        };
        if self.header == reader.header {
            // Same canonical form: the value already has the reader's shape.
            return Ok(value);
        }
        resolve(
            value,
            &self.schema,
            &self.names,
            &reader.schema,
            &reader.names,
        )
        .map_err(|detail| CodecError::SchemaMismatch {
            writer: self.full_name.clone(),
            reader: reader.full_name.clone(),
            detail,
        })
    }

    /// Encodes `value` as a bare Avro body under this schema (validated first).
    pub fn encode(&self, value: &Value) -> Result<Vec<u8>, CodecError> {
        let encode_error = |e: apache_avro::Error| CodecError::Encode {
            schema: self.full_name.clone(),
            detail: e.to_string(),
        };
        let writer = GenericDatumWriter::builder(&self.schema)
            .build()
            .map_err(encode_error)?;
        let mut out = Vec::with_capacity(256);
        writer
            .write_value_ref(&mut out, value)
            .map_err(encode_error)?;
        Ok(out)
    }
}

/// The schema a record type is read as (the model's view). Data written with any compatible
/// writer schema is resolved to it.
pub(crate) struct ReaderSchema {
    pub full_name: String,
    schema: Schema,
    /// The named types inside `schema`, owned (apache-avro's own owned variant is private).
    names: Names,
    /// The single-object header of `schema`: equal headers mean no resolution is needed.
    pub header: [u8; 10],
}

impl ReaderSchema {
    /// Builds the reader side of a self-contained schema.
    pub fn new(schema: Schema) -> Result<Self, CodecError> {
        let full_name = schema
            .name()
            .map(|n| n.fullname(None))
            .unwrap_or_else(|| "<unnamed>".to_string());
        let names = names_of(&schema, &full_name)?;
        let header = WriterSchema::new(schema.clone())?.header;
        Ok(ReaderSchema {
            full_name,
            schema,
            names,
            header,
        })
    }
}

/// Parses the compiled-in sources and returns the self-contained schema of each top-level
/// record, in [`TOP_LEVEL`] order.
pub(crate) fn embedded_top_level() -> Result<Vec<Schema>, CodecError> {
    let all = Schema::parse_list(EMBEDDED_SOURCES.iter().map(|(_, src)| *src)).map_err(|e| {
        CodecError::Schema {
            name: "schemas/avro".to_string(),
            detail: e.to_string(),
        }
    })?;
    TOP_LEVEL
        .iter()
        .map(|name| {
            let fullname = full_name(name);
            let mut schema = all
                .iter()
                .find(|s| s.name().map(|n| n.fullname(None)) == Some(fullname.clone()))
                .cloned()
                .ok_or_else(|| CodecError::Schema {
                    name: fullname.clone(),
                    detail: "not among the compiled-in schemas".to_string(),
                })?;
            schema
                .denormalize(&all)
                .map_err(|e| schema_error(&fullname, &e))?;
            Ok(schema)
        })
        .collect()
}

/// Parses a self-contained schema supplied at run time (tests, older versions).
pub(crate) fn parse_supplied(json: &str) -> Result<Schema, CodecError> {
    Schema::parse_str(json).map_err(|e| CodecError::Schema {
        name: "<supplied>".to_string(),
        detail: e.to_string(),
    })
}

/// The named types inside `schema`, owned.
fn names_of(schema: &Schema, full_name: &str) -> Result<Names, CodecError> {
    Ok(ResolvedSchema::try_from(schema)
        .map_err(|e| schema_error(full_name, &e))?
        .get_names()
        .iter()
        .map(|(n, s)| (n.clone(), (*s).clone()))
        .collect())
}

fn schema_error(name: &str, e: &apache_avro::Error) -> CodecError {
    CodecError::Schema {
        name: name.to_string(),
        detail: e.to_string(),
    }
}

/// A byte-slice reader that remembers whether anyone tried to read past its end.
struct EofGuard<'a> {
    rest: &'a [u8],
    hit_eof: bool,
}

impl std::io::Read for EofGuard<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !buf.is_empty() && self.rest.is_empty() {
            self.hit_eof = true;
        }
        self.rest.read(buf)
    }
}

/// Sorts an apache-avro decode error into the problems callers act on.
fn classify(e: &apache_avro::Error) -> BodyProblem {
    match e.details() {
        Details::GetUnionVariant {
            index,
            num_variants,
        } => BodyProblem::UnionIndexOutOfRange {
            index: *index,
            variants: *num_variants,
        },
        Details::MemoryAllocation { desired, maximum } => BodyProblem::AllocationLimit {
            desired: *desired,
            max: *maximum,
        },
        _ if is_eof(e) => BodyProblem::Truncated,
        _ => BodyProblem::Invalid(e.to_string()),
    }
}

fn is_eof(e: &apache_avro::Error) -> bool {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io.kind() == ErrorKind::UnexpectedEof;
        }
        source = s.source();
    }
    false
}
