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
        // serde_json's message names the field (`missing field `score``, `invalid type ...`);
        // its own "at line 1 column N" refers to the single line, so keep only the column.
        message: e.to_string().replace(" at line 1 column", " at column"),
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
    }
    Ok(())
}

fn bounded(field: &str, value: &str) -> Result<(), (String, Option<usize>)> {
    if value.len() > MAX_STRING_BYTES {
        return Err((field.to_owned(), Some(value.len())));
    }
    Ok(())
}
