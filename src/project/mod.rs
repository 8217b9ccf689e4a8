//! Stage 5: the projection held in sled — per candidate, the folded state; per input
//! partition, the next offset that state reflects (last folded + 1, the convention
//! `send_offsets_to_transaction` uses) — and the set of candidates changed since their
//! partition's last snapshot round.
//!
//! Invariants:
//! - The processor writes here only after `commit_transaction` succeeded, in ONE atomic
//!   [`Store::commit`] carrying the batch's states, offsets and snapshot bookkeeping. So the
//!   store can be behind Kafka (a crash between commit and write), never ahead. The write runs
//!   behind the processor (it folds the next batch meanwhile), in order, and every read waits
//!   for the writes before it.
//! - Nothing here needs a flush to be correct: losing the newest writes only puts the store
//!   further behind, which restore on assignment repairs by folding the gap.
//! - A store that fails to open or to verify its format marker is moved aside and rebuilt from
//!   Kafka ([`open_or_rebuild`]); it is never trusted half-read.
//! - A store reflects one event log, named with its cluster (`meta/source`, recorded before
//!   the processor's first read of it): opened for another one — another topic prefix, another
//!   cluster, the same directory reused — it is moved aside and rebuilt like a store that fails
//!   to verify ([`open_for_source`]). Its states are another log's candidates: folding this
//!   log's events onto them would decide those events against states they never made (ids
//!   overlap across logs, and the fold would take the events for duplicates). A store that
//!   records no source (new, or from before it was kept) takes the log it is opened for.
//! - A store reflects its log as partitioned when the store was built (`meta/partitions`):
//!   opened for that log with another partition count, it is refused
//!   ([`StoreError::Repartitioned`]), not rebuilt. A log whose partitions were added places
//!   many candidates' later events on other partitions than their earlier ones, so no state
//!   folded per partition from it is right, a rebuilt one included (`topics::repartitioned`
//!   says what to do). A store that records no count takes the log's.

mod sled_store;
pub mod state_codec;
mod write_behind;

use thiserror::Error;

use crate::model::CandidateState;

pub use sled_store::{open_or_rebuild, rebuild, EncodedStates, SledStore, FORMAT};

/// Opens the store at `dir` for the event log `source` with `partitions` partitions (see the
/// module doc): one that fails to open or verify, or that reflects another log, is moved aside
/// and a fresh one created. Returns the store, recorded as `source`'s, and why it was rebuilt,
/// if it was.
///
/// # Errors
/// [`StoreError::Repartitioned`] when the store was built from `source` with another partition
/// count; when even a fresh store cannot be created, or the source cannot be read or written.
pub fn open_for_source(
    dir: &std::path::Path,
    source: &str,
    partitions: usize,
) -> Result<(SledStore, Option<String>), StoreError> {
    let (mut store, mut rebuilt) = open_or_rebuild(dir)?;
    if let Some(other) = store.source()?.filter(|s| s != source) {
        drop(store);
        let why = format!("it reflects {other}, not {source}");
        (store, rebuilt) = rebuild(dir, &why)?;
    }
    if let Some(built) = store.event_partitions()?.filter(|n| *n != partitions) {
        return Err(StoreError::Repartitioned {
            built,
            now: partitions,
        });
    }
    store.record_source(source, partitions)?;
    Ok((store, rebuilt))
}

/// A store failure: the processor stops (its state would otherwise silently diverge).
#[derive(Debug, Error)]
pub enum StoreError {
    // The causes are named `error`, not `source`: the messages carry them already, and as
    // sources `{:#}` (how `main` prints an error) repeated them.
    #[error("state store at {path}: {error}")]
    Sled { path: String, error: sled::Error },
    #[error(
        "state store at {path} is in use by another process (sled's lock on {path}/db is held): \
         two processors cannot share a state directory; give each instance its own \
         HIRESTATE_STATE_DIR, or stop the other one"
    )]
    Locked { path: String },
    #[error("state store: candidate {candidate:?} does not decode: {error}")]
    Corrupt {
        candidate: String,
        error: state_codec::DecodeError,
    },
    #[error("state store at {path}: {what}")]
    Verify { path: String, what: String },
    /// A write of committed batches (or the flush at exit) failed while the processor ran.
    #[error("{}", write_failed(path, error))]
    WriteFailed { path: String, error: sled::Error },
    #[error("the state store was built from {built} partitions of the event log, which has {now}")]
    Repartitioned { built: usize, now: usize },
}

/// What a failed write says: the cause (the disk full, permission denied, or sled's error),
/// that nothing is lost (the store is behind Kafka, never ahead), and what to do.
fn write_failed(path: &str, error: &sled::Error) -> String {
    let (cause, fix) = match error {
        // sled wraps the OS error as text of its `Debug` form: the kind says it plainly.
        sled::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::StorageFull => (
                "No space left on device".to_owned(),
                "free space on its disk (or give HIRESTATE_STATE_DIR a larger one)",
            ),
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => (
                format!("{} ({io})", io.kind()),
                "make it writable by this process",
            ),
            _ => (io.to_string(), "fix what the error names"),
        },
        other => (other.to_string(), "fix what the error names"),
    };
    format!(
        "state store at {path}: writing committed batches failed: {cause}. Nothing is lost: \
         the store is behind Kafka, never ahead, and the next start restores what it missed \
         from the event log; {fix}, then start hirestate again"
    )
}

/// Everything one committed batch changes, written atomically.
#[derive(Debug, Default)]
pub struct Commit<'a> {
    /// The states, encoded (each candidate once).
    pub states: EncodedStates,
    /// (topic, partition, next offset).
    pub offsets: Vec<(&'a str, i32, i64)>,
    /// (partition, candidate) changed since the partition's last snapshot round.
    pub dirty: Vec<(i32, &'a str)>,
    /// Partitions whose snapshot round committed in this batch: their dirty sets are cleared
    /// (before `dirty` is applied).
    pub snapshot_rounds: Vec<i32>,
    /// Deadline index entries the batch's outcomes scheduled (`src/timers`).
    pub timers: Vec<crate::timers::index::Entry>,
    /// Deadline index keys the batch fired or found moot (removed after `timers` is applied).
    pub timers_done: Vec<Vec<u8>>,
}

/// The projection's storage, behind a trait so the processor does not depend on sled.
pub trait Store: Send {
    /// The stored state of `candidate`, if any.
    ///
    /// # Errors
    /// Storage or decode failures.
    fn candidate(&self, candidate: &str) -> Result<Option<CandidateState>, StoreError>;
    /// The next offset the stored states reflect for `topic`/`partition`, if any.
    ///
    /// # Errors
    /// Storage failures.
    fn next_offset(&self, topic: &str, partition: i32) -> Result<Option<i64>, StoreError>;
    /// Candidates of `partition` changed since its last snapshot round.
    ///
    /// # Errors
    /// Storage failures.
    fn dirty(&self, partition: i32) -> Result<Vec<String>, StoreError>;
    /// Applies `commit` atomically, after the commits before it. The write may still be running
    /// (or waiting behind another) when this returns; every later read sees it, and a write that
    /// failed is reported by the next call (nothing of that commit, nor of any commit after it,
    /// is applied then).
    ///
    /// # Errors
    /// Storage failures: a failed write of a commit before it.
    fn commit(&self, commit: Commit<'_>) -> Result<(), StoreError>;
    /// Whether a commit is still being applied (a read now would wait for it).
    fn writing(&self) -> bool;
    /// Waits until every commit so far is applied (not necessarily durable: see `flush`).
    ///
    /// # Errors
    /// The failure of a write still running.
    fn settle(&self) -> Result<(), StoreError>;
    /// Up to `limit` deadline index entries of `partition` due at or before `now`, earliest
    /// first, with their keys.
    ///
    /// # Errors
    /// Storage failures, or an entry that does not decode.
    fn due_timers(
        &self,
        partition: i32,
        now: crate::model::Timestamp,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, crate::timers::index::Entry)>, StoreError>;
    /// The deadline of the earliest index entry of `partition` due after `now`, if any.
    ///
    /// # Errors
    /// Storage failures.
    fn first_due_after(
        &self,
        partition: i32,
        now: crate::model::Timestamp,
    ) -> Result<Option<crate::model::Timestamp>, StoreError>;
    /// Every stored candidate state, in candidate id order, one at a time as the iterator is
    /// driven (`state-dump`, the command-status gauge at start-up): none is held longer than
    /// its turn, so a store of millions of candidates is read in the memory of one (before,
    /// both collected every state first: at start-up that was all of them, past
    /// `max_candidates_in_memory`).
    ///
    /// # Errors
    /// Storage failures (here or at an item), or a state that does not decode (at its item).
    fn candidates(
        &self,
    ) -> Result<Box<dyn Iterator<Item = Result<CandidateState, StoreError>> + '_>, StoreError>;
    /// [`Store::candidates`], collected (tests and small stores).
    ///
    /// # Errors
    /// As [`Store::candidates`].
    fn all_candidates(&self) -> Result<Vec<CandidateState>, StoreError> {
        self.candidates()?.collect()
    }
    /// Makes what was committed durable now (shutdown).
    ///
    /// # Errors
    /// Storage failures.
    fn flush(&self) -> Result<(), StoreError>;
}

/// What the store's tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::Path;

    use super::{sled_store::is_locked, StoreError};

    /// Opens the store at `path` again in this process: sled's background flusher may still
    /// hold the file lock for a moment after the previous handle was dropped.
    pub fn reopen<T>(path: &Path, open: impl Fn(&Path) -> Result<T, StoreError>) -> T {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match open(path) {
                Err(e) if is_locked(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => return r.unwrap(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::reopen;
    use super::*;

    #[test]
    fn a_store_error_names_its_cause_once_in_the_printed_chain() {
        let err = StoreError::Sled {
            path: "/state/projection".into(),
            error: sled::Error::Unsupported("the cause".into()),
        };
        let said = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(said.matches("the cause").count(), 1, "{said}");
    }

    #[test]
    fn a_failed_write_names_its_cause_and_says_nothing_is_lost_and_what_to_do() {
        let full = StoreError::WriteFailed {
            path: "/state/projection".into(),
            error: sled::Error::Io(std::io::Error::from_raw_os_error(28)),
        };
        let said = format!("{:#}", anyhow::Error::from(full));
        assert!(
            said.starts_with("state store at /state/projection: "),
            "{said}"
        );
        assert!(said.contains("failed: No space left on device. "), "{said}");
        assert!(said.contains("Nothing is lost"), "{said}");
        assert!(said.contains("free space on its disk"), "{said}");
        let read_only = StoreError::WriteFailed {
            path: "/p".into(),
            error: sled::Error::Io(std::io::Error::from_raw_os_error(30)),
        };
        assert!(
            read_only.to_string().contains("make it writable"),
            "{read_only}"
        );
        let other = StoreError::WriteFailed {
            path: "/p".into(),
            error: sled::Error::Unsupported("the cause".into()),
        };
        let said = other.to_string();
        assert_eq!(said.matches("the cause").count(), 1, "{said}");
        assert!(said.contains("fix what the error names"), "{said}");
    }

    fn holds_a_candidate(store: &SledStore) -> bool {
        store.candidate("cand-1").expect("read").is_some()
    }

    fn put_a_candidate(store: &SledStore) {
        let state = CandidateState {
            candidate_id: "cand-1".into(),
            ..Default::default()
        };
        store
            .commit(Commit {
                states: EncodedStates::of(&[&state]),
                ..Default::default()
            })
            .expect("commit");
        store.flush().expect("flush");
    }

    fn with_a_candidate(dir: &std::path::Path, source: &str) {
        put_a_candidate(&reopen(dir, |d| open_for_source(d, source, 4)).0);
    }

    #[test]
    fn a_store_is_kept_for_its_own_log_and_rebuilt_for_another() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("projection");
        with_a_candidate(&dir, "a.events on cluster X");

        let (store, rebuilt) = reopen(&dir, |d| open_for_source(d, "a.events on cluster X", 4));
        assert_eq!(rebuilt, None);
        assert!(holds_a_candidate(&store));
        drop(store);

        // Another topic, then the same topic on another cluster: each time moved aside.
        for (n, other, was) in [
            (1, "b.events on cluster X", "a.events on cluster X"),
            (2, "b.events on cluster Y", "b.events on cluster X"),
        ] {
            let (store, rebuilt) = reopen(&dir, |d| open_for_source(d, other, 4));
            let why = rebuilt.expect("rebuilt");
            assert!(
                why.contains(&format!("it reflects {was}, not {other}")),
                "{why}"
            );
            assert!(!holds_a_candidate(&store), "the other log's state was kept");
            assert_eq!(store.source().expect("source").as_deref(), Some(other));
            drop(store);
            let aside = tmp.path().join(format!("projection.broken-{n}"));
            assert!(aside.exists(), "{} not kept", aside.display());
            if n == 1 {
                // Put a candidate in again, so the next round has one to lose.
                with_a_candidate(&dir, other);
            }
        }
    }

    #[test]
    fn a_store_opened_for_its_log_with_another_partition_count_is_refused_untouched() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("projection");
        let log = "a.events on cluster X";
        with_a_candidate(&dir, log);

        let refused = reopen(&dir, |d| match open_for_source(d, log, 6) {
            Err(e @ StoreError::Repartitioned { .. }) => Ok(e),
            Ok(_) => panic!("opened for 6 partitions a store built from 4"),
            Err(e) => Err(e),
        });
        assert!(
            matches!(refused, StoreError::Repartitioned { built: 4, now: 6 }),
            "{refused:?}"
        );
        assert_eq!(
            refused.to_string(),
            "the state store was built from 4 partitions of the event log, which has 6"
        );

        let (store, rebuilt) = reopen(&dir, |d| open_for_source(d, log, 4));
        assert_eq!(rebuilt, None);
        assert!(holds_a_candidate(&store), "the refusal touched the store");
        assert_eq!(store.event_partitions().expect("partitions"), Some(4));
        assert!(!tmp.path().join("projection.broken-1").exists());
    }

    #[test]
    fn a_store_that_records_no_source_takes_the_log_it_is_opened_for() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("projection");
        // Written as a version before the source was recorded: no `meta/source`.
        let (store, _) = reopen(&dir, open_or_rebuild);
        put_a_candidate(&store);
        assert_eq!(store.source().expect("source"), None);
        assert_eq!(store.event_partitions().expect("partitions"), None);
        drop(store);

        let (store, rebuilt) = reopen(&dir, |d| open_for_source(d, "a.events on cluster X", 4));
        assert_eq!(rebuilt, None);
        assert!(holds_a_candidate(&store));
        assert_eq!(
            store.source().expect("source").as_deref(),
            Some("a.events on cluster X")
        );
        assert_eq!(store.event_partitions().expect("partitions"), Some(4));
    }
}
