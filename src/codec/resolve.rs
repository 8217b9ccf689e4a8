//! Writer → reader schema resolution that keeps union branches by *name*.
//!
//! apache-avro 0.22's `Value::resolve*` picks, for a record inside a union, the first reader
//! branch the record structurally fits, because a decoded `Value::Record` carries no name: a
//! `CreatePreHire {requisition_id, fields}` resolves as `UpdateFields {fields}` (extra fields are
//! ignored). The Avro specification matches named branches by name. So this walk follows writer
//! schema, value and reader schema together, resolves records field by field and unions by the
//! writer branch's full name, and delegates leaves (primitives, enums, logical types) to
//! apache-avro. It runs only when writer and reader schemas differ; identical schemas need no
//! resolution at all.

use std::collections::HashMap;

use apache_avro::schema::{Name, RecordField};
use apache_avro::types::Value;
use apache_avro::Schema;

/// Owned named types of a schema, for `Schema::Ref` lookups.
pub(crate) type Names = HashMap<Name, Schema>;

/// Resolves `value` (decoded with `writer`) to `reader`. Errors are plain text: the caller
/// wraps them as a schema mismatch.
pub(crate) fn resolve(
    value: Value,
    writer: &Schema,
    wnames: &Names,
    reader: &Schema,
    rnames: &Names,
) -> Result<Value, String> {
    let writer = deref(writer, wnames)?;
    let reader = deref(reader, rnames)?;
    match (writer, reader, value) {
        (Schema::Record(w), Schema::Record(r), Value::Record(mut fields)) => {
            let mut out = Vec::with_capacity(r.fields.len());
            for rf in &r.fields {
                let found = w
                    .fields
                    .iter()
                    .find(|wf| wf.name == rf.name || rf.aliases.contains(&wf.name));
                let v = match found {
                    Some(wf) => {
                        let taken = fields
                            .iter_mut()
                            .find(|(n, _)| *n == wf.name)
                            .map(|(_, v)| std::mem::replace(v, Value::Null))
                            .ok_or_else(|| format!("field {} missing from the value", wf.name))?;
                        resolve(taken, &wf.schema, wnames, &rf.schema, rnames)
                            .map_err(|e| format!("{}.{}: {e}", r.name.name(), rf.name))?
                    }
                    None => default_of(rf, rnames)
                        .map_err(|e| format!("{}.{}: {e}", r.name.name(), rf.name))?,
                };
                out.push((rf.name.clone(), v));
            }
            Ok(Value::Record(out))
        }
        (Schema::Union(w), Schema::Union(r), Value::Union(wi, inner)) => {
            let branch = w
                .variants()
                .get(wi as usize)
                .ok_or_else(|| format!("writer union branch {wi} out of range"))?;
            let (ri, rb) = pick_branch(branch, wnames, r.variants(), rnames)?;
            let v = resolve(*inner, branch, wnames, rb, rnames)?;
            Ok(Value::Union(ri, Box::new(v)))
        }
        (Schema::Union(w), reader, Value::Union(wi, inner)) => {
            let branch = w
                .variants()
                .get(wi as usize)
                .ok_or_else(|| format!("writer union branch {wi} out of range"))?;
            resolve(*inner, branch, wnames, reader, rnames)
        }
        (writer, Schema::Union(r), value) => {
            let (ri, rb) = pick_branch(writer, wnames, r.variants(), rnames)?;
            let v = resolve(value, writer, wnames, rb, rnames)?;
            Ok(Value::Union(ri, Box::new(v)))
        }
        (Schema::Array(w), Schema::Array(r), Value::Array(items)) => items
            .into_iter()
            .map(|i| resolve(i, &w.items, wnames, &r.items, rnames))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        (Schema::Map(w), Schema::Map(r), Value::Map(items)) => items
            .into_iter()
            .map(|(k, v)| resolve(v, &w.types, wnames, &r.types, rnames).map(|v| (k, v)))
            .collect::<Result<HashMap<_, _>, _>>()
            .map(Value::Map),
        (_, reader, value) => value
            .resolve_with_names(reader, rnames)
            .map_err(|e| e.to_string()),
    }
}

fn deref<'a>(schema: &'a Schema, names: &'a Names) -> Result<&'a Schema, String> {
    match schema {
        Schema::Ref { name } => names
            .get(name)
            .ok_or_else(|| format!("unknown named type {}", name.fullname(None))),
        s => Ok(s),
    }
}

/// The reader branch for a writer branch: same full name for named types, else the first
/// branch of the same kind (the specification's rule; promotions are left to apache-avro).
fn pick_branch<'r>(
    writer: &Schema,
    wnames: &Names,
    branches: &'r [Schema],
    rnames: &'r Names,
) -> Result<(u32, &'r Schema), String> {
    let w = deref(writer, wnames)?;
    let found = match w.name() {
        Some(name) => branches.iter().position(|b| {
            deref(b, rnames)
                .ok()
                .and_then(|b| b.name())
                .is_some_and(|n| n.fullname(None) == name.fullname(None))
        }),
        None => branches.iter().position(|b| {
            deref(b, rnames)
                .map(|b| std::mem::discriminant(b) == std::mem::discriminant(w))
                .unwrap_or(false)
        }),
    };
    match found {
        Some(i) => Ok((u32::try_from(i).unwrap_or(u32::MAX), &branches[i])),
        None => Err(format!(
            "writer branch {} has no match in the reader union",
            w.name().map_or_else(
                || format!("{:?}", apache_avro::schema::SchemaKind::from(w)),
                |n| n.fullname(None)
            )
        )),
    }
}

/// The reader's default for a field the writer does not have.
fn default_of(field: &RecordField, rnames: &Names) -> Result<Value, String> {
    let json = field
        .default
        .clone()
        .ok_or_else(|| "not in the writer schema and has no default".to_string())?;
    let value = Value::try_from(json).map_err(|e| e.to_string())?;
    match deref(&field.schema, rnames)? {
        // A union's default is of its first branch.
        Schema::Union(u) => {
            let first = u.variants().first().ok_or("empty union")?;
            let v = match first {
                Schema::Null => Value::Null,
                first => value
                    .resolve_with_names(first, rnames)
                    .map_err(|e| e.to_string())?,
            };
            Ok(Value::Union(0, Box::new(v)))
        }
        schema => value
            .resolve_with_names(schema, rnames)
            .map_err(|e| e.to_string()),
    }
}
