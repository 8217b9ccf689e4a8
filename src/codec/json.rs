//! The JSON form: one record is one JSON object, the serde form of the model type. Used by
//! `hirestate replay --from-file`, tests, and sources that cannot produce Avro.

use super::{CodecError, Record};

/// Decodes one JSON object.
///
/// # Errors
/// [`CodecError::Json`] with serde's message, which names the offending field and position.
pub fn decode<R: Record>(bytes: &[u8]) -> Result<R, CodecError> {
    serde_json::from_slice(bytes).map_err(|e| CodecError::Json {
        detail: e.to_string(),
    })
}

/// Encodes one record as a compact JSON object (no trailing newline).
///
/// # Errors
/// [`CodecError::Json`] if serde refuses the value (e.g. a non-finite number).
pub fn encode<R: Record>(record: &R) -> Result<Vec<u8>, CodecError> {
    serde_json::to_vec(record).map_err(|e| CodecError::Json {
        detail: e.to_string(),
    })
}
