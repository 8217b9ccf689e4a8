//! Decisions × mapping → commands with deterministic ids (DESIGN.md "Commands (outbound)").
//!
//! Invariants:
//! - `command_id` = lowercase hex of the first 16 bytes of
//!   SHA-256(`event_id` 0x1F `op` 0x1F `target`): the same log yields the same ids, and a sink
//!   or an auditor can recompute them. Alerts get ids the same way, with `alert:<kind>` as op.
//! - A write-back goes only to a system that did not itself assert the change, and never
//!   carries a field the application's region withholds. An empty `update_fields` is not sent.
//! - Pure: no clock, no I/O. Commands carry the causing event's `occurred_at`.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::fold::Asserted;
use crate::model::{
    Application, Command, CommandPayload, Event, FieldValue, SourceSystem, TargetSystem,
};
use crate::policy::{FieldSpec, NameMap, Policy};

/// The idempotency key of the command `op` to `target` caused by `event_id`.
pub fn command_id(event_id: &str, op: &str, target: &str) -> String {
    id_hex(event_id, op, target).as_str().to_owned()
}

/// [`command_id`] allocated once, straight into the `Arc` the command and its record share.
fn shared_command_id(event_id: &str, op: &str, target: &str) -> Arc<str> {
    Arc::from(id_hex(event_id, op, target).as_str())
}

/// The id's 32 hex digits, on the stack: `hex::encode` went through a char iterator and a
/// growing string, a few per cent of the fold.
fn id_hex(event_id: &str, op: &str, target: &str) -> HexId {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut h = Sha256::new();
    h.update(event_id.as_bytes());
    h.update([0x1f]);
    h.update(op.as_bytes());
    h.update([0x1f]);
    h.update(target.as_bytes());
    let mut id = [0u8; 32];
    for (i, b) in h.finalize()[..16].iter().enumerate() {
        id[2 * i] = HEX[usize::from(b >> 4)];
        id[2 * i + 1] = HEX[usize::from(b & 0x0f)];
    }
    HexId(id)
}

/// 32 lowercase hex digits.
struct HexId([u8; 32]);

impl HexId {
    fn as_str(&self) -> &str {
        // Only `id_hex` builds one, from ASCII hex digits alone: always UTF-8.
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }
}

/// What an applied (or stale-but-recorded) event changed, as far as write-back cares.
#[derive(Debug, Default)]
pub struct Effects<'a> {
    /// The stage the application moved into, if it moved.
    pub moved_to: Option<&'a str>,
    /// The dictionary fields recorded by this event, with their values and dictionary entries.
    pub fields: &'a [Asserted<'a>],
}

/// The commands `event`'s `effects` on `app` require, in a fixed order: `move_stage`,
/// `create_pre_hire`, then `update_fields` per system (ATS before HRIS). Each is built in its
/// `Arc` (the outcome and the projection's resend share it), so no vector of bare commands is
/// built and copied over.
pub fn commands(
    event: &Event,
    app: &Application,
    effects: &Effects<'_>,
    policy: &Policy,
) -> Vec<Arc<Command>> {
    let mut out = Vec::new();
    // The fold only applies events for applications whose region the policy knows.
    let Some(region) = policy.regions.get(&app.region) else {
        return out;
    };
    let source = event.source_system;
    let new_command = |target: &Arc<str>, system: TargetSystem, payload: CommandPayload| {
        Arc::new(Command {
            command_id: shared_command_id(&event.event_id, payload.op().as_str(), target),
            target: Arc::clone(target),
            system,
            candidate_id: event.candidate_id.clone(),
            application_id: app.application_id.clone(),
            causing_event_id: event.event_id.clone(),
            occurred_at: event.occurred_at,
            policy_version: Arc::clone(&policy.approval.version),
            policy_digest: Arc::clone(&policy.approval.digest),
            attempt: 1,
            payload,
        })
    };

    if let Some(stage) = effects.moved_to {
        if source != SourceSystem::Ats {
            if let Some(target) = policy.targets.get(&region.ats_target) {
                let remote = target
                    .stage_names
                    .get(stage)
                    .cloned()
                    .unwrap_or_else(|| stage.to_owned());
                out.push(new_command(
                    &target.name,
                    TargetSystem::Ats,
                    CommandPayload::MoveStage {
                        stage: stage.to_owned(),
                        remote_stage: remote,
                    },
                ));
            }
        }
        if stage == policy.hired_stage && source != SourceSystem::Hris {
            if let Some(target) = policy.targets.get(&region.hris_target) {
                let fields = mapped_fields(
                    app.fields
                        .iter()
                        .map(|(k, v)| (&**k, v, policy.fields.get(k))),
                    TargetSystem::Hris,
                    &target.field_keys,
                    &region.withhold,
                );
                out.push(new_command(
                    &target.name,
                    TargetSystem::Hris,
                    CommandPayload::CreatePreHire {
                        requisition_id: app.requisition_id.clone(),
                        fields,
                    },
                ));
            }
        }
    }

    for (system, target_name) in [
        (TargetSystem::Ats, &region.ats_target),
        (TargetSystem::Hris, &region.hris_target),
    ] {
        if source == system.as_source() || effects.fields.is_empty() {
            continue;
        }
        let Some(target) = policy.targets.get(target_name) else {
            continue;
        };
        let fields = mapped_fields(
            effects
                .fields
                .iter()
                .map(|f| (&**f.name, f.value.as_ref(), Some(f.spec))),
            system,
            &target.field_keys,
            &region.withhold,
        );
        if !fields.is_empty() {
            out.push(new_command(
                &target.name,
                system,
                CommandPayload::UpdateFields { fields },
            ));
        }
    }
    out
}

/// The fields among `fields` (with their dictionary entries) that write back to `system`, not
/// withheld by the region, under the target's keys (a field the mapping does not name keeps its
/// dictionary name).
fn mapped_fields<'a>(
    fields: impl Iterator<Item = (&'a str, &'a FieldValue, Option<&'a FieldSpec>)>,
    system: TargetSystem,
    keys: &NameMap<String>,
    withhold: &[String],
) -> BTreeMap<String, FieldValue> {
    fields
        .filter(|(name, _, spec)| {
            spec.is_some_and(|spec| spec.writeback == Some(system))
                && !withhold.iter().any(|w| w == name)
        })
        // Inserted one by one: `collect` would sort through a temporary vector, an allocation
        // per command for the handful of fields one event carries.
        .fold(BTreeMap::new(), |mut mapped, (name, value, _)| {
            let key = keys.get(name).cloned().unwrap_or_else(|| name.to_owned());
            mapped.insert(key, value.clone());
            mapped
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CommandOp;

    #[test]
    fn command_id_matches_an_independent_sha256() {
        // Preimage "e1\x1fmove_stage\x1fgreenhouse"; digest computed with coreutils:
        // printf 'e1\x1fmove_stage\x1fgreenhouse' | sha256sum | cut -c1-32
        assert_eq!(
            command_id("e1", "move_stage", "greenhouse"),
            EXPECTED_E1_MOVE_STAGE_GREENHOUSE
        );
        assert_ne!(
            command_id("e1", "move_stage", "lever"),
            command_id("e1", "move_stage", "greenhouse")
        );
        assert_eq!(CommandOp::MoveStage.as_str(), "move_stage");
    }

    const EXPECTED_E1_MOVE_STAGE_GREENHOUSE: &str = "91fb123dd9920bb327965ede60873eb1";
}
