//! The store's writer thread: it applies the commits handed to it in order, while the processor
//! goes on (see `sled_store`'s module doc for what that buys and the invariants around it). One
//! long-lived thread, not one per write: a new thread costs its start-up and a fresh allocator
//! heap every batch.
//!
//! Group commit: a commit is handed over as a [`Fill`] (what it adds to a sled batch). While a
//! write runs, the commits handed over queue; when it ends, the writer applies every queued one
//! as ONE batch, filled in the order they came. A key written by several of them is written
//! once, with the last value, so when sled is slower than the fold, the writes grow and the
//! candidates written per event fall, until the two keep pace. Invariants (tests below):
//! - Commits are applied in the order handed over, each whole: a write is a run of consecutive
//!   commits applied atomically, after every write before it. So what the store holds is
//!   always some prefix of the commits — behind the caller, never ahead, never with a gap.
//! - A write that fails is reported once, by the next call; it and every commit queued behind
//!   it are dropped, never applied (applying a later commit without it would leave a gap).
//! - At most [`MAX_QUEUED`] commits wait: a caller handing over more waits for the write in
//!   flight, so memory stays bounded when sled falls behind for good.
//! - A writer that panicked is reported by every call after it.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// One commit's part of a write: the keys it inserts and removes, added to the batch the writer
/// applies. Fills run in commit order, so a later commit's value of a key wins.
pub(super) type Fill = Box<dyn FnOnce(&mut sled::Batch) + Send>;

/// Applies a filled batch (sled's `apply_batch`, or a test's double).
pub(super) type Apply = Box<dyn FnMut(sled::Batch) -> sled::Result<()> + Send>;

/// How many commits may wait behind the write in flight. Enough for the writes to grow several
/// batches wide when sled is the bottleneck; ~7 MB of encoded states at the default 2 000-record
/// batches (~870 candidates of ~915 B each a batch in `e2e`).
pub(super) const MAX_QUEUED: usize = 8;

/// Why a write did not land.
#[derive(Debug)]
pub(super) enum Failed {
    Sled(sled::Error),
    /// The writer thread is gone (a write panicked).
    WriterGone,
}

/// The writer thread and the commits waiting for it.
pub(super) struct WriteBehind {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled on every change of `queue`.
    changed: Condvar,
}

#[derive(Default)]
struct Queue {
    /// Commits handed over and not yet taken by the writer, in order.
    waiting: Vec<Fill>,
    /// The writer is applying a write.
    in_flight: bool,
    /// The last write's failure, until a call reports it.
    failed: Option<sled::Error>,
    /// The writer thread panicked.
    gone: bool,
    /// No more commits will come: the writer finishes what waits and stops.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, q: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
        self.changed.wait(q).unwrap_or_else(PoisonError::into_inner)
    }
}

/// Marks the writer gone when its thread unwinds from a panicking write.
struct GoneOnPanic<'a>(&'a Shared);

impl Drop for GoneOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut q = self.0.lock();
            q.gone = true;
            q.in_flight = false;
            q.waiting.clear();
            drop(q);
            self.0.changed.notify_all();
        }
    }
}

impl Queue {
    /// The failure a call must report, if any (a sled failure is reported once).
    fn take_failure(&mut self) -> Option<Failed> {
        if self.gone {
            return Some(Failed::WriterGone);
        }
        self.failed.take().map(Failed::Sled)
    }
}

impl WriteBehind {
    /// Starts the writer thread; it hands each write to `apply`.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn start(mut apply: Apply) -> std::io::Result<WriteBehind> {
        let shared = Arc::new(Shared::default());
        let writer = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("hirestate-store-writer".to_owned())
            .spawn(move || {
                let shared = &*writer;
                let _gone = GoneOnPanic(shared);
                while let Some(fills) = next_write(shared) {
                    let mut batch = sled::Batch::default();
                    for fill in fills {
                        fill(&mut batch);
                    }
                    let result = apply(batch);
                    let mut q = shared.lock();
                    q.in_flight = false;
                    if let Err(e) = result {
                        q.failed = Some(e);
                        // Queued behind the failed write: applying them would leave a gap.
                        q.waiting.clear();
                    }
                    drop(q);
                    shared.changed.notify_all();
                }
            })?;
        Ok(WriteBehind {
            shared,
            thread: Some(thread),
        })
    }

    /// Waits until every commit handed over is applied.
    ///
    /// # Errors
    /// A write's failure, not reported before; the writer thread being gone.
    pub fn wait(&self) -> Result<(), Failed> {
        let mut q = self.shared.lock();
        loop {
            if let Some(f) = q.take_failure() {
                return Err(f);
            }
            if q.waiting.is_empty() && !q.in_flight {
                return Ok(());
            }
            q = self.shared.wait(q);
        }
    }

    /// Whether a write is running or waiting.
    pub fn busy(&self) -> bool {
        let q = self.shared.lock();
        q.in_flight || !q.waiting.is_empty()
    }

    /// Hands `fill` to the writer, behind every commit before it. Waits only while
    /// [`MAX_QUEUED`] commits are waiting already.
    ///
    /// # Errors
    /// The failure of a write before it (then `fill` is dropped, not applied); the writer
    /// thread being gone.
    pub fn submit(&self, fill: Fill) -> Result<(), Failed> {
        let mut q = self.shared.lock();
        loop {
            if let Some(f) = q.take_failure() {
                return Err(f);
            }
            if q.waiting.len() < MAX_QUEUED {
                break;
            }
            q = self.shared.wait(q);
        }
        q.waiting.push(fill);
        drop(q);
        self.shared.changed.notify_all();
        Ok(())
    }
}

/// The commits of the next write, taken as one; `None` when the writer is to stop.
fn next_write(shared: &Shared) -> Option<Vec<Fill>> {
    let mut q = shared.lock();
    loop {
        if !q.waiting.is_empty() {
            q.in_flight = true;
            let fills = std::mem::take(&mut q.waiting);
            drop(q);
            // Room in the queue again: a caller waiting for it may go on.
            shared.changed.notify_all();
            return Some(fills);
        }
        if q.closed {
            return None;
        }
        q = shared.wait(q);
    }
}

impl Drop for WriteBehind {
    /// Lets the commits handed over land, then stops the thread.
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::mpsc;

    /// A writer applying to a temporary sled tree, whose writes each wait for a go from the
    /// test (so commits can be made to queue); the first write after `fail` is set fails.
    struct Harness {
        db: sled::Db,
        writes: Arc<AtomicUsize>,
        fail: Arc<AtomicBool>,
        go: mpsc::Sender<()>,
        started: mpsc::Receiver<()>,
        w: WriteBehind,
    }

    fn harness() -> Harness {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let (writes, fail) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (go, gate) = mpsc::channel::<()>();
        let (start_tx, started) = mpsc::channel::<()>();
        let (target, n, f) = (db.clone(), writes.clone(), fail.clone());
        let w = WriteBehind::start(Box::new(move |batch| {
            let _ = start_tx.send(());
            let _ = gate.recv();
            if f.swap(false, Ordering::SeqCst) {
                return Err(sled::Error::Unsupported("injected".into()));
            }
            n.fetch_add(1, Ordering::SeqCst);
            target.apply_batch(batch)
        }))
        .unwrap();
        Harness {
            db,
            writes,
            fail,
            go,
            started,
            w,
        }
    }

    fn put(key: &'static str, value: u8) -> Fill {
        Box::new(move |b| b.insert(key, &[value]))
    }

    fn get(db: &sled::Db, key: &str) -> Option<u8> {
        db.get(key).unwrap().map(|v| v[0])
    }

    #[test]
    fn commits_queued_behind_a_write_land_as_one_in_order() {
        let h = harness();
        h.w.submit(put("a", 1)).unwrap();
        h.started.recv().unwrap(); // the first write is in flight, held
        h.w.submit(put("a", 2)).unwrap();
        h.w.submit(Box::new(|b| b.remove("a"))).unwrap();
        h.w.submit(put("b", 1)).unwrap();
        h.w.submit(put("b", 2)).unwrap();
        h.w.submit(put("a", 3)).unwrap();
        drop(h.go); // every write goes from here on
        h.w.wait().unwrap();
        assert_eq!(
            h.writes.load(Ordering::SeqCst),
            2,
            "five commits, two writes"
        );
        assert_eq!(get(&h.db, "a"), Some(3), "the last commit's value wins");
        assert_eq!(get(&h.db, "b"), Some(2));
    }

    #[test]
    fn a_failed_write_drops_what_queued_behind_it_and_is_reported_once() {
        let h = harness();
        h.w.submit(put("a", 1)).unwrap();
        h.started.recv().unwrap();
        h.w.submit(put("b", 1)).unwrap();
        h.fail.store(true, Ordering::SeqCst);
        h.go.send(()).unwrap(); // the first write fails
        h.go.send(()).unwrap(); // in case the second were (wrongly) applied
        let reported = h.w.wait();
        assert!(matches!(reported, Err(Failed::Sled(_))), "{reported:?}");
        assert!(h.w.wait().is_ok(), "reported once");
        assert_eq!(get(&h.db, "a"), None);
        assert_eq!(
            get(&h.db, "b"),
            None,
            "not applied after the failure before it"
        );
        h.w.submit(put("c", 1)).unwrap();
        h.go.send(()).unwrap();
        h.w.wait().unwrap();
        assert_eq!(get(&h.db, "c"), Some(1), "writes go on after the report");
        assert_eq!(get(&h.db, "b"), None);
    }

    #[test]
    fn a_failure_is_reported_by_the_next_submit_which_is_not_applied() {
        let h = harness();
        h.fail.store(true, Ordering::SeqCst);
        h.w.submit(put("a", 1)).unwrap();
        h.go.send(()).unwrap();
        h.until_failed();
        let next = h.w.submit(put("b", 1));
        assert!(matches!(next, Err(Failed::Sled(_))), "{next:?}");
        h.w.wait().unwrap();
        assert_eq!(
            get(&h.db, "b"),
            None,
            "a submit that reports a failure drops its commit"
        );
    }

    impl Harness {
        /// Waits until the writer has recorded a failure, without `wait` (which would report
        /// it, and so consume it).
        fn until_failed(&self) {
            let shared = &self.w.shared;
            let mut q = shared.lock();
            while q.failed.is_none() {
                q = shared.wait(q);
            }
        }
    }

    #[test]
    fn a_caller_waits_when_the_queue_is_full() {
        let h = harness();
        h.w.submit(put("a", 0)).unwrap();
        h.started.recv().unwrap();
        for i in 0..MAX_QUEUED {
            h.w.submit(put("a", i as u8 + 1)).unwrap();
        }
        let returned = Arc::new(AtomicBool::new(false));
        std::thread::scope(|s| {
            let r = returned.clone();
            let w = &h.w;
            let extra = s.spawn(move || {
                w.submit(put("a", 99)).unwrap();
                r.store(true, Ordering::SeqCst);
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(
                !returned.load(Ordering::SeqCst),
                "a submit over the bound returned while the queue was full"
            );
            h.go.send(()).unwrap(); // the held write ends: the queue empties into the next
            extra.join().unwrap();
        });
        assert!(returned.load(Ordering::SeqCst));
        drop(h.go);
        h.w.wait().unwrap();
        assert_eq!(get(&h.db, "a"), Some(99));
    }

    #[test]
    fn a_write_that_panics_is_reported_not_hung_on() {
        let w = WriteBehind::start(Box::new(|_| Ok(()))).unwrap();
        w.submit(Box::new(|_| panic!("boom"))).unwrap();
        assert!(matches!(w.wait(), Err(Failed::WriterGone)));
        assert!(matches!(
            w.submit(Box::new(|_| ())),
            Err(Failed::WriterGone)
        ));
    }

    #[test]
    fn dropping_lets_the_queued_commits_land() {
        let h = harness();
        h.w.submit(put("a", 1)).unwrap();
        h.started.recv().unwrap();
        h.w.submit(put("b", 1)).unwrap();
        let (go, db) = (h.go.clone(), h.db.clone());
        std::thread::spawn(move || {
            for _ in 0..2 {
                let _ = go.send(());
            }
        });
        drop(h.w);
        assert_eq!(get(&db, "a"), Some(1));
        assert_eq!(get(&db, "b"), Some(1));
    }
}
