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
/// open command, not yet alerted; the same failed attempt, not yet retried. That is, whether
/// [`pending`] holds it; only the application or command it names is looked at (applications
/// are keyed by their id, commands by theirs), so nothing is built for the others.
pub fn live(state: &CandidateState, due: &Due, policy: &Policy) -> bool {
    let implied = match due.timer {
        TimerKind::StageDwell => state
            .applications
            .get(&*due.application_id)
            .and_then(|app| dwell(app, policy)),
        TimerKind::WritebackSla => state
            .commands
            .get(&*due.subject)
            .and_then(|c| writeback_sla(&due.subject, c, policy)),
        TimerKind::Retry => state
            .commands
            .get(&*due.subject)
            .and_then(|c| retry(&due.subject, c)),
    };
    implied.as_ref() == Some(due)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{stream, Spec};
    use crate::replay::Replayer;

    /// `live` looks only at the application or command a deadline names; it must decide what
    /// "one of `pending`'s" decides, for the deadlines a fold schedules and for near misses of
    /// them (another time, attempt, subject or application).
    #[test]
    fn live_is_membership_in_pending() {
        let policy =
            crate::policy::load(&crate::policy::default_dir()).expect("the shipped policy");
        let events = stream(
            &Spec {
                candidates: 300,
                ..Spec::default()
            },
            &policy,
        );
        let mut replay = Replayer::new(&policy);
        let mut scheduled: Vec<(String, Due)> = Vec::new();
        for e in &events {
            let out = replay.fold(e);
            scheduled.extend(
                out.scheduled
                    .into_iter()
                    .map(|d| (e.candidate_id.clone(), d)),
            );
        }
        let (mut live_seen, mut moot_seen) = (0, 0);
        for (candidate, due) in scheduled {
            // With another application ahead of the candidate's own (by key), so that finding
            // the named one matters.
            let mut state = replay.states()[&candidate].clone();
            let mut other = state
                .applications
                .values()
                .next()
                .cloned()
                .expect("one at least");
            other.application_id = "app-!".into();
            other.stage_entered_at = other.stage_entered_at.plus_secs(7);
            state.applications.insert("app-!".to_owned(), other);
            let state = &state;
            let pending = pending(state, &policy);
            let near = [
                Due {
                    at: due.at.plus_secs(1),
                    ..due.clone()
                },
                Due {
                    attempt: due.attempt + 1,
                    ..due.clone()
                },
                Due {
                    subject: "elsewhere".into(),
                    ..due.clone()
                },
                Due {
                    application_id: "app-nobody".into(),
                    ..due.clone()
                },
            ];
            for d in std::iter::once(due.clone()).chain(near) {
                let expected = pending.contains(&d);
                assert_eq!(live(state, &d, &policy), expected, "{candidate}: {d:?}");
                if expected {
                    live_seen += 1;
                } else {
                    moot_seen += 1;
                }
            }
        }
        assert!(
            live_seen > 0 && moot_seen > 0,
            "{live_seen} live, {moot_seen} moot"
        );
    }
}
