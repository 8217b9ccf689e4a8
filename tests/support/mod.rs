//! Test support for integration tests that need the real broker: where it is, and unique
//! topic / group / transactional ids per test so tests run in parallel and never see each
//! other's data.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

/// The broker's bootstrap address from `KAFKA_BOOTSTRAP`, or `None` to skip a Kafka test.
///
/// Under `make test` (and so CI) `HIRESTATE_REQUIRE_KAFKA=1` is set: a missing broker is then a
/// failure, never a silent skip. Run alone with `cargo test`, the test says it was skipped.
pub fn bootstrap(test: &str) -> Option<String> {
    match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(b) if !b.trim().is_empty() => Some(on_loopback("KAFKA_BOOTSTRAP", b)),
        _ if std::env::var("HIRESTATE_REQUIRE_KAFKA").as_deref() == Ok("1") => {
            panic!("{test}: KAFKA_BOOTSTRAP is not set but HIRESTATE_REQUIRE_KAFKA=1 (run `make test`)")
        }
        _ => {
            eprintln!(
                "SKIPPED {test}: KAFKA_BOOTSTRAP is not set (run `make test` to start a broker)"
            );
            None
        }
    }
}

/// `b`, a bootstrap list from the environment variable `var`, once checked to stay on the
/// loopback range: tests never leave 127.0.0.0/8.
fn on_loopback(var: &str, b: String) -> String {
    assert!(
        b.split(',')
            .all(|h| h.trim().starts_with("127.") || h.trim().starts_with("localhost")),
        "{var}={b} is not on the loopback range; tests never leave 127.0.0.0/8"
    );
    b
}

/// The broker's SASL/PLAIN listener: `HIRESTATE_TEST_KAFKA_SASL_BOOTSTRAP`, or (the layout
/// `deploy/kafka/kafka.sh` gives) the plaintext listener's port + 2. `None` as
/// [`bootstrap`].
pub fn sasl_bootstrap(test: &str) -> Option<String> {
    let plain = bootstrap(test)?;
    if let Ok(b) = std::env::var("HIRESTATE_TEST_KAFKA_SASL_BOOTSTRAP") {
        return Some(on_loopback("HIRESTATE_TEST_KAFKA_SASL_BOOTSTRAP", b));
    }
    Some(listener(&plain, 2))
}

/// The broker's TLS listener and the directory of its test certificates:
/// `HIRESTATE_TEST_KAFKA_SSL_BOOTSTRAP` and `HIRESTATE_TEST_KAFKA_TLS_DIR`, or (the layout
/// `deploy/kafka/kafka.sh` gives) the plaintext listener's port + 3 and `target/kafka/tls`.
/// `ca.pem` there is the broker's certificate, `other-ca.pem` an unrelated one. `None` as
/// [`bootstrap`].
pub fn tls_bootstrap(test: &str) -> Option<(String, std::path::PathBuf)> {
    secured_listener(test, "HIRESTATE_TEST_KAFKA_SSL_BOOTSTRAP", 3)
}

/// The broker's SASL/PLAIN over TLS listener (`HIRESTATE_TEST_KAFKA_SASL_SSL_BOOTSTRAP`, or
/// port + 4) and the directory of its test certificates, as [`tls_bootstrap`].
pub fn sasl_ssl_bootstrap(test: &str) -> Option<(String, std::path::PathBuf)> {
    secured_listener(test, "HIRESTATE_TEST_KAFKA_SASL_SSL_BOOTSTRAP", 4)
}

/// The broker's TLS listener that requires a client certificate (mutual TLS;
/// `HIRESTATE_TEST_KAFKA_MTLS_BOOTSTRAP`, or port + 5) and the directory of its test
/// certificates, as [`tls_bootstrap`].
pub fn mtls_bootstrap(test: &str) -> Option<(String, std::path::PathBuf)> {
    secured_listener(test, "HIRESTATE_TEST_KAFKA_MTLS_BOOTSTRAP", 5)
}

/// The listener `var` names, or the one `offset` ports above the plaintext one, and the test
/// certificates' directory.
fn secured_listener(test: &str, var: &str, offset: u16) -> Option<(String, std::path::PathBuf)> {
    let plain = bootstrap(test)?;
    let dir = std::env::var_os("HIRESTATE_TEST_KAFKA_TLS_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/kafka/tls"),
        std::path::PathBuf::from,
    );
    let listener = match std::env::var(var) {
        Ok(b) => on_loopback(var, b),
        Err(_) => listener(&plain, offset),
    };
    Some((listener, dir))
}

/// The listener `offset` ports above the first of the `plain` bootstrap list.
fn listener(plain: &str, offset: u16) -> String {
    let (host, port) = plain
        .split(',')
        .next()
        .and_then(|h| h.trim().rsplit_once(':'))
        .expect("KAFKA_BOOTSTRAP as host:port");
    let port: u16 = port.parse().expect("a port");
    format!("{host}:{}", port + offset)
}

/// hirestate's settings for TLS trusting the certificate in `ca` (PEM).
pub fn tls_trusting(ca: &std::path::Path) -> [(&'static str, String); 2] {
    [
        ("HIRESTATE_KAFKA_SECURITY_PROTOCOL", "SSL".to_owned()),
        (
            "HIRESTATE_KAFKA_SSL_CA_LOCATION",
            ca.to_str().expect("a UTF-8 path").to_owned(),
        ),
    ]
}

/// hirestate's settings for presenting the client certificate `<name>.pem` of the test
/// certificates' directory `tls`, with its key `<name>-key.pem` (both PEM).
pub fn client_certificate(tls: &std::path::Path, name: &str) -> [(&'static str, String); 2] {
    let path = |file: String| tls.join(file).to_str().expect("a UTF-8 path").to_owned();
    [
        (
            "HIRESTATE_KAFKA_SSL_CERTIFICATE_LOCATION",
            path(format!("{name}.pem")),
        ),
        (
            "HIRESTATE_KAFKA_SSL_KEY_LOCATION",
            path(format!("{name}-key.pem")),
        ),
    ]
}

/// hirestate's settings for SASL/PLAIN as `user` with `password` (the test broker's users:
/// `hirestate`, a super user, and `limited`, with the ACLs of `deploy/kafka/Acls.java`).
pub fn sasl_plain(user: &str, password: &str) -> [(&'static str, String); 4] {
    [
        (
            "HIRESTATE_KAFKA_SECURITY_PROTOCOL",
            "SASL_PLAINTEXT".to_owned(),
        ),
        ("HIRESTATE_KAFKA_SASL_MECHANISMS", "PLAIN".to_owned()),
        ("HIRESTATE_KAFKA_SASL_USERNAME", user.to_owned()),
        ("HIRESTATE_KAFKA_SASL_PASSWORD", password.to_owned()),
    ]
}

/// Runs `deploy/kafka/Acls.java` with `args` as a super user of the plaintext listener `bs`
/// (the test broker's ACLs and SCRAM users); fails the test if it fails.
pub fn acls_java(bs: &str, args: &[&str]) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("java")
        .arg("-cp")
        .arg(root.join("target/kafka/lib/*"))
        .arg(root.join("deploy/kafka/Acls.java"))
        .arg(bs)
        .args(args)
        .output()
        .expect("running java deploy/kafka/Acls.java");
    assert!(
        out.status.success(),
        "Acls.java {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `settings` as `(key, value)` pairs of `&str`.
pub fn as_env<'a>(settings: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    settings.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A name unique to this process and call: `<prefix>-<pid>-<nanos>-<n>`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// An admin client of the broker at `bootstrap`, and options that wait up to 30 s for an
/// operation to complete.
pub fn admin(bootstrap: &str) -> (AdminClient<DefaultClientContext>, AdminOptions) {
    let admin = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    (admin, opts)
}

/// Creates `topics` with `partitions` each (replication 1) and waits for the result.
pub async fn create_topics(bootstrap: &str, topics: &[&str], partitions: i32) {
    let (admin, opts) = admin(bootstrap);
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    for r in admin
        .create_topics(&new, &opts)
        .await
        .expect("create_topics request")
    {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
}

/// One committed record as read back, bytes and headers untouched (repeated header keys kept,
/// in order).
pub struct RawRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// Every committed (`read_committed`) record of `topic`'s `partitions` partitions.
pub fn read_raw(bootstrap: &str, topic: &str, partitions: i32) -> Vec<RawRecord> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::KafkaError;
    use rdkafka::message::{Headers, Message};
    use rdkafka::{Offset, TopicPartitionList};

    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("raw-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let mut eof = std::collections::BTreeSet::new();
    while eof.len() < partitions as usize {
        match c.poll(Duration::from_secs(30)) {
            Some(Ok(m)) => {
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| {
                                let v = String::from_utf8_lossy(x.value.unwrap_or_default());
                                (x.key.to_owned(), v.into_owned())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(RawRecord {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().unwrap_or_default().to_vec(),
                    value: m.payload().unwrap_or_default().to_vec(),
                    headers,
                });
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => panic!("reading {topic}: nothing for 30 s"),
        }
    }
    out
}

/// The shipped policy directory, checked to load once (a stale digest fails here, not silently
/// re-signed).
pub fn policy_dir() -> &'static std::path::Path {
    static D: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    D.get_or_init(|| {
        let dir = hirestate::policy::default_dir();
        hirestate::policy::load(&dir).expect("the shipped policy loads");
        dir
    })
}

/// `GET path` on `addr` over plain HTTP/1.1: the status code and the body; `None` while
/// nothing answers there.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let code = head.split(' ').nth(1)?.parse().ok()?;
    Some((code, body.to_owned()))
}

/// A loopback address nothing listens on (yet): bound, then released.
pub fn free_addr() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string()
}
