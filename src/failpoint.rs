//! Fail points for the recovery tests: `HIRESTATE_FAILPOINTS=name=N,other=M` arms them.
//! [`hit`] kills the process on the N-th pass (SIGABRT via `abort`: no destructor, no flush —
//! as hard as SIGKILL for everything this process holds); [`fires`] instead answers `true` on
//! the N-th pass, for failures the caller then simulates (an ambiguous commit). `name=sleep:MS`
//! slows every pass by MS milliseconds instead (a long restore, for the shutdown tests). Unset,
//! a pass costs one relaxed atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The fail points the processor passes through.
pub const AFTER_PRODUCE_BEFORE_COMMIT: &str = "after_produce_before_commit";
pub const AFTER_COMMIT_BEFORE_STORE: &str = "after_commit_before_store";
pub const DURING_RESTORE: &str = "during_restore";
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
}

/// `N` or `sleep:MS`.
fn parse_arm(v: &str) -> Option<Arm> {
    match v.trim().strip_prefix("sleep:") {
        Some(ms) => Some(Arm::Sleep(std::time::Duration::from_millis(
            ms.trim().parse().ok()?,
        ))),
        None => Some(Arm::Pass(v.trim().parse().ok()?)),
    }
}

/// `name=ARM,other=ARM` ([`parse_arm`]); empty entries are skipped.
fn parse_spec(spec: &str) -> Result<HashMap<String, Arm>, String> {
    spec.split(',')
        .filter(|kv| !kv.trim().is_empty())
        .map(|kv| {
            kv.split_once('=')
                .and_then(|(k, v)| Some((k.trim().to_owned(), parse_arm(v)?)))
                .ok_or_else(|| format!("entry {kv:?} is not name=N or name=sleep:MS"))
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
    let Some(a) = armed() else { return false };
    let (Some(arm), Some(count)) = (a.targets.get(name), a.counts.get(name)) else {
        return false;
    };
    let target = match *arm {
        Arm::Pass(n) => n,
        Arm::Sleep(d) => {
            std::thread::sleep(d);
            return false;
        }
    };
    let fired = count.fetch_add(1, Ordering::Relaxed) + 1 == target;
    if fired {
        eprintln!("failpoint {name}: fires (pass {target})");
    }
    fired
}

/// Passes fail point `name`; dies here if this is the armed pass.
pub fn hit(name: &str) {
    if fires(name) {
        std::process::abort();
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
