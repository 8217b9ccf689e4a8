//! Model types ⇄ `apache_avro::types::Value`, by hand so the mapping is visible and every
//! mismatch names its field. Reading is by field name and enum symbol (never position), so
//! values resolved from an evolved writer schema convert the same. Writing follows the
//! compiled-in schemas' field order and union branch order.
//!
//! Shared helpers live here; the per-record conversions are in [`event`], [`outbound`] and
//! [`snapshot`].

pub(crate) mod event;
pub(crate) mod outbound;
pub(crate) mod snapshot;

use std::collections::HashMap;

use apache_avro::types::Value;

use crate::codec::CodecError;
use crate::model::{FieldValue, Timestamp};

/// Takes fields out of a decoded record, naming the record in every error.
pub(crate) struct Fields {
    record: &'static str,
    fields: Vec<(String, Value)>,
}

impl Fields {
    /// Opens `value`, which must be a record.
    pub fn open(record: &'static str, value: Value) -> Result<Self, CodecError> {
        match value {
            Value::Record(fields) => Ok(Fields { record, fields }),
            other => Err(CodecError::model(
                record,
                "",
                format!("expected a record, found {:?}", kind(&other)),
            )),
        }
    }

    fn err(&self, field: &str, problem: impl Into<String>) -> CodecError {
        CodecError::model(self.record, field, problem)
    }

    /// Removes and returns a field's value.
    pub fn take(&mut self, field: &str) -> Result<Value, CodecError> {
        match self.fields.iter_mut().find(|(n, _)| n == field) {
            Some((_, v)) => Ok(std::mem::replace(v, Value::Null)),
            None => Err(self.err(field, "missing")),
        }
    }

    pub fn string(&mut self, field: &str) -> Result<String, CodecError> {
        let v = self.take(field)?;
        as_string(v).map_err(|found| self.err(field, format!("expected a string, found {found}")))
    }

    pub fn opt_string(&mut self, field: &str) -> Result<Option<String>, CodecError> {
        match unwrap_union(self.take(field)?) {
            Value::Null => Ok(None),
            v => as_string(v).map(Some).map_err(|found| {
                self.err(field, format!("expected null or a string, found {found}"))
            }),
        }
    }

    /// An enum's symbol (the caller maps it to the model's enum).
    pub fn symbol(&mut self, field: &str) -> Result<String, CodecError> {
        match unwrap_union(self.take(field)?) {
            Value::Enum(_, s) => Ok(s),
            Value::String(s) => Ok(s),
            other => Err(self.err(
                field,
                format!("expected an enum symbol, found {}", kind(&other)),
            )),
        }
    }

    /// An enum symbol parsed with `parse`; an unknown symbol names itself in the error.
    pub fn parsed<T>(
        &mut self,
        field: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, CodecError> {
        let s = self.symbol(field)?;
        parse(&s).ok_or_else(|| self.err(field, format!("unknown symbol {s:?}")))
    }

    pub fn timestamp(&mut self, field: &str) -> Result<Timestamp, CodecError> {
        let v = self.take(field)?;
        as_timestamp(v)
            .map_err(|found| self.err(field, format!("expected timestamp-micros, found {found}")))
    }

    pub fn opt_timestamp(&mut self, field: &str) -> Result<Option<Timestamp>, CodecError> {
        match unwrap_union(self.take(field)?) {
            Value::Null => Ok(None),
            v => as_timestamp(v).map(Some).map_err(|found| {
                self.err(
                    field,
                    format!("expected null or timestamp-micros, found {found}"),
                )
            }),
        }
    }

    pub fn double(&mut self, field: &str) -> Result<f64, CodecError> {
        match unwrap_union(self.take(field)?) {
            Value::Double(d) => Ok(d),
            Value::Float(f) => Ok(f64::from(f)),
            Value::Int(i) => Ok(f64::from(i)),
            Value::Long(l) => Ok(l as f64),
            other => Err(self.err(field, format!("expected a double, found {}", kind(&other)))),
        }
    }

    pub fn boolean(&mut self, field: &str) -> Result<bool, CodecError> {
        match unwrap_union(self.take(field)?) {
            Value::Boolean(b) => Ok(b),
            other => Err(self.err(field, format!("expected a boolean, found {}", kind(&other)))),
        }
    }

    pub fn count(&mut self, field: &str) -> Result<u32, CodecError> {
        let n = match unwrap_union(self.take(field)?) {
            Value::Int(i) => i64::from(i),
            Value::Long(l) => l,
            other => {
                return Err(self.err(field, format!("expected an int, found {}", kind(&other))))
            }
        };
        u32::try_from(n).map_err(|_| self.err(field, format!("{n} is not a non-negative count")))
    }

    pub fn strings(&mut self, field: &str) -> Result<Vec<String>, CodecError> {
        match unwrap_union(self.take(field)?) {
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    as_string(v).map_err(|found| {
                        self.err(
                            &format!("{field}[{i}]"),
                            format!("expected a string, found {found}"),
                        )
                    })
                })
                .collect(),
            other => Err(self.err(
                field,
                format!("expected an array of strings, found {}", kind(&other)),
            )),
        }
    }

    /// Items of an array field, each handed to `item`.
    pub fn array(&mut self, field: &str) -> Result<Vec<Value>, CodecError> {
        match unwrap_union(self.take(field)?) {
            Value::Array(items) => Ok(items),
            other => Err(self.err(field, format!("expected an array, found {}", kind(&other)))),
        }
    }

    pub fn map(&mut self, field: &str) -> Result<HashMap<String, Value>, CodecError> {
        match unwrap_union(self.take(field)?) {
            Value::Map(m) => Ok(m),
            other => Err(self.err(field, format!("expected a map, found {}", kind(&other)))),
        }
    }

    /// A `map<FieldValue>`, into any map type (the event's `BTreeMap`, the state's `VecMap`).
    pub fn field_values<K: From<String>, M: FromIterator<(K, FieldValue)>>(
        &mut self,
        field: &str,
    ) -> Result<M, CodecError> {
        let map = self.map(field)?;
        map.into_iter()
            .map(|(k, v)| {
                let fv = field_value_from(v).map_err(|found| {
                    self.err(
                        &format!("{field}[{k:?}]"),
                        format!("not a field value: {found}"),
                    )
                })?;
                Ok((k.into(), fv))
            })
            .collect()
    }

    /// A union field: the branch index (in the reader schema) and the branch's value.
    pub fn branch(&mut self, field: &str) -> Result<(u32, Value), CodecError> {
        match self.take(field)? {
            Value::Union(i, v) => Ok((i, *v)),
            other => Err(self.err(field, format!("expected a union, found {}", kind(&other)))),
        }
    }

    /// The record's name, for errors raised by the caller.
    pub fn record(&self) -> &'static str {
        self.record
    }
}

fn unwrap_union(v: Value) -> Value {
    match v {
        Value::Union(_, inner) => *inner,
        v => v,
    }
}

fn as_string(v: Value) -> Result<String, String> {
    match unwrap_union(v) {
        Value::String(s) => Ok(s),
        other => Err(kind(&other)),
    }
}

fn as_timestamp(v: Value) -> Result<Timestamp, String> {
    match unwrap_union(v) {
        Value::TimestampMicros(t) | Value::Long(t) => Ok(Timestamp(t)),
        other => Err(kind(&other)),
    }
}

fn field_value_from(v: Value) -> Result<FieldValue, String> {
    match unwrap_union(v) {
        Value::Boolean(b) => Ok(FieldValue::Bool(b)),
        Value::Double(d) => Ok(FieldValue::Number(d)),
        Value::String(s) => Ok(FieldValue::Text(s)),
        Value::Array(items) => items
            .into_iter()
            .map(as_string)
            .collect::<Result<Vec<_>, _>>()
            .map(FieldValue::List),
        other => Err(kind(&other)),
    }
}

/// A short name of a value's kind, for errors (never the value: it may be personal data).
fn kind(v: &Value) -> String {
    format!("{:?}", apache_avro::types::ValueKind::from(v)).to_lowercase()
}

// ---- writing ----

/// A record value from (field, value) pairs in schema order.
pub(crate) fn record(fields: Vec<(&str, Value)>) -> Value {
    Value::Record(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

pub(crate) fn string(s: &str) -> Value {
    Value::String(s.to_string())
}

/// `["null", "string"]`.
pub(crate) fn opt_string(s: &Option<String>) -> Value {
    match s {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(s) => Value::Union(1, Box::new(Value::String(s.clone()))),
    }
}

pub(crate) fn timestamp(t: Timestamp) -> Value {
    Value::TimestampMicros(t.0)
}

/// `["null", timestamp-micros]`.
pub(crate) fn opt_timestamp(t: Option<Timestamp>) -> Value {
    match t {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(t) => Value::Union(1, Box::new(Value::TimestampMicros(t.0))),
    }
}

/// An enum value: position in the schema's symbol list and the symbol.
pub(crate) fn symbol(index: usize, s: &str) -> Value {
    Value::Enum(u32::try_from(index).unwrap_or(u32::MAX), s.to_string())
}

pub(crate) fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| Value::String(s.clone())).collect())
}

/// An `int` count; a count above `i32::MAX` cannot be written.
pub(crate) fn count(record: &str, field: &str, n: u32) -> Result<Value, CodecError> {
    i32::try_from(n)
        .map(Value::Int)
        .map_err(|_| CodecError::Encode {
            schema: record.to_string(),
            detail: format!("{field} = {n} exceeds the Avro int range"),
        })
}

/// `[boolean, double, string, array<string>]`, the FieldValue union.
pub(crate) fn field_value(v: &FieldValue) -> Value {
    match v {
        FieldValue::Bool(b) => Value::Union(0, Box::new(Value::Boolean(*b))),
        FieldValue::Number(n) => Value::Union(1, Box::new(Value::Double(*n))),
        FieldValue::Text(s) => Value::Union(2, Box::new(Value::String(s.clone()))),
        FieldValue::List(items) => Value::Union(3, Box::new(strings(items))),
    }
}

/// `map<FieldValue>`.
pub(crate) fn field_values<'a, K: AsRef<str> + 'a>(
    m: impl IntoIterator<Item = (&'a K, &'a FieldValue)>,
) -> Value {
    Value::Map(
        m.into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), field_value(v)))
            .collect(),
    )
}

/// The position of `x` in `all` (for enum values written from the model's `ALL` lists, which
/// follow the schemas' symbol order).
pub(crate) fn position<T: PartialEq>(all: &[T], x: &T) -> usize {
    all.iter().position(|y| y == x).unwrap_or(0)
}
