//! `HiringEvent` (`schemas/avro/HiringEvent.avsc` and the payload records it names) read and
//! written directly, field by field in schema order.

use std::collections::BTreeMap;

use super::{Body, Out};
use crate::codec::avro_value::event::ACK_STATUSES;
use crate::model::{Event, EventKind, SourceSystem, TimerKind};

/// CRC-64-AVRO fingerprint of the `HiringEvent` schema [`read`] is written for.
pub(crate) const FINGERPRINT: [u8; 8] = [0x69, 0x28, 0x23, 0x42, 0xbc, 0x2a, 0x1c, 0xf7];

/// The [`Event`] of a bare `HiringEvent` body, or `None` when the generic path must decide.
pub(crate) fn read(body: &[u8]) -> Option<Event> {
    let mut b = Body::new(body);
    let event_id = b.string()?;
    let candidate_id = b.string()?;
    let application_id = b.string()?;
    let source_system = b.symbol(&SourceSystem::ALL)?;
    let source_principal = b.string()?;
    let occurred_at = b.timestamp()?;
    let signature = b.opt_string()?;
    // `payload` branches in the schema's order.
    let kind = match b.index(7)? {
        0 => EventKind::ApplicationCreated {
            requisition_id: b.string()?,
            region: b.string()?,
        },
        1 => EventKind::StageChanged {
            to_stage: b.string()?,
            reason: b.opt_string()?,
        },
        2 => EventKind::ScreeningCompleted {
            score: b.double()?,
            recommendation: b.string()?,
            rubric_version: b.string()?,
            reviewer_ids: b.strings()?,
            media_url: b.opt_string()?,
            transcript_url: b.opt_string()?,
        },
        3 => EventKind::FieldsAsserted {
            fields: b.field_values::<String, BTreeMap<_, _>>()?,
        },
        4 => EventKind::WritebackAcked {
            command_id: b.string()?,
            status: b.symbol(&ACK_STATUSES)?,
            remote_ref: b.opt_string()?,
            error: b.opt_string()?,
            retryable: b.boolean()?,
        },
        5 => EventKind::ErasureRequested {},
        _ => EventKind::DeadlineReached {
            timer: b.symbol(&TimerKind::ALL)?,
            subject: b.string()?,
            due_at: b.timestamp()?,
            attempt: b.count()?,
        },
    };
    b.end()?;
    Some(Event {
        event_id,
        candidate_id,
        application_id,
        source_system,
        source_principal,
        occurred_at,
        signature,
        kind,
    })
}

/// Appends the `HiringEvent` body of `e` to `out`.
pub(crate) fn write(e: &Event, out: &mut Vec<u8>) -> Option<()> {
    let mut o = Out::new(out);
    o.string(&e.event_id);
    o.string(&e.candidate_id);
    o.string(&e.application_id);
    o.symbol(&SourceSystem::ALL, &e.source_system);
    o.string(&e.source_principal);
    o.timestamp(e.occurred_at);
    o.opt_string(e.signature.as_deref());
    match &e.kind {
        EventKind::ApplicationCreated {
            requisition_id,
            region,
        } => {
            o.index(0);
            o.string(requisition_id);
            o.string(region);
        }
        EventKind::StageChanged { to_stage, reason } => {
            o.index(1);
            o.string(to_stage);
            o.opt_string(reason.as_deref());
        }
        EventKind::ScreeningCompleted {
            score,
            recommendation,
            rubric_version,
            reviewer_ids,
            media_url,
            transcript_url,
        } => {
            o.index(2);
            o.double(*score);
            o.string(recommendation);
            o.string(rubric_version);
            o.strings(reviewer_ids)?;
            o.opt_string(media_url.as_deref());
            o.opt_string(transcript_url.as_deref());
        }
        EventKind::FieldsAsserted { fields } => {
            o.index(3);
            o.field_values(fields.iter())?;
        }
        EventKind::WritebackAcked {
            command_id,
            status,
            remote_ref,
            error,
            retryable,
        } => {
            o.index(4);
            o.string(command_id);
            o.symbol(&ACK_STATUSES, status);
            o.opt_string(remote_ref.as_deref());
            o.opt_string(error.as_deref());
            o.boolean(*retryable);
        }
        EventKind::ErasureRequested {} => o.index(5),
        EventKind::DeadlineReached {
            timer,
            subject,
            due_at,
            attempt,
        } => {
            o.index(6);
            o.symbol(&TimerKind::ALL, timer);
            o.string(subject);
            o.timestamp(*due_at);
            // As the `Value` path writes it: an attempt never reaches i32::MAX (the policy caps
            // attempts), and one that did would be written as i32::MAX.
            o.long(i64::from(i32::try_from(*attempt).unwrap_or(i32::MAX)));
        }
    }
    Some(())
}
