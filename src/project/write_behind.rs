//! The store's writer thread: it applies one write at a time, in the order they were handed
//! over, while the processor goes on (see `sled_store`'s module doc for what that buys and the
//! invariants around it). One long-lived thread, not one per write: a new thread costs its
//! start-up and a fresh allocator heap every batch.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

/// A write to run on the writer thread.
pub(super) type Job = Box<dyn FnOnce() -> sled::Result<()> + Send>;

/// Why a write did not land.
#[derive(Debug)]
pub(super) enum Failed {
    Sled(sled::Error),
    /// The writer thread is gone (a write panicked).
    WriterGone,
}

/// The writer thread and the one write that may be in flight.
pub(super) struct WriteBehind {
    jobs: Option<SyncSender<Job>>,
    results: Receiver<sled::Result<()>>,
    in_flight: bool,
    thread: Option<JoinHandle<()>>,
}

impl WriteBehind {
    /// Starts the writer thread.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn start() -> std::io::Result<WriteBehind> {
        let (jobs, inbox) = mpsc::sync_channel::<Job>(1);
        let (outbox, results) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("hirestate-store-writer".to_owned())
            .spawn(move || {
                for job in inbox {
                    if outbox.send(job()).is_err() {
                        return;
                    }
                }
            })?;
        Ok(WriteBehind {
            jobs: Some(jobs),
            results,
            in_flight: false,
            thread: Some(thread),
        })
    }

    /// Waits for the write in flight, if any.
    ///
    /// # Errors
    /// That write's failure.
    pub fn wait(&mut self) -> Result<(), Failed> {
        if !std::mem::take(&mut self.in_flight) {
            return Ok(());
        }
        match self.results.recv() {
            Ok(r) => r.map_err(Failed::Sled),
            Err(_) => Err(Failed::WriterGone),
        }
    }

    /// Hands `job` to the writer thread, after the write before it.
    ///
    /// # Errors
    /// The failure of the write before it; the writer thread being gone.
    pub fn submit(&mut self, job: Job) -> Result<(), Failed> {
        self.wait()?;
        let jobs = self.jobs.as_ref().ok_or(Failed::WriterGone)?;
        jobs.send(job).map_err(|_| Failed::WriterGone)?;
        self.in_flight = true;
        Ok(())
    }
}

impl Drop for WriteBehind {
    /// Lets the write in flight finish, then stops the thread.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn writes_run_in_order_and_a_failure_reaches_the_next_call() {
        let mut w = WriteBehind::start().unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        for i in 0..50 {
            let seen = seen.clone();
            w.submit(Box::new(move || {
                seen.lock().unwrap().push(i);
                Ok(())
            }))
            .unwrap();
        }
        w.wait().unwrap();
        assert_eq!(*seen.lock().unwrap(), (0..50).collect::<Vec<_>>());
        w.submit(Box::new(|| Err(sled::Error::Unsupported("test".into()))))
            .unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let next = w.submit(Box::new(move || {
            r.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }));
        assert!(matches!(
            next,
            Err(Failed::Sled(sled::Error::Unsupported(_)))
        ));
        assert_eq!(ran.load(Ordering::Relaxed), 0, "not run after a failure");
        assert!(w.wait().is_ok(), "reported once");
    }

    #[test]
    fn a_write_that_panics_is_reported_not_hung_on() {
        let mut w = WriteBehind::start().unwrap();
        w.submit(Box::new(|| panic!("boom"))).unwrap();
        assert!(matches!(w.wait(), Err(Failed::WriterGone)));
        assert!(matches!(
            w.submit(Box::new(|| Ok(()))),
            Err(Failed::WriterGone)
        ));
    }

    #[test]
    fn dropping_waits_for_the_write_in_flight() {
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let mut w = WriteBehind::start().unwrap();
        w.submit(Box::new(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            d.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }))
        .unwrap();
        drop(w);
        assert_eq!(done.load(Ordering::Relaxed), 1);
    }
}
