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
//!   order: the per-candidate order the fold depends on holds.
//! - Exactly once, resumable: the copy writes in transactions (`transactional.id` and progress
//!   group both [`copy_name`] of the target), each carrying its records and the source offsets
//!   after them, committed to that group with `send_offsets_to_transaction`. A copy that stops
//!   (an error, a kill) leaves the target holding, to a `read_committed` reader, exactly the
//!   records of the offsets it committed, and the next run goes on from those offsets (its
//!   `init_transactions` fences the stopped one and aborts what it left open). So a copy is run
//!   again until it finds nothing new, and the last run, with every writer of the source
//!   stopped, is quick.
//! - A target that holds committed records but no progress of a copy from this source is
//!   refused (something else wrote it); one that holds none is copied into from the start
//!   (progress left by an earlier target of the same name is set aside).
//! - A run says whether the source grew while it ran: each source partition's high watermark
//!   before the first read and after the last commit; a partition that grew may have records
//!   behind where its read ended. Such a run fails, naming the partitions, after committing what
//!   it copied: the next run copies the rest. A run that succeeds copied everything the source
//!   held while it ran.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::Serialize;

use super::tail::for_each_record;
use crate::config::Config;
use crate::topics::Topics;

/// Records a transaction of the copy carries at most, by default.
pub const BATCH_RECORDS: u64 = 20_000;

/// How long a request about the copy's progress or the target waits for the cluster.
const WAIT: Duration = Duration::from_secs(30);

/// Counts of one copy, printed as one JSON line.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct CopyReport {
    pub from: String,
    pub to: String,
    /// Whether it went on from the progress an earlier run committed.
    pub resumed: bool,
    pub copied: u64,
    /// Decoded records the processor dead-letters (each reported on stderr with its position).
    pub not_copied: u64,
    /// Records that do not decode (the processor dead-letters them too; each reported on stderr
    /// with its position).
    pub undecodable: u64,
}

/// The copy's transactional id, and the consumer group its progress is committed in, for the
/// target event log `to`.
pub fn copy_name(to: &str) -> String {
    format!("hirestate-copy.{to}")
}

/// Delivery reports: the first failure (a transaction with one does not commit).
#[derive(Default)]
struct Deliveries {
    failed: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = result {
            let mut f = self.failed.lock().unwrap_or_else(|p| p.into_inner());
            f.get_or_insert_with(|| {
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

/// The copy's writer: a transactional producer into the target, and the source offsets its
/// open transaction will commit.
struct Writer {
    producer: ThreadedProducer<Deliveries>,
    group: ConsumerGroupMetadata,
    from: String,
    to: String,
    wait: Duration,
    open: bool,
    records: u64,
    next: BTreeMap<i32, i64>,
}

impl Writer {
    fn new(
        config: &Config,
        from: &str,
        to: &str,
        group: ConsumerGroupMetadata,
    ) -> anyhow::Result<Writer> {
        // Keys are placed as `events_partitioner` says (`Config::producer_config`).
        let mut cc = config.producer_config();
        cc.set("transactional.id", copy_name(to))
            .set("enable.idempotence", "true")
            .set(
                "transaction.timeout.ms",
                config.transaction_timeout_ms.to_string(),
            )
            .set("linger.ms", "5");
        let producer: ThreadedProducer<Deliveries> =
            cc.create_with_context(Deliveries::default())?;
        let wait = Duration::from_millis(config.transaction_timeout_ms);
        // Fences a copy into `to` still running, and aborts what a stopped one left open.
        producer.init_transactions(wait)?;
        Ok(Writer {
            producer,
            group,
            from: from.to_owned(),
            to: to.to_owned(),
            wait,
            open: false,
            records: 0,
            next: BTreeMap::new(),
        })
    }

    /// Sends `m` (key, value, headers as they are) to the target, in the open transaction.
    fn send(&mut self, m: &BorrowedMessage<'_>) -> anyhow::Result<()> {
        if !self.open {
            self.producer.begin_transaction()?;
            self.open = true;
        }
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.to);
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
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => anyhow::bail!(
                    "{} partition {} offset {}: could not be sent to {}: {e}",
                    self.from,
                    m.partition(),
                    m.offset(),
                    self.to
                ),
            }
        }
        crate::failpoint::hit(crate::failpoint::COPY_AFTER_SEND);
        self.records += 1;
        Ok(())
    }

    /// Notes that the source's `partition` was read up to `next` (what the next transaction
    /// commits as the copy's progress).
    fn read_to(&mut self, partition: i32, next: i64) {
        let at = self.next.entry(partition).or_insert(next);
        *at = (*at).max(next);
    }

    /// Waits until every record sent is acknowledged (or failed).
    fn await_deliveries(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        while self.producer.in_flight_count() > 0 {
            if started.elapsed() > self.wait {
                anyhow::bail!(
                    "records sent to {} not acknowledged within {:?}",
                    self.to,
                    self.wait
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Commits the open transaction with the progress noted; with none noted and nothing sent,
    /// does nothing.
    fn commit(&mut self) -> anyhow::Result<()> {
        if self.next.is_empty() && !self.open {
            return Ok(());
        }
        if !self.open {
            self.producer.begin_transaction()?;
            self.open = true;
        }
        // Not `flush`: rust-rdkafka's polls in steps of 100 ms, which a delivery does not cut
        // short while the producer's own thread serves the reports (every transaction of the
        // copy took 100 ms more).
        self.await_deliveries()?;
        let mut tpl = TopicPartitionList::new();
        for (p, o) in &self.next {
            tpl.add_partition_offset(&self.from, *p, Offset::Offset(*o))?;
        }
        self.producer
            .send_offsets_to_transaction(&tpl, &self.group, self.wait)?;
        if let Err(e) = self.producer.commit_transaction(self.wait) {
            let first = self
                .producer
                .context()
                .failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            anyhow::bail!(
                "committing a transaction of the copy into {}: {e}{}",
                self.to,
                first
                    .map(|f| format!(" (first failed record: {f})"))
                    .unwrap_or_default()
            );
        }
        self.open = false;
        self.records = 0;
        self.next.clear();
        Ok(())
    }
}

/// Copies the event log of `config`'s prefix into the event log of `to_prefix`, in
/// transactions of at most `batch_records` records (at least 1), going on from where an earlier run into
/// the same target ended.
///
/// # Errors
/// A target that is missing, the source, or written by something else; Kafka errors; a record
/// that is not an event; a transaction that does not commit; a source that grew while copied.
/// What was committed before the error stays: the next run goes on from there.
pub fn copy_events(
    config: &Config,
    to_prefix: &str,
    batch_records: u64,
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
             (HIRESTATE_TOPIC_PREFIX={to_prefix} HIRESTATE_PARTITIONS=N hirestate topics ensure)"
        )
    })?;
    let source_partitions = crate::topics::partition_count_of(config, &from)?
        .ok_or_else(|| anyhow::anyhow!(Topics::new(&config.topic_prefix).missing(&from)))?;

    let progress: BaseConsumer = config
        .consumer_config()
        .set("group.id", copy_name(&to))
        .set("enable.auto.commit", "false")
        .create()?;
    let committed = committed_offsets(&progress, &from, source_partitions)?;
    let starts = if holds_committed_record(config, &to, partitions)? {
        if committed.is_empty() {
            anyhow::bail!(
                "{to} already holds records, and no copy from {from} committed any progress \
                 into it: something else wrote them. A copy goes into an empty event log or \
                 goes on with its own (delete and recreate {to}, then copy again)"
            );
        }
        writeln!(err, "resuming the copy of {from} into {to} at offsets {committed:?} (partition: next offset)")?;
        committed
    } else {
        if !committed.is_empty() {
            writeln!(
                err,
                "{to} holds no record: copying {from} from its start (the progress committed \
                 by a copy into an earlier {to}, {committed:?}, is set aside)"
            )?;
        }
        BTreeMap::new()
    };
    let source = watermarks(config, &from, source_partitions)?;
    refuse_outside(&from, &to, &starts, &source)?;
    let before: Vec<i64> = source.iter().map(|(_, high)| *high).collect();

    let group = progress
        .group_metadata()
        .ok_or_else(|| anyhow::anyhow!("no group metadata for {}", copy_name(&to)))?;
    let mut writer = Writer::new(config, &from, &to, group)?;
    let mut report = CopyReport {
        from: from.clone(),
        to: to.clone(),
        resumed: !starts.is_empty(),
        ..CopyReport::default()
    };
    let read = for_each_record(config, &from, &starts, err, |m, admitted, err| {
        match admitted {
            Ok(_) => {
                writer.send(m)?;
                report.copied += 1;
            }
            Err(why) => {
                report.not_copied += 1;
                writeln!(err, "not copied: {why}")?;
            }
        }
        writer.read_to(m.partition(), m.offset() + 1);
        if writer.records >= batch_records {
            writer.commit()?;
        }
        Ok(())
    });
    // Undecodable records after the last one handed on: the progress passes them too.
    let read = read.and_then(|read| {
        for (p, next) in &read.next {
            writer.read_to(*p, *next);
        }
        writer.commit()?;
        Ok(read)
    });
    let read = match read {
        Ok(read) => read,
        Err(e) => {
            // Best effort: the next run's `init_transactions` aborts it too.
            if writer.open {
                let _ = writer.producer.abort_transaction(writer.wait);
            }
            return Err(e.context(format!(
                "the copy into {to} stopped; what it committed stays, and the next run goes on \
                 from there"
            )));
        }
    };
    report.undecodable = read.undecodable;
    let after = high_watermarks(config, &from, source_partitions)?;
    refuse_if_grown(&from, &to, &before, &after)?;
    read.report_undecodable(&from, err)?;
    Ok(report)
}

/// The copy's committed progress: per source partition, the offset the next run starts at.
fn committed_offsets(
    progress: &BaseConsumer,
    from: &str,
    partitions: usize,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..i32::try_from(partitions)? {
        tpl.add_partition(from, p);
    }
    Ok(progress
        .committed_offsets(tpl, WAIT)?
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect())
}

/// Whether `topic` holds a record a `read_committed` reader sees (aborted ones, which a copy
/// that stopped may have left, do not count).
fn holds_committed_record(config: &Config, topic: &str, partitions: usize) -> anyhow::Result<bool> {
    let mut tpl = TopicPartitionList::new();
    let mut unread = 0;
    for (p, (low, high)) in watermarks(config, topic, partitions)?
        .into_iter()
        .enumerate()
    {
        if high > low {
            tpl.add_partition_offset(topic, i32::try_from(p)?, Offset::Beginning)?;
            unread += 1;
        }
    }
    if unread == 0 {
        return Ok(false);
    }
    let c: BaseConsumer = config
        .log_reader_config(format!("hirestate-copy-check-{}", std::process::id()), true)
        .create()?;
    c.assign(&tpl)?;
    let started = Instant::now();
    while unread > 0 {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(_)) => return Ok(true),
            Some(Err(KafkaError::PartitionEOF(_))) => unread -= 1,
            Some(Err(e)) => return Err(e.into()),
            None if started.elapsed() > WAIT => {
                anyhow::bail!(
                    "{topic}: no answer within {WAIT:?} while checking whether it holds records"
                )
            }
            None => {}
        }
    }
    Ok(false)
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

/// Refuses to go on from progress a source partition no longer holds: below its low watermark
/// (retention deleted records not copied yet) or past its high one (the source was deleted and
/// recreated since).
fn refuse_outside(
    from: &str,
    to: &str,
    starts: &BTreeMap<i32, i64>,
    source: &[(i64, i64)],
) -> anyhow::Result<()> {
    for (p, at) in starts {
        let Some((low, high)) = usize::try_from(*p).ok().and_then(|i| source.get(i)) else {
            continue;
        };
        let why = if at < low {
            "retention deleted records of it that were not copied yet"
        } else if at > high {
            "it ends before that: it was deleted and recreated since"
        } else {
            continue;
        };
        anyhow::bail!(
            "the copy into {to} committed progress up to offset {at} of {from} partition {p}, \
             which holds offsets {low} to {high}: {why}. The copy cannot go on; delete and \
             recreate {to}, then copy again"
        );
    }
    Ok(())
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
        "{from} grew while it was copied ({}): what was written meanwhile may not be in {to} \
         yet. What this run copied is committed: run the copy again and it goes on from where \
         this one ended. Stop what writes to {from} (the feeds, and the processors on it, which \
         write deadline events there) before the last run, so that it finds nothing written \
         while it runs",
        grown.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{refuse_if_grown, refuse_outside};

    #[test]
    fn progress_the_source_no_longer_holds_is_refused() {
        let source = [(0, 10), (5, 8)];
        let ok = BTreeMap::from([(0, 0), (1, 8)]);
        refuse_outside("a", "b", &ok, &source).expect("both within the source");
        let deleted = BTreeMap::from([(1, 4)]);
        let e = refuse_outside("a", "b", &deleted, &source)
            .expect_err("below the low watermark")
            .to_string();
        assert!(
            e.contains("up to offset 4 of a partition 1") && e.contains("retention"),
            "{e}"
        );
        let recreated = BTreeMap::from([(0, 11)]);
        let e = refuse_outside("a", "b", &recreated, &source)
            .expect_err("past the high watermark")
            .to_string();
        assert!(
            e.contains("recreated") && e.contains("delete and recreate b"),
            "{e}"
        );
    }

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
                && e.contains("run the copy again"),
            "{e}"
        );
    }
}
