//! `hirestate topics copy-events --to-prefix P`: copies the event log into `P.hiring.events.v1`,
//! created beforehand (`hirestate topics ensure` under that prefix) with the partitions wanted.
//! Partitions cannot be added to a live event log (README "Adding partitions"): this is the way
//! to more of them, followed by a new consumer group with a fresh state directory on `P`.
//!
//! Invariants:
//! - What is copied is what the processor folds: the log is read `read_committed`, partition
//!   by partition in offset order, decoded and admitted as the processor admits it
//!   ([`for_each_record`]). A record it dead-letters (undecodable, on another partition than
//!   `events_partitioner` gives its key, keyed other than by its `candidate_id`) is not
//!   copied, and is reported with its position: copied, the new log would fold it.
//! - Each record is copied as it is (key, value and headers: framing, signatures and trace
//!   context kept) and placed in the target by `events_partitioner`. A candidate's events all
//!   come from one source partition, read in order, and go to one target partition in that
//!   order (idempotent producer, `acks=all`): the per-candidate order the fold depends on holds.
//! - The target must exist, must not be the source, and must be empty (no partition holds a
//!   record): a copy stopped half way is not resumed into. Recreate the topic, copy again.
//!   A failed delivery stops the copy with an error; nothing reports success before every
//!   record is acknowledged.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use serde::Serialize;

use super::tail::for_each_record;
use crate::config::Config;
use crate::topics::Topics;

/// How long the copy waits for its last records to be acknowledged.
const FLUSH_WAIT: Duration = Duration::from_secs(120);

/// Counts of one copy, printed as one JSON line.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct CopyReport {
    pub from: String,
    pub to: String,
    pub copied: u64,
    /// Decoded records the processor dead-letters (each reported on stderr with its position).
    pub not_copied: u64,
    /// Records that do not decode (the processor dead-letters them too).
    pub undecodable: u64,
}

/// Delivery reports: how many failed, and the first failure.
#[derive(Default)]
struct Deliveries {
    failed: Mutex<(u64, Option<String>)>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = result {
            let mut f = self.failed.lock().unwrap_or_else(|p| p.into_inner());
            f.0 += 1;
            f.1.get_or_insert_with(|| {
                format!(
                    "{} partition {} (source key {:?}): {e}",
                    m.topic(),
                    m.partition(),
                    m.key().map(String::from_utf8_lossy)
                )
            });
        }
    }
}

/// Copies the event log of `config`'s prefix into the event log of `to_prefix`.
///
/// # Errors
/// A target that is missing, the source, or not empty; Kafka errors; a record that is not an
/// event; a failed delivery.
pub fn copy_events(
    config: &Config,
    to_prefix: &str,
    err: &mut impl Write,
) -> anyhow::Result<CopyReport> {
    let from = Topics::new(&config.topic_prefix).events;
    let to = Topics::new(to_prefix).events;
    if to == from {
        anyhow::bail!("{from} is the event log copied from: name another --to-prefix");
    }
    let partitions = crate::topics::partition_counts(config, &[&to])?
        .first()
        .copied()
        .flatten()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{to} does not exist: create it first with the partitions wanted \
                 (HIRESTATE_TOPIC_PREFIX={to_prefix} HIRESTATE_PARTITIONS=N hirestate topics \
                 ensure)"
            )
        })?;
    refuse_unless_empty(config, &to, partitions)?;

    // Keys are placed as `events_partitioner` says (`Config::producer_config`).
    let mut cc = config.producer_config();
    cc.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5");
    let producer: ThreadedProducer<Deliveries> = cc.create_with_context(Deliveries::default())?;
    let mut report = CopyReport {
        from: from.clone(),
        to: to.clone(),
        ..CopyReport::default()
    };
    let read = for_each_record(config, &from, |m, admitted| {
        if let Err(why) = admitted {
            report.not_copied += 1;
            writeln!(err, "not copied: {why}")?;
            return Ok(());
        }
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&to);
        if let Some(k) = m.key() {
            record = record.key(k);
        }
        if let Some(v) = m.payload() {
            record = record.payload(v);
        }
        if let Some(h) = m.headers() {
            record = record.headers(h.detach());
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) => {
                    record = back;
                    producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => anyhow::bail!(
                    "{from} partition {} offset {}: could not be sent to {to}: {e}",
                    m.partition(),
                    m.offset()
                ),
            }
        }
        report.copied += 1;
        Ok(())
    })?;
    report.undecodable = read.undecodable;
    producer.flush(FLUSH_WAIT)?;
    let (failed, first) = std::mem::take(
        &mut *producer
            .context()
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );
    if failed > 0 {
        anyhow::bail!(
            "{failed} records were not delivered to {to} (first: {}); {to} now holds part of \
             the log: delete and recreate it, then copy again",
            first.unwrap_or_default()
        );
    }
    read.report_undecodable(&from, err)?;
    Ok(report)
}

/// Refuses a target partition that holds or held a record (its high watermark is not 0 or
/// not its low one): a copy into it would add to what is there.
fn refuse_unless_empty(config: &Config, topic: &str, partitions: usize) -> anyhow::Result<()> {
    let c: BaseConsumer = config.consumer_config().create()?;
    for p in 0..i32::try_from(partitions)? {
        let (low, high) = c.fetch_watermarks(topic, p, Duration::from_secs(30))?;
        if high > low {
            anyhow::bail!(
                "{topic} partition {p} is not empty ({} records): a copy goes only into an empty \
                 event log (delete and recreate it, then copy again)",
                high - low
            );
        }
    }
    Ok(())
}
