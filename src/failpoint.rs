//! Fail points for the recovery tests: `HIRESTATE_FAILPOINTS=name=N,other=M` arms them.
//! [`hit`] kills the process on the N-th pass (SIGABRT via `abort`: no destructor, no flush —
//! as hard as SIGKILL for everything this process holds); [`fires`] instead answers `true` on
//! the N-th pass, for failures the caller then simulates (an ambiguous commit). `name=sleep:MS`
//! slows every pass by MS milliseconds instead (a long restore, for the shutdown tests).
//! `name=stop:N` makes [`hit`] freeze the whole process on the N-th pass (SIGSTOP to itself,
//! every thread, librdkafka's too: a long pause, a suspended VM) until something sends it
//! SIGCONT; then it carries on from there (the zombie test). Unset, a pass costs one relaxed
//! atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The fail points the processor passes through.
pub const AFTER_PRODUCE_BEFORE_COMMIT: &str = "after_produce_before_commit";
pub const AFTER_COMMIT_BEFORE_STORE: &str = "after_commit_before_store";
pub const DURING_RESTORE: &str = "during_restore";
/// `topics copy-events`: a record sent to the target, its transaction not committed yet.
pub const COPY_AFTER_SEND: &str = "copy_after_send";
/// The commit succeeded, but the processor is told its outcome is unknown.
pub const AMBIGUOUS_AFTER_COMMIT: &str = "ambiguous_after_commit";
/// The commit is never sent, and the processor is told its outcome is unknown.
pub const AMBIGUOUS_INSTEAD_OF_COMMIT: &str = "ambiguous_instead_of_commit";

struct Armed {
    targets: HashMap<String, Arm>,
    counts: HashMap<String, AtomicU64>,
}

/// What an armed fail point does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Arm {
    /// Fires on this pass.
    Pass(u64),
    /// Sleeps this long on every pass.
    Sleep(std::time::Duration),
    /// Fires on this pass; [`hit`] then stops the process instead of killing it.
    Stop(u64),
}

/// `N`, `sleep:MS` or `stop:N`.
fn parse_arm(v: &str) -> Option<Arm> {
    let v = v.trim();
    if let Some(ms) = v.strip_prefix("sleep:") {
        return Some(Arm::Sleep(std::time::Duration::from_millis(
            ms.trim().parse().ok()?,
        )));
    }
    if let Some(n) = v.strip_prefix("stop:") {
        return Some(Arm::Stop(n.trim().parse().ok()?));
    }
    Some(Arm::Pass(v.parse().ok()?))
}

/// `name=ARM,other=ARM` ([`parse_arm`]); empty entries are skipped.
fn parse_spec(spec: &str) -> Result<HashMap<String, Arm>, String> {
    spec.split(',')
        .filter(|kv| !kv.trim().is_empty())
        .map(|kv| {
            kv.split_once('=')
                .and_then(|(k, v)| Some((k.trim().to_owned(), parse_arm(v)?)))
                .ok_or_else(|| format!("entry {kv:?} is not name=N, name=sleep:MS or name=stop:N"))
        })
        .collect()
}

fn armed() -> &'static Option<Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED.get_or_init(|| {
        let spec = std::env::var("HIRESTATE_FAILPOINTS").ok()?;
        // A misspelt arm would leave a recovery test running without its failure.
        let targets = parse_spec(&spec).unwrap_or_else(|e| panic!("HIRESTATE_FAILPOINTS: {e}"));
        let counts = targets
            .keys()
            .map(|k| (k.clone(), AtomicU64::new(0)))
            .collect();
        Some(Armed { targets, counts })
    })
}

/// Passes fail point `name`; `true` on its armed pass.
pub fn fires(name: &str) -> bool {
    passed(name).is_some()
}

/// Passes fail point `name`; the arm when this is its armed pass.
fn passed(name: &str) -> Option<Arm> {
    let a = armed().as_ref()?;
    let (arm, count) = (a.targets.get(name)?, a.counts.get(name)?);
    let target = match *arm {
        Arm::Pass(n) | Arm::Stop(n) => n,
        Arm::Sleep(d) => {
            std::thread::sleep(d);
            return None;
        }
    };
    let fired = count.fetch_add(1, Ordering::Relaxed) + 1 == target;
    if fired {
        eprintln!("failpoint {name}: fires (pass {target})");
    }
    fired.then_some(*arm)
}

/// Passes fail point `name`; on its armed pass, dies here (or, armed `stop:N`, freezes here
/// until SIGCONT, then returns).
pub fn hit(name: &str) {
    match passed(name) {
        Some(Arm::Stop(_)) => {
            let me = rustix::process::getpid();
            if let Err(e) = rustix::process::kill_process(me, rustix::process::Signal::STOP) {
                eprintln!("failpoint {name}: cannot stop the process ({e}); aborting instead");
                std::process::abort();
            }
            eprintln!("failpoint {name}: continued");
        }
        Some(_) => std::process::abort(),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arm_is_a_pass_number_or_a_sleep() {
        assert_eq!(parse_arm("3"), Some(Arm::Pass(3)));
        assert_eq!(
            parse_arm(" sleep:25"),
            Some(Arm::Sleep(std::time::Duration::from_millis(25)))
        );
        assert_eq!(parse_arm("stop:4"), Some(Arm::Stop(4)));
        assert_eq!(parse_arm("stop:"), None);
        assert_eq!(parse_arm("sleep:x"), None);
        assert_eq!(parse_arm("soon"), None);
    }

    #[test]
    fn a_spec_with_a_bad_entry_is_refused_naming_it() {
        let armed = parse_spec("a=2, b=sleep:5,").expect("a good spec");
        assert_eq!(armed.get("a"), Some(&Arm::Pass(2)));
        assert_eq!(
            armed.get("b"),
            Some(&Arm::Sleep(std::time::Duration::from_millis(5)))
        );
        let err = parse_spec("a=2,during_restore=sleep;50").expect_err("a bad entry");
        assert!(err.contains("\"during_restore=sleep;50\""), "{err}");
        assert!(parse_spec("a").is_err());
    }
}
