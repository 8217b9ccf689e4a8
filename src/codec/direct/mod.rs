//! The Avro binary encoding of the compiled-in schemas, read into and written from the model
//! directly, without an `apache_avro::types::Value` in between (the generic path decodes to a
//! `Value`, cloning every field name into it, then maps it field by field; it encodes by
//! building that `Value` first).
//!
//! A direct reader or writer is written for exactly one schema, pinned by its CRC-64-AVRO
//! fingerprint: the codec uses it only for single-object payloads carrying that fingerprint
//! (reading: only while the record is also read with that schema, so no resolution is needed).
//! A schema edit changes the fingerprint, so the direct code stops being used (and a test
//! fails) until it is updated.
//!
//! Invariants: a direct reader accepts a subset of what the generic path accepts and returns
//! the same record for it. It answers `None` for anything it does not take as is — cut or
//! trailing bytes, a bad index, UTF-8 or length, a collection beyond apache-avro's limit — and
//! the caller then decodes the payload the generic way, which names the problem: errors are
//! exactly the generic path's, and malformed input costs one abandoned attempt more. A direct
//! writer writes the `Value` path's bytes (maps aside: in key order, where apache-avro follows
//! its `HashMap`) and answers `None` where that path fails, which then reports the error.
//!
//! | file | owns |
//! | --- | --- |
//! | `read.rs` | [`Body`]: the reading primitives, failing where apache-avro would |
//! | `write.rs` | [`Out`]: the writing primitives, the bytes apache-avro writes |
//! | `event.rs` | `HiringEvent` read and written |
//! | `outbound.rs` | `Command`, `Rejection`, `Alert` written |
//! | `snapshot.rs` | `Snapshot` written |

pub(crate) mod event;
pub(crate) mod outbound;
mod read;
pub(crate) mod snapshot;
mod write;

pub(crate) use read::Body;
pub(crate) use write::Out;

#[cfg(test)]
mod tests;
