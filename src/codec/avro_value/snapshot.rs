//! [`CandidateState`] ⇄ the `Snapshot` record. The model's ordered maps become arrays sorted by
//! key (the key is a field of each item), so a snapshot's bytes are deterministic.

use apache_avro::types::Value;

use super::event::source_system;
use super::outbound::{command_from_value, command_to_value, COMMAND_OPS};
use super::{
    count, field_values, opt_timestamp, position, record, string, symbol, timestamp, Fields,
};
use crate::codec::CodecError;
use crate::model::{
    Application, CandidateState, CommandRecord, CommandStatus, IdSet, SourceSystem, VecMap,
};

pub(crate) const STATUSES: [(CommandStatus, &str); 4] = [
    (CommandStatus::Pending, "pending"),
    (CommandStatus::Confirmed, "confirmed"),
    (CommandStatus::Failed, "failed"),
    (CommandStatus::Rejected, "rejected"),
];

/// The `Snapshot` value of `s`.
pub(crate) fn to_value(s: &CandidateState) -> Result<Value, CodecError> {
    let applications = s.applications.values().map(application_to_value).collect();
    let commands = s
        .commands
        .iter()
        .map(|(id, c)| command_record_to_value(id, c))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(record(vec![
        ("candidate_id", string(&s.candidate_id)),
        (
            "seen_event_ids",
            Value::Array(s.seen_event_ids.iter().map(string).collect()),
        ),
        ("applications", Value::Array(applications)),
        ("commands", Value::Array(commands)),
        ("last_event_at", opt_timestamp(s.last_event_at)),
    ]))
}

fn application_to_value(a: &Application) -> Value {
    record(vec![
        ("application_id", string(&a.application_id)),
        ("requisition_id", string(&a.requisition_id)),
        ("region", string(&a.region)),
        ("stage", string(&a.stage)),
        ("stage_entered_at", timestamp(a.stage_entered_at)),
        ("fields", field_values(&a.fields)),
        (
            "field_sources",
            Value::Map(
                a.field_sources
                    .iter()
                    .map(|(k, s)| (k.to_string(), source_system(*s)))
                    .collect(),
            ),
        ),
        ("stuck_alerted", Value::Boolean(a.stuck_alerted)),
    ])
}

fn command_record_to_value(id: &str, c: &CommandRecord) -> Result<Value, CodecError> {
    let status = STATUSES
        .iter()
        .position(|(s, _)| *s == c.status)
        .unwrap_or(0);
    Ok(record(vec![
        ("command_id", string(id)),
        ("op", symbol(position(&COMMAND_OPS, &c.op), c.op.as_str())),
        ("target", string(&c.target)),
        ("application_id", string(&c.application_id)),
        ("status", symbol(status, STATUSES[status].1)),
        ("issued_at", timestamp(c.issued_at)),
        ("acked_at", opt_timestamp(c.acked_at)),
        ("attempts", count("CommandRecord", "attempts", c.attempts)?),
        ("owner", string(&c.owner)),
        ("retry_at", opt_timestamp(c.retry_at)),
        ("stuck_alerted", Value::Boolean(c.stuck_alerted)),
        (
            "resend",
            match &c.resend {
                None => Value::Union(0, Box::new(Value::Null)),
                Some(cmd) => Value::Union(1, Box::new(command_to_value(cmd)?)),
            },
        ),
    ]))
}

/// The [`CandidateState`] of a `Snapshot` value.
pub(crate) fn from_value(v: Value) -> Result<CandidateState, CodecError> {
    let mut f = Fields::open("Snapshot", v)?;
    let seen_event_ids: IdSet = f.strings("seen_event_ids")?.into_iter().collect();
    let mut applications = VecMap::new();
    for item in f.array("applications")? {
        let a = application_from_value(item)?;
        applications.insert(a.application_id.to_string(), a);
    }
    let mut commands = VecMap::new();
    for item in f.array("commands")? {
        let (id, c) = command_record_from_value(item)?;
        commands.insert(id.into(), c);
    }
    Ok(CandidateState {
        candidate_id: f.string("candidate_id")?,
        seen_event_ids,
        applications,
        commands,
        last_event_at: f.opt_timestamp("last_event_at")?,
    })
}

fn application_from_value(v: Value) -> Result<Application, CodecError> {
    let mut f = Fields::open("Application", v)?;
    let mut field_sources = VecMap::new();
    for (k, v) in f.map("field_sources")? {
        let mut one = Fields::open("Application", super::record(vec![("field_sources", v)]))?;
        let s = one.parsed("field_sources", SourceSystem::parse)?;
        field_sources.insert(k.into(), s);
    }
    Ok(Application {
        application_id: f.string("application_id")?.into(),
        requisition_id: f.string("requisition_id")?,
        region: f.string("region")?,
        stage: f.string("stage")?.into(),
        stage_entered_at: f.timestamp("stage_entered_at")?,
        fields: f.field_values("fields")?,
        field_sources,
        stuck_alerted: f.boolean("stuck_alerted")?,
    })
}

fn command_record_from_value(v: Value) -> Result<(String, CommandRecord), CodecError> {
    let mut f = Fields::open("CommandRecord", v)?;
    let id = f.string("command_id")?;
    let record = CommandRecord {
        op: f.parsed("op", |s| COMMAND_OPS.into_iter().find(|o| o.as_str() == s))?,
        target: f.string("target")?.into(),
        application_id: f.string("application_id")?.into(),
        status: f.parsed("status", |s| {
            STATUSES.iter().find(|(_, n)| *n == s).map(|(st, _)| *st)
        })?,
        issued_at: f.timestamp("issued_at")?,
        acked_at: f.opt_timestamp("acked_at")?,
        attempts: f.count("attempts")?,
        owner: f.string("owner")?,
        retry_at: f.opt_timestamp("retry_at")?,
        stuck_alerted: f.boolean("stuck_alerted")?,
        resend: match f.take("resend")? {
            Value::Union(_, inner) if *inner == Value::Null => None,
            Value::Null => None,
            Value::Union(_, inner) => Some(std::sync::Arc::new(command_from_value(*inner)?)),
            other => Some(std::sync::Arc::new(command_from_value(other)?)),
        },
    };
    Ok((id, record))
}
