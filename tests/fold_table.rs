//! Table tests for the fold: one case per row of DESIGN.md's state machine, each decision and
//! reason of "Decisions of the fold", and the commands of "Commands (outbound)".
//!
//! Every expected value here is written by hand from DESIGN.md and the default policy files
//! (`schemas/policy/*.toml`: remote stage names, field keys, owners). Command ids are recomputed
//! with `sha2` directly, never with `hirestate::derive::command_id`. The policy version and
//! digest commands must carry are read from `policy.toml` with the `toml` crate, not from the
//! `Policy` the code under test parsed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hirestate::fold::{apply, Outcome};
use hirestate::model::{
    AckStatus, AlertKind, CandidateState, CommandPayload, CommandStatus, Decision, Event,
    EventKind, FieldValue, RejectReason, SourceSystem, TargetSystem, Timestamp, VecMap,
};
use hirestate::policy::Policy;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// The contract, transcribed by hand from DESIGN.md and schemas/policy/.
// ---------------------------------------------------------------------------------------------

/// Every stage of the default policy with its rank on the forward path (DESIGN.md).
const STAGES: [(&str, Option<u32>); 9] = [
    ("applied", Some(0)),
    ("triage", Some(1)),
    ("screening", Some(2)),
    ("screened", Some(3)),
    ("interview", Some(4)),
    ("offer", Some(5)),
    ("hired", Some(6)),
    ("rejected", None),
    ("withdrawn", None),
];

const TERMINAL: [&str; 3] = ["hired", "rejected", "withdrawn"];

const ATS: &str = "ats";
const VENDOR: &str = "screening_vendor";
const HRIS: &str = "hris";

/// DESIGN.md "The canonical state machine", one entry per (from, to), with its authority and
/// owner (the owner column of transitions.toml).
const TRANSITIONS: &[(&str, &str, &[&str], &str)] = &[
    ("applied", "triage", &[ATS, VENDOR], "recruiter"),
    ("applied", "screening", &[VENDOR], "recruiter"),
    ("triage", "screening", &[ATS, VENDOR], "recruiter"),
    ("screening", "screened", &[VENDOR], "screening vendor"),
    ("screened", "interview", &[ATS], "hiring manager"),
    ("interview", "offer", &[ATS], "hiring manager"),
    ("offer", "hired", &[ATS, HRIS], "recruiter"),
    ("applied", "rejected", &[ATS], "recruiter"),
    ("triage", "rejected", &[ATS], "recruiter"),
    ("screening", "rejected", &[ATS], "recruiter"),
    ("screened", "rejected", &[ATS], "recruiter"),
    ("interview", "rejected", &[ATS], "recruiter"),
    ("offer", "rejected", &[ATS], "recruiter"),
    ("applied", "withdrawn", &[ATS, VENDOR], "recruiter"),
    ("triage", "withdrawn", &[ATS, VENDOR], "recruiter"),
    ("screening", "withdrawn", &[ATS, VENDOR], "recruiter"),
    ("screened", "withdrawn", &[ATS, VENDOR], "recruiter"),
    ("interview", "withdrawn", &[ATS, VENDOR], "recruiter"),
    ("offer", "withdrawn", &[ATS, VENDOR], "recruiter"),
    ("rejected", "triage", &[ATS], "recruiter"),
    ("withdrawn", "triage", &[ATS], "recruiter"),
];

/// targets.toml `[target.greenhouse.stages]` (region `na`).
const GREENHOUSE_STAGES: [(&str, &str); 9] = [
    ("applied", "Application Review"),
    ("triage", "Recruiter Triage"),
    ("screening", "Async Screen"),
    ("screened", "Screen Complete"),
    ("interview", "Onsite Interview"),
    ("offer", "Offer"),
    ("hired", "Hired"),
    ("rejected", "Rejected"),
    ("withdrawn", "Withdrawn"),
];

/// targets.toml `[target.lever.stages]` (region `emea`).
const LEVER_STAGES: [(&str, &str); 9] = [
    ("applied", "new-applicant"),
    ("triage", "recruiter-screen"),
    ("screening", "async-screen"),
    ("screened", "screen-complete"),
    ("interview", "on-site"),
    ("offer", "offer"),
    ("hired", "hired"),
    ("rejected", "archived-rejected"),
    ("withdrawn", "archived-withdrew"),
];

const ALL_SOURCES: [SourceSystem; 6] = [
    SourceSystem::Ats,
    SourceSystem::ScreeningVendor,
    SourceSystem::Hris,
    SourceSystem::AtsSink,
    SourceSystem::HrisSink,
    SourceSystem::Privacy,
];

fn rank(stage: &str) -> Option<u32> {
    STAGES
        .iter()
        .find(|(s, _)| *s == stage)
        .and_then(|(_, r)| *r)
}

fn listed(from: &str, to: &str) -> Option<(&'static [&'static str], &'static str)> {
    TRANSITIONS
        .iter()
        .find(|(f, t, _, _)| *f == from && *t == to)
        .map(|(_, _, a, o)| (*a, *o))
}

fn remote_stage(region: &str, stage: &str) -> &'static str {
    let table = if region == "emea" {
        &LEVER_STAGES
    } else {
        &GREENHOUSE_STAGES
    };
    table
        .iter()
        .find(|(s, _)| *s == stage)
        .map(|(_, r)| *r)
        .unwrap()
}

fn ats_target(region: &str) -> &'static str {
    if region == "emea" {
        "lever"
    } else {
        "greenhouse"
    }
}

/// DESIGN.md: lowercase hex of the first 16 bytes of SHA-256(event_id 0x1F op 0x1F target).
fn expected_id(event_id: &str, op: &str, target: &str) -> String {
    let mut h = Sha256::new();
    h.update(format!("{event_id}\x1f{op}\x1f{target}").as_bytes());
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Policy and a small script builder.
// ---------------------------------------------------------------------------------------------

struct Loaded {
    policy: Policy,
    dir: PathBuf,
}

/// The shipped policy and its directory (a stale digest fails here, not silently re-signed).
fn loaded() -> &'static Loaded {
    static P: OnceLock<Loaded> = OnceLock::new();
    P.get_or_init(|| {
        let dir = hirestate::policy::default_dir();
        let policy = hirestate::policy::load(&dir).expect("the shipped policy loads");
        Loaded { policy, dir }
    })
}

fn policy() -> &'static Policy {
    &loaded().policy
}

fn copy_dir(dir: &Path) -> PathBuf {
    let tmp = tempfile::tempdir().expect("tempdir").keep();
    for entry in std::fs::read_dir(dir).expect("read policy dir") {
        let entry = entry.expect("dir entry");
        if entry.path().is_file() {
            std::fs::copy(entry.path(), tmp.join(entry.file_name())).expect("copy policy file");
        }
    }
    tmp
}

/// (version, digest) from the `[approval]` block of `policy.toml`, read independently.
fn approval_of(dir: &Path) -> (String, String) {
    let text = std::fs::read_to_string(dir.join("policy.toml")).expect("policy.toml");
    let doc: toml::Table = toml::from_str(&text).expect("policy.toml parses");
    let approval = doc["approval"].as_table().expect("[approval]");
    (
        approval["version"].as_str().expect("version").to_owned(),
        approval["digest"].as_str().expect("digest").to_owned(),
    )
}

fn approval() -> &'static (String, String) {
    static A: OnceLock<(String, String)> = OnceLock::new();
    A.get_or_init(|| approval_of(&loaded().dir))
}

/// One candidate with one application, folded event by event.
struct Script<'p> {
    policy: &'p Policy,
    state: CandidateState,
    app: String,
    n: u32,
}

impl<'p> Script<'p> {
    fn empty(policy: &'p Policy) -> Self {
        Script {
            policy,
            state: CandidateState::default(),
            app: "app-1".to_owned(),
            n: 0,
        }
    }

    /// An application created by the ATS in `region`; asserts it starts in `applied`.
    fn created_in(policy: &'p Policy, region: &str) -> Self {
        let mut s = Script::empty(policy);
        let (_, out) = s.send(SourceSystem::Ats, created("req-7", region));
        assert_eq!(out.decision, Decision::Applied, "{:?}", out.detail);
        assert_eq!(out.stage_after.as_deref(), Some("applied"));
        assert!(out.commands.is_empty());
        s
    }

    /// An application in `stage`, reached along allowed moves only.
    fn at(policy: &'p Policy, region: &str, stage: &str) -> Self {
        let mut s = Script::created_in(policy, region);
        let path: &[(SourceSystem, &str)] = match stage {
            "applied" => &[],
            "triage" => &[(SourceSystem::Ats, "triage")],
            "screening" => &[
                (SourceSystem::Ats, "triage"),
                (SourceSystem::Ats, "screening"),
            ],
            "screened" => &[
                (SourceSystem::Ats, "triage"),
                (SourceSystem::Ats, "screening"),
                (SourceSystem::ScreeningVendor, "screened"),
            ],
            "interview" | "offer" | "hired" => &[
                (SourceSystem::Ats, "triage"),
                (SourceSystem::Ats, "screening"),
                (SourceSystem::ScreeningVendor, "screened"),
                (SourceSystem::Ats, "interview"),
                (SourceSystem::Ats, "offer"),
                (SourceSystem::Ats, "hired"),
            ],
            "rejected" => &[(SourceSystem::Ats, "rejected")],
            "withdrawn" => &[(SourceSystem::Ats, "withdrawn")],
            other => panic!("no path to {other}"),
        };
        for (src, to) in path {
            if s.stage() == stage {
                break;
            }
            let (_, out) = s.send(*src, stage_changed(to));
            assert_eq!(
                out.decision,
                Decision::Applied,
                "path to {stage}: {:?}",
                out.detail
            );
        }
        assert_eq!(s.stage(), stage);
        s
    }

    fn event(&mut self, source: SourceSystem, kind: EventKind) -> Event {
        self.n += 1;
        Event {
            event_id: format!("{}-e{}", self.app, self.n),
            candidate_id: "cand-1".to_owned(),
            application_id: self.app.clone(),
            source_system: source,
            source_principal: format!("{}-principal", source.as_str()),
            // 2026-11-02T09:00:00Z plus one hour per event.
            occurred_at: Timestamp(1_793_610_000_000_000 + i64::from(self.n) * 3_600_000_000),
            signature: None,
            kind,
        }
    }

    fn fold(&mut self, event: &Event) -> Outcome {
        apply(&mut self.state, event, self.policy)
    }

    fn send(&mut self, source: SourceSystem, kind: EventKind) -> (Event, Outcome) {
        let e = self.event(source, kind);
        let out = self.fold(&e);
        (e, out)
    }

    fn stage(&self) -> &str {
        &self.state.applications[&self.app].stage
    }

    fn fields(&self) -> &VecMap<std::sync::Arc<str>, FieldValue> {
        &self.state.applications[&self.app].fields
    }
}

fn created(requisition_id: &str, region: &str) -> EventKind {
    EventKind::ApplicationCreated {
        requisition_id: requisition_id.to_owned(),
        region: region.to_owned(),
    }
}

fn stage_changed(to: &str) -> EventKind {
    EventKind::StageChanged {
        to_stage: to.to_owned(),
        reason: None,
    }
}

fn screening(score: f64, rec: &str, media: Option<&str>, transcript: Option<&str>) -> EventKind {
    EventKind::ScreeningCompleted {
        score,
        recommendation: rec.to_owned(),
        rubric_version: "swe-2026.3".to_owned(),
        reviewer_ids: vec!["rev-17".to_owned(), "rev-22".to_owned()],
        media_url: media.map(str::to_owned),
        transcript_url: transcript.map(str::to_owned),
    }
}

fn fields(items: &[(&str, FieldValue)]) -> EventKind {
    EventKind::FieldsAsserted {
        fields: items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    }
}

fn ack(command_id: &str, status: AckStatus) -> EventKind {
    EventKind::WritebackAcked {
        command_id: command_id.to_owned(),
        status,
        remote_ref: None,
        error: None,
        retryable: false,
    }
}

fn text(s: &str) -> FieldValue {
    FieldValue::Text(s.to_owned())
}

fn map(items: &[(&str, FieldValue)]) -> BTreeMap<String, FieldValue> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

const MEDIA: &str = "https://media.brightscreen.example/r/8f1c2a";
const TRANSCRIPT: &str = "https://media.brightscreen.example/t/8f1c2a";

/// Asserts `out` holds exactly the `expected` commands (any order), each with the id of
/// DESIGN.md's formula, the causing event's identity and time, and the policy's approval.
fn assert_commands(
    event: &Event,
    out: &Outcome,
    expected: &[(&str, &str, TargetSystem, CommandPayload)],
) {
    let got: Vec<String> = out
        .commands
        .iter()
        .map(|c| format!("{}→{}", c.op().as_str(), c.target))
        .collect();
    assert_eq!(
        out.commands.len(),
        expected.len(),
        "event {}: commands {got:?}",
        event.event_id
    );
    let (version, digest) = approval();
    for (op, target, system, payload) in expected {
        let c = out
            .commands
            .iter()
            .find(|c| c.op().as_str() == *op && &*c.target == *target)
            .unwrap_or_else(|| panic!("event {}: no {op}→{target} in {got:?}", event.event_id));
        assert_eq!(*c.command_id, *expected_id(&event.event_id, op, target));
        assert_eq!(c.system, *system);
        assert_eq!(&c.payload, payload, "{op}→{target} payload");
        assert_eq!(c.candidate_id, event.candidate_id);
        assert_eq!(*c.application_id, *event.application_id);
        assert_eq!(c.causing_event_id, event.event_id);
        assert_eq!(c.occurred_at, event.occurred_at);
        assert_eq!(*c.policy_version, **version);
        assert_eq!(*c.policy_digest, **digest);
        assert_eq!(c.attempt, 1);
    }
}

fn move_stage(stage: &str, remote: &str) -> CommandPayload {
    CommandPayload::MoveStage {
        stage: stage.to_owned(),
        remote_stage: remote.to_owned(),
    }
}

fn update_fields(items: &[(&str, FieldValue)]) -> CommandPayload {
    CommandPayload::UpdateFields { fields: map(items) }
}

/// Asserts a rejection with `reason` that changed nothing (stage, fields, commands).
fn assert_rejected(s: &Script<'_>, before: &CandidateState, out: &Outcome, reason: RejectReason) {
    assert_eq!(out.decision, Decision::Rejected(reason), "{:?}", out.detail);
    assert!(out.detail.is_some(), "a rejection says why");
    assert!(out.commands.is_empty(), "a rejected event emits no command");
    assert_eq!(s.state.applications, before.applications);
    assert_eq!(s.state.commands, before.commands);
    assert_eq!(out.stage_after, out.stage_before);
}

// ---------------------------------------------------------------------------------------------
// The state machine, row by row.
// ---------------------------------------------------------------------------------------------

/// What DESIGN.md says `source` asking `from → to` decides, ignoring unknown stages.
fn expected_decision(from: &str, to: &str, source: SourceSystem) -> Decision {
    if let (Some(rf), Some(rt)) = (rank(from), rank(to)) {
        if rt <= rf {
            return Decision::Stale;
        }
    }
    match listed(from, to) {
        Some((authority, _)) if authority.contains(&source.as_str()) => Decision::Applied,
        Some(_) => Decision::Rejected(RejectReason::UnauthorizedSource),
        None if TERMINAL.contains(&from) => Decision::Rejected(RejectReason::TerminalState),
        None => Decision::Rejected(RejectReason::ForbiddenTransition),
    }
}

/// Folds `source` asking `from → to` on a fresh `na` application in `from` and checks the
/// decision, the stage, the commands and the divergence alert against DESIGN.md.
fn check_move(region: &str, from: &str, to: &str, source: SourceSystem) {
    let p = policy();
    let mut s = Script::at(p, region, from);
    let before = s.state.clone();
    let (e, out) = s.send(source, stage_changed(to));
    let want = expected_decision(from, to, source);
    let case = format!("{region}: {from} -> {to} by {source}");
    assert_eq!(out.decision, want, "{case}: {:?}", out.detail);
    assert_eq!(out.stage_before.as_deref(), Some(from), "{case}");
    match want {
        Decision::Applied => {
            assert_eq!(out.stage_after.as_deref(), Some(to), "{case}");
            assert_eq!(s.stage(), to, "{case}");
            assert_eq!(out.detail, None, "{case}");
            let mut cmds = Vec::new();
            if source != SourceSystem::Ats {
                cmds.push((
                    "move_stage",
                    ats_target(region),
                    TargetSystem::Ats,
                    move_stage(to, remote_stage(region, to)),
                ));
            }
            if to == "hired" && source != SourceSystem::Hris {
                cmds.push((
                    "create_pre_hire",
                    "workday",
                    TargetSystem::Hris,
                    CommandPayload::CreatePreHire {
                        requisition_id: "req-7".to_owned(),
                        fields: BTreeMap::new(),
                    },
                ));
            }
            assert_commands(&e, &out, &cmds);
            assert!(out.alerts.is_empty(), "{case}");
        }
        Decision::Stale => {
            assert_eq!(out.stage_after.as_deref(), Some(from), "{case}");
            assert_eq!(out.decision.reason(), None, "{case}");
            assert!(out.commands.is_empty(), "{case}");
            assert!(out.alerts.is_empty(), "stale is not a violation: {case}");
            assert_eq!(s.state.applications, before.applications, "{case}");
        }
        Decision::Rejected(reason) => {
            assert_rejected(&s, &before, &out, reason);
            assert_eq!(s.stage(), from, "{case}");
            if source == SourceSystem::Ats {
                assert_eq!(out.alerts.len(), 1, "{case}: divergence alert");
                assert_eq!(out.alerts[0].kind, AlertKind::Divergence, "{case}");
                assert_eq!(out.alerts[0].event_id, e.event_id, "{case}");
                assert!(!out.alerts[0].owner.is_empty(), "{case}");
                if let Some((_, owner)) = listed(from, to) {
                    assert_eq!(out.alerts[0].owner, owner, "{case}: transition owner");
                }
            } else {
                assert!(out.alerts.is_empty(), "{case}: only the ATS diverges");
            }
        }
        Decision::Duplicate => unreachable!(),
    }
}

#[test]
fn every_listed_transition_is_applied_from_each_of_its_authorities() {
    for (from, to, authority, _) in TRANSITIONS {
        for src in ALL_SOURCES
            .into_iter()
            .filter(|s| authority.contains(&s.as_str()))
        {
            assert_eq!(expected_decision(from, to, src), Decision::Applied);
            check_move("na", from, to, src);
        }
    }
}

#[test]
fn every_listed_transition_from_a_non_authority_is_unauthorized_source() {
    let mut cases = 0;
    for (from, to, authority, _) in TRANSITIONS {
        for src in ALL_SOURCES
            .into_iter()
            .filter(|s| !authority.contains(&s.as_str()))
        {
            assert_eq!(
                expected_decision(from, to, src),
                Decision::Rejected(RejectReason::UnauthorizedSource)
            );
            check_move("na", from, to, src);
            cases += 1;
        }
    }
    assert!(cases > 50);
}

#[test]
fn every_unlisted_move_is_stale_terminal_or_forbidden() {
    for (from, _) in STAGES {
        for (to, _) in STAGES {
            if listed(from, to).is_some() {
                continue;
            }
            for src in ALL_SOURCES {
                check_move("na", from, to, src);
            }
        }
    }
}

#[test]
fn vendor_and_hris_moves_use_the_regions_ats_names() {
    for region in ["na", "emea"] {
        check_move(region, "applied", "triage", SourceSystem::ScreeningVendor);
        check_move(
            region,
            "applied",
            "screening",
            SourceSystem::ScreeningVendor,
        );
        check_move(region, "triage", "screening", SourceSystem::ScreeningVendor);
        check_move(
            region,
            "screening",
            "screened",
            SourceSystem::ScreeningVendor,
        );
        check_move(
            region,
            "interview",
            "withdrawn",
            SourceSystem::ScreeningVendor,
        );
        check_move(region, "offer", "hired", SourceSystem::Hris);
        check_move(region, "offer", "hired", SourceSystem::Ats);
    }
}

#[test]
fn vendor_triage_in_na_is_move_stage_to_greenhouse_recruiter_triage() {
    let mut s = Script::created_in(policy(), "na");
    let (e, out) = s.send(SourceSystem::ScreeningVendor, stage_changed("triage"));
    assert_eq!(out.decision, Decision::Applied);
    assert_commands(
        &e,
        &out,
        &[(
            "move_stage",
            "greenhouse",
            TargetSystem::Ats,
            move_stage("triage", "Recruiter Triage"),
        )],
    );
}

#[test]
fn vendor_triage_in_emea_is_move_stage_to_lever_recruiter_screen() {
    let mut s = Script::created_in(policy(), "emea");
    let (e, out) = s.send(SourceSystem::ScreeningVendor, stage_changed("triage"));
    assert_eq!(out.decision, Decision::Applied);
    assert_commands(
        &e,
        &out,
        &[(
            "move_stage",
            "lever",
            TargetSystem::Ats,
            move_stage("triage", "recruiter-screen"),
        )],
    );
}

// ---------------------------------------------------------------------------------------------
// Terminal stages.
// ---------------------------------------------------------------------------------------------

#[test]
fn hired_has_no_exits_and_lower_ranks_are_stale() {
    let p = policy();
    for (to, src, want) in [
        (
            "rejected",
            SourceSystem::Ats,
            Decision::Rejected(RejectReason::TerminalState),
        ),
        (
            "withdrawn",
            SourceSystem::ScreeningVendor,
            Decision::Rejected(RejectReason::TerminalState),
        ),
        ("triage", SourceSystem::Ats, Decision::Stale),
        ("offer", SourceSystem::Hris, Decision::Stale),
        ("hired", SourceSystem::Hris, Decision::Stale),
    ] {
        let mut s = Script::at(p, "na", "hired");
        let (_, out) = s.send(src, stage_changed(to));
        assert_eq!(out.decision, want, "hired -> {to} by {src}");
        assert_eq!(s.stage(), "hired");
        assert!(out.commands.is_empty());
    }
}

#[test]
fn rejected_and_withdrawn_reopen_to_triage_only_from_the_ats() {
    let p = policy();
    for terminal in ["rejected", "withdrawn"] {
        for (src, want) in [
            (
                SourceSystem::ScreeningVendor,
                Decision::Rejected(RejectReason::UnauthorizedSource),
            ),
            (
                SourceSystem::Hris,
                Decision::Rejected(RejectReason::UnauthorizedSource),
            ),
            (SourceSystem::Ats, Decision::Applied),
        ] {
            let mut s = Script::at(p, "na", terminal);
            let (_, out) = s.send(src, stage_changed("triage"));
            assert_eq!(out.decision, want, "{terminal} -> triage by {src}");
        }
        for to in [
            "applied",
            "screening",
            "screened",
            "interview",
            "offer",
            "hired",
        ] {
            let mut s = Script::at(p, "na", terminal);
            let (_, out) = s.send(SourceSystem::Ats, stage_changed(to));
            assert_eq!(
                out.decision,
                Decision::Rejected(RejectReason::TerminalState),
                "{terminal} -> {to}"
            );
            assert_eq!(s.stage(), terminal);
        }
        // Reopened by the ATS: the ATS asserted it, so nothing is written back to it.
        let mut s = Script::at(p, "na", terminal);
        let (e, out) = s.send(SourceSystem::Ats, stage_changed("triage"));
        assert_eq!(out.stage_after.as_deref(), Some("triage"));
        assert_commands(&e, &out, &[]);
        // And the reopened application goes on along the forward path.
        let (_, out) = s.send(SourceSystem::ScreeningVendor, stage_changed("screening"));
        assert_eq!(out.decision, Decision::Applied);
    }
}

#[test]
fn terminal_state_from_the_ats_is_a_divergence_too() {
    let mut s = Script::at(policy(), "na", "rejected");
    let before = s.state.clone();
    let (_, out) = s.send(SourceSystem::Ats, stage_changed("interview"));
    assert_rejected(&s, &before, &out, RejectReason::TerminalState);
    assert_eq!(out.alerts.len(), 1);
    assert_eq!(out.alerts[0].kind, AlertKind::Divergence);
}

// ---------------------------------------------------------------------------------------------
// Stale.
// ---------------------------------------------------------------------------------------------

#[test]
fn stale_stage_change_is_not_a_violation_and_changes_nothing() {
    let mut s = Script::at(policy(), "na", "interview");
    let before = s.state.clone();
    for (to, src) in [
        ("triage", SourceSystem::ScreeningVendor),
        ("screening", SourceSystem::ScreeningVendor),
        ("screened", SourceSystem::ScreeningVendor),
        ("interview", SourceSystem::Ats),
        ("applied", SourceSystem::Ats),
    ] {
        let (_, out) = s.send(src, stage_changed(to));
        assert_eq!(out.decision, Decision::Stale, "interview -> {to}");
        assert_eq!(out.decision.reason(), None);
        assert_eq!(out.stage_before.as_deref(), Some("interview"));
        assert_eq!(out.stage_after.as_deref(), Some("interview"));
        assert!(out.commands.is_empty());
        assert!(out.alerts.is_empty());
        assert_eq!(s.state.applications, before.applications);
    }
}

#[test]
fn stale_screening_completed_still_records_fields_and_writes_them_back() {
    let mut s = Script::at(policy(), "na", "interview");
    let (e, out) = s.send(
        SourceSystem::ScreeningVendor,
        screening(71.0, "hold", Some(MEDIA), None),
    );
    assert_eq!(out.decision, Decision::Stale, "{:?}", out.detail);
    assert_eq!(out.stage_after.as_deref(), Some("interview"));
    assert_eq!(s.stage(), "interview");
    assert_eq!(s.fields()["screening.score"], FieldValue::Number(71.0));
    assert_eq!(s.fields()["screening.recommendation"], text("hold"));
    assert_eq!(s.fields()["screening.media_url"], text(MEDIA));
    assert_commands(
        &e,
        &out,
        &[(
            "update_fields",
            "greenhouse",
            TargetSystem::Ats,
            update_fields(&[
                ("screening_score", FieldValue::Number(71.0)),
                ("screening_recommendation", text("hold")),
                ("screening_rubric_version", text("swe-2026.3")),
                (
                    "screening_reviewers",
                    FieldValue::List(vec!["rev-17".into(), "rev-22".into()]),
                ),
                ("screening_recording_url", text(MEDIA)),
            ]),
        )],
    );
}

#[test]
fn screening_completed_with_a_refused_stage_part_records_nothing() {
    let p = policy();
    // applied -> screened is not listed; rejected -> screened leaves a terminal stage.
    for (at, reason) in [
        ("applied", RejectReason::ForbiddenTransition),
        ("triage", RejectReason::ForbiddenTransition),
        ("rejected", RejectReason::TerminalState),
        ("withdrawn", RejectReason::TerminalState),
    ] {
        let mut s = Script::at(p, "na", at);
        let before = s.state.clone();
        let (_, out) = s.send(
            SourceSystem::ScreeningVendor,
            screening(90.0, "advance", Some(MEDIA), Some(TRANSCRIPT)),
        );
        assert_rejected(&s, &before, &out, reason);
        assert!(s.fields().is_empty(), "{at}: no field of a rejected event");
    }
}

// ---------------------------------------------------------------------------------------------
// Duplicates, unknown and duplicate applications, unknown stages, invalid fields.
// ---------------------------------------------------------------------------------------------

#[test]
fn the_same_event_id_twice_is_a_duplicate_with_no_effect() {
    let mut s = Script::created_in(policy(), "na");
    let (e, first) = s.send(SourceSystem::ScreeningVendor, stage_changed("triage"));
    assert_eq!(first.decision, Decision::Applied);
    assert_eq!(first.commands.len(), 1);
    let after_first = s.state.clone();
    let second = s.fold(&e);
    assert_eq!(second.decision, Decision::Duplicate);
    assert_eq!(second.decision.reason(), None);
    assert!(second.commands.is_empty());
    assert!(second.alerts.is_empty());
    assert_eq!(second.stage_before.as_deref(), Some("triage"));
    assert_eq!(second.stage_after.as_deref(), Some("triage"));
    assert_eq!(s.state, after_first);
    // Only the id matters: a different payload under a seen id is still a duplicate.
    let mut changed = e.clone();
    changed.kind = stage_changed("screening");
    assert_eq!(s.fold(&changed).decision, Decision::Duplicate);
    assert_eq!(s.state, after_first);
}

#[test]
fn a_resent_rejected_event_is_a_duplicate() {
    let mut s = Script::created_in(policy(), "na");
    let (e, first) = s.send(SourceSystem::ScreeningVendor, stage_changed("offer"));
    assert_eq!(
        first.decision,
        Decision::Rejected(RejectReason::ForbiddenTransition)
    );
    let after_first = s.state.clone();
    let second = s.fold(&e);
    assert_eq!(second.decision, Decision::Duplicate);
    assert!(second.commands.is_empty());
    assert_eq!(s.state, after_first);

    // Also for an event that came before its application existed.
    let mut s = Script::empty(policy());
    let (e, first) = s.send(SourceSystem::ScreeningVendor, stage_changed("triage"));
    assert_eq!(
        first.decision,
        Decision::Rejected(RejectReason::UnknownApplication)
    );
    assert_eq!(s.fold(&e).decision, Decision::Duplicate);
}

#[test]
fn events_before_application_created_are_unknown_application() {
    let p = policy();
    for (src, kind) in [
        (SourceSystem::Ats, stage_changed("triage")),
        (
            SourceSystem::ScreeningVendor,
            stage_changed("no_such_stage"),
        ),
        (
            SourceSystem::ScreeningVendor,
            screening(101.0, "advance", None, None),
        ),
        (
            SourceSystem::Ats,
            fields(&[("candidate.name", text("Ada Moreno"))]),
        ),
        (
            SourceSystem::AtsSink,
            ack("00000000000000000000000000000000", AckStatus::Confirmed),
        ),
        (SourceSystem::Privacy, EventKind::ErasureRequested {}),
    ] {
        let mut s = Script::empty(p);
        let (_, out) = s.send(src, kind);
        assert_eq!(
            out.decision,
            Decision::Rejected(RejectReason::UnknownApplication),
            "{:?}",
            out.detail
        );
        assert_eq!(out.stage_before, None);
        assert_eq!(out.stage_after, None);
        assert!(out.commands.is_empty());
        assert!(s.state.applications.is_empty());
        assert!(s.state.commands.is_empty());
    }
}

#[test]
fn a_second_application_created_is_duplicate_application() {
    let mut s = Script::at(policy(), "na", "triage");
    let before = s.state.clone();
    let (_, out) = s.send(SourceSystem::Ats, created("req-other", "emea"));
    assert_rejected(&s, &before, &out, RejectReason::DuplicateApplication);
    let app = &s.state.applications["app-1"];
    assert_eq!(&*app.stage, "triage");
    assert_eq!(app.region, "na");
    assert_eq!(app.requisition_id, "req-7");
}

#[test]
fn application_created_may_only_come_from_the_ats() {
    let p = policy();
    for src in ALL_SOURCES.into_iter().filter(|s| *s != SourceSystem::Ats) {
        let mut s = Script::empty(p);
        let (_, out) = s.send(src, created("req-7", "na"));
        assert_eq!(
            out.decision,
            Decision::Rejected(RejectReason::UnauthorizedSource),
            "application_created from {src}"
        );
        assert!(out.commands.is_empty());
        assert_eq!(out.stage_after, None);
        assert!(s.state.applications.is_empty(), "from {src}");
        // The application does not exist afterwards.
        let (_, next) = s.send(SourceSystem::Ats, stage_changed("triage"));
        assert_eq!(
            next.decision,
            Decision::Rejected(RejectReason::UnknownApplication)
        );
    }
}

#[test]
fn application_created_starts_in_applied_with_no_command() {
    let mut s = Script::empty(policy());
    let (e, out) = s.send(SourceSystem::Ats, created("req-eng-12", "emea"));
    assert_eq!(out.decision, Decision::Applied);
    assert_eq!(out.stage_before, None);
    assert_eq!(out.stage_after.as_deref(), Some("applied"));
    assert_commands(&e, &out, &[]);
    let app = &s.state.applications["app-1"];
    assert_eq!(&*app.stage, "applied");
    assert_eq!(app.region, "emea");
    assert_eq!(app.requisition_id, "req-eng-12");
    assert_eq!(app.stage_entered_at, e.occurred_at);
}

#[test]
fn a_stage_not_in_the_policy_is_unknown_stage() {
    let p = policy();
    for src in [SourceSystem::Ats, SourceSystem::ScreeningVendor] {
        for to in ["phone_screen", "Triage", ""] {
            let mut s = Script::at(p, "na", "triage");
            let before = s.state.clone();
            let (_, out) = s.send(src, stage_changed(to));
            assert_rejected(&s, &before, &out, RejectReason::UnknownStage);
        }
    }
}

#[test]
fn invalid_fields_are_rejected_and_nothing_of_the_event_is_recorded() {
    let p = policy();
    let vendor = SourceSystem::ScreeningVendor;
    let cases: Vec<(&str, SourceSystem, EventKind)> = vec![
        ("score 101", vendor, screening(101.0, "advance", None, None)),
        ("score -1", vendor, screening(-1.0, "advance", None, None)),
        (
            "recommendation",
            vendor,
            screening(80.0, "maybe", None, None),
        ),
        (
            "http media url",
            vendor,
            screening(80.0, "advance", Some("http://media.example/r/1"), None),
        ),
        (
            "ftp transcript url",
            vendor,
            screening(80.0, "advance", None, Some("ftp://media.example/t/1")),
        ),
        (
            "score as text",
            vendor,
            fields(&[("screening.score", text("high"))]),
        ),
        (
            "score 100.5",
            vendor,
            fields(&[("screening.score", FieldValue::Number(100.5))]),
        ),
        (
            "reviewer ids not a list",
            vendor,
            fields(&[("screening.reviewer_ids", text("rev-1"))]),
        ),
        (
            "date with slashes",
            SourceSystem::Ats,
            fields(&[("offer.start_date", text("04/01/2027"))]),
        ),
        (
            "month 13",
            SourceSystem::Ats,
            fields(&[("offer.start_date", text("2027-13-01"))]),
        ),
        (
            "date with a time",
            SourceSystem::Ats,
            fields(&[("offer.start_date", text("2027-01-04T00:00:00Z"))]),
        ),
        (
            "unknown field",
            SourceSystem::Ats,
            fields(&[("candidate.shoe_size", FieldValue::Number(44.0))]),
        ),
        (
            "one good field and one unknown",
            SourceSystem::Ats,
            fields(&[
                ("candidate.name", text("Ada Moreno")),
                ("candidate.nickname", text("Ada")),
            ]),
        ),
        (
            "name as a number",
            SourceSystem::Ats,
            fields(&[("candidate.name", FieldValue::Number(1.0))]),
        ),
    ];
    for (case, src, kind) in cases {
        // `screening` so that the stage part of screening_completed would be allowed.
        let mut s = Script::at(p, "na", "screening");
        let before = s.state.clone();
        let (_, out) = s.send(src, kind);
        assert_eq!(
            out.decision,
            Decision::Rejected(RejectReason::InvalidField),
            "{case}: {:?}",
            out.detail
        );
        assert_rejected(&s, &before, &out, RejectReason::InvalidField);
        assert!(s.fields().is_empty(), "{case}");
        assert_eq!(s.stage(), "screening", "{case}");
    }
}

#[test]
fn valid_boundary_values_are_accepted() {
    let p = policy();
    for score in [0.0, 100.0] {
        let mut s = Script::at(p, "na", "screening");
        let (_, out) = s.send(
            SourceSystem::ScreeningVendor,
            screening(score, "not_recommended", Some(MEDIA), Some(TRANSCRIPT)),
        );
        assert_eq!(out.decision, Decision::Applied, "score {score}");
    }
    let mut s = Script::at(p, "na", "offer");
    let (_, out) = s.send(
        SourceSystem::Ats,
        fields(&[("offer.start_date", text("2028-02-29"))]),
    );
    assert_eq!(out.decision, Decision::Applied, "{:?}", out.detail);
}

#[test]
fn invalid_field_is_checked_before_the_stage_rules() {
    // applied -> screened would be forbidden_transition; the bad score is found first.
    let mut s = Script::at(policy(), "na", "applied");
    let (_, out) = s.send(
        SourceSystem::ScreeningVendor,
        screening(101.0, "advance", None, None),
    );
    assert_eq!(out.decision, Decision::Rejected(RejectReason::InvalidField));
}

// ---------------------------------------------------------------------------------------------
// Golden sources.
// ---------------------------------------------------------------------------------------------

#[test]
fn field_conflict_under_golden_wins_rejects_the_whole_event() {
    let p = policy();
    let cases: Vec<(&str, SourceSystem, EventKind)> = vec![
        (
            "ats re-keys a score",
            SourceSystem::Ats,
            fields(&[("screening.score", FieldValue::Number(50.0))]),
        ),
        (
            "vendor: own field plus the ats's",
            SourceSystem::ScreeningVendor,
            fields(&[
                ("screening.score", FieldValue::Number(50.0)),
                ("candidate.name", text("Ada")),
            ]),
        ),
        (
            "ats sets the employee id",
            SourceSystem::Ats,
            fields(&[("worker.employee_id", text("W-1"))]),
        ),
        (
            "hris sets the start date",
            SourceSystem::Hris,
            fields(&[
                ("offer.start_date", text("2027-01-04")),
                ("worker.employee_id", text("W-1")),
            ]),
        ),
    ];
    for (case, src, kind) in cases {
        let mut s = Script::at(p, "na", "offer");
        let before = s.state.clone();
        let (_, out) = s.send(src, kind);
        assert_rejected(&s, &before, &out, RejectReason::FieldConflict);
        assert!(s.fields().is_empty(), "{case}: no field of it recorded");
        assert!(
            out.conflicts.iter().any(|c| !c.accepted),
            "{case}: counted as a field-conflict incident"
        );
    }
}

#[test]
fn fields_from_their_golden_source_are_recorded() {
    let p = policy();
    let mut s = Script::at(p, "na", "offer");
    let (e, out) = s.send(
        SourceSystem::Ats,
        fields(&[
            ("candidate.name", text("Ada Moreno")),
            ("candidate.email", text("ada@example.com")),
        ]),
    );
    assert_eq!(out.decision, Decision::Applied);
    assert!(out.conflicts.is_empty());
    // candidate.* never writes back (the ATS owns them): no command.
    assert_commands(&e, &out, &[]);
    assert_eq!(s.fields()["candidate.name"], text("Ada Moreno"));

    let (e, out) = s.send(
        SourceSystem::Hris,
        fields(&[("worker.employee_id", text("W-1001"))]),
    );
    assert_eq!(out.decision, Decision::Applied);
    assert_commands(&e, &out, &[]);
    assert_eq!(s.fields()["worker.employee_id"], text("W-1001"));
}

#[test]
fn latest_wins_accepts_the_value_and_counts_the_conflict() {
    // A copy of the default policy where candidate.name is latest_wins, re-signed.
    let dir = copy_dir(&loaded().dir);
    let path = dir.join("fields.toml");
    let original = std::fs::read_to_string(&path).unwrap();
    let marker = "[field.\"candidate.name\"]";
    let start = original.find(marker).expect("candidate.name entry");
    let rest = &original[start..];
    let edited = format!(
        "{}{}",
        &original[..start],
        rest.replacen(
            "conflict = \"golden_wins\"",
            "conflict = \"latest_wins\"",
            1
        )
    );
    assert_ne!(edited, original);
    std::fs::write(&path, edited).unwrap();
    hirestate::policy::sign(&dir, None, None, None).expect("sign edited copy");
    let p = hirestate::policy::load(&dir).expect("edited copy loads");

    let mut s = Script::at(&p, "na", "interview");
    let (_, out) = s.send(
        SourceSystem::ScreeningVendor,
        fields(&[("candidate.name", text("A. Moreno"))]),
    );
    assert_eq!(out.decision, Decision::Applied, "{:?}", out.detail);
    assert_eq!(out.conflicts.len(), 1);
    assert_eq!(out.conflicts[0].field, "candidate.name");
    assert!(out.conflicts[0].accepted);
    assert_eq!(s.fields()["candidate.name"], text("A. Moreno"));
    assert!(out.commands.is_empty(), "candidate.name never writes back");

    // A golden_wins field in the same event still rejects all of it.
    let (_, out) = s.send(
        SourceSystem::ScreeningVendor,
        fields(&[
            ("candidate.name", text("B")),
            ("candidate.email", text("b@example.com")),
        ]),
    );
    assert_eq!(
        out.decision,
        Decision::Rejected(RejectReason::FieldConflict)
    );
    assert_eq!(s.fields()["candidate.name"], text("A. Moreno"));
}

// ---------------------------------------------------------------------------------------------
// Divergence.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_forbidden_move_asserted_by_the_ats_raises_divergence_and_state_stays() {
    let p = policy();
    // Unlisted: applied -> interview (a fast-track the policy does not allow).
    let mut s = Script::created_in(p, "na");
    let before = s.state.clone();
    let (e, out) = s.send(SourceSystem::Ats, stage_changed("interview"));
    assert_rejected(&s, &before, &out, RejectReason::ForbiddenTransition);
    assert_eq!(s.stage(), "applied", "canonical state does not follow");
    assert_eq!(out.alerts.len(), 1);
    let a = &out.alerts[0];
    assert_eq!(a.kind, AlertKind::Divergence);
    assert_eq!(a.event_id, e.event_id);
    assert_eq!(a.candidate_id, "cand-1");
    assert_eq!(a.application_id, "app-1");
    assert_eq!(a.occurred_at, e.occurred_at);
    assert!(!a.owner.is_empty());

    // Listed but not the ATS's to make: screening -> screened belongs to the vendor; the
    // alert goes to the transition's owner.
    let mut s = Script::at(p, "na", "screening");
    let before = s.state.clone();
    let (_, out) = s.send(SourceSystem::Ats, stage_changed("screened"));
    assert_rejected(&s, &before, &out, RejectReason::UnauthorizedSource);
    assert_eq!(out.alerts.len(), 1);
    assert_eq!(out.alerts[0].kind, AlertKind::Divergence);
    assert_eq!(out.alerts[0].owner, "screening vendor");
    assert_eq!(s.stage(), "screening");
}

#[test]
fn a_forbidden_move_from_others_raises_no_divergence() {
    let mut s = Script::created_in(policy(), "na");
    let (_, out) = s.send(SourceSystem::ScreeningVendor, stage_changed("interview"));
    assert_eq!(
        out.decision,
        Decision::Rejected(RejectReason::ForbiddenTransition)
    );
    assert!(out.alerts.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Acks.
// ---------------------------------------------------------------------------------------------

#[test]
fn acks_must_come_from_a_sink_and_name_an_issued_command() {
    let p = policy();
    let mut s = Script::created_in(p, "na");
    let (cause, out) = s.send(SourceSystem::ScreeningVendor, stage_changed("triage"));
    assert_eq!(out.commands.len(), 1);
    let issued = expected_id(&cause.event_id, "move_stage", "greenhouse");
    assert!(s.state.commands.contains_key(issued.as_str()));

    for src in [
        SourceSystem::Ats,
        SourceSystem::ScreeningVendor,
        SourceSystem::Hris,
        SourceSystem::Privacy,
    ] {
        let before = s.state.clone();
        let (_, out) = s.send(src, ack(&issued, AckStatus::Confirmed));
        assert_rejected(&s, &before, &out, RejectReason::UnauthorizedSource);
        assert_eq!(
            s.state.commands[issued.as_str()].status,
            CommandStatus::Pending
        );
    }

    for unissued in [
        expected_id(&cause.event_id, "move_stage", "lever"),
        expected_id(&cause.event_id, "update_fields", "greenhouse"),
        "not-a-command".to_owned(),
    ] {
        let before = s.state.clone();
        let (_, out) = s.send(SourceSystem::AtsSink, ack(&unissued, AckStatus::Confirmed));
        assert_rejected(&s, &before, &out, RejectReason::UnknownCommand);
    }

    let (e, out) = s.send(SourceSystem::AtsSink, ack(&issued, AckStatus::Confirmed));
    assert_eq!(out.decision, Decision::Applied, "{:?}", out.detail);
    assert_commands(&e, &out, &[]);
    assert_eq!(
        s.state.commands[issued.as_str()].status,
        CommandStatus::Confirmed
    );
    assert_eq!(
        s.state.commands[issued.as_str()].acked_at,
        Some(e.occurred_at)
    );
    assert_eq!(s.stage(), "triage");
}

#[test]
fn an_hris_sink_acks_a_create_pre_hire() {
    let mut s = Script::at(policy(), "na", "offer");
    let (cause, out) = s.send(SourceSystem::Ats, stage_changed("hired"));
    assert_eq!(out.commands.len(), 1);
    let issued = expected_id(&cause.event_id, "create_pre_hire", "workday");
    let (_, out) = s.send(SourceSystem::HrisSink, ack(&issued, AckStatus::Failed));
    assert_eq!(out.decision, Decision::Applied, "{:?}", out.detail);
    assert!(out.commands.is_empty());
    assert_eq!(
        s.state.commands[issued.as_str()].status,
        CommandStatus::Failed
    );
}

// ---------------------------------------------------------------------------------------------
// Commands.
// ---------------------------------------------------------------------------------------------

#[test]
fn hired_from_the_ats_is_create_pre_hire_to_workday_and_no_move_stage() {
    let mut s = Script::at(policy(), "na", "offer");
    let (_, out) = s.send(
        SourceSystem::Ats,
        fields(&[("offer.start_date", text("2027-01-11"))]),
    );
    assert_eq!(out.decision, Decision::Applied);
    let (e, out) = s.send(SourceSystem::Ats, stage_changed("hired"));
    assert_eq!(out.decision, Decision::Applied);
    assert_commands(
        &e,
        &out,
        &[(
            "create_pre_hire",
            "workday",
            TargetSystem::Hris,
            CommandPayload::CreatePreHire {
                requisition_id: "req-7".to_owned(),
                fields: map(&[("hireDate", text("2027-01-11"))]),
            },
        )],
    );
}

#[test]
fn hired_from_the_hris_is_move_stage_to_the_ats_and_no_create_pre_hire() {
    for (region, target, remote) in [("na", "greenhouse", "Hired"), ("emea", "lever", "hired")] {
        let mut s = Script::at(policy(), region, "offer");
        let (e, out) = s.send(SourceSystem::Hris, stage_changed("hired"));
        assert_eq!(out.decision, Decision::Applied);
        assert_commands(
            &e,
            &out,
            &[(
                "move_stage",
                target,
                TargetSystem::Ats,
                move_stage("hired", remote),
            )],
        );
    }
}

#[test]
fn ats_stage_changes_write_nothing_back() {
    let mut s = Script::at(policy(), "na", "screened");
    for to in ["interview", "offer", "rejected"] {
        let (e, out) = s.send(SourceSystem::Ats, stage_changed(to));
        assert_eq!(out.decision, Decision::Applied);
        assert_commands(&e, &out, &[]);
    }
}

#[test]
fn screening_in_na_moves_stage_and_updates_all_fields_under_greenhouse_keys() {
    let mut s = Script::at(policy(), "na", "screening");
    let (e, out) = s.send(
        SourceSystem::ScreeningVendor,
        screening(82.5, "advance", Some(MEDIA), Some(TRANSCRIPT)),
    );
    assert_eq!(out.decision, Decision::Applied, "{:?}", out.detail);
    assert_eq!(out.stage_after.as_deref(), Some("screened"));
    assert_commands(
        &e,
        &out,
        &[
            (
                "move_stage",
                "greenhouse",
                TargetSystem::Ats,
                move_stage("screened", "Screen Complete"),
            ),
            (
                "update_fields",
                "greenhouse",
                TargetSystem::Ats,
                update_fields(&[
                    ("screening_score", FieldValue::Number(82.5)),
                    ("screening_recommendation", text("advance")),
                    ("screening_rubric_version", text("swe-2026.3")),
                    (
                        "screening_reviewers",
                        FieldValue::List(vec!["rev-17".into(), "rev-22".into()]),
                    ),
                    ("screening_recording_url", text(MEDIA)),
                    ("screening_transcript_url", text(TRANSCRIPT)),
                ]),
            ),
        ],
    );
}

#[test]
fn screening_in_emea_withholds_media_and_transcript_urls() {
    let mut s = Script::at(policy(), "emea", "screening");
    let (e, out) = s.send(
        SourceSystem::ScreeningVendor,
        screening(64.0, "hold", Some(MEDIA), Some(TRANSCRIPT)),
    );
    assert_eq!(out.decision, Decision::Applied, "{:?}", out.detail);
    assert_commands(
        &e,
        &out,
        &[
            (
                "move_stage",
                "lever",
                TargetSystem::Ats,
                move_stage("screened", "screen-complete"),
            ),
            (
                "update_fields",
                "lever",
                TargetSystem::Ats,
                update_fields(&[
                    ("hs_screening_score", FieldValue::Number(64.0)),
                    ("hs_screening_recommendation", text("hold")),
                    ("hs_rubric_version", text("swe-2026.3")),
                    (
                        "hs_reviewer_ids",
                        FieldValue::List(vec!["rev-17".into(), "rev-22".into()]),
                    ),
                ]),
            ),
        ],
    );
    // Withheld from the ATS, still recorded in hirestate.
    assert_eq!(s.fields()["screening.media_url"], text(MEDIA));
    assert_eq!(s.fields()["screening.transcript_url"], text(TRANSCRIPT));

    // Only withheld fields: nothing is left, so no command at all.
    let (e, out) = s.send(
        SourceSystem::ScreeningVendor,
        fields(&[("screening.media_url", text(MEDIA))]),
    );
    assert_eq!(out.decision, Decision::Applied);
    assert_commands(&e, &out, &[]);
}

#[test]
fn na_writes_back_a_lone_media_url() {
    let mut s = Script::at(policy(), "na", "screened");
    let (e, out) = s.send(
        SourceSystem::ScreeningVendor,
        fields(&[("screening.transcript_url", text(TRANSCRIPT))]),
    );
    assert_eq!(out.decision, Decision::Applied);
    assert_commands(
        &e,
        &out,
        &[(
            "update_fields",
            "greenhouse",
            TargetSystem::Ats,
            update_fields(&[("screening_transcript_url", text(TRANSCRIPT))]),
        )],
    );
}

#[test]
fn ats_asserted_start_date_updates_workday_only() {
    for region in ["na", "emea"] {
        let mut s = Script::at(policy(), region, "offer");
        let (e, out) = s.send(
            SourceSystem::Ats,
            fields(&[("offer.start_date", text("2027-01-11"))]),
        );
        assert_eq!(out.decision, Decision::Applied);
        assert_commands(
            &e,
            &out,
            &[(
                "update_fields",
                "workday",
                TargetSystem::Hris,
                update_fields(&[("hireDate", text("2027-01-11"))]),
            )],
        );
    }
}

#[test]
fn created_rejected_duplicate_and_ack_events_emit_no_command() {
    let mut s = Script::empty(policy());
    let (e, out) = s.send(SourceSystem::Ats, created("req-7", "na"));
    assert_commands(&e, &out, &[]);
    let (e, out) = s.send(SourceSystem::ScreeningVendor, stage_changed("offer"));
    assert!(out.decision.reason().is_some());
    assert_commands(&e, &out, &[]);
    let (e, out) = s.send(SourceSystem::ScreeningVendor, stage_changed("triage"));
    assert_eq!(out.commands.len(), 1);
    let dup = s.fold(&e);
    assert_eq!(dup.decision, Decision::Duplicate);
    assert_commands(&e, &dup, &[]);
    let id = expected_id(&e.event_id, "move_stage", "greenhouse");
    let (e, out) = s.send(SourceSystem::AtsSink, ack(&id, AckStatus::Rejected));
    assert_eq!(out.decision, Decision::Applied);
    assert_commands(&e, &out, &[]);
}

#[test]
fn erasure_from_privacy_forgets_personal_and_sensitive_fields() {
    let mut s = Script::at(policy(), "na", "screening");
    let (_, out) = s.send(
        SourceSystem::ScreeningVendor,
        screening(82.5, "advance", Some(MEDIA), Some(TRANSCRIPT)),
    );
    assert_eq!(out.decision, Decision::Applied);
    let (_, out) = s.send(
        SourceSystem::Ats,
        fields(&[
            ("candidate.name", text("Ada Moreno")),
            ("candidate.email", text("ada@example.com")),
        ]),
    );
    assert_eq!(out.decision, Decision::Applied);
    let (_, out) = s.send(SourceSystem::Privacy, EventKind::ErasureRequested {});
    assert_eq!(out.decision, Decision::Applied, "{:?}", out.detail);
    let kept: Vec<&str> = s.fields().keys().map(|k| &**k).collect();
    assert_eq!(
        kept,
        [
            "screening.recommendation",
            "screening.reviewer_ids",
            "screening.rubric_version",
            "screening.score",
        ]
    );
    assert_eq!(s.stage(), "screened");
}

#[test]
fn command_ids_follow_the_published_formula() {
    // A fixed vector, computed outside Rust:
    // printf 'e1\x1fmove_stage\x1fgreenhouse' | sha256sum | cut -c1-32
    assert_eq!(
        expected_id("e1", "move_stage", "greenhouse"),
        "91fb123dd9920bb327965ede60873eb1"
    );
    let mut s = Script::created_in(policy(), "na");
    let mut e = s.event(SourceSystem::ScreeningVendor, stage_changed("triage"));
    e.event_id = "e1".to_owned();
    let out = s.fold(&e);
    assert_eq!(out.commands.len(), 1);
    assert_eq!(
        &*out.commands[0].command_id,
        "91fb123dd9920bb327965ede60873eb1"
    );
}
