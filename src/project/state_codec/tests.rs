//! Exact bytes of the layout, written out by hand from the module doc, and one test per way
//! bytes can be wrong. The round-trip and mutation properties are in `tests/store_codec.rs`.

use super::*;
use crate::model::Timestamp;

const ID: &str = "00112233445566778899aabbccddeeff";

fn ts(n: i64) -> [u8; 8] {
    n.to_le_bytes()
}

/// A small state that uses every construct of the layout once.
fn sample() -> CandidateState {
    let app = Application {
        application_id: "a1".into(),
        requisition_id: "r".into(),
        region: "na".into(),
        stage: "triage".into(),
        stage_entered_at: Timestamp(1),
        fields: VecMap::from([
            ("x".into(), FieldValue::Bool(true)),
            ("y".into(), FieldValue::Number(1.5)),
        ]),
        field_sources: VecMap::from([("x".into(), SourceSystem::Ats)]),
        stuck_alerted: false,
    };
    let open = CommandRecord {
        op: CommandOp::MoveStage,
        target: "gh".into(),
        application_id: "a1".into(),
        status: CommandStatus::Pending,
        issued_at: Timestamp(2),
        acked_at: None,
        attempts: 1,
        owner: "o".into(),
        retry_at: None,
        stuck_alerted: false,
        resend: Some(std::sync::Arc::new(Command {
            command_id: ID.into(),
            target: "gh".into(),
            system: TargetSystem::Ats,
            candidate_id: "c1".into(),
            application_id: "a1".into(),
            causing_event_id: "e2".into(),
            occurred_at: Timestamp(2),
            policy_version: "v".into(),
            policy_digest: "d".into(),
            attempt: 1,
            payload: CommandPayload::MoveStage {
                stage: "triage".into(),
                remote_stage: "T".into(),
            },
        })),
    };
    let done = CommandRecord {
        op: CommandOp::UpdateFields,
        target: "wd".into(),
        application_id: "a1".into(),
        status: CommandStatus::Confirmed,
        issued_at: Timestamp(2),
        acked_at: Some(Timestamp(3)),
        attempts: 2,
        owner: "o".into(),
        retry_at: Some(Timestamp(4)),
        stuck_alerted: true,
        resend: None,
    };
    CandidateState {
        candidate_id: "c1".into(),
        seen_event_ids: IdSet::from_iter(["e1", "e2"]),
        applications: VecMap::from([("a1".into(), app)]),
        commands: VecMap::from([(ID.into(), open), ("X".into(), done)]),
        last_event_at: Some(Timestamp(-1)),
    }
}

fn sample_bytes() -> Vec<u8> {
    let mut b = vec![2]; // version
    b.extend([0, 2, b'c', b'1']); // candidate_id, remembered as #1
    b.extend([2, 0, 2, b'e', b'1', 1, 1, b'2']); // seen: "e1", then 1 shared + "2"
    b.extend([1, 0, 2, b'a', b'1']); // one application, key "a1" remembered as #2
    b.extend([2]); // application_id = #2
    b.extend([0, 1, b'r']); // requisition_id, #3
    b.extend([0, 2, b'n', b'a']); // region, #4
    b.extend([0, 6, b't', b'r', b'i', b'a', b'g', b'e']); // stage, #5
    b.extend(ts(1));
    b.extend([2, 0, 1, b'x', 0, 1]); // fields: "x" = bool true
    b.extend([0, 1, b'y', 1, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f]); // "y" = 1.5 (0x3ff8 << 48)
    b.extend([1, 0, 1, b'x', 0]); // field_sources: "x" = ats
    b.extend([0]); // stuck_alerted
    b.extend([2]); // two commands
    b.extend([0, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]); // id as 16 bytes
    b.extend([0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
    b.extend([0, 0, 2, b'g', b'h', 2, 0]); // move_stage, target #6, application #2, pending
    b.extend(ts(2));
    b.extend([0, 1, 0, 1, b'o', 0, 0]); // no ack, 1 attempt, owner #7, no retry, not stuck
    b.extend([1, 2, 6, 0, 1, 2]); // resend: id = key, target #6, ats, candidate #1, app #2
    b.extend([2, b'e', b'2']); // causing_event_id
    b.extend(ts(2));
    b.extend([0, 1, b'v', 0, 1, b'd', 1]); // policy version #8, digest #9, attempt 1
    b.extend([0, 5, 0, 1, b'T']); // move_stage: stage #5, remote_stage #10
    b.extend([1, 1, b'X']); // id "X", as a string
    b.extend([1, 0, 2, b'w', b'd', 2, 1]); // update_fields, target #11, app #2, confirmed
    b.extend(ts(2));
    b.push(1);
    b.extend(ts(3)); // acked_at
    b.extend([2, 7, 1]); // 2 attempts, owner #7, retry_at:
    b.extend(ts(4));
    b.extend([1, 0]); // stuck, no resend
    b.push(1);
    b.extend(ts(-1)); // last_event_at
    b
}

fn encoded(s: &CandidateState) -> Vec<u8> {
    let mut out = Vec::new();
    encode(s, &mut out);
    out
}

fn problem(bytes: &[u8]) -> (usize, &'static str, Problem) {
    let e = decode(bytes).expect_err("these bytes must not decode");
    (e.at, e.reading, e.problem)
}

#[test]
fn the_layout_is_the_documented_one() {
    assert_eq!(encoded(&sample()), sample_bytes());
    assert_eq!(decode(&sample_bytes()), Ok(sample()));
}

#[test]
fn an_empty_state_is_seven_bytes() {
    let empty = CandidateState::default();
    assert_eq!(encoded(&empty), [2, 0, 0, 0, 0, 0, 0]);
    assert_eq!(decode(&[2, 0, 0, 0, 0, 0, 0]), Ok(empty));
}

#[test]
fn encode_appends_to_what_the_buffer_holds() {
    let mut out = vec![9, 9];
    encode(&sample(), &mut out);
    assert_eq!(out[..2], [9, 9]);
    assert_eq!(out[2..], sample_bytes()[..]);
}

#[test]
fn errors_name_the_offset_what_was_read_and_the_problem() {
    let e = decode(&[2, 0, 1, 0xff, 0, 0, 0, 0]).unwrap_err();
    assert_eq!(e.to_string(), "at byte 2, reading candidate_id: not UTF-8");
}

#[test]
fn another_version_or_json_is_refused() {
    assert_eq!(
        problem(&[]),
        (0, "version", Problem::Truncated { needed: 1, left: 0 })
    );
    assert_eq!(
        problem(&[1, 0, 0, 0, 0, 0, 0]),
        (0, "version", Problem::Version(1))
    );
    let json = serde_json::to_vec(&sample()).unwrap();
    assert_eq!(problem(&json), (0, "version", Problem::Version(b'{')));
}

#[test]
fn every_strict_prefix_is_truncated_and_an_extra_byte_is_trailing() {
    let b = sample_bytes();
    for n in 0..b.len() {
        let (_, _, p) = problem(&b[..n]);
        assert!(matches!(p, Problem::Truncated { .. }), "prefix {n}: {p:?}");
    }
    let mut longer = b.clone();
    longer.push(0);
    assert_eq!(problem(&longer), (b.len(), "the end", Problem::Trailing(1)));
}

#[test]
fn back_references_must_name_a_remembered_string() {
    assert_eq!(
        problem(&[2, 1, 0, 0, 0, 0]),
        (1, "candidate_id", Problem::Reference { index: 1, known: 0 })
    );
    // application key #1 is the candidate id; #2 is not remembered yet
    assert_eq!(
        problem(&[2, 0, 1, b'c', 0, 1, 2]),
        (
            6,
            "application key",
            Problem::Reference { index: 2, known: 1 }
        )
    );
}

#[test]
fn keys_must_strictly_increase() {
    // seen ids "c" then "b"
    assert_eq!(
        problem(&[2, 0, 0, 2, 0, 1, b'c', 0, 1, b'b', 0, 0, 0]),
        (7, "seen_event_ids", Problem::Order)
    );
    // "c" twice: 1 shared byte, empty suffix
    assert_eq!(
        problem(&[2, 0, 0, 2, 0, 1, b'c', 1, 0, 0, 0, 0]),
        (7, "seen_event_ids", Problem::Order)
    );
    // the first key cannot share anything
    assert_eq!(
        problem(&[2, 0, 0, 1, 1, 1, b'c', 0, 0, 0]),
        (
            4,
            "seen_event_ids",
            Problem::Shared {
                shared: 1,
                previous: 0
            }
        )
    );
    // command ids "X" then "X" (strings), each with a minimal record
    let record = [0u8; 21]; // every field zero, empty or absent
    let mut b = vec![2, 0, 0, 0, 0, 2, 1, 1, b'X'];
    b.extend(record);
    let second = b.len();
    b.extend([1, 1, b'X']);
    b.extend(record);
    b.push(0);
    assert_eq!(problem(&b), (second, "command id", Problem::Order));
}

#[test]
fn a_front_coded_key_is_checked_as_utf8_whole() {
    // "é" is c3 a9; "è" is c3 a8: they share one byte, which alone is not UTF-8.
    let state = CandidateState {
        seen_event_ids: IdSet::from_iter(["è", "é"]),
        ..Default::default()
    };
    let b = encoded(&state);
    assert_eq!(b[3..], [2, 0, 2, 0xc3, 0xa8, 1, 1, 0xa9, 0, 0, 0]);
    assert_eq!(decode(&b), Ok(state));
    // a suffix that breaks the character: c3 then ff
    assert_eq!(
        problem(&[2, 0, 0, 2, 0, 2, 0xc3, 0xa8, 1, 1, 0xff, 0, 0, 0]),
        (8, "seen_event_ids", Problem::Utf8)
    );
}

#[test]
fn counts_and_lengths_cannot_exceed_the_input() {
    assert_eq!(
        problem(&[2, 0, 0, 0, 0xe8, 0x07, 0, 0]),
        (
            4,
            "applications",
            Problem::Truncated {
                needed: 1000,
                left: 2
            }
        )
    );
    assert_eq!(
        problem(&[2, 0, 5, b'a']),
        (2, "candidate_id", Problem::Truncated { needed: 5, left: 1 })
    );
    let mut huge = vec![2, 0];
    huge.extend([0xff; 9]);
    huge.push(1); // 2^64 - 1
    assert!(matches!(problem(&huge).2, Problem::Truncated { .. }));
}

#[test]
fn overlong_varints_are_refused() {
    let mut b = vec![2, 0]; // then the candidate id's length:
    b.extend([0x80; 9]);
    b.push(2); // tenth byte above the 64th bit
    assert_eq!(problem(&b), (2, "candidate_id", Problem::Varint));
    let mut b = vec![2, 0];
    b.extend([0x80; 12]);
    assert_eq!(problem(&b), (2, "candidate_id", Problem::Varint));
}

#[test]
fn unknown_codes_and_bools_are_refused() {
    let b = sample_bytes();
    let at = |needle: &[u8]| {
        b.windows(needle.len())
            .position(|w| w == needle)
            .expect("in the sample")
    };
    let mut bad = b.clone();
    let source = at(&[1, 0, 1, b'x', 0]) + 4;
    bad[source] = 7;
    assert_eq!(problem(&bad), (source, "field source", Problem::Tag(7)));

    let mut bad = b.clone();
    let value = at(&[2, 0, 1, b'x', 0, 1]) + 4;
    bad[value] = 4;
    assert_eq!(problem(&bad), (value, "field value tag", Problem::Tag(4)));
    let mut bad = b.clone();
    bad[value + 1] = 2;
    assert_eq!(
        problem(&bad),
        (value + 1, "field value bool", Problem::Tag(2))
    );

    let record = at(&[0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]) + 8;
    let mut bad = b.clone();
    bad[record] = 3;
    assert_eq!(problem(&bad), (record, "command op", Problem::Tag(3)));
    let mut bad = b.clone();
    bad[record + 6] = 4;
    assert_eq!(
        problem(&bad),
        (record + 6, "command status", Problem::Tag(4))
    );

    // tag 2 ("the record's own id") where there is no record
    let mut bad = b.clone();
    let top = record - 17;
    bad[top] = 2;
    assert_eq!(problem(&bad), (top, "command id tag", Problem::Tag(2)));

    let mut bad = b.clone();
    let last = b.len() - 9;
    bad[last] = 2;
    assert_eq!(problem(&bad), (last, "last_event_at", Problem::Tag(2)));
}

#[test]
fn attempts_above_u32_are_refused() {
    let mut s = sample();
    s.commands.remove(ID);
    if let Some(r) = s.commands.get_mut("X") {
        r.attempts = 127;
    }
    let b = encoded(&s);
    let i = b
        .windows(4)
        .position(|w| w == [127, 0, 1, b'o'])
        .expect("attempts then the owner's first use");
    let mut bad = b[..i].to_vec();
    bad.extend([0x80, 0x80, 0x80, 0x80, 0x10]); // 2^32
    bad.extend(&b[i + 1..]);
    assert_eq!(
        problem(&bad),
        (i, "command attempts", Problem::Range(1 << 32))
    );
}

#[test]
fn numbers_keep_their_exact_bits_nan_included() {
    for bits in [
        f64::NAN.to_bits(),
        0x7ff0_0000_0000_0001,
        (-0.0f64).to_bits(),
    ] {
        let mut s = sample();
        if let Some(a) = s.applications.get_mut("a1") {
            a.fields
                .insert("y".into(), FieldValue::Number(f64::from_bits(bits)));
        }
        let back = decode(&encoded(&s)).unwrap();
        let Some(FieldValue::Number(x)) = back.applications["a1"].fields.get("y") else {
            panic!("y is a number");
        };
        assert_eq!(x.to_bits(), bits);
    }
}

#[test]
fn only_32_lowercase_hex_chars_are_packed() {
    for (id, packed) in [
        (ID, true),
        ("00112233445566778899AABBCCDDEEFF", false),
        ("00112233445566778899aabbccddeef", false),
        ("00112233445566778899aabbccddeeff0", false),
        ("0011223344556677889g", false),
        ("", false),
    ] {
        let mut s = sample();
        let mut record = s.commands.remove(ID).unwrap();
        record.resend = None;
        s.commands.insert(id.into(), record);
        let b = encoded(&s);
        assert_eq!(decode(&b), Ok(s.clone()), "{id:?}");
        let raw = (0..16).map(|i| (i as u8) * 0x11).collect::<Vec<_>>();
        assert_eq!(b.windows(16).any(|w| w == raw), packed, "{id:?}");
    }
}

#[test]
fn a_resend_filed_under_another_id_keeps_its_own() {
    let mut s = sample();
    if let Some(Some(c)) = s.commands.get_mut(ID).map(|r| r.resend.as_mut()) {
        std::sync::Arc::make_mut(c).command_id = "other".into();
    }
    assert_eq!(decode(&encoded(&s)), Ok(s));
}

#[test]
fn more_distinct_strings_than_remembered_still_round_trip() {
    let mut s = sample();
    for i in 0..40 {
        let mut r = s.commands["X"].clone();
        r.target = format!("t{i}").into();
        r.owner = format!("o{}", i % 3);
        s.commands.insert(format!("Y{i:02}").into(), r);
    }
    assert_eq!(decode(&encoded(&s)), Ok(s));
}

/// Strings the interning table cannot tell apart by their tag (same length, first and last
/// eight bytes) are still compared, and long ones take multi-byte lengths.
#[test]
fn strings_alike_at_both_ends_and_long_strings_are_written_as_themselves() {
    let alike = ["aaaaaaaa-1-bbbbbbbb", "aaaaaaaa-2-bbbbbbbb"];
    let long = "x".repeat(200);
    let state = CandidateState {
        candidate_id: alike[0].into(),
        seen_event_ids: IdSet::from_iter([long.clone(), format!("{long}y")]),
        ..CandidateState::default()
    };
    let mut b = vec![2, 0, 19];
    b.extend(alike[0].as_bytes());
    // two seen ids: "x" * 200 (length 200 = varint c8 01), then 200 shared + "y"
    b.extend([2, 0, 0xc8, 0x01]);
    b.extend(long.as_bytes());
    b.extend([0xc8, 0x01, 1, b'y']);
    b.extend([0, 0, 0]);
    assert_eq!(encoded(&state), b);
    assert_eq!(decode(&b), Ok(state.clone()));

    let mut app = sample().applications.remove("a1").unwrap();
    app.application_id = alike[0].into();
    let state = CandidateState {
        applications: VecMap::from([(alike[1].into(), app)]),
        ..state
    };
    let bytes = encoded(&state);
    assert_eq!(decode(&bytes), Ok(state));
    let written = |s: &str| {
        bytes
            .windows(s.len())
            .filter(|w| *w == s.as_bytes())
            .count()
    };
    assert_eq!((written(alike[0]), written(alike[1])), (1, 1));
}
