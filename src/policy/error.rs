//! Policy problems: every one carries the file, the 1-based line and a specific message, and
//! [`PolicyErrors`] carries all of them at once so recruiting-ops can fix a policy in one pass.
//!
//! Invariant: a `PolicyErrors` returned by the loader is never empty, and its problems are in a
//! stable order (by file, then line, then message) so the output of `hirestate policy check` is
//! deterministic.

use std::fmt;
use std::path::{Path, PathBuf};

/// What kind of problem a [`PolicyError`] is: lets callers (and tests) branch without parsing
/// messages. The message says the specifics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyErrorKind {
    /// A policy file is missing or unreadable.
    Io,
    /// Not valid TOML.
    Syntax,
    /// A key the format does not know (usually a typo).
    UnknownKey,
    /// A required key is absent.
    MissingKey,
    /// A value of the wrong TOML type, or a value outside what the key accepts.
    InvalidValue,
    /// A stage name that is not declared in `stages.toml`.
    UnknownStage,
    /// A stage no sequence of transitions reaches from the initial stage.
    UnreachableStage,
    /// The same `from → to` pair listed twice, or a name declared twice.
    Duplicate,
    /// A source or target system name that does not exist.
    UnknownSystem,
    /// A field name that is not in the dictionary.
    UnknownField,
    /// A field type that does not exist, or a bad range for it.
    BadFieldType,
    /// A target name that is not declared, or one of the wrong system.
    UnknownTarget,
    /// A mapping or region that lacks something the processor needs.
    Incomplete,
    /// A duration string such as `"2d"` that does not parse.
    BadDuration,
    /// The approval block has no digest: the policy was never signed.
    Unsigned,
    /// The approval digest does not match the content: the files changed since approval.
    DigestMismatch,
}

/// One problem, located in a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{}: {}", path.display(), line, message)]
pub struct PolicyError {
    pub kind: PolicyErrorKind,
    /// The policy file the problem is in.
    pub path: PathBuf,
    /// 1-based line; the table header when the problem is a missing key.
    pub line: usize,
    pub message: String,
}

/// Every problem found in a policy directory, one a line when displayed (`path:line: message`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyErrors {
    pub errors: Vec<PolicyError>,
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl PolicyErrors {
    /// Whether any problem is of `kind`.
    pub fn has(&self, kind: PolicyErrorKind) -> bool {
        self.errors.iter().any(|e| e.kind == kind)
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false for a `PolicyErrors` the loader returned.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A place in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Loc {
    pub path: PathBuf,
    pub line: usize,
}

impl Loc {
    pub fn new(path: &Path, line: usize) -> Self {
        Loc {
            path: path.to_path_buf(),
            line,
        }
    }
}

/// The accumulator every check pushes into.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    errors: Vec<PolicyError>,
}

impl Problems {
    pub fn push(&mut self, kind: PolicyErrorKind, loc: &Loc, message: impl Into<String>) {
        self.errors.push(PolicyError {
            kind,
            path: loc.path.clone(),
            line: loc.line,
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok(value)` when nothing was found, else every problem, sorted and deduplicated.
    pub fn finish<T>(self, value: T) -> Result<T, PolicyErrors> {
        if self.errors.is_empty() {
            return Ok(value);
        }
        Err(self.into_errors())
    }

    pub fn into_errors(self) -> PolicyErrors {
        let mut errors = self.errors;
        errors.sort_by(|a, b| {
            (&a.path, a.line, &a.message, a.kind).cmp(&(&b.path, b.line, &b.message, b.kind))
        });
        errors.dedup();
        PolicyErrors { errors }
    }
}
