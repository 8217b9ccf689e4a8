//! Helpers for the processor's integration tests: drive the built `hirestate` binary as a
//! subprocess against the real broker, read its outputs back with `hirestate tail`, and derive
//! what they must be from the offline replay of the same JSON-lines file.
//!
//! The expected outputs are built from `hirestate replay` rows plus the input file alone
//! (topic names, keys and rejection records are assembled here from DESIGN.md, not by the
//! processor's code), so a test fails when the live path and the replay disagree.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::unique;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_hirestate");

/// `hirestate args` with none of the test environment's `HIRESTATE_*` settings: each test says
/// what it sets.
pub fn bare_command(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("HIRESTATE_") {
            c.env_remove(k);
        }
    }
    c.args(args);
    c
}

/// How long any single subprocess may take before the test gives up on it.
const STEP_TIMEOUT: Duration = Duration::from_secs(240);

/// One test's world: its own topic prefix, consumer group and scratch directory.
pub struct Setup {
    pub bootstrap: String,
    pub prefix: String,
    pub group: String,
    pub partitions: i32,
    pub dir: tempfile::TempDir,
    /// `HIRESTATE_SCHEMA_REGISTRY` of every command (Confluent framing), when set.
    pub registry: Option<String>,
    /// More environment every command gets (e.g. the cluster's security settings).
    pub env: Vec<(String, String)>,
}

/// Topic → record key → values in log order (partition order for one key is its offset order).
pub type ByKey = BTreeMap<String, BTreeMap<String, Vec<Value>>>;

impl Setup {
    /// A fresh prefix and group named after `name`, with every topic created (`topics ensure`).
    pub fn new(bootstrap: &str, name: &str, partitions: i32) -> Setup {
        Setup::with_env(bootstrap, name, partitions, &[])
    }

    /// [`Setup::new`] whose every command (`topics ensure` first) also gets `env`.
    pub fn with_env(bootstrap: &str, name: &str, partitions: i32, env: &[(&str, &str)]) -> Setup {
        let s = Setup {
            bootstrap: bootstrap.to_owned(),
            prefix: unique(name),
            group: unique(&format!("{name}-group")),
            partitions,
            dir: tempfile::tempdir().expect("tempdir"),
            registry: None,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        s.cli_ok(&["topics", "ensure"], &[]);
        s
    }

    /// `<prefix>.<name>`.
    pub fn topic(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    /// Every output topic the replay set covers (commands, rejections, alerts).
    pub fn output_topics(&self) -> Vec<String> {
        [
            "ats.commands.greenhouse.v1",
            "ats.commands.lever.v1",
            "hris.commands.workday.v1",
            "hiring.rejections.v1",
            "hiring.alerts.v1",
        ]
        .iter()
        .map(|t| self.topic(t))
        .collect()
    }

    /// A `hirestate` command with this test's environment and nothing inherited that could
    /// change its behaviour (`HIRESTATE_*` of the caller are removed).
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = bare_command(args);
        c.env("KAFKA_BOOTSTRAP", &self.bootstrap)
            .env("HIRESTATE_TOPIC_PREFIX", &self.prefix)
            .env("HIRESTATE_GROUP_ID", &self.group)
            .env("HIRESTATE_PARTITIONS", self.partitions.to_string())
            // Generated events are weeks old: on the wall clock every SLA would have passed.
            // Timers stay quiet unless a test drives the clock (`tests/processor_timers.rs`).
            .env("HIRESTATE_CLOCK", "fixed:1970-01-01T00:00:00Z")
            .env("RUST_LOG", "info");
        if let Some(url) = &self.registry {
            c.env("HIRESTATE_SCHEMA_REGISTRY", url);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    /// Runs a short command to completion and returns its stdout; panics with its stderr when
    /// it fails.
    pub fn cli_ok(&self, args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
        let out = self
            .command(args, env)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("spawning hirestate {args:?}: {e}"));
        assert!(
            out.status.success(),
            "hirestate {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// `hirestate generate` into a file of the scratch directory.
    pub fn generate(&self, file: &str, candidates: usize, seed: u64) -> PathBuf {
        let out = self.cli_ok(
            &[
                "generate",
                "--candidates",
                &candidates.to_string(),
                "--seed",
                &seed.to_string(),
            ],
            &[],
        );
        let path = self.dir.path().join(file);
        fs::write(&path, out).expect("writing the generated stream");
        path
    }

    /// `hirestate produce --from-file file` onto the event log.
    pub fn produce(&self, file: &Path) {
        self.cli_ok(
            &["produce", "--from-file", &file.display().to_string()],
            &[],
        );
    }

    /// `hirestate tail --topic T --from-beginning --until-end`, parsed.
    pub fn tail(&self, topic: &str) -> Vec<Value> {
        let out = self.cli_ok(
            &["tail", "--topic", topic, "--from-beginning", "--until-end"],
            &[],
        );
        parse_lines(&out, "tail")
    }

    /// Tails every topic in `topics` (in parallel) and groups each topic's rows by key, in
    /// (partition, offset) order. Also returns the raw rows per topic.
    pub fn read_back(&self, topics: &[String]) -> (ByKey, BTreeMap<String, Vec<Value>>) {
        let rows: Vec<(String, Vec<Value>)> = std::thread::scope(|s| {
            let handles: Vec<_> = topics
                .iter()
                .map(|t| s.spawn(move || (t.clone(), self.tail(t))))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("tail thread"))
                .collect()
        });
        let mut by_key = ByKey::new();
        let mut raw = BTreeMap::new();
        for (topic, mut rows) in rows {
            rows.sort_by_key(|r| (r["partition"].as_i64(), r["offset"].as_i64()));
            let keys = by_key.entry(topic.clone()).or_default();
            for r in &rows {
                let key = r["key"].as_str().unwrap_or("<no key>").to_owned();
                keys.entry(key).or_default().push(r["value"].clone());
            }
            raw.insert(topic, rows);
        }
        (by_key, raw)
    }

    /// A processor instance of this test's group with its own state directory.
    pub fn instance(&self, id: &str) -> Instance {
        let state_dir = self.dir.path().join(format!("state-{id}"));
        Instance {
            id: id.to_owned(),
            log: self.dir.path().join(format!("{id}.log")),
            state_dir,
            env: Vec::new(),
        }
    }

    /// An instance for failover tests: batches of 50 records, a snapshot round every 3
    /// batches, and a 10 s session (the transaction timeout, 8 s, below it as DESIGN.md asks),
    /// so a member that dies or freezes loses its partitions within seconds.
    pub fn failover_instance(&self, id: &str) -> Instance {
        self.instance(id)
            .with_env("HIRESTATE_BATCH_MAX_RECORDS", "50")
            .with_env("HIRESTATE_SNAPSHOT_EVERY_BATCHES", "3")
            .with_env("HIRESTATE_SESSION_TIMEOUT_MS", "10000")
            .with_env("HIRESTATE_TRANSACTION_TIMEOUT_MS", "8000")
    }

    /// `file` split into its first half and the rest (`head.jsonl`, `tail.jsonl`). The
    /// generated streams are in event-time order, so most candidates have events in both.
    pub fn halves(&self, file: &Path) -> (PathBuf, PathBuf) {
        let lines = read_lines(file).len();
        (
            self.slice(file, 0, lines / 2, "head.jsonl"),
            self.slice(file, lines / 2, lines, "tail.jsonl"),
        )
    }

    /// Waits until what read_committed consumers see on `topics` is not empty and stops
    /// changing (two reads 2 s apart agree): a running processor has folded and committed what
    /// it was given. Returns what they hold then.
    pub fn await_outputs_settled(&self, topics: &[String]) -> ByKey {
        let mut before = self.read_back(topics).0;
        loop {
            std::thread::sleep(Duration::from_secs(2));
            let now = self.read_back(topics).0;
            if now == before && now.values().any(|by_key| !by_key.is_empty()) {
                return now;
            }
            before = now;
        }
    }

    /// Asserts that read_committed consumers see nothing on the output topics: a processor
    /// that stopped (`what`) committed nothing.
    pub fn assert_nothing_committed(&self, what: &str) {
        let (committed, _) = self.read_back(&self.output_topics());
        assert!(
            committed.values().all(|by_key| by_key.is_empty()),
            "{what}: outputs committed: {committed:?}"
        );
    }

    /// Writes lines `[from, to)` of `file` to a new file named `name`.
    pub fn slice(&self, file: &Path, from: usize, to: usize, name: &str) -> PathBuf {
        let lines = read_lines(file);
        let path = self.dir.path().join(name);
        let mut out = fs::File::create(&path).expect("creating a slice");
        for l in &lines[from.min(lines.len())..to.min(lines.len())] {
            writeln!(out, "{l}").expect("writing a slice");
        }
        path
    }

    /// `file` cut into three files of (nearly) equal line counts, in order: `1.jsonl`, `2.jsonl`,
    /// `3.jsonl`.
    pub fn thirds(&self, file: &Path) -> [PathBuf; 3] {
        let lines = read_lines(file).len();
        [
            self.slice(file, 0, lines / 3, "1.jsonl"),
            self.slice(file, lines / 3, 2 * lines / 3, "2.jsonl"),
            self.slice(file, 2 * lines / 3, lines, "3.jsonl"),
        ]
    }
}

/// One logical processor instance: a stable instance id and state directory.
pub struct Instance {
    pub id: String,
    pub state_dir: PathBuf,
    /// Every run of this instance appends its stderr here.
    pub log: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Instance {
    /// Adds an environment setting to every run of this instance.
    pub fn with_env(mut self, key: &str, value: &str) -> Instance {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Spawns `hirestate run --exit-when-idle idle_secs` (stdout piped, stderr to the log).
    pub fn spawn(&self, setup: &Setup, idle_secs: f64, extra: &[(&str, &str)]) -> Child {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("opening the instance log");
        let state = self.state_dir.display().to_string();
        let mut env: Vec<(&str, &str)> = vec![
            ("HIRESTATE_INSTANCE_ID", self.id.as_str()),
            ("HIRESTATE_STATE_DIR", state.as_str()),
        ];
        env.extend(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        env.extend_from_slice(extra);
        setup
            .command(&["run", "--exit-when-idle", &idle_secs.to_string()], &env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawning hirestate run")
    }

    /// Runs the processor until it has been idle `idle_secs`; returns its report. Panics
    /// (with the end of the log) unless it exits 0 with one JSON report line.
    pub fn run_to_idle(&self, setup: &Setup, idle_secs: f64, extra: &[(&str, &str)]) -> Value {
        let started = Instant::now();
        let mut child = self.spawn(setup, idle_secs, extra);
        let status = wait_for(&mut child, STEP_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "{}: run did not finish in {STEP_TIMEOUT:?}\n{}",
                self.id,
                self.log_tail()
            )
        });
        let mut stdout = String::new();
        if let Some(mut o) = child.stdout.take() {
            o.read_to_string(&mut stdout).expect("reading the report");
        }
        assert!(
            status.success(),
            "{}: run exited {status}\n{}",
            self.id,
            self.log_tail()
        );
        let line = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_else(|| panic!("{}: run printed no report\n{}", self.id, self.log_tail()));
        let report: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}: report {line:?} is not JSON: {e}", self.id));
        eprintln!(
            "{}: run took {:?}; report {report}",
            self.id,
            started.elapsed()
        );
        report
    }

    /// Runs the processor expecting a fail point to abort it (SIGABRT); panics if it exits on
    /// its own instead (the fail point was never reached).
    pub fn run_expecting_abort(&self, setup: &Setup, failpoints: &str) {
        let mut child = self.spawn(setup, 20.0, &[("HIRESTATE_FAILPOINTS", failpoints)]);
        let status = wait_for(&mut child, STEP_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "{}: {failpoints}: no exit in {STEP_TIMEOUT:?}\n{}",
                self.id,
                self.log_tail()
            )
        });
        assert_eq!(
            status.signal(),
            Some(6),
            "{}: with HIRESTATE_FAILPOINTS={failpoints} the processor should have aborted, got {status}\n{}",
            self.id,
            self.log_tail()
        );
        eprintln!(
            "{}: fail point {failpoints} aborted the processor as planned",
            self.id
        );
    }

    /// `hirestate state-dump` of this instance's state directory.
    pub fn state_dump(&self, setup: &Setup) -> Vec<Value> {
        let state = self.state_dir.display().to_string();
        let out = setup.cli_ok(&["state-dump"], &[("HIRESTATE_STATE_DIR", state.as_str())]);
        parse_lines(&out, "state-dump")
    }

    /// How many lines of the instance's log contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits until the log holds more than `before` lines containing `needle`; false when
    /// `child` exited or `timeout` passed first.
    pub fn wait_for_log(
        &self,
        child: &mut Child,
        needle: &str,
        before: usize,
        timeout: Duration,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log_count(needle) > before {
                return true;
            }
            if child.try_wait().ok().flatten().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// [`Instance::wait_for_log`] that must succeed: otherwise `child` is killed (not left
    /// running after the test) and the test fails with `what` and the log's end.
    pub fn await_log(&self, child: &mut Child, needle: &str, before: usize, what: &str) {
        if !self.wait_for_log(child, needle, before, Duration::from_secs(60)) {
            let _ = child.kill();
            panic!("{}: {what}\n{}", self.id, self.log_tail());
        }
    }

    /// Waits (up to 90 s) for `child` to stop on an error, and requires the last line of the
    /// log — what the binary stopped with — to contain every one of `needles`; returns it.
    pub fn stopped_with(&self, child: &mut Child, needles: &[&str]) -> String {
        let status = wait_for(child, Duration::from_secs(90))
            .unwrap_or_else(|| panic!("{}: no exit within 90 s\n{}", self.id, self.log_tail()));
        assert!(
            !status.success(),
            "{}: exited {status}, expected to stop on an error\n{}",
            self.id,
            self.log_tail()
        );
        let log = fs::read_to_string(&self.log).expect("reading the instance log");
        let last = log.lines().last().unwrap_or_default().to_owned();
        for needle in needles {
            assert!(last.contains(needle), "{needle:?} not in: {last}");
        }
        last
    }

    /// The last lines of the instance's log (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(30);
        format!(
            "--- last lines of {} ---\n{}",
            self.log.display(),
            lines[from..].join("\n")
        )
    }
}

/// Waits for `child` up to `timeout`; kills it and returns `None` on timeout.
pub fn wait_for(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sleeps `after`, then SIGKILLs `child` (unless it already exited). Returns the exit status
/// when it exited on its own first.
pub fn kill_after(child: &mut Child, after: Duration) -> Option<ExitStatus> {
    if let Some(s) = wait_for_no_kill(child, after) {
        return Some(s);
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaping the killed processor");
    None
}

fn wait_for_no_kill(child: &mut Child, d: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + d;
    while Instant::now() < deadline {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// The non-empty lines of `file`.
pub fn read_lines(file: &Path) -> Vec<String> {
    BufReader::new(fs::File::open(file).expect("opening a stream file"))
        .lines()
        .map(|l| l.expect("reading a stream file"))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

fn parse_lines(out: &[u8], what: &str) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: bad line {l:?}: {e}")))
        .collect()
}

/// What the processor must emit for a stream, derived from `hirestate replay` of its file.
#[derive(Debug, Default)]
pub struct Expected {
    pub outputs: ByKey,
    /// The run report's counts for a single clean run over the whole stream.
    pub counts: Value,
    pub events: usize,
}

/// Replays `file` (`hirestate replay --format jsonl`) and builds the outputs every topic must
/// hold: commands on `<prefix>.<system>.commands.<target>.v1`, one rejection record per
/// rejected row on `hiring.rejections.v1`, alerts on `hiring.alerts.v1`, all keyed by
/// candidate id, per key in replay order.
pub fn expected(setup: &Setup, file: &Path) -> Expected {
    let rows = parse_lines(
        &setup.cli_ok(
            &[
                "replay",
                "--from-file",
                &file.display().to_string(),
                "--format",
                "jsonl",
            ],
            &[],
        ),
        "replay",
    );
    let events: Vec<Value> = read_lines(file)
        .iter()
        .map(|l| serde_json::from_str(l).expect("an event line"))
        .collect();
    assert_eq!(
        rows.len(),
        events.len(),
        "replay must give one row per event of {}",
        file.display()
    );
    let policy =
        hirestate::policy::load(&hirestate::policy::default_dir()).expect("default policy");
    let policy_version = policy.version().to_owned();

    let mut outputs = ByKey::new();
    for t in setup.output_topics() {
        outputs.entry(t).or_default();
    }
    let mut push = |topic: String, key: &str, v: Value| {
        outputs
            .entry(topic)
            .or_default()
            .entry(key.to_owned())
            .or_default()
            .push(v);
    };
    let mut decisions: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    let mut commands: BTreeMap<String, u64> = BTreeMap::new();
    let mut alerts = 0u64;
    for (row, event) in rows.iter().zip(&events) {
        assert_eq!(
            row["event_id"], event["event_id"],
            "replay rows follow the input order"
        );
        let key = row["candidate_id"].as_str().expect("candidate_id");
        let decision = row["decision"].as_str().expect("decision");
        *decisions.entry(decision).or_default() += 1;
        for c in row["commands"].as_array().expect("commands") {
            let (system, target, op) = (
                c["system"].as_str().expect("system"),
                c["target"].as_str().expect("target"),
                c["op"].as_str().expect("op"),
            );
            *commands.entry(format!("{target}/{op}")).or_default() += 1;
            push(
                setup.topic(&format!("{system}.commands.{target}.v1")),
                key,
                c.clone(),
            );
        }
        if decision == "rejected" {
            let reason = row["reason"].as_str().expect("reason").to_owned();
            *by_reason.entry(reason.clone()).or_default() += 1;
            let rejection = json!({
                "event_id": row["event_id"],
                "candidate_id": row["candidate_id"],
                "application_id": row["application_id"],
                "source_system": event["source_system"],
                "source_principal": event["source_principal"],
                "kind": row["kind"],
                "reason": reason,
                "detail": row["detail"].as_str().unwrap_or_default(),
                "stage": row["stage_before"],
                "occurred_at": event["occurred_at"],
                "policy_version": policy_version,
            });
            push(setup.topic("hiring.rejections.v1"), key, rejection);
        }
        for a in row["alerts"].as_array().expect("alerts") {
            alerts += 1;
            push(setup.topic("hiring.alerts.v1"), key, a.clone());
        }
    }
    let n = |d: &str| decisions.get(d).copied().unwrap_or(0);
    let counts = json!({
        "consumed": rows.len(), "applied": n("applied"), "stale": n("stale"),
        "duplicate": n("duplicate"), "rejected": n("rejected"), "dlq": 0,
        "by_reason": by_reason, "commands": commands, "alerts": alerts,
    });
    Expected {
        outputs,
        counts,
        events: rows.len(),
    }
}

/// The final states of a clean replay of `files` in order (library fold), sorted by candidate.
pub fn clean_states(files: &[&Path]) -> Vec<Value> {
    let policy =
        hirestate::policy::load(&hirestate::policy::default_dir()).expect("default policy");
    let mut r = hirestate::replay::Replayer::new(&policy);
    let mut n = 0;
    for f in files {
        for line in read_lines(f) {
            n += 1;
            let e = hirestate::replay::parse_line(&line, n).expect("a good event line");
            r.fold(&e);
        }
    }
    let mut states: Vec<Value> = r
        .states()
        .values()
        .map(|s| serde_json::to_value(s).expect("state to JSON"))
        .collect();
    states.sort_by(|a, b| a["candidate_id"].as_str().cmp(&b["candidate_id"].as_str()));
    states
}

/// Recursively key-sorted JSON text: a canonical form for multiset comparison.
pub fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<&String, Value> =
                    m.iter().map(|(k, v)| (k, sort(v))).collect();
                Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sort(v)).expect("JSON")
}

fn multiset<'a>(vs: impl Iterator<Item = &'a Value>) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for v in vs {
        *m.entry(canonical(v)).or_insert(0) += 1;
    }
    m
}

/// Asserts `actual` holds exactly `expected`, topic by topic: the same multiset of values (no
/// loss, no duplicate) and, per key, the same order. Panics listing what differs.
pub fn assert_outputs_equal(expected: &ByKey, actual: &ByKey) {
    let mut problems = Vec::new();
    let empty = BTreeMap::new();
    let topics: std::collections::BTreeSet<&String> =
        expected.keys().chain(actual.keys()).collect();
    for topic in topics {
        let e = expected.get(topic).unwrap_or(&empty);
        let a = actual.get(topic).unwrap_or(&empty);
        let em = multiset(e.values().flatten());
        let am = multiset(a.values().flatten());
        let (mut missing, mut extra) = (Vec::new(), Vec::new());
        for k in em
            .keys()
            .chain(am.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let d = em.get(k).copied().unwrap_or(0) - am.get(k).copied().unwrap_or(0);
            if d > 0 {
                missing.push(format!("{d}× {k}"));
            } else if d < 0 {
                extra.push(format!("{}× {k}", -d));
            }
        }
        let total_e: i64 = em.values().sum();
        let total_a: i64 = am.values().sum();
        eprintln!("{topic}: expected {total_e} records, read back {total_a}");
        if !missing.is_empty() || !extra.is_empty() {
            problems.push(format!(
                "{topic}: expected {total_e}, read {total_a}; {} missing, {} extra (duplicates or unknown). \
                 first missing: {:?}; first extra: {:?}",
                missing.len(),
                extra.len(),
                &missing[..missing.len().min(3)],
                &extra[..extra.len().min(3)]
            ));
            continue;
        }
        let mut misordered = Vec::new();
        for (key, seq) in e {
            let got = a.get(key).map(Vec::as_slice).unwrap_or_default();
            let se: Vec<String> = seq.iter().map(canonical).collect();
            let sa: Vec<String> = got.iter().map(canonical).collect();
            if se != sa {
                misordered.push(key.clone());
            }
        }
        if !misordered.is_empty() {
            problems.push(format!(
                "{topic}: {} keys whose records are out of replay order, e.g. {:?}",
                misordered.len(),
                &misordered[..misordered.len().min(5)]
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "outputs differ from the replay:\n{}",
        problems.join("\n")
    );
}

/// Asserts every command record carries its value's `command_id` in the `hirestate.command_id`
/// header, and its candidate id as key.
pub fn assert_command_headers(raw: &BTreeMap<String, Vec<Value>>) {
    let mut checked = 0;
    for (topic, rows) in raw {
        if !topic.contains(".commands.") {
            continue;
        }
        for r in rows {
            assert_eq!(
                r["headers"]["hirestate.command_id"], r["value"]["command_id"],
                "{topic}@{}/{}: the command_id header must equal the value's command_id",
                r["partition"], r["offset"]
            );
            assert_eq!(
                r["key"], r["value"]["candidate_id"],
                "{topic}: commands are keyed by candidate_id"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no command record was read back");
}

/// Asserts the report's counts equal `expected` (the fields `expected` names).
pub fn assert_counts(report: &Value, expected: &Value) {
    let counts = &report["counts"];
    for (k, v) in expected.as_object().expect("counts object") {
        assert_eq!(
            &counts[k], v,
            "count `{k}`: run report {counts} vs replay {expected}"
        );
    }
    let sum: u64 = ["applied", "stale", "duplicate", "rejected", "dlq"]
        .iter()
        .map(|k| counts[*k].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        counts["consumed"].as_u64(),
        Some(sum),
        "consumed = applied + stale + duplicate + rejected + dlq: {counts}"
    );
}

/// Asserts a state dump equals the clean replay's states; panics naming the first differences.
pub fn assert_states_equal(dump: &[Value], clean: &[Value]) {
    if dump == clean {
        return;
    }
    let index = |v: &[Value]| -> BTreeMap<String, Value> {
        v.iter()
            .map(|s| {
                (
                    s["candidate_id"].as_str().unwrap_or("").to_owned(),
                    s.clone(),
                )
            })
            .collect()
    };
    let (d, c) = (index(dump), index(clean));
    let mut diffs = Vec::new();
    for k in d
        .keys()
        .chain(c.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        match (d.get(k), c.get(k)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => diffs.push(format!(
                "{k}:\n  state-dump: {}\n  replay:     {}",
                x.map(canonical).unwrap_or_else(|| "<absent>".into()),
                y.map(canonical).unwrap_or_else(|| "<absent>".into())
            )),
        }
    }
    panic!(
        "state-dump ({} candidates) differs from the clean replay ({} candidates) for {} candidates; first:\n{}",
        dump.len(),
        clean.len(),
        diffs.len(),
        diffs[..diffs.len().min(2)].join("\n")
    );
}

/// splitmix64, for seeded kill timings.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)` milliseconds.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next_u64() % (hi - lo).max(1))
    }
}

/// A seed from `HIRESTATE_TEST_SEED`, else from the clock; printed so a failure can be rerun.
pub fn seed(test: &str) -> u64 {
    let s = std::env::var("HIRESTATE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{test}: seed {s} (rerun with HIRESTATE_TEST_SEED={s})");
    s
}

/// Runs every command that talks to Kafka (`run`, `topics ensure`, `produce`, `tail`, `replay
/// --bootstrap`) against `bootstrap` with `env` (security settings), on topics under a prefix
/// made of `name`, and asserts that each stops, failed, with a last line holding every one of
/// `needles`, and that no `*PASSWORD` value of `env` shows in what it said. Each command gets
/// 120 s: a guard against waiting for ever (before the `topics::reach` checks, `produce` did),
/// not a measure of speed.
pub fn assert_every_command_stops(
    bootstrap: &str,
    env: &[(&str, &str)],
    name: &str,
    needles: &[&str],
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        bare_command(&["generate", "--candidates", "3"])
            .output()
            .expect("generate")
            .stdout,
    )
    .expect("events file");
    let events = events.to_str().expect("a UTF-8 path");
    let prefix = unique(name);
    let topic = format!("{prefix}.hiring.events.v1");
    let state = dir.path().join("state");
    let commands: [&[&str]; 5] = [
        &["run", "--exit-when-idle", "2"],
        &["topics", "ensure"],
        &["produce", "--from-file", events, "--topic", &topic],
        &["tail", "--topic", &topic, "--from-beginning", "--until-end"],
        &["replay", "--bootstrap", bootstrap],
    ];
    let secrets: Vec<&str> = env
        .iter()
        .filter(|(k, _)| k.ends_with("PASSWORD"))
        .map(|(_, v)| *v)
        .collect();
    for args in commands {
        let mut child = bare_command(args)
            .env("KAFKA_BOOTSTRAP", bootstrap)
            .env("HIRESTATE_TOPIC_PREFIX", &prefix)
            .env("HIRESTATE_GROUP_ID", &prefix)
            .env("HIRESTATE_STATE_DIR", &state)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning hirestate");
        let status = wait_for(&mut child, Duration::from_secs(120));
        let out = child.wait_with_output().expect("its stderr");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            status.is_some_and(|s| !s.success()),
            "{args:?}: {status:?}\n{said}"
        );
        let last = said.lines().last().unwrap_or_default();
        for needle in needles {
            assert!(last.contains(needle), "{args:?}: {needle:?} not in: {last}");
        }
        for secret in &secrets {
            assert!(!said.contains(secret), "{args:?}: a password in: {said}");
        }
    }
}

/// Produces a generated stream (150 candidates, `seed`) over `bootstrap` with `env` (security
/// settings), runs the processor to the end, and asserts that its outputs, read back the same
/// way, equal the offline replay. Returns what the processor logged.
pub fn outputs_equal_the_replay(
    bootstrap: &str,
    env: &[(&str, &str)],
    name: &str,
    seed: u64,
) -> String {
    let setup = Setup::with_env(bootstrap, name, 2, env);
    let file = setup.generate("events.jsonl", 150, seed);
    setup.produce(&file);
    let expected = expected(&setup, &file);

    let instance = setup.instance("x");
    let report = instance.run_to_idle(&setup, 2.0, &[]);
    assert_counts(&report, &expected.counts);
    let (actual, _) = setup.read_back(&setup.output_topics());
    assert_outputs_equal(&expected.outputs, &actual);
    fs::read_to_string(&instance.log).expect("the instance log")
}

/// `hirestate run --exit-when-idle 5` with `env` over a clean `HIRESTATE_*` environment (the
/// test policy, the state directory `state`, no health endpoints); fails the test if it has not
/// exited within a minute.
pub fn run_bare(state: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut child = bare_command(&["run", "--exit-when-idle", "5"])
        .env("HIRESTATE_POLICY_DIR", crate::support::policy_dir())
        .env("HIRESTATE_STATE_DIR", state)
        .env("HIRESTATE_HEALTH_ADDR", "")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning hirestate run");
    if wait_for(&mut child, Duration::from_secs(60)).is_none() {
        panic!("hirestate run was still running after 60 s");
    }
    child.wait_with_output().expect("hirestate run's output")
}

/// The last line of `out`'s stderr, what the binary stopped with; fails the test unless it
/// exited on an error.
pub fn stopped_with_output(out: &std::process::Output) -> String {
    assert!(
        !out.status.success(),
        "hirestate run exited {}; stdout {}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines().last().unwrap_or_default().to_owned()
}
