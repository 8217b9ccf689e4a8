//! Bad bytes and a bad registry: each failure gives its own [`CodecError`] variant, never a
//! panic, never an unbounded allocation. Ends with property tests feeding random and mutated
//! payloads to every decoder.

#[path = "codec_fixtures.rs"]
mod fixtures;

use hirestate::codec::{BodyProblem, Codec, CodecError, Framing, AVRO_MAX_ALLOCATION};
use hirestate::model::{CandidateState, Command, Event};
use proptest::prelude::*;
use std::sync::LazyLock;

use fixtures::RegistryDouble;

fn codec() -> Codec {
    Codec::embedded().expect("codec")
}

fn so_header(codec: &Codec) -> Vec<u8> {
    let mut h = vec![0xC3, 0x01];
    h.extend(codec.fingerprint("HiringEvent").unwrap());
    h
}

#[test]
fn empty_and_whitespace_payloads_are_empty() {
    assert_eq!(codec().decode_local::<Event>(b""), Err(CodecError::Empty));
    assert_eq!(
        codec().decode_local::<Event>(b" \r\n"),
        Err(CodecError::Empty)
    );
}

#[test]
fn a_wrong_magic_byte_is_named() {
    assert_eq!(
        codec().decode_local::<Event>(&[0x7f, 1, 2, 3, 4, 5]),
        Err(CodecError::UnknownMagic {
            byte: 0x7f,
            offset: 0
        })
    );
    assert_eq!(
        codec().decode_local::<Event>(&[0xC3, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        Err(CodecError::UnknownMagic {
            byte: 0x02,
            offset: 1
        })
    );
}

#[test]
fn truncated_headers_say_how_many_of_how_many_bytes() {
    assert_eq!(
        codec().decode_local::<Event>(&[0, 0, 1]),
        Err(CodecError::TruncatedHeader {
            framing: Framing::Confluent,
            got: 3,
            need: 5
        })
    );
    assert_eq!(
        codec().decode_local::<Event>(&[0xC3, 0x01, 9, 9]),
        Err(CodecError::TruncatedHeader {
            framing: Framing::SingleObject,
            got: 4,
            need: 10
        })
    );
}

#[test]
fn an_unknown_fingerprint_is_named_in_hex() {
    let mut bytes = vec![0xC3, 0x01, 0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3];
    bytes.extend([2, b'a']);
    assert_eq!(
        codec().decode_local::<Event>(&bytes),
        Err(CodecError::UnknownFingerprint {
            fingerprint: "deadbeef00010203".to_string()
        })
    );
}

#[test]
fn a_truncated_avro_body_is_truncated() {
    let codec = codec();
    let e = &fixtures::events()[3]; // screening_completed: ends with strings and unions
    let bytes = codec.encode_local(e, Framing::SingleObject).unwrap();
    for cut in [1, 3, 10, bytes.len() - 11] {
        match codec.decode_local::<Event>(&bytes[..bytes.len() - cut]) {
            Err(CodecError::AvroBody {
                schema,
                problem: BodyProblem::Truncated,
            }) => {
                assert_eq!(schema, "dev.hirestate.v1.HiringEvent")
            }
            other => panic!("cut {cut}: {other:?}"),
        }
    }
}

#[test]
fn a_union_index_out_of_range_names_index_and_size() {
    let codec = codec();
    let mut bytes = so_header(&codec);
    // event_id "a", candidate_id "b", application_id "c", source_system #0, principal "d",
    // occurred_at 0, signature null, payload branch 9 (zigzag 18) of 7 (HiringEvent.avsc lists seven kinds).
    bytes.extend([2, b'a', 2, b'b', 2, b'c', 0, 2, b'd', 0, 0, 18]);
    assert_eq!(
        codec.decode_local::<Event>(&bytes),
        Err(CodecError::AvroBody {
            schema: "dev.hirestate.v1.HiringEvent".to_string(),
            problem: BodyProblem::UnionIndexOutOfRange {
                index: 9,
                variants: 7
            },
        })
    );
}

#[test]
fn a_2_gib_length_prefix_fails_on_the_allocation_limit() {
    let codec = codec();
    let mut bytes = so_header(&codec);
    // event_id length 2^31: zigzag 2^32 as a varint.
    bytes.extend([0x80, 0x80, 0x80, 0x80, 0x10, b'a', b'b']);
    assert_eq!(
        codec.decode_local::<Event>(&bytes),
        Err(CodecError::AvroBody {
            schema: "dev.hirestate.v1.HiringEvent".to_string(),
            problem: BodyProblem::AllocationLimit {
                desired: Some(1 << 31),
                max: AVRO_MAX_ALLOCATION
            },
        })
    );
}

#[test]
fn trailing_bytes_after_a_valid_record_are_refused() {
    let codec = codec();
    let mut bytes = codec
        .encode_local(&fixtures::events()[0], Framing::SingleObject)
        .unwrap();
    bytes.extend([0, 0]);
    assert!(matches!(
        codec.decode_local::<Event>(&bytes),
        Err(CodecError::AvroBody {
            problem: BodyProblem::TrailingBytes { count: 2 },
            ..
        })
    ));
}

#[test]
fn oversize_payloads_are_refused_before_decoding() {
    let codec = codec().with_max_payload(100);
    let bytes = vec![b' '; 101];
    assert_eq!(
        codec.decode_local::<Event>(&bytes),
        Err(CodecError::Oversize { len: 101, max: 100 })
    );
}

#[test]
fn json_errors_carry_serdes_message_naming_the_field() {
    let codec = codec();
    let line = fixtures::SAMPLES.lines().next().unwrap();
    let without_region = line.replace(r#","region":"na""#, "");
    match codec.decode_local::<Event>(without_region.as_bytes()) {
        Err(CodecError::Json { detail }) => assert!(detail.contains("region"), "{detail}"),
        other => panic!("{other:?}"),
    }
    match codec.decode_local::<Event>(br#"{"event_id": 5}"#) {
        Err(CodecError::Json { detail }) => assert!(detail.contains("line 1"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn confluent_bytes_without_a_registry_ask_for_one() {
    let bytes = [0, 0, 0, 0, 7, 2, b'a'];
    assert_eq!(
        codec().decode_local::<Event>(&bytes),
        Err(CodecError::RegistryRequired { schema_id: Some(7) })
    );
    assert_eq!(
        codec().decode::<Event>(&bytes).await,
        Err(CodecError::RegistryRequired { schema_id: Some(7) })
    );
    let e = &fixtures::events()[0];
    assert_eq!(
        codec().encode_local(e, Framing::Confluent),
        Err(CodecError::RegistryRequired { schema_id: None })
    );
}

#[tokio::test]
async fn an_unknown_schema_id_is_specific_and_not_retryable() {
    let registry = RegistryDouble::start().await;
    let codec = codec().with_registry(&registry.url()).unwrap();
    let err = codec
        .decode::<Event>(&[0, 0, 0, 0, 42, 2, b'a'])
        .await
        .unwrap_err();
    assert!(
        matches!(err, CodecError::UnknownSchemaId { id: 42, .. }),
        "{err:?}"
    );
    assert!(!err.retryable());
}

#[tokio::test]
async fn registry_down_is_retryable_not_a_panic() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let codec = codec()
        .with_registry(&format!("http://127.0.0.1:{port}"))
        .unwrap();
    let err = codec
        .decode::<Event>(&[0, 0, 0, 0, 1, 2, b'a'])
        .await
        .unwrap_err();
    assert!(
        matches!(err, CodecError::RegistryUnavailable { .. }),
        "{err:?}"
    );
    assert!(err.retryable());
    let err = codec
        .encode(
            &fixtures::events()[0],
            Framing::Confluent,
            "hiring.events.v1",
        )
        .await
        .unwrap_err();
    assert!(err.retryable(), "{err:?}");
}

#[tokio::test]
async fn registry_5xx_is_retryable_and_not_cached() {
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    for status in [500u16, 503] {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(
                ResponseTemplate::new(status).set_body_json(
                    serde_json::json!({"error_code": 50001, "message": "backend down"}),
                ),
            )
            .mount(&server)
            .await;
        let codec = codec().with_registry(&server.uri()).unwrap();
        for _ in 0..2 {
            let err = codec
                .decode::<Event>(&[0, 0, 0, 0, 1, 2, b'a'])
                .await
                .unwrap_err();
            assert!(err.retryable(), "{status}: {err:?}");
        }
        // The second attempt reached the registry again (the error was not cached).
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            2,
            "{status}"
        );
    }
}

#[tokio::test]
async fn mutated_confluent_bodies_never_panic() {
    let registry = RegistryDouble::start().await;
    let codec = codec().with_registry(&registry.url()).unwrap();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for e in fixtures::events() {
        let valid = codec
            .encode(&e, Framing::Confluent, "hiring.events.v1")
            .await
            .unwrap();
        for _ in 0..100 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let mut bytes = valid.clone();
            let pos = 5 + (seed >> 33) as usize % (bytes.len() - 5);
            bytes[pos] ^= 1 << ((seed >> 20) % 8);
            bytes.truncate(bytes.len() - (seed as usize % 3));
            let _ = codec.decode::<Event>(&bytes).await;
        }
    }
}

/// Built once per test binary: proptest runs hundreds of cases.
static CODEC: LazyLock<Codec> = LazyLock::new(codec);
static VALID: LazyLock<Vec<Vec<u8>>> = LazyLock::new(valid_payloads);

fn valid_payloads() -> Vec<Vec<u8>> {
    let codec = codec();
    let mut out = Vec::new();
    for e in fixtures::events() {
        out.push(codec.encode_local(&e, Framing::SingleObject).unwrap());
        out.push(codec.encode_local(&e, Framing::Json).unwrap());
    }
    for c in fixtures::commands() {
        out.push(codec.encode_local(&c, Framing::SingleObject).unwrap());
    }
    for s in fixtures::snapshots() {
        out.push(codec.encode_local(&s, Framing::SingleObject).unwrap());
    }
    out
}

fn decode_all(codec: &Codec, bytes: &[u8]) {
    let _ = codec.decode_local::<Event>(bytes);
    let _ = codec.decode_local::<Command>(bytes);
    let _ = codec.decode_local::<CandidateState>(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&CODEC, &bytes);
        // Behind a valid single-object header, so the Avro decoder sees them.
        let mut framed = so_header(&CODEC);
        framed.extend(&bytes);
        decode_all(&CODEC, &framed);
    }

    #[test]
    fn mutated_valid_records_never_panic(
        which in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..6),
        cut in 0usize..16,
    ) {
        let mut bytes = which.get(&VALID).clone();
        for (at, bit) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        bytes.truncate(bytes.len().saturating_sub(cut));
        decode_all(&CODEC, &bytes);
    }
}

/// A registry that requires credentials: with them every request carries them (encode
/// registers, decode fetches by id); without them, or with wrong ones, the answer (401) is
/// `RegistryDenied` — the configuration's fault, neither retryable nor the record's (before,
/// a permanent `Registry` error, which the live path dead-letters for every record it reads).
#[tokio::test]
async fn a_registry_requiring_credentials_gets_them_and_a_refusal_is_the_configurations() {
    use hirestate::codec::RegistryAuth;
    use wiremock::matchers::any;
    use wiremock::{Mock, ResponseTemplate};
    let registry = RegistryDouble::start().await;
    // "hirestate:s3cret", base64.
    let expected = "Basic aGlyZXN0YXRlOnMzY3JldA==";
    Mock::given(any())
        .and(move |r: &wiremock::Request| {
            r.headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected)
        })
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(serde_json::json!({"error_code": 401, "message": "Unauthorized"})),
        )
        .with_priority(1)
        .mount(&registry.server)
        .await;

    let with = |auth: RegistryAuth| codec().with_registry_auth(&registry.url(), &auth).unwrap();
    let good = with(RegistryAuth::Basic {
        user: "hirestate".into(),
        password: "s3cret".into(),
    });
    let e = &fixtures::events()[0];
    let bytes = good
        .encode(e, Framing::Confluent, "hiring.events.v1")
        .await
        .expect("encoding with credentials");
    assert_eq!(&good.decode::<Event>(&bytes).await.expect("decoding"), e);

    for auth in [
        RegistryAuth::None,
        RegistryAuth::Basic {
            user: "hirestate".into(),
            password: "wrong".into(),
        },
        RegistryAuth::Bearer("t0ken".into()),
    ] {
        let bad = with(auth.clone());
        let err = bad.decode::<Event>(&bytes).await.unwrap_err();
        assert!(
            matches!(err, CodecError::RegistryDenied { .. }) && err.is_configuration(),
            "{auth:?}: {err:?}"
        );
        assert!(!err.retryable());
        let err = bad
            .encode(e, Framing::Confluent, "hiring.alerts.v1")
            .await
            .unwrap_err();
        assert!(
            matches!(err, CodecError::RegistryDenied { .. }),
            "{auth:?}: {err:?}"
        );
    }
}

/// The start-up check of a registry (`GET /subjects`): a registry that answers lists its
/// subjects; 401 is the credentials; a URL whose path the registry does not serve (404), or a
/// server that answers no subject list, is not a registry; a registry out of reach (no
/// listener, 503) is not refused, since it may come back.
#[tokio::test]
async fn the_start_up_check_tells_a_registry_from_a_wrong_url_and_from_an_outage() {
    use hirestate::codec::{RegistryAuth, RegistryCheck, RegistryCheckError};
    use wiremock::matchers::{any, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    assert_eq!(
        codec().check_registry().await,
        Ok(RegistryCheck::NoRegistry)
    );

    let registry = RegistryDouble::start().await;
    let e = &fixtures::events()[0];
    let good = codec().with_registry(&registry.url()).unwrap();
    good.encode(e, Framing::Confluent, "hiring.events.v1")
        .await
        .expect("registering");
    assert_eq!(
        good.check_registry().await,
        Ok(RegistryCheck::Answered {
            url: registry.url(),
            subjects: 1
        })
    );

    let wrong = format!("{}/registry", registry.url());
    let check = codec()
        .with_registry(&wrong)
        .unwrap()
        .check_registry()
        .await;
    assert!(
        matches!(&check, Err(RegistryCheckError::NotARegistry { url, detail })
            if *url == wrong && detail.contains("404")),
        "{check:?}"
    );
    let said = check.unwrap_err().to_string();
    assert!(
        said.contains(&format!("GET {wrong}/subjects"))
            && said.contains("HIRESTATE_SCHEMA_REGISTRY"),
        "{said}"
    );

    // A web server, not a registry: 200, but no subject list.
    let web = MockServer::start().await;
    Mock::given(path("/subjects"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>hello</html>"))
        .mount(&web)
        .await;
    let check = codec()
        .with_registry(&web.uri())
        .unwrap()
        .check_registry()
        .await;
    assert!(
        matches!(check, Err(RegistryCheckError::NotARegistry { .. })),
        "{check:?}"
    );

    let denying = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(serde_json::json!({"error_code": 401, "message": "Unauthorized"})),
        )
        .mount(&denying)
        .await;
    let check = codec()
        .with_registry_auth(&denying.uri(), &RegistryAuth::Bearer("t0ken".into()))
        .unwrap()
        .check_registry()
        .await;
    let said = match check {
        Err(e @ RegistryCheckError::Denied { .. }) => e.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(
        said.contains("401")
            && said.contains("HIRESTATE_SCHEMA_REGISTRY_BEARER_TOKEN")
            && !said.contains("t0ken"),
        "{said}"
    );

    let unavailable = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(503))
        .mount(&unavailable)
        .await;
    let nobody = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    for url in [unavailable.uri(), nobody] {
        let check = codec().with_registry(&url).unwrap().check_registry().await;
        assert!(
            matches!(&check, Ok(RegistryCheck::OutOfReach { url: u, .. }) if *u == url),
            "{url}: {check:?}"
        );
    }
}
