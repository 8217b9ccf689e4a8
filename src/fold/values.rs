//! Field values against the dictionary: type and range checks (the `invalid_field` step), and
//! the mapping of `screening_completed`'s own fields onto dictionary names.

use chrono::NaiveDate;

use crate::model::{EventKind, FieldValue};
use crate::policy::{FieldType, Policy};

/// Why `value` is not a valid `name`, or `None` when it is.
pub fn invalid(name: &str, value: &FieldValue, policy: &Policy) -> Option<String> {
    let Some(spec) = policy.fields.get(name) else {
        return Some(format!("field {name:?} is not in the field dictionary"));
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
    (!ok).then(|| {
        format!(
            "field {name:?} = {} is not a valid {}",
            render(value),
            describe(&spec.ty)
        )
    })
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

/// The dictionary fields an event asserts, in a stable order. `screening_completed` asserts the
/// `screening.*` fields; `fields_asserted` names its own.
pub fn asserted(kind: &EventKind) -> Vec<(String, FieldValue)> {
    match kind {
        EventKind::ScreeningCompleted {
            score,
            recommendation,
            rubric_version,
            reviewer_ids,
            media_url,
            transcript_url,
        } => {
            let mut v = vec![
                ("screening.score".to_owned(), FieldValue::Number(*score)),
                (
                    "screening.recommendation".to_owned(),
                    FieldValue::Text(recommendation.clone()),
                ),
                (
                    "screening.rubric_version".to_owned(),
                    FieldValue::Text(rubric_version.clone()),
                ),
                (
                    "screening.reviewer_ids".to_owned(),
                    FieldValue::List(reviewer_ids.clone()),
                ),
            ];
            if let Some(u) = media_url {
                v.push((
                    "screening.media_url".to_owned(),
                    FieldValue::Text(u.clone()),
                ));
            }
            if let Some(u) = transcript_url {
                v.push((
                    "screening.transcript_url".to_owned(),
                    FieldValue::Text(u.clone()),
                ));
            }
            v
        }
        EventKind::FieldsAsserted { fields } => {
            fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        }
        _ => Vec::new(),
    }
}
