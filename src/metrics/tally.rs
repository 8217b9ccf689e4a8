//! [`Tally`]: what one batch (or one restore) would add to the metrics, built while it folds and
//! handed to [`super::Metrics`] only once the batch is durable. Pure: no clock, no I/O, no
//! instruments, so a rolled-back batch is forgotten by dropping its tally.
//!
//! The write-back parts follow the definitions of [`crate::kpi`] so the live numbers and a
//! replay of the same log agree:
//! - a command is *issued* on its first emission (`attempt == 1`), and `pending` from then on;
//! - its status is that of the latest ack the fold applied to it (`confirmed`, `failed`,
//!   `rejected`), whatever was re-emitted since: the status gauge moves one command from its
//!   previous status to the new one on each applied ack;
//! - field conflicts are counted per (event, field) under exactly the KPI's filter: a
//!   `golden_wins` conflict on an event rejected `field_conflict`, or a `latest_wins` override
//!   on an applied or stale event.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::fold::Outcome;
use crate::model::{
    AckStatus, CandidateState, CommandRecord, CommandStatus, Decision, Event, EventKind,
    RejectReason,
};

/// `(target, op)` of a command: the only command labels (bounded by the policy's mappings).
pub type TargetOp = (Arc<str>, &'static str);

/// The metric deltas of one batch or restore.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Records folded or dead-lettered: the batch size.
    pub records: u64,
    /// `(decision, reject reason)` → events.
    pub events: BTreeMap<(&'static str, Option<&'static str>), u64>,
    /// `(stage, error class)` of the admission refusal → records sent to the DLQ.
    pub dlq: BTreeMap<(&'static str, &'static str), u64>,
    /// Every command emitted, re-emissions included (what the command topics receive).
    pub commands: BTreeMap<TargetOp, u64>,
    /// `(status, target, op)` → acks the fold applied.
    pub acks: BTreeMap<(&'static str, Arc<str>, &'static str), u64>,
    /// `(target, op, seconds)` of every applied `confirmed` ack: ack `occurred_at` − the
    /// causing event's `occurred_at`, clamped at 0.
    pub latencies: Vec<(Arc<str>, &'static str, f64)>,
    /// `(status, target, op)` → net change of issued commands in that write-back status.
    pub statuses: BTreeMap<(&'static str, Arc<str>, &'static str), i64>,
    /// `(field, asserting source, rejected|accepted)` → conflicts.
    pub conflicts: BTreeMap<(String, &'static str, &'static str), u64>,
    /// Net change of open commands alerted `writeback_stuck`.
    pub stuck_commands: i64,
    /// Stage → net change of applications alerted `stuck` and still in that stage.
    pub stuck_applications: BTreeMap<Arc<str>, i64>,
}

/// What of a candidate one event can change for the stuck gauges: its application's stuck
/// stage, and whether the command it names (ack, deadline) is open and alerted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stuck {
    stage: Option<Arc<str>>,
    command: bool,
}

/// [`Stuck`] of `state` as far as `event` can change it; read before and after the fold.
pub fn stuck_of(state: &CandidateState, event: &Event) -> Stuck {
    let stage = state
        .applications
        .get(&event.application_id)
        .filter(|a| a.stuck_alerted)
        .map(|a| a.stage.clone());
    let command = match &event.kind {
        EventKind::WritebackAcked { command_id, .. } => Some(command_id),
        EventKind::DeadlineReached { subject, .. } => Some(subject),
        _ => None,
    }
    .and_then(|id| state.commands.get(id.as_str()))
    .is_some_and(|c| c.stuck_alerted && c.open());
    Stuck { stage, command }
}

/// The write-back status of a command as the KPIs define it: the status of the latest applied
/// ack, `pending` when none was applied. (A retry re-opens a command as `Pending` in the
/// projection after a `failed` ack; for the KPIs it stays `failed` until the next ack.)
pub fn kpi_status(rec: &CommandRecord) -> &'static str {
    match (rec.acked_at, rec.status) {
        (None, _) => "pending",
        (Some(_), CommandStatus::Pending) | (Some(_), CommandStatus::Failed) => "failed",
        (Some(_), CommandStatus::Confirmed) => "confirmed",
        (Some(_), CommandStatus::Rejected) => "rejected",
    }
}

/// Before folding `event` into `state`: for an ack of a command issued for this candidate, that
/// command's [`kpi_status`] (what an applied ack moves it from); `None` for anything else.
pub fn status_before(state: &CandidateState, event: &Event) -> Option<&'static str> {
    match &event.kind {
        EventKind::WritebackAcked { command_id, .. } => {
            state.commands.get(command_id.as_str()).map(kpi_status)
        }
        _ => None,
    }
}

impl Tally {
    /// Takes in one folded event: `state` is the candidate after the fold, `before` what
    /// [`status_before`] said before it.
    pub fn observe(
        &mut self,
        event: &Event,
        outcome: &Outcome,
        state: &CandidateState,
        before: Option<&'static str>,
    ) {
        self.records += 1;
        let reason = outcome.decision.reason().map(RejectReason::as_str);
        *self
            .events
            .entry((outcome.decision.name(), reason))
            .or_default() += 1;
        for c in &outcome.commands {
            let op = c.op().as_str();
            if c.attempt == 1 {
                *self
                    .statuses
                    .entry(("pending", c.target.clone(), op))
                    .or_default() += 1;
            }
            *self.commands.entry((c.target.clone(), op)).or_default() += 1;
        }
        self.count_conflicts(outcome);
        if outcome.decision != Decision::Applied {
            return;
        }
        if let EventKind::WritebackAcked {
            command_id, status, ..
        } = &event.kind
        {
            let Some(rec) = state.commands.get(command_id.as_str()) else {
                return;
            };
            let op = rec.op.as_str();
            let now = status.as_str();
            *self.acks.entry((now, rec.target.clone(), op)).or_default() += 1;
            if let Some(was) = before.filter(|was| *was != now) {
                *self
                    .statuses
                    .entry((was, rec.target.clone(), op))
                    .or_default() -= 1;
                *self
                    .statuses
                    .entry((now, rec.target.clone(), op))
                    .or_default() += 1;
            }
            if *status == AckStatus::Confirmed {
                let micros = event.occurred_at.0.saturating_sub(rec.issued_at.0).max(0);
                self.latencies
                    .push((rec.target.clone(), op, micros as f64 / 1e6));
            }
        }
    }

    /// Takes in the stuck gauges' change by one event: [`stuck_of`] before and after its fold.
    pub fn observe_stuck(&mut self, before: &Stuck, after: &Stuck) {
        if before.stage != after.stage {
            if let Some(s) = &before.stage {
                *self.stuck_applications.entry(s.clone()).or_default() -= 1;
            }
            if let Some(s) = &after.stage {
                *self.stuck_applications.entry(s.clone()).or_default() += 1;
            }
        }
        self.stuck_commands += i64::from(after.command) - i64::from(before.command);
    }

    /// Adds `b`, the tally of records folded apart from these (another partition of the same
    /// batch): the result is the tally of both, `b`'s after these.
    pub fn merge(&mut self, b: Tally) {
        fn add<K: Ord, V: std::ops::AddAssign + Default>(
            a: &mut BTreeMap<K, V>,
            b: BTreeMap<K, V>,
        ) {
            for (k, v) in b {
                *a.entry(k).or_default() += v;
            }
        }
        self.records += b.records;
        add(&mut self.events, b.events);
        add(&mut self.dlq, b.dlq);
        add(&mut self.commands, b.commands);
        add(&mut self.acks, b.acks);
        self.latencies.extend(b.latencies);
        add(&mut self.statuses, b.statuses);
        add(&mut self.conflicts, b.conflicts);
        self.stuck_commands += b.stuck_commands;
        add(&mut self.stuck_applications, b.stuck_applications);
    }

    /// Takes in one record refused at admission (sent to the DLQ).
    pub fn dead_letter(&mut self, stage: &'static str, class: &'static str) {
        self.records += 1;
        *self.dlq.entry((stage, class)).or_default() += 1;
    }

    /// Adds the commands of `state` by status (a state loaded rather than folded: the store at
    /// start-up, a snapshot on restore).
    pub fn add_statuses_of(&mut self, state: &CandidateState) {
        self.count_statuses_of(state, 1);
    }

    /// Takes away what [`Tally::add_statuses_of`] added for `state` (a stored state a restore
    /// replaces).
    pub fn remove_statuses_of(&mut self, state: &CandidateState) {
        self.count_statuses_of(state, -1);
    }

    fn count_statuses_of(&mut self, state: &CandidateState, sign: i64) {
        for rec in state.commands.values() {
            *self
                .statuses
                .entry((kpi_status(rec), rec.target.clone(), rec.op.as_str()))
                .or_default() += sign;
            self.stuck_commands += sign * i64::from(rec.stuck_alerted && rec.open());
        }
        for app in state.applications.values().filter(|a| a.stuck_alerted) {
            *self
                .stuck_applications
                .entry(app.stage.clone())
                .or_default() += sign;
        }
    }

    fn count_conflicts(&mut self, outcome: &Outcome) {
        let accepted = match outcome.decision {
            Decision::Applied | Decision::Stale => true,
            Decision::Rejected(RejectReason::FieldConflict) => false,
            _ => return,
        };
        let outcome_name = if accepted { "accepted" } else { "rejected" };
        for c in outcome.conflicts.iter().filter(|c| c.accepted == accepted) {
            *self
                .conflicts
                .entry((c.field.clone(), c.source.as_str(), outcome_name))
                .or_default() += 1;
        }
    }
}
