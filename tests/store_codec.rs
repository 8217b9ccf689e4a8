//! Properties of the store's state encoding (`project::state_codec`): every state round-trips
//! exactly, and no byte string — truncated, flipped, spliced — makes decoding panic.
//! Exact layout bytes and each error kind are unit tests beside the codec.

mod strategies;

use std::collections::{BTreeMap, BTreeSet};

use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;
use proptest::sample::Index;

use hirestate::model::{
    Application, CandidateState, Command, CommandOp, CommandRecord, CommandStatus, FieldValue,
    SourceSystem, Timestamp,
};
use hirestate::project::state_codec::{decode, encode, DecodeError};

/// Empty, short (they collide: interning and front coding get used) and arbitrary Unicode.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        3 => "[a-c]{1,3}",
        2 => "[a-zé日\u{1F600}.-]{1,12}",
        2 => any::<String>(),
    ]
}

/// Derived ids (packed) and everything near them (stored as strings).
fn command_id() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[0-9a-f]{32}",
        1 => "[0-9a-fA-F]{32}",
        1 => "[0-9a-f]{31}|[0-9a-f]{33}",
        1 => text(),
    ]
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    any::<i64>().prop_map(Timestamp)
}

fn field_value() -> impl Strategy<Value = FieldValue> {
    strategies::field_value(text().boxed())
}

fn fields() -> impl Strategy<Value = BTreeMap<String, FieldValue>> {
    btree_map(text(), field_value(), 0..5)
}

fn source() -> impl Strategy<Value = SourceSystem> {
    prop::sample::select(SourceSystem::ALL.to_vec())
}

fn application() -> impl Strategy<Value = Application> {
    (
        (text(), text(), text(), text(), timestamp()),
        fields(),
        btree_map(text(), source(), 0..4),
        any::<bool>(),
    )
        .prop_map(
            |(
                (application_id, requisition_id, region, stage, stage_entered_at),
                fields,
                field_sources,
                stuck_alerted,
            )| Application {
                application_id: application_id.into(),
                requisition_id,
                region,
                stage: stage.into(),
                stage_entered_at,
                fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
                field_sources: field_sources
                    .into_iter()
                    .map(|(k, s)| (k.into(), s))
                    .collect(),
                stuck_alerted,
            },
        )
}

fn command() -> impl Strategy<Value = Command> {
    strategies::command(command_id().boxed(), text().boxed(), fields().boxed())
}

/// A record and whether its resend carries the id it is filed under (the usual case).
fn record() -> impl Strategy<Value = (CommandRecord, bool)> {
    let op = prop::sample::select(vec![
        CommandOp::MoveStage,
        CommandOp::UpdateFields,
        CommandOp::CreatePreHire,
    ]);
    let status = prop::sample::select(vec![
        CommandStatus::Pending,
        CommandStatus::Confirmed,
        CommandStatus::Failed,
        CommandStatus::Rejected,
    ]);
    (
        (op, text(), text(), status),
        (timestamp(), prop::option::of(timestamp()), any::<u32>()),
        (text(), prop::option::of(timestamp()), any::<bool>()),
        prop::option::of(command()),
        any::<bool>(),
    )
        .prop_map(
            |(
                (op, target, application_id, status),
                (issued_at, acked_at, attempts),
                (owner, retry_at, stuck_alerted),
                resend,
                same_id,
            )| {
                let record = CommandRecord {
                    op,
                    target: target.into(),
                    application_id: application_id.into(),
                    status,
                    issued_at,
                    acked_at,
                    attempts,
                    owner,
                    retry_at,
                    stuck_alerted,
                    resend: resend.map(std::sync::Arc::new),
                };
                (record, same_id)
            },
        )
}

fn state() -> impl Strategy<Value = CandidateState> {
    (
        text(),
        btree_set(prop_oneof![text(), "[a-c]{1,3}-e[0-9]{1,2}"], 0..16),
        btree_map(text(), application(), 0..3),
        btree_map(command_id(), record(), 0..10),
        prop::option::of(timestamp()),
    )
        .prop_map(
            |(candidate_id, seen_event_ids, applications, commands, last_event_at)| {
                let commands = commands
                    .into_iter()
                    .map(|(id, (mut record, same_id))| {
                        let id: std::sync::Arc<str> = id.into();
                        if let (Some(c), true) = (record.resend.as_mut(), same_id) {
                            std::sync::Arc::make_mut(c).command_id = id.clone();
                        }
                        (id, record)
                    })
                    .collect();
                CandidateState {
                    candidate_id,
                    seen_event_ids: seen_event_ids.into_iter().collect(),
                    applications: applications.into_iter().collect(),
                    commands,
                    last_event_at,
                }
            },
        )
}

fn encoded(s: &CandidateState) -> Vec<u8> {
    let mut out = Vec::new();
    encode(s, &mut out);
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(Index),
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, u8),
    Remove(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), 1..=255u8).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (
            any::<Index>(),
            prop::sample::select(vec![0u8, 1, 2, 3, 0x7f, 0x80, 0xff])
        )
            .prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Remove),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match m {
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        Mutation::Flip(i, x) => {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        Mutation::Set(i, b) => {
            let i = i.index(bytes.len());
            bytes[i] = *b;
        }
        Mutation::Insert(i, b) => {
            let i = i.index(bytes.len() + 1);
            bytes.insert(i, *b);
        }
        Mutation::Remove(i) => {
            let i = i.index(bytes.len());
            bytes.remove(i);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_state_round_trips(s in state()) {
        let bytes = encoded(&s);
        prop_assert_eq!(decode(&bytes), Ok(s.clone()));
        // Deterministic: what the projection digests and snapshots rely on.
        prop_assert_eq!(encoded(&s), bytes);
    }

    /// Damaged bytes give an error or a state, never a panic; a state they give is a state:
    /// it encodes and decodes like any other.
    #[test]
    fn damaged_bytes_never_panic(s in state(), ms in vec(mutation(), 1..4)) {
        let mut bytes = encoded(&s);
        for m in &ms {
            apply(&mut bytes, m);
        }
        match decode(&bytes) {
            Ok(back) => {
                let again = encoded(&back);
                let twice = decode(&again).map(|s| encoded(&s));
                prop_assert_eq!(twice, Ok(again));
            }
            Err(DecodeError { at, .. }) => prop_assert!(at <= bytes.len()),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..256), version in any::<bool>()) {
        let mut bytes = bytes;
        if version && !bytes.is_empty() {
            bytes[0] = hirestate::project::state_codec::VERSION;
        }
        let _ = decode(&bytes);
    }
}

proptest! {
    // Every prefix of a state is as many decodes as it has bytes: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_strict_prefix_fails(s in state()) {
        let bytes = encoded(&s);
        for n in 0..bytes.len() {
            prop_assert!(decode(&bytes[..n]).is_err(), "prefix of {} bytes decoded", n);
        }
    }
}

#[test]
fn the_strategy_reaches_what_the_codec_distinguishes() {
    // A guard against a strategy that silently stopped producing the interesting cases.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut packed, mut unpacked, mut same, mut other, mut nonascii, mut empty) =
        (0, 0, 0, 0, 0, 0);
    let mut values = BTreeSet::new();
    for _ in 0..300 {
        let s = state().new_tree(&mut runner).unwrap().current();
        for (id, r) in &s.commands {
            let hex = id.len() == 32 && id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
            if hex {
                packed += 1
            } else {
                unpacked += 1
            }
            if let Some(c) = &r.resend {
                if &c.command_id == id {
                    same += 1
                } else {
                    other += 1
                }
            }
        }
        nonascii += usize::from(s.seen_event_ids.iter().any(|e| !e.is_ascii()));
        empty += usize::from(s.candidate_id.is_empty());
        for a in s.applications.values() {
            for v in a.fields.values() {
                values.insert(match v {
                    FieldValue::Bool(_) => 0,
                    FieldValue::Number(_) => 1,
                    FieldValue::Text(_) => 2,
                    FieldValue::List(_) => 3,
                });
            }
        }
    }
    for (what, n) in [
        ("packed ids", packed),
        ("string ids", unpacked),
        ("resends under their own id", same),
        ("resends under another id", other),
        ("non-ASCII event ids", nonascii),
        ("empty candidate ids", empty),
    ] {
        assert!(n > 0, "the strategy never made {what}");
    }
    assert_eq!(values.len(), 4, "every FieldValue variant");
}
