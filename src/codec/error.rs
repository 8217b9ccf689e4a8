//! [`CodecError`]: every way bytes can fail to become a record (or a record fail to become
//! bytes), each variant naming what was wrong. Classification (retry or not) happens here, once:
//! see [`CodecError::retryable`].

use std::fmt;

use super::Framing;

/// Why a payload could not be decoded, or a record encoded.
///
/// Decode errors other than [`CodecError::RegistryUnavailable`] and
/// [`CodecError::RegistryDenied`] are properties of the bytes: retrying gives the same answer,
/// so the record belongs in the dead-letter topic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodecError {
    /// Zero bytes (or only whitespace): nothing to decode.
    #[error("empty payload")]
    Empty,

    /// The payload is larger than the codec's configured maximum; refused before decoding.
    #[error("payload of {len} bytes exceeds the limit of {max} bytes")]
    Oversize { len: usize, max: usize },

    /// The bytes start with none of the known framings (Confluent `0x00`, single-object
    /// `0xC3 0x01`, JSON `{`).
    #[error("unknown framing: byte 0x{byte:02x} at offset {offset} (expected 0x00 Confluent, 0xC3 0x01 Avro single-object, or '{{' JSON)")]
    UnknownMagic { byte: u8, offset: usize },

    /// The framing was recognised but its header is cut short.
    #[error("truncated {framing} header: {got} of {need} bytes")]
    TruncatedHeader {
        framing: Framing,
        got: usize,
        need: usize,
    },

    /// A single-object payload whose writer-schema fingerprint is none of the known schemas.
    #[error("unknown writer schema fingerprint {fingerprint} (CRC-64-AVRO, little-endian hex); not a compiled-in or registered schema")]
    UnknownFingerprint { fingerprint: String },

    /// A Confluent payload whose schema id the registry does not know.
    #[error("schema id {id} is unknown to the schema registry: {detail}")]
    UnknownSchemaId { id: u32, detail: String },

    /// The schema registry could not be reached or answered with a transient failure.
    /// Retryable: the payload itself may be fine.
    #[error("schema registry unavailable: {detail}")]
    RegistryUnavailable { detail: String },

    /// The schema registry refused hirestate's requests (401 or 403): missing or wrong
    /// credentials, or an account without the rights. A property of the configuration, not of
    /// any record: nothing decoded or encoded through that registry can succeed.
    #[error("the schema registry refused access (check its credentials and rights): {detail}")]
    RegistryDenied { detail: String },

    /// The schema registry answered with a permanent error (e.g. an incompatible schema).
    #[error("schema registry error: {detail}")]
    Registry { detail: String },

    /// Confluent framing was asked of a codec (or a method) without a schema registry:
    /// `schema_id` is the id of a payload being decoded, `None` when encoding.
    #[error("the Confluent wire format needs a schema registry (schema id {}), and none is available here: configure one and use the async decode/encode", schema_id.map_or("n/a".to_string(), |i| i.to_string()))]
    RegistryRequired { schema_id: Option<u32> },

    /// The writer schema is not the record type asked for, or cannot be resolved against the
    /// reader schema (an incompatible evolution).
    #[error("writer schema {writer} cannot be read as {reader}: {detail}")]
    SchemaMismatch {
        writer: String,
        reader: String,
        detail: String,
    },

    /// The Avro body does not decode under its writer schema.
    #[error("undecodable Avro body for {schema}: {problem}")]
    AvroBody {
        schema: String,
        problem: BodyProblem,
    },

    /// The decoded value does not fit the model (a field missing or of the wrong shape).
    #[error("{record}.{field}: {problem}")]
    Model {
        record: String,
        field: String,
        problem: String,
    },

    /// The JSON form is malformed or does not fit the model; `detail` is serde's message,
    /// which names the field and the line/column.
    #[error("JSON: {detail}")]
    Json { detail: String },

    /// A record could not be encoded (a value out of the schema's range, or a bug).
    #[error("encoding {schema}: {detail}")]
    Encode { schema: String, detail: String },

    /// A schema (compiled-in or supplied) failed to parse or resolve.
    #[error("schema {name}: {detail}")]
    Schema { name: String, detail: String },
}

impl CodecError {
    /// True when retrying the same operation later may succeed (the registry was unreachable);
    /// false when the bytes or the record themselves are at fault.
    pub fn retryable(&self) -> bool {
        matches!(self, CodecError::RegistryUnavailable { .. })
    }

    /// True when the error is the configuration's, not the record's: no record can be decoded
    /// while it lasts, so the processor stops rather than dead-letter every record it reads.
    pub fn is_configuration(&self) -> bool {
        matches!(self, CodecError::RegistryDenied { .. })
    }

    pub(crate) fn model(record: &str, field: &str, problem: impl Into<String>) -> Self {
        CodecError::Model {
            record: record.to_string(),
            field: field.to_string(),
            problem: problem.into(),
        }
    }
}

/// What exactly was wrong with an Avro body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyProblem {
    /// The body ended in the middle of a value.
    Truncated,
    /// A union branch index outside the union.
    UnionIndexOutOfRange { index: i64, variants: usize },
    /// A length or count prefix asks for more memory than the decoder's allocation limit.
    AllocationLimit { desired: Option<usize>, max: usize },
    /// The value decoded but bytes were left over.
    TrailingBytes { count: usize },
    /// Anything else apache-avro reported (bad varint, invalid UTF-8, bad enum index, ...).
    Invalid(String),
}

impl fmt::Display for BodyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyProblem::Truncated => f.write_str("truncated: the body ends inside a value"),
            BodyProblem::UnionIndexOutOfRange { index, variants } => write!(
                f,
                "union branch index {index} out of range (the union has {variants} branches)"
            ),
            BodyProblem::AllocationLimit { desired, max } => match desired {
                Some(d) => write!(
                    f,
                    "a length prefix asks for {d} bytes, above the {max}-byte allocation limit"
                ),
                None => write!(f, "a length prefix exceeds the {max}-byte allocation limit"),
            },
            BodyProblem::TrailingBytes { count } => {
                write!(f, "{count} bytes left over after the value")
            }
            BodyProblem::Invalid(s) => f.write_str(s),
        }
    }
}
