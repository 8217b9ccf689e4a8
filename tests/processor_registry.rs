//! The live processor with a schema registry (a Confluent-API double on wiremock: none can be
//! installed here): events produced in Confluent wire format, outputs written in it, and the
//! registry unreachable for a while.
//! - Equivalence: the outputs, read back through the registry, are exactly what `hirestate
//!   replay` derives, and every output record is Confluent-framed (magic byte 0, a schema id
//!   the registry knows).
//! - Outage: while the registry answers 503, every batch rolls back and is retried with a
//!   growing back-off (the records are not dead-lettered: a transient registry failure is not
//!   a property of the bytes); once it answers, the run completes with exactly the same
//!   outputs.
//! - Refusal: a registry that refuses to register an output schema (409, incompatible with the
//!   subject's earlier schemas) stops the processor with an error naming the subject and what
//!   to do, having committed nothing; started again once the registry accepts, it writes
//!   exactly the replay's outputs. Before, every batch rolled back and was retried every
//!   10 s for ever — and never asked the registry again (the converter caches a permanent
//!   error), so even a mended registry could not end it.
//!
//! - Credentials: a registry that requires them gets them (here from a `user:password@` in the
//!   URL); one that refuses them (401) stops the processor, naming the settings, with nothing
//!   dead-lettered. Before, hirestate sent no credentials at all, and a refusal was a
//!   permanent decode error: every Confluent-framed record went to the DLQ (and a cold start's
//!   restore skipped every event).
//! - `hirestate tail` waits out a registry outage instead of reporting the records it meets as
//!   undecodable (and leaving them out), and stops on refused credentials instead of reporting
//!   every record.
//!
//! Before these tests, `hirestate run` (and `hirestate tail`) with a registry waited for ever on
//! the first Confluent-framed record: the registry calls were made with `Handle::block_on` on a
//! current-thread runtime, which nothing drove.

#[path = "codec_fixtures.rs"]
mod fixtures;
#[path = "support/processor.rs"]
mod processor;
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wiremock::{Mock, Request, ResponseTemplate};

/// Matches every request while the registry is "down".
struct Down(Arc<AtomicBool>);

impl wiremock::Match for Down {
    fn matches(&self, _: &Request) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Matches the registration of a command topic's schema while the switch is on.
struct RefuseCommands(Arc<AtomicBool>);

impl wiremock::Match for RefuseCommands {
    fn matches(&self, r: &Request) -> bool {
        self.0.load(Ordering::SeqCst)
            && r.method == wiremock::http::Method::POST
            && r.url.path().contains(".commands.")
    }
}

/// Matches a request that does not carry `hirestate:s3cret` as basic authentication.
struct WithoutCredentials;

impl wiremock::Match for WithoutCredentials {
    fn matches(&self, r: &Request) -> bool {
        // "hirestate:s3cret", base64.
        r.headers.get("authorization").and_then(|v| v.to_str().ok())
            != Some("Basic aGlyZXN0YXRlOnMzY3JldA==")
    }
}

/// Matches `GET /subjects` while the switch is on: the registry lists its subjects to anyone,
/// so the start-up check passes and refused credentials meet the processor at its first record
/// instead (as when they are revoked while it runs).
struct SubjectsOpen(Arc<AtomicBool>);

impl wiremock::Match for SubjectsOpen {
    fn matches(&self, r: &Request) -> bool {
        self.0.load(Ordering::SeqCst)
            && r.method == wiremock::http::Method::GET
            && r.url.path() == "/subjects"
    }
}

/// The registry double, with a switch that makes it answer 503 to everything.
fn registry(rt: &tokio::runtime::Runtime) -> (fixtures::RegistryDouble, Arc<AtomicBool>) {
    let down = Arc::new(AtomicBool::new(false));
    let double = rt.block_on(async {
        let double = fixtures::RegistryDouble::start().await;
        Mock::given(Down(down.clone()))
            .respond_with(ResponseTemplate::new(503).set_body_json(
                serde_json::json!({"error_code": 50301, "message": "registry unavailable"}),
            ))
            .with_priority(1)
            .mount(&double.server)
            .await;
        double
    });
    (double, down)
}

/// A registry double that answers 401 to a request without `hirestate:s3cret` (while its
/// outage switch is on, 503 comes first; while `subjects_open` is on, `GET /subjects` answers
/// anyone), and a setup whose every command authenticates through the URL, its stream
/// produced so.
struct Secured {
    double: fixtures::RegistryDouble,
    down: Arc<AtomicBool>,
    subjects_open: Arc<AtomicBool>,
    /// The registry's URL without the credentials.
    bare: String,
    setup: processor::Setup,
    expected: processor::Expected,
}

fn secured(rt: &tokio::runtime::Runtime, bs: &str, name: &str) -> Secured {
    let (double, down) = registry(rt);
    rt.block_on(
        Mock::given(WithoutCredentials)
            .respond_with(
                ResponseTemplate::new(401).set_body_json(
                    serde_json::json!({"error_code": 401, "message": "Unauthorized"}),
                ),
            )
            .with_priority(2)
            .mount(&double.server),
    );
    let subjects_open = Arc::new(AtomicBool::new(false));
    rt.block_on(
        Mock::given(SubjectsOpen(subjects_open.clone()))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
            .with_priority(1)
            .mount(&double.server),
    );
    let bare = double.url();
    let with_credentials = bare.replacen("http://", "http://hirestate:s3cret@", 1);
    let (setup, expected) = setup_with_registry(bs, name, with_credentials);
    Secured {
        double,
        down,
        subjects_open,
        bare,
        setup,
        expected,
    }
}

/// A setup whose every command uses the registry, and its stream produced through it.
fn setup_with_registry(
    bs: &str,
    name: &str,
    url: String,
) -> (processor::Setup, processor::Expected) {
    let mut setup = processor::Setup::new(bs, name, 2);
    setup.registry = Some(url);
    let file = setup.generate("events.jsonl", 150, 71);
    setup.produce(&file);
    let expected = processor::expected(&setup, &file);
    (setup, expected)
}

/// The outputs read back through the registry equal the replay set, and every output record
/// is Confluent-framed with a schema id the registry serves.
fn assert_confluent_outputs(
    bs: &str,
    setup: &processor::Setup,
    double: &fixtures::RegistryDouble,
    expected: &processor::Expected,
) {
    let (actual, raw) = setup.read_back(&setup.output_topics());
    processor::assert_outputs_equal(&expected.outputs, &actual);
    processor::assert_command_headers(&raw);
    let known = double.registered();
    for topic in setup.output_topics() {
        for r in support::read_raw(bs, &topic, setup.partitions) {
            assert_eq!(r.value.first(), Some(&0), "{topic}: not Confluent-framed");
            let id = u32::from_be_bytes(r.value[1..5].try_into().expect("a schema id"));
            assert!(
                (1..=known).contains(&id),
                "{topic}: schema id {id} not registered"
            );
        }
    }
}

/// The registry at `bare` with a password it refuses.
fn wrong_credentials(bare: &str) -> [(&'static str, &str); 2] {
    [
        ("HIRESTATE_SCHEMA_REGISTRY", bare),
        (
            "HIRESTATE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
            "hirestate:wr0ng",
        ),
    ]
}

fn assert_nothing_dead_lettered(bs: &str, setup: &processor::Setup) {
    let dlq = support::read_raw(bs, &setup.topic("hiring.dlq.v1"), setup.partitions);
    assert!(dlq.is_empty(), "{} records dead-lettered", dlq.len());
}

/// After a stop: the same instance, with the test's settings, runs to the end, and its
/// outputs are exactly the replay's.
fn then_the_run_equals_the_replay(
    bs: &str,
    setup: &processor::Setup,
    instance: &processor::Instance,
    double: &fixtures::RegistryDouble,
    expected: &processor::Expected,
) {
    let report = instance.run_to_idle(setup, 2.0, &[]);
    processor::assert_counts(&report, &expected.counts);
    assert_confluent_outputs(bs, setup, double, expected);
}

#[test]
fn outputs_through_a_registry_equal_the_replay() {
    let Some(bs) = support::bootstrap("outputs_through_a_registry_equal_the_replay") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (double, _) = registry(&rt);
    let (setup, expected) = setup_with_registry(&bs, "registry", double.url());
    let report = setup.instance("x").run_to_idle(&setup, 2.0, &[]);
    processor::assert_counts(&report, &expected.counts);
    assert_confluent_outputs(&bs, &setup, &double, &expected);
}

#[test]
fn a_registry_outage_rolls_batches_back_until_it_answers_and_loses_nothing() {
    let Some(bs) = support::bootstrap(
        "a_registry_outage_rolls_batches_back_until_it_answers_and_loses_nothing",
    ) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (double, down) = registry(&rt);
    let (setup, expected) = setup_with_registry(&bs, "outage", double.url());

    down.store(true, Ordering::SeqCst);
    let instance = setup.instance("x");
    let started = Instant::now();
    let mut child = instance.spawn(&setup, 2.0, &[]);
    // Down for six rolled-back batches at least (back-off from 100 ms, doubling).
    instance.await_log(
        &mut child,
        "batch rolled back; rewinding",
        5,
        "no batch rolled back while the registry was down",
    );
    down.store(false, Ordering::SeqCst);
    let status = processor::wait_for(&mut child, Duration::from_secs(120))
        .unwrap_or_else(|| panic!("no exit within 120 s\n{}", instance.log_tail()));
    assert!(status.success(), "exited {status}\n{}", instance.log_tail());
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut out)
        .expect("report");
    let report: serde_json::Value =
        serde_json::from_str(out.lines().last().unwrap_or_default()).expect("a JSON report");
    eprintln!("outage run: {:?}; report {report}", started.elapsed());
    assert!(
        report["aborted_batches"].as_u64() > Some(5),
        "the outage rolled back no batch: {report}"
    );
    processor::assert_counts(&report, &expected.counts);
    assert_confluent_outputs(&bs, &setup, &double, &expected);
}

#[test]
fn a_registry_refusing_an_output_schema_stops_the_processor_and_loses_nothing() {
    let Some(bs) = support::bootstrap(
        "a_registry_refusing_an_output_schema_stops_the_processor_and_loses_nothing",
    ) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (double, _) = registry(&rt);
    let refuse = Arc::new(AtomicBool::new(false));
    rt.block_on(
        Mock::given(RefuseCommands(refuse.clone()))
            .respond_with(ResponseTemplate::new(409).set_body_json(serde_json::json!({
                "error_code": 409,
                "message": "Schema being registered is incompatible with an earlier schema"
            })))
            .with_priority(1)
            .mount(&double.server),
    );
    let (setup, expected) = setup_with_registry(&bs, "refused", double.url());

    refuse.store(true, Ordering::SeqCst);
    let instance = setup.instance("x");
    let mut child = instance.spawn(&setup, 5.0, &[]);
    instance.stopped_with(
        &mut child,
        &[
            &setup.topic("ats.commands."),
            "-value",
            "409",
            "retrying cannot succeed",
            "compatibility",
        ],
    );
    setup.assert_nothing_committed("a processor that could not encode its batch");

    refuse.store(false, Ordering::SeqCst);
    then_the_run_equals_the_replay(&bs, &setup, &instance, &double, &expected);
}

#[test]
fn a_registry_refusing_the_credentials_stops_the_processor_and_dead_letters_nothing() {
    let Some(bs) = support::bootstrap(
        "a_registry_refusing_the_credentials_stops_the_processor_and_dead_letters_nothing",
    ) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let Secured {
        double,
        subjects_open,
        bare,
        setup,
        expected,
        ..
    } = secured(&rt, &bs, "credentials");
    let wrong = wrong_credentials(&bare);
    let instance = setup.instance("x");
    // Refused by the start-up check, before the first record; then, with the check passing,
    // at the first record (as when the credentials are revoked while the processor runs).
    for (open, at) in [(false, "/subjects"), (true, "offset")] {
        subjects_open.store(open, Ordering::SeqCst);
        let mut child = instance.spawn(&setup, 5.0, &wrong);
        let last = instance.stopped_with(
            &mut child,
            &[
                at,
                "401",
                "credentials",
                "HIRESTATE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
            ],
        );
        let log = std::fs::read_to_string(&instance.log).expect("the instance log");
        assert!(
            !log.contains("wr0ng") && !log.contains("s3cret"),
            "a secret in the log: {last}"
        );
        assert_nothing_dead_lettered(&bs, &setup);
    }

    then_the_run_equals_the_replay(&bs, &setup, &instance, &double, &expected);
}

/// A registry URL that does not answer as a Confluent-API registry (here the right host with a
/// wrong path: every request is a 404) is refused at start-up, before any record is read.
/// Before, each event's schema id was "not found", a permanent decode error: the whole stream
/// went to the DLQ and the run exited 0.
#[test]
fn a_registry_url_that_is_not_a_registry_is_refused_at_start_up() {
    let Some(bs) =
        support::bootstrap("a_registry_url_that_is_not_a_registry_is_refused_at_start_up")
    else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (double, _) = registry(&rt);
    let (setup, expected) = setup_with_registry(&bs, "not-a-registry", double.url());
    let wrong = format!("{}/registry", double.url());

    let instance = setup.instance("x");
    let mut child = instance.spawn(
        &setup,
        5.0,
        &[("HIRESTATE_SCHEMA_REGISTRY", wrong.as_str())],
    );
    instance.stopped_with(
        &mut child,
        &[
            &format!("{wrong}/subjects"),
            "404",
            "HIRESTATE_SCHEMA_REGISTRY",
        ],
    );
    assert_nothing_dead_lettered(&bs, &setup);

    then_the_run_equals_the_replay(&bs, &setup, &instance, &double, &expected);
}

/// Events that need no registry (single-object), outputs that do: credentials the registry
/// refuses when an output schema is registered (past the start-up check, as when they are
/// revoked while the processor runs) stop the processor with nothing committed. (Checked by
/// hand only until this test.)
#[test]
fn refused_credentials_at_an_output_schema_stop_the_processor_and_commit_nothing() {
    let Some(bs) = support::bootstrap(
        "refused_credentials_at_an_output_schema_stop_the_processor_and_commit_nothing",
    ) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let Secured {
        double,
        subjects_open,
        bare,
        ..
    } = secured(&rt, &bs, "encode-credentials");
    subjects_open.store(true, Ordering::SeqCst);
    let setup = processor::Setup::new(&bs, "encode-credentials", 2);
    let file = setup.generate("events.jsonl", 60, 83);
    setup.produce(&file);

    let registered = double.registered();
    let instance = setup.instance("x");
    let mut child = instance.spawn(&setup, 5.0, &wrong_credentials(&bare));
    let last = instance.stopped_with(
        &mut child,
        &[
            "an output record cannot be encoded",
            "401",
            "HIRESTATE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
        ],
    );
    assert!(!last.contains("wr0ng"), "a secret in: {last}");
    setup.assert_nothing_committed("a processor that could not encode its batch");
    assert_eq!(
        double.registered(),
        registered,
        "a schema registered without the right credentials"
    );
}

/// A cold start (empty state directory, no snapshot) restores by folding the log, through the
/// registry: refused credentials stop it there too. Before, restore skipped each refused event
/// as one the DLQ already had, and the processor went on from an empty state.
#[test]
fn a_cold_start_with_refused_credentials_stops_in_restore() {
    let Some(bs) = support::bootstrap("a_cold_start_with_refused_credentials_stops_in_restore")
    else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let Secured {
        subjects_open,
        bare,
        setup,
        expected,
        ..
    } = secured(&rt, &bs, "restore-credentials");
    // The start-up check passes, so the refusal meets the restore.
    subjects_open.store(true, Ordering::SeqCst);
    let no_snapshots = [("HIRESTATE_SNAPSHOT_EVERY_BATCHES", "1000")];
    let instance = setup.instance("x");
    let report = instance.run_to_idle(&setup, 2.0, &no_snapshots);
    processor::assert_counts(&report, &expected.counts);

    // The same instance (a new one would wait out the first one's static membership), with
    // an empty state directory.
    let mut cold = setup.instance("x");
    cold.state_dir = instance.state_dir.with_file_name("state-x-cold");
    cold.log = instance.log.with_file_name("x-cold.log");
    let [registry, user_info] = wrong_credentials(&bare);
    let mut child = cold.spawn(&setup, 5.0, &[no_snapshots[0], registry, user_info]);
    cold.stopped_with(
        &mut child,
        &[
            "partition",
            "offset 0",
            "401",
            "HIRESTATE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
        ],
    );
}

#[test]
fn tail_waits_out_a_registry_outage_and_stops_on_refused_credentials() {
    let Some(bs) =
        support::bootstrap("tail_waits_out_a_registry_outage_and_stops_on_refused_credentials")
    else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let Secured {
        down,
        subjects_open,
        bare,
        setup,
        expected,
        ..
    } = secured(&rt, &bs, "tail-registry");
    let events = setup.topic("hiring.events.v1");
    let tail = [
        "tail",
        "--topic",
        events.as_str(),
        "--from-beginning",
        "--until-end",
    ];

    // Refused by the start-up check; then, with the check passing, at the first record.
    for (open, at) in [(false, "/subjects"), (true, "stopping")] {
        subjects_open.store(open, Ordering::SeqCst);
        let refused = setup
            .command(&tail, &[("HIRESTATE_SCHEMA_REGISTRY", bare.as_str())])
            .output()
            .expect("running tail");
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "tail went on: {said}");
        assert!(
            said.contains("401") && said.contains(at) && !said.contains("undecodable"),
            "{said}"
        );
    }
    subjects_open.store(false, Ordering::SeqCst);

    // Down from before the first record until 3 s in: every record is still decoded.
    down.store(true, Ordering::SeqCst);
    let child = setup
        .command(&tail, &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawning tail");
    std::thread::sleep(Duration::from_secs(3));
    down.store(false, Ordering::SeqCst);
    let out = child.wait_with_output().expect("tail's output");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("waiting for the schema registry"),
        "no outage met: {said}"
    );
    let decoded = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(decoded, expected.events, "records left out: {said}");

    // A wait longer than a clock can hold is taken as "for ever" (it overflowed: a panic).
    let max = u64::MAX.to_string();
    let for_ever = [tail.as_slice(), &["--registry-wait", &max]].concat();
    let out = setup
        .command(&for_ever, &[])
        .output()
        .expect("running tail");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    let decoded = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(decoded, expected.events, "{said}");

    // Down for longer than the wait: the tail stops at the first record, with nothing left out.
    down.store(true, Ordering::SeqCst);
    let waited = [tail.as_slice(), &["--registry-wait", "2"]].concat();
    let mut child = setup
        .command(&waited, &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawning tail");
    // (Before, each record waited 2 s and was left out: ~1 h for this stream.)
    let stopped = processor::wait_for(&mut child, Duration::from_secs(60));
    down.store(false, Ordering::SeqCst);
    let out = child.wait_with_output().expect("tail's output");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        stopped.is_some_and(|s| !s.success()),
        "tail went on: {said}"
    );
    assert!(
        said.contains("still out of reach after 2 s")
            && said.contains(&format!("{events}/"))
            && !said.contains("undecodable:"),
        "{said}"
    );
    assert_eq!(out.stdout, b"", "{said}");

    // Interrupted while it waits (for ever): it ends as an interrupt ends it, status 0, the
    // record waited for neither shown nor counted. Before, the wait ignored the interrupt.
    down.store(true, Ordering::SeqCst);
    let mut child = setup
        .command(&for_ever, &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawning tail");
    let stderr = child.stderr.take().expect("its stderr");
    let (said_tx, said_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = said_tx.send(line);
        }
    });
    let mut said = Vec::new();
    while !said
        .iter()
        .any(|l: &String| l.contains("waiting for the schema registry"))
    {
        match said_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => said.push(line),
            Err(e) => panic!("no wait for the registry seen ({e}): {said:?}"),
        }
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("running kill");
    assert!(kill.success());
    let stopped = processor::wait_for(&mut child, Duration::from_secs(60));
    down.store(false, Ordering::SeqCst);
    let out = child.wait_with_output().expect("tail's output");
    said.extend(said_rx.try_iter());
    assert!(
        stopped.is_some_and(|s| s.success()),
        "interrupted, it went on waiting (or failed): {stopped:?} {:?}",
        &said[said.len().saturating_sub(3)..]
    );
    assert!(said.iter().any(|l| l.contains("0 records")), "{said:?}");
    assert_eq!(out.stdout, b"");
}

/// A cold start (empty state directory) restores from snapshots the processor wrote with a
/// registry configured: every candidate's state equals a clean replay, and only the second
/// half is consumed.
#[test]
fn a_cold_start_restores_the_snapshots_written_with_a_registry() {
    let Some(bs) =
        support::bootstrap("a_cold_start_restores_the_snapshots_written_with_a_registry")
    else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (double, _) = registry(&rt);
    let mut setup = processor::Setup::new(&bs, "registry-cold", 2);
    setup.registry = Some(double.url());
    let file = setup.generate("events.jsonl", 150, 73);
    let (first, second) = setup.halves(&file);
    let second_len = processor::read_lines(&second).len();
    let expected = processor::expected(&setup, &file);
    let node = setup
        .instance("x")
        .with_env("HIRESTATE_BATCH_MAX_RECORDS", "100")
        .with_env("HIRESTATE_SNAPSHOT_EVERY_BATCHES", "2");
    setup.produce(&first);
    let r1 = node.run_to_idle(&setup, 2.0, &[]);
    assert!(r1["counts"]["snapshots"].as_u64() > Some(0), "{r1}");

    std::fs::remove_dir_all(&node.state_dir).expect("deleting the state directory");
    setup.produce(&second);
    let r2 = node.run_to_idle(&setup, 2.0, &[]);
    assert_eq!(
        r2["counts"]["consumed"].as_u64(),
        Some(second_len as u64),
        "{r2}"
    );
    let (actual, _) = setup.read_back(&setup.output_topics());
    processor::assert_outputs_equal(&expected.outputs, &actual);
    processor::assert_states_equal(&node.state_dump(&setup), &processor::clean_states(&[&file]));
}
