//! What one batch writes, record by record: commands to each target's topic, rejection
//! records, alerts, DLQ records, snapshots — encoded in the configured framing, keyed by
//! `candidate_id`, with headers a sink or an auditor can use without decoding. They are encoded
//! into an [`Outbox`] as the batch folds (which may be while the transaction before it is still
//! committing) and sent, in that order, once the batch's own transaction is open.
//!
//! Every record written here carries a W3C `traceparent` (and the inbound `tracestate`, when
//! there was one): the trace of the input event it derives from — the inbound record's, or one
//! started for the event — with a span id of hirestate's own, derived from the output's identity
//! so that a re-emission after a crash writes the same headers
//! ([`crate::telemetry::trace_context`]). DLQ records continue the trace of the undecodable
//! record when it had a valid one, else start one derived from its topic, partition and offset;
//! snapshots, which no single event causes, start one derived from candidate and offset.
//!
//! A record that cannot be encoded is an [`EncodeError`], naming the record type, the topic and,
//! in the Confluent framing, the registry subject. Only a registry out of reach is worth a
//! retry ([`EncodeError::retryable`]); the batch stops the processor on any other
//! ([`unencodable`]).

use std::sync::{Arc, PoisonError};

use rdkafka::message::{Header, Headers, OwnedHeaders};
use tokio::runtime::Handle;

use crate::codec::{Codec, CodecError, Framing, Record};
use crate::fold::Outcome;
use crate::ingest::restore::SNAPSHOT_OFFSET_HEADER;
use crate::ingest::{OwnedRecord, Refused};
use crate::model::{CandidateState, Event, TargetSystem};
use crate::policy::Policy;
use crate::publish::{Publisher, SendError};
use crate::telemetry::trace_context::{TraceContext, TRACEPARENT, TRACESTATE};
use crate::topics::Topics;

/// Header carrying a command's idempotency key.
pub const COMMAND_ID_HEADER: &str = "hirestate.command_id";
/// Header carrying a command's attempt number (1 for the first emission).
pub const ATTEMPT_HEADER: &str = "hirestate.attempt";
/// Header naming the input event an output derives from.
pub const EVENT_ID_HEADER: &str = "hirestate.event_id";

/// Encodes a batch's outputs into its [`Outbox`].
pub struct Outputs {
    topics: Topics,
    /// The fixed topics, named once (every record of the outbox holds its topic's name).
    events: Arc<str>,
    rejections: Arc<str>,
    alerts: Arc<str>,
    dlq: Arc<str>,
    snapshots: Arc<str>,
    codec: Codec,
    framing: Framing,
    runtime: Handle,
    /// Shared by the tasks folding a batch's partitions.
    command_topics: std::sync::RwLock<std::collections::HashMap<String, Arc<str>>>,
}

/// One encoded record waiting for its transaction.
struct Outgoing {
    topic: Arc<str>,
    /// `None`: the default partitioner (by key).
    partition: Option<i32>,
    key: String,
    value: Vec<u8>,
    headers: OwnedHeaders,
}

/// One outgoing record taken apart: (topic, partition, key, value, headers).
#[cfg(test)]
pub(super) type OutgoingParts = (String, Option<i32>, String, Vec<u8>, Vec<(String, Vec<u8>)>);

/// A batch's records, encoded and in order, waiting for the batch's transaction to be open
/// (sent from the thread that then commits it).
#[derive(Default)]
pub struct Outbox {
    records: Vec<Outgoing>,
    /// The largest record [`Outbox::send`] sent: (topic, key, value bytes). What a batch
    /// refused for a record's size names.
    largest: Option<(Arc<str>, String, usize)>,
}

impl Outbox {
    /// Appends `b`'s records after these.
    pub(super) fn append(&mut self, mut b: Outbox) {
        self.records.append(&mut b.records);
    }

    fn push(
        &mut self,
        topic: &Arc<str>,
        partition: Option<i32>,
        key: &str,
        value: Vec<u8>,
        headers: OwnedHeaders,
    ) {
        self.records.push(Outgoing {
            topic: topic.clone(),
            partition,
            key: key.to_owned(),
            value,
            headers,
        });
    }

    /// The largest record sent so far, as (topic, key, value bytes).
    pub fn largest(&self) -> Option<(String, String, usize)> {
        let (topic, key, bytes) = self.largest.as_ref()?;
        Some((topic.to_string(), key.clone(), *bytes))
    }

    /// Every record as (topic, partition, key, value, headers), in order: what a test
    /// compares.
    #[cfg(test)]
    pub(super) fn contents(&self) -> Vec<OutgoingParts> {
        self.records
            .iter()
            .map(|r| {
                let headers = r
                    .headers
                    .iter()
                    .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                    .collect();
                (
                    r.topic.to_string(),
                    r.partition,
                    r.key.clone(),
                    r.value.clone(),
                    headers,
                )
            })
            .collect()
    }

    /// Sends every record into `p`'s open transaction, in order, and empties the outbox.
    ///
    /// # Errors
    /// The first production failure (the batch is then rolled back).
    pub fn send(&mut self, p: &Publisher) -> Result<(), SendError> {
        for r in self.records.drain(..) {
            if self.largest.as_ref().is_none_or(|l| r.value.len() > l.2) {
                self.largest = Some((r.topic.clone(), r.key.clone(), r.value.len()));
            }
            match r.partition {
                Some(partition) => p.send_to(&r.topic, partition, &r.key, &r.value, r.headers)?,
                None => p.send(&r.topic, &r.key, &r.value, r.headers)?,
            }
        }
        Ok(())
    }
}

/// An output record that could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("encoding a {schema} for {topic}{}: {error}", subject.as_ref().map(|s| format!(" (registry subject {s})")).unwrap_or_default())]
pub struct EncodeError {
    pub schema: &'static str,
    pub topic: String,
    /// The schema registry subject, when the record was encoded through the registry.
    pub subject: Option<String>,
    pub error: CodecError,
}

impl EncodeError {
    /// Whether encoding the same record later may succeed: the registry was out of reach. A
    /// registry that answers with a refusal (e.g. 409, the schema is incompatible with the
    /// subject's earlier ones) refuses the retry too — and the converter caches that answer,
    /// so a retry would not even ask again.
    pub fn retryable(&self) -> bool {
        self.error.retryable()
    }
}

/// Whether `e` is an output record that retrying the batch cannot encode.
pub fn unencodable(e: &anyhow::Error) -> bool {
    e.downcast_ref::<EncodeError>()
        .is_some_and(|e| !e.retryable())
}

fn header(h: OwnedHeaders, key: &str, value: &str) -> OwnedHeaders {
    h.insert(Header {
        key,
        value: Some(value),
    })
}

/// Adds the `traceparent` of hirestate's span for the output named `span_key` in `trace`,
/// and `trace`'s `tracestate`.
fn traced(h: OwnedHeaders, trace: &TraceContext, span_key: &[&str]) -> OwnedHeaders {
    let h = header(h, TRACEPARENT, &trace.child_traceparent(span_key));
    match &trace.tracestate {
        Some(state) => header(h, TRACESTATE, state),
        None => h,
    }
}

impl Outputs {
    /// Outputs in Confluent framing when a registry is configured, Avro single-object otherwise.
    pub fn new(topics: &Topics, codec: &Codec, registry: bool, runtime: Handle) -> Outputs {
        Outputs {
            topics: topics.clone(),
            events: topics.events.as_str().into(),
            rejections: topics.rejections.as_str().into(),
            alerts: topics.alerts.as_str().into(),
            dlq: topics.dlq.as_str().into(),
            snapshots: topics.snapshots.as_str().into(),
            codec: codec.clone(),
            command_topics: Default::default(),
            framing: if registry {
                Framing::Confluent
            } else {
                Framing::SingleObject
            },
            runtime,
        }
    }

    /// The command topic of `target`, named once per target rather than once per command.
    fn command_topic(&self, system: TargetSystem, target: &str) -> Arc<str> {
        let known = self
            .command_topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(target)
            .cloned();
        known.unwrap_or_else(|| {
            let t: Arc<str> = self.topics.commands(system, target).into();
            self.command_topics
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(target.to_owned(), t.clone());
            t
        })
    }

    fn encode<R: Record>(&self, record: &R, topic: &str) -> anyhow::Result<Vec<u8>> {
        let bytes = match self.framing {
            Framing::Confluent => {
                self.runtime
                    .block_on(self.codec.encode(record, Framing::Confluent, topic))
            }
            f => self.codec.encode_local(record, f),
        };
        bytes.map_err(|error| {
            anyhow::Error::new(EncodeError {
                schema: R::SCHEMA,
                topic: topic.to_owned(),
                // TopicNameStrategy (`codec::confluent`).
                subject: (self.framing == Framing::Confluent).then(|| format!("{topic}-value")),
                error,
            })
        })
    }

    /// Adds the commands, the rejection record and the alerts `outcome` carries to `out`, in
    /// the trace of `inbound` (the input record's trace context) or, without one, a trace
    /// started for `event`.
    ///
    /// # Errors
    /// Encoding failures (the batch is then rolled back).
    pub fn emit(
        &self,
        out: &mut Outbox,
        event: &Event,
        inbound: Option<&TraceContext>,
        outcome: &Outcome,
        policy: &Policy,
    ) -> anyhow::Result<()> {
        // Most events emit nothing (acks, duplicates, stale moves): no trace id to derive then.
        if outcome.commands.is_empty()
            && outcome.alerts.is_empty()
            && outcome.decision.reason().is_none()
        {
            return Ok(());
        }
        let key = event.candidate_id.as_str();
        let trace = TraceContext::for_event(inbound, &event.event_id);
        for c in &outcome.commands {
            let topic = self.command_topic(c.system, &c.target);
            let attempt = c.attempt.to_string();
            let h = header(OwnedHeaders::new(), COMMAND_ID_HEADER, &c.command_id);
            let h = header(h, ATTEMPT_HEADER, &attempt);
            let h = header(h, EVENT_ID_HEADER, &event.event_id);
            let h = traced(h, &trace, &["command", &c.command_id, &attempt]);
            out.push(&topic, None, key, self.encode(&**c, &topic)?, h);
        }
        if let Some(r) = outcome.rejection(event, policy) {
            let h = header(OwnedHeaders::new(), EVENT_ID_HEADER, &event.event_id);
            let h = traced(h, &trace, &["rejection", &event.event_id]);
            let value = self.encode(&r, &self.rejections)?;
            out.push(&self.rejections, None, key, value, h);
        }
        for a in &outcome.alerts {
            let h = header(OwnedHeaders::new(), EVENT_ID_HEADER, &event.event_id);
            let h = traced(h, &trace, &["alert", &a.alert_id]);
            out.push(&self.alerts, None, key, self.encode(a, &self.alerts)?, h);
        }
        Ok(())
    }

    /// Adds the `deadline_reached` event of a due timer for partition `partition` of the input
    /// topic (its candidate's partition), where the processor folds it like any event.
    ///
    /// # Errors
    /// Encoding failures (the batch is then rolled back).
    pub fn deadline(&self, out: &mut Outbox, partition: i32, event: &Event) -> anyhow::Result<()> {
        let trace = TraceContext::for_event(None, &event.event_id);
        let h = header(OwnedHeaders::new(), EVENT_ID_HEADER, &event.event_id);
        let h = traced(h, &trace, &["deadline", &event.event_id]);
        let value = self.encode(event, &self.events)?;
        out.push(&self.events, Some(partition), &event.candidate_id, value, h);
        Ok(())
    }

    /// Adds an undecodable record's DLQ record: original key, value and headers, plus error
    /// headers named as Kafka Connect names them. The original trace headers are replaced by
    /// hirestate's (same trace when the original was valid).
    pub fn dlq(&self, out: &mut Outbox, r: &OwnedRecord, why: &Refused) {
        let mut h = OwnedHeaders::new();
        if let Some(orig) = &r.headers {
            for x in orig.iter() {
                if x.key.eq_ignore_ascii_case(TRACEPARENT) || x.key.eq_ignore_ascii_case(TRACESTATE)
                {
                    continue;
                }
                h = h.insert(Header {
                    key: x.key,
                    value: x.value,
                });
            }
        }
        let h = header(h, "__connect.errors.topic", &self.topics.events);
        let h = header(h, "__connect.errors.partition", &r.partition.to_string());
        let h = header(h, "__connect.errors.offset", &r.offset.to_string());
        let h = header(h, "__connect.errors.stage", why.stage);
        let h = header(h, "__connect.errors.exception.class.name", why.class);
        let h = header(h, "__connect.errors.exception.message", &why.message);
        let (partition, offset) = (r.partition.to_string(), r.offset.to_string());
        let trace = r.trace.clone().unwrap_or_else(|| {
            TraceContext::started(&[
                b"hirestate.dlq",
                self.topics.events.as_bytes(),
                partition.as_bytes(),
                offset.as_bytes(),
            ])
        });
        let h = traced(h, &trace, &["dlq", &partition, &offset]);
        let key = r
            .key
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let value = r.value.clone().unwrap_or_default();
        out.push(&self.dlq, None, &key, value, h);
    }

    /// Adds `state`'s snapshot (Avro single-object, whatever the outputs' framing: restore
    /// reads it without the registry), reflecting input offset `reflects` of event log
    /// partition `partition`, to that partition of the snapshot topic: where restore reads it,
    /// whatever partitioner placed the candidate's events (the default partitioner would put
    /// the snapshots of a log keyed by Java clients' murmur2 on other partitions).
    ///
    /// # Errors
    /// Encoding failures.
    pub fn snapshot(
        &self,
        out: &mut Outbox,
        state: &CandidateState,
        partition: i32,
        reflects: i64,
    ) -> anyhow::Result<()> {
        let reflects = reflects.to_string();
        let h = header(OwnedHeaders::new(), SNAPSHOT_OFFSET_HEADER, &reflects);
        let trace = TraceContext::started(&[
            b"hirestate.snapshot",
            state.candidate_id.as_bytes(),
            reflects.as_bytes(),
        ]);
        let h = traced(h, &trace, &["snapshot", &state.candidate_id, &reflects]);
        // Always single-object (schemas compiled in): a restore must not need the registry.
        let bytes = self
            .codec
            .encode_local(state, Framing::SingleObject)
            .map_err(|error| EncodeError {
                schema: CandidateState::SCHEMA,
                topic: self.snapshots.to_string(),
                subject: None,
                error,
            })?;
        out.push(
            &self.snapshots,
            Some(partition),
            &state.candidate_id,
            bytes,
            h,
        );
        Ok(())
    }
}
