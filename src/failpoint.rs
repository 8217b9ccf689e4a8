//! Fail points for the recovery tests: `HIRESTATE_FAILPOINTS=name=N,other=M` arms them.
//! [`hit`] kills the process on the N-th pass (SIGABRT via `abort`: no destructor, no flush —
//! as hard as SIGKILL for everything this process holds); [`fires`] instead answers `true` on
//! the N-th pass, for failures the caller then simulates (an ambiguous commit). Unset, a pass
//! costs one relaxed atomic load.

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
    targets: HashMap<String, u64>,
    counts: HashMap<String, AtomicU64>,
}

fn armed() -> &'static Option<Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED.get_or_init(|| {
        let spec = std::env::var("HIRESTATE_FAILPOINTS").ok()?;
        let targets: HashMap<String, u64> = spec
            .split(',')
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.trim().to_owned(), v.trim().parse().ok()?))
            })
            .collect();
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
    let (Some(target), Some(count)) = (a.targets.get(name), a.counts.get(name)) else {
        return false;
    };
    let fired = count.fetch_add(1, Ordering::Relaxed) + 1 == *target;
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
