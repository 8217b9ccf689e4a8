//! Consumer lag of one partition, from librdkafka's statistics and the offset the processor's
//! committed state reflects.
//!
//! librdkafka's own `consumer_lag` is measured from the consumer's committed offset, which this
//! processor never moves: its offsets commit through the producer's transactions, so that figure
//! goes stale after assignment. Lag here is measured from `committed_next` (the partition's
//! `next`, advanced only after a transaction committed) to the end of what a `read_committed`
//! consumer can read (the last stable offset).
//!
//! Transaction markers take offsets and are never delivered: a log whose producers use
//! transactions ends in a marker, and `committed_next` stops just before it. When every record
//! handed to the processor (`delivered_next`, which the processor tracks itself) is committed
//! and none waits in librdkafka's fetch queue, the consumer's position (`app_offset`, which
//! librdkafka moves past skipped markers) is where the processor really stands.

/// What librdkafka's statistics say of one partition (the fields the lag needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionStats {
    /// Last stable offset (the end for `read_committed`); negative when unknown.
    pub ls_offset: i64,
    /// High watermark; the end when the last stable offset is unknown.
    pub hi_offset: i64,
    /// The consumer's position: past the last record handed to the application and any
    /// control records after it; negative when unknown.
    pub app_offset: i64,
    /// Records fetched and not yet handed to the application.
    pub fetchq_cnt: i64,
}

/// Records between what the committed state reflects (`committed_next`) and the end of the
/// readable log; `None` while the end is unknown (no fetch response yet). `delivered_next` is
/// the offset after the last record the consumer handed to the processor in this assignment
/// (0 when none).
pub fn partition_lag(s: &PartitionStats, committed_next: i64, delivered_next: i64) -> Option<i64> {
    let end = if s.ls_offset >= 0 {
        s.ls_offset
    } else {
        s.hi_offset
    };
    if end < 0 {
        return None;
    }
    let at = if delivered_next <= committed_next && s.fetchq_cnt == 0 && s.app_offset >= 0 {
        committed_next.max(s.app_offset)
    } else {
        committed_next
    };
    Some((end - at).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(ls: i64, app: i64, fetchq: i64) -> PartitionStats {
        PartitionStats {
            ls_offset: ls,
            hi_offset: ls,
            app_offset: app,
            fetchq_cnt: fetchq,
        }
    }

    #[test]
    fn lag_counts_from_the_committed_offset_not_the_delivered_one() {
        // 100 records readable, 60 delivered, 40 of them committed.
        assert_eq!(partition_lag(&stats(100, 60, 40), 40, 60), Some(60));
        // Everything delivered and committed: caught up.
        assert_eq!(partition_lag(&stats(100, 100, 0), 100, 100), Some(0));
        // Nothing delivered yet, records waiting in the queue.
        assert_eq!(partition_lag(&stats(100, 0, 100), 0, 0), Some(100));
    }

    #[test]
    fn a_trailing_transaction_marker_is_not_lag() {
        // Records 0..=9, commit marker at 10: LSO 11; librdkafka's position skipped the marker.
        assert_eq!(partition_lag(&stats(11, 11, 0), 10, 10), Some(0));
        // Same, after a restart that consumed nothing in this assignment.
        assert_eq!(partition_lag(&stats(11, 11, 0), 10, 0), Some(0));
        // But a record delivered and not yet committed still counts, marker included.
        assert_eq!(partition_lag(&stats(11, 11, 0), 9, 10), Some(2));
        // And fetched records waiting in the queue are not skipped.
        assert_eq!(partition_lag(&stats(11, 9, 1), 9, 9), Some(2));
    }

    #[test]
    fn unknown_end_is_no_measurement() {
        let s = PartitionStats {
            ls_offset: -1001,
            hi_offset: -1001,
            app_offset: -1001,
            fetchq_cnt: 0,
        };
        assert_eq!(partition_lag(&s, 0, 0), None);
        let hi_only = PartitionStats { hi_offset: 7, ..s };
        assert_eq!(partition_lag(&hi_only, 5, 5), Some(2));
    }
}
