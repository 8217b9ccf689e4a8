//! The hiring policy as data: the TOML files under `schemas/policy/` (state machine, field
//! dictionary, target mappings, regions, write-back settings, approval) parsed, checked and
//! verified into a [`Policy`] the fold and command derivation read.
//!
//! | file | holds |
//! | --- | --- |
//! | `policy.toml` | `[approval]` (version, approvers, date, digest), `[lifecycle]`, `[writeback]` |
//! | `stages.toml` | `[stage.<name>]`: rank, terminal, dwell SLA, owner |
//! | `transitions.toml` | `[[transition]]`: from (one or a list), to, authority, owner |
//! | `fields.toml` | `[field."<name>"]`: golden source, type and range, class, conflict rule, write-back, owner |
//! | `targets.toml` | `[target.<name>]`: system, remote stage names, remote field keys |
//! | `regions.toml` | `[region.<name>]`: ATS and HRIS target, withheld fields, retention |
//!
//! Invariants: a `Policy` exists only if every file parsed, every check passed and the
//! approval digest matches the content ([`digest`] documents the exact preimage); problems are
//! reported all at once, each as `path:line: message`. Nothing here panics on file content.
//!
//! Layout: `source` reads one file with spans, `parse` turns each file into a draft,
//! `validate` checks across files and assembles, `digest` canonicalises and hashes, `load`
//! ties them together for [`load`] and [`sign`], `diagram` draws the result.

use std::path::PathBuf;

mod diagram;
pub mod digest;
mod duration;
mod error;
mod load;
mod lookup;
mod parse;
pub(crate) mod source;
mod types;
mod validate;

pub use diagram::{diagram, DiagramFormat};
pub use digest::{canonical_json, compute_digest};
pub use duration::{format_duration, parse_duration};
pub use error::{PolicyError, PolicyErrorKind, PolicyErrors};
pub use load::{load, sign};
pub use lookup::{NameMap, Transitions};
pub use types::*;

/// The environment variable that points the processor and the CLI at another policy directory.
pub const POLICY_DIR_ENV: &str = "HIRESTATE_POLICY_DIR";

/// The policy directory: `$HIRESTATE_POLICY_DIR` when set, else the `schemas/policy/` this
/// crate was built from.
pub fn default_dir() -> PathBuf {
    match std::env::var_os(POLICY_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("schemas")
            .join("policy"),
    }
}

/// `hirestate policy check`: everything [`load`] checks, digest included.
///
/// # Errors
/// As [`load`].
pub fn check(dir: &std::path::Path) -> Result<Policy, PolicyErrors> {
    load(dir)
}
