//! The deadline index's keys: `t/` + partition (u32 BE) + deadline (order-preserving u64 BE) +
//! the firing event's id; the value is the candidate and the [`Due`] as JSON. Keys sort by
//! partition then deadline, so "everything due by now in partition p" is one range scan.

use serde::{Deserialize, Serialize};

use crate::fold::timers::{self, Due};
use crate::model::Timestamp;

/// The prefix of every index key.
pub const PREFIX: &[u8] = b"t/";

/// One index entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub partition: i32,
    pub candidate_id: String,
    pub due: Due,
}

impl Entry {
    /// The entry's key.
    pub fn key(&self) -> Vec<u8> {
        let mut k = partition_prefix(self.partition);
        k.extend_from_slice(&order(self.due.at).to_be_bytes());
        k.extend_from_slice(timers::event_id(&self.due).as_bytes());
        k
    }

    /// The entry's value.
    pub fn value(&self) -> Vec<u8> {
        // A struct of strings, integers and enums always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The entry stored under some key.
    ///
    /// # Errors
    /// What is wrong with the bytes.
    pub fn decode(value: &[u8]) -> Result<Entry, String> {
        serde_json::from_slice(value).map_err(|e| format!("deadline index entry: {e}"))
    }
}

/// `t/` + partition: the start of a partition's entries.
pub fn partition_prefix(partition: i32) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(&(partition as u32).to_be_bytes());
    k
}

/// The first key after every entry of `partition` due at or before `now`.
pub fn due_bound(partition: i32, now: Timestamp) -> Vec<u8> {
    let mut k = partition_prefix(partition);
    k.extend_from_slice(&order(now).saturating_add(1).to_be_bytes());
    k
}

/// The deadline a key of partition `partition` names, if it is one.
pub fn due_of_key(partition: i32, key: &[u8]) -> Option<Timestamp> {
    let rest = key.strip_prefix(&partition_prefix(partition)[..])?;
    let order = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    Some(Timestamp((order ^ (1 << 63)) as i64))
}

/// Timestamps as unsigned integers in the same order (sign bit flipped).
fn order(t: Timestamp) -> u64 {
    (t.micros() as u64) ^ (1 << 63)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TimerKind;

    fn entry(partition: i32, at: i64) -> Entry {
        Entry {
            partition,
            candidate_id: "c".into(),
            due: Due {
                at: Timestamp(at),
                timer: TimerKind::StageDwell,
                application_id: "a".into(),
                subject: "triage".into(),
                attempt: 0,
            },
        }
    }

    #[test]
    fn keys_sort_by_partition_then_deadline_including_negative_times() {
        let keys: Vec<Vec<u8>> = [(0, -5), (0, 3), (0, 10), (1, -100), (1, 0)]
            .iter()
            .map(|(p, at)| entry(*p, *at).key())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn the_due_bound_includes_now_and_excludes_later_and_other_partitions() {
        let bound = due_bound(0, Timestamp(10));
        assert!(entry(0, 10).key() < bound);
        assert!(entry(0, 11).key() > bound);
        assert!(entry(1, -1).key() > bound);
        assert!(entry(0, 10).key().starts_with(&partition_prefix(0)));
    }

    #[test]
    fn a_key_names_its_deadline_in_its_own_partition_only() {
        for at in [-5, 0, 42, i64::MAX] {
            assert_eq!(due_of_key(2, &entry(2, at).key()), Some(Timestamp(at)));
            assert_eq!(due_of_key(3, &entry(2, at).key()), None);
        }
        assert_eq!(due_of_key(0, &partition_prefix(0)), None);
    }

    #[test]
    fn values_round_trip_and_garbage_is_an_error() {
        let e = entry(3, 42);
        assert_eq!(Entry::decode(&e.value()).unwrap(), e);
        assert!(Entry::decode(b"{").unwrap_err().contains("deadline index"));
    }
}
