//! Offline replay: fold JSON-lines events with the live processor's fold and print one row per
//! input event (DESIGN.md "Offline replay output").
//!
//! Invariants: the fold is [`crate::fold::apply`], nothing else; a malformed line is reported
//! with its number, counted, and never stops the replay; output order is input order.

mod input;
mod output;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::fold::{self, Outcome};
use crate::model::{Alert, CandidateState, Command, Event};
use crate::policy::Policy;

pub use input::{check_limits, parse_line, LineError, MAX_LINE_BYTES, MAX_STRING_BYTES};
pub use output::{write_summary_table, write_table_row, Format};

/// One output row: what the fold decided for one input event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub event_id: String,
    pub candidate_id: String,
    pub application_id: String,
    pub kind: &'static str,
    pub decision: &'static str,
    pub reason: Option<&'static str>,
    pub detail: Option<String>,
    pub stage_before: Option<std::sync::Arc<str>>,
    pub stage_after: Option<std::sync::Arc<str>>,
    pub commands: Vec<std::sync::Arc<Command>>,
    pub alerts: Vec<Alert>,
}

impl Row {
    /// The row for `event` and its `outcome`.
    pub fn new(event: &Event, outcome: Outcome) -> Row {
        Row {
            event_id: event.event_id.clone(),
            candidate_id: event.candidate_id.clone(),
            application_id: event.application_id.clone(),
            kind: event.kind.name(),
            decision: outcome.decision.name(),
            reason: outcome.decision.reason().map(|r| r.as_str()),
            detail: outcome.detail,
            stage_before: outcome.stage_before,
            stage_after: outcome.stage_after,
            commands: outcome.commands,
            alerts: outcome.alerts,
        }
    }
}

/// In-memory projection of every candidate seen, folded event by event.
pub struct Replayer<'p> {
    policy: &'p Policy,
    /// Fx hashing: candidate ids are not attacker-chosen keys of a long-lived server map, and
    /// SipHash was 9 % of the fold's profile.
    states: FxHashMap<String, CandidateState>,
}

impl<'p> Replayer<'p> {
    /// An empty projection under `policy`.
    pub fn new(policy: &'p Policy) -> Self {
        Replayer {
            policy,
            states: FxHashMap::default(),
        }
    }

    /// Folds one event into its candidate's state.
    pub fn fold(&mut self, event: &Event) -> Outcome {
        // One search for a candidate already known (nearly every event); the key is allocated
        // only for a new one.
        if let Some(state) = self.states.get_mut(&event.candidate_id) {
            return fold::apply(state, event, self.policy);
        }
        let state = self.states.entry(event.candidate_id.clone()).or_default();
        fold::apply(state, event, self.policy)
    }

    /// The projection so far, by candidate id.
    pub fn states(&self) -> &FxHashMap<String, CandidateState> {
        &self.states
    }
}

/// Counts over a replay: by decision, by rejection reason, malformed lines, final stages.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub events: u64,
    pub malformed: u64,
    pub by_decision: BTreeMap<String, u64>,
    pub by_reason: BTreeMap<String, u64>,
    pub commands_by_target: BTreeMap<String, u64>,
    pub alerts: u64,
    /// Application id → final stage.
    pub final_stages: BTreeMap<String, String>,
}

impl Summary {
    /// Counts one row.
    pub fn count(&mut self, row: &Row) {
        self.events += 1;
        *self.by_decision.entry(row.decision.to_owned()).or_default() += 1;
        if let Some(r) = row.reason {
            *self.by_reason.entry(r.to_owned()).or_default() += 1;
        }
        for c in &row.commands {
            *self
                .commands_by_target
                .entry(format!("{}/{}", c.target, c.op().as_str()))
                .or_default() += 1;
        }
        self.alerts += row.alerts.len() as u64;
    }
}

/// The events of a JSON-lines input, line by line: blank lines skipped, a malformed line an
/// `Ok(Err(..))` naming its number, an I/O failure an `Err`.
pub fn read_events(
    input: impl BufRead,
) -> impl Iterator<Item = std::io::Result<Result<Event, LineError>>> {
    input
        .lines()
        .enumerate()
        .filter_map(|(i, line)| match line {
            Err(e) => Some(Err(e)),
            Ok(l) if l.trim().is_empty() => None,
            Ok(l) => Some(Ok(parse_line(&l, i + 1))),
        })
}

/// Replays `input` (JSON lines) under `policy`, writing rows to `out` in `format` and a line per
/// malformed input line to `err`. Blank lines are skipped.
///
/// # Errors
/// Only I/O errors reading `input` or writing `out`/`err`; bad lines are reported and counted.
pub fn run(
    input: impl BufRead,
    policy: &Policy,
    format: Format,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<Summary> {
    let events = read_events(input).map(|parsed| Ok(parsed?.map_err(|e| e.to_string())));
    run_events(events, policy, format, out, err)
}

/// [`run`] over `events` in order: each an event, or why an input item is not one (reported
/// to `err` as malformed and counted), or an I/O error that stops the replay.
///
/// # Errors
/// The I/O errors of `events`, `out` or `err`.
pub fn run_events(
    events: impl IntoIterator<Item = std::io::Result<Result<Event, String>>>,
    policy: &Policy,
    format: Format,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<Summary> {
    let mut replayer = Replayer::new(policy);
    let mut summary = Summary::default();
    if format == Format::Table {
        output::write_table_header(out)?;
    }
    for parsed in events {
        let event = match parsed? {
            Ok(e) => e,
            Err(e) => {
                summary.malformed += 1;
                writeln!(err, "malformed: {e}")?;
                continue;
            }
        };
        let row = Row::new(&event, replayer.fold(&event));
        summary.count(&row);
        match format {
            Format::Jsonl => {
                serde_json::to_writer(&mut *out, &row)?;
                writeln!(out)?;
            }
            Format::Table => write_table_row(out, &row)?,
        }
    }
    for state in replayer.states().values() {
        for app in state.applications.values() {
            summary
                .final_stages
                .insert(app.application_id.to_string(), app.stage.to_string());
        }
    }
    Ok(summary)
}
