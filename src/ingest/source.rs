//! Records as the processor holds them between poll and fold: owned, tagged with the epoch of
//! the assignment they were read under.

use rdkafka::message::{Message, OwnedHeaders};

/// One consumed record, owned.
#[derive(Debug, Clone)]
pub struct OwnedRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Option<OwnedHeaders>,
    pub epoch: u64,
}

impl OwnedRecord {
    /// Copies `m` out of the consumer's buffers.
    pub fn from_message(
        m: &impl Message<Headers = rdkafka::message::BorrowedHeaders>,
        epoch: u64,
    ) -> OwnedRecord {
        OwnedRecord {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers: m.headers().map(|h| h.detach()),
            epoch,
        }
    }
}
