//! `hirestate tail --topic T`: decodes any topic hirestate reads or writes, in any framing,
//! back to JSON lines (read_committed). The record type follows from the topic's name; a record
//! that does not decode is reported with its partition and offset and the tail goes on — but
//! not for a reason of the registry's: a registry out of reach is waited for (up to
//! [`TailOptions::registry_wait`], [`REGISTRY_WAIT`] by default, a record), and one that
//! refuses the credentials stops the tail, since no record could be decoded. A registry still
//! out of reach when the wait ends stops the tail too, naming the record it stopped at: what
//! reads through `tail` (`replay`/`kpi --bootstrap`) must not go on without records. (Before,
//! both reported every record as undecodable and went on: an audit read during a registry
//! outage silently left records out; then an outage longer than the wait still left each
//! record out after its 30 s.)

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};

use crate::codec::{Codec, CodecError};
use crate::config::{Config, REGISTRY_CREDENTIALS};
use crate::ingest::placement::Placement;
use crate::ingest::validate;
use crate::model::{Alert, CandidateState, Command, Event, Rejection};
use crate::telemetry::EofReaderContext;

/// Counts of one `tail` run.
#[derive(Debug, Default, PartialEq)]
pub struct TailReport {
    pub records: u64,
    pub undecodable: u64,
    /// Per partition, the offset after the last record read (decoded or not): where a read
    /// that goes on from here starts. A partition of which nothing was read is not in it.
    pub next: BTreeMap<i32, i64>,
}

/// What to read.
#[derive(Debug, Clone)]
pub struct TailOptions {
    pub topic: String,
    pub from_beginning: bool,
    /// Stop at the end of every partition (as of the start).
    pub until_end: bool,
    /// Stop after this long without a record; with `until_end`, that is an error if a
    /// partition has not reached its end (the rest would be left out without a word).
    pub idle_exit: Option<Duration>,
    /// How long a record waits for a schema registry out of reach before the tail stops.
    pub registry_wait: Duration,
    /// Set to end the tail (a signal, `cli`): it stops within one poll (0.2 s), with what it
    /// read written.
    pub stop: Option<Arc<AtomicBool>>,
    /// Read only this partition (`None`: every partition of the topic).
    pub partition: Option<i32>,
}

/// How long one record waits, by default, for a schema registry out of reach before the tail
/// stops.
pub const REGISTRY_WAIT: Duration = Duration::from_secs(30);

fn decode_as(
    codec: &Codec,
    topic: &str,
    bytes: &[u8],
    rt: &tokio::runtime::Handle,
) -> Result<Value, CodecError> {
    fn to_json<R: serde::Serialize>(r: Result<R, CodecError>) -> Result<Value, CodecError> {
        r.and_then(|v| {
            serde_json::to_value(v).map_err(|e| CodecError::Json {
                detail: e.to_string(),
            })
        })
    }
    let name = topic.rsplit_once(".v1").map(|(n, _)| n).unwrap_or(topic);
    if name.ends_with("hiring.events") {
        to_json(rt.block_on(codec.decode::<Event>(bytes)))
    } else if name.contains(".commands.") {
        to_json(rt.block_on(codec.decode::<Command>(bytes)))
    } else if name.ends_with("hiring.rejections") {
        to_json(rt.block_on(codec.decode::<Rejection>(bytes)))
    } else if name.ends_with("hiring.alerts") {
        to_json(rt.block_on(codec.decode::<Alert>(bytes)))
    } else if name.ends_with("hiring.snapshots") {
        to_json(rt.block_on(codec.decode::<CandidateState>(bytes)))
    } else {
        // DLQ and unknown topics: the raw bytes, as text where they are text.
        Ok(json!({ "raw": String::from_utf8_lossy(bytes) }))
    }
}

/// [`decode_as`], waiting out a registry out of reach for up to `wait` (module doc); `Err`
/// when the registry refuses the credentials or is still out of reach then; `None` when
/// `stop` is set while it waits (an interrupt ends a wait as it ends the tail).
fn decode_waiting(
    codec: &Codec,
    m: &impl Message,
    bytes: &[u8],
    (rt, wait, stop): (&tokio::runtime::Handle, Duration, Option<&AtomicBool>),
    err: &mut impl Write,
) -> anyhow::Result<Option<Result<Value, CodecError>>> {
    // (A wait past what an `Instant` can hold, e.g. `--registry-wait` of u64::MAX seconds,
    // waits for ever instead of overflowing.)
    let deadline = Instant::now().checked_add(wait);
    loop {
        match decode_as(codec, m.topic(), bytes, rt) {
            Err(e) if e.is_configuration() => anyhow::bail!(
                "{}/{}@{}: {e}; stopping, since no record can be decoded so (the credentials are \
                 {REGISTRY_CREDENTIALS})",
                m.topic(),
                m.partition(),
                m.offset()
            ),
            Err(e) if e.retryable() && deadline.is_some_and(|d| Instant::now() >= d) => {
                anyhow::bail!(
                    "{}/{}@{}: the schema registry is still out of reach after {} s: {e}; \
                     stopping here rather than leaving records out (run again once it answers)",
                    m.topic(),
                    m.partition(),
                    m.offset(),
                    wait.as_secs()
                )
            }
            Err(e) if e.retryable() && stop.is_some_and(|s| s.load(Ordering::Relaxed)) => {
                return Ok(None)
            }
            Err(e) if e.retryable() => {
                writeln!(
                    err,
                    "waiting for the schema registry at {}/{}@{}: {e}",
                    m.topic(),
                    m.partition(),
                    m.offset()
                )?;
                std::thread::sleep(Duration::from_secs(1));
            }
            other => return Ok(Some(other)),
        }
    }
}

/// Reads `opts.topic` and writes one JSON object a line to `out`:
/// `{topic, partition, offset, key, headers, value}`.
///
/// # Errors
/// Consumer creation or metadata failures, I/O, and a schema registry that refuses the
/// credentials.
pub fn tail(
    config: &Config,
    opts: &TailOptions,
    out: &mut impl Write,
    err: &mut impl Write,
) -> anyhow::Result<TailReport> {
    read(config, opts, None, err, |read, _| match read {
        Read::Record(m, value) => {
            let headers: BTreeMap<String, String> = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| {
                            (
                                x.key.to_owned(),
                                x.value
                                    .map(|v| String::from_utf8_lossy(v).into_owned())
                                    .unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let row = json!({
                "topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
                "key": m.key().map(String::from_utf8_lossy), "headers": headers, "value": value,
            });
            serde_json::to_writer(&mut *out, &row)?;
            writeln!(out)?;
            Ok(())
        }
        // Caught up, or nothing came within the poll: what was read goes out now (a following
        // tail would otherwise hold the last records until 8 KiB piled up).
        Read::Idle => Ok(out.flush()?),
    })
}

/// What [`read`] hands on: a record that decoded, with its value; or a pause (a partition
/// caught up, or a poll that came back empty).
enum Read<'m> {
    Record(&'m BorrowedMessage<'m>, Value),
    Idle,
}

/// Reads `opts.topic` as [`tail`] says (from offset `start` of every partition read, when
/// given, instead of its beginning), handing each decoded record (and each pause) to `on`, with
/// `err` for what it has to say; records that do not decode are counted and reported to `err`
/// with their position.
fn read<W: Write>(
    config: &Config,
    opts: &TailOptions,
    start: Option<i64>,
    err: &mut W,
    mut on: impl FnMut(Read<'_>, &mut W) -> anyhow::Result<()>,
) -> anyhow::Result<TailReport> {
    let codec = Codec::configured(config)?;
    // Decoding blocks on the registry through a `Handle`: a current-thread runtime would not
    // drive that I/O (see `app::run`).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(codec.check_registry())?.log();
    // Read first with the credentials watched (`topics::reach`): refused ones are said so.
    let md = crate::topics::reach::metadata(config, &opts.topic, Duration::from_secs(10))?;
    let partitions: Vec<i32> = match crate::topics::partition_count(&md) {
        Ok(n) => (0..i32::try_from(n)?)
            .filter(|p| opts.partition.is_none_or(|only| only == *p))
            .collect(),
        Err(e) => return Err(crate::topics::reach::topic_error(config, &opts.topic, e)),
    };
    let c: BaseConsumer<EofReaderContext> = config
        .log_reader_config(
            format!("hirestate-tail-{}", std::process::id()),
            opts.until_end,
        )
        .create_with_context(EofReaderContext)?;
    let mut tpl = TopicPartitionList::new();
    let mut ends: BTreeMap<i32, bool> = BTreeMap::new();
    for p in &partitions {
        let at = match (start, opts.from_beginning) {
            (Some(o), _) => Offset::Offset(o),
            (None, true) => Offset::Beginning,
            (None, false) => Offset::End,
        };
        tpl.add_partition_offset(&opts.topic, *p, at)?;
        let (low, high) = c.fetch_watermarks(&opts.topic, *p, Duration::from_secs(10))?;
        ends.insert(
            *p,
            !opts.from_beginning || high <= start.unwrap_or(low).max(low),
        );
    }
    c.assign(&tpl)?;
    let mut report = TailReport::default();
    let mut last = Instant::now();
    loop {
        if opts.until_end && ends.values().all(|done| *done)
            || opts
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
        {
            break;
        }
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                last = Instant::now();
                let stop = opts.stop.as_deref();
                let value = match m.payload() {
                    None => Ok(Value::Null),
                    Some(b) => {
                        match decode_waiting(
                            &codec,
                            &m,
                            b,
                            (rt.handle(), opts.registry_wait, stop),
                            err,
                        )? {
                            Some(decoded) => decoded,
                            None => break,
                        }
                    }
                };
                match value {
                    Ok(v) => {
                        report.records += 1;
                        on(Read::Record(&m, v), err)?;
                    }
                    Err(e) => {
                        report.undecodable += 1;
                        writeln!(
                            err,
                            "undecodable: {}/{}@{}: {e}",
                            m.topic(),
                            m.partition(),
                            m.offset()
                        )?;
                    }
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                ends.insert(p, true);
                on(Read::Idle, err)?;
            }
            Some(Err(e)) => writeln!(err, "consumer error: {e}")?,
            None => {
                on(Read::Idle, err)?;
                match opts.idle_exit {
                    Some(idle) if last.elapsed() >= idle && opts.until_end => {
                        // Ending here would leave the rest out without a word.
                        let behind: Vec<i32> = ends
                            .iter()
                            .filter(|(_, done)| !**done)
                            .map(|(p, _)| *p)
                            .collect();
                        anyhow::bail!(
                            "{}: no record came for {} s before partitions {behind:?} reached \
                             their end; stopping rather than leave the rest out (run again once \
                             the cluster answers)",
                            opts.topic,
                            idle.as_secs()
                        );
                    }
                    Some(idle) if last.elapsed() >= idle => break,
                    _ => {}
                }
            }
        }
    }
    // The consumer's position: after the last record it handed out, decoded or not.
    report.next = c
        .position()?
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect();
    Ok(report)
}

/// What [`for_each_event`] read of an event log besides the events.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LogRead {
    /// Records that did not decode (the processor dead-letters them).
    pub undecodable: u64,
    /// Per partition, the offset after the last record read ([`TailReport::next`]).
    pub next: BTreeMap<i32, i64>,
}

impl LogRead {
    /// Writes the `malformed:` line for the undecodable records (their count), as `replay` and
    /// `kpi` report a file's malformed lines; returns how many records that is.
    ///
    /// # Errors
    /// Writing to `err`.
    pub fn report_undecodable(&self, topic: &str, err: &mut impl Write) -> std::io::Result<u64> {
        if self.undecodable > 0 {
            writeln!(
                err,
                "malformed: {} records of {topic} do not decode (the processor dead-letters \
                 them)",
                self.undecodable
            )?;
        }
        Ok(self.undecodable)
    }
}

/// Every event of `topic` (read_committed, partition by partition in offset order), decoded as
/// `tail` decodes them and admitted as the processor admits them (`ingest::validate`, with
/// `config.events_partitioner` and the topic's partition count), so what a tool folds from a
/// topic is what the processor folded: each handed to `f` as it is read, `Ok` the event or
/// `Err` why the processor dead-letters it (`<topic> partition P offset O: why`).
///
/// What the read has to say goes to `err`, and `f` is handed it too: each record that does not
/// decode, with its position (`undecodable: <topic>/<partition>@<offset>: why`), waits for the
/// schema registry, consumer errors. (Before, they went nowhere: an audit or a copy counted
/// its undecodable records without saying where they were.)
///
/// Nothing of the log is held: memory stays flat however long the log is (before, `replay` and
/// `kpi --bootstrap` held every record twice, as JSON text and as an event, then sorted them).
///
/// # Errors
/// Kafka errors, a decoded row that is not an event, or an error of `f`.
pub fn for_each_event<W: Write>(
    config: &Config,
    topic: &str,
    err: &mut W,
    mut f: impl FnMut(Result<Event, String>, &mut W) -> anyhow::Result<()>,
) -> anyhow::Result<LogRead> {
    for_each_record(config, topic, &BTreeMap::new(), err, |_, admitted, err| {
        f(admitted, err)
    })
}

/// [`for_each_event`], handing `f` each decoded record's message too (its key, bytes and
/// headers as they are in the log), each partition read from its offset in `starts` where it
/// has one (from its beginning otherwise).
///
/// # Errors
/// As [`for_each_event`].
pub fn for_each_record<W: Write>(
    config: &Config,
    topic: &str,
    starts: &BTreeMap<i32, i64>,
    err: &mut W,
    mut f: impl FnMut(&BorrowedMessage<'_>, Result<Event, String>, &mut W) -> anyhow::Result<()>,
) -> anyhow::Result<LogRead> {
    let partitions = crate::topics::partition_count_of(config, topic)?.ok_or_else(|| {
        anyhow::anyhow!(crate::topics::Topics::new(&config.topic_prefix).missing(topic))
    })?;
    let placement = Placement {
        partitioner: config.events_partitioner,
        partitions,
    };
    let mut read_so_far = LogRead::default();
    for partition in 0..i32::try_from(partitions)? {
        let opts = TailOptions {
            topic: topic.to_owned(),
            from_beginning: true,
            until_end: true,
            // As long as a restore reader waits without progress: a cluster that pauses for
            // less is waited out; one that pauses for longer stops the read with an error.
            idle_exit: Some(Duration::from_secs(60)),
            registry_wait: REGISTRY_WAIT,
            stop: None,
            partition: Some(partition),
        };
        let start = starts.get(&partition).copied();
        let report = read(config, &opts, start, err, |r, err| {
            let Read::Record(m, value) = r else {
                return Ok(());
            };
            let offset = m.offset();
            let event: Event = serde_json::from_value(value).map_err(|e| {
                anyhow::anyhow!("{topic} partition {partition} offset {offset}: not an event: {e}")
            })?;
            let admitted = validate(&event, m.key(), partition, &placement)
                .map(|()| event)
                .map_err(|why| {
                    format!(
                        "{topic} partition {partition} offset {offset}: {} ({}; the processor \
                         dead-letters it)",
                        why.message, why.class
                    )
                });
            f(m, admitted, err)
        })?;
        read_so_far.undecodable += report.undecodable;
        read_so_far.next.extend(report.next);
    }
    Ok(read_so_far)
}

/// The events of `topic` the processor folds ([`for_each_event`], collected): for small logs
/// (the demo's, which counts what the processor dead-lettered itself: the read says nothing).
///
/// # Errors
/// As [`for_each_event`].
pub fn read_events(config: &Config, topic: &str) -> anyhow::Result<Vec<Event>> {
    let mut events = Vec::new();
    for_each_event(config, topic, &mut std::io::sink(), |admitted, _| {
        events.extend(admitted.ok());
        Ok(())
    })?;
    Ok(events)
}

#[cfg(test)]
mod tests {
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

    use super::*;

    /// A two-partition topic of 10 records each on a mock cluster, and a read of it to the end
    /// that gives up after 1 s without a record.
    fn two_partitions() -> (
        MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
        Config,
        TailOptions,
    ) {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("log", 2, 1).expect("topic");
        let config = Config {
            bootstrap: cluster.bootstrap_servers(),
            ..Config::default()
        };
        let producer: BaseProducer = config.producer_config().create().expect("producer");
        for p in 0..2 {
            for i in 0..10 {
                let value = format!("record {i}");
                producer
                    .send(
                        BaseRecord::<str, str>::to("log")
                            .partition(p)
                            .payload(&value),
                    )
                    .map_err(|(e, _)| e)
                    .expect("send");
            }
        }
        producer.flush(Duration::from_secs(10)).expect("flush");
        let opts = TailOptions {
            topic: "log".into(),
            from_beginning: true,
            until_end: true,
            idle_exit: Some(Duration::from_secs(1)),
            registry_wait: REGISTRY_WAIT,
            stop: None,
            partition: None,
        };
        (cluster, config, opts)
    }

    /// A read to the end (`tail --until-end`, `replay`/`kpi --bootstrap`) that hears nothing
    /// for its idle limit, here because every fetch fails, stops with an error naming the
    /// partitions not at their end: ending there as if at the end would leave the rest out
    /// without a word (what it did before). The same read of a cluster that answers reads
    /// every record and ends without an error.
    #[test]
    fn a_read_to_the_end_that_hears_nothing_names_the_partitions_not_at_their_end() {
        let (cluster, config, opts) = two_partitions();
        let read = tail(&config, &opts, &mut Vec::new(), &mut Vec::new()).expect("a read");
        // Not events: each is undecodable, and counted so.
        assert_eq!(read.records + read.undecodable, 20);

        cluster.request_errors(
            RDKafkaApiKey::Fetch,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT; 200],
        );
        let err = tail(&config, &opts, &mut Vec::new(), &mut Vec::new())
            .expect_err("a read that heard nothing must not end as if at the end");
        let said = format!("{err:#}");
        assert!(
            said.contains("no record came for 1 s before partitions [0, 1] reached their end"),
            "{said}"
        );
    }
}
