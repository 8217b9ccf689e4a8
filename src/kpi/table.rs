//! The terminal rendering of a [`KpiReport`]: plain aligned text, one section per KPI.

use std::io::{self, Write};

use super::report::{KpiReport, Latency};

/// Writes `report` as a human-readable table.
///
/// # Errors
/// I/O errors writing `out`.
pub fn write_table(out: &mut impl Write, r: &KpiReport) -> io::Result<()> {
    let as_of = r.as_of.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339());
    writeln!(
        out,
        "write-back KPIs as of {as_of} (policy {}; {} events, {} malformed lines)",
        r.policy_version, r.events, r.malformed_lines
    )?;

    writeln!(out, "\ncommands")?;
    writeln!(
        out,
        "  {:<28} {:>7} {:>9} {:>6} {:>8} {:>7} {:>7} {:>6} {:>9} {:>9}",
        "target/op",
        "issued",
        "confirmed",
        "failed",
        "rejected",
        "pending",
        "success",
        "stuck",
        "p50 s",
        "p95 s"
    )?;
    for t in &r.by_target_op {
        row(
            out,
            &format!("{}/{}", t.target, t.op),
            [
                t.commands_issued,
                t.confirmed,
                t.failed,
                t.rejected,
                t.pending,
            ],
            t.writeback_success_rate,
            t.stuck_commands,
            &t.latency_seconds,
        )?;
    }
    row(
        out,
        "total",
        [
            r.commands_issued,
            r.confirmed,
            r.failed,
            r.rejected,
            r.pending,
        ],
        r.writeback_success_rate,
        r.stuck_commands,
        &r.latency_seconds,
    )?;

    writeln!(out, "\nwrite-back latency (confirmed commands)")?;
    let mut below = 0;
    for b in &r.latency_seconds.histogram {
        let bound = b.le.map_or_else(|| "+Inf".to_owned(), |le| format!("{le}"));
        writeln!(out, "  <= {:>7} s {:>7}", bound, b.count - below)?;
        below = b.count;
    }

    writeln!(
        out,
        "\nfield conflicts: {} ({} rejected golden_wins, {} accepted latest_wins)",
        r.field_conflicts, r.field_conflicts_rejected, r.field_conflicts_accepted
    )?;
    for (field, sources) in &r.field_conflicts_by_field_source {
        for (source, t) in sources {
            writeln!(
                out,
                "  {field:<28} from {source:<18} {:>5} rejected {:>5} accepted",
                t.rejected, t.accepted
            )?;
        }
    }

    writeln!(out, "\nstuck applications (past the stage's dwell SLA)")?;
    for (stage, n) in &r.stuck_applications {
        writeln!(out, "  {stage:<28} {n:>7}")?;
    }
    writeln!(
        out,
        "stuck commands (pending past the write-back SLA): {}",
        r.stuck_commands
    )
}

fn row(
    out: &mut impl Write,
    name: &str,
    [issued, confirmed, failed, rejected, pending]: [u64; 5],
    rate: Option<f64>,
    stuck: u64,
    latency: &Latency,
) -> io::Result<()> {
    let opt =
        |v: Option<f64>, unit: &str| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}{unit}"));
    writeln!(
        out,
        "  {name:<28} {issued:>7} {confirmed:>9} {failed:>6} {rejected:>8} {pending:>7} {:>7} {stuck:>6} {:>9} {:>9}",
        opt(rate.map(|r| r * 100.0), "%"),
        opt(latency.p50, ""),
        opt(latency.p95, ""),
    )
}
