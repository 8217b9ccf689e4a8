//! The direct readers and writers (`codec/direct/`) against the generic `Value` path they
//! short-cut, which `Codec::value_path_only` keeps to:
//!
//! - decoding events — realistic generated streams, arbitrary events of every kind, mutated
//!   payloads — gives exactly what the `Value` path gives: the same event, or the same error;
//! - encoding events, commands, rejections, alerts and snapshots gives the `Value` path's bytes.
//!   apache-avro writes a map in its `HashMap`'s (random) order, the direct writer in key order:
//!   records with a map of two or more entries are compared by what their bytes decode to and
//!   by length, every other record byte for byte.

#[path = "codec_fixtures.rs"]
mod fixtures;
mod strategies;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::LazyLock;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use hirestate::codec::{Codec, CodecError, Framing, Record};
use hirestate::generate::{stream, Spec};
use hirestate::model::{
    AckStatus, Alert, AlertKind, CandidateState, Command, CommandPayload, Event, EventKind,
    FieldValue, RejectReason, Rejection, SourceSystem, TimerKind, Timestamp,
};

static DIRECT: LazyLock<Codec> = LazyLock::new(|| Codec::embedded().expect("codec"));
static GENERIC: LazyLock<Codec> = LazyLock::new(|| DIRECT.clone().value_path_only());

fn both_ways(bytes: &[u8]) -> (Result<Event, CodecError>, Result<Event, CodecError>) {
    (
        DIRECT.decode_local::<Event>(bytes),
        GENERIC.decode_local::<Event>(bytes),
    )
}

fn encoded(e: &Event) -> Vec<u8> {
    DIRECT
        .encode_local(e, Framing::SingleObject)
        .expect("encodes")
}

/// The variant and which optional parts are present: what a set of events must cover.
fn shape(e: &Event) -> String {
    let kind = serde_json::to_value(&e.kind).expect("serialises")["kind"].to_string();
    let optional = match &e.kind {
        EventKind::StageChanged { reason, .. } => vec![reason.is_some()],
        EventKind::ScreeningCompleted {
            media_url,
            transcript_url,
            reviewer_ids,
            ..
        } => vec![
            media_url.is_some(),
            transcript_url.is_some(),
            reviewer_ids.is_empty(),
        ],
        EventKind::WritebackAcked {
            remote_ref, error, ..
        } => vec![remote_ref.is_some(), error.is_some()],
        _ => vec![],
    };
    format!("{kind} signed={} {optional:?}", e.signature.is_some())
}

#[test]
fn generated_streams_and_fixtures_decode_the_same_both_ways() {
    let policy = hirestate::policy::load(&hirestate::policy::default_dir()).expect("policy");
    let mut events = fixtures::events();
    events.extend(fixtures::sample_events());
    for seed in 1..=3 {
        let spec = Spec {
            seed,
            candidates: 150,
            acks: true,
            ..Spec::default()
        };
        events.extend(stream(&spec, &policy));
    }
    let mut kinds = BTreeSet::new();
    let mut shapes = BTreeSet::new();
    for e in &events {
        let (direct, generic) = both_ways(&encoded(e));
        assert_eq!(direct.as_ref(), Ok(e));
        assert_eq!(generic.as_ref(), Ok(e));
        kinds.insert(shape(e).split(' ').next().map(str::to_owned));
        shapes.insert(shape(e));
    }
    assert_eq!(kinds.len(), 7, "every event kind: {kinds:?}");
    eprintln!("{} events, {} shapes", events.len(), shapes.len());
}

#[test]
fn a_nan_score_keeps_its_bits() {
    let mut e = fixtures::events()
        .into_iter()
        .find(|e| matches!(e.kind, EventKind::ScreeningCompleted { .. }))
        .expect("a screening event");
    let nan = f64::from_bits(0x7ff8_dead_beef_0001);
    if let EventKind::ScreeningCompleted { score, .. } = &mut e.kind {
        *score = nan;
    }
    let (direct, generic) = both_ways(&encoded(&e));
    for decoded in [direct, generic] {
        match decoded.expect("decodes").kind {
            EventKind::ScreeningCompleted { score, .. } => {
                assert_eq!(score.to_bits(), nan.to_bits())
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn blocks_with_negative_counts_and_repeated_keys_read_as_apache_avro_reads_them() {
    let mut bytes = vec![0xC3, 0x01];
    bytes.extend(DIRECT.fingerprint("HiringEvent").expect("fingerprint"));
    // event_id "a", candidate_id "b", application_id "c", source_system #1, principal "d",
    // occurred_at -1, no signature, payload #3 (fields_asserted):
    bytes.extend([2, b'a', 2, b'b', 2, b'c', 2, 2, b'd', 1, 0, 6]);
    // a block of -2 entries (zigzag 3) of 9 bytes: "k" = true, "k" = text "x"; then a block
    // of one: "j" = list ["y"], then the end.
    bytes.extend([3, 18, 2, b'k', 0, 1, 2, b'k', 4, 2, b'x']);
    bytes.extend([2, 2, b'j', 6, 2, 2, b'y', 0, 0]);
    let (direct, generic) = both_ways(&bytes);
    assert_eq!(direct, generic);
    let fields = BTreeMap::from([
        ("j".to_string(), FieldValue::List(vec!["y".to_string()])),
        ("k".to_string(), FieldValue::Text("x".to_string())),
    ]);
    assert_eq!(
        direct.expect("decodes").kind,
        EventKind::FieldsAsserted { fields }
    );
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        3 => "[a-z0-9-]{1,40}",
        2 => any::<String>(),
    ]
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn field_value() -> impl Strategy<Value = FieldValue> {
    strategies::field_value(text().boxed())
}

fn kind() -> impl Strategy<Value = EventKind> {
    let ack = prop::sample::select(vec![
        AckStatus::Confirmed,
        AckStatus::Failed,
        AckStatus::Rejected,
    ]);
    prop_oneof![
        (text(), text()).prop_map(|(requisition_id, region)| EventKind::ApplicationCreated {
            requisition_id,
            region
        }),
        (text(), opt_text())
            .prop_map(|(to_stage, reason)| EventKind::StageChanged { to_stage, reason }),
        (
            strategies::number(),
            text(),
            text(),
            vec(text(), 0..4),
            opt_text(),
            opt_text()
        )
            .prop_map(
                |(
                    score,
                    recommendation,
                    rubric_version,
                    reviewer_ids,
                    media_url,
                    transcript_url,
                )| {
                    EventKind::ScreeningCompleted {
                        score,
                        recommendation,
                        rubric_version,
                        reviewer_ids,
                        media_url,
                        transcript_url,
                    }
                }
            ),
        btree_map(text(), field_value(), 0..6)
            .prop_map(|fields| EventKind::FieldsAsserted { fields }),
        (text(), ack, opt_text(), opt_text(), any::<bool>()).prop_map(
            |(command_id, status, remote_ref, error, retryable)| EventKind::WritebackAcked {
                command_id,
                status,
                remote_ref,
                error,
                retryable,
            }
        ),
        Just(EventKind::ErasureRequested {}),
        (
            prop::sample::select(TimerKind::ALL.to_vec()),
            text(),
            any::<i64>(),
            0..=i32::MAX as u32
        )
            .prop_map(
                |(timer, subject, due_at, attempt)| EventKind::DeadlineReached {
                    timer,
                    subject,
                    due_at: Timestamp(due_at),
                    attempt,
                }
            ),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    (
        (text(), text(), text()),
        prop::sample::select(SourceSystem::ALL.to_vec()),
        text(),
        any::<i64>(),
        opt_text(),
        kind(),
    )
        .prop_map(
            |(
                (event_id, candidate_id, application_id),
                source_system,
                source_principal,
                at,
                signature,
                kind,
            )| {
                Event {
                    event_id,
                    candidate_id,
                    application_id,
                    source_system,
                    source_principal,
                    occurred_at: Timestamp(at),
                    signature,
                    kind,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_events_decode_the_same_both_ways(e in event()) {
        let (direct, generic) = both_ways(&encoded(&e));
        prop_assert_eq!(direct.as_ref(), Ok(&e));
        prop_assert_eq!(generic.as_ref(), Ok(&e));
    }

    /// Bit flips, cuts and extra bytes: the same event or the same error. Compared through
    /// `Debug`, where a NaN a flip may create equals itself.
    #[test]
    fn mutated_payloads_give_the_same_result_both_ways(
        e in event(),
        flips in vec((any::<prop::sample::Index>(), 0u8..8), 0..4),
        cut in 0usize..4,
        extra in vec(any::<u8>(), 0..3),
    ) {
        let mut bytes = encoded(&e);
        for (at, bit) in flips {
            // The body only: header damage is framing's business, tested elsewhere.
            let i = 10 + at.index(bytes.len() - 10);
            bytes[i] ^= 1 << bit;
        }
        bytes.truncate((bytes.len() - cut).max(10));
        bytes.extend(extra);
        let (direct, generic) = both_ways(&bytes);
        prop_assert_eq!(format!("{direct:?}"), format!("{generic:?}"));
    }
}

// ---- encoding ----

/// Whether every map in `r` has at most one entry, so the `Value` path's bytes are determined.
trait OrderFree {
    fn order_free(&self) -> bool;
}

impl OrderFree for Event {
    fn order_free(&self) -> bool {
        !matches!(&self.kind, EventKind::FieldsAsserted { fields } if fields.len() > 1)
    }
}

impl OrderFree for Command {
    fn order_free(&self) -> bool {
        match &self.payload {
            CommandPayload::MoveStage { .. } => true,
            CommandPayload::UpdateFields { fields }
            | CommandPayload::CreatePreHire { fields, .. } => fields.len() <= 1,
        }
    }
}

impl OrderFree for Rejection {
    fn order_free(&self) -> bool {
        true
    }
}

impl OrderFree for Alert {
    fn order_free(&self) -> bool {
        true
    }
}

impl OrderFree for CandidateState {
    fn order_free(&self) -> bool {
        self.applications
            .values()
            .all(|a| a.fields.len() <= 1 && a.field_sources.len() <= 1)
            && self
                .commands
                .values()
                .filter_map(|c| c.resend.as_deref())
                .all(OrderFree::order_free)
    }
}

/// Encodes `r` both ways, in single-object framing; `true` when compared byte for byte.
fn same_encoding<R: Record + OrderFree + PartialEq + Debug>(r: &R) -> bool {
    let direct = DIRECT.encode_local(r, Framing::SingleObject);
    let generic = GENERIC.encode_local(r, Framing::SingleObject);
    match (&direct, &generic) {
        (Ok(d), Ok(g)) if r.order_free() => {
            assert_eq!(d, g, "{r:?}");
            true
        }
        (Ok(d), Ok(g)) => {
            assert_eq!(d.len(), g.len(), "{r:?}");
            assert_eq!(GENERIC.decode_local::<R>(d).as_ref(), Ok(r));
            assert_eq!(GENERIC.decode_local::<R>(g).as_ref(), Ok(r));
            false
        }
        _ => {
            assert_eq!(direct, generic, "{r:?}");
            true
        }
    }
}

/// The states a generated stream folds to, and the same with every map cut to its first entry
/// (so they are compared byte for byte too).
fn folded_states() -> Vec<CandidateState> {
    let policy = hirestate::policy::load(&hirestate::policy::default_dir()).expect("policy");
    let spec = Spec {
        candidates: 200,
        acks: true,
        ..Spec::default()
    };
    let mut states: BTreeMap<String, CandidateState> = BTreeMap::new();
    for e in stream(&spec, &policy) {
        let state = states.entry(e.candidate_id.clone()).or_default();
        hirestate::fold::apply(state, &e, &policy);
    }
    let states: Vec<CandidateState> = states.into_values().collect();
    let cut: Vec<CandidateState> = states
        .iter()
        .cloned()
        .map(|mut s| {
            for a in s.applications.values_mut() {
                a.fields = std::mem::take(&mut a.fields).into_iter().take(1).collect();
                a.field_sources = std::mem::take(&mut a.field_sources)
                    .into_iter()
                    .take(1)
                    .collect();
            }
            for c in s.commands.values_mut() {
                if let Some(cmd) = c.resend.as_mut() {
                    *cmd = std::sync::Arc::new(first_field_only((**cmd).clone()));
                }
            }
            s
        })
        .collect();
    states.into_iter().chain(cut).collect()
}

fn first_field_only(mut c: Command) -> Command {
    if let CommandPayload::UpdateFields { fields } | CommandPayload::CreatePreHire { fields, .. } =
        &mut c.payload
    {
        *fields = fields.pop_first().into_iter().collect();
    }
    c
}

#[test]
fn fixtures_and_folded_states_encode_as_the_value_path_does() {
    let mut exact = 0;
    let mut events = fixtures::events();
    events.extend(fixtures::sample_events());
    exact += events.iter().filter(|e| same_encoding(*e)).count();
    exact += fixtures::rejections()
        .iter()
        .filter(|r| same_encoding(*r))
        .count();
    exact += fixtures::alerts()
        .iter()
        .filter(|a| same_encoding(*a))
        .count();
    let mut commands = fixtures::commands();
    let mut snapshots = fixtures::snapshots();
    snapshots.extend(folded_states());
    for s in &snapshots {
        commands.extend(
            s.commands
                .values()
                .filter_map(|c| c.resend.as_deref().cloned()),
        );
    }
    commands.extend(commands.clone().into_iter().map(first_field_only));
    exact += commands.iter().filter(|c| same_encoding(*c)).count();
    let exact_snapshots = snapshots.iter().filter(|s| same_encoding(*s)).count();
    assert!(exact_snapshots >= snapshots.len() / 2, "{exact_snapshots}");
    assert!(exact > 100, "{exact} compared byte for byte");
}

#[test]
fn counts_beyond_the_avro_int_fail_as_the_value_path_fails() {
    let mut command = fixtures::commands().remove(0);
    command.attempt = u32::MAX;
    assert!(same_encoding(&command));
    assert!(DIRECT
        .encode_local(&command, Framing::SingleObject)
        .is_err());
    let mut state = fixtures::snapshots()
        .into_iter()
        .find(|s| !s.commands.is_empty())
        .expect("a snapshot with commands");
    let record = state
        .commands
        .values_mut()
        .next()
        .expect("a command record");
    record.attempts = i32::MAX as u32 + 1;
    assert!(same_encoding(&state));
    assert!(DIRECT.encode_local(&state, Framing::SingleObject).is_err());
    // An event's attempt is clamped, not refused, by both.
    let deadline = Event {
        kind: EventKind::DeadlineReached {
            timer: TimerKind::Retry,
            subject: "s".to_string(),
            due_at: Timestamp(1),
            attempt: u32::MAX,
        },
        ..fixtures::events().remove(0)
    };
    assert!(same_encoding(&deadline));
}

fn small_fields() -> impl Strategy<Value = BTreeMap<String, FieldValue>> {
    btree_map(text(), field_value(), 0..=1)
}

fn command() -> impl Strategy<Value = Command> {
    strategies::command(text().boxed(), text().boxed(), small_fields().boxed())
}

fn rejection() -> impl Strategy<Value = Rejection> {
    (
        (
            text(),
            text(),
            text(),
            prop::sample::select(SourceSystem::ALL.to_vec()),
        ),
        (
            text(),
            text(),
            prop::sample::select(RejectReason::ALL.to_vec()),
            text(),
        ),
        (opt_text(), any::<i64>(), text()),
    )
        .prop_map(
            |(
                (event_id, candidate_id, application_id, source_system),
                (source_principal, kind, reason, detail),
                (stage, at, policy_version),
            )| Rejection {
                event_id,
                candidate_id,
                application_id,
                source_system,
                source_principal,
                kind,
                reason,
                detail,
                stage,
                occurred_at: Timestamp(at),
                policy_version,
            },
        )
}

fn alert() -> impl Strategy<Value = Alert> {
    let kinds = vec![
        AlertKind::Divergence,
        AlertKind::Stuck,
        AlertKind::WritebackStuck,
        AlertKind::WritebackFailed,
        AlertKind::WritebackRejected,
    ];
    (
        (text(), prop::sample::select(kinds), text(), text()),
        (text(), text(), text(), any::<i64>()),
    )
        .prop_map(
            |((alert_id, kind, owner, candidate_id), (application_id, event_id, detail, at))| {
                Alert {
                    alert_id,
                    kind,
                    owner,
                    candidate_id,
                    application_id,
                    event_id,
                    detail,
                    occurred_at: Timestamp(at),
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_records_encode_as_the_value_path_does(
        e in event(),
        c in command(),
        r in rejection(),
        a in alert(),
    ) {
        same_encoding(&e);
        same_encoding(&c);
        same_encoding(&r);
        same_encoding(&a);
    }
}
