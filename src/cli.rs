//! The command line: one subcommand per user of DESIGN.md's table, each a thin call into the
//! module that owns the work.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use std::sync::Arc;

use crate::app::{RunOptions, Status};
use crate::codec::Framing;
use crate::config::{Config, Overrides};
use crate::kpi::Source;
use crate::policy::{self, DiagramFormat, Policy};
use crate::replay::{self, Format};
use crate::topics::Topics;

/// How long `produce` and `topics ensure` wait for the cluster to answer before saying so.
const CLUSTER_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

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
        #[command(flatten)]
        log: LogArgs,
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
        /// Seed of the SIMULATED sink's answers (default: --seed).
        #[arg(long, value_name = "SEED")]
        sink_seed: Option<u64>,
        /// Shortest simulated write-back latency (event time), seconds.
        #[arg(long, value_name = "SECS", default_value_t = crate::demo::sink::default_latency_min_secs())]
        sink_latency_min: u64,
        /// Longest simulated write-back latency (event time), seconds.
        #[arg(long, value_name = "SECS", default_value_t = crate::demo::sink::default_latency_max_secs())]
        sink_latency_max: u64,
        /// Share (0–1) of write-back attempts the simulated remote answers `failed`.
        #[arg(long, value_name = "RATE", default_value_t = crate::demo::sink::default_failure_rate())]
        sink_failure_rate: f64,
        /// Share (0–1) of failures marked retryable.
        #[arg(long, value_name = "SHARE", default_value_t = crate::demo::sink::default_retryable_share())]
        sink_retryable_share: f64,
        /// Share (0–1) of write-back attempts the simulated remote answers `rejected`.
        #[arg(long, value_name = "RATE", default_value_t = crate::demo::sink::default_rejection_rate())]
        sink_rejection_rate: f64,
        /// Where to write the HTML KPI report.
        #[arg(long, value_name = "FILE", default_value = crate::demo::DEFAULT_HTML_REPORT)]
        html: PathBuf,
        /// Do not write the HTML KPI report.
        #[arg(long)]
        no_html: bool,
    },
    /// The live processor: consume hiring.events.v1, fold, emit exactly once.
    Run {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Stop after this many seconds without a record (tests, batch jobs).
        #[arg(long, value_name = "SECS")]
        exit_when_idle: Option<f64>,
    },
    /// Produce JSON-form events onto a topic, encoded in the configured framing.
    Produce {
        #[command(flatten)]
        kafka: KafkaArgs,
        #[arg(long = "from-file", value_name = "FILE|-")]
        from_file: String,
        /// Default: the event log.
        #[arg(long)]
        topic: Option<String>,
        /// Default: confluent when a registry is configured, else single-object.
        #[arg(long, value_enum)]
        framing: Option<FramingArg>,
    },
    /// Decode any hirestate topic back to JSON lines (read_committed).
    Tail {
        #[command(flatten)]
        kafka: KafkaArgs,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        from_beginning: bool,
        /// Stop at the end of every partition.
        #[arg(long)]
        until_end: bool,
        #[arg(long, value_enum, default_value_t = TailFormat::Jsonl)]
        format: TailFormat,
        /// How long a record waits for a schema registry out of reach before the tail stops
        /// (it never leaves a record out for the registry's sake).
        #[arg(long, value_name = "SECS", default_value_t = crate::tools::tail::REGISTRY_WAIT.as_secs())]
        registry_wait: u64,
    },
    /// Create or check every topic hirestate uses.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// Print the projection held in the state directory, one candidate a line.
    StateDump {
        #[command(flatten)]
        kafka: KafkaArgs,
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
    /// Write-back KPIs from a log replay, in event time (see DESIGN.md and `kpi` module docs):
    /// of a JSON-lines file, or of the live events topic with `--bootstrap`.
    Kpi {
        #[command(flatten)]
        log: LogArgs,
        /// RFC 3339 time the stuck counts are read at (default: the latest occurred_at read).
        #[arg(long)]
        as_of: Option<String>,
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
        /// Also write a self-contained HTML report with charts (inline SVG, no script) to FILE.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Policy directory (default: $HIRESTATE_POLICY_DIR, else the shipped policy).
        #[arg(long, value_name = "DIR")]
        policy: Option<PathBuf>,
    },
}

/// The log `replay` and `kpi` fold: a file, or the live events topic.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// The JSON-lines file, or `-` for standard input.
    #[arg(
        long = "from-file",
        value_name = "FILE|-",
        required_unless_present = "bootstrap",
        conflicts_with = "bootstrap"
    )]
    from_file: Option<String>,
    /// Read the events topic of this cluster instead (env KAFKA_BOOTSTRAP is not enough: the
    /// flag chooses the live topic), admitting its records as the processor does (a record it
    /// dead-letters is reported and skipped).
    #[arg(long)]
    bootstrap: Option<String>,
    /// Topic prefix of the live topics (env HIRESTATE_TOPIC_PREFIX).
    #[arg(long)]
    topic_prefix: Option<String>,
}

/// Where the Kafka-facing commands point (each overrides config file and environment).
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// A TOML configuration file (see README "Configuration").
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Bootstrap servers (env KAFKA_BOOTSTRAP).
    #[arg(long)]
    pub bootstrap: Option<String>,
    #[arg(long)]
    pub topic_prefix: Option<String>,
    #[arg(long)]
    pub group_id: Option<String>,
    #[arg(long)]
    pub instance_id: Option<String>,
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    #[arg(long = "policy", value_name = "DIR")]
    pub policy_dir: Option<PathBuf>,
    /// Confluent-API schema registry URL.
    #[arg(long)]
    pub schema_registry: Option<String>,
    /// Health endpoints address, e.g. 127.0.0.1:9464.
    #[arg(long)]
    pub health_addr: Option<String>,
}

impl KafkaArgs {
    /// The layered configuration with these flags on top.
    ///
    /// # Errors
    /// Every configuration problem at once.
    pub fn config(&self) -> anyhow::Result<Config> {
        let flags = Overrides {
            bootstrap: self.bootstrap.clone(),
            topic_prefix: self.topic_prefix.clone(),
            group_id: self.group_id.clone(),
            instance_id: self.instance_id.clone(),
            state_dir: self.state_dir.clone(),
            policy_dir: self.policy_dir.clone(),
            schema_registry: self.schema_registry.clone(),
            health_addr: self.health_addr.clone(),
        };
        let c = Config::load(self.config.as_deref(), std::env::vars(), &flags)?;
        anyhow::ensure!(
            !c.bootstrap.is_empty(),
            "no Kafka cluster: set KAFKA_BOOTSTRAP or --bootstrap"
        );
        Ok(c)
    }
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create missing topics, check existing ones.
    Ensure {
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// Copy the event log, as the processor folds it, into the event log of another prefix
    /// (created beforehand with the partitions wanted), exactly once, going on from where an
    /// earlier run into it ended; prints the counts as JSON.
    CopyEvents {
        /// The prefix whose `hiring.events.v1` receives the copy.
        #[arg(long)]
        to_prefix: String,
        /// Records one transaction of the copy carries at most.
        #[arg(
            long,
            default_value_t = crate::tools::copy_events::BATCH_RECORDS,
            value_parser = clap::value_parser!(u64).range(1..)
        )]
        batch_records: u64,
        #[command(flatten)]
        kafka: KafkaArgs,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FramingArg {
    Confluent,
    SingleObject,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TailFormat {
    Jsonl,
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
            log:
                LogArgs {
                    from_file,
                    bootstrap,
                    topic_prefix,
                },
            format,
            policy,
        } => {
            let policy = load_policy(policy.as_deref())?;
            let format = match format {
                ReplayFormat::Jsonl => Format::Jsonl,
                ReplayFormat::Table => Format::Table,
            };
            let mut out = crate::tools::stdout::data();
            let mut err = io::stderr();
            let summary = match from_file {
                Some(f) => replay::run(open_input(&f)?, &policy, format, &mut out, &mut err)?,
                None => {
                    let config = topic_config(bootstrap, topic_prefix)?;
                    let topic = Topics::new(&config.topic_prefix).events;
                    // Folded as it is read, through a bounded channel from a reader thread:
                    // nothing of the log is held (`tail::for_each_event`). A reader that fails
                    // closes the channel, and its error is what the replay ends with.
                    let (events, read) = std::sync::mpsc::sync_channel(1024);
                    let reader = {
                        let (config, topic) = (config.clone(), topic.clone());
                        std::thread::spawn(move || {
                            crate::tools::tail::for_each_event(
                                &config,
                                &topic,
                                &mut io::stderr(),
                                |admitted, _| {
                                    events
                                        .send(admitted)
                                        .map_err(|_| anyhow::anyhow!("the replay stopped reading"))
                                },
                            )
                        })
                    };
                    let mut summary = replay::run_events(
                        read.into_iter().map(Ok),
                        &policy,
                        format,
                        &mut out,
                        &mut err,
                    )?;
                    let read = reader
                        .join()
                        .map_err(|_| anyhow::anyhow!("the topic's reader panicked"))??;
                    summary.malformed += read.report_undecodable(&topic, &mut err)?;
                    summary
                }
            };
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
        Command::Demo {
            candidates,
            seed,
            sink_seed,
            sink_latency_min,
            sink_latency_max,
            sink_failure_rate,
            sink_retryable_share,
            sink_rejection_rate,
            html,
            no_html,
        } => crate::demo::run(&crate::demo::DemoOptions {
            candidates,
            seed,
            sink: crate::demo::SinkOptions {
                seed: sink_seed.unwrap_or(seed),
                latency_min_secs: sink_latency_min,
                latency_max_secs: sink_latency_max,
                failure_rate: sink_failure_rate,
                rejection_rate: sink_rejection_rate,
                retryable_share: sink_retryable_share,
            },
            html: (!no_html).then_some(html),
        }),
        Command::Run {
            kafka,
            exit_when_idle,
        } => run_processor(&kafka.config()?, exit_when_idle),
        Command::Produce {
            kafka,
            from_file,
            topic,
            framing,
        } => {
            let config = kafka.config()?;
            let topic = topic.unwrap_or_else(|| Topics::new(&config.topic_prefix).events);
            let framing = match framing {
                Some(FramingArg::Confluent) => Framing::Confluent,
                Some(FramingArg::Json) => Framing::Json,
                Some(FramingArg::SingleObject) => Framing::SingleObject,
                None if config.schema_registry.is_some() => Framing::Confluent,
                None => Framing::SingleObject,
            };
            let input = open_input(&from_file)?;
            // A missing topic is said at once (librdkafka would wait its message timeout, 30 s,
            // and fail each delivery with `UnknownTopicOrPartition`).
            let md = crate::topics::reach::metadata(&config, &topic, CLUSTER_WAIT)?;
            if let Err(e) = crate::topics::partition_count(&md) {
                return Err(crate::topics::reach::topic_error(&config, &topic, e));
            }
            let rt = tokio::runtime::Runtime::new()?;
            let report = rt.block_on(crate::tools::produce::produce(
                &config,
                input,
                &topic,
                framing,
                &mut io::stderr(),
            ))?;
            eprintln!(
                "produced {} events to {topic}; {} bad lines skipped",
                report.produced, report.bad_lines
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Tail {
            kafka,
            topic,
            from_beginning,
            until_end,
            format: _,
            registry_wait,
        } => {
            let config = kafka.config()?;
            // An interrupt or a SIGTERM ends the tail with what it read written and counted.
            let signals = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            stop_on_signals(&signals, stop.clone(), || {})?;
            let opts = crate::tools::tail::TailOptions {
                topic,
                from_beginning,
                until_end,
                idle_exit: None,
                registry_wait: std::time::Duration::from_secs(registry_wait),
                stop: Some(stop),
                partition: None,
            };
            let mut out = crate::tools::stdout::data();
            let report = crate::tools::tail::tail(&config, &opts, &mut out, &mut io::stderr())?;
            out.flush()?;
            eprintln!(
                "{} records, {} undecodable",
                report.records, report.undecodable
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Topics {
            command: TopicsCommand::Ensure { kafka },
        } => {
            let config = kafka.config()?;
            let policy = load_policy(config.policy_dir.as_deref())?;
            let events = Topics::new(&config.topic_prefix).events;
            crate::topics::reach::metadata(&config, &events, CLUSTER_WAIT)?;
            let rt = tokio::runtime::Runtime::new()?;
            let report = rt.block_on(crate::topics::ensure(&config, &policy))?;
            let mut out = crate::tools::stdout::data();
            for t in &report.created {
                writeln!(out, "created  {t}")?;
            }
            for t in &report.existing {
                writeln!(out, "exists   {t}")?;
            }
            out.flush()?;
            for p in &report.problems {
                eprintln!("problem  {p}");
            }
            Ok(if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Topics {
            command:
                TopicsCommand::CopyEvents {
                    to_prefix,
                    batch_records,
                    kafka,
                },
        } => {
            let config = kafka.config()?;
            let events = Topics::new(&config.topic_prefix).events;
            crate::topics::reach::metadata(&config, &events, CLUSTER_WAIT)?;
            let report = crate::tools::copy_events::copy_events(
                &config,
                &to_prefix,
                batch_records,
                &mut io::stderr(),
            )?;
            let mut out = crate::tools::stdout::data();
            serde_json::to_writer(&mut out, &report)?;
            writeln!(out)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::StateDump { kafka } => {
            let flags = Overrides {
                state_dir: kafka.state_dir.clone(),
                ..Default::default()
            };
            let config = Config::load(kafka.config.as_deref(), std::env::vars(), &flags)?;
            let store = crate::project::SledStore::open(&config.state_dir.join("projection"))?;
            let mut out = crate::tools::stdout::data();
            for state in crate::project::Store::candidates(&store)? {
                serde_json::to_writer(&mut out, &state?)?;
                writeln!(out)?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
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
            let mut out = crate::tools::stdout::data();
            for e in crate::generate::stream(&spec, &policy) {
                serde_json::to_writer(&mut out, &e)?;
                writeln!(out)?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Kpi {
            log:
                LogArgs {
                    from_file,
                    bootstrap,
                    topic_prefix,
                },
            as_of,
            json,
            html,
            policy,
        } => {
            let policy = load_policy(policy.as_deref())?;
            let as_of = as_of.as_deref();
            match (from_file, bootstrap) {
                (Some(f), _) => {
                    crate::kpi::command(Source::File(&f), as_of, json, html.as_deref(), &policy)
                }
                (None, bootstrap) => {
                    let config = topic_config(bootstrap, topic_prefix)?;
                    let topic = Topics::new(&config.topic_prefix).events;
                    let source = Source::Topic {
                        config: &config,
                        topic: &topic,
                    };
                    crate::kpi::command(source, as_of, json, html.as_deref(), &policy)
                }
            }
        }
    }
}

/// The configuration of a tool that reads the live topics (`replay`/`kpi --bootstrap`): the
/// environment and these two flags.
fn topic_config(
    bootstrap: Option<String>,
    topic_prefix: Option<String>,
) -> anyhow::Result<crate::config::Config> {
    KafkaArgs {
        config: None,
        bootstrap,
        topic_prefix,
        group_id: None,
        instance_id: None,
        state_dir: None,
        policy_dir: None,
        schema_registry: None,
        health_addr: None,
    }
    .config()
}

fn open_input(from_file: &str) -> anyhow::Result<Box<dyn BufRead>> {
    Ok(if from_file == "-" {
        Box::new(BufReader::new(io::stdin()))
    } else {
        Box::new(BufReader::new(
            File::open(from_file).with_context(|| format!("opening {from_file}"))?,
        ))
    })
}

/// Runs the processor on its own thread; signals and health endpoints on a small runtime.
fn run_processor(config: &Config, exit_when_idle: Option<f64>) -> anyhow::Result<ExitCode> {
    let policy = Arc::new(load_policy(config.policy_dir.as_deref())?);
    tracing::info!(config = ?config.redacted(), policy_version = policy.version(), "starting");
    let metrics = Arc::new(crate::metrics::Metrics::new(
        config.otlp_endpoint.as_deref(),
    )?);
    if let Some(url) = metrics.otlp_endpoint() {
        tracing::info!(url, "metrics pushed over OTLP");
    }
    let status = Arc::new(Status::with_metrics(metrics.clone()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    // Signals are watched from here on, before anything waits (the start-up check waits up to
    // `transaction_timeout_ms` for the cluster) and before the health endpoints answer: a
    // SIGTERM from now on asks for a shutdown instead of killing the process.
    stop_on_signals(&rt, status.shutdown.clone(), || {
        tracing::info!("shutdown requested: finishing the batch");
    })?;
    if let Some(addr) = &config.health_addr {
        let listener = rt.block_on(crate::health::bind(addr))?;
        let (s, addr) = (status.clone(), addr.clone());
        rt.spawn(async move {
            if let Err(e) = crate::health::serve(listener, s).await {
                tracing::error!(error = %e, addr, "health endpoints failed");
            }
        });
    }
    let opts = RunOptions {
        exit_when_idle: exit_when_idle.map(std::time::Duration::from_secs_f64),
        mock_cluster: false,
    };
    let config = config.clone();
    let worker = std::thread::Builder::new()
        .name("hirestate-processor".into())
        .spawn(move || crate::app::run(&config, policy, status, &opts))?;
    let report = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the processor thread panicked"));
    // The last OTLP export, whatever the run's end.
    metrics.shutdown();
    let report = report??;
    writeln!(
        crate::tools::stdout::data(),
        "{}",
        serde_json::to_string(&report)?
    )?;
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}

/// Sets `stop` (after calling `then`) at the first SIGTERM or SIGINT, from a task on `rt`; the
/// signals are taken from the moment this returns, so neither kills the process any more.
fn stop_on_signals(
    rt: &tokio::runtime::Runtime,
    stop: Arc<std::sync::atomic::AtomicBool>,
    then: impl FnOnce() + Send + 'static,
) -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut int) = {
        let _runtime = rt.enter();
        (
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        )
    };
    rt.spawn(async move {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
        then();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    Ok(())
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
                    writeln!(
                        crate::tools::stdout::data(),
                        "policy {} ok: version {}, {} stages, {} transitions, {} fields, digest {}",
                        d.display(),
                        p.version(),
                        p.stages.len(),
                        p.transitions.len(),
                        p.fields.len(),
                        p.digest()
                    )?;
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
                    writeln!(
                        crate::tools::stdout::data(),
                        "signed {}: digest {digest}",
                        d.display()
                    )?;
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
            let mut out = crate::tools::stdout::data();
            write!(out, "{}", policy::diagram(&p, format))?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
