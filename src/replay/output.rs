//! How replay rows and the summary are printed: JSON lines for machines, a table for people.

use std::io::Write;

use super::{Row, Summary};

/// The replay output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object a line; the summary goes to stderr.
    Jsonl,
    /// A fixed-width table, then the summary.
    Table,
}

pub(super) fn write_table_header(out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<14} {:<12} {:<20} {:<10} {:<22} {:<11} {:<11} commands",
        "event", "candidate", "kind", "decision", "reason", "before", "after"
    )
}

/// One row of the table.
pub fn write_table_row(out: &mut impl Write, row: &Row) -> std::io::Result<()> {
    let commands: Vec<String> = row
        .commands
        .iter()
        .map(|c| format!("{}→{}", c.op().as_str(), c.target))
        .collect();
    writeln!(
        out,
        "{:<14} {:<12} {:<20} {:<10} {:<22} {:<11} {:<11} {}",
        clip(&row.event_id, 14),
        clip(&row.candidate_id, 12),
        row.kind,
        row.decision,
        row.reason.unwrap_or("-"),
        row.stage_before.as_deref().unwrap_or("-"),
        row.stage_after.as_deref().unwrap_or("-"),
        commands.join(", ")
    )
}

/// The summary as a small table: counts by decision and reason, commands per target.
pub fn write_summary_table(out: &mut impl Write, s: &Summary) -> std::io::Result<()> {
    writeln!(
        out,
        "events folded: {}   malformed lines: {}   alerts: {}",
        s.events, s.malformed, s.alerts
    )?;
    writeln!(out, "by decision:")?;
    for (k, v) in &s.by_decision {
        writeln!(out, "  {k:<24} {v:>8}")?;
    }
    if !s.by_reason.is_empty() {
        writeln!(out, "rejected, by reason:")?;
        for (k, v) in &s.by_reason {
            writeln!(out, "  {k:<24} {v:>8}")?;
        }
    }
    if !s.commands_by_target.is_empty() {
        writeln!(out, "commands, by target/op:")?;
        for (k, v) in &s.commands_by_target {
            writeln!(out, "  {k:<24} {v:>8}")?;
        }
    }
    let mut per_stage = std::collections::BTreeMap::<&str, u64>::new();
    for stage in s.final_stages.values() {
        *per_stage.entry(stage).or_default() += 1;
    }
    writeln!(out, "applications, by final stage:")?;
    for (k, v) in per_stage {
        writeln!(out, "  {k:<24} {v:>8}")?;
    }
    Ok(())
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut c: String = s.chars().take(n - 1).collect();
        c.push('…');
        c
    }
}
