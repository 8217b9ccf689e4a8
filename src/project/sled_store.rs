//! [`Store`] on sled: one tree, key prefixes `c/` (candidate → JSON state), `o/` (topic NUL
//! partition → next offset, big-endian i64), `d/` (partition BE, candidate → dirty marker) and
//! the `meta/format` marker. One tree means one `apply_batch` is one atomic write.

use std::path::{Path, PathBuf};

use super::{Commit, Store, StoreError};
use crate::model::CandidateState;

/// The format marker a store must carry to be trusted.
pub const FORMAT: &[u8] = b"hirestate-projection-v1";
const META: &[u8] = b"meta/format";

/// The sled-backed projection.
pub struct SledStore {
    path: String,
    db: sled::Db,
}

fn offset_key(topic: &str, partition: i32) -> Vec<u8> {
    let mut k = b"o/".to_vec();
    k.extend_from_slice(topic.as_bytes());
    k.push(0);
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

fn dirty_prefix(partition: i32) -> Vec<u8> {
    let mut k = b"d/".to_vec();
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

fn candidate_key(candidate: &str) -> Vec<u8> {
    let mut k = b"c/".to_vec();
    k.extend_from_slice(candidate.as_bytes());
    k
}

impl SledStore {
    /// Opens (or creates) the store at `dir` and checks its format marker.
    ///
    /// # Errors
    /// [`StoreError::Sled`] when sled cannot open it, [`StoreError::Verify`] when the marker is
    /// missing on a non-empty store or names another format.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        let path = dir.display().to_string();
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(Some(500))
            .open()
            .map_err(|source| StoreError::Sled {
                path: path.clone(),
                source,
            })?;
        let sled_err = |source| StoreError::Sled {
            path: path.clone(),
            source,
        };
        match db.get(META).map_err(sled_err)? {
            Some(v) if v.as_ref() == FORMAT => {}
            Some(v) => {
                return Err(StoreError::Verify {
                    path,
                    what: format!(
                        "format marker is {:?}, expected {:?}",
                        String::from_utf8_lossy(&v),
                        String::from_utf8_lossy(FORMAT)
                    ),
                })
            }
            None if db.is_empty() => {
                db.insert(META, FORMAT).map_err(sled_err)?;
            }
            None => {
                return Err(StoreError::Verify {
                    path,
                    what: "no format marker on a non-empty store".to_owned(),
                })
            }
        }
        Ok(SledStore { path, db })
    }

    fn err(&self, source: sled::Error) -> StoreError {
        StoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }
}

/// Opens the store at `dir`; one that fails to open or verify is moved aside (kept for a
/// post-mortem, as `<dir>.broken-<n>`) and a fresh one is created, to be rebuilt from Kafka.
/// Returns the store and whether it was rebuilt.
///
/// # Errors
/// When even a fresh store cannot be created.
pub fn open_or_rebuild(dir: &Path) -> Result<(SledStore, Option<String>), StoreError> {
    match SledStore::open(dir) {
        Ok(s) => Ok((s, None)),
        Err(e) => {
            let aside = (1..)
                .map(|n| PathBuf::from(format!("{}.broken-{n}", dir.display())))
                .find(|p| !p.exists())
                .unwrap_or_else(|| dir.with_extension("broken"));
            let _ = std::fs::rename(dir, &aside);
            let reason = format!("{e}; moved aside to {}", aside.display());
            SledStore::open(dir).map(|s| (s, Some(reason)))
        }
    }
}

impl Store for SledStore {
    fn candidate(&self, candidate: &str) -> Result<Option<CandidateState>, StoreError> {
        let Some(bytes) = self
            .db
            .get(candidate_key(candidate))
            .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StoreError::Corrupt {
                candidate: candidate.to_owned(),
                source,
            })
    }

    fn next_offset(&self, topic: &str, partition: i32) -> Result<Option<i64>, StoreError> {
        Ok(self
            .db
            .get(offset_key(topic, partition))
            .map_err(|e| self.err(e))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(i64::from_be_bytes))
    }

    fn dirty(&self, partition: i32) -> Result<Vec<String>, StoreError> {
        let prefix = dirty_prefix(partition);
        self.db
            .scan_prefix(&prefix)
            .keys()
            .map(|k| {
                k.map(|k| String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
                    .map_err(|e| self.err(e))
            })
            .collect()
    }

    fn commit(&self, commit: &Commit<'_>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for p in &commit.snapshot_rounds {
            for k in self.db.scan_prefix(dirty_prefix(*p)).keys() {
                batch.remove(k.map_err(|e| self.err(e))?);
            }
        }
        for state in &commit.states {
            let json = serde_json::to_vec(state).map_err(|source| StoreError::Corrupt {
                candidate: state.candidate_id.clone(),
                source,
            })?;
            batch.insert(candidate_key(&state.candidate_id), json);
        }
        for (topic, partition, next) in &commit.offsets {
            batch.insert(offset_key(topic, *partition), &next.to_be_bytes());
        }
        for (partition, candidate) in &commit.dirty {
            let mut k = dirty_prefix(*partition);
            k.extend_from_slice(candidate.as_bytes());
            batch.insert(k, &[]);
        }
        self.db.apply_batch(batch).map_err(|e| self.err(e))
    }

    fn all_candidates(&self) -> Result<Vec<CandidateState>, StoreError> {
        self.db
            .scan_prefix(b"c/")
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.err(e))?;
                serde_json::from_slice(&v).map_err(|source| StoreError::Corrupt {
                    candidate: String::from_utf8_lossy(&k[2..]).into_owned(),
                    source,
                })
            })
            .collect()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(id: &str) -> CandidateState {
        CandidateState {
            candidate_id: id.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn commit_is_read_back_and_rounds_clear_only_their_partition() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(&dir.path().join("db")).unwrap();
        let (a, b) = (state("a"), state("b"));
        s.commit(&Commit {
            states: vec![&a, &b],
            offsets: vec![("events", 0, 10), ("events", 1, 3)],
            dirty: vec![(0, "a"), (1, "b")],
            snapshot_rounds: vec![],
        })
        .unwrap();
        assert_eq!(s.candidate("a").unwrap(), Some(a.clone()));
        assert_eq!(s.candidate("zz").unwrap(), None);
        assert_eq!(s.next_offset("events", 0).unwrap(), Some(10));
        assert_eq!(s.next_offset("events", 2).unwrap(), None);
        s.commit(&Commit {
            snapshot_rounds: vec![0],
            offsets: vec![("events", 0, 11)],
            ..Default::default()
        })
        .unwrap();
        assert!(s.dirty(0).unwrap().is_empty());
        assert_eq!(s.dirty(1).unwrap(), vec!["b".to_owned()]);
        assert_eq!(s.all_candidates().unwrap().len(), 2);
    }

    #[test]
    fn a_store_of_another_format_is_moved_aside_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let db = sled::open(&path).unwrap();
            db.insert(META, b"something-else".as_slice()).unwrap();
            db.flush().unwrap();
        }
        assert!(matches!(
            SledStore::open(&path),
            Err(StoreError::Verify { .. })
        ));
        let (s, rebuilt) = open_or_rebuild(&path).unwrap();
        assert!(rebuilt.unwrap().contains("format marker"));
        assert_eq!(s.all_candidates().unwrap(), vec![]);
        assert!(dir.path().join("db.broken-1").exists());
    }
}
