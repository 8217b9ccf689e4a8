//! Shared fixtures for the codec tests: one record of every type (with every optional field
//! both set and unset across the set), the shipped sample events, and a stateful Confluent
//! schema-registry double on wiremock. Included by the other `codec_*` tests with
//! `#[path = "codec_fixtures.rs"] mod fixtures;`; also a test target of its own (sanity checks).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use hirestate::model::{
    AckStatus, Alert, AlertKind, Application, CandidateState, Command, CommandOp, CommandPayload,
    CommandRecord, CommandStatus, Event, EventKind, FieldValue, IdSet, RejectReason, Rejection,
    SourceSystem, TargetSystem, TimerKind, Timestamp, VecMap,
};
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const SAMPLES: &str = include_str!("../schemas/samples/events.jsonl");

pub fn ts(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).expect("fixture timestamp")
}

fn event(id: &str, src: SourceSystem, kind: EventKind) -> Event {
    Event {
        event_id: id.to_string(),
        candidate_id: "cand-9".to_string(),
        application_id: "app-9".to_string(),
        source_system: src,
        source_principal: "vendor-x".to_string(),
        occurred_at: ts("2026-11-28T10:00:00.123456Z"),
        signature: None,
        kind,
    }
}

/// One event of every kind, optional fields both set and unset.
pub fn events() -> Vec<Event> {
    let mut fields = BTreeMap::new();
    fields.insert(
        "candidate.email".to_string(),
        FieldValue::Text("a@example.com".to_string()),
    );
    fields.insert("screening.score".to_string(), FieldValue::Number(87.25));
    fields.insert("consent.given".to_string(), FieldValue::Bool(true));
    fields.insert(
        "screening.reviewer_ids".to_string(),
        FieldValue::List(vec!["r1".to_string(), "r2".to_string()]),
    );
    let mut signed = event(
        "e-1",
        SourceSystem::Ats,
        EventKind::ApplicationCreated {
            requisition_id: "req-1".to_string(),
            region: "na".to_string(),
        },
    );
    signed.signature = Some("ab".repeat(32));
    vec![
        signed,
        event(
            "e-2",
            SourceSystem::ScreeningVendor,
            EventKind::StageChanged {
                to_stage: "screening".to_string(),
                reason: Some("invited".to_string()),
            },
        ),
        event(
            "e-3",
            SourceSystem::Ats,
            EventKind::StageChanged {
                to_stage: "triage".to_string(),
                reason: None,
            },
        ),
        event(
            "e-4",
            SourceSystem::ScreeningVendor,
            EventKind::ScreeningCompleted {
                score: 82.5,
                recommendation: "advance".to_string(),
                rubric_version: "v3".to_string(),
                reviewer_ids: vec!["rev-1".to_string(), "rev-2".to_string()],
                media_url: Some("https://m.example/1".to_string()),
                transcript_url: None,
            },
        ),
        event(
            "e-5",
            SourceSystem::Hris,
            EventKind::FieldsAsserted { fields },
        ),
        event(
            "e-6",
            SourceSystem::AtsSink,
            EventKind::WritebackAcked {
                command_id: "c0ffee".to_string(),
                status: AckStatus::Failed,
                remote_ref: Some("gh-1".to_string()),
                error: Some("HTTP 503".to_string()),
                retryable: true,
            },
        ),
        event(
            "e-7",
            SourceSystem::HrisSink,
            EventKind::WritebackAcked {
                command_id: "c0ffee".to_string(),
                status: AckStatus::Confirmed,
                remote_ref: None,
                error: None,
                retryable: false,
            },
        ),
        event("e-8", SourceSystem::Privacy, EventKind::ErasureRequested {}),
        event(
            "deadline:retry:c0ffee:2",
            SourceSystem::Hirestate,
            EventKind::DeadlineReached {
                timer: TimerKind::Retry,
                subject: "c0ffee".to_string(),
                due_at: ts("2026-11-28T10:00:30Z"),
                attempt: 2,
            },
        ),
        event(
            "deadline:stage_dwell:app-9:triage:1",
            SourceSystem::Hirestate,
            EventKind::DeadlineReached {
                timer: TimerKind::StageDwell,
                subject: "triage".to_string(),
                due_at: ts("2026-12-01T10:00:00Z"),
                attempt: 0,
            },
        ),
    ]
}

fn command(id: &str, system: TargetSystem, payload: CommandPayload) -> Command {
    Command {
        command_id: id.into(),
        target: "greenhouse".into(),
        system,
        candidate_id: "cand-9".to_string(),
        application_id: "app-9".into(),
        causing_event_id: "e-2".to_string(),
        occurred_at: ts("2026-11-28T10:00:00Z"),
        policy_version: "2026.11.1".into(),
        policy_digest: "d".repeat(64).into(),
        attempt: 2,
        payload,
    }
}

/// One command of every op.
pub fn commands() -> Vec<Command> {
    let mut fields = BTreeMap::new();
    fields.insert("custom_field_score".to_string(), FieldValue::Number(82.0));
    fields.insert("tags".to_string(), FieldValue::List(vec![]));
    vec![
        command(
            "c-1",
            TargetSystem::Ats,
            CommandPayload::MoveStage {
                stage: "screening".to_string(),
                remote_stage: "Phone Screen".to_string(),
            },
        ),
        command(
            "c-2",
            TargetSystem::Ats,
            CommandPayload::UpdateFields {
                fields: fields.clone(),
            },
        ),
        command(
            "c-3",
            TargetSystem::Hris,
            CommandPayload::CreatePreHire {
                requisition_id: "req-1".to_string(),
                fields,
            },
        ),
    ]
}

/// A rejection with and without a stage.
pub fn rejections() -> Vec<Rejection> {
    let r = Rejection {
        event_id: "e-2".to_string(),
        candidate_id: "cand-9".to_string(),
        application_id: "app-9".to_string(),
        source_system: SourceSystem::ScreeningVendor,
        source_principal: "vendor-x".to_string(),
        kind: "stage_changed".to_string(),
        reason: RejectReason::ForbiddenTransition,
        detail: "applied -> interview is not a listed transition".to_string(),
        stage: Some("applied".to_string()),
        occurred_at: ts("2026-11-28T10:00:00Z"),
        policy_version: "2026.11.1".into(),
    };
    let mut none = r.clone();
    none.stage = None;
    none.reason = RejectReason::UnknownCommand;
    vec![r, none]
}

/// An alert of every kind.
pub fn alerts() -> Vec<Alert> {
    [
        AlertKind::Divergence,
        AlertKind::Stuck,
        AlertKind::WritebackStuck,
        AlertKind::WritebackFailed,
        AlertKind::WritebackRejected,
    ]
    .into_iter()
    .map(|kind| Alert {
        alert_id: format!("a-{}", kind.as_str()),
        kind,
        owner: "hiring manager".to_string(),
        candidate_id: "cand-9".to_string(),
        application_id: "app-9".to_string(),
        event_id: "e-2".to_string(),
        detail: "something needs attention".to_string(),
        occurred_at: ts("2026-11-28T10:00:00Z"),
    })
    .collect()
}

/// An empty snapshot and a full one.
pub fn snapshots() -> Vec<CandidateState> {
    let mut fields = BTreeMap::new();
    fields.insert("screening.score".to_string(), FieldValue::Number(82.5));
    fields.insert(
        "candidate.name".to_string(),
        FieldValue::Text("Ada".to_string()),
    );
    let mut sources = VecMap::new();
    sources.insert("screening.score".into(), SourceSystem::ScreeningVendor);
    sources.insert("candidate.name".into(), SourceSystem::Ats);
    let app = |id: &str| Application {
        application_id: id.into(),
        requisition_id: "req-1".to_string(),
        region: "emea".to_string(),
        stage: "screened".into(),
        stage_entered_at: ts("2026-11-28T10:00:00Z"),
        fields: fields
            .iter()
            .map(|(k, v)| (k.as_str().into(), v.clone()))
            .collect(),
        field_sources: sources.clone(),
        stuck_alerted: id == "app-2",
    };
    let mut applications = VecMap::new();
    applications.insert("app-1".to_string(), app("app-1"));
    applications.insert("app-2".to_string(), app("app-2"));
    let mut commands = VecMap::new();
    commands.insert(
        "c-1".into(),
        CommandRecord {
            op: CommandOp::MoveStage,
            target: "lever".into(),
            application_id: "app-1".into(),
            status: CommandStatus::Pending,
            issued_at: ts("2026-11-28T10:00:00Z"),
            acked_at: None,
            attempts: 1,
            owner: "recruiter".to_string(),
            retry_at: None,
            stuck_alerted: true,
            resend: self::commands().into_iter().next().map(std::sync::Arc::new),
        },
    );
    commands.insert(
        "c-2".into(),
        CommandRecord {
            op: CommandOp::CreatePreHire,
            target: "workday".into(),
            application_id: "app-2".into(),
            status: CommandStatus::Failed,
            issued_at: ts("2026-11-28T10:00:00Z"),
            acked_at: Some(ts("2026-11-28T10:05:00Z")),
            attempts: 3,
            owner: "hr ops".to_string(),
            retry_at: Some(ts("2026-11-28T10:07:00Z")),
            stuck_alerted: false,
            resend: self::commands().into_iter().last().map(std::sync::Arc::new),
        },
    );
    let full = CandidateState {
        candidate_id: "cand-9".to_string(),
        seen_event_ids: ["e-1", "e-2", "e-3"]
            .iter()
            .map(|s| s.to_string())
            .collect::<IdSet>(),
        applications,
        commands,
        last_event_at: Some(ts("2026-11-28T10:05:00Z")),
    };
    vec![
        CandidateState {
            candidate_id: "cand-0".to_string(),
            ..CandidateState::default()
        },
        full,
    ]
}

/// The shipped sample events, parsed with serde directly (not through the codec).
pub fn sample_events() -> Vec<Event> {
    SAMPLES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("sample event parses"))
        .collect()
}

/// A Confluent schema-registry double: `POST /subjects/{subject}/versions` registers a schema
/// (same schema text → same id, ids from 1) and `GET /schemas/ids/{id}` serves it; unknown
/// ids get the registry's 404 (`error_code` 40403).
pub struct RegistryDouble {
    pub server: MockServer,
    schemas: Arc<Mutex<Vec<String>>>,
}

struct Register(Arc<Mutex<Vec<String>>>, Arc<Mutex<Vec<String>>>);
struct ById(Arc<Mutex<Vec<String>>>);
struct Subjects(Arc<Mutex<Vec<String>>>);

impl Respond for Subjects {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!(*self.0.lock().expect("lock")))
    }
}

impl Respond for Register {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let Ok(body) = request.body_json::<serde_json::Value>() else {
            return ResponseTemplate::new(422)
                .set_body_json(json!({"error_code": 42201, "message": "bad body"}));
        };
        let Some(schema) = body["schema"].as_str() else {
            return ResponseTemplate::new(422)
                .set_body_json(json!({"error_code": 42201, "message": "no schema"}));
        };
        // POST /subjects/<subject>/versions
        let subject = request.url.path().split('/').nth(2).unwrap_or_default();
        let mut subjects = self.1.lock().expect("lock");
        if !subjects.iter().any(|s| s == subject) {
            subjects.push(subject.to_owned());
        }
        let mut all = self.0.lock().expect("lock");
        let id = match all.iter().position(|s| s == schema) {
            Some(i) => i + 1,
            None => {
                all.push(schema.to_string());
                all.len()
            }
        };
        ResponseTemplate::new(200).set_body_json(json!({ "id": id }))
    }
}

impl Respond for ById {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id: usize = request
            .url
            .path()
            .rsplit('/')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let all = self.0.lock().expect("lock");
        match id.checked_sub(1).and_then(|i| all.get(i)) {
            Some(schema) => ResponseTemplate::new(200).set_body_json(json!({ "schema": schema })),
            None => ResponseTemplate::new(404).set_body_json(
                json!({"error_code": 40403, "message": format!("Schema {id} not found")}),
            ),
        }
    }
}

impl RegistryDouble {
    pub async fn start() -> RegistryDouble {
        let server = MockServer::start().await;
        let schemas = Arc::new(Mutex::new(Vec::new()));
        let subjects = Arc::new(Mutex::new(Vec::new()));
        Mock::given(method("POST"))
            .and(path_regex(r"^/subjects/[^/]+/versions$"))
            .respond_with(Register(schemas.clone(), subjects.clone()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/subjects"))
            .respond_with(Subjects(subjects))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/schemas/ids/\d+$"))
            .respond_with(ById(schemas.clone()))
            .mount(&server)
            .await;
        RegistryDouble { server, schemas }
    }

    /// Registers a schema directly (as another producer would), returning its id.
    pub fn register(&self, schema: &str) -> u32 {
        let mut all = self.schemas.lock().expect("lock");
        all.push(schema.to_string());
        all.len() as u32
    }

    /// How many schemas are registered: their ids are 1 to this.
    pub fn registered(&self) -> u32 {
        self.schemas.lock().expect("lock").len() as u32
    }

    pub fn url(&self) -> String {
        self.server.uri()
    }
}

#[test]
fn fixtures_cover_every_kind_and_the_samples_parse() {
    let kinds: BTreeSet<&str> = events().iter().map(|e| e.kind.name()).collect();
    assert_eq!(kinds.len(), 7);
    let samples = sample_events();
    assert!(samples.len() >= 30, "{}", samples.len());
    let sample_kinds: BTreeSet<&str> = samples.iter().map(|e| e.kind.name()).collect();
    // Every kind a source sends; `deadline_reached` is hirestate's own.
    assert_eq!(sample_kinds.len(), 6, "{sample_kinds:?}");
    assert!(!sample_kinds.contains("deadline_reached"));
    let candidates: BTreeSet<&str> = samples.iter().map(|e| e.candidate_id.as_str()).collect();
    assert!((4..=5).contains(&candidates.len()));
}
