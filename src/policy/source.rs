//! Reading one policy file: TOML syntax, spans → 1-based lines, and typed access to keys that
//! records a problem (instead of stopping) on a missing key, a wrong type or an unknown key.
//!
//! This is hand-rolled over `toml_edit`'s span-preserving [`ImDocument`] rather than serde so
//! that one file with three typos yields three problems, each at its own line. Invariant: every
//! accessor either returns a value of the right type or has pushed exactly one problem for that
//! key; it never panics on input.

use std::path::Path;

use toml_edit::{ImDocument, Item, TableLike, Value};

use super::error::{Loc, PolicyErrorKind as K, Problems};

/// A value and where it was written.
#[derive(Debug, Clone)]
pub(crate) struct At<T> {
    pub value: T,
    pub loc: Loc,
}

/// One parsed policy file.
pub(crate) struct SourceFile {
    pub path: std::path::PathBuf,
    line_starts: Vec<usize>,
    doc: ImDocument<String>,
}

impl SourceFile {
    /// Reads and parses `dir/name`; on failure records the problem and returns `None`.
    pub fn read(dir: &Path, name: &str, p: &mut Problems) -> Option<SourceFile> {
        let path = dir.join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                p.push(
                    K::Io,
                    &Loc::new(&path, 1),
                    format!("cannot read policy file: {e}"),
                );
                return None;
            }
        };
        let line_starts = line_starts(&text);
        match ImDocument::parse(text) {
            Ok(doc) => Some(SourceFile {
                path,
                line_starts,
                doc,
            }),
            Err(e) => {
                let line = e.span().map_or(1, |s| line_of(&line_starts, s.start));
                let msg = e.message().trim().replace('\n', " ");
                p.push(
                    K::Syntax,
                    &Loc::new(&path, line),
                    format!("invalid TOML: {msg}"),
                );
                None
            }
        }
    }

    /// The 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        line_of(&self.line_starts, offset)
    }

    fn loc(&self, span: Option<std::ops::Range<usize>>, fallback: &Loc) -> Loc {
        match span {
            Some(s) => Loc::new(&self.path, self.line(s.start)),
            None => fallback.clone(),
        }
    }

    /// The whole document as a section.
    pub fn root(&self) -> Section<'_> {
        Section {
            file: self,
            table: self.doc.as_table(),
            loc: Loc::new(&self.path, 1),
            what: String::new(),
        }
    }
}

/// The 1-based line of byte `offset` in `text` (for one-off lookups, e.g. a config file's
/// parse error; a [`SourceFile`] keeps its line starts instead).
pub(crate) fn line_in(text: &str, offset: usize) -> usize {
    line_of(&line_starts(text), offset)
}

fn line_starts(text: &str) -> Vec<usize> {
    let mut v = vec![0];
    v.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    v
}

fn line_of(starts: &[usize], offset: usize) -> usize {
    match starts.binary_search(&offset) {
        Ok(i) => i + 1,
        Err(i) => i,
    }
}

/// A TOML table (standard or inline) plus where it starts and how to name it in messages.
pub(crate) struct Section<'a> {
    file: &'a SourceFile,
    table: &'a dyn TableLike,
    /// The header line (or the parent's, for implicit tables).
    pub loc: Loc,
    /// How messages name this table, e.g. "stage `applied`"; empty for the document root.
    what: String,
}

/// The TOML type of an item, for "found a …" messages.
fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::Value(v) => value_type_name(v),
    }
}

fn value_type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "an inline table",
    }
}

impl<'a> Section<'a> {
    /// The prefix for messages about this table.
    pub fn what(&self) -> &str {
        &self.what
    }

    fn prefix(&self) -> String {
        if self.what.is_empty() {
            String::new()
        } else {
            format!("{}: ", self.what)
        }
    }

    /// Where `key` is written (the header when absent).
    pub fn key_loc(&self, key: &str) -> Loc {
        match self.table.get_key_value(key) {
            Some((k, item)) => self.file.loc(k.span().or_else(|| item.span()), &self.loc),
            None => self.loc.clone(),
        }
    }

    /// Records every key not in `allowed` (typos, misplaced keys).
    pub fn deny_unknown(&self, allowed: &[&str], p: &mut Problems) {
        for (name, _) in self.table.iter() {
            if !allowed.contains(&name) {
                p.push(
                    K::UnknownKey,
                    &self.key_loc(name),
                    format!(
                        "{}unknown key `{name}` (expected one of: {})",
                        self.prefix(),
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    fn item(&self, key: &str) -> Option<&'a Item> {
        self.table.get(key).filter(|i| !i.is_none())
    }

    fn missing(&self, key: &str, expected: &str, p: &mut Problems) {
        p.push(
            K::MissingKey,
            &self.loc,
            format!("{}missing required key `{key}` ({expected})", self.prefix()),
        );
    }

    fn wrong_type(&self, key: &str, expected: &str, found: &str, p: &mut Problems) {
        p.push(
            K::InvalidValue,
            &self.key_loc(key),
            format!("{}`{key}` must be {expected}, found {found}", self.prefix()),
        );
    }

    /// An optional string.
    pub fn opt_str(&self, key: &str, p: &mut Problems) -> Option<At<String>> {
        let item = self.item(key)?;
        match item.as_str() {
            Some(s) => Some(At {
                value: s.to_string(),
                loc: self.key_loc(key),
            }),
            None => {
                self.wrong_type(key, "a string", type_name(item), p);
                None
            }
        }
    }

    /// A required string.
    pub fn str(&self, key: &str, p: &mut Problems) -> Option<At<String>> {
        if self.item(key).is_none() {
            self.missing(key, "a string", p);
            return None;
        }
        self.opt_str(key, p)
    }

    /// An optional array of strings; with `single_ok`, a lone string counts as a list of one.
    pub fn opt_strs(
        &self,
        key: &str,
        single_ok: bool,
        p: &mut Problems,
    ) -> Option<At<Vec<At<String>>>> {
        let item = self.item(key)?;
        let loc = self.key_loc(key);
        if single_ok {
            if let Some(s) = item.as_str() {
                return Some(At {
                    value: vec![At {
                        value: s.to_string(),
                        loc: loc.clone(),
                    }],
                    loc,
                });
            }
        }
        let Some(arr) = item.as_array() else {
            self.wrong_type(key, "an array of strings", type_name(item), p);
            return None;
        };
        let mut out = Vec::with_capacity(arr.len());
        let mut ok = true;
        for v in arr.iter() {
            let vloc = self.file.loc(v.span(), &loc);
            match v.as_str() {
                Some(s) => out.push(At {
                    value: s.to_string(),
                    loc: vloc,
                }),
                None => {
                    ok = false;
                    p.push(
                        K::InvalidValue,
                        &vloc,
                        format!(
                            "{}`{key}` must list strings, found {}",
                            self.prefix(),
                            value_type_name(v)
                        ),
                    );
                }
            }
        }
        ok.then_some(At { value: out, loc })
    }

    /// A required array of strings (see [`Section::opt_strs`]).
    pub fn strs(
        &self,
        key: &str,
        single_ok: bool,
        p: &mut Problems,
    ) -> Option<At<Vec<At<String>>>> {
        if self.item(key).is_none() {
            self.missing(key, "an array of strings", p);
            return None;
        }
        self.opt_strs(key, single_ok, p)
    }

    /// An optional integer.
    pub fn opt_int(&self, key: &str, p: &mut Problems) -> Option<At<i64>> {
        let item = self.item(key)?;
        match item.as_integer() {
            Some(i) => Some(At {
                value: i,
                loc: self.key_loc(key),
            }),
            None => {
                self.wrong_type(key, "an integer", type_name(item), p);
                None
            }
        }
    }

    /// A required integer.
    pub fn int(&self, key: &str, p: &mut Problems) -> Option<At<i64>> {
        if self.item(key).is_none() {
            self.missing(key, "an integer", p);
            return None;
        }
        self.opt_int(key, p)
    }

    /// An optional number (integer or float).
    pub fn opt_num(&self, key: &str, p: &mut Problems) -> Option<At<f64>> {
        let item = self.item(key)?;
        // An integer literal is a number too: `min = 0` must not need `0.0`.
        #[allow(clippy::cast_precision_loss)]
        let n = item
            .as_float()
            .or_else(|| item.as_integer().map(|i| i as f64));
        match n {
            Some(n) => Some(At {
                value: n,
                loc: self.key_loc(key),
            }),
            None => {
                self.wrong_type(key, "a number", type_name(item), p);
                None
            }
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&self, key: &str, p: &mut Problems) -> Option<At<bool>> {
        let item = self.item(key)?;
        match item.as_bool() {
            Some(b) => Some(At {
                value: b,
                loc: self.key_loc(key),
            }),
            None => {
                self.wrong_type(key, "a boolean (true or false)", type_name(item), p);
                None
            }
        }
    }

    /// Whether `key` is present at all.
    pub fn has(&self, key: &str) -> bool {
        self.item(key).is_some()
    }

    /// An optional sub-table (standard `[a.b]` or inline `{ … }`), named `what` in messages.
    pub fn opt_table(&self, key: &str, what: String, p: &mut Problems) -> Option<Section<'a>> {
        let item = self.item(key)?;
        match item.as_table_like() {
            Some(t) => {
                let header = self.key_loc(key);
                let loc = self.file.loc(item.span(), &header);
                Some(Section {
                    file: self.file,
                    table: t,
                    loc,
                    what,
                })
            }
            None => {
                self.wrong_type(key, "a table", type_name(item), p);
                None
            }
        }
    }

    /// A required sub-table.
    pub fn table(&self, key: &str, what: String, p: &mut Problems) -> Option<Section<'a>> {
        if self.item(key).is_none() {
            self.missing(key, "a table", p);
            return None;
        }
        self.opt_table(key, what, p)
    }

    /// Each entry of this table, all of which must be tables (`[stage.applied]`, …), with its
    /// name; `name_what` builds the message prefix from the name.
    pub fn entries(
        &self,
        name_what: impl Fn(&str) -> String,
        p: &mut Problems,
    ) -> Vec<(At<String>, Section<'a>)> {
        let mut out = Vec::new();
        for (name, _) in self.table.iter() {
            if let Some(sec) = self.opt_table(name, name_what(name), p) {
                let loc = self.key_loc(name);
                out.push((
                    At {
                        value: name.to_string(),
                        loc,
                    },
                    sec,
                ));
            }
        }
        out
    }

    /// Each string-valued entry of this table (`applied = "Application Review"`).
    pub fn string_entries(&self, p: &mut Problems) -> Vec<(At<String>, At<String>)> {
        let mut out = Vec::new();
        for (name, _) in self.table.iter() {
            if let Some(v) = self.opt_str(name, p) {
                out.push((
                    At {
                        value: name.to_string(),
                        loc: v.loc.clone(),
                    },
                    v,
                ));
            }
        }
        out
    }

    /// An optional `[[key]]` array of tables; each element is named by `what(index)`.
    pub fn opt_array_of_tables(
        &self,
        key: &str,
        what: impl Fn(usize) -> String,
        p: &mut Problems,
    ) -> Vec<Section<'a>> {
        let Some(item) = self.item(key) else {
            return Vec::new();
        };
        let Some(arr) = item.as_array_of_tables() else {
            self.wrong_type(
                key,
                &format!("an array of tables (`[[{key}]]`)"),
                type_name(item),
                p,
            );
            return Vec::new();
        };
        let header = self.key_loc(key);
        arr.iter()
            .enumerate()
            .map(|(i, t)| Section {
                file: self.file,
                table: t,
                loc: self.file.loc(t.span(), &header),
                what: what(i),
            })
            .collect()
    }

    /// Renames this section for messages (once its `name` key is known).
    pub fn set_what(&mut self, what: String) {
        self.what = what;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_one_based_lines() {
        let starts = line_starts("a = 1\nb = 2\n\nc = 3");
        assert_eq!(line_of(&starts, 0), 1);
        assert_eq!(line_of(&starts, 5), 1); // the newline ends line 1
        assert_eq!(line_of(&starts, 6), 2);
        assert_eq!(line_of(&starts, 12), 3);
        assert_eq!(line_of(&starts, 13), 4);
    }
}
