//! `Command`, `Rejection` and `Alert` (`schemas/avro/`) written directly, field by field in
//! schema order; enum symbols from the same lists the `Value` path uses.

use super::Out;
use crate::codec::avro_value::outbound::{ALERT_KINDS, TARGET_SYSTEMS};
use crate::model::{Alert, Command, CommandPayload, RejectReason, Rejection, SourceSystem};

/// CRC-64-AVRO fingerprints of the schemas written here.
pub(crate) const COMMAND: [u8; 8] = [0x8d, 0x90, 0xba, 0xce, 0x12, 0xa0, 0xc2, 0xe7];
pub(crate) const REJECTION: [u8; 8] = [0xb3, 0x0c, 0x13, 0xcf, 0x19, 0xb4, 0x38, 0x93];
pub(crate) const ALERT: [u8; 8] = [0xca, 0x2d, 0x67, 0x90, 0xad, 0x28, 0xaa, 0xda];

/// Appends the `Command` body of `c`; `None` for an attempt above `i32::MAX`.
pub(crate) fn write_command(c: &Command, out: &mut Vec<u8>) -> Option<()> {
    command(&mut Out::new(out), c)
}

/// A `Command` record, also the branch of a snapshot's `resend`.
pub(super) fn command(o: &mut Out<'_>, c: &Command) -> Option<()> {
    o.string(&c.command_id);
    o.string(&c.target);
    o.symbol(&TARGET_SYSTEMS, &c.system);
    o.string(&c.candidate_id);
    o.string(&c.application_id);
    o.string(&c.causing_event_id);
    o.timestamp(c.occurred_at);
    o.string(&c.policy_version);
    o.string(&c.policy_digest);
    o.count(c.attempt)?;
    match &c.payload {
        CommandPayload::MoveStage {
            stage,
            remote_stage,
        } => {
            o.index(0);
            o.string(stage);
            o.string(remote_stage);
        }
        CommandPayload::UpdateFields { fields } => {
            o.index(1);
            o.field_values(fields.iter())?;
        }
        CommandPayload::CreatePreHire {
            requisition_id,
            fields,
        } => {
            o.index(2);
            o.string(requisition_id);
            o.field_values(fields.iter())?;
        }
    }
    Some(())
}

/// Appends the `Rejection` body of `r`.
pub(crate) fn write_rejection(r: &Rejection, out: &mut Vec<u8>) -> Option<()> {
    let mut o = Out::new(out);
    o.string(&r.event_id);
    o.string(&r.candidate_id);
    o.string(&r.application_id);
    o.symbol(&SourceSystem::ALL, &r.source_system);
    o.string(&r.source_principal);
    o.string(&r.kind);
    o.symbol(&RejectReason::ALL, &r.reason);
    o.string(&r.detail);
    o.opt_string(r.stage.as_deref());
    o.timestamp(r.occurred_at);
    o.string(&r.policy_version);
    Some(())
}

/// Appends the `Alert` body of `a`.
pub(crate) fn write_alert(a: &Alert, out: &mut Vec<u8>) -> Option<()> {
    let mut o = Out::new(out);
    o.string(&a.alert_id);
    o.symbol(&ALERT_KINDS, &a.kind);
    o.string(&a.owner);
    o.string(&a.candidate_id);
    o.string(&a.application_id);
    o.string(&a.event_id);
    o.string(&a.detail);
    o.timestamp(a.occurred_at);
    Some(())
}
