//! Proves the broker harness gives the processor what it needs: transactions whose aborted
//! records a `read_committed` consumer never sees, and `send_offsets_to_transaction` moving the
//! group's committed offset only on commit.

mod support;

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// Polls delivery reports on its own thread, as a transactional producer needs before abort.
type TestProducer = ThreadedProducer<DefaultProducerContext>;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

const T: Duration = Duration::from_secs(30);

fn producer(bootstrap: &str, transactional_id: Option<&str>) -> TestProducer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true");
    if let Some(id) = transactional_id {
        c.set("transactional.id", id)
            .set("transaction.timeout.ms", "30000");
    }
    c.create().expect("producer")
}

fn consumer(bootstrap: &str, group: &str, isolation: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer")
}

/// Every value on partition 0 of `topic` visible at `isolation`, in order.
fn read_all(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    let c = consumer(bootstrap, &support::unique("reader"), isolation);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    loop {
        match c.poll(T) {
            Some(Ok(m)) => {
                out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
            }
            Some(Err(KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => panic!("reading {topic}: no EOF within {T:?}"),
        }
    }
}

fn send(p: &TestProducer, topic: &str, value: &str) {
    p.send(BaseRecord::to(topic).partition(0).key("k").payload(value))
        .map_err(|(e, _)| e)
        .expect("enqueue");
}

#[tokio::test(flavor = "multi_thread")]
async fn read_committed_sees_exactly_the_committed_transactions() {
    let Some(bs) = support::bootstrap("read_committed_sees_exactly_the_committed_transactions")
    else {
        return;
    };
    let topic = support::unique("harness-txn");
    support::create_topics(&bs, &[&topic], 1).await;

    let bs2 = bs.clone();
    let t2 = topic.clone();
    tokio::task::spawn_blocking(move || {
        let p = producer(&bs2, Some(&support::unique("txn")));
        p.init_transactions(T).expect("init");
        p.begin_transaction().expect("begin");
        send(&p, &t2, "c1");
        send(&p, &t2, "c2");
        p.commit_transaction(T).expect("commit");
        p.begin_transaction().expect("begin 2");
        send(&p, &t2, "a1");
        p.flush(T).expect("flush");
        p.abort_transaction(T).expect("abort");
        p.begin_transaction().expect("begin 3");
        send(&p, &t2, "c3");
        p.commit_transaction(T).expect("commit 3");
    })
    .await
    .expect("producer task");

    assert_eq!(
        read_all(&bs, &topic, "read_committed"),
        vec!["c1", "c2", "c3"]
    );
    // The aborted record is in the log: read_uncommitted sees it.
    assert_eq!(
        read_all(&bs, &topic, "read_uncommitted"),
        vec!["c1", "c2", "a1", "c3"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn send_offsets_to_transaction_moves_the_group_offset_only_on_commit() {
    let Some(bs) =
        support::bootstrap("send_offsets_to_transaction_moves_the_group_offset_only_on_commit")
    else {
        return;
    };
    let input = support::unique("harness-in");
    let output = support::unique("harness-out");
    support::create_topics(&bs, &[&input, &output], 1).await;
    let group = support::unique("harness-group");

    tokio::task::spawn_blocking(move || {
        let plain = producer(&bs, None);
        for i in 0..10 {
            send(&plain, &input, &format!("in{i}"));
        }
        plain.flush(T).expect("flush inputs");

        let c = consumer(&bs, &group, "read_committed");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&input, 0, Offset::Beginning)
            .expect("tpl");
        c.assign(&tpl).expect("assign");
        let mut seen = 0;
        while seen < 10 {
            match c.poll(T) {
                Some(Ok(_)) => seen += 1,
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                other => panic!("consuming inputs: {other:?}"),
            }
        }
        let committed = |c: &BaseConsumer| {
            let mut q = TopicPartitionList::new();
            q.add_partition(&input, 0);
            c.committed_offsets(q, T)
                .expect("committed")
                .find_partition(&input, 0)
                .map(|e| e.offset())
        };
        let meta = c.group_metadata().expect("group metadata");
        let p = producer(&bs, Some(&support::unique("txn")));
        p.init_transactions(T).expect("init");

        // Aborted: outputs hidden, offset unchanged.
        let mut first = TopicPartitionList::new();
        first
            .add_partition_offset(&input, 0, Offset::Offset(4))
            .expect("tpl");
        p.begin_transaction().expect("begin");
        send(&p, &output, "out-aborted");
        p.send_offsets_to_transaction(&first, &meta, T)
            .expect("send offsets");
        p.abort_transaction(T).expect("abort");
        assert_eq!(
            committed(&c),
            Some(Offset::Invalid),
            "abort must not move the offset"
        );

        // Committed: outputs visible, offset = next record to read.
        let mut all = TopicPartitionList::new();
        all.add_partition_offset(&input, 0, Offset::Offset(10))
            .expect("tpl");
        p.begin_transaction().expect("begin 2");
        send(&p, &output, "out-committed");
        p.send_offsets_to_transaction(&all, &meta, T)
            .expect("send offsets 2");
        p.commit_transaction(T).expect("commit");
        assert_eq!(committed(&c), Some(Offset::Offset(10)));
        assert_eq!(
            read_all(&bs, &output, "read_committed"),
            vec!["out-committed"]
        );
    })
    .await
    .expect("blocking test body");
}

/// `kafka.sh` of another checkout (a copy of `deploy/kafka` under a temporary root, with no
/// broker of its own) whose ports are the running test broker's refuses to start, naming the
/// ports and `HIRESTATE_TEST_KAFKA_PORT`. Before, it started a JVM that failed to bind, took the
/// broker answering on the port for its own, said `broker up` and exited 0: `make test` of
/// that checkout then ran against a broker started from other certificates and ACLs.
#[test]
fn another_checkouts_kafka_sh_refuses_ports_a_broker_it_did_not_start_holds() {
    let Some(bs) = support::bootstrap(
        "another_checkouts_kafka_sh_refuses_ports_a_broker_it_did_not_start_holds",
    ) else {
        return;
    };
    let ours = this_checkouts_kafka();
    if !ours.join("lib/.complete").exists() || !ours.join("tls/ca.pem").exists() {
        // A broker not started by `kafka.sh` of this checkout: nothing to copy from.
        eprintln!("SKIPPED: no jars or certificates under {}", ours.display());
        return;
    }
    let port = bs
        .split(',')
        .next()
        .and_then(|h| h.rsplit(':').next())
        .expect("a port in KAFKA_BOOTSTRAP")
        .trim()
        .to_owned();
    let (_root, script) = another_checkout(&ours);
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("up")
        .env("HIRESTATE_TEST_KAFKA_PORT", &port)
        .env("KAFKA_WAIT_SECS", "20")
        .output()
        .expect("kafka.sh");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "kafka.sh up succeeded: {said}");
    assert!(
        said.contains(&format!("port(s) {port} "))
            && said.contains("not by a broker this checkout started")
            && said.contains("HIRESTATE_TEST_KAFKA_PORT"),
        "{said}"
    );
    // And the broker that holds the ports still answers: nothing stopped it.
    consumer(&bs, &support::unique("after-refusal"), "read_committed")
        .fetch_metadata(None, T)
        .expect("the running broker still answers");
}

/// `target/kafka` of this checkout.
fn this_checkouts_kafka() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/kafka")
}

/// A copy of `deploy/kafka` under a temporary root, as another checkout would have it, with
/// `ours`' jars (linked) and certificates (copied) when there are any, so that `kafka.sh`
/// neither resolves nor generates anything; and its `kafka.sh`.
fn another_checkout(ours: &std::path::Path) -> (tempfile::TempDir, std::path::PathBuf) {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = tempfile::tempdir().expect("tempdir");
    let scripts = root.path().join("deploy/kafka");
    std::fs::create_dir_all(&scripts).expect("deploy/kafka");
    for f in std::fs::read_dir(here.join("deploy/kafka")).expect("deploy/kafka") {
        let f = f.expect("entry");
        std::fs::copy(f.path(), scripts.join(f.file_name())).expect("copy");
    }
    let theirs = root.path().join("target/kafka");
    std::fs::create_dir_all(theirs.join("tls")).expect("target/kafka/tls");
    if ours.join("lib").exists() {
        std::os::unix::fs::symlink(ours.join("lib"), theirs.join("lib")).expect("lib");
    }
    for f in std::fs::read_dir(ours.join("tls")).into_iter().flatten() {
        let f = f.expect("entry");
        std::fs::copy(f.path(), theirs.join("tls").join(f.file_name())).expect("copy");
    }
    (root, scripts.join("kafka.sh"))
}

/// A pid file left from before a reboot can name an unrelated live process: `kafka.sh down`
/// (and `up`, which restarts a broker it takes for an outdated one) leaves it alone. Before,
/// `kill -0` alone took it for the broker, and `down` killed it.
#[test]
fn kafka_sh_does_not_take_a_stale_pid_files_process_for_its_broker() {
    let mut unrelated = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("sleep");
    let (root, script) = another_checkout(&this_checkouts_kafka());
    std::fs::write(
        root.path().join("target/kafka/broker.pid"),
        unrelated.id().to_string(),
    )
    .expect("pid file");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("down")
        .output()
        .expect("kafka.sh");
    let alive = unrelated.try_wait().expect("try_wait").is_none();
    let _ = unrelated.kill();
    let _ = unrelated.wait();
    assert!(
        out.status.success() && alive,
        "kafka.sh down with a stale pid file: {} ({}); the unrelated process alive after: {alive}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
