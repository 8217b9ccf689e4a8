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
use rdkafka::message::{Headers, Message};
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
}

/// What to read.
#[derive(Debug, Clone)]
pub struct TailOptions {
    pub topic: String,
    pub from_beginning: bool,
    /// Stop at the end of every partition (as of the start).
    pub until_end: bool,
    /// Stop after this long without a record (when not `until_end`).
    pub idle_exit: Option<Duration>,
    /// How long a record waits for a schema registry out of reach before the tail stops.
    pub registry_wait: Duration,
    /// Set to end the tail (a signal, `cli`): it stops within one poll (0.2 s), with what it
    /// read written.
    pub stop: Option<Arc<AtomicBool>>,
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
/// when the registry refuses the credentials or is still out of reach then.
fn decode_waiting(
    codec: &Codec,
    m: &impl Message,
    bytes: &[u8],
    (rt, wait): (&tokio::runtime::Handle, Duration),
    err: &mut impl Write,
) -> anyhow::Result<Result<Value, CodecError>> {
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
            other => return Ok(other),
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
        Ok(n) => (0..i32::try_from(n)?).collect(),
        Err(e) => return Err(crate::topics::reach::topic_error(config, &opts.topic, e)),
    };
    let c: BaseConsumer<EofReaderContext> = config
        .consumer_config()
        .set("group.id", format!("hirestate-tail-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create_with_context(EofReaderContext)?;
    let mut tpl = TopicPartitionList::new();
    let mut ends: BTreeMap<i32, bool> = BTreeMap::new();
    for p in &partitions {
        let start = if opts.from_beginning {
            Offset::Beginning
        } else {
            Offset::End
        };
        tpl.add_partition_offset(&opts.topic, *p, start)?;
        let (low, high) = c.fetch_watermarks(&opts.topic, *p, Duration::from_secs(10))?;
        ends.insert(*p, !opts.from_beginning || high <= low);
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
                let value = match m.payload() {
                    None => Ok(Value::Null),
                    Some(b) => {
                        decode_waiting(&codec, &m, b, (rt.handle(), opts.registry_wait), err)?
                    }
                };
                match value {
                    Ok(v) => {
                        report.records += 1;
                        let row = json!({
                            "topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
                            "key": m.key().map(String::from_utf8_lossy), "headers": headers, "value": v,
                        });
                        serde_json::to_writer(&mut *out, &row)?;
                        writeln!(out)?;
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
            // Caught up, or nothing came within the poll: what was read goes out now (a
            // following tail would otherwise hold the last records until 8 KiB piled up).
            Some(Err(KafkaError::PartitionEOF(p))) => {
                ends.insert(p, true);
                out.flush()?;
            }
            Some(Err(e)) => writeln!(err, "consumer error: {e}")?,
            None => {
                out.flush()?;
                if let Some(idle) = opts.idle_exit {
                    if last.elapsed() >= idle {
                        break;
                    }
                }
            }
        }
    }
    Ok(report)
}

/// An event log read for folding ([`read_events`]).
#[derive(Debug, Default)]
pub struct EventLog {
    /// The events the processor folds, partition by partition in offset order.
    pub events: Vec<Event>,
    /// Records that did not decode (the processor dead-letters them).
    pub undecodable: u64,
    /// Records that decoded but the processor dead-letters (`ingest::validate`: key,
    /// placement, limits), each as `<topic> partition P offset O: why`, in log order.
    pub refused: Vec<String>,
}

impl EventLog {
    /// Writes a `malformed:` line to `err` for the undecodable records (their count) and for
    /// each refused one, as `replay` and `kpi` report a file's malformed lines; returns how
    /// many records that is.
    ///
    /// # Errors
    /// Writing to `err`.
    pub fn report_malformed(&self, topic: &str, err: &mut impl Write) -> std::io::Result<u64> {
        if self.undecodable > 0 {
            writeln!(
                err,
                "malformed: {} records of {topic} do not decode (the processor dead-letters \
                 them)",
                self.undecodable
            )?;
        }
        for why in &self.refused {
            writeln!(err, "malformed: {why}")?;
        }
        Ok(self.undecodable + self.refused.len() as u64)
    }
}

/// Every event of `topic` (read_committed, partition by partition in offset order), decoded as
/// `tail` decodes them and admitted as the processor admits them (`ingest::validate`, with
/// `config.events_partitioner` and the topic's partition count), so what a tool folds from a
/// topic is what the processor folded.
///
/// # Errors
/// Kafka errors, or a decoded row that is not an event.
pub fn read_events(config: &Config, topic: &str) -> anyhow::Result<EventLog> {
    let partitions = crate::topics::partition_counts(config, &[topic])?
        .first()
        .copied()
        .flatten()
        .ok_or_else(|| {
            anyhow::anyhow!(crate::topics::Topics::new(&config.topic_prefix).missing(topic))
        })?;
    let placement = Placement {
        partitioner: config.events_partitioner,
        partitions,
    };
    let opts = TailOptions {
        topic: topic.to_owned(),
        from_beginning: true,
        until_end: true,
        idle_exit: Some(Duration::from_secs(5)),
        registry_wait: REGISTRY_WAIT,
        stop: None,
    };
    let mut rows = Vec::new();
    let report = tail(config, &opts, &mut rows, &mut std::io::sink())?;
    let mut log = Vec::new();
    for line in rows.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let mut row: serde_json::Value = serde_json::from_slice(line)?;
        let (partition, offset) = (row["partition"].as_i64(), row["offset"].as_i64());
        let (Some(partition), Some(offset)) = (partition, offset) else {
            anyhow::bail!("{topic}: a row without its partition and offset");
        };
        let event: Event = serde_json::from_value(row["value"].take()).map_err(|e| {
            anyhow::anyhow!("{topic} partition {partition} offset {offset}: not an event: {e}")
        })?;
        let key = row["key"].as_str().map(str::as_bytes);
        let admitted = validate(&event, key, i32::try_from(partition)?, &placement)
            .map(|()| event)
            .map_err(|why| {
                format!(
                    "{topic} partition {partition} offset {offset}: {} ({}; the processor \
                     dead-letters it)",
                    why.message, why.class
                )
            });
        log.push(((partition, offset), admitted));
    }
    log.sort_by_key(|(at, _)| *at);
    let mut read = EventLog {
        undecodable: report.undecodable,
        ..EventLog::default()
    };
    for (_, admitted) in log {
        match admitted {
            Ok(e) => read.events.push(e),
            Err(why) => read.refused.push(why),
        }
    }
    Ok(read)
}
