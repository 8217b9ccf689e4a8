//! Standard output of the commands that print data (`replay`, `tail`, `generate`, `kpi`,
//! `state-dump`, `policy`, `topics ensure`, `run`'s final report): buffered, and a reader that
//! goes away (`| head`, quitting a pager) ends the command quietly, with success, as it ends
//! `cat` or `grep` — before, `generate`, `replay` and `tail` said `hirestate: Broken pipe (os
//! error 32)` and exited 1, as if they had failed.
//!
//! Only a write to standard output is taken for that: a broken pipe anywhere else (a socket,
//! say) stays an error, as [`reader_gone`] looks for the marker [`DataOut`] puts on its own
//! errors, not for the error kind.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// The marker on a [`DataOut`] write that found its reader gone.
#[derive(Debug, thiserror::Error)]
#[error("the reader of standard output went away")]
pub struct ReaderGone;

/// Buffered standard output that marks a broken pipe as [`ReaderGone`].
pub struct DataOut(io::BufWriter<io::StdoutLock<'static>>);

/// Standard output for a command's data.
pub fn data() -> DataOut {
    DataOut(io::BufWriter::new(io::stdout().lock()))
}

/// Set once a [`DataOut`] write found its reader gone.
static GONE: AtomicBool = AtomicBool::new(false);

fn marked(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        GONE.store(true, Ordering::Relaxed);
        io::Error::new(io::ErrorKind::BrokenPipe, ReaderGone)
    } else {
        e
    }
}

impl Write for DataOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(marked)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(marked)
    }
}

impl Drop for DataOut {
    /// What is still buffered goes out, or is dropped quietly when the reader went away (the
    /// `BufWriter`'s own drop would try again and ignore the error too).
    fn drop(&mut self) {
        let _ = self.0.flush();
    }
}

/// Whether `e` ended a command because the reader of its output went away: a [`DataOut`]
/// write, however it was wrapped since (an `io::Error`, context, or `serde_json`'s error,
/// which keeps only the kind of the `io::Error` it wraps: that one counts once a [`DataOut`]
/// write has found its reader gone).
pub fn reader_gone(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.is::<ReaderGone>()
            || cause
                .downcast_ref::<io::Error>()
                .and_then(io::Error::get_ref)
                .is_some_and(|inner| inner.is::<ReaderGone>())
            || (GONE.load(Ordering::Relaxed)
                && cause
                    .downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
                    == Some(io::ErrorKind::BrokenPipe))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_marked_broken_pipe_is_a_reader_gone() {
        let gone = marked(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(reader_gone(
            &anyhow::Error::new(gone).context("writing a row")
        ));
        // Another broken pipe (not standard output's), and other errors of standard output.
        assert!(!reader_gone(&anyhow::Error::new(io::Error::from(
            io::ErrorKind::BrokenPipe
        ))));
        let full = marked(io::Error::from(io::ErrorKind::StorageFull));
        assert!(!reader_gone(&anyhow::Error::new(full)));
        // `serde_json` keeps only the kind: a broken pipe counts once standard output's was.
        let json = serde_json::Error::io(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(reader_gone(&anyhow::Error::new(json)));
    }
}
