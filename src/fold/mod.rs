//! The fold: a pure function (candidate state, event, policy) → (new state, decision, effects).
//!
//! It is the whole product's logic, shared line for line by the live processor and by
//! `hirestate replay`. Invariants (each is a property test in `tests/fold_props.rs`):
//! - Deterministic: no clock, no randomness, no I/O; ordered maps only. The same events in the
//!   same order give the same states, decisions and command ids.
//! - One decision per event, checked in DESIGN.md's order; the first that matches wins.
//! - Atomic: a duplicate event changes nothing; a rejected one changes only the bookkeeping —
//!   the set of seen event ids (so a resent rejected event is a `duplicate`), `last_event_at`,
//!   and the candidate id of a new state — and emits no command.
//! - Canonical state only moves along transitions the policy lists, asserted by an authority.
//! - Write-back lifecycle (`tests/fold_lifecycle.rs`): an issued command is `pending` and kept
//!   (with its payload) until confirmed, rejected (`writeback_rejected`) or failed for good
//!   (`writeback_failed`); a retryable failure schedules its next attempt. Deadlines come in as
//!   `deadline_reached` events from hirestate's own timers ([`timers`]); each alert they raise is
//!   raised once (per stage entry, per command) and a deadline that no longer applies is `stale`.

mod stage;
pub mod timers;
mod values;

use std::sync::Arc;

use serde::Serialize;

use crate::derive::{self, Effects};
use crate::model::{
    AckStatus, Alert, AlertKind, Application, CandidateState, Command, CommandPayload,
    CommandRecord, CommandStatus, Decision, Event, EventKind, RejectReason, Rejection,
    SourceSystem, TimerKind,
};
use crate::policy::{ConflictRule, FieldClass, Policy, Transition};

pub use stage::{stage_step, StageStep};
pub use values::{asserted, spec, Asserted};

/// A field asserted by a system that is not its golden source: a KPI incident either way.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldConflict {
    pub field: String,
    pub source: SourceSystem,
    /// `true` under `latest_wins` (the value was taken), `false` under `golden_wins`.
    pub accepted: bool,
}

/// Everything one event led to.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub decision: Decision,
    /// Why, in words naming the field or transition; `None` when applied or duplicate.
    pub detail: Option<String>,
    pub stage_before: Option<Arc<str>>,
    pub stage_after: Option<Arc<str>>,
    /// Shared with the projection's [`CommandRecord::resend`], which keeps them for retries.
    pub commands: Vec<Arc<Command>>,
    pub alerts: Vec<Alert>,
    pub conflicts: Vec<FieldConflict>,
    /// Deadlines this event started (a stage entry, an issued command, a retry after
    /// backoff): what the processor adds to its deadline index.
    pub scheduled: Vec<timers::Due>,
}

impl Outcome {
    /// `decision` with the stage where it was and no effects (yet). `stage_after` stays `None`
    /// until a move sets it or [`Outcome::stayed`] copies `stage_before`, so a move clones the
    /// stage names once, not twice.
    fn unchanged(decision: Decision, stage: Option<Arc<str>>) -> Outcome {
        Outcome {
            decision,
            detail: None,
            stage_after: None,
            stage_before: stage,
            commands: Vec::new(),
            alerts: Vec::new(),
            conflicts: Vec::new(),
            scheduled: Vec::new(),
        }
    }

    /// Completes an outcome whose event did not move the application: it is where it was.
    fn stayed(&mut self) {
        if self.stage_after.is_none() {
            self.stage_after.clone_from(&self.stage_before);
        }
    }

    /// The rejection record a vendor gets back, when the event was rejected.
    pub fn rejection(&self, event: &Event, policy: &Policy) -> Option<Rejection> {
        let reason = self.decision.reason()?;
        Some(Rejection {
            event_id: event.event_id.clone(),
            candidate_id: event.candidate_id.clone(),
            application_id: event.application_id.clone(),
            source_system: event.source_system,
            source_principal: event.source_principal.clone(),
            kind: event.kind.name().to_owned(),
            reason,
            detail: self.detail.clone().unwrap_or_default(),
            stage: self.stage_before.as_deref().map(str::to_owned),
            occurred_at: event.occurred_at,
            policy_version: policy.version().to_owned(),
        })
    }
}

/// Folds `event` into `state` under `policy`.
///
/// `state` is the candidate's projection (`CandidateState::default()` for a new candidate); it
/// is changed only as the returned decision says.
pub fn apply(state: &mut CandidateState, event: &Event, policy: &Policy) -> Outcome {
    // One search of the seen set, not two; the id is copied into the set's arena only when new.
    let fresh = state.seen_event_ids.insert(&event.event_id);
    let app = state.applications.get(&event.application_id);
    let mut out = Outcome::unchanged(Decision::Applied, app.map(|a| a.stage.clone()));
    if !fresh {
        out.decision = Decision::Duplicate;
        out.stayed();
        return out;
    }
    if state.candidate_id.is_empty() {
        state.candidate_id = event.candidate_id.clone();
    }
    state.last_event_at = state.last_event_at.max(Some(event.occurred_at));

    match check(state, app, event, policy, &mut out) {
        Err((reason, detail)) => {
            out.decision = Decision::Rejected(reason);
            out.detail = Some(detail);
        }
        Ok(plan) => commit(state, event, policy, plan, &mut out),
    }
    out.stayed();
    out
}

/// What `check` found the event may do; borrows from the event and the policy.
struct Plan<'a> {
    /// The policy's name of the stage moved into (shared, not copied, into the state).
    moved_to: Option<&'a Arc<str>>,
    /// The transition of the move: its owner answers for the commands the move causes.
    transition: Option<&'a Transition>,
    stale: bool,
    fields: Vec<Asserted<'a>>,
    /// For a `writeback_acked`: where its command is in the state's commands (`check` found
    /// it there; `commit` changes it without searching again).
    acked: Option<usize>,
}

type Refusal = (RejectReason, String);

/// Steps 2–6 of DESIGN.md's decision order. Reads `state` (`app` is its application of the
/// event, if any), never writes it; records alerts and conflicts into `out` (they exist even
/// when the event is refused).
fn check<'a>(
    state: &CandidateState,
    app: Option<&Application>,
    event: &'a Event,
    policy: &'a Policy,
    out: &mut Outcome,
) -> Result<Plan<'a>, Refusal> {
    let source = event.source_system;

    // 2. Signatures: no source is configured to sign yet (governance work); nothing to refuse.

    // 3. The application must exist (and exist once).
    match (&event.kind, app) {
        (EventKind::ApplicationCreated { .. }, Some(_)) => {
            return Err((
                RejectReason::DuplicateApplication,
                format!("application {:?} was already created", event.application_id),
            ))
        }
        (EventKind::ApplicationCreated { .. }, None) => {}
        (_, None) => {
            return Err((
                RejectReason::UnknownApplication,
                format!(
                    "no application_created yet for application {:?}",
                    event.application_id
                ),
            ))
        }
        _ => {}
    }

    // 4. Known stage, valid fields.
    let requested = match &event.kind {
        EventKind::StageChanged { to_stage, .. } => Some(to_stage.as_str()),
        EventKind::ScreeningCompleted { .. } => Some(policy.screening_stage.as_str()),
        _ => None,
    };
    if let Some(to) = requested {
        if !policy.stages.contains_key(to) {
            return Err((
                RejectReason::UnknownStage,
                format!("stage {to:?} is not in the policy"),
            ));
        }
    }
    let fields =
        values::asserted(&event.kind, policy).map_err(|why| (RejectReason::InvalidField, why))?;

    // 5. The stage request, and the kinds with authority rules of their own.
    let mut plan = Plan {
        moved_to: None,
        transition: None,
        stale: false,
        fields,
        acked: None,
    };
    match &event.kind {
        EventKind::ApplicationCreated { region, .. } => {
            if !policy.regions.contains_key(region) {
                return Err((
                    RejectReason::InvalidField,
                    format!("region {region:?} is not in the policy"),
                ));
            }
            if !policy.application_created_authority.contains(&source) {
                return Err((
                    RejectReason::UnauthorizedSource,
                    format!("application_created may not come from {source}"),
                ));
            }
        }
        EventKind::WritebackAcked { command_id, .. } => {
            if !matches!(source, SourceSystem::AtsSink | SourceSystem::HrisSink) {
                return Err((
                    RejectReason::UnauthorizedSource,
                    format!("acks may not come from {source}"),
                ));
            }
            plan.acked = state.commands.position(command_id.as_str());
            if plan.acked.is_none() {
                return Err((
                    RejectReason::UnknownCommand,
                    format!("command {command_id:?} was never issued for this candidate"),
                ));
            }
        }
        EventKind::ErasureRequested {} if source != SourceSystem::Privacy => {
            return Err((
                RejectReason::UnauthorizedSource,
                format!("erasure may not come from {source}"),
            ));
        }
        EventKind::DeadlineReached { .. } if source != SourceSystem::Hirestate => {
            return Err((
                RejectReason::UnauthorizedSource,
                format!("deadlines may only come from hirestate's own timers, not {source}"),
            ));
        }
        EventKind::DeadlineReached { .. } => {}
        kind if source == SourceSystem::Hirestate => {
            return Err((
                RejectReason::UnauthorizedSource,
                format!(
                    "hirestate only writes deadlines into the log, not {}",
                    kind.name()
                ),
            ));
        }
        _ => {}
    }
    if let (Some(to), Some(app)) = (requested, app) {
        match stage::stage_step(&app.stage, to, source, policy) {
            StageStep::Move(transition) => {
                plan.moved_to = Some(&transition.to);
                plan.transition = Some(transition);
            }
            StageStep::Stale => plan.stale = true,
            StageStep::Refuse {
                reason,
                detail,
                owner,
            } => {
                if source == SourceSystem::Ats {
                    out.alerts
                        .push(alert(event, AlertKind::Divergence, owner, &detail));
                }
                return Err((reason, detail));
            }
        }
    }

    // 6. Golden sources: one refused field refuses the whole event.
    let mut refused = None;
    for f in &plan.fields {
        if f.spec.golden_source != source {
            let accepted = f.spec.conflict == ConflictRule::LatestWins;
            out.conflicts.push(FieldConflict {
                field: f.name.to_string(),
                source,
                accepted,
            });
            if !accepted && refused.is_none() {
                refused = Some(f);
            }
        }
    }
    if let Some(f) = refused {
        return Err((
            RejectReason::FieldConflict,
            format!(
                "field {:?} is owned by {}, not {source}",
                f.name,
                f.spec.golden_source.as_str()
            ),
        ));
    }
    Ok(plan)
}

/// Step 7: apply the plan, derive and record the commands.
fn commit(
    state: &mut CandidateState,
    event: &Event,
    policy: &Policy,
    plan: Plan<'_>,
    out: &mut Outcome,
) {
    if plan.stale {
        out.decision = Decision::Stale;
    }
    match &event.kind {
        EventKind::ApplicationCreated {
            requisition_id,
            region,
        } => {
            // Step 3 refused an application created twice, so the entry is vacant: inserted
            // and read back with one search.
            let app = state
                .applications
                .get_or_insert_with(event.application_id.clone(), || Application {
                    application_id: event.application_id.as_str().into(),
                    requisition_id: requisition_id.clone(),
                    region: region.clone(),
                    stage: policy.initial_stage.clone(),
                    stage_entered_at: event.occurred_at,
                    fields: Default::default(),
                    field_sources: Default::default(),
                    stuck_alerted: false,
                });
            out.stage_after = Some(policy.initial_stage.clone());
            out.scheduled.extend(timers::dwell(app, policy));
            return;
        }
        EventKind::WritebackAcked {
            command_id,
            status,
            retryable,
            error,
            ..
        } => {
            if let Some(rec) = plan.acked.map(|i| state.commands.at_mut(i)) {
                acked(
                    rec,
                    event,
                    *status,
                    *retryable,
                    error.as_deref(),
                    policy,
                    out,
                );
                out.scheduled.extend(timers::retry(command_id, rec));
            }
            return;
        }
        EventKind::DeadlineReached { .. } => {
            deadline(state, event, policy, out);
            return;
        }
        EventKind::ErasureRequested {} => {
            for app in state.applications.values_mut() {
                app.fields.retain(|name, _| {
                    policy
                        .fields
                        .get(name)
                        .is_none_or(|s| s.class == FieldClass::Internal)
                });
                let kept = &app.fields;
                app.field_sources.retain(|name, _| kept.contains_key(name));
            }
            return;
        }
        _ => {}
    }

    // Step 3 guaranteed the application exists for every other kind.
    let Some(app) = state.applications.get_mut(&event.application_id) else {
        return;
    };
    if let Some(to) = plan.moved_to {
        app.stage = Arc::clone(to);
        app.stage_entered_at = event.occurred_at;
        app.stuck_alerted = false;
        out.stage_after = Some(Arc::clone(to));
        out.scheduled.extend(timers::dwell(app, policy));
    }
    for f in &plan.fields {
        // Keyed by the dictionary's own name: a reference count, not a copy of the name, and
        // taken only for a field the application did not have yet.
        app.fields
            .set(&**f.name, f.value.as_ref().clone(), |_| Arc::clone(f.name));
        app.field_sources
            .set(&**f.name, event.source_system, |_| Arc::clone(f.name));
    }
    let effects = Effects {
        moved_to: plan.moved_to.map(|to| &**to),
        fields: &plan.fields,
    };
    let commands = derive::commands(event, app, &effects, policy);
    for c in &commands {
        let rec = CommandRecord {
            op: c.op(),
            target: c.target.clone(),
            application_id: c.application_id.clone(),
            status: CommandStatus::Pending,
            issued_at: c.occurred_at,
            acked_at: None,
            attempts: 1,
            owner: command_owner(c, &plan).to_owned(),
            retry_at: None,
            stuck_alerted: false,
            resend: Some(Arc::clone(c)),
        };
        out.scheduled
            .extend(timers::writeback_sla(&c.command_id, &rec, policy));
        state.commands.insert(c.command_id.clone(), rec);
    }
    out.commands = commands;
}

/// Who answers for `c`: the owner of the transition it writes back (`move_stage`, and
/// `create_pre_hire`, which only a move into the hired stage causes), or of the first
/// dictionary field it carries (`update_fields`).
fn command_owner<'a>(c: &Command, plan: &Plan<'a>) -> &'a str {
    let owner = match &c.payload {
        CommandPayload::MoveStage { .. } | CommandPayload::CreatePreHire { .. } => {
            plan.transition.map(|t| t.owner.as_str())
        }
        CommandPayload::UpdateFields { .. } => plan
            .fields
            .iter()
            .find(|f| f.spec.writeback == Some(c.system))
            .map(|f| f.spec.owner.as_str()),
    };
    owner.unwrap_or_default()
}

/// A `writeback_acked` for an issued command: the latest ack sets the status; a command still
/// open is closed by a confirmation, a rejection (alert) or a failure that may not be retried
/// (alert), or gets its next attempt scheduled after backoff.
fn acked(
    rec: &mut CommandRecord,
    event: &Event,
    status: AckStatus,
    retryable: bool,
    error: Option<&str>,
    policy: &Policy,
    out: &mut Outcome,
) {
    rec.status = CommandStatus::from(status);
    rec.acked_at = Some(event.occurred_at);
    if !rec.open() {
        return;
    }
    let why = error.unwrap_or("no error given");
    let attempts = rec.attempts;
    let max = policy.writeback.max_attempts;
    match status {
        AckStatus::Confirmed => {}
        AckStatus::Rejected => out.alerts.push(alert(
            event,
            AlertKind::WritebackRejected,
            rec.owner.clone(),
            &format!(
                "{} to {} rejected by the target: {why}",
                rec.op.as_str(),
                rec.target
            ),
        )),
        AckStatus::Failed if retryable && attempts < max => {
            rec.retry_at = Some(
                event
                    .occurred_at
                    .plus_secs(timers::backoff_secs(attempts, policy)),
            );
            return;
        }
        AckStatus::Failed => out.alerts.push(alert(
            event,
            AlertKind::WritebackFailed,
            rec.owner.clone(),
            &format!(
                "{} to {} failed after {attempts} of {max} attempts ({}): {why}",
                rec.op.as_str(),
                rec.target,
                if retryable {
                    "retries exhausted"
                } else {
                    "not retryable"
                }
            ),
        )),
    }
    rec.retry_at = None;
    rec.resend = None;
}

/// A `deadline_reached` written by hirestate's timers: `stale` when it no longer applies,
/// else the `stuck` / `writeback_stuck` alert (once) or the command's next attempt.
fn deadline(state: &mut CandidateState, event: &Event, policy: &Policy, out: &mut Outcome) {
    let Some(due) = timers::named(event).filter(|d| timers::live(state, d, policy)) else {
        out.decision = Decision::Stale;
        return;
    };
    match due.timer {
        TimerKind::StageDwell => {
            let Some(app) = state.applications.get_mut(&*due.application_id) else {
                return;
            };
            app.stuck_alerted = true;
            let (owner, sla) = policy
                .stages
                .get(&app.stage)
                .map(|s| (s.owner.clone(), s.dwell_sla_secs.unwrap_or_default()))
                .unwrap_or_default();
            let detail = format!(
                "in stage {} since {} — past its dwell SLA of {sla} s",
                app.stage, app.stage_entered_at
            );
            out.alerts
                .push(alert(event, AlertKind::Stuck, owner, &detail));
        }
        TimerKind::WritebackSla => {
            let Some(rec) = state.commands.get_mut(&*due.subject) else {
                return;
            };
            rec.stuck_alerted = true;
            let detail = format!(
                "{} {} to {} unconfirmed since {} — past the write-back SLA of {} s",
                rec.op.as_str(),
                due.subject,
                rec.target,
                rec.issued_at,
                policy.writeback.sla_secs
            );
            out.alerts.push(alert(
                event,
                AlertKind::WritebackStuck,
                rec.owner.clone(),
                &detail,
            ));
        }
        TimerKind::Retry => {
            let Some(rec) = state.commands.get_mut(&*due.subject) else {
                return;
            };
            let Some(resend) = rec.resend.as_mut() else {
                return;
            };
            Arc::make_mut(resend).attempt = due.attempt;
            rec.attempts = due.attempt;
            rec.status = CommandStatus::Pending;
            rec.retry_at = None;
            out.commands.push(Arc::clone(resend));
        }
    }
}

fn alert(event: &Event, kind: AlertKind, owner: String, detail: &str) -> Alert {
    Alert {
        alert_id: derive::command_id(&event.event_id, &format!("alert:{}", kind.as_str()), &owner),
        kind,
        owner,
        candidate_id: event.candidate_id.clone(),
        application_id: event.application_id.clone(),
        event_id: event.event_id.clone(),
        detail: detail.to_owned(),
        occurred_at: event.occurred_at,
    }
}
