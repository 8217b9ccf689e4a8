//! Framing detection: which of the three wire forms a payload is in, decided from its first
//! bytes alone, and the header constants of each. Detection also checks the header is complete,
//! so every later stage can slice it without bounds worries.

use std::fmt;

use super::CodecError;

/// Confluent wire format: magic byte, then the 4-byte big-endian schema id.
pub const CONFLUENT_MAGIC: u8 = 0x00;
/// Length of the Confluent header (magic + schema id).
pub const CONFLUENT_HEADER_LEN: usize = 5;
/// Avro single-object encoding marker (spec: `C3 01`).
pub const SINGLE_OBJECT_MARKER: [u8; 2] = [0xC3, 0x01];
/// Length of the single-object header (marker + 8-byte CRC-64-AVRO fingerprint).
pub const SINGLE_OBJECT_HEADER_LEN: usize = 10;

/// The three wire forms a record can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// `0x00` + 4-byte big-endian schema id + Avro body; writer schema from a schema registry.
    Confluent,
    /// `0xC3 0x01` + 8-byte little-endian CRC-64-AVRO fingerprint + Avro body; writer schema
    /// from the compiled-in `schemas/avro/` files (no registry).
    SingleObject,
    /// The documented JSON form (first non-whitespace byte `{`).
    Json,
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Framing::Confluent => "Confluent",
            Framing::SingleObject => "Avro single-object",
            Framing::Json => "JSON",
        })
    }
}

/// Decides the framing of `bytes` from its first bytes and checks its header is complete.
///
/// # Errors
/// [`CodecError::Empty`] for no bytes (or only whitespace), [`CodecError::UnknownMagic`] naming
/// the first byte that fits no framing, [`CodecError::TruncatedHeader`] when a Confluent or
/// single-object header is cut short.
pub fn detect(bytes: &[u8]) -> Result<Framing, CodecError> {
    let Some(&first) = bytes.first() else {
        return Err(CodecError::Empty);
    };
    match first {
        CONFLUENT_MAGIC => {
            need(bytes, Framing::Confluent, CONFLUENT_HEADER_LEN)?;
            Ok(Framing::Confluent)
        }
        0xC3 => {
            need(bytes, Framing::SingleObject, SINGLE_OBJECT_MARKER.len())?;
            if bytes[1] != SINGLE_OBJECT_MARKER[1] {
                return Err(CodecError::UnknownMagic {
                    byte: bytes[1],
                    offset: 1,
                });
            }
            need(bytes, Framing::SingleObject, SINGLE_OBJECT_HEADER_LEN)?;
            Ok(Framing::SingleObject)
        }
        _ => match bytes.iter().position(|b| !b.is_ascii_whitespace()) {
            None => Err(CodecError::Empty),
            Some(i) if bytes[i] == b'{' => Ok(Framing::Json),
            Some(i) => Err(CodecError::UnknownMagic {
                byte: bytes[i],
                offset: i,
            }),
        },
    }
}

fn need(bytes: &[u8], framing: Framing, n: usize) -> Result<(), CodecError> {
    if bytes.len() < n {
        Err(CodecError::TruncatedHeader {
            framing,
            got: bytes.len(),
            need: n,
        })
    } else {
        Ok(())
    }
}

/// The schema id of a Confluent payload (`bytes` already passed [`detect`]).
pub(crate) fn confluent_id(bytes: &[u8]) -> Option<u32> {
    let id: [u8; 4] = bytes.get(1..CONFLUENT_HEADER_LEN)?.try_into().ok()?;
    Some(u32::from_be_bytes(id))
}

/// The fingerprint bytes of a single-object payload (`bytes` already passed [`detect`]).
pub(crate) fn single_object_fingerprint(bytes: &[u8]) -> Option<[u8; 8]> {
    bytes
        .get(SINGLE_OBJECT_MARKER.len()..SINGLE_OBJECT_HEADER_LEN)?
        .try_into()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_framing_and_each_header_problem() {
        assert_eq!(detect(&[0, 0, 0, 0, 7]), Ok(Framing::Confluent));
        assert_eq!(
            detect(&[0xC3, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            Ok(Framing::SingleObject)
        );
        assert_eq!(detect(b" \n{\"a\":1}"), Ok(Framing::Json));
        assert_eq!(detect(b""), Err(CodecError::Empty));
        assert_eq!(detect(b"  \n"), Err(CodecError::Empty));
        assert_eq!(
            detect(&[0, 0, 1]),
            Err(CodecError::TruncatedHeader {
                framing: Framing::Confluent,
                got: 3,
                need: 5
            })
        );
        assert_eq!(
            detect(&[0xC3, 2]),
            Err(CodecError::UnknownMagic { byte: 2, offset: 1 })
        );
        assert_eq!(
            detect(b"  [1]"),
            Err(CodecError::UnknownMagic {
                byte: b'[',
                offset: 2
            })
        );
        assert_eq!(confluent_id(&[0, 0, 0, 1, 2, 9]), Some(258));
    }
}
