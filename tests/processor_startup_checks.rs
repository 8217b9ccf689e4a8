//! `hirestate run` checks the cluster before it starts and refuses, with every problem named
//! at once, what it cannot run on: no broker answering, topics missing, an event log and a
//! snapshot topic with different partition counts, a snapshot topic that is not compacted, or
//! an event log that is.
//! Before these checks it polled a missing event log for ever, and an unreachable broker
//! surfaced as "Transaction error: Timed out".
//! `produce` and `tail` name a missing topic at once, with what the configured prefix makes of
//! a name under another one (before, `produce` waited 30 s and said `UnknownTopicOrPartition`).

#[path = "support/processor.rs"]
mod processor;
mod support;

use processor::{bare_command, run_bare as run, stopped_with_output as stopped_with};

#[test]
fn no_broker_answering_is_refused_naming_the_bootstrap_address() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let bootstrap = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(
        dir.path(),
        &[
            ("KAFKA_BOOTSTRAP", bootstrap.as_str()),
            ("HIRESTATE_TRANSACTION_TIMEOUT_MS", "2000"),
        ],
    );
    let last = stopped_with(&out);
    for needle in [
        "cannot read topic metadata",
        bootstrap.as_str(),
        "within 2000 ms",
        "KAFKA_BOOTSTRAP",
    ] {
        assert!(last.contains(needle), "{needle:?} not in: {last}");
    }
}

#[test]
fn a_state_directory_that_cannot_be_created_is_named_before_the_cluster_is_asked() {
    // Under a regular file: no one, root included, can create it. No broker is needed: the
    // state directory is checked first (the bootstrap address is one nothing listens on).
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").expect("writing a file");
    let state = file.join("state");
    let out = run(
        &state,
        &[
            ("KAFKA_BOOTSTRAP", "127.0.0.1:9"),
            ("HIRESTATE_TRANSACTION_TIMEOUT_MS", "2000"),
        ],
    );
    let last = stopped_with(&out);
    for needle in [
        "cannot create the state directory",
        &state.display().to_string(),
        "HIRESTATE_STATE_DIR",
        "Not a directory",
    ] {
        assert!(last.contains(needle), "{needle:?} not in: {last}");
    }
}

#[test]
fn missing_topics_are_refused_all_named_and_none_created() {
    let Some(bs) = support::bootstrap("missing_topics_are_refused_all_named_and_none_created")
    else {
        return;
    };
    let prefix = support::unique("missing");
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("KAFKA_BOOTSTRAP", bs.as_str()),
        ("HIRESTATE_TOPIC_PREFIX", prefix.as_str()),
    ];
    for round in ["first", "second"] {
        let last = stopped_with(&run(dir.path(), &env));
        // Every topic is named in one message, with the command that creates them; the second
        // run finds them missing still: checking created none.
        for topic in [
            "hiring.events.v1",
            "hiring.snapshots.v1",
            "hiring.rejections.v1",
            "hiring.alerts.v1",
            "hiring.dlq.v1",
            "ats.commands.greenhouse.v1",
            "hris.commands.workday.v1",
        ] {
            let name = format!("{prefix}.{topic}");
            assert!(last.contains(&name), "{round} run: {name} not in: {last}");
        }
        assert!(
            last.contains("topics missing") && last.contains("hirestate topics ensure"),
            "{round} run: {last}"
        );
    }
}

#[test]
fn an_event_log_and_snapshots_partitioned_differently_are_refused() {
    let Some(bs) =
        support::bootstrap("an_event_log_and_snapshots_partitioned_differently_are_refused")
    else {
        return;
    };
    let prefix = support::unique("mismatch");
    let snapshots = format!("{prefix}.hiring.snapshots.v1");
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(support::create_topics(&bs, &[&snapshots], 2));
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("KAFKA_BOOTSTRAP", bs.as_str()),
        ("HIRESTATE_TOPIC_PREFIX", prefix.as_str()),
        ("HIRESTATE_PARTITIONS", "4"),
    ];
    // `topics ensure` creates the rest with 4 partitions, and reports both problems of the
    // snapshot topic it found (made with the broker's default policy, `delete`).
    let ensured = bare_command(&["topics", "ensure"])
        .env("HIRESTATE_POLICY_DIR", support::policy_dir())
        .envs(env.iter().copied())
        .output()
        .expect("topics ensure");
    assert!(
        String::from_utf8_lossy(&ensured.stdout).contains("hiring.events.v1"),
        "topics ensure: {ensured:?}"
    );
    let problems = String::from_utf8_lossy(&ensured.stderr);
    let not_compacted = format!("{snapshots} has cleanup.policy=delete: it must be compact");
    let want = format!("{prefix}.hiring.events.v1 has 4 partitions but {snapshots} has 2");
    assert!(
        !ensured.status.success() && problems.contains(&not_compacted),
        "topics ensure: {ensured:?}"
    );
    assert!(problems.contains(&want), "topics ensure: {ensured:?}");
    let last = stopped_with(&run(dir.path(), &env));
    assert!(
        last.contains(&want) && last.contains("must match"),
        "{want:?} not in: {last}"
    );
    assert!(
        last.contains(&not_compacted),
        "{not_compacted:?} not in: {last}"
    );
    assert!(!last.contains("topics missing"), "{last}");
}

/// An event log that is compacted keeps only each candidate's newest event: a restore, a cold
/// start or a new group would fold what is left of each history as if it were all of it.
/// `topics ensure` reports it, and `run` refuses it.
#[test]
fn a_compacted_event_log_is_refused() {
    let Some(bs) = support::bootstrap("a_compacted_event_log_is_refused") else {
        return;
    };
    let prefix = support::unique("compacted");
    let events = format!("{prefix}.hiring.events.v1");
    let (admin, opts) = support::admin(&bs);
    let topic =
        rdkafka::admin::NewTopic::new(&events, 4, rdkafka::admin::TopicReplication::Fixed(1))
            .set("cleanup.policy", "compact,delete");
    let created = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(admin.create_topics([&topic], &opts))
        .expect("create_topics request");
    for r in created {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("KAFKA_BOOTSTRAP", bs.as_str()),
        ("HIRESTATE_TOPIC_PREFIX", prefix.as_str()),
    ];
    let ensured = bare_command(&["topics", "ensure"])
        .env("HIRESTATE_POLICY_DIR", support::policy_dir())
        .envs(env.iter().copied())
        .output()
        .expect("topics ensure");
    let want =
        format!("{events} has cleanup.policy=compact,delete: the event log must not be compacted");
    let problems = String::from_utf8_lossy(&ensured.stderr);
    assert!(
        !ensured.status.success() && problems.contains(&want),
        "topics ensure: {ensured:?}"
    );
    let last = stopped_with(&run(dir.path(), &env));
    assert!(last.contains(&want), "{want:?} not in: {last}");
    assert!(!last.contains("topics missing"), "{last}");
}

#[test]
fn the_tools_name_a_missing_topic_at_once_with_its_prefixed_name() {
    let Some(bs) =
        support::bootstrap("the_tools_name_a_missing_topic_at_once_with_its_prefixed_name")
    else {
        return;
    };
    // Nothing exists under either prefix: `produce` to the configured event log (no --topic),
    // and `produce` and `tail` given a name under another prefix than the configured one.
    let prefix = support::unique("absent");
    let other = format!("{}.hiring.events.v1", support::unique("elsewhere"));
    let ours = format!("{prefix}.hiring.events.v1");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = generated(&dir, 3);
    let file = file.to_str().expect("a UTF-8 path");
    let cases: [(&[&str], &str); 3] = [
        (&["produce", "--from-file", file], &ours),
        (&["produce", "--from-file", file, "--topic", &other], &other),
        (
            &["tail", "--topic", &other, "--from-beginning", "--until-end"],
            &other,
        ),
    ];
    for (args, named) in cases {
        let out = bare_command(args)
            .env("KAFKA_BOOTSTRAP", &bs)
            .env("HIRESTATE_TOPIC_PREFIX", &prefix)
            .env("HIRESTATE_POLICY_DIR", support::policy_dir())
            .output()
            .expect("running the tool");
        let last = stopped_with(&out);
        assert!(
            last.contains(&format!("topic {named} does not exist")),
            "{args:?}: {last}"
        );
        if named == ours {
            // Before: each event's delivery waited librdkafka's message timeout (30 s), then the
            // first failed with `UnknownTopicOrPartition` alone.
            assert!(last.contains("hirestate topics ensure"), "{args:?}: {last}");
        } else {
            // A name under another prefix is shown what the configured prefix makes of it.
            assert!(
                last.contains(&format!("HIRESTATE_TOPIC_PREFIX is \"{prefix}\""))
                    && last.contains(&ours),
                "{args:?}: {last}"
            );
        }
    }
}

/// `topics ensure` returns only once the cluster's metadata shows every topic it created, so
/// the command after it can use them. Before, it returned when the controller had created them:
/// a `produce` right after was told the event log "does not exist" (`processor_cold_start`
/// failed so in CI). Run against the binary before, this test failed 4 times in 5; six shell
/// loops of `topics ensure` then `produce`, at once, 45 of 48 produces.
#[test]
fn the_topics_ensure_made_are_usable_as_soon_as_it_returns() {
    let Some(bs) = support::bootstrap("the_topics_ensure_made_are_usable_as_soon_as_it_returns")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = generated(&dir, 2);
    // Several at once: a broker with other work shows new topics later.
    let setups: Vec<_> = (0..6)
        .map(|i| {
            let (bs, file) = (bs.clone(), file.clone());
            std::thread::spawn(move || {
                for round in 0..3 {
                    let setup = processor::Setup::new(&bs, &format!("ensure-ready-{i}-{round}"), 2);
                    // At once (it panics, naming the topic, when it is not there yet).
                    setup.produce(&file);
                }
            })
        })
        .collect();
    let failed = setups
        .into_iter()
        .map(std::thread::JoinHandle::join)
        .filter(Result::is_err)
        .count();
    assert_eq!(
        failed, 0,
        "setups whose produce failed (their panics above)"
    );
}

/// `hirestate generate --candidates n` into `events.jsonl` of `dir`.
fn generated(dir: &tempfile::TempDir, candidates: usize) -> std::path::PathBuf {
    let file = dir.path().join("events.jsonl");
    let out = bare_command(&["generate", "--candidates", &candidates.to_string()])
        .output()
        .expect("running generate");
    std::fs::write(&file, &out.stdout).expect("writing the events");
    file
}
