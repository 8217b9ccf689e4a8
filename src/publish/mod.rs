//! Stage 7: Kafka out — one transaction per batch carrying the batch's outputs and its input
//! offsets, with transaction errors sorted once, here, into what the caller must do.
//!
//! Invariants:
//! - Begin → produce → `send_offsets_to_transaction` → commit. Nothing is visible to a
//!   `read_committed` consumer, and no input offset moves, unless the commit succeeded.
//! - Retriable errors are retried in place; abort-required errors abort (the caller rolls its
//!   in-memory state back and re-syncs with the committed offsets); fatal errors, and a commit
//!   or abort that timed out or is otherwise ambiguous, recreate the producer — `init_transactions` under the
//!   same transactional id bumps the epoch and so fences any delayed request of the old one
//!   (librdkafka does not implement the newer transaction protocol that would do it for us).
//! - A record refused for its size (librdkafka's `message.max.bytes`, or the topic's
//!   `max.message.bytes`) aborts, and the batch is [`TxnEnd::Refused`]: the same records would
//!   be refused on every retry, so the caller stops instead of retrying.
//! - An aborted, refused or recreating batch's reason names the first record whose delivery
//!   failed (topic, partition, key, the error), from the producer's delivery reports: librdkafka's
//!   own text for a commit that found failed deliveries is "N message(s) failed delivery (see
//!   individual delivery reports)", which named neither (a deleted output topic, say).
//!   A record the producer refuses at once ([`SendError`]) is named the same way: once
//!   librdkafka knows a topic is missing, its own text is "Message production error:
//!   UnknownTopic (Local: Unknown topic)", and the batch's every retry said only that.
//! - An operation the cluster refuses this principal (an ACL: a topic it may not write, its
//!   transactional id, the group its offsets go to) ends the batch as [`TxnEnd::Denied`], and
//!   a producer that cannot be recreated for that reason gives up the same way: retrying
//!   cannot succeed until the ACLs change, so the caller stops (`topics::reach::access_hint`
//!   says what to grant). Before, every batch aborted and recreated the producer, for ever.
//! - All calls here block; the processor runs them on its own thread, off the async runtime.
//! - Once a shutdown is requested ([`Publisher::stop_waiting_on`]), no call waits on the broker
//!   for longer than [`STOPPING_WAIT`] more, and nothing is retried or recreated: a batch that
//!   cannot end in that time is [`TxnEnd::Abandoned`], its transaction left open for the
//!   coordinator to abort (`transaction.timeout.ms`) or for the next start's
//!   `init_transactions` to fence. Nothing of it is visible to a `read_committed` consumer
//!   and no input offset moved, so that is a crash's outcome, which restore handles. Before,
//!   a SIGTERM during a broker outage retried `init_transactions` every minute, for as long as
//!   the outage lasted (by hand: still running 10 minutes after SIGTERM).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, TopicPartitionList};

use crate::config::Config;
use crate::topics::reach::Refusals;

type TxProducer = ThreadedProducer<Deliveries>;

/// The producer's context: keeps the first failed delivery of the open transaction.
#[derive(Default)]
struct Deliveries {
    first_failed: Mutex<Option<String>>,
    /// A delivery refused by the cluster's ACLs ([`crate::topics::reach::access_denied`]).
    denied: Mutex<Option<RDKafkaErrorCode>>,
    /// Where refusals of the client (credentials, TLS) are noted (the processor stops on them).
    refusals: Arc<Refusals>,
}

impl Deliveries {
    /// The error code of a delivery the ACLs refused since the last call, and forgets it.
    fn take_denied(&self) -> Option<RDKafkaErrorCode> {
        self.denied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The first failed delivery since the last call, and forgets it.
    fn take_failed(&self) -> Option<String> {
        self.first_failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl ClientContext for Deliveries {
    /// [`Refusals::error`]: logged, and noted if it is a refusal of the client.
    fn error(&self, error: KafkaError, reason: &str) {
        self.refusals.error(&error, reason);
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        if let Err((e, m)) = result {
            if let Some(code) = crate::topics::reach::access_denied(e) {
                let mut denied = self.denied.lock().unwrap_or_else(PoisonError::into_inner);
                denied.get_or_insert(code);
            }
            let mut first = self
                .first_failed
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            first.get_or_insert_with(|| {
                // Never given a partition: librdkafka waited for the topic's metadata until
                // the message timed out (a deleted output topic, seen by hand).
                let unplaced = match m.partition() {
                    -1 => " (never assigned a partition: does the topic exist?)",
                    _ => "",
                };
                format!(
                    "{} partition {}, key {:?}: {e}{unplaced}",
                    m.topic(),
                    m.partition(),
                    String::from_utf8_lossy(m.key().unwrap_or_default())
                )
            });
        }
    }
}

/// Producer settings of hirestate's own, unless the configuration's librdkafka settings
/// (`[kafka]`, `HIRESTATE_KAFKA_*`) say otherwise.
/// `message.max.bytes` lets a snapshot as large as the snapshot topic takes through
/// ([`crate::topics::SNAPSHOT_TOPIC_MAX_MESSAGE_BYTES`]; librdkafka's default, 1 000 000,
/// refuses a larger one before the broker sees it).
/// `allow.auto.create.topics` false: a producer's default is true, so on a broker that allows
/// it (Kafka's default; the test broker does not) an output topic deleted under a running
/// processor came back with the broker's defaults — a snapshot topic not compacted, the DLQ
/// without its 17 MiB limit — past the start-up check that refuses those (shown on the mock
/// cluster, which creates topics so: `tests/publish_txn_errors.rs`). Now such a batch rolls
/// back, naming the topic, until `hirestate topics ensure` creates it again.
const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("linger.ms", "5"),
    ("compression.type", "zstd"),
    (
        "message.max.bytes",
        crate::topics::SNAPSHOT_TOPIC_MAX_MESSAGE_BYTES,
    ),
    ("allow.auto.create.topics", "false"),
];

/// A record the producer would not enqueue, with the topic it was for.
#[derive(Debug)]
pub struct SendError {
    pub topic: String,
    pub error: KafkaError,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sending a record to {}: {}", self.topic, self.error)?;
        if matches!(
            self.error,
            KafkaError::MessageProduction(
                RDKafkaErrorCode::UnknownTopic | RDKafkaErrorCode::UnknownTopicOrPartition
            )
        ) {
            f.write_str(
                " (the cluster has no such topic: deleted while the processor ran? \
                 `hirestate topics ensure`, with the same configuration, creates it again; \
                 until then every retry of the batch fails so)",
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for SendError {}

/// Whether `e` refuses a record for its size (librdkafka's own limit, or the topic's
/// `max.message.bytes`): the same batch would be refused again however often it is retried.
pub fn refused_for_size(e: &KafkaError) -> bool {
    let code = match e {
        KafkaError::Transaction(te) => te.code(),
        KafkaError::MessageProduction(code) => *code,
        _ => return false,
    };
    matches!(
        code,
        RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge
    )
}

/// Whether an error means "no answer in time": the request may or may not have taken effect.
fn timed_out(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::OperationTimedOut | RDKafkaErrorCode::RequestTimedOut
    )
}

/// What happened to a batch's transaction.
#[derive(Debug, PartialEq)]
pub enum TxnEnd {
    Committed,
    /// Aborted; the caller must roll back and rewind.
    Aborted(String),
    /// Aborted because a record was refused for its size ([`refused_for_size`]): retrying
    /// the batch cannot succeed.
    Refused(String),
    /// Aborted, or the producer could not be recreated, because the cluster refused this
    /// principal an operation (see the module doc), or refused the client (credentials, TLS)
    /// and a fresh connection a transaction timeout later too ([`Refusals::confirmed`]); the
    /// text says what to grant or to check. Retrying cannot succeed.
    Denied(String),
    /// The producer was recreated; the caller must roll back and rewind.
    Recreated(String),
    /// A shutdown was requested and the transaction could not be ended in time (see the
    /// module doc): the caller rolls back and stops.
    Abandoned(String),
}

/// How long a transactional call may still wait on the broker once a shutdown is requested.
pub const STOPPING_WAIT: Duration = Duration::from_secs(5);

/// A transactional producer that knows how to recover.
pub struct Publisher {
    config: Config,
    producer: TxProducer,
    timeout: Duration,
    recreated: u64,
    /// Set when the processor is asked to stop (see the module doc).
    shutdown: Arc<AtomicBool>,
    /// Refusals of the client (credentials, TLS) its producers' contexts note.
    refusals: Arc<Refusals>,
}

/// The transactional producer's settings: the configured ones over [`PRODUCER_DEFAULTS`], and
/// the transactional settings exactly-once needs, which nothing overrides.
fn producer_config(config: &Config) -> rdkafka::ClientConfig {
    let mut cc = config.producer_config();
    for (key, value) in PRODUCER_DEFAULTS {
        if cc.get(key).is_none() {
            cc.set(*key, *value);
        }
    }
    cc.set("transactional.id", config.transactional_id())
        .set("enable.idempotence", "true")
        .set(
            "transaction.timeout.ms",
            config.transaction_timeout_ms.to_string(),
        );
    cc
}

/// A transactional producer whose `init_transactions` has succeeded within `init`.
fn create(
    config: &Config,
    init: Duration,
    refusals: &Arc<Refusals>,
) -> Result<TxProducer, KafkaError> {
    let deliveries = Deliveries {
        refusals: refusals.clone(),
        ..Deliveries::default()
    };
    let producer: TxProducer = producer_config(config).create_with_context(deliveries)?;
    producer.init_transactions(init)?;
    Ok(producer)
}

impl Publisher {
    /// Creates the producer and initialises transactions (fencing an older incarnation).
    ///
    /// # Errors
    /// When the producer cannot be created or `init_transactions` fails.
    pub fn new(config: &Config) -> Result<Publisher, KafkaError> {
        Publisher::noting_refusals(config, Arc::default())
    }

    /// As [`Publisher::new`], noting refusals of the client (credentials, TLS) in `refusals`.
    ///
    /// # Errors
    /// When the producer cannot be created or `init_transactions` fails.
    pub fn noting_refusals(
        config: &Config,
        refusals: Arc<Refusals>,
    ) -> Result<Publisher, KafkaError> {
        Ok(Publisher {
            config: config.clone(),
            producer: create(config, Duration::from_secs(60), &refusals)?,
            timeout: Duration::from_millis(config.transaction_timeout_ms),
            recreated: 0,
            shutdown: Arc::default(),
            refusals,
        })
    }

    /// Once `shutdown` is set, stops waiting on the broker (see the module doc).
    pub fn stop_waiting_on(&mut self, shutdown: Arc<AtomicBool>) {
        self.shutdown = shutdown;
    }

    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    /// How long the next transactional call may wait: the transaction timeout, or
    /// [`STOPPING_WAIT`] once stopping.
    fn wait(&self) -> Duration {
        match self.stopping() {
            true => self.timeout.min(STOPPING_WAIT),
            false => self.timeout,
        }
    }

    /// How many times the producer was recreated.
    pub fn recreated(&self) -> u64 {
        self.recreated
    }

    /// Begins a transaction.
    ///
    /// # Errors
    /// As librdkafka's `begin_transaction` (the caller recreates on error).
    pub fn begin(&mut self) -> Result<(), KafkaError> {
        self.producer.context().take_failed();
        self.producer.context().take_denied();
        self.producer.begin_transaction()
    }

    /// Enqueues one record in the open transaction, waiting while the local queue is full.
    ///
    /// # Errors
    /// Any production error but a full queue, with the topic.
    pub fn send(
        &self,
        topic: &str,
        key: &str,
        value: &[u8],
        headers: OwnedHeaders,
    ) -> Result<(), SendError> {
        self.send_record(record(topic, key, value, headers))
    }

    /// Enqueues a record for `partition` of `topic` (a record that must land next to the
    /// records it belongs with, whatever partitioner their producer used).
    ///
    /// # Errors
    /// As [`Publisher::send`].
    pub fn send_to(
        &self,
        topic: &str,
        partition: i32,
        key: &str,
        value: &[u8],
        headers: OwnedHeaders,
    ) -> Result<(), SendError> {
        self.send_record(record(topic, key, value, headers).partition(partition))
    }

    fn send_record(&self, mut record: BaseRecord<'_, str, [u8]>) -> Result<(), SendError> {
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                    if !self.stopping() =>
                {
                    record = r;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((error, r)) => {
                    return Err(SendError {
                        topic: r.topic.to_owned(),
                        error,
                    })
                }
            }
        }
    }

    /// Adds the input offsets to the transaction, then commits it. Every failure is classified
    /// and handled; the result says what the caller must do.
    pub fn commit(
        &mut self,
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
    ) -> TxnEnd {
        // Offsets only once the records are acknowledged: sent while deliveries were still in
        // flight, `send_offsets_to_transaction` took 35–45 ms a batch instead of ~3 (+ ~10 ms of
        // waiting for the deliveries), measured with `benches/e2e.rs`'s pipe on 2026-11-29.
        self.await_deliveries();
        // A batch of timer events alone consumed nothing: no offsets to send.
        let sent = match offsets.count() {
            0 => Ok(()),
            _ => self.retry(|p, t| p.send_offsets_to_transaction(offsets, group, t)),
        };
        let result = sent.and_then(|()| {
            crate::failpoint::hit(crate::failpoint::AFTER_PRODUCE_BEFORE_COMMIT);
            if crate::failpoint::fires(crate::failpoint::AMBIGUOUS_INSTEAD_OF_COMMIT) {
                return Err(KafkaError::Canceled);
            }
            self.retry(|p, t| p.commit_transaction(t))?;
            if crate::failpoint::fires(crate::failpoint::AMBIGUOUS_AFTER_COMMIT) {
                return Err(KafkaError::Canceled);
            }
            Ok(())
        });
        match result {
            Ok(()) => TxnEnd::Committed,
            Err(e) => self.recover(e),
        }
    }

    /// Waits (bounded by the transaction timeout) until every record of the transaction is
    /// acknowledged. librdkafka's commit flushes first, and rust-rdkafka's flush sleeps a full
    /// 100 ms poll while anything is in flight; the producer's own thread polls delivery
    /// reports, so a short wait here saves that stall on every batch (measured by
    /// `benches/e2e.rs`). Whatever is still in flight after the timeout, commit handles.
    fn await_deliveries(&self) {
        let deadline = Instant::now() + self.timeout;
        while self.producer.in_flight_count() > 0 && Instant::now() < deadline && !self.stopping() {
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    /// Aborts the open transaction (a batch that cannot go on, e.g. the registry is down).
    pub fn abort(&mut self, why: &str) -> TxnEnd {
        let why = self.with_failed_delivery(why);
        match self.producer.abort_transaction(self.wait()) {
            Ok(()) => TxnEnd::Aborted(why),
            Err(e) => self.recreate(format!("{why}; abort failed: {e}")),
        }
    }

    /// Aborts the open transaction because sending a record failed with `e`: refused for its
    /// size, the batch is [`TxnEnd::Refused`].
    pub fn abort_on(&mut self, e: &SendError) -> TxnEnd {
        self.abort_for(&e.error, &e.to_string())
    }

    /// Aborts the open transaction because of `e`, said as `why`: refused for its size, the
    /// batch is [`TxnEnd::Refused`].
    fn abort_for(&mut self, e: &KafkaError, why: &str) -> TxnEnd {
        match self.abort(why) {
            TxnEnd::Aborted(why) if refused_for_size(e) => TxnEnd::Refused(why),
            end => end,
        }
    }

    /// Retries `op` while librdkafka says the error is retriable (bounded).
    /// A timed-out call is not retried: its outcome is ambiguous, and DESIGN.md makes that
    /// fatal for the producer (see the module doc).
    fn retry(
        &self,
        op: impl Fn(&TxProducer, Duration) -> Result<(), KafkaError>,
    ) -> Result<(), KafkaError> {
        let mut attempt = 0;
        loop {
            match op(&self.producer, self.wait()) {
                Err(KafkaError::Transaction(e))
                    if e.is_retriable()
                        && !timed_out(e.code())
                        && attempt < 5
                        && !self.stopping() =>
                {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "retriable transaction error; retrying");
                    std::thread::sleep(Duration::from_millis(100 << attempt));
                }
                other => return other,
            }
        }
    }

    fn recover(&mut self, e: KafkaError) -> TxnEnd {
        let denied = crate::topics::reach::access_denied(&e)
            .or_else(|| self.producer.context().take_denied());
        if let Some(code) = denied {
            let why = self.with_failed_delivery(&e.to_string());
            // Best effort: the transaction may be in a state that cannot abort any more. An
            // open transaction is aborted by the coordinator after its timeout, or fenced by
            // the next start's `init_transactions`.
            if let Err(abort) = self.producer.abort_transaction(self.wait()) {
                tracing::warn!(error = %abort, "aborting the refused batch failed");
            }
            return TxnEnd::Denied(self.denied(&why, code));
        }
        match &e {
            KafkaError::Transaction(te)
                if te.txn_requires_abort() && !te.is_fatal() && !timed_out(te.code()) =>
            {
                tracing::warn!(error = %e, "transaction requires abort");
                self.abort_for(&e, &e.to_string())
            }
            _ => {
                let why = self.with_failed_delivery(&e.to_string());
                self.recreate(why)
            }
        }
    }

    /// What a batch the cluster refused with `code` ends with: `why`, and what to grant.
    fn denied(&self, why: &str, code: RDKafkaErrorCode) -> String {
        format!(
            "{}: {why}",
            crate::topics::reach::access_hint(&self.config, code)
        )
    }

    /// `why`, with the transaction's first failed delivery when there was one.
    fn with_failed_delivery(&self, why: &str) -> String {
        match self.producer.context().take_failed() {
            Some(failed) => format!("{why}; first failed delivery: {failed}"),
            None => why.to_owned(),
        }
    }

    /// Replaces the producer; `init_transactions` fences the old epoch. Keeps trying until a
    /// shutdown is requested: without a producer the processor cannot make progress anyway.
    fn recreate(&mut self, why: String) -> TxnEnd {
        if self.stopping() {
            return TxnEnd::Abandoned(why);
        }
        tracing::error!(reason = %why, "fatal or ambiguous transaction error: recreating the producer");
        let mut wait = Duration::from_millis(200);
        loop {
            if self.stopping() {
                return TxnEnd::Abandoned(why);
            }
            // One transaction timeout an attempt, so a shutdown requested meanwhile waits
            // at most that long for it.
            match create(&self.config, self.timeout, &self.refusals) {
                Ok(p) => {
                    self.producer = p;
                    self.recreated += 1;
                    return TxnEnd::Recreated(why);
                }
                Err(e) => {
                    if let Some(code) = crate::topics::reach::access_denied(&e) {
                        return TxnEnd::Denied(self.denied(&format!("{why}; then {e}"), code));
                    }
                    if let Some(refused) =
                        self.refusals
                            .confirmed(&self.config, self.timeout, &self.shutdown)
                    {
                        return TxnEnd::Denied(refused);
                    }
                    tracing::error!(error = %e, "recreating the producer failed; retrying");
                    let until = Instant::now() + wait;
                    while Instant::now() < until && !self.stopping() {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

/// A keyed record of `topic` with `headers`, for the default partitioner.
fn record<'a>(
    topic: &'a str,
    key: &'a str,
    value: &'a [u8],
    headers: OwnedHeaders,
) -> BaseRecord<'a, str, [u8]> {
    BaseRecord::to(topic)
        .key(key)
        .payload(value)
        .headers(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_librdkafka_settings_win_over_the_producer_defaults_but_not_over_eos() {
        let mut config = Config::default();
        let plain = producer_config(&config);
        assert_eq!(plain.get("linger.ms"), Some("5"));
        assert_eq!(plain.get("compression.type"), Some("zstd"));
        assert_eq!(
            plain.get("message.max.bytes"),
            Some(crate::topics::SNAPSHOT_TOPIC_MAX_MESSAGE_BYTES)
        );

        config.kafka.insert("linger.ms".into(), "50".into());
        config.kafka.insert("compression.type".into(), "lz4".into());
        config
            .kafka
            .insert("enable.idempotence".into(), "false".into());
        let tuned = producer_config(&config);
        assert_eq!(tuned.get("linger.ms"), Some("50"));
        assert_eq!(tuned.get("compression.type"), Some("lz4"));
        assert_eq!(tuned.get("enable.idempotence"), Some("true"));
        assert_eq!(
            tuned.get("transactional.id"),
            Some(config.transactional_id().as_str())
        );
    }

    #[test]
    fn only_a_refusal_for_size_makes_a_batch_refused() {
        for (e, refused) in [
            (
                KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                true,
            ),
            (
                KafkaError::MessageProduction(RDKafkaErrorCode::MessageBatchTooLarge),
                true,
            ),
            (
                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                false,
            ),
            (
                KafkaError::MessageProduction(RDKafkaErrorCode::BrokerTransportFailure),
                false,
            ),
            (KafkaError::Canceled, false),
        ] {
            assert_eq!(refused_for_size(&e), refused, "{e}");
        }
    }
}
