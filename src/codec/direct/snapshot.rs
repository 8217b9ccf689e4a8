//! The `Snapshot` record (`schemas/avro/Snapshot.avsc`, with `Application` and
//! `CommandRecord`) written directly: the model's ordered maps as arrays in key order, as the
//! `Value` path writes them.

use super::outbound::command;
use super::Out;
use crate::codec::avro_value::outbound::COMMAND_OPS;
use crate::codec::avro_value::snapshot::STATUSES;
use crate::model::{Application, CandidateState, CommandRecord, SourceSystem};

/// CRC-64-AVRO fingerprint of the `Snapshot` schema written here.
pub(crate) const FINGERPRINT: [u8; 8] = [0x69, 0x17, 0x1e, 0x25, 0x7e, 0x0a, 0x2f, 0xbc];

/// Appends the `Snapshot` body of `s`; `None` for a count above `i32::MAX`.
pub(crate) fn write(s: &CandidateState, out: &mut Vec<u8>) -> Option<()> {
    let mut o = Out::new(out);
    o.string(&s.candidate_id);
    o.blocks(s.seen_event_ids.iter(), |o, id| {
        o.string(id);
        Some(())
    })?;
    o.blocks(s.applications.values(), application)?;
    o.blocks(s.commands.iter(), |o, (id, c)| command_record(o, id, c))?;
    o.opt_timestamp(s.last_event_at);
    Some(())
}

fn application(o: &mut Out<'_>, a: &Application) -> Option<()> {
    o.string(&a.application_id);
    o.string(&a.requisition_id);
    o.string(&a.region);
    o.string(&a.stage);
    o.timestamp(a.stage_entered_at);
    o.field_values(a.fields.iter())?;
    o.blocks(a.field_sources.iter(), |o, (name, source)| {
        o.string(name);
        o.symbol(&SourceSystem::ALL, source);
        Some(())
    })?;
    o.boolean(a.stuck_alerted);
    Some(())
}

fn command_record(o: &mut Out<'_>, id: &str, c: &CommandRecord) -> Option<()> {
    o.string(id);
    o.symbol(&COMMAND_OPS, &c.op);
    o.string(&c.target);
    o.string(&c.application_id);
    o.index(
        STATUSES
            .iter()
            .position(|(s, _)| *s == c.status)
            .unwrap_or(0),
    );
    o.timestamp(c.issued_at);
    o.opt_timestamp(c.acked_at);
    o.count(c.attempts)?;
    o.string(&c.owner);
    o.opt_timestamp(c.retry_at);
    o.boolean(c.stuck_alerted);
    match &c.resend {
        None => o.index(0),
        Some(cmd) => {
            o.index(1);
            command(o, cmd)?;
        }
    }
    Some(())
}
