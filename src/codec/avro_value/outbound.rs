//! [`Command`], [`Rejection`] and [`Alert`] ⇄ their Avro records. Enum symbol lists here
//! follow the `.avsc` files' symbol order.

use apache_avro::types::Value;

use super::event::source_system;
use super::{count, field_values, opt_string, position, record, string, symbol, timestamp, Fields};
use crate::codec::CodecError;
use crate::model::{
    Alert, AlertKind, Command, CommandOp, CommandPayload, RejectReason, Rejection, SourceSystem,
    TargetSystem,
};

pub(crate) const TARGET_SYSTEMS: [TargetSystem; 2] = [TargetSystem::Ats, TargetSystem::Hris];
pub(crate) const COMMAND_OPS: [CommandOp; 3] = [
    CommandOp::MoveStage,
    CommandOp::UpdateFields,
    CommandOp::CreatePreHire,
];
pub(crate) const ALERT_KINDS: [AlertKind; 5] = [
    AlertKind::Divergence,
    AlertKind::Stuck,
    AlertKind::WritebackStuck,
    AlertKind::WritebackFailed,
    AlertKind::WritebackRejected,
];

/// The `Command` value of `c`.
pub(crate) fn command_to_value(c: &Command) -> Result<Value, CodecError> {
    let (branch, payload) = match &c.payload {
        CommandPayload::MoveStage {
            stage,
            remote_stage,
        } => (
            0,
            record(vec![
                ("stage", string(stage)),
                ("remote_stage", string(remote_stage)),
            ]),
        ),
        CommandPayload::UpdateFields { fields } => {
            (1, record(vec![("fields", field_values(fields))]))
        }
        CommandPayload::CreatePreHire {
            requisition_id,
            fields,
        } => (
            2,
            record(vec![
                ("requisition_id", string(requisition_id)),
                ("fields", field_values(fields)),
            ]),
        ),
    };
    Ok(record(vec![
        ("command_id", string(&c.command_id)),
        ("target", string(&c.target)),
        (
            "system",
            symbol(position(&TARGET_SYSTEMS, &c.system), c.system.as_str()),
        ),
        ("candidate_id", string(&c.candidate_id)),
        ("application_id", string(&c.application_id)),
        ("causing_event_id", string(&c.causing_event_id)),
        ("occurred_at", timestamp(c.occurred_at)),
        ("policy_version", string(&c.policy_version)),
        ("policy_digest", string(&c.policy_digest)),
        ("attempt", count("Command", "attempt", c.attempt)?),
        ("payload", Value::Union(branch, Box::new(payload))),
    ]))
}

/// The [`Command`] of a `Command` value.
pub(crate) fn command_from_value(v: Value) -> Result<Command, CodecError> {
    let mut f = Fields::open("Command", v)?;
    let (branch, payload) = f.branch("payload")?;
    let payload = match branch {
        0 => {
            let mut p = Fields::open("MoveStage", payload)?;
            CommandPayload::MoveStage {
                stage: p.string("stage")?,
                remote_stage: p.string("remote_stage")?,
            }
        }
        1 => CommandPayload::UpdateFields {
            fields: Fields::open("UpdateFields", payload)?.field_values("fields")?,
        },
        2 => {
            let mut p = Fields::open("CreatePreHire", payload)?;
            CommandPayload::CreatePreHire {
                requisition_id: p.string("requisition_id")?,
                fields: p.field_values("fields")?,
            }
        }
        n => {
            return Err(CodecError::model(
                "Command",
                "payload",
                format!("union branch {n} is not a command op"),
            ))
        }
    };
    Ok(Command {
        command_id: f.string("command_id")?.into(),
        target: f.string("target")?.into(),
        system: f.parsed("system", |s| {
            TARGET_SYSTEMS.into_iter().find(|t| t.as_str() == s)
        })?,
        candidate_id: f.string("candidate_id")?,
        application_id: f.string("application_id")?.into(),
        causing_event_id: f.string("causing_event_id")?,
        occurred_at: f.timestamp("occurred_at")?,
        policy_version: f.string("policy_version")?.into(),
        policy_digest: f.string("policy_digest")?.into(),
        attempt: f.count("attempt")?,
        payload,
    })
}

/// The `Rejection` value of `r`.
pub(crate) fn rejection_to_value(r: &Rejection) -> Value {
    record(vec![
        ("event_id", string(&r.event_id)),
        ("candidate_id", string(&r.candidate_id)),
        ("application_id", string(&r.application_id)),
        ("source_system", source_system(r.source_system)),
        ("source_principal", string(&r.source_principal)),
        ("kind", string(&r.kind)),
        (
            "reason",
            symbol(position(&RejectReason::ALL, &r.reason), r.reason.as_str()),
        ),
        ("detail", string(&r.detail)),
        ("stage", opt_string(&r.stage)),
        ("occurred_at", timestamp(r.occurred_at)),
        ("policy_version", string(&r.policy_version)),
    ])
}

/// The [`Rejection`] of a `Rejection` value.
pub(crate) fn rejection_from_value(v: Value) -> Result<Rejection, CodecError> {
    let mut f = Fields::open("Rejection", v)?;
    Ok(Rejection {
        event_id: f.string("event_id")?,
        candidate_id: f.string("candidate_id")?,
        application_id: f.string("application_id")?,
        source_system: f.parsed("source_system", SourceSystem::parse)?,
        source_principal: f.string("source_principal")?,
        kind: f.string("kind")?,
        reason: f.parsed("reason", RejectReason::parse)?,
        detail: f.string("detail")?,
        stage: f.opt_string("stage")?,
        occurred_at: f.timestamp("occurred_at")?,
        policy_version: f.string("policy_version")?,
    })
}

/// The `Alert` value of `a`.
pub(crate) fn alert_to_value(a: &Alert) -> Value {
    record(vec![
        ("alert_id", string(&a.alert_id)),
        (
            "kind",
            symbol(position(&ALERT_KINDS, &a.kind), a.kind.as_str()),
        ),
        ("owner", string(&a.owner)),
        ("candidate_id", string(&a.candidate_id)),
        ("application_id", string(&a.application_id)),
        ("event_id", string(&a.event_id)),
        ("detail", string(&a.detail)),
        ("occurred_at", timestamp(a.occurred_at)),
    ])
}

/// The [`Alert`] of an `Alert` value.
pub(crate) fn alert_from_value(v: Value) -> Result<Alert, CodecError> {
    let mut f = Fields::open("Alert", v)?;
    Ok(Alert {
        alert_id: f.string("alert_id")?,
        kind: f.parsed("kind", |s| {
            ALERT_KINDS.into_iter().find(|k| k.as_str() == s)
        })?,
        owner: f.string("owner")?,
        candidate_id: f.string("candidate_id")?,
        application_id: f.string("application_id")?,
        event_id: f.string("event_id")?,
        detail: f.string("detail")?,
        occurred_at: f.timestamp("occurred_at")?,
    })
}
