//! Records as the processor holds them between poll and fold: owned, tagged with the epoch of
//! the assignment they were read under, and carrying the W3C trace context of their headers
//! (parsed once here, so every stage after ingest can continue the sender's trace).

use rdkafka::message::{Message, OwnedHeaders};

use crate::telemetry::trace_context::TraceContext;

/// One consumed record, owned.
#[derive(Debug, Clone)]
pub struct OwnedRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Option<OwnedHeaders>,
    pub epoch: u64,
    /// The record's valid `traceparent` (and `tracestate`); `None` when it has none or an
    /// invalid one, which is never an error (see [`crate::telemetry::trace_context`]).
    pub trace: Option<TraceContext>,
}

impl OwnedRecord {
    /// Copies `m` out of the consumer's buffers.
    pub fn from_message(
        m: &impl Message<Headers = rdkafka::message::BorrowedHeaders>,
        epoch: u64,
    ) -> OwnedRecord {
        let headers = m.headers();
        OwnedRecord {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            trace: headers.and_then(TraceContext::from_headers),
            headers: headers.map(|h| h.detach()),
            epoch,
        }
    }
}
