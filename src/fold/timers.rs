//! The deadlines a candidate's state implies, and whether one that came due still means
//! something: the pure half of the write-back lifecycle's timers (the processor's half, the
//! deadline index and the clock, is `src/timers`).
//!
//! Invariants (tested in `tests/fold_table.rs` and `tests/processor_timers.rs`):
//! - Timers are a function of the state alone ([`pending`]): any copy of the state (live,
//!   restored, loaded from a snapshot) implies the same timers, so the deadline index can always
//!   be rebuilt from the projection and no timer is lost by a restart, restore or rebalance.
//! - Firing a timer is an event in the log ([`EventKind::DeadlineReached`], source `hirestate`)
//!   with a deterministic id ([`event_id`]): a timer fired twice (the index is written after
//!   the Kafka commit, so a crash in between fires it again) is a `duplicate` the second time,
//!   and an alert is raised once per stage entry / per command, never twice.
//! - A timer that no longer applies when it is folded (the application moved on, the command
//!   was confirmed meanwhile) changes nothing: the fold decides `stale`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{
    Application, CandidateState, CommandRecord, CommandStatus, Event, EventKind, SourceSystem,
    TimerKind, Timestamp,
};
use crate::policy::Policy;

/// One deadline of one candidate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Due {
    pub at: Timestamp,
    pub timer: TimerKind,
    /// Shared (`Arc`) with the application's state.
    pub application_id: Arc<str>,
    /// The stage (`stage_dwell`) or the command id.
    pub subject: Arc<str>,
    /// For `retry`, the attempt to emit; 0 otherwise.
    pub attempt: u32,
}

/// Every deadline `state` still waits for under `policy`.
pub fn pending(state: &CandidateState, policy: &Policy) -> Vec<Due> {
    let mut out: Vec<Due> = state
        .applications
        .values()
        .filter_map(|app| dwell(app, policy))
        .collect();
    for (id, c) in &state.commands {
        out.extend(writeback_sla(id, c, policy));
        out.extend(retry(id, c));
    }
    out
}

/// The dwell deadline of `app`'s current stage entry, unless alerted or the stage has no SLA.
pub fn dwell(app: &Application, policy: &Policy) -> Option<Due> {
    let sla = policy.stages.get(&app.stage)?.dwell_sla_secs?;
    (!app.stuck_alerted).then(|| Due {
        at: app.stage_entered_at.plus_secs(sla),
        timer: TimerKind::StageDwell,
        application_id: Arc::clone(&app.application_id),
        subject: Arc::clone(&app.stage),
        attempt: 0,
    })
}

/// The write-back SLA deadline of the open command `id`, unless alerted.
pub fn writeback_sla(id: &Arc<str>, c: &CommandRecord, policy: &Policy) -> Option<Due> {
    (c.open() && !c.stuck_alerted).then(|| Due {
        at: c.issued_at.plus_secs(policy.writeback.sla_secs),
        timer: TimerKind::WritebackSla,
        application_id: Arc::clone(&c.application_id),
        subject: Arc::clone(id),
        attempt: 0,
    })
}

/// The next attempt of the open command `id`, when a retryable failure scheduled one.
pub fn retry(id: &str, c: &CommandRecord) -> Option<Due> {
    match (c.open(), c.status, c.retry_at) {
        (true, CommandStatus::Failed, Some(at)) => Some(Due {
            at,
            timer: TimerKind::Retry,
            application_id: c.application_id.clone(),
            subject: id.into(),
            attempt: c.attempts + 1,
        }),
        _ => None,
    }
}

/// Whether `due` still applies to `state`: the same stage entry, not yet alerted; the same
/// open command, not yet alerted; the same failed attempt, not yet retried.
pub fn live(state: &CandidateState, due: &Due, policy: &Policy) -> bool {
    pending(state, policy).contains(due)
}

/// The deterministic id of the event that fires `due`.
pub fn event_id(due: &Due) -> String {
    match due.timer {
        TimerKind::StageDwell => format!(
            "deadline:{}:{}:{}:{}",
            due.timer.as_str(),
            due.application_id,
            due.subject,
            due.at.micros()
        ),
        TimerKind::WritebackSla => format!("deadline:{}:{}", due.timer.as_str(), due.subject),
        TimerKind::Retry => format!(
            "deadline:{}:{}:{}",
            due.timer.as_str(),
            due.subject,
            due.attempt
        ),
    }
}

/// The event that fires `due` for `candidate_id`: source `hirestate`, `occurred_at` = the
/// deadline (event time, so a replay decides exactly as the live run did).
pub fn event(candidate_id: &str, due: &Due) -> Event {
    Event {
        event_id: event_id(due),
        candidate_id: candidate_id.to_owned(),
        application_id: due.application_id.to_string(),
        source_system: SourceSystem::Hirestate,
        source_principal: "hirestate-timers".to_owned(),
        occurred_at: due.at,
        signature: None,
        kind: EventKind::DeadlineReached {
            timer: due.timer,
            subject: due.subject.to_string(),
            due_at: due.at,
            attempt: due.attempt,
        },
    }
}

/// The [`Due`] a `deadline_reached` event names.
pub fn named(event: &Event) -> Option<Due> {
    let EventKind::DeadlineReached {
        timer,
        subject,
        due_at,
        attempt,
    } = &event.kind
    else {
        return None;
    };
    Some(Due {
        at: *due_at,
        timer: *timer,
        application_id: event.application_id.as_str().into(),
        subject: subject.as_str().into(),
        attempt: *attempt,
    })
}

/// The backoff before attempt `attempts + 1`, after `attempts` emissions: the initial backoff
/// doubling per attempt, capped.
pub fn backoff_secs(attempts: u32, policy: &Policy) -> i64 {
    let w = &policy.writeback;
    let doublings = attempts.saturating_sub(1).min(30);
    w.backoff_initial_secs
        .saturating_mul(1_i64 << doublings)
        .min(w.backoff_max_secs)
}
