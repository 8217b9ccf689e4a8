//! Layered configuration for the processor and the Kafka tools: defaults < TOML file < env
//! (`KAFKA_BOOTSTRAP`, `HIRESTATE_*`) < command-line flags. Every problem is reported at once.
//!
//! Secrets (SASL passwords, SSL key passwords) come in through `kafka` passthrough settings
//! and are never logged: [`Config::redacted`] is what logs see.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::codec::RegistryAuth;
use crate::ingest::placement::Partitioner;

/// Where the processor and the tools point, and how they batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Kafka bootstrap servers. Empty: the embedded mock cluster (demo only).
    pub bootstrap: String,
    /// A prefix `P` makes every topic `P.<name>`.
    pub topic_prefix: String,
    pub group_id: String,
    /// Stable per instance: the transactional id is `<group_id>-<instance_id>`, so a restarted
    /// instance fences its own zombie.
    pub instance_id: String,
    pub state_dir: PathBuf,
    /// Policy directory; empty: the shipped one.
    pub policy_dir: Option<PathBuf>,
    /// Confluent-API schema registry URL; empty: Avro single-object framing for outputs. A
    /// `user:password@` in it is taken as basic authentication (and never logged).
    pub schema_registry: Option<String>,
    /// `KEY:SECRET` for the registry's HTTP basic authentication (Confluent's
    /// `basic.auth.user.info`; on Confluent Cloud the API key and secret).
    pub schema_registry_basic_auth_user_info: Option<String>,
    /// A bearer token for the registry instead.
    pub schema_registry_bearer_token: Option<String>,
    /// Partitions for topics `topics ensure` creates.
    pub partitions: i32,
    pub replication_factor: i32,
    /// A batch closes at this many records… (2 000: a transaction's fixed costs — acks from
    /// every output partition it touched, the offsets, the commit markers — are shared by that
    /// many events; `e2e` measured 500 → 2 000 as +40–60 % events/s with the latency bound
    /// unchanged, since `batch_max_ms` closes a batch that fills slowly.)
    pub batch_max_records: usize,
    /// …or after this long.
    pub batch_max_ms: u64,
    /// Snapshot the candidates changed since the last snapshot every N committed batches.
    pub snapshot_every_batches: u32,
    /// Must stay below the group session timeout.
    pub transaction_timeout_ms: u64,
    pub session_timeout_ms: u64,
    /// Health endpoints (`/healthz`, `/readyz`, `/metrics`); empty: off.
    pub health_addr: Option<String>,
    /// How often librdkafka reports the ingest consumer's statistics (the source of the
    /// consumer-lag gauge); 0: never.
    pub statistics_interval_ms: u64,
    /// OTLP/HTTP collector base URL (e.g. `http://collector:4318`) the metrics are also pushed
    /// to, as protobuf, every `OTEL_METRIC_EXPORT_INTERVAL` ms (default 60 s); empty: no push.
    pub otlp_endpoint: Option<String>,
    /// The timers' clock: `wall`, `fixed:<RFC 3339>` (frozen) or `file:<path>` (the time
    /// written in a file, for tests driving a processor in another process).
    pub clock: String,
    /// Due timers fired per batch at most (the rest fire in the next ones).
    pub timers_per_batch: usize,
    /// While the store is still writing a batch (under load), the deadline index is read at
    /// most this often: a read waits for that write.
    pub timers_read_interval_ms: u64,
    /// Threads a batch's partitions are folded on (one task per partition, at most this many
    /// at once); 0: one per available core.
    pub fold_tasks: usize,
    /// Candidate states held in memory at most, over all assigned partitions, before the ones
    /// no recent batch changed are dropped (they reload from the store); 0: no limit.
    pub max_candidates_in_memory: usize,
    /// Share of traces (decided by trace id, 0–1) that get a `debug` span per event; the
    /// `traceparent` headers are written for every record regardless.
    pub trace_sample_ratio: f64,
    /// How the event log's producers place a key (`murmur2`: Java clients; `crc32`:
    /// librdkafka's default; `unchecked`): an event on another partition than this gives its
    /// key is dead-lettered, not folded (`ingest::placement`). The tools' producers
    /// (`produce`, the demo) place keys this way unless `partitioner` is set among the
    /// passthrough settings.
    pub events_partitioner: Partitioner,
    /// Extra librdkafka settings (SASL/SSL, …), passed to every client.
    #[serde(deserialize_with = "passthrough")]
    pub kafka: BTreeMap<String, String>,
    /// Extra librdkafka settings for consumers only (`max.poll.interval.ms`, `fetch.*`, …):
    /// given to every client, librdkafka warns that producers ignore them (`CONFWARN`).
    #[serde(deserialize_with = "passthrough")]
    pub kafka_consumer: BTreeMap<String, String>,
    /// Extra librdkafka settings for producers only (`linger.ms`, `compression.type`, …).
    #[serde(deserialize_with = "passthrough")]
    pub kafka_producer: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bootstrap: String::new(),
            topic_prefix: String::new(),
            group_id: "hirestate".to_owned(),
            instance_id: default_instance_id(),
            state_dir: PathBuf::from("target/hirestate-state"),
            policy_dir: None,
            schema_registry: None,
            schema_registry_basic_auth_user_info: None,
            schema_registry_bearer_token: None,
            partitions: 4,
            replication_factor: 1,
            batch_max_records: 2_000,
            batch_max_ms: 100,
            snapshot_every_batches: 10,
            transaction_timeout_ms: 30_000,
            session_timeout_ms: 45_000,
            health_addr: None,
            statistics_interval_ms: 5_000,
            otlp_endpoint: None,
            clock: "wall".to_owned(),
            timers_per_batch: 500,
            timers_read_interval_ms: 1000,
            fold_tasks: 0,
            max_candidates_in_memory: 250_000,
            trace_sample_ratio: 1.0,
            events_partitioner: Partitioner::default(),
            kafka: BTreeMap::new(),
            kafka_consumer: BTreeMap::new(),
            kafka_producer: BTreeMap::new(),
        }
    }
}

/// `HOSTNAME` when the environment has it (containers set it), else the host's name as the
/// kernel gives it, else `instance-0`. Shells keep `HOSTNAME` to themselves (not exported),
/// and systemd sets none: reading only the variable gave every instance started that way the
/// same id, `instance-0`, on every host — and two instances with one id fence each other.
fn default_instance_id() -> String {
    instance_id_from(std::env::var("HOSTNAME").ok())
}

fn instance_id_from(hostname_var: Option<String>) -> String {
    hostname_var
        .filter(|h| !h.is_empty())
        .or_else(host_name)
        .unwrap_or_else(|| "instance-0".to_owned())
}

/// The host's name as the kernel gives it (`uname`'s node name), if non-empty UTF-8.
fn host_name() -> Option<String> {
    let uname = rustix::system::uname();
    uname
        .nodename()
        .to_str()
        .ok()
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
}

/// A passthrough table of the file as librdkafka's `key = value` strings. TOML reads an
/// unquoted `linger.ms = 20` as the table `linger` holding `ms = 20`, so nested tables are
/// joined back into dotted keys, and numbers and booleans written bare become their text;
/// anything else (an array, a date) is refused naming its key.
fn passthrough<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    fn flatten(
        prefix: &str,
        table: BTreeMap<String, toml::Value>,
        out: &mut BTreeMap<String, String>,
    ) -> Result<(), String> {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k
            } else {
                format!("{prefix}.{k}")
            };
            let text = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(x) => x.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Table(t) => {
                    flatten(&key, t.into_iter().collect(), out)?;
                    continue;
                }
                other => {
                    return Err(format!(
                        "librdkafka setting {key:?} must be a string, number or boolean, not {}",
                        other.type_str()
                    ))
                }
            };
            out.insert(key, text);
        }
        Ok(())
    }
    let table = BTreeMap::<String, toml::Value>::deserialize(d)?;
    let mut out = BTreeMap::new();
    flatten("", table, &mut out).map_err(serde::de::Error::custom)?;
    Ok(out)
}

/// Where the schema registry's credentials are set, for messages that ask to check them.
pub const REGISTRY_CREDENTIALS: &str = "HIRESTATE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO, \
    HIRESTATE_SCHEMA_REGISTRY_BEARER_TOKEN, or a user:password@ in HIRESTATE_SCHEMA_REGISTRY";

/// `url` with the password of a `user:password@` in it replaced by `***` (unparsable: only
/// what follows its last `@`).
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => match url.rsplit_once('@') {
            Some((_, after)) => format!("…@{after}"),
            None => url.to_owned(),
        },
    }
}

/// A URL's percent-encoded user name or password as text.
fn decoded(part: &str) -> String {
    percent_encoding::percent_decode_str(part)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parses `v` into `field`, or records the problem `bad()` describes.
fn set_number<T: std::str::FromStr>(
    field: &mut T,
    v: &str,
    bad: impl Fn() -> String,
    errors: &mut Vec<String>,
) {
    match v.parse() {
        Ok(n) => *field = n,
        Err(_) => errors.push(bad()),
    }
}

/// Every environment name [`Config::load`] reads, besides `HIRESTATE_KAFKA_*` (librdkafka's
/// settings): what an unknown `HIRESTATE_` name is compared with.
const ENVIRONMENT: &[&str] = &[
    "KAFKA_BOOTSTRAP",
    "HIRESTATE_TOPIC_PREFIX",
    "HIRESTATE_GROUP_ID",
    "HIRESTATE_INSTANCE_ID",
    "HIRESTATE_STATE_DIR",
    "HIRESTATE_POLICY_DIR",
    "HIRESTATE_SCHEMA_REGISTRY",
    "HIRESTATE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
    "HIRESTATE_SCHEMA_REGISTRY_BEARER_TOKEN",
    "HIRESTATE_HEALTH_ADDR",
    "HIRESTATE_OTLP_ENDPOINT",
    "HIRESTATE_CLOCK",
    "HIRESTATE_EVENTS_PARTITIONER",
    "HIRESTATE_TRACE_SAMPLE_RATIO",
    "HIRESTATE_TIMERS_PER_BATCH",
    "HIRESTATE_TIMERS_READ_INTERVAL_MS",
    "HIRESTATE_MAX_CANDIDATES_IN_MEMORY",
    "HIRESTATE_FOLD_TASKS",
    "HIRESTATE_STATISTICS_INTERVAL_MS",
    "HIRESTATE_PARTITIONS",
    "HIRESTATE_REPLICATION_FACTOR",
    "HIRESTATE_BATCH_MAX_RECORDS",
    "HIRESTATE_BATCH_MAX_MS",
    "HIRESTATE_SESSION_TIMEOUT_MS",
    "HIRESTATE_TRANSACTION_TIMEOUT_MS",
    "HIRESTATE_SNAPSHOT_EVERY_BATCHES",
];

/// `HIRESTATE_` names read elsewhere than [`Config::load`]: by the fail points, the tests and
/// the benchmarks.
const READ_ELSEWHERE: &[&str] = &[
    "HIRESTATE_FAILPOINTS",
    "HIRESTATE_REQUIRE_KAFKA",
    "HIRESTATE_SOAK",
    "HIRESTATE_TEST_",
    "HIRESTATE_BENCH_",
];

/// The problem with the environment name `name` when it is `HIRESTATE_` but not a setting: a
/// typo (`HIRESTATE_BATCH_MAX_RECORD`) or a guess (`HIRESTATE_REPLICATON_FACTOR`) that would
/// otherwise leave the default in place without a word — replication 1 in production, say.
/// The value is not shown: it may be a secret under a misspelt name.
fn unknown_variable(name: &str) -> Option<String> {
    if !name.starts_with("HIRESTATE_")
        || ENVIRONMENT.contains(&name)
        || READ_ELSEWHERE.iter().any(|n| name.starts_with(n))
    {
        return None;
    }
    let closest = ENVIRONMENT
        .iter()
        .map(|known| (strsim::levenshtein(name, known), known))
        .min()
        .filter(|(distance, _)| *distance <= 3)
        .map(|(_, known)| format!(" (did you mean {known}?)"))
        .unwrap_or_default();
    Some(format!(
        "environment {name}: not a setting of hirestate{closest}; README \"Configuration\" \
         lists them, and HIRESTATE_KAFKA_<KEY> passes any librdkafka setting"
    ))
}

/// Flags that override everything else (each `None` leaves the layer below alone).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub bootstrap: Option<String>,
    pub topic_prefix: Option<String>,
    pub group_id: Option<String>,
    pub instance_id: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub policy_dir: Option<PathBuf>,
    pub schema_registry: Option<String>,
    pub health_addr: Option<String>,
}

/// Every configuration problem found, one a line.
#[derive(Debug, thiserror::Error)]
#[error("configuration refused:\n{}", .0.join("\n"))]
pub struct ConfigErrors(pub Vec<String>);

impl Config {
    /// How many threads fold a batch: `fold_tasks`, or the available cores when it is 0.
    pub fn fold_tasks(&self) -> usize {
        match self.fold_tasks {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }

    /// Builds the layered configuration: defaults, then `file` (if any), then the environment
    /// `env` (pass `std::env::vars()`), then `flags`.
    ///
    /// # Errors
    /// Every problem at once: unreadable or invalid file (with its line), bad env values,
    /// inconsistent settings.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let mut c = match file {
            None => Config::default(),
            Some(path) => match std::fs::read_to_string(path) {
                Err(e) => {
                    errors.push(format!("{}: cannot read: {e}", path.display()));
                    Config::default()
                }
                Ok(text) => toml::from_str(&text).unwrap_or_else(|e: toml::de::Error| {
                    // (Counting `lines()` before the offset was one short for an error at
                    // the start of a line, e.g. a table header.)
                    let line = e
                        .span()
                        .map_or(1, |s| crate::policy::source::line_in(&text, s.start));
                    errors.push(format!("{}:{line}: {}", path.display(), e.message()));
                    Config::default()
                }),
            },
        };
        for (k, v) in env {
            let bad = |what: &str| format!("environment {k}={v:?}: {what}");
            match k.as_str() {
                "KAFKA_BOOTSTRAP" => c.bootstrap = v,
                "HIRESTATE_TOPIC_PREFIX" => c.topic_prefix = v,
                "HIRESTATE_GROUP_ID" => c.group_id = v,
                "HIRESTATE_INSTANCE_ID" => c.instance_id = v,
                "HIRESTATE_STATE_DIR" => c.state_dir = PathBuf::from(v),
                "HIRESTATE_POLICY_DIR" => c.policy_dir = Some(PathBuf::from(v)),
                "HIRESTATE_SCHEMA_REGISTRY" => {
                    c.schema_registry = Some(v).filter(|s| !s.is_empty())
                }
                "HIRESTATE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO" => {
                    c.schema_registry_basic_auth_user_info = Some(v).filter(|s| !s.is_empty())
                }
                "HIRESTATE_SCHEMA_REGISTRY_BEARER_TOKEN" => {
                    c.schema_registry_bearer_token = Some(v).filter(|s| !s.is_empty())
                }
                "HIRESTATE_HEALTH_ADDR" => c.health_addr = Some(v).filter(|s| !s.is_empty()),
                "HIRESTATE_OTLP_ENDPOINT" => c.otlp_endpoint = Some(v).filter(|s| !s.is_empty()),
                "HIRESTATE_CLOCK" => c.clock = v,
                "HIRESTATE_EVENTS_PARTITIONER" => match v.parse() {
                    Ok(p) => c.events_partitioner = p,
                    Err(e) => errors.push(bad(&e)),
                },
                "HIRESTATE_TRACE_SAMPLE_RATIO" => match v.parse::<f64>() {
                    Ok(r) => c.trace_sample_ratio = r,
                    Err(_) => errors.push(bad("not a number")),
                },
                "HIRESTATE_TIMERS_PER_BATCH" => set_number(
                    &mut c.timers_per_batch,
                    &v,
                    || bad("not a whole number"),
                    &mut errors,
                ),
                "HIRESTATE_TIMERS_READ_INTERVAL_MS" => set_number(
                    &mut c.timers_read_interval_ms,
                    &v,
                    || bad("not a whole number"),
                    &mut errors,
                ),
                "HIRESTATE_MAX_CANDIDATES_IN_MEMORY" => set_number(
                    &mut c.max_candidates_in_memory,
                    &v,
                    || bad("not a whole number"),
                    &mut errors,
                ),
                "HIRESTATE_FOLD_TASKS" => set_number(
                    &mut c.fold_tasks,
                    &v,
                    || bad("not a whole number"),
                    &mut errors,
                ),
                "HIRESTATE_STATISTICS_INTERVAL_MS" => set_number(
                    &mut c.statistics_interval_ms,
                    &v,
                    || bad("not a whole number"),
                    &mut errors,
                ),
                "HIRESTATE_PARTITIONS" => set_number(
                    &mut c.partitions,
                    &v,
                    || bad("not a whole number"),
                    &mut errors,
                ),
                "HIRESTATE_BATCH_MAX_RECORDS" => set_number(
                    &mut c.batch_max_records,
                    &v,
                    || bad("not a whole number"),
                    &mut errors,
                ),
                "HIRESTATE_BATCH_MAX_MS" => set_number(
                    &mut c.batch_max_ms,
                    &v,
                    || bad("not a whole number"),
                    &mut errors,
                ),
                "HIRESTATE_SESSION_TIMEOUT_MS" => set_number(
                    &mut c.session_timeout_ms,
                    &v,
                    || bad("not a whole number"),
                    &mut errors,
                ),
                "HIRESTATE_TRANSACTION_TIMEOUT_MS" => set_number(
                    &mut c.transaction_timeout_ms,
                    &v,
                    || bad("not a whole number"),
                    &mut errors,
                ),
                "HIRESTATE_SNAPSHOT_EVERY_BATCHES" => set_number(
                    &mut c.snapshot_every_batches,
                    &v,
                    || bad("not a whole number"),
                    &mut errors,
                ),
                "HIRESTATE_REPLICATION_FACTOR" => set_number(
                    &mut c.replication_factor,
                    &v,
                    || bad("not a whole number"),
                    &mut errors,
                ),
                _ => {
                    // HIRESTATE_KAFKA_SASL_MECHANISMS → sasl.mechanisms, for every client;
                    // HIRESTATE_KAFKA_CONSUMER_* and _PRODUCER_* for one kind of client.
                    // (librdkafka refuses a setting it does not know.)
                    let librdkafka_key = |key: &str| key.to_ascii_lowercase().replace('_', ".");
                    if let Some(key) = k.strip_prefix("HIRESTATE_KAFKA_CONSUMER_") {
                        c.kafka_consumer.insert(librdkafka_key(key), v);
                    } else if let Some(key) = k.strip_prefix("HIRESTATE_KAFKA_PRODUCER_") {
                        c.kafka_producer.insert(librdkafka_key(key), v);
                    } else if let Some(key) = k.strip_prefix("HIRESTATE_KAFKA_") {
                        c.kafka.insert(librdkafka_key(key), v);
                    } else if let Some(problem) = unknown_variable(&k) {
                        errors.push(problem);
                    }
                }
            }
        }
        let f = flags.clone();
        if let Some(v) = f.bootstrap {
            c.bootstrap = v
        }
        if let Some(v) = f.topic_prefix {
            c.topic_prefix = v
        }
        if let Some(v) = f.group_id {
            c.group_id = v
        }
        if let Some(v) = f.instance_id {
            c.instance_id = v
        }
        if let Some(v) = f.state_dir {
            c.state_dir = v
        }
        if let Some(v) = f.policy_dir {
            c.policy_dir = Some(v)
        }
        if let Some(v) = f.schema_registry {
            c.schema_registry = Some(v)
        }
        if let Some(v) = f.health_addr {
            c.health_addr = Some(v)
        }

        if c.group_id.is_empty() {
            errors.push("group_id is empty".to_owned());
        }
        errors.extend(crate::topics::prefix_problem(&c.topic_prefix));
        if c.batch_max_records == 0 {
            errors.push("batch_max_records must be at least 1".to_owned());
        }
        if c.partitions < 1 {
            errors.push(format!("partitions = {} must be at least 1", c.partitions));
        }
        if c.transaction_timeout_ms >= c.session_timeout_ms {
            errors.push(format!(
                "transaction_timeout_ms ({}) must be below session_timeout_ms ({})",
                c.transaction_timeout_ms, c.session_timeout_ms
            ));
        }
        if let Some(e) = &c.otlp_endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                errors.push(format!(
                    "otlp_endpoint {e:?} must be an http:// or https:// URL"
                ));
            }
        }
        if c.snapshot_every_batches == 0 {
            errors.push("snapshot_every_batches must be at least 1".to_owned());
        }
        if let Err(e) = crate::timers::clock::from_spec(&c.clock) {
            errors.push(e);
        }
        if let Err(e) = c.registry() {
            errors.push(e);
        }
        errors.extend(c.refused_by_librdkafka());
        if !(0.0..=1.0).contains(&c.trace_sample_ratio) {
            errors.push(format!(
                "trace_sample_ratio = {} must be between 0 and 1",
                c.trace_sample_ratio
            ));
        }
        if errors.is_empty() {
            Ok(c)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Each passthrough setting librdkafka refuses (no such property, or a value it does not
    /// take), checked one by one so each is named. A refused value is shown, redacted for secret
    /// keys; a value of an unknown key is not (a misspelt secret's key, say `sasl.pasword`, is
    /// not known to be secret), nor is librdkafka's own text, which repeats it.
    /// Unchecked, a misspelt key surfaced later as a failed metadata request of the start-up
    /// check ("cannot read topic metadata … is KAFKA_BOOTSTRAP right and the cluster up?").
    fn refused_by_librdkafka(&self) -> Vec<String> {
        let shown = self.redacted();
        let tables = [
            ("kafka", "HIRESTATE_KAFKA_", &self.kafka, &shown.kafka),
            (
                "kafka_consumer",
                "HIRESTATE_KAFKA_CONSUMER_",
                &self.kafka_consumer,
                &shown.kafka_consumer,
            ),
            (
                "kafka_producer",
                "HIRESTATE_KAFKA_PRODUCER_",
                &self.kafka_producer,
                &shown.kafka_producer,
            ),
        ];
        let mut errors = Vec::new();
        for (table, env, settings, shown) in tables {
            for (k, v) in settings {
                let mut one = rdkafka::ClientConfig::new();
                one.set(k, v);
                let named = || {
                    let env = format!("{env}{}", k.to_ascii_uppercase().replace('.', "_"));
                    (env, shown.get(k).cloned().unwrap_or_default())
                };
                if let Some(why) = unreadable_file(k, v) {
                    // librdkafka reads these files only when a client is created, and then
                    // says, say, "ssl.key.location failed: error:05880002:x509 certificate
                    // routines::system lib".
                    let (env, shown) = named();
                    errors.push(format!(
                        "librdkafka setting {k} = {shown:?} ([{table}] in the file, or {env}): \
                         cannot use it: {why}"
                    ));
                }
                if let Err(e) = one.create_native_config() {
                    // librdkafka's own text repeats the value, which may be a secret; the
                    // value is shown (redacted) only when it is what was refused.
                    let (unknown, why) = match e {
                        rdkafka::error::KafkaError::ClientConfig(res, desc, ..) => (
                            res == rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN,
                            desc,
                        ),
                        other => (true, other.to_string()),
                    };
                    let (env, shown) = named();
                    let value = if unknown {
                        String::new()
                    } else {
                        format!(" = {shown:?}")
                    };
                    errors.push(format!(
                        "librdkafka setting {k}{value} ([{table}] in the file, or {env}): {why}"
                    ));
                }
            }
        }
        errors
    }

    /// The schema registry to use, if any: its URL without credentials, and how to
    /// authenticate (basic from `schema_registry_basic_auth_user_info` or from a `user:password@`
    /// in the URL, or a bearer token — at most one of them).
    ///
    /// # Errors
    /// What is wrong, naming the settings but never showing a secret.
    pub fn registry(&self) -> Result<Option<(String, RegistryAuth)>, String> {
        let Some(url) = &self.schema_registry else {
            return Ok(None);
        };
        let parsed = url::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                format!(
                    "schema_registry {:?} (HIRESTATE_SCHEMA_REGISTRY) must be an http:// or \
                     https:// URL",
                    redact_url(url)
                )
            })?;
        let mut bare = parsed.clone();
        let _ = bare.set_username("");
        let _ = bare.set_password(None);
        let in_url = (!parsed.username().is_empty()).then(|| RegistryAuth::Basic {
            user: decoded(parsed.username()),
            password: decoded(parsed.password().unwrap_or_default()),
        });
        let user_info = match self
            .schema_registry_basic_auth_user_info
            .as_deref()
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(info) => match info.split_once(':') {
                Some((user, password)) if !user.is_empty() => Some(RegistryAuth::Basic {
                    user: user.to_owned(),
                    password: password.to_owned(),
                }),
                _ => {
                    return Err("schema_registry_basic_auth_user_info \
                         (HIRESTATE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO) must be KEY:SECRET \
                         (value not shown)"
                        .to_owned())
                }
            },
        };
        // (Empty in the file counts as unset, as in the environment.)
        let token = self
            .schema_registry_bearer_token
            .clone()
            .filter(|t| !t.is_empty())
            .map(RegistryAuth::Bearer);
        let mut given: Vec<RegistryAuth> =
            [in_url, user_info, token].into_iter().flatten().collect();
        if given.len() > 1 {
            return Err(
                "the schema registry's credentials are given more than once: use one of \
                 a user:password@ in schema_registry, schema_registry_basic_auth_user_info \
                 (HIRESTATE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO) and \
                 schema_registry_bearer_token (HIRESTATE_SCHEMA_REGISTRY_BEARER_TOKEN)"
                    .to_owned(),
            );
        }
        let auth = given.pop().unwrap_or_default();
        Ok(Some((bare.as_str().trim_end_matches('/').to_owned(), auth)))
    }

    /// The configuration as logs may show it: passthrough values whose key mentions a secret,
    /// and the schema registry's credentials, are replaced by `***`.
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        c.schema_registry = c.schema_registry.as_deref().map(redact_url);
        for secret in [
            &mut c.schema_registry_basic_auth_user_info,
            &mut c.schema_registry_bearer_token,
        ] {
            if secret.is_some() {
                *secret = Some("***".to_owned());
            }
        }
        let passthrough = c
            .kafka
            .iter_mut()
            .chain(c.kafka_consumer.iter_mut())
            .chain(c.kafka_producer.iter_mut());
        for (k, v) in passthrough {
            if ["password", "secret", "key", "token"]
                .iter()
                .any(|s| k.contains(s))
            {
                *v = "***".to_owned();
            }
        }
        c
    }

    /// The librdkafka settings every client shares: bootstrap plus the passthrough settings.
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut cc = rdkafka::ClientConfig::new();
        cc.set("bootstrap.servers", &self.bootstrap);
        for (k, v) in &self.kafka {
            cc.set(k, v);
        }
        cc
    }

    /// [`Config::client_config`] for a consumer: with the group's `session.timeout.ms`, so that
    /// every consumer (the group's, restore's readers, `tail`) passes librdkafka's check that
    /// a `max.poll.interval.ms` set among the passthrough settings is not below it. Restore's
    /// readers used librdkafka's default (45 s) instead, so `max.poll.interval.ms` under 45 s
    /// failed every restore even with a shorter session timeout configured.
    /// The consumer-only passthrough settings come after the shared ones, and the session
    /// timeout after both (`session_timeout_ms` is the knob for it).
    pub fn consumer_config(&self) -> rdkafka::ClientConfig {
        let mut cc = self.client_config_with(&self.kafka_consumer);
        cc.set("session.timeout.ms", self.session_timeout_ms.to_string());
        cc
    }

    /// [`Config::consumer_config`] for a reader of one or more partitions of a log, under
    /// `group` (never committed): read_committed, and told when a partition is at its end.
    /// With `to_the_end` (restore, `tail --until-end`, `replay`/`kpi --bootstrap`), the broker
    /// answers an empty fetch after 10 ms (`fetch.wait.max.ms`): a read ends on the EOF such a
    /// fetch brings when the range ends in a transaction marker or at the log's end, and
    /// librdkafka's default 500 ms was paid at the end of every read (a `tail --until-end` of
    /// 4 913 rejections took 0.68 s with it, 0.07–0.15 s without; a restore, at each pass). A
    /// reader that follows a topic keeps the default: it would ask 100 times a second.
    pub fn log_reader_config(&self, group: String, to_the_end: bool) -> rdkafka::ClientConfig {
        let mut cc = self.consumer_config();
        cc.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true");
        if to_the_end {
            cc.set("fetch.wait.max.ms", "10");
        }
        cc
    }

    /// [`Config::client_config`] for a producer: with the producer-only passthrough settings,
    /// and keys placed as `events_partitioner` says unless they set `partitioner` themselves.
    pub fn producer_config(&self) -> rdkafka::ClientConfig {
        let mut cc = self.client_config_with(&self.kafka_producer);
        let unset = cc.get("partitioner").is_none();
        if let Some(name) = self.events_partitioner.librdkafka_name().filter(|_| unset) {
            cc.set("partitioner", name);
        }
        cc
    }

    /// [`Config::client_config`] with one kind of client's passthrough settings after the
    /// shared ones.
    fn client_config_with(&self, scoped: &BTreeMap<String, String>) -> rdkafka::ClientConfig {
        let mut cc = self.client_config();
        for (k, v) in scoped {
            cc.set(k, v);
        }
        cc
    }

    /// The transactional id of this instance.
    pub fn transactional_id(&self) -> String {
        format!("{}-{}", self.group_id, self.instance_id)
    }
}

/// librdkafka settings that name a file (or, for the CA, a directory) it reads when a client is
/// created.
const FILE_SETTINGS: [&str; 6] = [
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.keystore.location",
    "ssl.crl.location",
    "sasl.kerberos.keytab",
];

/// Of [`FILE_SETTINGS`], those librdkafka reads as PEM only.
const PEM_SETTINGS: [&str; 4] = [
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.crl.location",
];

/// Why the file the librdkafka setting `key` names as `value` cannot be used, if it names one
/// (`ssl.ca.location = probe` asks for the system's certificates instead): it cannot be read,
/// or, for a setting read as PEM, it holds no PEM block at all.
fn unreadable_file(key: &str, value: &str) -> Option<String> {
    if !FILE_SETTINGS.contains(&key) || (key == "ssl.ca.location" && value == "probe") {
        return None;
    }
    let problem = match std::fs::metadata(value) {
        Err(e) => e.to_string(),
        Ok(m) if m.is_dir() => std::fs::read_dir(value).err()?.to_string(),
        Ok(_) => match std::fs::read(value) {
            Err(e) => e.to_string(),
            Ok(bytes) if PEM_SETTINGS.contains(&key) && !contains(&bytes, b"-----BEGIN ") => {
                "it holds no PEM block (-----BEGIN …-----), which librdkafka needs here".into()
            }
            Ok(_) => return None,
        },
    };
    Some(problem)
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_instance_id_is_the_host_name_when_hostname_is_not_exported() {
        // What the kernel says, read apart from `uname`.
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("host name");
        let kernel = kernel.trim();
        assert!(!kernel.is_empty());
        assert_eq!(instance_id_from(None), kernel);
        assert_eq!(instance_id_from(Some(String::new())), kernel);
        assert_eq!(instance_id_from(Some("pod-7".into())), "pod-7");
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        Config::load(None, env(pairs), &Overrides::default())
    }

    /// A log reader reads committed records only, never commits, is told of each partition's
    /// end, and carries the consumer passthrough settings; one that reads to the end has empty
    /// fetches answered after 10 ms, one that follows keeps librdkafka's default.
    #[test]
    fn log_readers_read_committed_and_only_those_to_the_end_shorten_the_fetch_wait() {
        let c = load_env(&[("HIRESTATE_KAFKA_CONSUMER_MAX_POLL_INTERVAL_MS", "60000")]).unwrap();
        let (to_the_end, following) = (
            c.log_reader_config("g1".into(), true),
            c.log_reader_config("g2".into(), false),
        );
        for (cc, group) in [(&to_the_end, "g1"), (&following, "g2")] {
            assert_eq!(cc.get("group.id"), Some(group));
            assert_eq!(cc.get("isolation.level"), Some("read_committed"));
            assert_eq!(cc.get("enable.auto.commit"), Some("false"));
            assert_eq!(cc.get("enable.partition.eof"), Some("true"));
            assert_eq!(cc.get("max.poll.interval.ms"), Some("60000"));
        }
        assert_eq!(to_the_end.get("fetch.wait.max.ms"), Some("10"));
        assert_eq!(following.get("fetch.wait.max.ms"), None);
    }

    #[test]
    fn an_unknown_hirestate_variable_is_refused_naming_the_closest_setting() {
        let errors = load_env(&[
            ("HIRESTATE_BATCH_MAX_RECORD", "5"),
            ("HIRESTATE_REPLICATON_FACTOR", "3"),
            ("HIRESTATE_FROBNICATE", "1"),
        ])
        .expect_err("unknown names refused")
        .0;
        let said = |name: &str| {
            errors
                .iter()
                .find(|e| e.contains(&format!("environment {name}:")))
                .unwrap_or_else(|| panic!("{name} not named in {errors:?}"))
                .clone()
        };
        for (typo, meant) in [
            ("HIRESTATE_BATCH_MAX_RECORD", "HIRESTATE_BATCH_MAX_RECORDS"),
            (
                "HIRESTATE_REPLICATON_FACTOR",
                "HIRESTATE_REPLICATION_FACTOR",
            ),
        ] {
            let e = said(typo);
            assert!(
                e.contains("not a setting of hirestate")
                    && e.contains(&format!("did you mean {meant}?")),
                "{e}"
            );
        }
        let e = said("HIRESTATE_FROBNICATE");
        assert!(
            e.contains("not a setting of hirestate") && !e.contains("did you mean"),
            "{e}"
        );
    }

    #[test]
    fn every_setting_of_the_environment_is_known_and_names_read_elsewhere_pass() {
        // Each name `load` reads: no value makes it unknown (a bad value is another error).
        for name in ENVIRONMENT {
            if let Err(e) = load_env(&[(name, "1")]) {
                assert!(
                    !e.0.iter().any(|m| m.contains("not a setting of hirestate")),
                    "{name}: {e}"
                );
            }
        }
        // Read by the tests, the benchmarks and the fail points, not by `load`; and
        // librdkafka's settings, which librdkafka checks.
        load_env(&[
            ("HIRESTATE_FAILPOINTS", "x=1"),
            ("HIRESTATE_REQUIRE_KAFKA", "1"),
            ("HIRESTATE_SOAK", "1"),
            ("HIRESTATE_TEST_SEED", "7"),
            ("HIRESTATE_BENCH_ROUNDS", "3"),
            ("HIRESTATE_KAFKA_LINGER_MS", "5"),
        ])
        .expect("names read elsewhere");
    }

    #[test]
    fn the_replication_factor_comes_from_the_environment_too() {
        let c = load_env(&[("HIRESTATE_REPLICATION_FACTOR", "3")]).expect("a valid setting");
        assert_eq!(c.replication_factor, 3);
    }

    #[test]
    fn a_topic_prefix_kafka_would_refuse_is_refused_with_why() {
        let load = |prefix: &str| {
            Config::load(
                None,
                env(&[("HIRESTATE_TOPIC_PREFIX", prefix)]),
                &Overrides::default(),
            )
        };
        for ok in ["", "prod", "prod-eu_1.a"] {
            assert!(load(ok).is_ok(), "{ok:?}");
        }
        let err = load("prod/eu").unwrap_err().to_string();
        assert!(
            err.contains("\"prod/eu\"") && err.contains("not \"/\""),
            "{err}"
        );
        assert!(err.contains("HIRESTATE_TOPIC_PREFIX"), "{err}");
        // "<prefix>.hiring.rejections.v1" is the longest fixed name: 21 characters more.
        assert!(load(&"p".repeat(249 - 21)).is_ok());
        let err = load(&"p".repeat(249 - 20)).unwrap_err().to_string();
        assert!(
            err.contains("up to 250") && err.contains("over 249"),
            "{err}"
        );
    }

    #[test]
    fn layers_apply_in_order_defaults_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hirestate.toml");
        std::fs::write(
            &file,
            "group_id = \"from-file\"\ntopic_prefix = \"file\"\nbatch_max_records = 7\n",
        )
        .unwrap();
        let flags = Overrides {
            topic_prefix: Some("flag".into()),
            ..Default::default()
        };
        let c = Config::load(
            Some(&file),
            env(&[
                ("HIRESTATE_GROUP_ID", "from-env"),
                ("HIRESTATE_TOPIC_PREFIX", "env"),
                ("HIRESTATE_KAFKA_SASL_PASSWORD", "hunter2"),
            ]),
            &flags,
        )
        .unwrap();
        assert_eq!(c.batch_max_records, 7); // file over default
        assert_eq!(c.group_id, "from-env"); // env over file
        assert_eq!(c.topic_prefix, "flag"); // flag over env
        assert_eq!(
            c.kafka.get("sasl.password").map(String::as_str),
            Some("hunter2")
        );
        assert_eq!(
            c.redacted().kafka.get("sasl.password").map(String::as_str),
            Some("***")
        );
    }

    /// The registry's credentials: from a setting (env or file) or from the URL, one way only,
    /// the URL handed on without them, and none of them in what logs see.
    #[test]
    fn registry_credentials_are_taken_once_and_never_shown() {
        let load = |pairs: &[(&str, &str)]| Config::load(None, env(pairs), &Overrides::default());
        let basic = |user: &str, password: &str| RegistryAuth::Basic {
            user: user.to_owned(),
            password: password.to_owned(),
        };
        let url = ("HIRESTATE_SCHEMA_REGISTRY", "https://sr.example:8081/");
        let c = load(&[
            url,
            (
                "HIRESTATE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
                "KEY:s3cr:et",
            ),
        ])
        .unwrap();
        assert_eq!(
            c.registry().unwrap(),
            Some((
                "https://sr.example:8081".to_owned(),
                basic("KEY", "s3cr:et")
            ))
        );
        let c = load(&[url, ("HIRESTATE_SCHEMA_REGISTRY_BEARER_TOKEN", "t0ken")]).unwrap();
        assert_eq!(
            c.registry().unwrap(),
            Some((
                "https://sr.example:8081".to_owned(),
                RegistryAuth::Bearer("t0ken".to_owned())
            ))
        );
        let c = load(&[(
            "HIRESTATE_SCHEMA_REGISTRY",
            "http://KEY:p%40ss@127.0.0.1:8081",
        )])
        .unwrap();
        assert_eq!(
            c.registry().unwrap(),
            Some(("http://127.0.0.1:8081".to_owned(), basic("KEY", "p@ss")))
        );
        let shown = format!("{:?} {:?}", c.redacted(), c.registry());
        assert!(
            !shown.contains("p%40ss") && !shown.contains("p@ss"),
            "{shown}"
        );
        let c = load(&[
            url,
            (
                "HIRESTATE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
                "KEY:s3cr:et",
            ),
        ])
        .unwrap();
        let shown = format!("{:?} {:?}", c.redacted(), c.registry());
        assert!(!shown.contains("s3cr"), "{shown}");
        assert_eq!(load(&[]).unwrap().registry().unwrap(), None);
        // Empty in a file (the environment filters its own) is unset, not an empty token.
        let from_file = Config {
            schema_registry: Some("https://sr.example".into()),
            schema_registry_bearer_token: Some(String::new()),
            schema_registry_basic_auth_user_info: Some(String::new()),
            ..Config::default()
        };
        assert_eq!(
            from_file.registry().unwrap(),
            Some(("https://sr.example".to_owned(), RegistryAuth::None))
        );

        for (pairs, needle) in [
            (
                vec![
                    url,
                    (
                        "HIRESTATE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
                        "no-colon-s3cret",
                    ),
                ],
                "must be KEY:SECRET",
            ),
            (
                vec![
                    ("HIRESTATE_SCHEMA_REGISTRY", "https://KEY:s3cret@sr.example"),
                    ("HIRESTATE_SCHEMA_REGISTRY_BEARER_TOKEN", "t0ken-s3cret"),
                ],
                "more than once",
            ),
            (
                vec![("HIRESTATE_SCHEMA_REGISTRY", "sr.example:8081")],
                "must be an http:// or https:// URL",
            ),
        ] {
            let err = load(&pairs).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
            assert!(!err.contains("s3cret"), "a secret in: {err}");
        }
    }

    #[test]
    fn metrics_keys_come_from_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(&file, "statistics_interval_ms = 250\n").unwrap();
        let c = Config::load(
            Some(&file),
            env(&[("HIRESTATE_OTLP_ENDPOINT", "http://127.0.0.1:4318")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.statistics_interval_ms, 250);
        assert_eq!(c.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4318"));
        assert_eq!(Config::default().otlp_endpoint, None);
        let err = Config::load(
            None,
            env(&[
                ("HIRESTATE_OTLP_ENDPOINT", "collector:4318"),
                ("HIRESTATE_STATISTICS_INTERVAL_MS", "often"),
            ]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("otlp_endpoint \"collector:4318\""), "{err}");
        assert!(err.contains("HIRESTATE_STATISTICS_INTERVAL_MS"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once_with_file_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "group_id = \"g\"\n\nbatch_max_records = \"many\"\n").unwrap();
        let err = Config::load(
            Some(&file),
            env(&[("HIRESTATE_BATCH_MAX_MS", "soon")]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("bad.toml:3:"), "{err}");
        assert!(
            err.contains("HIRESTATE_BATCH_MAX_MS=\"soon\": not a whole number"),
            "{err}"
        );
    }

    #[test]
    fn timer_and_tracing_keys_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "clock = \"fixed:2026-11-28T10:00:00Z\"\n").unwrap();
        let c = Config::load(
            Some(&file),
            env(&[("HIRESTATE_TRACE_SAMPLE_RATIO", "0.25")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.clock, "fixed:2026-11-28T10:00:00Z");
        assert_eq!(c.trace_sample_ratio, 0.25);
        assert_eq!(Config::default().clock, "wall");
        let err = Config::load(
            None,
            env(&[
                ("HIRESTATE_CLOCK", "sundial"),
                ("HIRESTATE_TRACE_SAMPLE_RATIO", "2"),
                ("HIRESTATE_TIMERS_PER_BATCH", "lots"),
            ]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("clock \"sundial\""), "{err}");
        assert!(err.contains("trace_sample_ratio = 2"), "{err}");
        assert!(err.contains("HIRESTATE_TIMERS_PER_BATCH"), "{err}");
    }

    #[test]
    fn the_events_partitioner_is_checked_and_places_the_tools_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "group_id = \"g\"\nevents_partitioner = \"java\"\n").unwrap();
        let err = Config::load(
            Some(&file),
            env(&[("HIRESTATE_EVENTS_PARTITIONER", "fnv")]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(&format!("{}:2:", file.display())), "{err}");
        assert!(err.contains("events_partitioner \"java\""), "{err}");
        assert!(
            err.contains("HIRESTATE_EVENTS_PARTITIONER=\"fnv\": events_partitioner \"fnv\""),
            "{err}"
        );
        // Default murmur2, as Java clients place keys.
        let c = Config::default();
        assert_eq!(c.events_partitioner, Partitioner::Murmur2);
        assert_eq!(
            c.producer_config().get("partitioner"),
            Some("murmur2_random")
        );
        let with = |pairs: &[(&str, &str)]| {
            Config::load(None, env(pairs), &Overrides::default()).expect("config")
        };
        let crc = with(&[("HIRESTATE_EVENTS_PARTITIONER", "crc32")]);
        assert_eq!(crc.events_partitioner, Partitioner::Crc32);
        assert_eq!(
            crc.producer_config().get("partitioner"),
            Some("consistent_random")
        );
        // Only producers get it; a passthrough setting wins; unchecked leaves librdkafka's.
        assert_eq!(crc.consumer_config().get("partitioner"), None);
        for key in [
            "HIRESTATE_KAFKA_PARTITIONER",
            "HIRESTATE_KAFKA_PRODUCER_PARTITIONER",
        ] {
            let own = with(&[(key, "fnv1a")]);
            assert_eq!(
                own.producer_config().get("partitioner"),
                Some("fnv1a"),
                "{key}"
            );
        }
        let unchecked = with(&[("HIRESTATE_EVENTS_PARTITIONER", "unchecked")]);
        assert_eq!(unchecked.producer_config().get("partitioner"), None);
    }

    #[test]
    fn librdkafka_settings_it_refuses_are_named_with_the_rest() {
        let err = Config::load(
            None,
            env(&[
                ("HIRESTATE_KAFKA_SECURITY_PROTOKOL", "SSL"),
                ("HIRESTATE_KAFKA_SASL_PASWORD", "hunter2"),
                ("HIRESTATE_KAFKA_PRODUCER_LINGER_MS", "soon"),
                ("HIRESTATE_KAFKA_CONSUMER_FETCH_MAX_BYTES", "1048576"),
                ("HIRESTATE_BATCH_MAX_MS", "later"),
            ]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        for part in [
            "librdkafka setting security.protokol ([kafka] in the file, or \
             HIRESTATE_KAFKA_SECURITY_PROTOKOL): ",
            "No such configuration property",
            "HIRESTATE_KAFKA_SASL_PASWORD): No such configuration property",
            "librdkafka setting linger.ms = \"soon\" ([kafka_producer] in the file, or \
             HIRESTATE_KAFKA_PRODUCER_LINGER_MS): ",
            "HIRESTATE_BATCH_MAX_MS=\"later\"",
        ] {
            assert!(err.contains(part), "{part:?} not in {err}");
        }
        assert!(!err.contains("fetch.max.bytes"), "{err}");
        // A misspelt secret: its value is not known to be secret, and is not shown.
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn a_certificate_or_key_file_that_cannot_be_read_is_named_with_its_setting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nnot checked here\n").expect("a CA file");
        let not_pem = dir.path().join("events.jsonl");
        std::fs::write(&not_pem, "{}\n").expect("a file that is no PEM");
        let not_pem = not_pem.display().to_string();
        let missing = dir.path().join("client.pem");
        let (ca, missing) = (ca.display().to_string(), missing.display().to_string());
        let err = Config::load(
            None,
            env(&[
                ("HIRESTATE_KAFKA_SSL_CA_LOCATION", &ca),
                (
                    "HIRESTATE_KAFKA_PRODUCER_SSL_CERTIFICATE_LOCATION",
                    &missing,
                ),
                ("HIRESTATE_KAFKA_SSL_KEY_LOCATION", "/run/secrets/nope.key"),
                ("HIRESTATE_KAFKA_CONSUMER_SSL_CRL_LOCATION", &not_pem),
            ]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        let expected = format!(
            "librdkafka setting ssl.certificate.location = {missing:?} ([kafka_producer] in the \
             file, or HIRESTATE_KAFKA_PRODUCER_SSL_CERTIFICATE_LOCATION): cannot use it: No such \
             file or directory"
        );
        assert!(err.contains(&expected), "{expected:?} not in {err}");
        // A setting whose name says it may hold a secret keeps its value hidden.
        let expected = "librdkafka setting ssl.key.location = \"***\" ([kafka] in the file, or \
                        HIRESTATE_KAFKA_SSL_KEY_LOCATION): cannot use it: No such file";
        assert!(err.contains(expected), "{expected:?} not in {err}");
        assert!(!err.contains("nope.key"), "{err}");
        let expected = format!(
            "librdkafka setting ssl.crl.location = {not_pem:?} ([kafka_consumer] in the file, or \
             HIRESTATE_KAFKA_CONSUMER_SSL_CRL_LOCATION): cannot use it: it holds no PEM block"
        );
        assert!(err.contains(&expected), "{expected:?} not in {err}");
        // A PEM file that can be read is left to librdkafka.
        assert!(!err.contains("ssl.ca.location"), "{err}");
        // So are a directory of CA certificates and `probe` (the system's), which it takes.
        for ca in [dir.path().display().to_string(), "probe".to_owned()] {
            Config::load(
                None,
                env(&[("HIRESTATE_KAFKA_SSL_CA_LOCATION", &ca)]),
                &Overrides::default(),
            )
            .expect("a CA directory, or probe");
        }
    }

    #[test]
    fn every_consumer_gets_the_session_timeout_a_short_poll_interval_needs() {
        // librdkafka refuses a consumer whose max.poll.interval.ms is below its
        // session.timeout.ms (45 s unless set): a passthrough poll interval of 7 s with a 6 s
        // session must be accepted by every consumer hirestate builds.
        let c = Config::load(
            None,
            env(&[
                ("HIRESTATE_SESSION_TIMEOUT_MS", "6000"),
                ("HIRESTATE_TRANSACTION_TIMEOUT_MS", "5000"),
                ("HIRESTATE_KAFKA_MAX_POLL_INTERVAL_MS", "7000"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        let with_session: Result<rdkafka::consumer::BaseConsumer, _> =
            c.consumer_config().set("group.id", "g").create();
        assert!(with_session.is_ok(), "{:?}", with_session.err());
        // What restore's readers were built from before: refused.
        let without: Result<rdkafka::consumer::BaseConsumer, _> =
            c.client_config().set("group.id", "g").create();
        let err = without.err().expect("librdkafka refuses it").to_string();
        assert!(err.contains("max.poll.interval.ms"), "{err}");
    }

    #[test]
    fn scoped_passthrough_reaches_only_its_kind_of_client() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(
            &file,
            "[kafka]\n\"client.rack\" = \"r1\"\n[kafka_producer]\ncompression.type = \"lz4\"\n\
             batch.num.messages = 500\nenable.idempotence = true\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            env(&[
                ("HIRESTATE_KAFKA_CONSUMER_MAX_POLL_INTERVAL_MS", "60000"),
                ("HIRESTATE_KAFKA_PRODUCER_LINGER_MS", "20"),
                ("HIRESTATE_KAFKA_PRODUCER_SSL_KEY_PASSWORD", "hunter2"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        let (all, consumer, producer) =
            (c.client_config(), c.consumer_config(), c.producer_config());
        for cc in [&all, &consumer, &producer] {
            assert_eq!(cc.get("client.rack"), Some("r1"));
        }
        assert_eq!(consumer.get("max.poll.interval.ms"), Some("60000"));
        assert_eq!(producer.get("max.poll.interval.ms"), None);
        assert_eq!(all.get("max.poll.interval.ms"), None);
        assert_eq!(producer.get("linger.ms"), Some("20"));
        // Unquoted dotted keys and bare numbers and booleans, as a TOML writer would put them.
        assert_eq!(producer.get("compression.type"), Some("lz4"));
        assert_eq!(producer.get("batch.num.messages"), Some("500"));
        assert_eq!(producer.get("enable.idempotence"), Some("true"));
        assert_eq!(consumer.get("linger.ms"), None);
        assert_eq!(consumer.get("compression.type"), None);
        let shown = format!("{:?}", c.redacted());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(
            c.redacted()
                .kafka_producer
                .get("ssl.key.password")
                .map(String::as_str),
            Some("***")
        );
        std::fs::write(
            &file,
            "group_id = \"g\"\n[kafka_consumer]\nfetch.max.bytes = [1, 2]\n",
        )
        .unwrap();
        let err = Config::load(Some(&file), env(&[]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{}:2:", file.display()))
                && err
                    .contains("\"fetch.max.bytes\" must be a string, number or boolean, not array"),
            "{err}"
        );
    }

    #[test]
    fn fold_tasks_and_the_memory_cap_come_from_file_or_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "fold_tasks = 3\n").unwrap();
        let c = Config::load(Some(&file), env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.fold_tasks(), 3);
        let c = Config::load(
            Some(&file),
            env(&[("HIRESTATE_FOLD_TASKS", "1")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.fold_tasks(), 1);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(Config::default().fold_tasks(), cores);
        let c = Config::load(
            None,
            env(&[("HIRESTATE_MAX_CANDIDATES_IN_MEMORY", "40")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.max_candidates_in_memory, 40);
        assert_eq!(Config::default().max_candidates_in_memory, 250_000);
        std::fs::write(&file, "fold_tasks = 3\nmax_candidates_in_memory = 7\n").unwrap();
        let c = Config::load(Some(&file), env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.max_candidates_in_memory, 7);
        std::fs::write(&file, "fold_tasks = 3\nmax_candidates_in_memory = -3\n").unwrap();
        let err = Config::load(Some(&file), env(&[]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{}:2:", file.display())) && err.contains("-3"),
            "{err}"
        );
        let err = Config::load(
            None,
            env(&[("HIRESTATE_FOLD_TASKS", "many")]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("HIRESTATE_FOLD_TASKS=\"many\": not a whole number"),
            "{err}"
        );
    }
}
