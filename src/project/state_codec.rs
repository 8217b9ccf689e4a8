//! The binary encoding of a [`CandidateState`] as the store keeps it. The hot path writes every
//! touched candidate once per committed batch, so the value must be small and cheap to build
//! and to read back; JSON was neither (about 2 KB a candidate, most of the commit's time).
//!
//! Layout, version [`VERSION`]. Integers are LEB128 varints unless said otherwise; `str` is a
//! length then UTF-8 bytes; `ts` is the `i64` microseconds of [`Timestamp`], 8 bytes little
//! endian; `bool` and `opt` are a byte 0/1 (`opt`: then the value when 1); enums are one byte
//! of an explicit code (the `*_code` functions, never declaration order).
//!
//! ```text
//! state       = u8 VERSION, interned candidate_id, sorted seen_event_ids,
//!               count, (interned key, application)*, count, (command_id, record)*,
//!               opt ts last_event_at
//! application = interned application_id, interned requisition_id, interned region,
//!               interned stage, ts stage_entered_at, sorted (name, field_value) fields,
//!               sorted (name, u8 source) field_sources, bool stuck_alerted
//! record      = u8 op, interned target, interned application_id, u8 status, ts issued_at,
//!               opt ts acked_at, varint attempts, interned owner, opt ts retry_at,
//!               bool stuck_alerted, opt command resend
//! command     = command_id (tag 2: the record's own id), interned target, u8 system,
//!               interned candidate_id, interned application_id, str causing_event_id,
//!               ts occurred_at, interned policy_version, interned policy_digest,
//!               varint attempt, payload
//! payload     = u8 op: 0 move_stage (interned stage, interned remote_stage)
//!               | 1 update_fields (sorted fields) | 2 create_pre_hire (interned
//!               requisition_id, sorted fields)
//! field_value = u8 tag: 0 bool | 1 number (f64 bits, 8 bytes LE) | 2 text (str)
//!               | 3 list (count, str*)
//! command_id  = u8 0, 16 bytes (the id was 32 lowercase hex chars, as derived ids are)
//!               | u8 1, str (any other id)
//! sorted      = count, (varint shared, str suffix, value)*: front coding, each key is the
//!               previous key's first `shared` bytes then its suffix; strictly increasing
//! interned    = varint 0, str (remembered, while fewer than 32 are) | varint i: the i-th
//!               remembered string (ids, targets, stages, owners, policy digests repeat)
//! ```
//!
//! Keys must be strictly increasing, as the ordered maps hold them, so a decoded state is the
//! encoded one and nothing is silently merged. Decoding validates every byte and never
//! panics: bad input is a [`DecodeError`] naming the offset and what was being read.
//!
//! To add a field: one line in its `put_*`, one in its `get_*` (both name every field, so the
//! compiler points at them), and bump [`VERSION`] with the store's `FORMAT` marker, so a store
//! of the old layout is rebuilt from Kafka rather than misread.

mod wire;

use crate::model::{
    Application, CandidateState, Command, CommandOp, CommandPayload, CommandRecord, CommandStatus,
    FieldValue, IdSet, SourceSystem, TargetSystem, VecMap,
};

pub use wire::{DecodeError, Problem};
use wire::{Reader, Writer};

/// The layout version, the first byte of every encoded state.
pub const VERSION: u8 = 2;

/// Appends the encoding of `state` to `out`.
pub fn encode(state: &CandidateState, out: &mut Vec<u8>) {
    let mut w = Writer::new(std::mem::take(out));
    w.u8(VERSION);
    put_state(&mut w, state);
    *out = w.finish();
}

/// The state `bytes` encode.
///
/// # Errors
/// Bytes that are not exactly one state of this [`VERSION`].
pub fn decode(bytes: &[u8]) -> Result<CandidateState, DecodeError> {
    let mut r = Reader::new(bytes);
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(r.fail(0, "version", Problem::Version(version)));
    }
    let state = get_state(&mut r)?;
    r.end()?;
    Ok(state)
}

fn put_state<'s>(w: &mut Writer<'s>, s: &'s CandidateState) {
    let CandidateState {
        candidate_id,
        seen_event_ids,
        applications,
        commands,
        last_event_at,
    } = s;
    w.interned(candidate_id);
    let ids = seen_event_ids.iter().map(|id| (id, ()));
    w.sorted(seen_event_ids.len(), ids, |_, ()| {});
    w.varint(applications.len() as u64);
    for (id, app) in applications {
        w.interned(id);
        put_application(w, app);
    }
    w.varint(commands.len() as u64);
    for (id, record) in commands {
        w.command_id(id);
        put_record(w, id, record);
    }
    w.opt_ts(*last_event_at);
}

// The ordered maps are collected first and built at once: their keys were checked to be strictly
// increasing, so `VecMap::from_iter` takes the run as it is after one comparison a key, where
// inserting one by one searched each key's place.

fn get_state(r: &mut Reader<'_>) -> Result<CandidateState, DecodeError> {
    let candidate_id = r.interned("candidate_id")?.into();
    let mut seen_event_ids = IdSet::new();
    r.sorted("seen_event_ids", |_, id| {
        seen_event_ids.insert(id);
        Ok(())
    })?;
    let mut applications = Vec::new();
    for _ in 0..r.count("applications")? {
        let at = r.at();
        let id = r.interned("application key")?;
        after_last(r, &applications, id, at, "application key")?;
        let app = get_application(r)?;
        applications.push((id.into(), app));
    }
    let mut commands = Vec::new();
    for _ in 0..r.count("commands")? {
        let at = r.at();
        let mut hex = [0u8; 32];
        let id = r.command_id(&mut hex, None)?;
        after_last(r, &commands, id, at, "command id")?;
        let record = get_record(r, id)?;
        commands.push((id.into(), record));
    }
    Ok(CandidateState {
        candidate_id,
        seen_event_ids,
        applications: VecMap::from_iter(applications),
        commands: VecMap::from_iter(commands),
        last_event_at: r.opt_ts("last_event_at")?,
    })
}

fn put_application<'s>(w: &mut Writer<'s>, a: &'s Application) {
    let Application {
        application_id,
        requisition_id,
        region,
        stage,
        stage_entered_at,
        fields,
        field_sources,
        stuck_alerted,
    } = a;
    w.interned(application_id);
    w.interned(requisition_id);
    w.interned(region);
    w.interned(stage);
    w.ts(*stage_entered_at);
    put_fields(w, fields.iter());
    w.sorted(field_sources.len(), field_sources.iter(), |w, s| {
        w.u8(source_code(*s));
    });
    w.bool(*stuck_alerted);
}

fn get_application(r: &mut Reader<'_>) -> Result<Application, DecodeError> {
    let application_id = r.interned("application_id")?.into();
    let requisition_id = r.interned("requisition_id")?.into();
    let region = r.interned("region")?.into();
    let stage = r.interned("stage")?.into();
    let stage_entered_at = r.ts("stage_entered_at")?;
    let fields = get_fields(r)?;
    let mut field_sources = Vec::new();
    r.sorted("field_sources name", |r, name| {
        let source = r.code("field source", source_from)?;
        field_sources.push((name.into(), source));
        Ok(())
    })?;
    let field_sources = VecMap::from_iter(field_sources);
    Ok(Application {
        application_id,
        requisition_id,
        region,
        stage,
        stage_entered_at,
        fields,
        field_sources,
        stuck_alerted: r.bool("stuck_alerted")?,
    })
}

/// `id` is the id the record is filed under.
fn put_record<'s>(w: &mut Writer<'s>, id: &str, c: &'s CommandRecord) {
    let CommandRecord {
        op,
        target,
        application_id,
        status,
        issued_at,
        acked_at,
        attempts,
        owner,
        retry_at,
        stuck_alerted,
        resend,
    } = c;
    w.u8(op_code(*op));
    w.interned(target);
    w.interned(application_id);
    w.chunk(|c| {
        c.u8(status_code(*status));
        c.ts(*issued_at);
        c.opt_ts(*acked_at);
        c.varint(u64::from(*attempts));
    });
    w.interned(owner);
    w.chunk(|c| {
        c.opt_ts(*retry_at);
        c.bool(*stuck_alerted);
        c.bool(resend.is_some());
    });
    if let Some(command) = resend {
        put_command(w, id, command);
    }
}

fn get_record(r: &mut Reader<'_>, id: &str) -> Result<CommandRecord, DecodeError> {
    let op = r.code("command op", op_from)?;
    let target = r.interned("command target")?.into();
    let application_id = r.interned("command application_id")?.into();
    let status = r.code("command status", status_from)?;
    let issued_at = r.ts("command issued_at")?;
    let acked_at = r.opt_ts("command acked_at")?;
    let attempts = r.u32("command attempts")?;
    let owner = r.interned("command owner")?.into();
    let retry_at = r.opt_ts("command retry_at")?;
    let stuck_alerted = r.bool("command stuck_alerted")?;
    let resend = match r.bool("command resend")? {
        false => None,
        true => Some(std::sync::Arc::new(get_command(r, id)?)),
    };
    Ok(CommandRecord {
        op,
        target,
        application_id,
        status,
        issued_at,
        acked_at,
        attempts,
        owner,
        retry_at,
        stuck_alerted,
        resend,
    })
}

fn put_command<'s>(w: &mut Writer<'s>, key: &str, c: &'s Command) {
    let Command {
        command_id,
        target,
        system,
        candidate_id,
        application_id,
        causing_event_id,
        occurred_at,
        policy_version,
        policy_digest,
        attempt,
        payload,
    } = c;
    w.command_id_or_key(command_id, key);
    w.interned(target);
    w.u8(system_code(*system));
    w.interned(candidate_id);
    w.interned(application_id);
    w.str(causing_event_id);
    w.chunk(|c| c.ts(*occurred_at));
    w.interned(policy_version);
    w.interned(policy_digest);
    w.varint(u64::from(*attempt));
    match payload {
        CommandPayload::MoveStage {
            stage,
            remote_stage,
        } => {
            w.u8(op_code(CommandOp::MoveStage));
            w.interned(stage);
            w.interned(remote_stage);
        }
        CommandPayload::UpdateFields { fields } => {
            w.u8(op_code(CommandOp::UpdateFields));
            put_fields(w, fields.iter());
        }
        CommandPayload::CreatePreHire {
            requisition_id,
            fields,
        } => {
            w.u8(op_code(CommandOp::CreatePreHire));
            w.interned(requisition_id);
            put_fields(w, fields.iter());
        }
    }
}

fn get_command(r: &mut Reader<'_>, key: &str) -> Result<Command, DecodeError> {
    let mut hex = [0u8; 32];
    let command_id = r.command_id(&mut hex, Some(key))?.into();
    let target = r.interned("resend target")?.into();
    let system = r.code("resend system", system_from)?;
    let candidate_id = r.interned("resend candidate_id")?.into();
    let application_id = r.interned("resend application_id")?.into();
    let causing_event_id = r.string("resend causing_event_id")?;
    let occurred_at = r.ts("resend occurred_at")?;
    let policy_version = r.interned("resend policy_version")?.into();
    let policy_digest = r.interned("resend policy_digest")?.into();
    let attempt = r.u32("resend attempt")?;
    let payload = match r.code("resend payload op", op_from)? {
        CommandOp::MoveStage => CommandPayload::MoveStage {
            stage: r.interned("resend stage")?.into(),
            remote_stage: r.interned("resend remote_stage")?.into(),
        },
        CommandOp::UpdateFields => CommandPayload::UpdateFields {
            fields: get_fields(r)?,
        },
        CommandOp::CreatePreHire => CommandPayload::CreatePreHire {
            requisition_id: r.interned("resend requisition_id")?.into(),
            fields: get_fields(r)?,
        },
    };
    Ok(Command {
        command_id,
        target,
        system,
        candidate_id,
        application_id,
        causing_event_id,
        occurred_at,
        policy_version,
        policy_digest,
        attempt,
        payload,
    })
}

fn put_fields<'f, K: AsRef<str> + 'f>(
    w: &mut Writer<'_>,
    fields: impl ExactSizeIterator<Item = (&'f K, &'f FieldValue)>,
) {
    w.sorted(fields.len(), fields, |w, v| match v {
        FieldValue::Bool(b) => w.chunk(|c| {
            c.u8(0);
            c.bool(*b);
        }),
        FieldValue::Number(x) => w.chunk(|c| {
            c.u8(1);
            c.f64(*x);
        }),
        FieldValue::Text(s) => {
            w.u8(2);
            w.str(s);
        }
        FieldValue::List(items) => {
            w.u8(3);
            w.varint(items.len() as u64);
            for s in items {
                w.str(s);
            }
        }
    });
}

fn get_fields<K, M>(r: &mut Reader<'_>) -> Result<M, DecodeError>
where
    K: for<'x> From<&'x str>,
    M: FromIterator<(K, FieldValue)>,
{
    let mut fields = Vec::new();
    r.sorted("field name", |r, name| {
        let at = r.at();
        let value = match r.u8("field value tag")? {
            0 => FieldValue::Bool(r.bool("field value bool")?),
            1 => FieldValue::Number(r.f64("field value number")?),
            2 => FieldValue::Text(r.string("field value text")?),
            3 => {
                let n = r.count("field value list")?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(r.string("field value list item")?);
                }
                FieldValue::List(items)
            }
            tag => return Err(r.fail(at, "field value tag", Problem::Tag(tag))),
        };
        fields.push((K::from(name), value));
        Ok(())
    })?;
    Ok(M::from_iter(fields))
}

/// Fails unless `key` sorts after every key of `items` (which are in order).
fn after_last<K: AsRef<str>, V>(
    r: &Reader<'_>,
    items: &[(K, V)],
    key: &str,
    at: usize,
    reading: &'static str,
) -> Result<(), DecodeError> {
    match items.last() {
        Some((last, _)) if key <= last.as_ref() => Err(r.fail(at, reading, Problem::Order)),
        _ => Ok(()),
    }
}

// Enums as explicit one-byte codes: a code never depends on declaration order, and a new
// variant fails to compile here until it has one.

fn source_code(s: SourceSystem) -> u8 {
    match s {
        SourceSystem::Ats => 0,
        SourceSystem::ScreeningVendor => 1,
        SourceSystem::Hris => 2,
        SourceSystem::AtsSink => 3,
        SourceSystem::HrisSink => 4,
        SourceSystem::Privacy => 5,
        SourceSystem::Hirestate => 6,
    }
}

fn source_from(code: u8) -> Option<SourceSystem> {
    Some(match code {
        0 => SourceSystem::Ats,
        1 => SourceSystem::ScreeningVendor,
        2 => SourceSystem::Hris,
        3 => SourceSystem::AtsSink,
        4 => SourceSystem::HrisSink,
        5 => SourceSystem::Privacy,
        6 => SourceSystem::Hirestate,
        _ => return None,
    })
}

fn op_code(op: CommandOp) -> u8 {
    match op {
        CommandOp::MoveStage => 0,
        CommandOp::UpdateFields => 1,
        CommandOp::CreatePreHire => 2,
    }
}

fn op_from(code: u8) -> Option<CommandOp> {
    Some(match code {
        0 => CommandOp::MoveStage,
        1 => CommandOp::UpdateFields,
        2 => CommandOp::CreatePreHire,
        _ => return None,
    })
}

fn status_code(s: CommandStatus) -> u8 {
    match s {
        CommandStatus::Pending => 0,
        CommandStatus::Confirmed => 1,
        CommandStatus::Failed => 2,
        CommandStatus::Rejected => 3,
    }
}

fn status_from(code: u8) -> Option<CommandStatus> {
    Some(match code {
        0 => CommandStatus::Pending,
        1 => CommandStatus::Confirmed,
        2 => CommandStatus::Failed,
        3 => CommandStatus::Rejected,
        _ => return None,
    })
}

fn system_code(s: TargetSystem) -> u8 {
    match s {
        TargetSystem::Ats => 0,
        TargetSystem::Hris => 1,
    }
}

fn system_from(code: u8) -> Option<TargetSystem> {
    Some(match code {
        0 => TargetSystem::Ats,
        1 => TargetSystem::Hris,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
