//! [`KpiReport`]: the finished numbers, read off a [`KpiAccumulator`] at an as-of time. Its
//! serde form is `hirestate kpi --json`.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use crate::model::{CommandStatus, Timestamp};
use crate::policy::Policy;

use super::accumulator::{ConflictTally, KpiAccumulator, TrackedCommand};

/// Upper bounds (seconds) of the latency histogram's finite buckets; a `+Inf` bucket follows.
/// 900 s is the default write-back SLA.
pub const LATENCY_BUCKETS_SECS: [f64; 10] = [
    1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14_400.0, 86_400.0,
];

/// Every KPI of DESIGN.md "Write-back lifecycle and KPIs"; see the module doc for definitions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KpiReport {
    /// The time the stuck counts are read at; `null` only when there were no events.
    pub as_of: Option<Timestamp>,
    pub policy_version: String,
    /// Well-formed events observed.
    pub events: u64,
    /// Input lines that were not events (a file), or records of a topic that the processor
    /// dead-letters: undecodable, or refused by its admission (key, placement, limits).
    pub malformed_lines: u64,
    pub commands_issued: u64,
    pub confirmed: u64,
    pub failed: u64,
    pub rejected: u64,
    pub pending: u64,
    /// confirmed ÷ commands_issued; `None` when nothing was issued.
    pub writeback_success_rate: Option<f64>,
    /// Incidents (events): rejected `field_conflict` + applied with `latest_wins` overrides.
    pub field_conflicts: u64,
    pub field_conflicts_rejected: u64,
    pub field_conflicts_accepted: u64,
    /// Field → incidents naming it; an event conflicting on two fields counts under both.
    pub field_conflicts_by_field: BTreeMap<String, u64>,
    /// Source system → incidents; sums to `field_conflicts`.
    pub field_conflicts_by_source: BTreeMap<String, u64>,
    /// Field → source → incidents naming the field, split rejected/accepted.
    pub field_conflicts_by_field_source: BTreeMap<String, BTreeMap<String, ConflictTally>>,
    /// Over every confirmed command.
    pub latency_seconds: Latency,
    /// Per (target, op), sorted by target then op.
    pub by_target_op: Vec<TargetOpKpis>,
    /// Non-terminal stage → applications past its dwell SLA (zeros included).
    pub stuck_applications: BTreeMap<String, u64>,
    /// Pending commands older than the write-back SLA.
    pub stuck_commands: u64,
}

/// Write-back latency of a set of confirmed commands, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// Confirmed commands measured.
    pub count: u64,
    /// Nearest rank; `None` when `count` is 0.
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    /// Cumulative: each bucket counts the latencies ≤ its bound.
    pub histogram: Vec<Bucket>,
}

/// One cumulative histogram bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// Upper bound in seconds; `None` is `+Inf` (written `"+Inf"` in JSON).
    #[serde(serialize_with = "bound")]
    pub le: Option<f64>,
    pub count: u64,
}

/// The KPIs of one (target, op).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetOpKpis {
    pub target: String,
    pub op: String,
    pub commands_issued: u64,
    pub confirmed: u64,
    pub failed: u64,
    pub rejected: u64,
    pub pending: u64,
    pub writeback_success_rate: Option<f64>,
    pub latency_seconds: Latency,
    pub stuck_commands: u64,
}

fn bound<S: Serializer>(le: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match le {
        Some(v) => s.serialize_f64(*v),
        None => s.serialize_str("+Inf"),
    }
}

/// The value at nearest rank `percent` (1..=100) of `sorted` (ascending): the element at 1-based
/// rank ⌈percent·n/100⌉. `None` for an empty slice.
pub fn nearest_rank<T: Copy>(sorted: &[T], percent: u32) -> Option<T> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (percent as usize * n).div_ceil(100).clamp(1, n);
    Some(sorted[rank - 1])
}

/// Status counts and latencies of a group of commands.
#[derive(Default)]
struct Tally {
    issued: u64,
    confirmed: u64,
    failed: u64,
    rejected: u64,
    pending: u64,
    stuck: u64,
    /// Microseconds, for exact ordering.
    latencies: Vec<i64>,
}

impl Tally {
    fn add(&mut self, c: &TrackedCommand, as_of: Option<Timestamp>, sla_micros: i64) {
        self.issued += 1;
        match c.status {
            CommandStatus::Pending => {
                self.pending += 1;
                if as_of.is_some_and(|t| t.0.saturating_sub(c.issued_at.0) > sla_micros) {
                    self.stuck += 1;
                }
            }
            CommandStatus::Confirmed => {
                self.confirmed += 1;
                // An applied confirmed ack always sets `acked_at`.
                if let Some(at) = c.acked_at {
                    self.latencies.push(at.0.saturating_sub(c.issued_at.0));
                }
            }
            CommandStatus::Failed => self.failed += 1,
            CommandStatus::Rejected => self.rejected += 1,
        }
    }

    fn success_rate(&self) -> Option<f64> {
        (self.issued > 0).then(|| self.confirmed as f64 / self.issued as f64)
    }

    fn latency(&mut self) -> Latency {
        self.latencies.sort_unstable();
        let secs = |micros: i64| micros as f64 / 1e6;
        let mut histogram: Vec<Bucket> = LATENCY_BUCKETS_SECS
            .iter()
            .map(|&le| Bucket {
                le: Some(le),
                count: self.latencies.iter().filter(|&&l| secs(l) <= le).count() as u64,
            })
            .collect();
        histogram.push(Bucket {
            le: None,
            count: self.latencies.len() as u64,
        });
        Latency {
            count: self.latencies.len() as u64,
            p50: nearest_rank(&self.latencies, 50).map(secs),
            p95: nearest_rank(&self.latencies, 95).map(secs),
            histogram,
        }
    }
}

pub(super) fn build(acc: &KpiAccumulator, policy: &Policy, as_of: Option<Timestamp>) -> KpiReport {
    let sla_micros = policy.writeback.sla_secs.saturating_mul(1_000_000);
    let mut all = Tally::default();
    let mut groups: BTreeMap<(String, &'static str), Tally> = BTreeMap::new();
    for c in acc.commands.values().flat_map(BTreeMap::values) {
        all.add(c, as_of, sla_micros);
        groups
            .entry((c.target.clone(), c.op.as_str()))
            .or_default()
            .add(c, as_of, sla_micros);
    }

    let incidents = acc
        .conflict_events
        .values()
        .fold(ConflictTally::default(), |sum, t| ConflictTally {
            rejected: sum.rejected + t.rejected,
            accepted: sum.accepted + t.accepted,
        });

    let mut stuck_applications: BTreeMap<String, u64> = policy
        .stages
        .values()
        .filter(|s| !s.terminal)
        .map(|s| (s.name.clone(), 0))
        .collect();
    if let Some(as_of) = as_of {
        for app in acc.applications.values().flat_map(BTreeMap::values) {
            let Some(stage) = policy.stages.get(&app.stage) else {
                continue;
            };
            let Some(sla) = stage.dwell_sla_secs.filter(|_| !stage.terminal) else {
                continue;
            };
            if as_of.0.saturating_sub(app.entered_at.0) > sla.saturating_mul(1_000_000) {
                *stuck_applications.entry(app.stage.clone()).or_default() += 1;
            }
        }
    }

    let by_target_op = groups
        .into_iter()
        .map(|((target, op), mut t)| TargetOpKpis {
            target,
            op: op.to_owned(),
            commands_issued: t.issued,
            confirmed: t.confirmed,
            failed: t.failed,
            rejected: t.rejected,
            pending: t.pending,
            writeback_success_rate: t.success_rate(),
            latency_seconds: t.latency(),
            stuck_commands: t.stuck,
        })
        .collect();

    KpiReport {
        as_of,
        policy_version: policy.version().to_owned(),
        events: acc.events,
        malformed_lines: 0,
        commands_issued: all.issued,
        confirmed: all.confirmed,
        failed: all.failed,
        rejected: all.rejected,
        pending: all.pending,
        writeback_success_rate: all.success_rate(),
        field_conflicts: incidents.total(),
        field_conflicts_rejected: incidents.rejected,
        field_conflicts_accepted: incidents.accepted,
        field_conflicts_by_field: acc
            .conflict_fields
            .iter()
            .map(|(f, by)| (f.clone(), by.values().map(|t| t.total()).sum()))
            .collect(),
        field_conflicts_by_source: acc
            .conflict_events
            .iter()
            .map(|(s, t)| (s.clone(), t.total()))
            .collect(),
        field_conflicts_by_field_source: acc.conflict_fields.clone(),
        latency_seconds: all.latency(),
        by_target_op,
        stuck_applications,
        stuck_commands: all.stuck,
    }
}

#[cfg(test)]
mod tests {
    use super::nearest_rank;

    #[test]
    fn nearest_rank_picks_the_ceiling_rank() {
        let v = [10, 20, 30, 40];
        assert_eq!(nearest_rank(&v, 50), Some(20));
        assert_eq!(nearest_rank(&v, 95), Some(40));
        assert_eq!(nearest_rank(&v, 100), Some(40));
        assert_eq!(nearest_rank(&[7], 50), Some(7));
        assert_eq!(nearest_rank::<i64>(&[], 50), None);
    }
}
