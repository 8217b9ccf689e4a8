//! Avro single-object encoding: `C3 01`, the writer schema's 8-byte little-endian CRC-64-AVRO
//! (Rabin) fingerprint of its parsing canonical form, then the Avro body. Writer schemas are
//! looked up by fingerprint among the compiled-in (and explicitly added) schemas: no registry,
//! no I/O.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::types::Value;

use super::framing::{single_object_fingerprint, SINGLE_OBJECT_HEADER_LEN};
use super::schemas::{ReaderSchema, WriterSchema};
use super::{CodecError, Framing};

/// Decodes a single-object payload (already detected as such) to a value of `reader`.
pub(crate) fn decode(
    bytes: &[u8],
    known: &HashMap<[u8; 8], Arc<WriterSchema>>,
    reader: &ReaderSchema,
) -> Result<Value, CodecError> {
    let fingerprint = single_object_fingerprint(bytes).ok_or(CodecError::TruncatedHeader {
        framing: Framing::SingleObject,
        got: bytes.len(),
        need: SINGLE_OBJECT_HEADER_LEN,
    })?;
    let writer = known
        .get(&fingerprint)
        .ok_or_else(|| CodecError::UnknownFingerprint {
            fingerprint: hex::encode(fingerprint),
        })?;
    writer.decode(&bytes[SINGLE_OBJECT_HEADER_LEN..], reader)
}

/// Encodes `value` under `writer` with the single-object header.
pub(crate) fn encode(value: &Value, writer: &WriterSchema) -> Result<Vec<u8>, CodecError> {
    let body = writer.encode(value)?;
    let mut out = Vec::with_capacity(SINGLE_OBJECT_HEADER_LEN + body.len());
    out.extend_from_slice(&writer.header);
    out.extend_from_slice(&body);
    Ok(out)
}
