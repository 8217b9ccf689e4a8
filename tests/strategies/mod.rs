//! proptest strategies the codec tests share (`mod strategies;` in each).
#![allow(dead_code)]

use std::collections::BTreeMap;

use proptest::collection::vec;
use proptest::prelude::*;

use hirestate::model::{Command, CommandPayload, FieldValue, TargetSystem, Timestamp};

/// Every f64 but NaN (NaN != NaN; its bits are checked in the unit tests).
pub fn number() -> impl Strategy<Value = f64> {
    use proptest::num::f64::{INFINITE, NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO | INFINITE
}

/// Any field value, its strings drawn from `text`.
pub fn field_value(text: BoxedStrategy<String>) -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        any::<bool>().prop_map(FieldValue::Bool),
        number().prop_map(FieldValue::Number),
        text.clone().prop_map(FieldValue::Text),
        vec(text, 0..4).prop_map(FieldValue::List),
    ]
}

/// ATS or HRIS.
pub fn target_system() -> impl Strategy<Value = TargetSystem> {
    prop::sample::select(vec![TargetSystem::Ats, TargetSystem::Hris])
}

/// Any command payload, its strings drawn from `text` and its fields from `fields`.
pub fn payload(
    text: BoxedStrategy<String>,
    fields: BoxedStrategy<BTreeMap<String, FieldValue>>,
) -> impl Strategy<Value = CommandPayload> {
    prop_oneof![
        (text.clone(), text.clone()).prop_map(|(stage, remote_stage)| CommandPayload::MoveStage {
            stage,
            remote_stage
        }),
        fields
            .clone()
            .prop_map(|fields| CommandPayload::UpdateFields { fields }),
        (text, fields).prop_map(|(requisition_id, fields)| CommandPayload::CreatePreHire {
            requisition_id,
            fields
        }),
    ]
}

/// Any command: its id drawn from `command_id`, its other strings from `text`, its payload's
/// fields from `fields`.
pub fn command(
    command_id: BoxedStrategy<String>,
    text: BoxedStrategy<String>,
    fields: BoxedStrategy<BTreeMap<String, FieldValue>>,
) -> impl Strategy<Value = Command> {
    (
        (command_id, text.clone(), target_system()),
        (text.clone(), text.clone(), text.clone(), any::<i64>()),
        (text.clone(), text.clone(), any::<u32>()),
        payload(text, fields),
    )
        .prop_map(
            |(
                (command_id, target, system),
                (candidate_id, application_id, causing_event_id, at),
                (policy_version, policy_digest, attempt),
                payload,
            )| Command {
                command_id: command_id.into(),
                target: target.into(),
                system,
                candidate_id,
                application_id: application_id.into(),
                causing_event_id,
                occurred_at: Timestamp(at),
                policy_version: policy_version.into(),
                policy_digest: policy_digest.into(),
                attempt,
                payload,
            },
        )
}
