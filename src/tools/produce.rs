//! `hirestate produce --from-file FILE|- --topic T`: what a vendor runs to test its feed. Each
//! JSON line is checked exactly as `replay` checks it, encoded in the configured framing and
//! produced keyed by `candidate_id` (idempotent producer, acks=all). Bad lines are reported with
//! their number and skipped; the rest still go out. A delivery that fails stops it, saying how
//! many events before it were delivered and that producing the input again is safe (the
//! processor knows an event it already has by its `event_id`); a refused one, what to grant.

use std::io::{BufRead, Write};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::codec::{Codec, Framing};
use crate::config::Config;
use crate::ingest::placement::producer_mismatch;
use crate::replay::read_events;

/// Counts of one `produce` run.
#[derive(Debug, Default, PartialEq)]
pub struct ProduceReport {
    pub produced: u64,
    pub bad_lines: u64,
}

/// Produces every good line of `input` to `topic`.
///
/// # Errors
/// Producer creation, I/O, or a delivery that fails (reported with its event id).
pub async fn produce(
    config: &Config,
    input: impl BufRead,
    topic: &str,
    framing: Framing,
    err: &mut impl Write,
) -> anyhow::Result<ProduceReport> {
    let codec = Codec::configured(config)?;
    if framing == Framing::Confluent {
        codec.check_registry().await?.log();
    }
    let mut cc = config.producer_config();
    if topic == crate::topics::Topics::new(&config.topic_prefix).events {
        let setting = cc.get("partitioner");
        let mismatch = producer_mismatch(setting, config.events_partitioner);
        if let Some(why) = mismatch {
            writeln!(err, "warning: {why}")?;
        }
    }
    let producer: FutureProducer = cc
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()?;
    let mut report = ProduceReport::default();
    let mut pending = Vec::new();
    for parsed in read_events(input) {
        let event = match parsed? {
            Ok(e) => e,
            Err(e) => {
                report.bad_lines += 1;
                writeln!(err, "skipped: {e}")?;
                continue;
            }
        };
        let bytes = codec.encode(&event, framing, topic).await?;
        // Enqueue now, in line order (per-candidate order is the product's contract); only the
        // delivery reports are awaited later.
        let mut record = FutureRecord::to(topic)
            .key(&event.candidate_id)
            .payload(&bytes);
        let delivery = loop {
            match producer.send_result(record) {
                Ok(d) => break d,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => anyhow::bail!("event {}: cannot enqueue: {e}", event.event_id),
            }
        };
        pending.push((event.event_id.clone(), delivery));
        if pending.len() >= 10_000 {
            drain(config, topic, &mut pending, &mut report.produced).await?;
        }
    }
    drain(config, topic, &mut pending, &mut report.produced).await?;
    Ok(report)
}

type Pending = Vec<(String, DeliveryFuture)>;

/// Awaits `pending`'s deliveries in input order, counting them into `delivered`.
///
/// # Errors
/// At the first that failed: which event, why, and what was delivered before it.
async fn drain(
    config: &Config,
    topic: &str,
    pending: &mut Pending,
    delivered: &mut u64,
) -> anyhow::Result<()> {
    for (event_id, h) in pending.drain(..) {
        let why = match h.await {
            Ok(Ok(_)) => {
                *delivered += 1;
                continue;
            }
            Ok(Err((
                KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed),
                _,
            ))) => format!(
                "the Kafka cluster at {:?} refused this principal WRITE on {topic} \
                 (TopicAuthorizationFailed): grant it WRITE on {topic}",
                config.bootstrap
            ),
            Ok(Err((e, _))) => e.to_string(),
            Err(_) => "the producer went away before delivery".to_owned(),
        };
        anyhow::bail!(
            "event {event_id} was not delivered to {topic}: {why}. {delivered} events of the \
             input before it were delivered, and some after it may have been: producing the \
             input again is safe, as the processor takes an event it already has for a \
             duplicate (by its event_id)"
        );
    }
    Ok(())
}
