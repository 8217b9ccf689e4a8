//! Which numbers of a [`KpiReport`] each chart of the HTML report shows, as [`BarChart`]s. A
//! chart with nothing to show is an `Err` carrying the sentence the report prints instead.

use std::collections::{BTreeMap, BTreeSet};

use plotters::style::RGBColor;

use crate::kpi::{Bucket, KpiReport};
use crate::policy::{format_duration, Policy};

use super::bars::{BarChart, Orientation, Series};

const CONFIRMED: RGBColor = RGBColor(22, 163, 74);
const FAILED: RGBColor = RGBColor(220, 38, 38);
const REJECTED: RGBColor = RGBColor(124, 58, 237);
const PENDING: RGBColor = RGBColor(148, 163, 184);
const ACCEPTED: RGBColor = RGBColor(217, 119, 6);
const STUCK: RGBColor = RGBColor(234, 88, 12);
/// One colour per (target, op) in the latency histogram, cycled.
const PALETTE: [RGBColor; 8] = [
    RGBColor(37, 99, 235),
    RGBColor(22, 163, 74),
    RGBColor(217, 119, 6),
    RGBColor(124, 58, 237),
    RGBColor(8, 145, 178),
    RGBColor(219, 39, 119),
    RGBColor(101, 163, 13),
    RGBColor(71, 85, 105),
];

/// Why a chart is left out.
pub(super) type NoData = &'static str;

/// Confirmed commands per latency bucket (the report's cumulative histogram, differenced),
/// stacked by (target, op).
pub(super) fn latency(r: &KpiReport) -> Result<BarChart, NoData> {
    let all = &r.latency_seconds.histogram;
    if r.latency_seconds.count == 0 || all.is_empty() {
        return Err("no confirmed command, so no write-back latency");
    }
    let same_buckets =
        |h: &[Bucket]| h.len() == all.len() && h.iter().zip(all).all(|(a, b)| a.le == b.le);
    let mut series: Vec<Series> = r
        .by_target_op
        .iter()
        .filter(|t| t.latency_seconds.count > 0)
        .enumerate()
        .map(|(i, t)| Series {
            name: format!("{}/{}", t.target, t.op),
            color: PALETTE[i % PALETTE.len()],
            values: per_bucket(&t.latency_seconds.histogram),
        })
        .collect();
    let split_count: u64 = r.by_target_op.iter().map(|t| t.latency_seconds.count).sum();
    // A report assembled by other means may not split cleanly; then show the total alone.
    if series.is_empty()
        || split_count != r.latency_seconds.count
        || !r
            .by_target_op
            .iter()
            .all(|t| t.latency_seconds.count == 0 || same_buckets(&t.latency_seconds.histogram))
    {
        series = vec![Series {
            name: "confirmed".to_owned(),
            color: PALETTE[0],
            values: per_bucket(all),
        }];
    }
    let mut previous = None;
    let categories = all
        .iter()
        .map(|b| {
            let label = match (b.le, previous) {
                (Some(le), _) => format!("≤ {}", seconds(le)),
                (None, Some(prev)) => format!("> {}", seconds(prev)),
                (None, None) => "any".to_owned(),
            };
            previous = b.le;
            label
        })
        .collect();
    Ok(BarChart {
        orientation: Orientation::Vertical,
        categories,
        totals: per_bucket(all).iter().map(|n| format!("{n}")).collect(),
        series,
        value_axis: "confirmed commands".to_owned(),
        value_max: None,
    })
}

/// Each target's commands by status, as shares of those issued; the label is the success rate.
pub(super) fn success_by_target(r: &KpiReport) -> Result<BarChart, NoData> {
    // target → [issued, confirmed, failed, rejected, pending]
    let mut by_target: BTreeMap<&str, [u64; 5]> = BTreeMap::new();
    for t in &r.by_target_op {
        let sum = by_target.entry(t.target.as_str()).or_default();
        for (s, v) in sum.iter_mut().zip([
            t.commands_issued,
            t.confirmed,
            t.failed,
            t.rejected,
            t.pending,
        ]) {
            *s += v;
        }
    }
    by_target.retain(|_, n| n[0] > 0);
    if by_target.is_empty() {
        return Err("no command issued, so no success rate");
    }
    let share = |k: usize| -> Vec<f64> {
        by_target
            .values()
            .map(|n| 100.0 * n[k] as f64 / n[0] as f64)
            .collect()
    };
    Ok(BarChart {
        orientation: Orientation::Horizontal,
        categories: by_target.keys().map(|t| (*t).to_owned()).collect(),
        series: [
            ("confirmed", CONFIRMED, 1),
            ("failed", FAILED, 2),
            ("rejected", REJECTED, 3),
            ("pending", PENDING, 4),
        ]
        .into_iter()
        .map(|(name, color, k)| Series {
            name: name.to_owned(),
            color,
            values: share(k),
        })
        .collect(),
        totals: by_target
            .values()
            .map(|n| format!("{:.1}% of {}", 100.0 * n[1] as f64 / n[0] as f64, n[0]))
            .collect(),
        value_axis: "% of commands issued (first attempts)".to_owned(),
        value_max: Some(100.0),
    })
}

/// Incidents naming each field, split rejected (`golden_wins`) / accepted (`latest_wins`).
pub(super) fn conflicts_by_field(r: &KpiReport) -> Result<BarChart, NoData> {
    let fields: BTreeSet<&str> = r
        .field_conflicts_by_field
        .keys()
        .chain(r.field_conflicts_by_field_source.keys())
        .map(String::as_str)
        .collect();
    if fields.is_empty() {
        return Err("no field conflict");
    }
    let tally = |f: &str| {
        r.field_conflicts_by_field_source
            .get(f)
            .map_or((0, 0), |by_source| {
                by_source
                    .values()
                    .fold((0, 0), |(rej, acc), t| (rej + t.rejected, acc + t.accepted))
            })
    };
    let total = |f: &str| {
        r.field_conflicts_by_field
            .get(f)
            .copied()
            .unwrap_or_else(|| {
                let (rej, acc) = tally(f);
                rej + acc
            })
    };
    let series = if r.field_conflicts_by_field_source.is_empty() {
        vec![Series {
            name: "incidents".to_owned(),
            color: FAILED,
            values: fields.iter().map(|f| total(f) as f64).collect(),
        }]
    } else {
        vec![
            Series {
                name: "rejected (golden_wins)".to_owned(),
                color: FAILED,
                values: fields.iter().map(|f| tally(f).0 as f64).collect(),
            },
            Series {
                name: "accepted (latest_wins)".to_owned(),
                color: ACCEPTED,
                values: fields.iter().map(|f| tally(f).1 as f64).collect(),
            },
        ]
    };
    Ok(BarChart {
        orientation: Orientation::Horizontal,
        categories: fields.iter().map(|f| (*f).to_owned()).collect(),
        totals: fields.iter().map(|f| total(f).to_string()).collect(),
        series,
        value_axis: "incidents naming the field".to_owned(),
        value_max: None,
    })
}

/// Applications past their stage's dwell SLA, stages in the policy's rank order.
pub(super) fn stuck_by_stage(r: &KpiReport, policy: &Policy) -> Result<BarChart, NoData> {
    if r.as_of.is_none() {
        return Err("no events, so no time in stage to measure");
    }
    let mut ordered: Vec<(Option<u32>, &str)> = r
        .stuck_applications
        .keys()
        .map(|s| (policy.stages.get(s).and_then(|s| s.rank), s.as_str()))
        .collect();
    ordered.sort_by_key(|&(rank, name)| (rank.unwrap_or(u32::MAX), name));
    if ordered.is_empty() {
        return Err("no stage with a dwell SLA");
    }
    let counts: Vec<u64> = ordered
        .iter()
        .map(|(_, s)| r.stuck_applications[*s])
        .collect();
    Ok(BarChart {
        orientation: Orientation::Horizontal,
        categories: ordered.iter().map(|(_, s)| (*s).to_owned()).collect(),
        series: vec![Series {
            name: "stuck".to_owned(),
            color: STUCK,
            values: counts.iter().map(|&n| n as f64).collect(),
        }],
        totals: counts.iter().map(u64::to_string).collect(),
        value_axis: "applications past the stage's dwell SLA".to_owned(),
        value_max: None,
    })
}

/// The count in each bucket alone, from a cumulative histogram.
fn per_bucket(h: &[Bucket]) -> Vec<f64> {
    let mut below = 0;
    h.iter()
        .map(|b| {
            let n = b.count.saturating_sub(below);
            below = b.count;
            n as f64
        })
        .collect()
}

/// A bucket bound: `15m` for whole seconds, `0.5s` otherwise.
fn seconds(le: f64) -> String {
    if le >= 1.0 && le.fract() == 0.0 && le < i64::MAX as f64 {
        format_duration(le as i64)
    } else {
        format!("{le}s")
    }
}
