//! The processor's clock, injected: `wall` (the default), `fixed:<RFC 3339>` (a frozen time,
//! e.g. to keep timers from firing), or `file:<path>` (the time written in a file, read at every
//! tick: how tests drive the clock of a processor running in another process).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use crate::model::Timestamp;

/// Now, as the processor's timers see it.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> Timestamp {
        Timestamp(chrono::Utc::now().timestamp_micros())
    }
}

/// Always the same time.
#[derive(Debug)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// The RFC 3339 time in a file, re-read at every call. A missing or unreadable file reads as
/// the beginning of time (nothing fires) and is logged once per distinct problem (the clock is
/// read at every idle tick).
#[derive(Debug, Default)]
pub struct FileClock {
    pub path: PathBuf,
    last_problem: Mutex<Option<String>>,
}

impl FileClock {
    pub fn new(path: PathBuf) -> FileClock {
        FileClock {
            path,
            last_problem: Mutex::default(),
        }
    }
}

impl Clock for FileClock {
    fn now(&self) -> Timestamp {
        let read = std::fs::read_to_string(&self.path)
            .map_err(|e| e.to_string())
            .and_then(|s| Timestamp::parse_rfc3339(s.trim()));
        let mut last = self
            .last_problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match read {
            Ok(t) => {
                *last = None;
                t
            }
            Err(why) => {
                if last.as_deref() != Some(why.as_str()) {
                    tracing::warn!(file = %self.path.display(), %why, "clock file unreadable; no timer fires");
                    *last = Some(why);
                }
                Timestamp(i64::MIN)
            }
        }
    }
}

/// The clock a `clock` setting names.
///
/// # Errors
/// What is wrong with `spec`, naming the accepted forms.
pub fn from_spec(spec: &str) -> Result<Arc<dyn Clock>, String> {
    match spec.split_once(':') {
        _ if spec == "wall" => Ok(Arc::new(WallClock)),
        Some(("fixed", t)) => Timestamp::parse_rfc3339(t)
            .map(|t| Arc::new(FixedClock(t)) as Arc<dyn Clock>)
            .map_err(|e| format!("clock {spec:?}: the time is not RFC 3339: {e}")),
        Some(("file", path)) if !path.is_empty() => Ok(Arc::new(FileClock::new(path.into()))),
        _ => Err(format!(
            "clock {spec:?} is not one of: wall, fixed:<RFC 3339 time>, file:<path>"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_say_what_is_accepted() {
        assert!(from_spec("wall").is_ok());
        let fixed = from_spec("fixed:2026-11-28T10:00:00Z").unwrap();
        assert_eq!(
            fixed.now(),
            Timestamp::parse_rfc3339("2026-11-28T10:00:00Z").unwrap()
        );
        let e = from_spec("fixed:yesterday").err().unwrap();
        assert!(e.contains("RFC 3339"), "{e}");
        let e = from_spec("sundial").err().unwrap();
        assert!(e.contains("wall, fixed:"), "{e}");
    }

    #[test]
    fn a_file_clock_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("now");
        let clock = from_spec(&format!("file:{}", path.display())).unwrap();
        assert_eq!(clock.now(), Timestamp(i64::MIN), "no file: nothing fires");
        std::fs::write(&path, "2026-11-28T10:00:00Z\n").unwrap();
        let t1 = clock.now();
        std::fs::write(&path, "2026-11-28T11:00:00Z").unwrap();
        assert_eq!(clock.now().secs_since(t1), 3600.0);
    }
}
