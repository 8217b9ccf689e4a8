//! `hirestate demo` (and `make demo`): the most complete path that runs with nothing installed.
//!
//! Today that is: the shipped policy is loaded and verified; a generated, realistic stream
//! (forbidden jumps, duplicates, late screening results, field conflicts, sink acks, and a few
//! undecodable records) is encoded in Avro single-object framing, decoded back through the
//! codec, and folded with the processor's fold; what happened is printed. Nothing here is
//! simulated except the event stream itself (generated) and the acks (a simulated sink).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Instant;

use crate::codec::{Codec, Framing};
use crate::generate::{self, Spec};
use crate::model::Event;
use crate::replay::{self, Replayer, Row, Summary};

/// Runs the demo over `candidates` generated candidates.
///
/// # Errors
/// When the shipped policy or schemas fail their checks (a build problem, not input).
pub fn run(candidates: usize, seed: u64) -> anyhow::Result<ExitCode> {
    let policy = crate::cli::load_policy(None)?;
    let codec = Codec::embedded()?;
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "hirestate demo — embedded default (no broker, no registry)"
    )?;
    writeln!(
        out,
        "policy {} verified: version {}, digest {}…",
        crate::policy::default_dir().display(),
        policy.version(),
        &policy.digest()[..16]
    )?;

    let spec = Spec {
        seed,
        candidates,
        ..Spec::default()
    };
    let events = generate::stream(&spec, &policy);
    writeln!(
        out,
        "generated {} events for {} candidates (seed {seed}; acks from a SIMULATED sink)",
        events.len(),
        candidates
    )?;

    // Every record goes through the wire format, as it would on Kafka; a few are corrupted.
    let started = Instant::now();
    let mut replayer = Replayer::new(&policy);
    let mut summary = Summary::default();
    let mut undecodable: BTreeMap<String, u64> = BTreeMap::new();
    let mut consumed = 0u64;
    for (i, event) in events.iter().enumerate() {
        let mut bytes = codec.encode_local(event, Framing::SingleObject)?;
        if i % 997 == 500 {
            bytes.truncate(bytes.len() / 2); // a truncated record, as a broken producer sends
        }
        consumed += 1;
        match codec.decode_local::<Event>(&bytes) {
            Ok(decoded) => {
                let row = Row::new(&decoded, replayer.fold(&decoded));
                summary.count(&row);
            }
            Err(e) => *undecodable.entry(e.to_string()).or_default() += 1,
        }
    }
    let elapsed = started.elapsed();
    summary.final_stages = replayer
        .states()
        .values()
        .flat_map(|s| {
            s.applications
                .values()
                .map(|a| (a.application_id.clone(), a.stage.clone()))
        })
        .collect();

    writeln!(out)?;
    replay::write_summary_table(&mut out, &summary)?;
    let dlq: u64 = undecodable.values().sum();
    writeln!(out, "undecodable records (a DLQ's worth): {dlq}")?;
    for (err, n) in &undecodable {
        writeln!(out, "  {n} × {err}")?;
    }
    writeln!(
        out,
        "reconciles: consumed {consumed} = folded {} + undecodable {dlq}",
        summary.events
    )?;
    writeln!(
        out,
        "decode + fold took {:.1} ms on this machine (debug/release as built)",
        elapsed.as_secs_f64() * 1e3
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "next: `hirestate replay --from-file schemas/samples/events.jsonl --format table`"
    )?;
    anyhow::ensure!(
        consumed == summary.events + dlq,
        "the demo's counts do not reconcile"
    );
    Ok(ExitCode::SUCCESS)
}
