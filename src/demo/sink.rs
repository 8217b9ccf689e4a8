//! A **SIMULATED** ATS/HRIS sink connector, for `hirestate demo` only: no ATS or HRIS is called.
//!
//! It plays the downstream role of DESIGN.md's data flow: it consumes the command topics
//! (`ats.commands.<target>.v1`, `hris.commands.<target>.v1`, `read_committed`) and, for each
//! command, publishes a `writeback_acked` event back into the event log (`source_system`
//! `ats_sink` / `hris_sink`, principal `<target>-simulated-sink`, keyed by candidate, so it lands
//! after the command's cause in the candidate's partition).
//!
//! What the "remote system" answers is decided by [`verdict`], a pure function of the options,
//! the seed, the `command_id` and the attempt: a splitmix64 generator seeded from those draws
//! the status (`rejected` with the rejection rate, else `failed` with the failure rate —
//! retryable with [`SinkOptions::retryable_share`] — else `confirmed`) and a latency within the
//! configured range. The ack's `occurred_at` is the command's `occurred_at` (its causing event's
//! time) plus that latency, so the write-back latency KPI measures exactly the simulated
//! latency. Nothing depends on wall-clock time or delivery order: the same seed gives the same
//! acks with the same ids and times, which is what lets the demo reconcile the live run with an
//! offline replay of the log.
//!
//! Idempotency, as a real connector must have it: a command is acked once per
//! `(command_id, attempt)` ([`AckLedger`]); a redelivery (the same id and the same
//! `hirestate.attempt` header, e.g. after a consumer restart, or a record of an aborted
//! transaction the mock cluster does not hide) is counted and ignored. The ack's `event_id`,
//! `sim-ack-<command_id>-<attempt>`, is stable as well, so even an ack published twice would be
//! folded once (as a `duplicate`).
//!
//! The ack continues the command's W3C trace: its `traceparent` has the command's trace id and a
//! span id of the sink's own (see [`crate::telemetry::trace_context`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::app::ATTEMPT_HEADER;
use crate::codec::{Codec, Framing};
use crate::config::Config;
use crate::generate::Rng;
use crate::model::{AckStatus, Command, Event, EventKind, SourceSystem, TargetSystem};
use crate::policy::Policy;
use crate::telemetry::trace_context::{TraceContext, TRACEPARENT, TRACESTATE};
use crate::telemetry::EofReaderContext;
use crate::topics::Topics;

/// Header marking every record the simulated sink writes.
pub const SIMULATED_HEADER: &str = "hirestate.simulated";

/// How the simulated remote systems behave.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkOptions {
    /// Seeds every decision (with the command id and attempt).
    pub seed: u64,
    /// Simulated write-back latency range, inclusive, in seconds of event time.
    pub latency_min_secs: u64,
    pub latency_max_secs: u64,
    /// Share of attempts the remote answers `failed`.
    pub failure_rate: f64,
    /// Share of attempts the remote answers `rejected`.
    pub rejection_rate: f64,
    /// Share of failures marked retryable.
    pub retryable_share: f64,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            seed: 7,
            latency_min_secs: default_latency_min_secs(),
            latency_max_secs: default_latency_max_secs(),
            failure_rate: default_failure_rate(),
            rejection_rate: default_rejection_rate(),
            retryable_share: default_retryable_share(),
        }
    }
}

/// 5 s: a fast remote API call.
pub fn default_latency_min_secs() -> u64 {
    5
}
/// 20 min: past the default 15 min write-back SLA, so some write-backs are late.
pub fn default_latency_max_secs() -> u64 {
    1200
}
/// 5 % of attempts fail.
pub fn default_failure_rate() -> f64 {
    0.05
}
/// 5 % of attempts are rejected by the remote's validation.
pub fn default_rejection_rate() -> f64 {
    0.05
}
/// Half the failures are worth retrying.
pub fn default_retryable_share() -> f64 {
    0.5
}

impl SinkOptions {
    /// Every problem of the options at once.
    ///
    /// # Errors
    /// A rate outside 0–1, rates that add up past 1, or an empty latency range.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for (name, v) in [
            ("failure rate", self.failure_rate),
            ("rejection rate", self.rejection_rate),
            ("retryable share", self.retryable_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                problems.push(format!("{name} {v} is not within 0..=1"));
            }
        }
        if self.failure_rate + self.rejection_rate > 1.0 {
            problems.push(format!(
                "failure rate {} + rejection rate {} exceed 1",
                self.failure_rate, self.rejection_rate
            ));
        }
        if self.latency_min_secs > self.latency_max_secs {
            problems.push(format!(
                "latency range {}..={} s is empty",
                self.latency_min_secs, self.latency_max_secs
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// FNV-1a 64: a stable hash of the command id (std's hasher is not stable across releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What the simulated remote answers to one attempt of one command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub status: AckStatus,
    /// Only ever true for `failed`.
    pub retryable: bool,
    pub latency_secs: u64,
}

/// The remote's answer to attempt `attempt` of `command_id`: a pure function of its inputs.
pub fn verdict(opts: &SinkOptions, command_id: &str, attempt: u32) -> Verdict {
    let mut rng = Rng(opts.seed ^ fnv1a(command_id.as_bytes()) ^ (u64::from(attempt) << 48));
    rng.next(); // one round of mixing before the first draw
    let roll = rng.unit();
    let (status, retryable) = if roll < opts.rejection_rate {
        (AckStatus::Rejected, false)
    } else if roll < opts.rejection_rate + opts.failure_rate {
        (AckStatus::Failed, rng.unit() < opts.retryable_share)
    } else {
        (AckStatus::Confirmed, false)
    };
    let span = opts
        .latency_max_secs
        .saturating_sub(opts.latency_min_secs)
        .saturating_add(1);
    Verdict {
        status,
        retryable,
        latency_secs: opts.latency_min_secs + rng.next() % span,
    }
}

/// The `writeback_acked` event the simulated sink publishes for attempt `attempt` of `cmd`.
pub fn ack_event(cmd: &Command, attempt: u32, v: &Verdict) -> Event {
    let source = match cmd.system {
        TargetSystem::Ats => SourceSystem::AtsSink,
        TargetSystem::Hris => SourceSystem::HrisSink,
    };
    let id_prefix = &cmd.command_id[..cmd.command_id.len().min(12)];
    let error = match (v.status, v.retryable) {
        (AckStatus::Confirmed, _) => None,
        (AckStatus::Failed, true) => Some("simulated: 503 from the remote API".to_owned()),
        (AckStatus::Failed, false) => Some("simulated: 409 record locked by the remote".to_owned()),
        (AckStatus::Rejected, _) => Some("simulated: remote validation failed".to_owned()),
    };
    Event {
        event_id: format!("sim-ack-{}-{attempt}", cmd.command_id),
        candidate_id: cmd.candidate_id.clone(),
        application_id: cmd.application_id.to_string(),
        source_system: source,
        source_principal: format!("{}-simulated-sink", cmd.target),
        occurred_at: cmd
            .occurred_at
            .plus_secs(i64::try_from(v.latency_secs).unwrap_or(i64::MAX)),
        signature: None,
        kind: EventKind::WritebackAcked {
            command_id: cmd.command_id.to_string(),
            status: v.status,
            remote_ref: (v.status == AckStatus::Confirmed).then(|| format!("sim-{id_prefix}")),
            error,
            retryable: v.retryable,
        },
    }
}

/// Which `(command_id, attempt)` pairs were acked already.
#[derive(Debug, Default)]
pub struct AckLedger {
    acked: HashSet<(String, u32)>,
}

impl AckLedger {
    /// True the first time `(command_id, attempt)` is seen, false for every redelivery.
    pub fn first(&mut self, command_id: &str, attempt: u32) -> bool {
        self.acked.insert((command_id.to_owned(), attempt))
    }
}

/// The attempt a command record names: its `hirestate.attempt` header, else the value's.
pub fn attempt_of(headers: Option<&impl Headers>, cmd: &Command) -> u32 {
    headers
        .and_then(|h| {
            h.iter()
                .find(|x| x.key == ATTEMPT_HEADER)
                .and_then(|x| x.value)
        })
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(cmd.attempt)
}

/// What the sink did so far.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SinkStats {
    pub commands_read: u64,
    pub acks_sent: u64,
    pub redeliveries_ignored: u64,
    pub undecodable: u64,
    pub confirmed: u64,
    pub failed: u64,
    pub failed_retryable: u64,
    pub rejected: u64,
}

/// The simulated sink: its consumer positions, ledger and producer live across sessions, so
/// it can run alongside the processor ([`Sink::run_until`]) and then catch up ([`Sink::drain`]).
pub struct Sink {
    config: Config,
    opts: SinkOptions,
    codec: Codec,
    framing: Framing,
    events_topic: String,
    /// Command topic → its partitions.
    partitions: BTreeMap<String, Vec<i32>>,
    /// Next offset to read per (topic, partition); absent → from the beginning.
    next: BTreeMap<(String, i32), i64>,
    ledger: AckLedger,
    producer: FutureProducer,
    runtime: tokio::runtime::Runtime,
    pending: Vec<(String, DeliveryFuture)>,
    pub stats: SinkStats,
}

/// No progress for this long while catching up means the cluster is gone.
const DRAIN_STALL: Duration = Duration::from_secs(60);

impl Sink {
    /// A sink over every command topic of `policy` under `config`'s prefix.
    ///
    /// # Errors
    /// Invalid options, client creation or metadata failures (e.g. a topic that does not exist).
    pub fn new(config: &Config, policy: &Policy, opts: SinkOptions) -> anyhow::Result<Sink> {
        opts.validate()
            .map_err(|e| anyhow::anyhow!("simulated sink: {e}"))?;
        let mut codec = Codec::embedded()?;
        if let Some(url) = &config.schema_registry {
            codec = codec.with_registry(url)?;
        }
        let topics = Topics::new(&config.topic_prefix);
        let probe = Self::consumer(config)?;
        let mut partitions = BTreeMap::new();
        for t in topics.all_commands(policy) {
            let md = probe.fetch_metadata(Some(&t), Duration::from_secs(10))?;
            let ps: Vec<i32> = md
                .topics()
                .first()
                .filter(|m| m.error().is_none())
                .map(|m| m.partitions().iter().map(|p| p.id()).collect())
                .ok_or_else(|| anyhow::anyhow!("simulated sink: topic {t} does not exist"))?;
            partitions.insert(t, ps);
        }
        let producer: FutureProducer = config
            .producer_config()
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create()?;
        Ok(Sink {
            config: config.clone(),
            opts,
            codec,
            framing: if config.schema_registry.is_some() {
                Framing::Confluent
            } else {
                Framing::SingleObject
            },
            events_topic: topics.events,
            partitions,
            next: BTreeMap::new(),
            ledger: AckLedger::default(),
            producer,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            pending: Vec::new(),
            stats: SinkStats::default(),
        })
    }

    fn consumer(config: &Config) -> anyhow::Result<BaseConsumer<EofReaderContext>> {
        Ok(config
            .consumer_config()
            .set(
                "group.id",
                format!("hirestate-simulated-sink-{}", std::process::id()),
            )
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .create_with_context(EofReaderContext)?)
    }

    fn start(&self, tpl: &mut TopicPartitionList, topic: &str, p: i32) -> anyhow::Result<()> {
        let at = self
            .next
            .get(&(topic.to_owned(), p))
            .map_or(Offset::Beginning, |o| Offset::Offset(*o));
        tpl.add_partition_offset(topic, p, at)?;
        Ok(())
    }

    /// Acks commands as they become visible until `stop` is set; every ack is delivered
    /// before it returns.
    ///
    /// # Errors
    /// Consumer or producer failures, or an ack that cannot be encoded or delivered.
    pub fn run_until(&mut self, stop: &AtomicBool) -> anyhow::Result<()> {
        let consumer = Self::consumer(&self.config)?;
        let mut tpl = TopicPartitionList::new();
        for (t, ps) in &self.partitions {
            for p in ps {
                self.start(&mut tpl, t, *p)?;
            }
        }
        consumer.assign(&tpl)?;
        while !stop.load(Ordering::Relaxed) {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => self.handle(&m)?,
                Some(Err(KafkaError::PartitionEOF(_))) | None => self.flush()?,
                Some(Err(e)) => tracing::warn!(error = %e, "simulated sink: consumer error"),
            }
        }
        self.flush()
    }

    /// Acks every command committed so far and returns once each command partition is read
    /// to its end (call it when nothing writes commands any more).
    ///
    /// # Errors
    /// As [`Sink::run_until`], and a catch-up that makes no progress for a minute.
    pub fn drain(&mut self) -> anyhow::Result<()> {
        let topics: Vec<(String, Vec<i32>)> = self
            .partitions
            .iter()
            .map(|(t, ps)| (t.clone(), ps.clone()))
            .collect();
        // One consumer per topic: end-of-partition events name the partition, not the topic.
        for (topic, ps) in topics {
            let consumer = Self::consumer(&self.config)?;
            let mut tpl = TopicPartitionList::new();
            let mut done: BTreeMap<i32, bool> = BTreeMap::new();
            let mut high: BTreeMap<i32, i64> = BTreeMap::new();
            for p in ps {
                self.start(&mut tpl, &topic, p)?;
                let (low, h) = consumer.fetch_watermarks(&topic, p, Duration::from_secs(10))?;
                let at = self.next.get(&(topic.clone(), p)).copied().unwrap_or(low);
                done.insert(p, at >= h);
                high.insert(p, h);
            }
            consumer.assign(&tpl)?;
            let mut progress = Instant::now();
            while !done.values().all(|d| *d) {
                anyhow::ensure!(
                    progress.elapsed() < DRAIN_STALL,
                    "simulated sink: no progress reading {topic} for {DRAIN_STALL:?}"
                );
                match consumer.poll(Duration::from_millis(200)) {
                    Some(Ok(m)) => {
                        progress = Instant::now();
                        if m.offset() + 1 >= high.get(&m.partition()).copied().unwrap_or(0) {
                            done.insert(m.partition(), true);
                        }
                        self.handle(&m)?;
                    }
                    Some(Err(KafkaError::PartitionEOF(p))) => {
                        progress = Instant::now();
                        done.insert(p, true);
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "simulated sink: consumer error"),
                    None => {}
                }
            }
        }
        self.flush()
    }

    fn handle(&mut self, m: &BorrowedMessage<'_>) -> anyhow::Result<()> {
        self.next
            .insert((m.topic().to_owned(), m.partition()), m.offset() + 1);
        let Some(bytes) = m.payload() else {
            return Ok(());
        };
        let cmd: Command = match self.runtime.block_on(self.codec.decode(bytes)) {
            Ok(c) => c,
            Err(e) => {
                self.stats.undecodable += 1;
                tracing::warn!(error = %e, topic = m.topic(), offset = m.offset(),
                    "simulated sink: undecodable command");
                return Ok(());
            }
        };
        self.stats.commands_read += 1;
        let attempt = attempt_of(m.headers(), &cmd);
        if !self.ledger.first(&cmd.command_id, attempt) {
            self.stats.redeliveries_ignored += 1;
            return Ok(());
        }
        let v = verdict(&self.opts, &cmd.command_id, attempt);
        match v.status {
            AckStatus::Confirmed => self.stats.confirmed += 1,
            AckStatus::Failed => {
                self.stats.failed += 1;
                self.stats.failed_retryable += u64::from(v.retryable);
            }
            AckStatus::Rejected => self.stats.rejected += 1,
        }
        let ack = ack_event(&cmd, attempt, &v);
        let trace = TraceContext::for_event(
            m.headers().and_then(TraceContext::from_headers).as_ref(),
            &cmd.causing_event_id,
        );
        let attempt_text = attempt.to_string();
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: SIMULATED_HEADER,
                value: Some("true"),
            })
            .insert(Header {
                key: TRACEPARENT,
                value: Some(&trace.child_traceparent(&[
                    "simulated-sink",
                    &cmd.command_id,
                    &attempt_text,
                ])),
            });
        if let Some(state) = &trace.tracestate {
            headers = headers.insert(Header {
                key: TRACESTATE,
                value: Some(state),
            });
        }
        let payload =
            self.runtime
                .block_on(self.codec.encode(&ack, self.framing, &self.events_topic))?;
        let mut record = FutureRecord::to(&self.events_topic)
            .key(&ack.candidate_id)
            .payload(&payload)
            .headers(headers);
        let delivery = loop {
            match self.producer.send_result(record) {
                Ok(d) => break d,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => anyhow::bail!("simulated sink: ack {}: {e}", ack.event_id),
            }
        };
        self.pending.push((ack.event_id, delivery));
        self.stats.acks_sent += 1;
        if self.pending.len() >= 1000 {
            self.flush()?;
        }
        Ok(())
    }

    /// Waits for every ack enqueued so far to be delivered.
    fn flush(&mut self) -> anyhow::Result<()> {
        for (event_id, d) in self.pending.drain(..) {
            match self.runtime.block_on(d) {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => anyhow::bail!("simulated sink: ack {event_id}: {e}"),
                Err(_) => anyhow::bail!("simulated sink: ack {event_id}: producer went away"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CommandPayload, Timestamp};

    fn command(id: &str, system: TargetSystem) -> Command {
        Command {
            command_id: id.into(),
            target: "greenhouse".into(),
            system,
            candidate_id: "cand-1".to_owned(),
            application_id: "app-1".into(),
            causing_event_id: "ev-1".to_owned(),
            occurred_at: Timestamp(1_000_000_000),
            policy_version: "v".into(),
            policy_digest: "d".into(),
            attempt: 1,
            payload: CommandPayload::MoveStage {
                stage: "triage".to_owned(),
                remote_stage: "Triage".to_owned(),
            },
        }
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{:032x}", i * 7919 + 13)).collect()
    }

    #[test]
    fn verdicts_are_a_function_of_seed_command_and_attempt() {
        let opts = SinkOptions::default();
        for id in ids(200) {
            assert_eq!(verdict(&opts, &id, 1), verdict(&opts, &id, 1));
        }
        let other = SinkOptions {
            seed: 8,
            ..SinkOptions::default()
        };
        let differs = ids(200)
            .iter()
            .filter(|id| verdict(&opts, id, 1) != verdict(&other, id, 1))
            .count();
        assert!(
            differs > 150,
            "another seed changes the verdicts ({differs}/200)"
        );
        let by_attempt = ids(200)
            .iter()
            .filter(|id| verdict(&opts, id, 1) != verdict(&opts, id, 2))
            .count();
        assert!(
            by_attempt > 150,
            "attempts are drawn independently ({by_attempt}/200)"
        );
    }

    #[test]
    fn latencies_stay_in_the_range_and_rates_are_honoured() {
        let opts = SinkOptions {
            latency_min_secs: 30,
            latency_max_secs: 90,
            failure_rate: 0.2,
            rejection_rate: 0.1,
            retryable_share: 1.0,
            ..SinkOptions::default()
        };
        let vs: Vec<Verdict> = ids(4000).iter().map(|id| verdict(&opts, id, 1)).collect();
        assert!(vs.iter().all(|v| (30..=90).contains(&v.latency_secs)));
        assert!(vs.iter().any(|v| v.latency_secs == 30) && vs.iter().any(|v| v.latency_secs == 90));
        let n = |s: AckStatus| vs.iter().filter(|v| v.status == s).count();
        assert!(
            (600..1000).contains(&n(AckStatus::Failed)),
            "{}",
            n(AckStatus::Failed)
        );
        assert!(
            (250..550).contains(&n(AckStatus::Rejected)),
            "{}",
            n(AckStatus::Rejected)
        );
        assert!(vs
            .iter()
            .all(|v| v.retryable == (v.status == AckStatus::Failed)));
        let fixed = SinkOptions {
            latency_min_secs: 42,
            latency_max_secs: 42,
            failure_rate: 0.0,
            rejection_rate: 0.0,
            ..SinkOptions::default()
        };
        assert!(ids(100).iter().all(|id| verdict(&fixed, id, 1)
            == Verdict {
                status: AckStatus::Confirmed,
                retryable: false,
                latency_secs: 42
            }));
        let all_rejected = SinkOptions {
            rejection_rate: 1.0,
            failure_rate: 0.0,
            ..SinkOptions::default()
        };
        assert!(ids(100)
            .iter()
            .all(|id| verdict(&all_rejected, id, 1).status == AckStatus::Rejected));
    }

    #[test]
    fn options_are_validated() {
        assert_eq!(SinkOptions::default().validate(), Ok(()));
        let bad = SinkOptions {
            failure_rate: 0.7,
            rejection_rate: 0.6,
            latency_min_secs: 10,
            latency_max_secs: 5,
            retryable_share: -0.1,
            ..SinkOptions::default()
        };
        let e = bad.validate().expect_err("invalid");
        assert!(e.contains("exceed 1"), "{e}");
        assert!(e.contains("latency range"), "{e}");
        assert!(e.contains("retryable share"), "{e}");
    }

    #[test]
    fn the_ack_names_the_command_and_adds_the_latency() {
        let cmd = command("0123456789abcdef0123456789abcdef", TargetSystem::Ats);
        let v = Verdict {
            status: AckStatus::Confirmed,
            retryable: false,
            latency_secs: 90,
        };
        let ack = ack_event(&cmd, 1, &v);
        assert_eq!(ack.event_id, "sim-ack-0123456789abcdef0123456789abcdef-1");
        assert_eq!(ack.source_system, SourceSystem::AtsSink);
        assert_eq!(ack.source_principal, "greenhouse-simulated-sink");
        assert_eq!(ack.candidate_id, "cand-1");
        assert_eq!(ack.occurred_at, Timestamp(1_000_000_000 + 90_000_000));
        match &ack.kind {
            EventKind::WritebackAcked {
                command_id,
                status,
                remote_ref,
                error,
                retryable,
            } => {
                assert_eq!(command_id.as_str(), &*cmd.command_id);
                assert_eq!(*status, AckStatus::Confirmed);
                assert_eq!(remote_ref.as_deref(), Some("sim-0123456789ab"));
                assert_eq!(*error, None);
                assert!(!retryable);
            }
            k => panic!("not an ack: {k:?}"),
        }
        let hris = command("fe", TargetSystem::Hris);
        let failed = Verdict {
            status: AckStatus::Failed,
            retryable: true,
            latency_secs: 5,
        };
        let ack = ack_event(&hris, 2, &failed);
        assert_eq!(ack.source_system, SourceSystem::HrisSink);
        assert_eq!(ack.event_id, "sim-ack-fe-2");
        assert!(matches!(
            ack.kind,
            EventKind::WritebackAcked {
                status: AckStatus::Failed,
                retryable: true,
                error: Some(_),
                remote_ref: None,
                ..
            }
        ));
    }

    #[test]
    fn the_ledger_acks_each_attempt_once() {
        let mut l = AckLedger::default();
        assert!(l.first("c1", 1));
        assert!(!l.first("c1", 1), "a redelivery of the same attempt");
        assert!(l.first("c1", 2), "a new attempt is acked");
        assert!(l.first("c2", 1));
        assert!(!l.first("c2", 1));
    }

    #[test]
    fn the_attempt_comes_from_the_header_first() {
        let mut cmd = command("c", TargetSystem::Ats);
        cmd.attempt = 3;
        let h = OwnedHeaders::new().insert(Header {
            key: ATTEMPT_HEADER,
            value: Some("2"),
        });
        assert_eq!(attempt_of(Some(&h), &cmd), 2);
        let garbage = OwnedHeaders::new().insert(Header {
            key: ATTEMPT_HEADER,
            value: Some("two"),
        });
        assert_eq!(attempt_of(Some(&garbage), &cmd), 3);
        assert_eq!(attempt_of(None::<&OwnedHeaders>, &cmd), 3);
    }
}
