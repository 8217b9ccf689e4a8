//! Field values against the dictionary: type and range checks (the `invalid_field` step), and
//! the mapping of `screening_completed`'s own fields onto dictionary names. Each asserted field
//! leaves here with its dictionary entry, so no later step of the fold looks it up again.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::NaiveDate;

use crate::model::{EventKind, FieldValue};
use crate::policy::{FieldSpec, FieldType, Policy};

/// One dictionary field an event asserts, with the dictionary entry it was checked against, so
/// the later steps (golden source, write-back, owner) need not look it up again.
#[derive(Debug, Clone)]
pub struct Asserted<'a> {
    /// The dictionary's own name of the field, shared (`Arc`) with every state that records it.
    pub name: &'a Arc<str>,
    /// Borrowed from the event when it carries a [`FieldValue`] already (`fields_asserted`),
    /// built from the event's own fields otherwise (`screening_completed`).
    pub value: Cow<'a, FieldValue>,
    pub spec: &'a FieldSpec,
}

/// The dictionary entry `value` is a valid `name` of, with the dictionary's own (shared) name,
/// or why it is not.
///
/// # Errors
/// The `invalid_field` detail: `name` is not in the dictionary, or `value` has the wrong type or
/// is out of range.
pub fn spec<'p>(
    name: &str,
    value: &FieldValue,
    policy: &'p Policy,
) -> Result<(&'p Arc<str>, &'p FieldSpec), String> {
    let Some((key, spec)) = policy.fields.get_key_value(name) else {
        return Err(format!("field {name:?} is not in the field dictionary"));
    };
    let ok = match (&spec.ty, value) {
        (FieldType::Number { min, max }, FieldValue::Number(n)) => {
            n.is_finite() && *min <= *n && *n <= *max
        }
        (FieldType::Enum { values }, FieldValue::Text(s)) => values.iter().any(|v| v == s),
        (FieldType::String, FieldValue::Text(_)) => true,
        (FieldType::ListOfString, FieldValue::List(_)) => true,
        (FieldType::HttpsUrl, FieldValue::Text(s)) => is_https_url(s),
        (FieldType::Date, FieldValue::Text(s)) => {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10
        }
        _ => false,
    };
    if ok {
        Ok((key, spec))
    } else {
        Err(format!(
            "field {name:?} = {} is not a valid {}",
            render(value),
            describe(&spec.ty)
        ))
    }
}

fn is_https_url(s: &str) -> bool {
    s.strip_prefix("https://").is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !s.chars().any(char::is_whitespace)
    })
}

fn describe(ty: &FieldType) -> String {
    match ty {
        FieldType::Number { min, max } => format!("number in {min}..={max}"),
        FieldType::Enum { values } => format!("one of {}", values.join("/")),
        FieldType::String => "string".into(),
        FieldType::ListOfString => "list of strings".into(),
        FieldType::HttpsUrl => "https URL".into(),
        FieldType::Date => "date YYYY-MM-DD".into(),
    }
}

fn render(v: &FieldValue) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| format!("{v:?}"))
}

/// The dictionary fields an event asserts, in a stable order, each checked against the
/// dictionary: `screening_completed` asserts the `screening.*` fields; `fields_asserted` names
/// its own (borrowed, not copied).
///
/// # Errors
/// The first field that is not valid, as [`spec`] words it.
pub fn asserted<'a>(kind: &'a EventKind, policy: &'a Policy) -> Result<Vec<Asserted<'a>>, String> {
    // `screening_completed` asserts at most the six `screening.*` fields pushed below.
    const SCREENING_FIELDS: usize = 6;
    let mut out = Vec::with_capacity(match kind {
        EventKind::ScreeningCompleted { .. } => SCREENING_FIELDS,
        EventKind::FieldsAsserted { fields } => fields.len(),
        _ => 0,
    });
    let mut push = |name: &'a str, value: Cow<'a, FieldValue>| {
        let (name, spec) = spec(name, &value, policy)?;
        out.push(Asserted { name, value, spec });
        Ok::<_, String>(())
    };
    match kind {
        EventKind::ScreeningCompleted {
            score,
            recommendation,
            rubric_version,
            reviewer_ids,
            media_url,
            transcript_url,
        } => {
            let text = |s: &String| Cow::Owned(FieldValue::Text(s.clone()));
            push("screening.score", Cow::Owned(FieldValue::Number(*score)))?;
            push("screening.recommendation", text(recommendation))?;
            push("screening.rubric_version", text(rubric_version))?;
            push(
                "screening.reviewer_ids",
                Cow::Owned(FieldValue::List(reviewer_ids.clone())),
            )?;
            if let Some(u) = media_url {
                push("screening.media_url", text(u))?;
            }
            if let Some(u) = transcript_url {
                push("screening.transcript_url", text(u))?;
            }
        }
        EventKind::FieldsAsserted { fields } => {
            for (name, value) in fields {
                push(name, Cow::Borrowed(value))?;
            }
        }
        _ => {}
    }
    Ok(out)
}
