//! [`Event`] ⇄ the `HiringEvent` envelope: common fields plus a `payload` union with one record
//! per [`EventKind`], in the branch order of `schemas/avro/HiringEvent.avsc`.

use apache_avro::types::Value;

use super::{
    field_values, opt_string, position, record, string, strings, symbol, timestamp, Fields,
};
use crate::codec::CodecError;
use crate::model::{AckStatus, Event, EventKind, SourceSystem, TimerKind};

/// `payload` branch order in `HiringEvent.avsc`.
const KINDS: [&str; 7] = [
    "ApplicationCreated",
    "StageChanged",
    "ScreeningCompleted",
    "FieldsAsserted",
    "WritebackAcked",
    "ErasureRequested",
    "DeadlineReached",
];

pub(crate) const ACK_STATUSES: [AckStatus; 3] =
    [AckStatus::Confirmed, AckStatus::Failed, AckStatus::Rejected];

pub(crate) fn source_system(s: SourceSystem) -> Value {
    symbol(position(&SourceSystem::ALL, &s), s.as_str())
}

/// The `HiringEvent` value of `e`.
pub(crate) fn to_value(e: &Event) -> Value {
    let (branch, payload) = match &e.kind {
        EventKind::ApplicationCreated {
            requisition_id,
            region,
        } => (
            0,
            record(vec![
                ("requisition_id", string(requisition_id)),
                ("region", string(region)),
            ]),
        ),
        EventKind::StageChanged { to_stage, reason } => (
            1,
            record(vec![
                ("to_stage", string(to_stage)),
                ("reason", opt_string(reason)),
            ]),
        ),
        EventKind::ScreeningCompleted {
            score,
            recommendation,
            rubric_version,
            reviewer_ids,
            media_url,
            transcript_url,
        } => (
            2,
            record(vec![
                ("score", Value::Double(*score)),
                ("recommendation", string(recommendation)),
                ("rubric_version", string(rubric_version)),
                ("reviewer_ids", strings(reviewer_ids)),
                ("media_url", opt_string(media_url)),
                ("transcript_url", opt_string(transcript_url)),
            ]),
        ),
        EventKind::FieldsAsserted { fields } => (3, record(vec![("fields", field_values(fields))])),
        EventKind::WritebackAcked {
            command_id,
            status,
            remote_ref,
            error,
            retryable,
        } => (
            4,
            record(vec![
                ("command_id", string(command_id)),
                (
                    "status",
                    symbol(position(&ACK_STATUSES, status), status.as_str()),
                ),
                ("remote_ref", opt_string(remote_ref)),
                ("error", opt_string(error)),
                ("retryable", Value::Boolean(*retryable)),
            ]),
        ),
        EventKind::ErasureRequested {} => (5, record(vec![])),
        EventKind::DeadlineReached {
            timer,
            subject,
            due_at,
            attempt,
        } => (
            6,
            record(vec![
                (
                    "timer",
                    symbol(position(&TimerKind::ALL, timer), timer.as_str()),
                ),
                ("subject", string(subject)),
                ("due_at", timestamp(*due_at)),
                // An attempt number never reaches i32::MAX (the policy caps attempts).
                (
                    "attempt",
                    Value::Int(i32::try_from(*attempt).unwrap_or(i32::MAX)),
                ),
            ]),
        ),
    };
    record(vec![
        ("event_id", string(&e.event_id)),
        ("candidate_id", string(&e.candidate_id)),
        ("application_id", string(&e.application_id)),
        ("source_system", source_system(e.source_system)),
        ("source_principal", string(&e.source_principal)),
        ("occurred_at", timestamp(e.occurred_at)),
        ("signature", opt_string(&e.signature)),
        ("payload", Value::Union(branch, Box::new(payload))),
    ])
}

/// The [`Event`] of a `HiringEvent` value (resolved to the reader schema).
pub(crate) fn from_value(v: Value) -> Result<Event, CodecError> {
    let mut f = Fields::open("HiringEvent", v)?;
    let (branch, payload) = f.branch("payload")?;
    let kind = match KINDS.get(branch as usize) {
        Some(name) => kind_from(name, payload)?,
        None => {
            return Err(CodecError::model(
                f.record(),
                "payload",
                format!("union branch {branch} is not an event kind"),
            ))
        }
    };
    Ok(Event {
        event_id: f.string("event_id")?,
        candidate_id: f.string("candidate_id")?,
        application_id: f.string("application_id")?,
        source_system: f.parsed("source_system", SourceSystem::parse)?,
        source_principal: f.string("source_principal")?,
        occurred_at: f.timestamp("occurred_at")?,
        signature: f.opt_string("signature")?,
        kind,
    })
}

fn kind_from(name: &'static str, v: Value) -> Result<EventKind, CodecError> {
    let mut f = Fields::open(name, v)?;
    Ok(match name {
        "ApplicationCreated" => EventKind::ApplicationCreated {
            requisition_id: f.string("requisition_id")?,
            region: f.string("region")?,
        },
        "StageChanged" => EventKind::StageChanged {
            to_stage: f.string("to_stage")?,
            reason: f.opt_string("reason")?,
        },
        "ScreeningCompleted" => EventKind::ScreeningCompleted {
            score: f.double("score")?,
            recommendation: f.string("recommendation")?,
            rubric_version: f.string("rubric_version")?,
            reviewer_ids: f.strings("reviewer_ids")?,
            media_url: f.opt_string("media_url")?,
            transcript_url: f.opt_string("transcript_url")?,
        },
        "FieldsAsserted" => EventKind::FieldsAsserted {
            fields: f.field_values("fields")?,
        },
        "WritebackAcked" => EventKind::WritebackAcked {
            command_id: f.string("command_id")?,
            status: f.parsed("status", |s| {
                ACK_STATUSES.into_iter().find(|a| a.as_str() == s)
            })?,
            remote_ref: f.opt_string("remote_ref")?,
            error: f.opt_string("error")?,
            retryable: f.boolean("retryable")?,
        },
        "DeadlineReached" => EventKind::DeadlineReached {
            timer: f.parsed("timer", |s| {
                TimerKind::ALL.into_iter().find(|t| t.as_str() == s)
            })?,
            subject: f.string("subject")?,
            due_at: f.timestamp("due_at")?,
            attempt: f.count("attempt")?,
        },
        _ => EventKind::ErasureRequested {},
    })
}
