//! Write-back KPIs (DESIGN.md "Write-back lifecycle and KPIs"), computed in event time from
//! the fold's own outcomes, so a replay of the log and the live processor count the same way.
//!
//! The module owns one pure, deterministic type, [`KpiAccumulator`]: feed it every
//! `(event, outcome)` pair in log order — `hirestate kpi` does so from a JSON-lines file through
//! [`crate::replay::Replayer`], the live processor can do so from its batches — then ask for a
//! [`KpiReport`] at an as-of time. Nothing here reads a clock or does I/O except [`replay_file`]
//! and [`command`], the CLI edge. A report renders as a terminal table ([`write_table`]), as
//! JSON (its serde form), or as a self-contained HTML page with charts ([`write_html`]).
//!
//! # Definitions
//!
//! Only what the fold decided counts: a duplicate or rejected event contributes nothing except
//! as stated for field conflicts below.
//!
//! - **Command issued**: a distinct `(candidate_id, command_id)` among the commands the fold
//!   emitted. A re-emission after a retryable failure carries the same id and is not counted
//!   again (first attempts only). Command ids are scoped per candidate exactly as the fold's
//!   `unknown_command` check scopes them; with unique event ids this is "distinct command ids".
//! - **Status** of a command: the status of the last ack (in log order, as the projection's
//!   `CommandRecord` keeps it) the fold applied (`confirmed`, `failed`, `rejected`); no applied
//!   ack → `pending`. Acks the fold rejected
//!   (`unknown_command`, `unauthorized_source`, …) or found duplicate are ignored.
//!   `confirmed + failed + rejected + pending = commands_issued`.
//! - **Write-back success rate** = confirmed ÷ commands issued; `null` when nothing was issued.
//! - **Write-back latency** of a confirmed command = the `occurred_at` of its latest (confirming)
//!   ack − the `occurred_at` of the event that caused the command ([`crate::model::Command`]'s
//!   `occurred_at`), in seconds; it includes any retries. p50 and p95 are by nearest rank over
//!   the confirmed commands (sorted ascending, the value at 1-based rank ⌈p·n/100⌉); `null` when
//!   none is confirmed. The histogram is cumulative (Prometheus `le` convention) over
//!   [`LATENCY_BUCKETS_SECS`] and `+Inf`. All of these are also given per (target, op).
//! - **Field-conflict incidents**: one per event in which the fold found a field asserted by a
//!   system that is not its golden source, and which had the policy's effect: an event rejected
//!   `field_conflict` (`golden_wins`), or an applied or stale event that took a `latest_wins`
//!   value (an accepted override). A `latest_wins` field riding on a refused event was not
//!   accepted and does not count. Given in total, split rejected/accepted, and by source (which
//!   sums to the total). The by-field breakdown counts each field named by a counted incident
//!   (the rejecting `golden_wins` fields, or the accepted `latest_wins` ones), so an event
//!   conflicting on two fields counts once in the total and once under each field.
//! - **Stuck application**: an application in a non-terminal stage that has a dwell SLA, whose
//!   time in stage at the as-of time — as-of − `occurred_at` of the applied event that moved it
//!   into the stage (`application_created` for the initial stage) — is strictly greater than
//!   the SLA. Counted by stage; every non-terminal stage of the policy is listed, zeros
//!   included. Terminal applications are never stuck.
//! - **Stuck command**: a `pending` command whose age at the as-of time (as-of − its causing
//!   event's `occurred_at`) is strictly greater than the policy's write-back SLA.
//! - **As-of**: given explicitly, or else the last event's `occurred_at` in event time — the
//!   latest `occurred_at` among the events observed (decided or not; malformed lines are not
//!   events). Not the last line's: a log interleaves per-candidate partitions in no particular
//!   order (the shipped sample is grouped by candidate), and only the maximum is the same for
//!   every interleaving, and for the live processor. As-of is only the clock the two stuck
//!   counts are read at: every event of the input is counted whatever its time, and anything
//!   that entered its stage or was issued after as-of is simply not stuck. To see the log as it
//!   stood at an earlier point, cut the input there.

mod accumulator;
mod html;
mod report;
mod table;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::model::Timestamp;
use crate::policy::Policy;
use crate::replay::{parse_line, Replayer};

pub use accumulator::{ConflictTally, KpiAccumulator, TrackedApplication, TrackedCommand};
pub use html::write_html;
pub use report::{nearest_rank, Bucket, KpiReport, Latency, TargetOpKpis, LATENCY_BUCKETS_SECS};
pub use table::write_table;

/// Folds every line of `input` (the JSON form, one event a line) under `policy` and returns the
/// KPIs at `as_of` (default: the latest `occurred_at` seen). Malformed lines are reported to
/// `err` with their line number, counted in [`KpiReport::malformed_lines`], and skipped; blank
/// lines are skipped silently, as `hirestate replay` does.
///
/// # Errors
/// Only I/O errors reading `input` or writing `err`.
pub fn replay_file(
    input: impl BufRead,
    policy: &Policy,
    as_of: Option<Timestamp>,
    err: &mut impl Write,
) -> io::Result<KpiReport> {
    let mut replayer = Replayer::new(policy);
    let mut acc = KpiAccumulator::new();
    let mut malformed = 0;
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(&line, i + 1) {
            Ok(event) => {
                let outcome = replayer.fold(&event);
                acc.observe(&event, &outcome);
            }
            Err(e) => {
                malformed += 1;
                writeln!(err, "malformed: {e}")?;
            }
        }
    }
    let mut report = acc.report(policy, as_of);
    report.malformed_lines = malformed;
    Ok(report)
}

/// Where `hirestate kpi` reads the log from.
#[derive(Debug, Clone)]
pub enum Source<'a> {
    /// A JSON-lines file, or `-` for standard input.
    File(&'a str),
    /// The events topic of a live cluster (read_committed, to its end).
    Topic {
        config: &'a crate::config::Config,
        topic: &'a str,
    },
}

/// `hirestate kpi (--from-file FILE|- | --bootstrap B) [--as-of TIME] [--json] [--html FILE]`:
/// the KPIs of a log, as a terminal table or one JSON object on standard output, and with
/// `html` also as an HTML page written to that file.
///
/// The page is rendered and written before anything goes to standard output, so a path that
/// cannot be written fails the command without a half-finished run.
///
/// # Errors
/// An `--as-of` that is not RFC 3339, an unreadable input or topic, an HTML file that cannot be
/// written (the error names the path), or an I/O error writing the output.
pub fn command(
    source: Source<'_>,
    as_of: Option<&str>,
    json: bool,
    html: Option<&Path>,
    policy: &Policy,
) -> anyhow::Result<ExitCode> {
    let as_of = as_of
        .map(|t| {
            Timestamp::parse_rfc3339(t)
                .map_err(|e| anyhow::anyhow!("--as-of {t:?} is not an RFC 3339 time: {e}"))
        })
        .transpose()?;
    let report = match source {
        Source::File(from_file) => {
            let input: Box<dyn BufRead> = if from_file == "-" {
                Box::new(BufReader::new(io::stdin()))
            } else {
                Box::new(BufReader::new(
                    File::open(from_file).with_context(|| format!("opening {from_file}"))?,
                ))
            };
            replay_file(input, policy, as_of, &mut io::stderr())?
        }
        Source::Topic { config, topic } => {
            // Folded as it is read: nothing of the log is held (`tail::for_each_event`).
            let mut replayer = Replayer::new(policy);
            let mut acc = KpiAccumulator::new();
            let mut malformed = 0;
            let read = crate::tools::tail::for_each_event(
                config,
                topic,
                &mut io::stderr(),
                |admitted, err| {
                    match admitted {
                        Ok(event) => {
                            let outcome = replayer.fold(&event);
                            acc.observe(&event, &outcome);
                        }
                        Err(why) => {
                            malformed += 1;
                            writeln!(err, "malformed: {why}")?;
                        }
                    }
                    Ok(())
                },
            )?;
            malformed += read.report_undecodable(topic, &mut io::stderr())?;
            let mut report = acc.report(policy, as_of);
            report.malformed_lines = malformed;
            report
        }
    };
    if let Some(path) = html {
        let mut page = Vec::new();
        write_html(&mut page, &report, policy).context("rendering the HTML report")?;
        std::fs::write(path, page)
            .with_context(|| format!("writing the HTML report to {}", path.display()))?;
    }
    let mut out = crate::tools::stdout::data();
    if json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write_table(&mut out, &report)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
