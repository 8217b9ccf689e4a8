//! The write-back lifecycle in the fold (DESIGN.md "Write-back lifecycle and KPIs"): acks,
//! retries with backoff under the same command id, give-up and rejection alerts, and the
//! deadlines hirestate's timers write into the log (`deadline_reached`).
//!
//! Expected values are written by hand from `schemas/policy/`: write-back SLA 15 min, 5 attempts,
//! backoff 30 s doubling up to 15 min; dwell SLA of `applied` 2 days (owner recruiter), of
//! `triage` 3 days; the owner of `applied → triage` is the recruiter.

use hirestate::fold::timers::{self, Due};
use hirestate::fold::{apply, Outcome};
use hirestate::model::{
    AckStatus, AlertKind, CandidateState, CommandStatus, Decision, Event, EventKind, RejectReason,
    SourceSystem, TimerKind, Timestamp,
};
use hirestate::policy::Policy;

const T0: i64 = 1_793_610_000_000_000; // 2026-11-02T09:00:00Z
const SEC: i64 = 1_000_000;

fn policy() -> Policy {
    hirestate::policy::load(&hirestate::policy::default_dir()).expect("the shipped policy loads")
}

struct Script {
    policy: Policy,
    state: CandidateState,
    n: u32,
}

impl Script {
    /// `app-1` created by the ATS in `na` at T0, moved to `triage` by the vendor at T0 + 1 s:
    /// one `move_stage` to greenhouse is pending.
    fn with_one_command() -> (Script, String) {
        let mut s = Script {
            policy: policy(),
            state: CandidateState::default(),
            n: 0,
        };
        let out = s.send(
            SourceSystem::Ats,
            0,
            EventKind::ApplicationCreated {
                requisition_id: "req-1".into(),
                region: "na".into(),
            },
        );
        assert_eq!(out.decision, Decision::Applied);
        let out = s.send(
            SourceSystem::ScreeningVendor,
            1,
            EventKind::StageChanged {
                to_stage: "triage".into(),
                reason: None,
            },
        );
        assert_eq!(out.decision, Decision::Applied, "{:?}", out.detail);
        assert_eq!(out.commands.len(), 1);
        let id = out.commands[0].command_id.clone();
        (s, id.to_string())
    }

    fn event(&mut self, source: SourceSystem, at_secs: i64, kind: EventKind) -> Event {
        self.n += 1;
        Event {
            event_id: format!("e{}", self.n),
            candidate_id: "cand-1".into(),
            application_id: "app-1".into(),
            source_system: source,
            source_principal: "p".into(),
            occurred_at: Timestamp(T0 + at_secs * SEC),
            signature: None,
            kind,
        }
    }

    fn send(&mut self, source: SourceSystem, at_secs: i64, kind: EventKind) -> Outcome {
        let e = self.event(source, at_secs, kind);
        apply(&mut self.state, &e, &self.policy)
    }

    fn ack(&mut self, id: &str, at_secs: i64, status: AckStatus, retryable: bool) -> Outcome {
        self.send(
            SourceSystem::AtsSink,
            at_secs,
            EventKind::WritebackAcked {
                command_id: id.into(),
                status,
                remote_ref: None,
                error: Some("HTTP 503".into()),
                retryable,
            },
        )
    }

    /// Folds the event hirestate's timers would write for `due`.
    fn fire(&mut self, due: &Due) -> Outcome {
        let e = timers::event("cand-1", due);
        apply(&mut self.state, &e, &self.policy)
    }

    fn due(&self, timer: TimerKind) -> Due {
        timers::pending(&self.state, &self.policy)
            .into_iter()
            .find(|d| d.timer == timer)
            .unwrap_or_else(|| panic!("no pending {timer:?} in {:#?}", self.state))
    }
}

#[test]
fn a_new_command_is_pending_with_a_writeback_deadline_fifteen_minutes_after_its_event() {
    let (s, id) = Script::with_one_command();
    let rec = &s.state.commands[id.as_str()];
    assert_eq!(rec.status, CommandStatus::Pending);
    assert_eq!(rec.attempts, 1);
    assert_eq!(rec.owner, "recruiter");
    let due = s.due(TimerKind::WritebackSla);
    assert_eq!(*due.subject, *id);
    assert_eq!(due.at, Timestamp(T0 + (1 + 900) * SEC));
    // The application's dwell clock restarted on the move: triage, 3 days.
    let dwell = s.due(TimerKind::StageDwell);
    assert_eq!(&*dwell.subject, "triage");
    assert_eq!(dwell.at, Timestamp(T0 + (1 + 3 * 86_400) * SEC));
}

#[test]
fn a_retryable_failure_re_emits_the_same_id_with_attempt_two_after_thirty_seconds() {
    let (mut s, id) = Script::with_one_command();
    let out = s.ack(&id, 10, AckStatus::Failed, true);
    assert_eq!(out.decision, Decision::Applied);
    assert!(out.alerts.is_empty(), "{:?}", out.alerts);
    assert!(
        out.commands.is_empty(),
        "nothing is re-sent before the backoff"
    );
    let retry = s.due(TimerKind::Retry);
    assert_eq!(retry.at, Timestamp(T0 + (10 + 30) * SEC));
    assert_eq!(retry.attempt, 2);
    assert!(
        out.scheduled.contains(&retry),
        "the ack schedules the retry"
    );

    let out = s.fire(&retry);
    assert_eq!(out.decision, Decision::Applied);
    assert_eq!(out.commands.len(), 1);
    assert_eq!(*out.commands[0].command_id, *id);
    assert_eq!(out.commands[0].attempt, 2);
    assert_eq!(s.state.commands[id.as_str()].status, CommandStatus::Pending);

    // The same deadline folded again (the timer fired twice around a crash) is a duplicate.
    let again = s.fire(&retry);
    assert_eq!(again.decision, Decision::Duplicate);
    assert!(again.commands.is_empty());
}

#[test]
fn backoff_doubles_and_is_capped_at_fifteen_minutes() {
    let p = policy();
    let secs: Vec<i64> = (1..=7).map(|a| timers::backoff_secs(a, &p)).collect();
    assert_eq!(secs, [30, 60, 120, 240, 480, 900, 900]);
}

#[test]
fn the_fifth_failed_attempt_gives_up_with_a_writeback_failed_alert_to_the_owner() {
    let (mut s, id) = Script::with_one_command();
    let mut t = 10;
    for attempt in 2..=5 {
        s.ack(&id, t, AckStatus::Failed, true);
        let retry = s.due(TimerKind::Retry);
        assert_eq!(retry.attempt, attempt);
        let out = s.fire(&retry);
        assert_eq!(out.commands[0].attempt, attempt);
        t += 1_000;
    }
    let out = s.ack(&id, t, AckStatus::Failed, true);
    assert_eq!(out.alerts.len(), 1, "{:?}", out.alerts);
    assert_eq!(out.alerts[0].kind, AlertKind::WritebackFailed);
    assert_eq!(out.alerts[0].owner, "recruiter");
    assert!(
        out.alerts[0].detail.contains("5 of 5"),
        "{}",
        out.alerts[0].detail
    );
    let rec = &s.state.commands[id.as_str()];
    assert_eq!(rec.status, CommandStatus::Failed);
    assert!(!rec.open());
    assert!(timers::pending(&s.state, &s.policy)
        .iter()
        .all(|d| *d.subject != *id));
}

#[test]
fn a_failure_that_may_not_be_retried_alerts_at_once() {
    let (mut s, id) = Script::with_one_command();
    let out = s.ack(&id, 10, AckStatus::Failed, false);
    assert_eq!(out.alerts.len(), 1);
    assert_eq!(out.alerts[0].kind, AlertKind::WritebackFailed);
    assert!(out.alerts[0].detail.contains("not retryable"));
    assert!(!s.state.commands[id.as_str()].open());
}

#[test]
fn a_rejection_alerts_the_owner_and_closes_the_command() {
    let (mut s, id) = Script::with_one_command();
    let out = s.ack(&id, 10, AckStatus::Rejected, false);
    assert_eq!(out.alerts.len(), 1);
    assert_eq!(out.alerts[0].kind, AlertKind::WritebackRejected);
    assert_eq!(out.alerts[0].owner, "recruiter");
    assert_eq!(
        s.state.commands[id.as_str()].status,
        CommandStatus::Rejected
    );
    // A late second ack changes the status but raises nothing more.
    let late = s.ack(&id, 20, AckStatus::Confirmed, false);
    assert!(late.alerts.is_empty());
    assert_eq!(
        s.state.commands[id.as_str()].status,
        CommandStatus::Confirmed
    );
}

#[test]
fn a_confirmation_before_the_retry_cancels_it() {
    let (mut s, id) = Script::with_one_command();
    s.ack(&id, 10, AckStatus::Failed, true);
    let retry = s.due(TimerKind::Retry);
    s.ack(&id, 20, AckStatus::Confirmed, false);
    let out = s.fire(&retry);
    assert_eq!(out.decision, Decision::Stale);
    assert!(out.commands.is_empty());
}

#[test]
fn writeback_stuck_fires_once_per_command() {
    let (mut s, id) = Script::with_one_command();
    let due = s.due(TimerKind::WritebackSla);
    let out = s.fire(&due);
    assert_eq!(out.decision, Decision::Applied);
    assert_eq!(out.alerts.len(), 1);
    assert_eq!(out.alerts[0].kind, AlertKind::WritebackStuck);
    assert_eq!(out.alerts[0].owner, "recruiter");
    assert!(out.alerts[0].detail.contains(&id));
    // Not pending any more, and the same deadline again is a duplicate.
    assert!(timers::pending(&s.state, &s.policy)
        .iter()
        .all(|d| d.timer != TimerKind::WritebackSla));
    assert_eq!(s.fire(&due).decision, Decision::Duplicate);
}

#[test]
fn stuck_fires_once_per_stage_entry_and_again_after_a_move() {
    let (mut s, _) = Script::with_one_command();
    let triage = s.due(TimerKind::StageDwell);
    let out = s.fire(&triage);
    assert_eq!(out.alerts.len(), 1);
    assert_eq!(out.alerts[0].kind, AlertKind::Stuck);
    assert_eq!(out.alerts[0].owner, "recruiter");
    assert!(timers::pending(&s.state, &s.policy)
        .iter()
        .all(|d| d.timer != TimerKind::StageDwell));

    // The next stage entry has its own deadline: screening, 7 days, owner screening vendor.
    let moved_at = 4 * 86_400;
    let out = s.send(
        SourceSystem::Ats,
        moved_at,
        EventKind::StageChanged {
            to_stage: "screening".into(),
            reason: None,
        },
    );
    assert_eq!(out.decision, Decision::Applied);
    let screening = s.due(TimerKind::StageDwell);
    assert_eq!(screening.at, Timestamp(T0 + (moved_at + 7 * 86_400) * SEC));
    assert!(out.scheduled.contains(&screening));
    let out = s.fire(&screening);
    assert_eq!(out.alerts[0].kind, AlertKind::Stuck);
    assert_eq!(out.alerts[0].owner, "screening vendor");
}

#[test]
fn a_dwell_deadline_of_a_stage_already_left_is_stale() {
    let (mut s, _) = Script::with_one_command();
    let triage = s.due(TimerKind::StageDwell);
    s.send(
        SourceSystem::Ats,
        100,
        EventKind::StageChanged {
            to_stage: "screening".into(),
            reason: None,
        },
    );
    let out = s.fire(&triage);
    assert_eq!(out.decision, Decision::Stale);
    assert!(out.alerts.is_empty());
}

#[test]
fn deadlines_may_only_come_from_hirestate_and_hirestate_sends_nothing_else() {
    let (mut s, id) = Script::with_one_command();
    let forged = EventKind::DeadlineReached {
        timer: TimerKind::WritebackSla,
        subject: id,
        due_at: Timestamp(T0),
        attempt: 0,
    };
    let out = s.send(SourceSystem::Ats, 5, forged);
    assert_eq!(
        out.decision,
        Decision::Rejected(RejectReason::UnauthorizedSource)
    );
    let out = s.send(
        SourceSystem::Hirestate,
        6,
        EventKind::StageChanged {
            to_stage: "screening".into(),
            reason: None,
        },
    );
    assert_eq!(
        out.decision,
        Decision::Rejected(RejectReason::UnauthorizedSource)
    );
}

#[test]
fn timer_events_carry_deterministic_ids_and_occur_at_the_deadline() {
    let (s, _) = Script::with_one_command();
    for due in timers::pending(&s.state, &s.policy) {
        let a = timers::event("cand-1", &due);
        let b = timers::event("cand-1", &due);
        assert_eq!(a, b);
        assert_eq!(a.occurred_at, due.at);
        assert_eq!(a.source_system, SourceSystem::Hirestate);
        assert_eq!(timers::named(&a), Some(due));
    }
}
