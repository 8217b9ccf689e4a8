//! Admission: one consumed record → an [`Event`], or the reason it cannot be one. The live
//! batch and restore both call [`Admission::admit`], so a record the live path dead-lettered is
//! never folded by a restore, and a restore decodes every framing the live path does — and
//! both refuse an event on another partition than its key's ([`super::placement`]).

use tokio::runtime::Handle;

use super::placement::Placement;
use crate::codec::{detect, Codec, CodecError, Framing};
use crate::model::Event;

/// Why a record is not an event: where it failed, an error class, and the message — what the
/// DLQ's error headers carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub stage: &'static str,
    pub class: &'static str,
    pub message: String,
}

/// What admission found.
#[derive(Debug)]
pub enum Admitted {
    Event(Event),
    /// Never foldable: the live path sends it to the DLQ; restore skips it.
    Refused(Refused),
    /// Might work later (the schema registry is unreachable): retry, do not dead-letter.
    Retry(CodecError),
    /// Not decodable for a reason of the configuration's, not the record's
    /// ([`CodecError::is_configuration`]: the registry refuses hirestate's credentials): no
    /// record can be decoded until it is mended, so stop ([`STOP_HINT`]) — dead-lettering
    /// would send every Confluent-framed record of the log to the DLQ, and a retry would only
    /// ask again with the same credentials.
    Stop(CodecError),
}

/// What the processor says when it stops on [`Admitted::Stop`].
/// (Followed by where the credentials are set, [`crate::config::REGISTRY_CREDENTIALS`].)
pub const STOP_HINT: &str = "a record cannot be decoded for a reason of the configuration, not \
    of the record, so the processor stops instead of dead-lettering every record: check the \
    schema registry's credentials and rights";

/// Decoding and validation of inbound records.
#[derive(Clone)]
pub struct Admission {
    codec: Codec,
    runtime: Handle,
    placement: Placement,
}

impl Admission {
    /// `runtime` runs the registry look-ups of Confluent-framed records; the caller must not be
    /// on one of its worker threads. `placement` is the event log's (partitioner and count).
    pub fn new(codec: Codec, runtime: Handle, placement: Placement) -> Admission {
        Admission {
            codec,
            runtime,
            placement,
        }
    }

    /// The codec records are decoded with (the outputs encode with the same one).
    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// The event log's placement rule.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// The runtime registry look-ups run on.
    pub fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// Decodes `bytes` in whatever framing they have: Confluent-framed ones through the
    /// registry (on `runtime`), the others without I/O.
    ///
    /// # Errors
    /// Any decode [`CodecError`]; only [`CodecError::RegistryUnavailable`] is retryable.
    pub fn decode<R: crate::codec::Record>(&self, bytes: &[u8]) -> Result<R, CodecError> {
        match detect(bytes) {
            Ok(Framing::Confluent) => self.runtime.block_on(self.codec.decode::<R>(bytes)),
            _ => self.codec.decode_local::<R>(bytes),
        }
    }

    /// Decodes `value` in whatever framing it has and checks it may be folded
    /// ([`validate`]).
    pub fn admit(&self, key: Option<&[u8]>, value: Option<&[u8]>, partition: i32) -> Admitted {
        let bytes = value.unwrap_or_default();
        match self.decode::<Event>(bytes) {
            Ok(event) => match validate(&event, key, partition, &self.placement) {
                Ok(()) => Admitted::Event(event),
                Err(why) => Admitted::Refused(why),
            },
            Err(e) if e.retryable() => Admitted::Retry(e),
            Err(e) if e.is_configuration() => Admitted::Stop(e),
            Err(e) => Admitted::Refused(Refused {
                stage: "decode",
                class: "hirestate::codec::CodecError",
                message: e.to_string(),
            }),
        }
    }
}

/// Whether a decoded `event`, keyed `key` on `partition`, may be folded: ids present, strings
/// bounded, the record key equal to the candidate id (the key decides the partition, and one
/// partition must own a candidate), and `partition` the one `placement` gives that key. The
/// live path and restore check each record so ([`Admission::admit`]), and so do the tools
/// that fold a topic (`replay`/`kpi --bootstrap`), so they fold what the processor folds.
///
/// # Errors
/// Why not, as the DLQ's error headers say it.
pub fn validate(
    event: &Event,
    key: Option<&[u8]>,
    partition: i32,
    placement: &Placement,
) -> Result<(), Refused> {
    let refuse = |class, message| {
        Err(Refused {
            stage: "validate",
            class,
            message,
        })
    };
    if let Err((field, len)) = crate::replay::check_limits(event) {
        let why = match len {
            None => format!("field `{field}` is empty"),
            Some(n) => format!("field `{field}` is {n} bytes, over the limit"),
        };
        return refuse("hirestate::limits", why);
    }
    if key != Some(event.candidate_id.as_bytes()) {
        let why = format!(
            "record key {:?} is not the event's candidate_id {:?}",
            key.map(String::from_utf8_lossy),
            event.candidate_id
        );
        return refuse("hirestate::key", why);
    }
    if let Err(why) = placement.check(event.candidate_id.as_bytes(), partition) {
        return refuse("hirestate::partition", why);
    }
    Ok(())
}
