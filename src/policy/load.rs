//! Loading and signing a policy directory: parse every file, check across files, then verify
//! (load) or recompute and write (sign) the approval digest.
//!
//! Invariant: [`load`] returns a `Policy` only when every check passed AND the approval digest
//! matches the content; [`sign`] writes the files only when every check except the digest passed,
//! and touches nothing in them but the `[approval]` values it sets (comments and layout stay).

use std::path::Path;

use toml_edit::{DocumentMut, Item, Table, TableLike, Value};

use super::digest::compute_digest;
use super::error::{Loc, PolicyErrorKind as K, PolicyErrors, Problems};
use super::parse::{parse_all, ApprovalDraft, POLICY_FILE};
use super::source::At;
use super::types::{Approval, Policy};
use super::validate::assemble;

/// Approval values given on the command line instead of (or replacing) the file's.
#[derive(Debug, Default)]
struct Overrides<'a> {
    version: Option<&'a str>,
    approvers: Option<Vec<String>>,
    date: Option<&'a str>,
}

/// Loads, validates and verifies the policy in `dir` (the files of `schemas/policy/`).
///
/// # Errors
/// Every problem found, each with file, line and message: TOML syntax, unknown keys, wrong
/// types, unknown stages/systems/fields/targets, unreachable stages, duplicate transitions,
/// bad field types or ranges, incomplete mappings or regions, bad durations, and a missing
/// (unsigned) or non-matching (tampered) approval digest.
pub fn load(dir: &Path) -> Result<Policy, PolicyErrors> {
    let mut p = Problems::default();
    let drafts = parse_all(dir, &mut p);
    let (approval, digest_at) = match &drafts.policy {
        Some(f) => {
            let approval =
                complete_approval(&f.approval, &f.path, &Overrides::default(), true, &mut p);
            let at = f.approval.digest.clone();
            (approval, at)
        }
        None => (None, None),
    };
    let Some(policy) = assemble(drafts, approval, &mut p) else {
        return Err(p.into_errors());
    };
    let computed = compute_digest(&policy);
    if *computed != *policy.approval.digest {
        let loc = digest_at.map_or_else(|| Loc::new(&dir.join(POLICY_FILE), 1), |d| d.loc);
        p.push(
            K::DigestMismatch,
            &loc,
            format!(
                "[approval] `digest` does not match the policy content (the file says {}, the content hashes to {computed}): the policy changed after it was approved; have the change approved and run `hirestate policy sign`",
                policy.approval.digest
            ),
        );
    }
    p.finish(policy)
}

/// Validates the policy in `dir` without refusing a stale digest, sets the approval's
/// `version`, `approvers` and `date` where given, recomputes the digest and writes them into the
/// `[approval]` block of `policy.toml` in place. Returns the new digest.
///
/// # Errors
/// Every problem [`load`] would report except the digest ones, plus a missing approval value
/// that was not given, and a failure to write the file.
pub fn sign(
    dir: &Path,
    version: Option<&str>,
    approvers: Option<Vec<String>>,
    date: Option<&str>,
) -> Result<String, PolicyErrors> {
    let mut p = Problems::default();
    let overrides = Overrides {
        version,
        approvers,
        date,
    };
    let drafts = parse_all(dir, &mut p);
    let approval = drafts
        .policy
        .as_ref()
        .and_then(|f| complete_approval(&f.approval, &f.path, &overrides, false, &mut p));
    let Some(policy) = assemble(drafts, approval, &mut p) else {
        return Err(p.into_errors());
    };
    let digest = compute_digest(&policy);
    let path = dir.join(POLICY_FILE);
    if let Err(msg) = write_approval(&path, &policy.approval, &digest) {
        p.push(K::Io, &Loc::new(&path, 1), msg);
        return Err(p.into_errors());
    }
    Ok(digest)
}

/// The approval block with overrides applied; `verify` demands a digest (load), otherwise the
/// digest is left empty for the signer to fill in.
fn complete_approval(
    d: &ApprovalDraft,
    path: &Path,
    ov: &Overrides<'_>,
    verify: bool,
    p: &mut Problems,
) -> Option<Approval> {
    let header = d.loc.clone().unwrap_or_else(|| Loc::new(path, 1));
    if verify && d.loc.is_none() {
        p.push(
            K::Unsigned,
            &header,
            "the policy is unsigned: there is no [approval] block (add version, approvers and date, then run `hirestate policy sign`)",
        );
        return None;
    }
    let missing = |key: &str, p: &mut Problems| {
        p.push(
            K::MissingKey,
            &header,
            format!("[approval]: missing required key `{key}`"),
        );
    };
    let pick = |o: Option<&str>, f: &Option<At<String>>| -> Option<At<String>> {
        match o {
            Some(v) => Some(At {
                value: v.to_string(),
                loc: header.clone(),
            }),
            None => f.clone(),
        }
    };

    let version = pick(ov.version, &d.version);
    if version.is_none() {
        missing("version", p);
    }
    let approvers = match (&ov.approvers, &d.approvers) {
        (Some(a), _) => Some(At {
            value: a
                .iter()
                .map(|s| At {
                    value: s.clone(),
                    loc: header.clone(),
                })
                .collect(),
            loc: header.clone(),
        }),
        (None, a) => a.clone(),
    };
    let approvers = match approvers {
        None => {
            missing("approvers", p);
            None
        }
        Some(a) if a.value.is_empty() || a.value.iter().any(|x| x.value.trim().is_empty()) => {
            p.push(
                K::InvalidValue,
                &a.loc,
                "[approval]: `approvers` must name at least one approver, none of them empty",
            );
            None
        }
        Some(a) => Some(a.value.into_iter().map(|x| x.value).collect::<Vec<_>>()),
    };
    let date = pick(ov.date, &d.date);
    let date = match date {
        None => {
            missing("date", p);
            None
        }
        Some(dt) if !is_date(&dt.value) => {
            p.push(
                K::InvalidValue,
                &dt.loc,
                format!(
                    "[approval]: `date` must be a calendar date YYYY-MM-DD, found \"{}\"",
                    dt.value
                ),
            );
            None
        }
        Some(dt) => Some(dt.value),
    };
    let digest = if verify {
        match &d.digest {
            Some(dg) if !dg.value.trim().is_empty() => Some(dg.value.clone()),
            _ => {
                p.push(
                    K::Unsigned,
                    &header,
                    "the policy is unsigned: [approval] has no `digest` (run `hirestate policy sign`)",
                );
                None
            }
        }
    } else {
        Some(String::new())
    };
    Some(Approval {
        version: version?.value.into(),
        approvers: approvers?,
        date: date?,
        digest: digest?.into(),
    })
}

fn is_date(s: &str) -> bool {
    s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

/// Rewrites `[approval]` in `path` with `approval`'s values and `digest`, keeping every other
/// byte of the file (comments, layout, the decoration around each value).
fn write_approval(path: &Path, approval: &Approval, digest: &str) -> Result<(), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read policy file: {e}"))?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("cannot edit policy file: {e}"))?;
    if !doc.contains_key("approval") {
        doc.insert("approval", Item::Table(Table::new()));
    }
    let Some(table) = doc.get_mut("approval").and_then(Item::as_table_like_mut) else {
        return Err("cannot edit policy file: `approval` is not a table".into());
    };
    set_value(table, "version", Value::from(&*approval.version));
    let approvers: toml_edit::Array = approval.approvers.iter().map(String::as_str).collect();
    // Keep the written array as is when it already says the same (its layout is a human's).
    let same = table
        .get("approvers")
        .and_then(Item::as_array)
        .is_some_and(|a| {
            a.iter()
                .map(|v| v.as_str())
                .eq(approval.approvers.iter().map(|s| Some(s.as_str())))
        });
    if !same {
        set_value(table, "approvers", Value::Array(approvers));
    }
    set_value(table, "date", Value::from(approval.date.as_str()));
    set_value(table, "digest", Value::from(digest));

    // Write next to the file, then rename: a crash never leaves a half-written policy.
    let tmp = path.with_extension("toml.signing");
    std::fs::write(&tmp, doc.to_string()).map_err(|e| format!("cannot write policy file: {e}"))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace policy file: {e}"))
}

/// Sets `key` to `v`, keeping the old value's surrounding whitespace and trailing comment, and
/// leaving the value untouched when it already says the same.
fn set_value(table: &mut dyn TableLike, key: &str, mut v: Value) {
    match table.get_mut(key) {
        Some(Item::Value(old)) => {
            if old.as_str().is_some() && old.as_str() == v.as_str() {
                return;
            }
            *v.decor_mut() = old.decor().clone();
            *old = v;
        }
        _ => {
            table.insert(key, Item::Value(v));
        }
    }
}
