//! The approval digest: SHA-256 over a canonical rendering of the validated policy, so that
//! comments, whitespace, key order, TOML quoting style and the order of entries in the files
//! never change it, and every semantic change does.
//!
//! # The preimage, exactly (for auditors recomputing it)
//!
//! ```text
//! digest   = lowercase_hex(SHA-256(preimage))
//! preimage = "hirestate-policy-digest/v1\n" + canonical_json(P)
//! ```
//!
//! `P` is the validated policy as the loader builds it (the serde form of
//! [`Policy`](super::Policy)), with the single member `approval.digest` removed and everything
//! else kept: `approval.{version, approvers, date}`, `stages`, `transitions`,
//! `application_created_authority`, `screening_stage`, `initial_stage`, `hired_stage`,
//! `fields`, `targets`, `regions`, `writeback`. Durations appear in seconds (`dwell_sla_secs`,
//! `sla_secs`, …), field types as `{"type": "number", "min": 0.0, "max": 100.0}` and so on.
//! Normalisations the loader applies first: transitions are expanded to one entry per
//! `from → to` pair and sorted by (rank of `from`, `from`, rank of `to`, `to`; unranked stages
//! last); authority lists are sorted in the order ats, screening_vendor, hris, ats_sink,
//! hris_sink, privacy and de-duplicated; region `withhold` lists are sorted and de-duplicated;
//! approvers and enum `values` keep the order written.
//!
//! `canonical_json` is JSON with no insignificant whitespace, object members sorted by the
//! UTF-8 bytes of their names, strings and numbers written as `serde_json` writes them
//! (integers without a fraction, floats in shortest round-trip form such as `100.0`), and
//! absent optional values as `null`. [`canonical_json`] returns exactly this text, so
//! `printf '%s' "hirestate-policy-digest/v1\n$(…)" | sha256sum` can be checked by hand.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::types::Policy;

/// Domain separation and format version of the preimage.
const PREFIX: &str = "hirestate-policy-digest/v1\n";

/// The canonical JSON of `policy` without `approval.digest` (see the module doc).
pub fn canonical_json(policy: &Policy) -> String {
    // Invariant: `Policy` has only string-keyed maps and the loader admits only finite numbers,
    // so serde_json cannot fail on it; `Null` would still give a stable (if useless) digest.
    let mut value = serde_json::to_value(policy).unwrap_or(Value::Null);
    if let Some(approval) = value.get_mut("approval").and_then(Value::as_object_mut) {
        approval.remove("digest");
    }
    let mut out = String::new();
    write_canonical(&value, &mut out);
    out
}

/// The digest the approval block must carry for `policy`'s content.
pub fn compute_digest(policy: &Policy) -> String {
    let mut h = Sha256::new();
    h.update(PREFIX.as_bytes());
    h.update(canonical_json(policy).as_bytes());
    hex::encode(h.finalize())
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            // Sort here rather than trust the map type: serde_json's `preserve_order` feature,
            // enabled by any crate in the build, would otherwise change the digest.
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_members_and_drops_whitespace() {
        let v: Value = serde_json::from_str(r#"{ "b": [1, {"z": null, "a": "x\"y"}], "a": 2.5 }"#)
            .unwrap_or(Value::Null);
        let mut out = String::new();
        write_canonical(&v, &mut out);
        assert_eq!(out, r#"{"a":2.5,"b":[1,{"a":"x\"y","z":null}]}"#);
    }
}
