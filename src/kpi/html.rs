//! `hirestate kpi --html FILE`: a [`KpiReport`] and the policy's state machine as one
//! self-contained HTML page for people who will not read JSON — the headline numbers and the
//! per (target, op) numbers as tables, then five pictures: the write-back latency histogram,
//! the success rate by target, field conflicts by field, stuck applications by stage, and the
//! state machine itself.
//!
//! Invariants: the page needs nothing but itself — inline CSS, inline SVG (drawn with plotters'
//! SVG backend), no script, no reference to any URL (the SVG namespace attribute plotters writes
//! is dropped: an HTML parser gives an inline `<svg>` its namespace anyway). Every text taken from
//! the report or the policy is escaped, here or by the SVG backend. A chart with nothing to show
//! is a "no data" sentence, never a panic; the output is a pure function of its inputs.
//!
//! Layout: `charts` picks each chart's numbers, `bars` draws a stacked bar chart, `machine`
//! draws the state machine; this file writes the document around them.

mod bars;
mod charts;
mod machine;

use std::io::{self, Write};

use crate::policy::Policy;

use super::report::KpiReport;

/// The page's look; no `url(…)` anywhere.
const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1e293b;\
margin:2rem auto;max-width:68rem;padding:0 1rem;line-height:1.4}\
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem}\
.meta{color:#475569;margin-top:0}\
table{border-collapse:collapse;margin:.5rem 0}\
th,td{border:1px solid #cbd5e1;padding:.25rem .6rem;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
thead th{background:#f1f5f9}\
figure{margin:1.5rem 0;padding:.75rem;border:1px solid #e2e8f0;border-radius:6px}\
figcaption{font-weight:600;margin-bottom:.5rem}\
figure svg{max-width:100%;height:auto}\
.nodata{color:#64748b;font-style:italic}";

/// Writes the whole page for `report`, drawing `policy`'s state machine.
///
/// # Errors
/// I/O errors writing `out`, or a drawing error of plotters (none is expected: the charts are
/// drawn into strings).
pub fn write_html(out: &mut impl Write, report: &KpiReport, policy: &Policy) -> io::Result<()> {
    let as_of = report
        .as_of
        .map_or_else(|| "n/a (no events)".to_owned(), |t| t.to_rfc3339());
    writeln!(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>")?;
    writeln!(out, "<meta charset=\"utf-8\">")?;
    writeln!(
        out,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    )?;
    writeln!(
        out,
        "<title>hirestate write-back KPIs as of {}</title>",
        escape(&as_of)
    )?;
    writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>")?;
    writeln!(out, "<h1>Write-back KPIs</h1>")?;
    writeln!(
        out,
        "<p class=\"meta\">as of {} · policy {} ({}) · {} events, {} malformed lines · \
         computed by replaying the log in event time</p>",
        escape(&as_of),
        escape(&report.policy_version),
        escape(policy.digest()),
        report.events,
        report.malformed_lines
    )?;

    headline(out, report, &as_of)?;
    by_target_op(out, report)?;

    figure(
        out,
        "chart-latency",
        "Write-back latency of confirmed commands (ack − causing event, event time)",
        charts::latency(report),
    )?;
    figure(
        out,
        "chart-success",
        "Write-back success rate by target (confirmed ÷ issued)",
        charts::success_by_target(report),
    )?;
    figure(
        out,
        "chart-conflicts",
        "Field conflicts by field",
        charts::conflicts_by_field(report),
    )?;
    figure(
        out,
        "chart-stuck",
        "Stuck applications by stage (past the stage's dwell SLA at the as-of time)",
        charts::stuck_by_stage(report, policy),
    )?;
    state_machine(out, policy)?;

    writeln!(
        out,
        "<p class=\"meta\">Definitions: DESIGN.md \"Write-back lifecycle and KPIs\" and the \
         documentation of the <code>kpi</code> module; the same numbers as \
         <code>hirestate kpi --json</code>.</p>"
    )?;
    writeln!(out, "</body>\n</html>")
}

fn headline(out: &mut impl Write, r: &KpiReport, as_of: &str) -> io::Result<()> {
    let stuck_apps: u64 = r.stuck_applications.values().sum();
    let rows: [(&str, String); 18] = [
        ("as of", as_of.to_owned()),
        ("policy version", r.policy_version.clone()),
        ("events", r.events.to_string()),
        ("malformed lines", r.malformed_lines.to_string()),
        ("commands issued", r.commands_issued.to_string()),
        ("confirmed", r.confirmed.to_string()),
        ("failed", r.failed.to_string()),
        ("rejected", r.rejected.to_string()),
        ("pending", r.pending.to_string()),
        ("write-back success rate", percent(r.writeback_success_rate)),
        ("write-back latency p50", secs(r.latency_seconds.p50)),
        ("write-back latency p95", secs(r.latency_seconds.p95)),
        (
            "latency measured (confirmed)",
            r.latency_seconds.count.to_string(),
        ),
        ("field conflicts", r.field_conflicts.to_string()),
        (
            "field conflicts rejected (golden_wins)",
            r.field_conflicts_rejected.to_string(),
        ),
        (
            "field conflicts accepted (latest_wins)",
            r.field_conflicts_accepted.to_string(),
        ),
        ("stuck applications", stuck_apps.to_string()),
        ("stuck commands", r.stuck_commands.to_string()),
    ];
    writeln!(out, "<h2>Headline</h2>\n<table id=\"headline\">")?;
    for (label, value) in rows {
        writeln!(
            out,
            "<tr><th scope=\"row\">{}</th><td class=\"n\">{}</td></tr>",
            escape(label),
            escape(&value)
        )?;
    }
    writeln!(out, "</table>")
}

fn by_target_op(out: &mut impl Write, r: &KpiReport) -> io::Result<()> {
    writeln!(out, "<h2>By target and operation</h2>")?;
    if r.by_target_op.is_empty() {
        return writeln!(out, "<p class=\"nodata\">no data: no command issued</p>");
    }
    writeln!(
        out,
        "<table id=\"by-target-op\">\n<thead><tr><th>target</th><th>op</th><th>issued</th>\
         <th>confirmed</th><th>failed</th><th>rejected</th><th>pending</th><th>success</th>\
         <th>stuck</th><th>p50</th><th>p95</th></tr></thead>\n<tbody>"
    )?;
    for t in &r.by_target_op {
        let numbers = [
            t.commands_issued.to_string(),
            t.confirmed.to_string(),
            t.failed.to_string(),
            t.rejected.to_string(),
            t.pending.to_string(),
            percent(t.writeback_success_rate),
            t.stuck_commands.to_string(),
            secs(t.latency_seconds.p50),
            secs(t.latency_seconds.p95),
        ];
        write!(
            out,
            "<tr><td>{}</td><td>{}</td>",
            escape(&t.target),
            escape(&t.op)
        )?;
        for n in &numbers {
            write!(out, "<td class=\"n\">{}</td>", escape(n))?;
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(out, "</tbody>\n</table>")
}

/// One chart: its SVG, or why there is none.
fn figure(
    out: &mut impl Write,
    id: &str,
    caption: &str,
    chart: Result<bars::BarChart, charts::NoData>,
) -> io::Result<()> {
    writeln!(
        out,
        "<figure id=\"{id}\">\n<figcaption>{}</figcaption>",
        escape(caption)
    )?;
    match chart {
        Ok(chart) => writeln!(out, "{}", inline_svg(&bars::render(&chart)?, caption))?,
        Err(why) => writeln!(out, "<p class=\"nodata\">no data: {}</p>", escape(why))?,
    }
    writeln!(out, "</figure>")
}

/// The picture of the stages and transitions, and the transitions with their authorities and
/// owners as a table (the picture has no room for them).
fn state_machine(out: &mut impl Write, policy: &Policy) -> io::Result<()> {
    let caption = format!(
        "The hiring state machine (policy {}): {} stages, {} transitions",
        policy.version(),
        policy.stages.len(),
        policy.transitions.len()
    );
    writeln!(
        out,
        "<figure id=\"chart-state-machine\">\n<figcaption>{}</figcaption>",
        escape(&caption)
    )?;
    writeln!(out, "{}", inline_svg(&machine::render(policy)?, &caption))?;
    writeln!(
        out,
        "<table id=\"transitions\">\n<thead><tr><th>from</th><th>to</th>\
         <th>authority (source system)</th><th>owner</th></tr></thead>\n<tbody>"
    )?;
    for t in &policy.transitions {
        let authority: Vec<&str> = t.authority.iter().map(|a| a.as_str()).collect();
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&t.from),
            escape(&t.to),
            escape(&authority.join(", ")),
            escape(&t.owner)
        )?;
    }
    writeln!(out, "</tbody>\n</table>\n</figure>")
}

/// Plotters' standalone SVG document made fit to sit inside HTML: without the namespace URL
/// (implied for inline `<svg>`), with an accessible name.
fn inline_svg(svg: &str, label: &str) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
        .replacen(
            "<svg ",
            &format!("<svg role=\"img\" aria-label=\"{}\" ", escape(label)),
            1,
        )
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "n/a".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// Seconds exactly as the JSON report has them (microsecond precision, shortest form).
fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v} s"))
}

/// `s` safe as HTML text and inside a double- or single-quoted attribute.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_text_and_attributes() {
        assert_eq!(
            escape(r#"<a href="x" title='y'>&amp;</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(escape("plain · text"), "plain · text");
    }

    #[test]
    fn inline_svg_drops_the_namespace_url_and_names_the_picture() {
        let svg = "<svg width=\"1\" height=\"1\" viewBox=\"0 0 1 1\" \
                   xmlns=\"http://www.w3.org/2000/svg\">\n</svg>\n";
        let inlined = inline_svg(svg, "a <b>");
        assert!(!inlined.contains("http"), "{inlined}");
        assert!(
            inlined.starts_with("<svg role=\"img\" aria-label=\"a &lt;b&gt;\" width=\"1\""),
            "{inlined}"
        );
    }
}
