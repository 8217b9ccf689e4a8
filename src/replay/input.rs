//! One line of the JSON form → an [`Event`], or an error naming the line and the field.
//! Limits keep a hostile file from costing unbounded memory per line.

use thiserror::Error;

use crate::model::{Event, EventKind, FieldValue};

/// Longest accepted line, in bytes.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Longest accepted string value (ids, stage names, field values), in bytes.
pub const MAX_STRING_BYTES: usize = 8 * 1024;

/// Why a line is not an event.
#[derive(Debug, Error, PartialEq)]
pub enum LineError {
    #[error("line {line}: {len} bytes is over the {max}-byte line limit")]
    TooLong { line: usize, len: usize, max: usize },
    #[error("line {line}: {message}")]
    Json { line: usize, message: String },
    #[error("line {line}: field `{field}` is empty")]
    EmptyField { line: usize, field: String },
    #[error("line {line}: field `{field}` is {len} bytes, over the {max}-byte limit")]
    Oversize {
        line: usize,
        field: String,
        len: usize,
        max: usize,
    },
}

/// Parses line number `line` (1-based) of a JSON-lines file.
///
/// # Errors
/// [`LineError`] naming the line and, where one is to blame, the field.
pub fn parse_line(text: &str, line: usize) -> Result<Event, LineError> {
    if text.len() > MAX_LINE_BYTES {
        return Err(LineError::TooLong {
            line,
            len: text.len(),
            max: MAX_LINE_BYTES,
        });
    }
    let event: Event = serde_json::from_str(text).map_err(|e| LineError::Json {
        line,
        // serde loses the field name inside the flattened, tagged kind; find it ourselves.
        // Its own "at line 1 column N" refers to the single line, so keep only the column.
        message: blame_field(text)
            .unwrap_or_else(|| e.to_string().replace(" at line 1 column", " at column")),
    })?;
    check_limits(&event).map_err(|(field, problem)| match problem {
        None => LineError::EmptyField { line, field },
        Some(len) => LineError::Oversize {
            line,
            field,
            len,
            max: MAX_STRING_BYTES,
        },
    })?;
    Ok(event)
}

/// The JSON type each known field must have, by kind (`None`: common to every kind).
const FIELD_TYPES: &[(Option<&str>, &str, JsonType)] = &[
    (None, "event_id", JsonType::String),
    (None, "candidate_id", JsonType::String),
    (None, "application_id", JsonType::String),
    (None, "source_principal", JsonType::String),
    (None, "signature", JsonType::String),
    (
        Some("application_created"),
        "requisition_id",
        JsonType::String,
    ),
    (Some("application_created"), "region", JsonType::String),
    (Some("stage_changed"), "to_stage", JsonType::String),
    (Some("stage_changed"), "reason", JsonType::String),
    (Some("screening_completed"), "score", JsonType::Number),
    (
        Some("screening_completed"),
        "recommendation",
        JsonType::String,
    ),
    (
        Some("screening_completed"),
        "rubric_version",
        JsonType::String,
    ),
    (
        Some("screening_completed"),
        "reviewer_ids",
        JsonType::Strings,
    ),
    (Some("screening_completed"), "media_url", JsonType::String),
    (
        Some("screening_completed"),
        "transcript_url",
        JsonType::String,
    ),
    (Some("fields_asserted"), "fields", JsonType::Object),
    (Some("writeback_acked"), "command_id", JsonType::String),
    (Some("writeback_acked"), "remote_ref", JsonType::String),
    (Some("writeback_acked"), "error", JsonType::String),
    (Some("writeback_acked"), "retryable", JsonType::Bool),
];

const KINDS: [&str; 6] = [
    "application_created",
    "stage_changed",
    "screening_completed",
    "fields_asserted",
    "writeback_acked",
    "erasure_requested",
];

#[derive(Clone, Copy)]
enum JsonType {
    String,
    Number,
    Bool,
    Object,
    Strings,
}

impl JsonType {
    fn accepts(self, v: &serde_json::Value) -> bool {
        use serde_json::Value as V;
        match self {
            JsonType::String => v.is_string() || v.is_null(),
            JsonType::Number => v.is_number(),
            JsonType::Bool => v.is_boolean(),
            JsonType::Object => v.is_object(),
            JsonType::Strings => v.as_array().is_some_and(|a| a.iter().all(V::is_string)),
        }
    }
    fn name(self) -> &'static str {
        match self {
            JsonType::String => "a string",
            JsonType::Number => "a number",
            JsonType::Bool => "true or false",
            JsonType::Object => "an object",
            JsonType::Strings => "a list of strings",
        }
    }
}

/// For a line serde refused, the field to blame and why, where one can be named.
fn blame_field(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let obj = v.as_object()?;
    let kind = match obj.get("kind") {
        None => return Some("missing field `kind`".to_owned()),
        Some(k) => match k.as_str() {
            Some(k) if KINDS.contains(&k) => k,
            _ => {
                return Some(format!(
                    "field `kind`: unknown kind {k}, expected one of {}",
                    KINDS.join(", ")
                ))
            }
        },
    };
    match obj.get("source_system") {
        None => return Some("missing field `source_system`".to_owned()),
        Some(s)
            if s.as_str()
                .and_then(crate::model::SourceSystem::parse)
                .is_none() =>
        {
            let all: Vec<&str> = crate::model::SourceSystem::ALL
                .iter()
                .map(|s| s.as_str())
                .collect();
            return Some(format!(
                "field `source_system`: unknown system {s}, expected one of {}",
                all.join(", ")
            ));
        }
        _ => {}
    }
    match obj.get("occurred_at") {
        None => return Some("missing field `occurred_at`".to_owned()),
        Some(t) => {
            if let Err(e) = t
                .as_str()
                .ok_or_else(|| "not a string".to_owned())
                .and_then(crate::model::Timestamp::parse_rfc3339)
            {
                return Some(format!(
                    "field `occurred_at`: {t} is not an RFC 3339 time ({e})"
                ));
            }
        }
    }
    if kind == "writeback_acked" {
        if let Some(s) = obj.get("status") {
            if !matches!(s.as_str(), Some("confirmed" | "failed" | "rejected")) {
                return Some(format!(
                    "field `status`: {s} is not confirmed, failed or rejected"
                ));
            }
        }
    }
    for (for_kind, field, ty) in FIELD_TYPES {
        if for_kind.is_some_and(|k| k != kind) {
            continue;
        }
        if let Some(value) = obj.get(*field) {
            if !ty.accepts(value) {
                return Some(format!("field `{field}`: {value} is not {}", ty.name()));
            }
        }
    }
    None
}

/// Ids must be non-empty and every string bounded. Returns (field, None) for an empty id and
/// (field, Some(len)) for an oversize string.
pub fn check_limits(e: &Event) -> Result<(), (String, Option<usize>)> {
    for (name, value) in [
        ("event_id", &e.event_id),
        ("candidate_id", &e.candidate_id),
        ("application_id", &e.application_id),
        ("source_principal", &e.source_principal),
    ] {
        if value.is_empty() {
            return Err((name.to_owned(), None));
        }
        bounded(name, value)?;
    }
    match &e.kind {
        EventKind::ApplicationCreated {
            requisition_id,
            region,
        } => {
            bounded("requisition_id", requisition_id)?;
            bounded("region", region)?;
        }
        EventKind::StageChanged { to_stage, reason } => {
            bounded("to_stage", to_stage)?;
            bounded("reason", reason.as_deref().unwrap_or(""))?;
        }
        EventKind::ScreeningCompleted {
            recommendation,
            rubric_version,
            reviewer_ids,
            media_url,
            transcript_url,
            ..
        } => {
            bounded("recommendation", recommendation)?;
            bounded("rubric_version", rubric_version)?;
            for r in reviewer_ids {
                bounded("reviewer_ids", r)?;
            }
            bounded("media_url", media_url.as_deref().unwrap_or(""))?;
            bounded("transcript_url", transcript_url.as_deref().unwrap_or(""))?;
        }
        EventKind::FieldsAsserted { fields } => {
            for (k, v) in fields {
                bounded("fields", k)?;
                match v {
                    FieldValue::Text(s) => bounded(k, s)?,
                    FieldValue::List(items) => {
                        for s in items {
                            bounded(k, s)?;
                        }
                    }
                    FieldValue::Bool(_) | FieldValue::Number(_) => {}
                }
            }
        }
        EventKind::WritebackAcked {
            command_id,
            remote_ref,
            error,
            ..
        } => {
            bounded("command_id", command_id)?;
            bounded("remote_ref", remote_ref.as_deref().unwrap_or(""))?;
            bounded("error", error.as_deref().unwrap_or(""))?;
        }
        EventKind::ErasureRequested {} => {}
        EventKind::DeadlineReached { subject, .. } => bounded("subject", subject)?,
    }
    Ok(())
}

fn bounded(field: &str, value: &str) -> Result<(), (String, Option<usize>)> {
    if value.len() > MAX_STRING_BYTES {
        return Err((field.to_owned(), Some(value.len())));
    }
    Ok(())
}
