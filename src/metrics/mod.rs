//! Metrics for SREs: owns the OpenTelemetry meter provider of a processor run and every
//! instrument it records, the Prometheus text rendering served at `/metrics` on the health port,
//! and the optional OTLP (HTTP/protobuf) export.
//!
//! Invariants:
//! - The counts (events, DLQ records, commands, acks, field conflicts, write-back latency) are
//!   recorded from a batch's [`Tally`] only after its Kafka transaction committed and its states
//!   reached the store, so they agree with the run report's counts and with a replay of the log
//!   ([`crate::kpi`]); a rolled-back batch records nothing. Restores fold without emitting and
//!   count only as restore progress; they move the command-status gauge, which mirrors state.
//! - Every label is bounded: decisions, reject reasons, targets, ops, statuses, dictionary
//!   fields, source systems, topics, partitions, the consumer group. Never a candidate,
//!   application, event or command id.
//! - The wall-clock measurements are the transaction commit duration and the batch's stage
//!   durations ([`StageTimes`]), taken at the edge (in the batch loop, never in the fold);
//!   write-back latency is event time, as the KPIs measure it. It is observed per
//!   applied `confirmed` ack, so it equals the KPI histogram (latest confirming ack per
//!   confirmed command) as long as a command is confirmed once, which is the sink contract.
//!
//! Prometheus text comes from `opentelemetry-prometheus` (the exporter for this SDK version)
//! through a registry of our own, without scope labels.
//!
//! | instrument | kind | attributes |
//! | --- | --- | --- |
//! | `hirestate.events` | counter | `hirestate.decision`, `hirestate.reject.reason` (rejected only) |
//! | `hirestate.dlq.records` | counter | `hirestate.dlq.stage`, `error.type` |
//! | `hirestate.commands` | counter | `hirestate.target`, `hirestate.command.op` |
//! | `hirestate.writeback.acks` | counter | `hirestate.writeback.status`, target, op |
//! | `hirestate.writeback.latency` (s) | histogram, [`LATENCY_BUCKETS_SECS`] | target, op |
//! | `hirestate.writeback.commands` | up-down counter: issued commands by current status; `pending` is the pending gauge | `hirestate.writeback.status`, target, op |
//! | `hirestate.writeback.stuck` | up-down counter (open commands alerted `writeback_stuck`) | — |
//! | `hirestate.applications.stuck` | up-down counter (applications alerted `stuck`, still in the stage) | `hirestate.stage` |
//! | `hirestate.field_conflicts` | counter | `hirestate.field`, `hirestate.source_system`, `hirestate.conflict.outcome` |
//! | `hirestate.batch.size` | histogram | — |
//! | `hirestate.transaction.commit.duration` (s) | histogram | `hirestate.transaction.result` |
//! | `hirestate.batch.stage.duration` (s) | histogram, one observation per stage of each committed batch ([`Stage`]) | `hirestate.batch.stage` |
//! | `hirestate.restore.events` | counter | `messaging.destination.partition.id` |
//! | `hirestate.candidates.in_memory` | gauge: candidate states the processor holds after its last committed batch | — |
//! | `hirestate.candidates.evicted` | counter: states dropped to stay within `max_candidates_in_memory` | — |
//! | `hirestate.consumer.lag` | gauge | `messaging.system`, `messaging.destination.name`, `messaging.destination.partition.id`, `messaging.consumer.group.name` |
//!
//! In Prometheus text, names have dots replaced by `_`, counters end in `_total` and seconds
//! in `_seconds` (e.g. `hirestate_writeback_latency_seconds_bucket`).

mod lag;
mod tally;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::metrics::{
    Counter, Histogram, Meter, MeterProvider, ObservableGauge, UpDownCounter,
};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::Resource;

pub use crate::kpi::LATENCY_BUCKETS_SECS;
pub use lag::{partition_lag, PartitionStats};
pub use tally::{kpi_status, status_before, stuck_of, Stuck, Tally};

const TARGET: &str = "hirestate.target";
const OP: &str = "hirestate.command.op";

/// Batch size bounds (records): powers of about 2.5 up to well past the default batch of 500.
const BATCH_SIZE_BUCKETS: [f64; 11] = [
    1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
];
/// Commit duration bounds (seconds): a healthy commit takes milliseconds; the tail is what
/// matters against the transaction timeout.
const COMMIT_BUCKETS_SECS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Stage duration bounds (seconds): from a fold of a few records to a transaction held up by
/// an outage.
const STAGE_BUCKETS_SECS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A stage of a batch's cycle, the value of `hirestate.batch.stage`. A batch is collected,
/// then folded while the batch before it is in its transaction, then sent in its own
/// transaction while the next one folds, then handed to the store; so a batch's cycle takes
/// about `collect` + the longer of `fold` and `transaction` + `store`, and whichever of those
/// two is longer is what bounds the processor: its own work, or the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Polling the consumer for the batch's records (it includes waiting for them, up to
    /// `batch_max_ms`, when fewer than `batch_max_records` are there).
    Collect,
    /// Decoding, folding and encoding the outputs of the batch.
    Fold,
    /// The batch's transaction: its records sent, their acknowledgements awaited, the offsets
    /// sent and the commit (`hirestate.transaction.commit.duration` is the part after sending).
    Transaction,
    /// Handing the committed states to the store; it waits only when the store's writer is
    /// further behind than it lets commits queue (sled is then what bounds the processor).
    Store,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Stage::Collect,
        Stage::Fold,
        Stage::Transaction,
        Stage::Store,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Collect => "collect",
            Stage::Fold => "fold",
            Stage::Transaction => "transaction",
            Stage::Store => "store",
        }
    }
}

/// Where a committed batch's wall time went, stage by stage ([`Stage`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    pub collect: Duration,
    pub fold: Duration,
    pub transaction: Duration,
    pub store: Duration,
}

impl StageTimes {
    pub fn of(&self, stage: Stage) -> Duration {
        match stage {
            Stage::Collect => self.collect,
            Stage::Fold => self.fold,
            Stage::Transaction => self.transaction,
            Stage::Store => self.store,
        }
    }
}

/// Why metrics could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("prometheus exporter: {0}")]
    Prometheus(String),
    #[error("OTLP exporter for {endpoint}: {reason}")]
    Otlp { endpoint: String, reason: String },
}

/// Consumer lag per (topic, partition), as the last statistics callback saw it.
#[derive(Debug, Default)]
struct LagTable {
    group: String,
    lags: BTreeMap<(String, i32), i64>,
}

/// The instruments of one processor run and where they are read from.
pub struct Metrics {
    provider: SdkMeterProvider,
    registry: prometheus::Registry,
    otlp_endpoint: Option<String>,
    events: Counter<u64>,
    dlq: Counter<u64>,
    commands: Counter<u64>,
    acks: Counter<u64>,
    latency: Histogram<f64>,
    statuses: UpDownCounter<i64>,
    stuck_commands: UpDownCounter<i64>,
    stuck_applications: UpDownCounter<i64>,
    conflicts: Counter<u64>,
    batch_size: Histogram<u64>,
    commit_duration: Histogram<f64>,
    stage_duration: Histogram<f64>,
    restored: Counter<u64>,
    lag: Arc<Mutex<LagTable>>,
    _lag_gauge: ObservableGauge<i64>,
    in_memory: Arc<AtomicU64>,
    _in_memory_gauge: ObservableGauge<u64>,
    evicted: Counter<u64>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("otlp_endpoint", &self.otlp_endpoint)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    /// Prometheus only (no OTLP export).
    fn default() -> Self {
        Metrics::new(None).unwrap_or_else(|e| {
            // Only the OTLP exporter can fail to build, and there is none here; should the
            // Prometheus exporter ever refuse, run without `/metrics` content rather than not
            // at all.
            tracing::error!(error = %e, "metrics unavailable");
            Metrics::build(
                SdkMeterProvider::builder(),
                prometheus::Registry::new(),
                None,
            )
        })
    }
}

impl Metrics {
    /// Metrics scrapeable as Prometheus text ([`Metrics::render`]) and, when `otlp_endpoint` is
    /// given (an OTLP/HTTP collector base URL such as `http://collector:4318`), also exported
    /// there as OTLP protobuf every `OTEL_METRIC_EXPORT_INTERVAL` ms (default 60 s).
    ///
    /// # Errors
    /// An endpoint the OTLP exporter refuses, or a Prometheus exporter that cannot register.
    pub fn new(otlp_endpoint: Option<&str>) -> Result<Metrics, MetricsError> {
        let registry = prometheus::Registry::new();
        let prom = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .scope_info_enabled(false)
            .build()
            .map_err(|e| MetricsError::Prometheus(e.to_string()))?;
        let mut builder = SdkMeterProvider::builder().with_reader(prom);
        let endpoint = otlp_endpoint.map(otlp_metrics_url);
        if let Some(url) = &endpoint {
            use opentelemetry_otlp::WithExportConfig;
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(url.clone())
                .build()
                .map_err(|e| MetricsError::Otlp {
                    endpoint: url.clone(),
                    reason: e.to_string(),
                })?;
            builder = builder.with_reader(PeriodicReader::builder(exporter).build());
        }
        Ok(Metrics::build(builder, registry, endpoint))
    }

    fn build(
        builder: opentelemetry_sdk::metrics::MeterProviderBuilder,
        registry: prometheus::Registry,
        otlp_endpoint: Option<String>,
    ) -> Metrics {
        let provider = builder
            .with_resource(Resource::builder().with_service_name("hirestate").build())
            .build();
        let meter: Meter = provider.meter("hirestate");
        let lag = Arc::new(Mutex::new(LagTable::default()));
        let lag_read = lag.clone();
        let lag_gauge = meter
            .i64_observable_gauge("hirestate.consumer.lag")
            .with_unit("{message}")
            .with_description(
                "Records of the event log a read_committed consumer could read that the \
                 processor's committed state does not reflect yet, per assigned partition",
            )
            .with_callback(move |obs| {
                let t = lag_read.lock().unwrap_or_else(|p| p.into_inner());
                for ((topic, partition), lag) in &t.lags {
                    obs.observe(
                        *lag,
                        &[
                            KeyValue::new("messaging.system", "kafka"),
                            KeyValue::new("messaging.destination.name", topic.clone()),
                            KeyValue::new(
                                "messaging.destination.partition.id",
                                partition.to_string(),
                            ),
                            KeyValue::new("messaging.consumer.group.name", t.group.clone()),
                        ],
                    );
                }
            })
            .build();
        let in_memory = Arc::new(AtomicU64::new(0));
        let in_memory_read = in_memory.clone();
        let in_memory_gauge = meter
            .u64_observable_gauge("hirestate.candidates.in_memory")
            .with_unit("{candidate}")
            .with_description(
                "Candidate states held in memory after the last committed batch (bounded by \
                 max_candidates_in_memory)",
            )
            .with_callback(move |obs| obs.observe(in_memory_read.load(Ordering::Relaxed), &[]))
            .build();
        Metrics {
            events: meter
                .u64_counter("hirestate.events")
                .with_unit("{event}")
                .with_description("Events folded in committed batches, by decision")
                .build(),
            dlq: meter
                .u64_counter("hirestate.dlq.records")
                .with_unit("{record}")
                .with_description("Records dead-lettered in committed batches (never events)")
                .build(),
            commands: meter
                .u64_counter("hirestate.commands")
                .with_unit("{command}")
                .with_description("Write-back commands emitted in committed batches")
                .build(),
            acks: meter
                .u64_counter("hirestate.writeback.acks")
                .with_unit("{ack}")
                .with_description("Write-back acks the fold applied, by status")
                .build(),
            latency: meter
                .f64_histogram("hirestate.writeback.latency")
                .with_unit("s")
                .with_description(
                    "Event time from the causing event to the confirming ack, per applied \
                     confirmed ack",
                )
                .with_boundaries(LATENCY_BUCKETS_SECS.to_vec())
                .build(),
            statuses: meter
                .i64_up_down_counter("hirestate.writeback.commands")
                .with_unit("{command}")
                .with_description(
                    "Commands issued, by write-back status: the latest applied ack's, pending \
                     while none (from the local store at start-up, then restores and committed \
                     batches)",
                )
                .build(),
            stuck_commands: meter
                .i64_up_down_counter("hirestate.writeback.stuck")
                .with_unit("{command}")
                .with_description(
                    "Open commands whose writeback_stuck alert was raised (the write-back SLA \
                     timer fired) and that no ack has closed yet",
                )
                .build(),
            stuck_applications: meter
                .i64_up_down_counter("hirestate.applications.stuck")
                .with_unit("{application}")
                .with_description(
                    "Applications whose stuck alert was raised (the stage's dwell SLA timer \
                     fired) and that have not left the stage since",
                )
                .build(),
            conflicts: meter
                .u64_counter("hirestate.field_conflicts")
                .with_unit("{conflict}")
                .with_description(
                    "Field assertions by a system that is not the field's golden source that had \
                     the policy's effect, per event and field",
                )
                .build(),
            batch_size: meter
                .u64_histogram("hirestate.batch.size")
                .with_unit("{record}")
                .with_description("Records per committed batch")
                .with_boundaries(BATCH_SIZE_BUCKETS.to_vec())
                .build(),
            commit_duration: meter
                .f64_histogram("hirestate.transaction.commit.duration")
                .with_unit("s")
                .with_description("Wall-clock time of commit_transaction (with the offsets)")
                .with_boundaries(COMMIT_BUCKETS_SECS.to_vec())
                .build(),
            stage_duration: meter
                .f64_histogram("hirestate.batch.stage.duration")
                .with_unit("s")
                .with_description(
                    "Wall-clock time of each stage of a committed batch (collect, fold, \
                     transaction, store); fold runs beside the previous batch's transaction",
                )
                .with_boundaries(STAGE_BUCKETS_SECS.to_vec())
                .build(),
            restored: meter
                .u64_counter("hirestate.restore.events")
                .with_unit("{event}")
                .with_description("Events folded by restores (restore progress)")
                .build(),
            lag,
            _lag_gauge: lag_gauge,
            in_memory,
            _in_memory_gauge: in_memory_gauge,
            evicted: meter
                .u64_counter("hirestate.candidates.evicted")
                .with_unit("{candidate}")
                .with_description(
                    "Candidate states dropped from memory to stay within \
                     max_candidates_in_memory (they reload from the store)",
                )
                .build(),
            provider,
            registry,
            otlp_endpoint,
        }
    }

    /// The OTLP metrics URL exported to, if any.
    pub fn otlp_endpoint(&self) -> Option<&str> {
        self.otlp_endpoint.as_deref()
    }

    /// After a committed batch: the candidate states held in memory, and how many were just
    /// dropped to stay within the cap.
    pub fn record_memory(&self, held: u64, evicted: u64) {
        self.in_memory.store(held, Ordering::Relaxed);
        if evicted > 0 {
            self.evicted.add(evicted, &[]);
        }
    }

    /// Records a committed batch (call after its transaction committed and the store took it).
    pub fn record_batch(&self, t: &Tally) {
        for ((decision, reason), n) in &t.events {
            let mut attrs = vec![KeyValue::new("hirestate.decision", *decision)];
            if let Some(r) = reason {
                attrs.push(KeyValue::new("hirestate.reject.reason", *r));
            }
            self.events.add(*n, &attrs);
        }
        for ((stage, class), n) in &t.dlq {
            self.dlq.add(
                *n,
                &[
                    KeyValue::new("hirestate.dlq.stage", *stage),
                    KeyValue::new("error.type", *class),
                ],
            );
        }
        for ((target, op), n) in &t.commands {
            self.commands.add(*n, &target_op(target, op));
        }
        for ((status, target, op), n) in &t.acks {
            let [target, op] = target_op(target, op);
            self.acks.add(
                *n,
                &[
                    KeyValue::new("hirestate.writeback.status", *status),
                    target,
                    op,
                ],
            );
        }
        for (target, op, secs) in &t.latencies {
            self.latency.record(*secs, &target_op(target, op));
        }
        for ((field, source, outcome), n) in &t.conflicts {
            self.conflicts.add(
                *n,
                &[
                    KeyValue::new("hirestate.field", field.clone()),
                    KeyValue::new("hirestate.source_system", *source),
                    KeyValue::new("hirestate.conflict.outcome", *outcome),
                ],
            );
        }
        self.add_statuses(t);
        if t.records > 0 {
            self.batch_size.record(t.records, &[]);
        }
    }

    /// Records a restore's effect on state (the command-status gauge); its events were
    /// counted as progress by [`Metrics::restored_event`] as they were folded.
    pub fn record_restore(&self, t: &Tally) {
        self.add_statuses(t);
    }

    /// Adds the commands of the states in the store at start-up to the command-status gauge.
    pub fn record_stored(&self, t: &Tally) {
        self.add_statuses(t);
    }

    fn add_statuses(&self, t: &Tally) {
        if t.stuck_commands != 0 {
            self.stuck_commands.add(t.stuck_commands, &[]);
        }
        for (stage, n) in &t.stuck_applications {
            if *n != 0 {
                self.stuck_applications
                    .add(*n, &[KeyValue::new("hirestate.stage", stage.clone())]);
            }
        }
        for ((status, target, op), n) in &t.statuses {
            if *n != 0 {
                let [target, op] = target_op(target, op);
                self.statuses.add(
                    *n,
                    &[
                        KeyValue::new("hirestate.writeback.status", *status),
                        target,
                        op,
                    ],
                );
            }
        }
    }

    /// One event folded by a restore of `partition`.
    pub fn restored_event(&self, partition: i32) {
        self.restored.add(
            1,
            &[KeyValue::new(
                "messaging.destination.partition.id",
                partition.to_string(),
            )],
        );
    }

    /// How long `commit_transaction` took (wall clock) and whether it committed.
    pub fn record_commit(&self, took: Duration, committed: bool) {
        let result = if committed { "committed" } else { "failed" };
        self.commit_duration.record(
            took.as_secs_f64(),
            &[KeyValue::new("hirestate.transaction.result", result)],
        );
    }

    /// Where a committed batch's time went: one observation per stage.
    pub fn record_stages(&self, t: &StageTimes) {
        for stage in Stage::ALL {
            self.stage_duration.record(
                t.of(stage).as_secs_f64(),
                &[KeyValue::new("hirestate.batch.stage", stage.as_str())],
            );
        }
    }

    /// Replaces the consumer lag of `topic` with `lags` (partition → records): partitions not
    /// listed (revoked) stop being reported.
    pub fn set_consumer_lag(
        &self,
        group: &str,
        topic: &str,
        lags: impl IntoIterator<Item = (i32, i64)>,
    ) {
        let mut t = self.lag.lock().unwrap_or_else(|p| p.into_inner());
        group.clone_into(&mut t.group);
        t.lags.retain(|(tp, _), _| tp != topic);
        for (p, lag) in lags {
            t.lags.insert((topic.to_owned(), p), lag);
        }
    }

    /// Everything recorded so far in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let families = self.registry.gather();
        prometheus::TextEncoder::new()
            .encode_to_string(&families)
            .unwrap_or_else(|e| format!("# error encoding metrics: {e}\n"))
    }

    /// Exports what is left (OTLP) and stops the readers. Idempotent.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::debug!(error = %e, "metrics shutdown");
        }
    }

    /// Exports now (OTLP), without waiting for the interval.
    ///
    /// # Errors
    /// When an exporter failed.
    pub fn force_flush(&self) -> Result<(), String> {
        self.provider.force_flush().map_err(|e| e.to_string())
    }
}

fn target_op(target: &str, op: &'static str) -> [KeyValue; 2] {
    [
        KeyValue::new(TARGET, target.to_owned()),
        KeyValue::new(OP, op),
    ]
}

/// The OTLP/HTTP metrics URL for a collector `endpoint`: `/v1/metrics` is appended unless the
/// endpoint already names it (the exporter uses a configured URL as given).
fn otlp_metrics_url(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    if e.ends_with("/v1/metrics") {
        e.to_owned()
    } else {
        format!("{e}/v1/metrics")
    }
}

#[cfg(test)]
mod tests;
