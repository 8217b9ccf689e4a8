//! Properties of the fold over event sequences: hand-rolled proptest strategies producing
//! plausible (and implausible) events for a few candidates, and `generate::stream` with random
//! seeds.
//!
//! - determinism: folding the same sequence twice gives identical outcomes and states;
//! - idempotence: exact copies of earlier events inserted anywhere after their originals are
//!   `duplicate`, change nothing, and leave every other outcome and the final state as they were;
//! - authority: no `applied` decision moves a stage along a move DESIGN.md does not list, or on
//!   the word of a system that is not its authority; no other decision moves a stage at all;
//! - command ids: equal to DESIGN.md's SHA-256 formula (recomputed here with `sha2`), and one id
//!   per (event, op, target);
//! - atomicity: a rejected event changes nothing but the seen-id set (and the documented
//!   `last_event_at` bookkeeping); a duplicate changes nothing at all.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use hirestate::fold::timers::{self, Due};
use hirestate::fold::{apply, Outcome};
use hirestate::generate::{stream, Spec};
use hirestate::model::{
    AckStatus, AlertKind, CandidateState, Decision, Event, EventKind, FieldValue, SourceSystem,
    TimerKind, Timestamp,
};
use hirestate::policy::Policy;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// The contract, by hand from DESIGN.md.
// ---------------------------------------------------------------------------------------------

const ATS: &str = "ats";
const VENDOR: &str = "screening_vendor";
const HRIS: &str = "hris";
const BEFORE_HIRED: [&str; 6] = [
    "applied",
    "triage",
    "screening",
    "screened",
    "interview",
    "offer",
];

/// DESIGN.md "The canonical state machine": may `source` move `from` → `to`?
fn allowed(from: &str, to: &str, source: &str) -> bool {
    let authority: &[&str] = match (from, to) {
        ("applied", "triage") => &[ATS, VENDOR],
        ("applied", "screening") => &[VENDOR],
        ("triage", "screening") => &[ATS, VENDOR],
        ("screening", "screened") => &[VENDOR],
        ("screened", "interview") => &[ATS],
        ("interview", "offer") => &[ATS],
        ("offer", "hired") => &[ATS, HRIS],
        (f, "rejected") if BEFORE_HIRED.contains(&f) => &[ATS],
        (f, "withdrawn") if BEFORE_HIRED.contains(&f) => &[ATS, VENDOR],
        ("rejected" | "withdrawn", "triage") => &[ATS],
        _ => &[],
    };
    authority.contains(&source)
}

/// DESIGN.md: lowercase hex of the first 16 bytes of SHA-256(event_id 0x1F op 0x1F target).
fn expected_id(event_id: &str, op: &str, target: &str) -> String {
    let mut h = Sha256::new();
    h.update(event_id.as_bytes());
    h.update(b"\x1f");
    h.update(op.as_bytes());
    h.update(b"\x1f");
    h.update(target.as_bytes());
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Policy.
// ---------------------------------------------------------------------------------------------

/// The shipped policy (its digest is checked by `policy_check`; a stale one fails here too).
fn policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| {
        hirestate::policy::load(&hirestate::policy::default_dir())
            .expect("the shipped policy loads")
    })
}

// ---------------------------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------------------------

const STAGE_NAMES: [&str; 10] = [
    "applied",
    "triage",
    "screening",
    "screened",
    "interview",
    "offer",
    "hired",
    "rejected",
    "withdrawn",
    "limbo", // not in the policy
];

const OPS: [&str; 3] = ["move_stage", "update_fields", "create_pre_hire"];
const TARGETS: [&str; 3] = ["greenhouse", "lever", "workday"];

fn source() -> impl Strategy<Value = SourceSystem> {
    prop_oneof![
        5 => Just(SourceSystem::Ats),
        5 => Just(SourceSystem::ScreeningVendor),
        2 => Just(SourceSystem::Hris),
        1 => Just(SourceSystem::AtsSink),
        1 => Just(SourceSystem::HrisSink),
        1 => Just(SourceSystem::Privacy),
    ]
}

fn field() -> impl Strategy<Value = (String, FieldValue)> {
    let t = |s: &str| FieldValue::Text(s.to_owned());
    prop_oneof![
        (-5.0f64..105.0).prop_map(|n| ("screening.score".to_owned(), FieldValue::Number(n))),
        prop::sample::select(vec!["advance", "hold", "not_recommended", "maybe"])
            .prop_map(move |r| ("screening.recommendation".to_owned(), t(r))),
        Just((
            "screening.media_url".to_owned(),
            t("https://media.example/r/1")
        )),
        Just((
            "screening.transcript_url".to_owned(),
            t("http://media.example/t/1")
        )),
        Just((
            "screening.reviewer_ids".to_owned(),
            FieldValue::List(vec!["rev-1".into()])
        )),
        Just(("candidate.name".to_owned(), t("Ada Moreno"))),
        Just(("candidate.email".to_owned(), t("ada@example.com"))),
        prop::sample::select(vec!["2027-01-04", "2027-02-30", "04/01/2027"])
            .prop_map(move |d| ("offer.start_date".to_owned(), t(d))),
        Just(("worker.employee_id".to_owned(), t("W-1"))),
        Just(("candidate.shoe_size".to_owned(), FieldValue::Number(44.0))),
    ]
}

/// An event's kind, with acks naming (by index) an earlier event whose command they answer.
#[derive(Debug, Clone)]
enum Proto {
    Kind(EventKind),
    /// Ack of (earlier event index, op, target): an issued command or not, as it happens.
    Ack(usize, usize, usize, AckStatus),
}

fn proto() -> impl Strategy<Value = Proto> {
    let urls = prop::option::of(prop::sample::select(vec![
        "https://media.example/r/2",
        "http://media.example/r/2",
    ]));
    prop_oneof![
        2 => prop::sample::select(vec!["na", "emea", "na", "apac"]).prop_map(|r| {
            Proto::Kind(EventKind::ApplicationCreated {
                requisition_id: "req-1".to_owned(),
                region: r.to_owned(),
            })
        }),
        8 => prop::sample::select(STAGE_NAMES.to_vec()).prop_map(|s| {
            Proto::Kind(EventKind::StageChanged {
                to_stage: s.to_owned(),
                reason: None,
            })
        }),
        3 => (
            prop_oneof![4 => 0.0f64..=100.0, 1 => 100.5f64..120.0],
            prop::sample::select(vec!["advance", "hold", "not_recommended", "strong_yes"]),
            urls.clone(),
            urls,
        )
            .prop_map(|(score, rec, media, transcript)| {
                Proto::Kind(EventKind::ScreeningCompleted {
                    score,
                    recommendation: rec.to_owned(),
                    rubric_version: "r-1".to_owned(),
                    reviewer_ids: vec!["rev-1".to_owned()],
                    media_url: media.map(str::to_owned),
                    transcript_url: transcript.map(str::to_owned),
                })
            }),
        3 => prop::collection::vec(field(), 1..4).prop_map(|f| {
            Proto::Kind(EventKind::FieldsAsserted {
                fields: f.into_iter().collect::<BTreeMap<_, _>>(),
            })
        }),
        3 => (
            any::<prop::sample::Index>(),
            0..OPS.len(),
            0..TARGETS.len(),
            prop::sample::select(vec![AckStatus::Confirmed, AckStatus::Failed, AckStatus::Rejected]),
        )
            .prop_map(|(i, op, t, st)| Proto::Ack(i.index(usize::MAX), op, t, st)),
        1 => Just(Proto::Kind(EventKind::ErasureRequested {})),
    ]
}

/// One generated event before ids and times are fixed.
#[derive(Debug, Clone)]
struct Draft {
    candidate: usize,
    application: usize,
    source: SourceSystem,
    proto: Proto,
    /// Reuse an earlier event's id (a resend under the same id, possibly different content).
    reuse_id: Option<prop::sample::Index>,
    gap_secs: i64,
}

fn draft() -> impl Strategy<Value = Draft> {
    (
        0..3usize,
        0..2usize,
        source(),
        proto(),
        prop::option::weighted(0.08, any::<prop::sample::Index>()),
        0..86_400i64,
    )
        .prop_map(
            |(candidate, application, source, proto, reuse_id, gap_secs)| Draft {
                candidate,
                application,
                source,
                proto,
                reuse_id,
                gap_secs,
            },
        )
}

/// Fixes ids, times and ack targets. Each candidate starts with an application the ATS
/// created, so that most events reach the stage and field rules.
fn materialise(drafts: &[Draft]) -> Vec<Event> {
    let mut seq = Seq {
        at: Timestamp(1_793_610_000_000_000), // 2026-11-02T09:00:00Z
        events: Vec::new(),
    };
    for c in 0..3 {
        let kind = EventKind::ApplicationCreated {
            requisition_id: "req-0".to_owned(),
            region: if c == 1 { "emea" } else { "na" }.to_owned(),
        };
        seq.push(c, 0, SourceSystem::Ats, kind, None);
    }
    for d in drafts {
        seq.at = seq.at.plus_secs(d.gap_secs);
        let n = seq.events.len();
        let kind = match &d.proto {
            Proto::Kind(k) => k.clone(),
            Proto::Ack(i, op, t, status) => EventKind::WritebackAcked {
                command_id: expected_id(&seq.events[i % n].event_id, OPS[*op], TARGETS[*t]),
                status: *status,
                remote_ref: None,
                error: None,
                retryable: *status == AckStatus::Failed,
            },
        };
        let reuse = d.reuse_id.map(|i| i.index(n));
        seq.push(d.candidate, d.application, d.source, kind, reuse);
    }
    seq.events
}

struct Seq {
    at: Timestamp,
    events: Vec<Event>,
}

impl Seq {
    fn push(
        &mut self,
        c: usize,
        a: usize,
        source: SourceSystem,
        kind: EventKind,
        reuse: Option<usize>,
    ) {
        self.at = self.at.plus_secs(60);
        let candidate_id = format!("cand-{c}");
        let event_id = match reuse {
            Some(j) if self.events[j].candidate_id == candidate_id => {
                self.events[j].event_id.clone()
            }
            _ => format!("e{}", self.events.len()),
        };
        self.events.push(Event {
            event_id,
            candidate_id,
            application_id: format!("app-{c}-{a}"),
            source_system: source,
            source_principal: "p".to_owned(),
            occurred_at: self.at,
            signature: None,
            kind,
        });
    }
}

fn sequence() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec(draft(), 1..80).prop_map(|d| materialise(&d))
}

// ---------------------------------------------------------------------------------------------
// Folding and the properties.
// ---------------------------------------------------------------------------------------------

type States = BTreeMap<String, CandidateState>;

fn fold_all(events: &[Event], policy: &Policy) -> (Vec<Outcome>, States) {
    let mut states = States::new();
    let outcomes = events
        .iter()
        .map(|e| apply(states.entry(e.candidate_id.clone()).or_default(), e, policy))
        .collect();
    (outcomes, states)
}

/// Folds `events` checking, event by event, authority, atomicity and command ids.
fn check_each_step(events: &[Event], policy: &Policy) -> Result<(), TestCaseError> {
    let mut states = States::new();
    // command id → (event id, op, target, candidate)
    let mut ids: HashMap<String, (String, String, String, String)> = HashMap::new();
    for e in events {
        let state = states.entry(e.candidate_id.clone()).or_default();
        let before = state.clone();
        let out = apply(state, e, policy);
        let ctx = format!("{} {:?} from {}", e.event_id, e.kind, e.source_system);

        // The reported stages are the application's stages before and after.
        let stage_of = |s: &CandidateState| {
            s.applications
                .get(&e.application_id)
                .map(|a| a.stage.clone())
        };
        prop_assert_eq!(&out.stage_before, &stage_of(&before), "{}", ctx);
        prop_assert_eq!(&out.stage_after, &stage_of(state), "{}", ctx);

        match out.decision {
            Decision::Duplicate => {
                prop_assert!(before.seen_event_ids.contains(&e.event_id), "{}", ctx);
                prop_assert_eq!(&*state, &before, "a duplicate changes nothing: {}", ctx);
                prop_assert!(out.commands.is_empty() && out.alerts.is_empty(), "{}", ctx);
            }
            Decision::Rejected(_) => {
                prop_assert!(!before.seen_event_ids.contains(&e.event_id), "{}", ctx);
                let mut seen = before.seen_event_ids.clone();
                seen.insert(e.event_id.clone());
                prop_assert_eq!(&state.seen_event_ids, &seen, "{}", ctx);
                prop_assert_eq!(&state.applications, &before.applications, "{}", ctx);
                prop_assert_eq!(&state.commands, &before.commands, "{}", ctx);
                prop_assert!(out.commands.is_empty(), "{}", ctx);
            }
            Decision::Stale => {
                prop_assert_eq!(&out.stage_after, &out.stage_before, "{}", ctx);
                prop_assert!(
                    matches!(
                        e.kind,
                        EventKind::StageChanged { .. }
                            | EventKind::ScreeningCompleted { .. }
                            | EventKind::DeadlineReached { .. }
                    ),
                    "only stage requests and deadlines are stale: {}",
                    ctx
                );
            }
            Decision::Applied => {
                prop_assert!(!before.seen_event_ids.contains(&e.event_id), "{}", ctx);
                match (&out.stage_before, &out.stage_after) {
                    (None, Some(after)) => {
                        prop_assert!(
                            matches!(e.kind, EventKind::ApplicationCreated { .. }),
                            "{}",
                            ctx
                        );
                        prop_assert_eq!(e.source_system, SourceSystem::Ats, "{}", ctx);
                        prop_assert_eq!(&**after, "applied", "{}", ctx);
                    }
                    (Some(b), Some(a)) if b != a => {
                        prop_assert!(
                            allowed(b, a, e.source_system.as_str()),
                            "applied an unlisted or unauthorised move {} -> {}: {}",
                            b,
                            a,
                            ctx
                        );
                    }
                    _ => {}
                }
            }
        }
        if out.decision != Decision::Applied {
            prop_assert_eq!(&out.stage_after, &out.stage_before, "{}", ctx);
        }

        for c in &out.commands {
            let op = c.op().as_str();
            prop_assert_eq!(&c.causing_event_id, &e.event_id);
            let expected = expected_id(&e.event_id, op, &c.target);
            prop_assert_eq!(&*c.command_id, expected.as_str(), "{}", ctx);
            let triple = (
                e.event_id.clone(),
                op.to_owned(),
                c.target.to_string(),
                e.candidate_id.clone(),
            );
            if let Some(prev) = ids.insert(c.command_id.to_string(), triple.clone()) {
                // Only the same (event, op, target) may share an id, and then only in
                // another candidate's log (one candidate never folds an event id twice).
                prop_assert_eq!(&prev.0, &triple.0, "id collision: {}", ctx);
                prop_assert_eq!(&prev.1, &triple.1, "id collision: {}", ctx);
                prop_assert_eq!(&prev.2, &triple.2, "id collision: {}", ctx);
                prop_assert_ne!(&prev.3, &triple.3, "id issued twice: {}", ctx);
            }
        }
    }
    Ok(())
}

fn check_deterministic(events: &[Event], policy: &Policy) -> Result<(), TestCaseError> {
    let (o1, s1) = fold_all(events, policy);
    let (o2, s2) = fold_all(events, policy);
    prop_assert_eq!(o1.len(), events.len());
    prop_assert_eq!(&o1, &o2);
    prop_assert_eq!(&s1, &s2);
    Ok(())
}

/// `inserts`: (original index, how far after it) pairs; copies go after their originals.
fn check_idempotent(
    events: &[Event],
    inserts: &[(prop::sample::Index, prop::sample::Index)],
    policy: &Policy,
) -> Result<(), TestCaseError> {
    if events.is_empty() {
        return Ok(());
    }
    // After position p (0-based) come the copies whose insertion point is p.
    let mut after: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (orig, gap) in inserts {
        let i = orig.index(events.len());
        let p = i + gap.index(events.len() - i);
        after.entry(p).or_default().push(i);
    }
    let mut with_dups = Vec::new();
    let mut is_copy = Vec::new();
    for (p, e) in events.iter().enumerate() {
        with_dups.push(e.clone());
        is_copy.push(false);
        for i in after.get(&p).into_iter().flatten() {
            with_dups.push(events[*i].clone());
            is_copy.push(true);
        }
    }
    let (base_out, base_states) = fold_all(events, policy);
    let (dup_out, dup_states) = fold_all(&with_dups, policy);
    prop_assert_eq!(
        &base_states,
        &dup_states,
        "duplicates changed the final state"
    );
    let mut originals = Vec::new();
    for (out, copy) in dup_out.into_iter().zip(is_copy) {
        if copy {
            prop_assert_eq!(out.decision, Decision::Duplicate);
            prop_assert!(out.commands.is_empty());
        } else {
            originals.push(out);
        }
    }
    prop_assert_eq!(&base_out, &originals, "duplicates changed other outcomes");
    Ok(())
}

fn inserts() -> impl Strategy<Value = Vec<(prop::sample::Index, prop::sample::Index)>> {
    prop::collection::vec(
        (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
        1..12,
    )
}

fn generated(seed: u64, candidates: usize, acks: bool) -> Vec<Event> {
    let spec = Spec {
        seed,
        candidates,
        acks,
        ..Spec::default()
    };
    stream(&spec, policy())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn handmade_sequences_are_folded_deterministically(events in sequence()) {
        check_deterministic(&events, policy())?;
    }

    #[test]
    fn handmade_sequences_keep_authority_atomicity_and_command_ids(events in sequence()) {
        check_each_step(&events, policy())?;
    }

    #[test]
    fn handmade_sequences_ignore_inserted_duplicates(events in sequence(), ins in inserts()) {
        check_idempotent(&events, &ins, policy())?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn generated_streams_are_folded_deterministically(seed in any::<u64>(), n in 1usize..40) {
        let events = generated(seed, n, true);
        check_deterministic(&events, policy())?;
        // The generator itself is deterministic in its seed.
        prop_assert_eq!(&events, &generated(seed, n, true));
    }

    #[test]
    fn generated_streams_keep_authority_atomicity_and_command_ids(
        seed in any::<u64>(),
        n in 1usize..40,
        acks in any::<bool>(),
    ) {
        check_each_step(&generated(seed, n, acks), policy())?;
    }

    #[test]
    fn generated_streams_fire_each_deadline_alert_once(seed in any::<u64>(), n in 1usize..30) {
        check_timers(&generated(seed, n, true), policy())?;
    }

    #[test]
    fn generated_streams_ignore_inserted_duplicates(
        seed in any::<u64>(),
        n in 1usize..25,
        ins in inserts(),
    ) {
        check_idempotent(&generated(seed, n, true), &ins, policy())?;
    }
}

/// Timers (`fold::timers`): every deadline a state waits for was announced by the event that
/// started it (so the processor's index, fed from outcomes, misses none); firing every due
/// deadline in time order, over and over, raises each `stuck` once per stage entry and each
/// `writeback_stuck` once per command, re-emits retries under the same id with the next
/// attempt, and ends with nothing pending but deadlines still in the future.
fn check_timers(events: &[Event], policy: &Policy) -> Result<(), TestCaseError> {
    let mut states: States = States::new();
    let mut announced: Vec<(String, Due)> = Vec::new();
    for e in events {
        let state = states.entry(e.candidate_id.clone()).or_default();
        let out = apply(state, e, policy);
        announced.extend(
            out.scheduled
                .into_iter()
                .map(|d| (e.candidate_id.clone(), d)),
        );
    }
    for (cand, state) in &states {
        for due in timers::pending(state, policy) {
            prop_assert!(
                announced.contains(&(cand.clone(), due.clone())),
                "pending {:?} of {} was never announced",
                due,
                cand
            );
        }
    }
    // Fire everything due, three rounds (round two and three find only duplicates or nothing).
    let mut alerted: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut fired: Vec<(String, Due)> = Vec::new();
    let mut effects = 0;
    let pending_at_start: usize = states
        .values()
        .map(|s| timers::pending(s, policy).len())
        .sum();
    for _round in 0..3 {
        let mut due_now: Vec<(String, Due)> = states
            .iter()
            .flat_map(|(c, s)| {
                timers::pending(s, policy)
                    .into_iter()
                    .map(move |d| (c.clone(), d))
            })
            .collect();
        due_now.extend(fired.iter().cloned());
        due_now.sort_by_key(|(_, d)| d.at);
        for (cand, due) in due_now {
            let e = timers::event(&cand, &due);
            let state = states.get_mut(&cand).expect("a timer's candidate exists");
            let before_attempts = state.commands.get(&*due.subject).map(|c| c.attempts);
            let out = apply(state, &e, policy);
            effects += out.alerts.len() + out.commands.len();
            for a in &out.alerts {
                let key = match a.kind {
                    AlertKind::Stuck => format!("stuck {} {}", a.application_id, due.at.micros()),
                    other => format!("{} {}", other.as_str(), due.subject),
                };
                *alerted.entry((cand.clone(), key)).or_default() += 1;
            }
            for c in &out.commands {
                prop_assert_eq!(due.timer, TimerKind::Retry);
                prop_assert_eq!(&*c.command_id, &*due.subject);
                prop_assert_eq!(Some(c.attempt), before_attempts.map(|a| a + 1));
            }
            fired.push((cand, due));
        }
    }
    for (key, n) in &alerted {
        prop_assert_eq!(*n, 1, "alert raised {} times: {:?}", n, key);
    }
    // Something was due (the first of them is live when fired): it had an effect.
    prop_assert_eq!(
        pending_at_start > 0,
        effects > 0,
        "pending timers without effect"
    );
    Ok(())
}

/// The strategies reach every decision, so the properties above are not vacuous.
#[test]
fn the_strategies_reach_every_decision() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    let mut commands = 0;
    for _ in 0..200 {
        let events = sequence().new_tree(&mut runner).unwrap().current();
        let (outs, _) = fold_all(&events, policy());
        for o in outs {
            let key = match o.decision.reason() {
                Some(r) => r.as_str().to_owned(),
                None => o.decision.name().to_owned(),
            };
            *seen.entry(key).or_default() += 1;
            commands += o.commands.len();
        }
    }
    for want in [
        "applied",
        "stale",
        "duplicate",
        "unknown_application",
        "duplicate_application",
        "unknown_stage",
        "invalid_field",
        "terminal_state",
        "forbidden_transition",
        "unauthorized_source",
        "field_conflict",
        "unknown_command",
    ] {
        assert!(seen.contains_key(want), "never reached {want}: {seen:?}");
    }
    assert!(commands > 0);
    // Some acks in a generated stream name issued commands and are applied.
    let events = generated(11, 50, true);
    let (outs, _) = fold_all(&events, policy());
    let applied_acks = events
        .iter()
        .zip(&outs)
        .filter(|(e, o)| {
            matches!(e.kind, EventKind::WritebackAcked { .. }) && o.decision == Decision::Applied
        })
        .count();
    assert!(applied_acks > 0);
}
