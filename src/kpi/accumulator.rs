//! [`KpiAccumulator`]: what the KPIs need to remember of the log, updated one `(event,
//! outcome)` pair at a time. It keeps facts (statuses, times), not finished numbers, so the
//! report can be read at any as-of time and percentiles stay exact.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::fold::Outcome;
use crate::model::{CommandOp, CommandStatus, Decision, Event, EventKind, RejectReason, Timestamp};
use crate::policy::Policy;

use super::report::{self, KpiReport};

/// What the KPIs know of one issued command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedCommand {
    pub target: String,
    pub op: CommandOp,
    /// The causing event's `occurred_at`.
    pub issued_at: Timestamp,
    /// By the latest ack the fold applied; `Pending` when there is none.
    pub status: CommandStatus,
    /// `occurred_at` of that latest applied ack.
    pub acked_at: Option<Timestamp>,
}

/// Where one application is, and since when (event time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedApplication {
    pub stage: String,
    /// `occurred_at` of the applied event that moved it into `stage`.
    pub entered_at: Timestamp,
}

/// Field conflicts of one kind of key, split by the policy's effect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictTally {
    /// `golden_wins`: the event was rejected `field_conflict`.
    pub rejected: u64,
    /// `latest_wins`: the value was taken.
    pub accepted: u64,
}

/// Accumulates the write-back KPIs over `(event, outcome)` pairs in log order.
///
/// Pure and deterministic: ordered maps only, no clock; the same pairs in the same order give
/// the same state and report. It is serialisable so a live processor can keep it alongside its
/// projection. Keys are per candidate, mirroring the fold's scoping of applications and
/// command ids.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KpiAccumulator {
    /// Events observed (well-formed ones, whatever the decision).
    pub events: u64,
    /// The latest `occurred_at` observed (the event-time watermark): the default as-of.
    pub latest_event_at: Option<Timestamp>,
    /// Candidate → command id → command.
    pub commands: BTreeMap<String, BTreeMap<String, TrackedCommand>>,
    /// Candidate → application id → stage and entry time.
    pub applications: BTreeMap<String, BTreeMap<String, TrackedApplication>>,
    /// Source system → field-conflict incidents (one per event).
    pub conflict_events: BTreeMap<String, ConflictTally>,
    /// Field → source system → conflicting assertions that counted (one per event and field).
    pub conflict_fields: BTreeMap<String, BTreeMap<String, ConflictTally>>,
}

impl KpiAccumulator {
    /// An accumulator that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in one event and what the fold made of it. Call it for every event, in the order
    /// the fold saw them (duplicates and rejections included: they are filtered here).
    pub fn observe(&mut self, event: &Event, outcome: &Outcome) {
        self.events += 1;
        // The maximum, not the last in log order: a log interleaves partitions arbitrarily, and
        // the maximum is the same whatever the interleaving.
        self.latest_event_at = self.latest_event_at.max(Some(event.occurred_at));

        for c in &outcome.commands {
            // A re-emission keeps its id: the first sighting is the issue, later ones change
            // nothing (the status follows acks only).
            self.commands
                .entry(c.candidate_id.clone())
                .or_default()
                .entry(c.command_id.to_string())
                .or_insert_with(|| TrackedCommand {
                    target: c.target.to_string(),
                    op: c.op(),
                    issued_at: c.occurred_at,
                    status: CommandStatus::Pending,
                    acked_at: None,
                });
        }

        self.count_conflicts(event, outcome);

        if outcome.decision != Decision::Applied {
            return;
        }
        if let EventKind::WritebackAcked {
            command_id, status, ..
        } = &event.kind
        {
            // The fold applies an ack only for a command it issued; one this accumulator never
            // saw (fed from the middle of a log) has no issue to measure against.
            if let Some(cmd) = self
                .commands
                .get_mut(&event.candidate_id)
                .and_then(|m| m.get_mut(command_id))
            {
                cmd.status = CommandStatus::from(*status);
                cmd.acked_at = Some(event.occurred_at);
            }
        }
        if let Some(after) = &outcome.stage_after {
            if outcome.stage_before.as_ref() != Some(after) {
                self.applications
                    .entry(event.candidate_id.clone())
                    .or_default()
                    .insert(
                        event.application_id.clone(),
                        TrackedApplication {
                            stage: after.to_string(),
                            entered_at: event.occurred_at,
                        },
                    );
            }
        }
    }

    /// The KPIs at `as_of` (default: [`Self::latest_event_at`]) under `policy`'s SLAs and
    /// terminal stages.
    pub fn report(&self, policy: &Policy, as_of: Option<Timestamp>) -> KpiReport {
        report::build(self, policy, as_of.or(self.latest_event_at))
    }

    fn count_conflicts(&mut self, event: &Event, outcome: &Outcome) {
        let accepted = match outcome.decision {
            Decision::Applied | Decision::Stale => true,
            Decision::Rejected(RejectReason::FieldConflict) => false,
            _ => return,
        };
        let mut counted = false;
        for c in outcome.conflicts.iter().filter(|c| c.accepted == accepted) {
            counted = true;
            self.conflict_fields
                .entry(c.field.clone())
                .or_default()
                .entry(c.source.as_str().to_owned())
                .or_default()
                .add(accepted);
        }
        if counted {
            self.conflict_events
                .entry(event.source_system.as_str().to_owned())
                .or_default()
                .add(accepted);
        }
    }
}

impl ConflictTally {
    fn add(&mut self, accepted: bool) {
        if accepted {
            self.accepted += 1;
        } else {
            self.rejected += 1;
        }
    }

    /// Rejected and accepted together.
    pub fn total(self) -> u64 {
        self.rejected + self.accepted
    }
}
