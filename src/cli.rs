//! The command line: one subcommand per user of DESIGN.md's table, each a thin call into the
//! module that owns the work.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::policy::{self, DiagramFormat, Policy};
use crate::replay::{self, Format};

#[derive(Debug, Parser)]
#[command(
    name = "hirestate",
    version,
    about = "Trustworthy ATS/HRIS write-back from hiring events"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fold JSON-lines events offline with the processor's fold; one row per event.
    Replay {
        /// The JSON-lines file, or `-` for standard input.
        #[arg(long = "from-file", value_name = "FILE|-")]
        from_file: String,
        #[arg(long, value_enum, default_value_t = ReplayFormat::Jsonl)]
        format: ReplayFormat,
        /// Policy directory (default: $HIRESTATE_POLICY_DIR, else the shipped policy).
        #[arg(long, value_name = "DIR")]
        policy: Option<PathBuf>,
    },
    /// Check, sign or draw the hiring policy.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// The main job on the embedded default: see README "make demo".
    Demo {
        /// How many candidates the generated stream has.
        #[arg(long, default_value_t = 200)]
        candidates: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Write a generated event stream as JSON lines (the demo's and the benchmarks' input).
    Generate {
        #[arg(long, default_value_t = 1000)]
        candidates: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Leave out the sink acks.
        #[arg(long)]
        no_acks: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate; list every problem with file and line; exit non-zero if any.
    Check { dir: Option<PathBuf> },
    /// Recompute the digest and write the approval block.
    Sign {
        dir: Option<PathBuf>,
        #[arg(long)]
        version: Option<String>,
        /// An approver (repeat for several); replaces the list when given.
        #[arg(long = "approver")]
        approvers: Vec<String>,
        /// Approval date, YYYY-MM-DD.
        #[arg(long)]
        date: Option<String>,
    },
    /// Draw the state machine with owners, authorities and SLAs.
    Diagram {
        dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = DiagramArg::Mermaid)]
        format: DiagramArg,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReplayFormat {
    Jsonl,
    Table,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DiagramArg {
    Mermaid,
    Dot,
}

/// Runs one command.
///
/// # Errors
/// Anything that stops the command as a whole (a policy that fails its checks, an unreadable
/// input file); per-record problems are reported and counted instead.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Replay {
            from_file,
            format,
            policy,
        } => {
            let policy = load_policy(policy.as_deref())?;
            let input: Box<dyn BufRead> = if from_file == "-" {
                Box::new(BufReader::new(io::stdin()))
            } else {
                Box::new(BufReader::new(
                    File::open(&from_file).with_context(|| format!("opening {from_file}"))?,
                ))
            };
            let format = match format {
                ReplayFormat::Jsonl => Format::Jsonl,
                ReplayFormat::Table => Format::Table,
            };
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            let mut err = io::stderr();
            let summary = replay::run(input, &policy, format, &mut out, &mut err)?;
            out.flush()?;
            match format {
                Format::Jsonl => replay::write_summary_table(&mut err, &summary)?,
                Format::Table => {
                    writeln!(out)?;
                    replay::write_summary_table(&mut out, &summary)?;
                    out.flush()?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy { command } => policy_command(command),
        Command::Demo { candidates, seed } => crate::demo::run(candidates, seed),
        Command::Generate {
            candidates,
            seed,
            no_acks,
        } => {
            let policy = load_policy(None)?;
            let spec = crate::generate::Spec {
                seed,
                candidates,
                acks: !no_acks,
                ..Default::default()
            };
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            for e in crate::generate::stream(&spec, &policy) {
                serde_json::to_writer(&mut out, &e)?;
                writeln!(out)?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads and checks the policy in `dir` (or the default); a policy that fails `check` is never
/// used by any command.
///
/// # Errors
/// Every problem the checks found, one a line with file and line.
pub fn load_policy(dir: Option<&Path>) -> anyhow::Result<Policy> {
    let dir = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(policy::default_dir);
    policy::load(&dir).map_err(|e| anyhow::anyhow!("policy {} refused:\n{e}", dir.display()))
}

fn policy_command(command: PolicyCommand) -> anyhow::Result<ExitCode> {
    let dir = |d: Option<PathBuf>| d.unwrap_or_else(policy::default_dir);
    match command {
        PolicyCommand::Check { dir: d } => {
            let d = dir(d);
            match policy::check(&d) {
                Ok(p) => {
                    println!(
                        "policy {} ok: version {}, {} stages, {} transitions, {} fields, digest {}",
                        d.display(),
                        p.version(),
                        p.stages.len(),
                        p.transitions.len(),
                        p.fields.len(),
                        p.digest()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        PolicyCommand::Sign {
            dir: d,
            version,
            approvers,
            date,
        } => {
            let d = dir(d);
            let approvers = (!approvers.is_empty()).then_some(approvers);
            match policy::sign(&d, version.as_deref(), approvers, date.as_deref()) {
                Ok(digest) => {
                    println!("signed {}: digest {digest}", d.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        PolicyCommand::Diagram { dir: d, format } => {
            let p = load_policy(Some(&dir(d)))?;
            let format = match format {
                DiagramArg::Mermaid => DiagramFormat::Mermaid,
                DiagramArg::Dot => DiagramFormat::Dot,
            };
            print!("{}", policy::diagram(&p, format));
            Ok(ExitCode::SUCCESS)
        }
    }
}
