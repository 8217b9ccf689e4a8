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
//! - The source must not grow while it is copied: its partitions are read one after the other,
//!   each to the end it has when the read reaches it, so a record written meanwhile (a feed
//!   still producing, a processor still firing deadline events into the log) may be behind
//!   where its partition's read ended. The copy compares each source partition's high
//!   watermark before the first read and after the last delivery, and fails, naming the
//!   partitions that grew, rather than report a copy that may lack events.

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
    /// Records that do not decode (the processor dead-letters them too; each reported on stderr
    /// with its position).
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
    let partitions = crate::topics::partition_count_of(config, &to)?.ok_or_else(|| {
        anyhow::anyhow!(
            "{to} does not exist: create it first with the partitions wanted \
                 (HIRESTATE_TOPIC_PREFIX={to_prefix} HIRESTATE_PARTITIONS=N hirestate topics \
                 ensure)"
        )
    })?;
    refuse_unless_empty(config, &to, partitions)?;
    let source_partitions = crate::topics::partition_count_of(config, &from)?
        .ok_or_else(|| anyhow::anyhow!(Topics::new(&config.topic_prefix).missing(&from)))?;
    let before = high_watermarks(config, &from, source_partitions)?;

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
    let read = for_each_record(config, &from, err, |m, admitted, err| {
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
    let after = high_watermarks(config, &from, source_partitions)?;
    refuse_if_grown(&from, &to, &before, &after)?;
    read.report_undecodable(&from, err)?;
    Ok(report)
}

/// Each partition's (low, high) watermarks, in partition order.
fn watermarks(config: &Config, topic: &str, partitions: usize) -> anyhow::Result<Vec<(i64, i64)>> {
    let c: BaseConsumer = config.consumer_config().create()?;
    (0..i32::try_from(partitions)?)
        .map(|p| Ok(c.fetch_watermarks(topic, p, Duration::from_secs(30))?))
        .collect()
}

/// Each partition's high watermark, in partition order.
fn high_watermarks(config: &Config, topic: &str, partitions: usize) -> anyhow::Result<Vec<i64>> {
    Ok(watermarks(config, topic, partitions)?
        .into_iter()
        .map(|(_, high)| high)
        .collect())
}

/// Fails when a source partition's high watermark moved between `before` (the copy's start)
/// and `after` (its end): records written meanwhile may not be in the copy.
fn refuse_if_grown(from: &str, to: &str, before: &[i64], after: &[i64]) -> anyhow::Result<()> {
    let grown: Vec<String> = before
        .iter()
        .zip(after)
        .enumerate()
        .filter(|(_, (b, a))| a > b)
        .map(|(p, (b, a))| format!("partition {p} from offset {b} to {a}"))
        .collect();
    if grown.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "{from} grew while it was copied ({}): what was written meanwhile may not be in {to}. \
         Stop what writes to {from} (the feeds, and the processors on it, which write deadline \
         events there), delete and recreate {to}, and copy again",
        grown.join(", ")
    )
}

/// Refuses a target partition that holds or held a record (its high watermark is not 0 or
/// not its low one): a copy into it would add to what is there.
fn refuse_unless_empty(config: &Config, topic: &str, partitions: usize) -> anyhow::Result<()> {
    for (p, (low, high)) in watermarks(config, topic, partitions)?
        .into_iter()
        .enumerate()
    {
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

#[cfg(test)]
mod tests {
    use super::refuse_if_grown;

    #[test]
    fn a_source_that_grew_during_the_copy_fails_it_naming_the_partitions() {
        refuse_if_grown("a", "b", &[3, 7], &[3, 7]).expect("nothing written meanwhile");
        let e = refuse_if_grown(
            "p.hiring.events.v1",
            "q.hiring.events.v1",
            &[3, 7, 0],
            &[3, 9, 2],
        )
        .expect_err("two partitions grew")
        .to_string();
        assert!(
            e.contains("p.hiring.events.v1 grew while it was copied")
                && e.contains("partition 1 from offset 7 to 9, partition 2 from offset 0 to 2")
                && !e.contains("partition 0")
                && e.contains("delete and recreate q.hiring.events.v1"),
            "{e}"
        );
    }
}
