//! hirestate: an event-sourced stream processor that makes ATS/HRIS write-back after candidate
//! screening trustworthy.
//!
//! The data flow, in stage order (folder listings are alphabetical; this is not):
//!
//! | stage | module | owns |
//! | --- | --- | --- |
//! | types | [`model`] | events, candidate state, decisions, commands, rejections, alerts |
//! | rules | [`policy`] | the state machine, field dictionary and mappings as checked data |
//! | 1 in | `ingest` | Kafka consumer group, rebalance, restore on assign (live processor) |
//! | 2 decode | [`codec`] | bytes ⇄ records: Confluent wire format, Avro single-object, JSON |
//! | 3 verify | [`fold`] (step 2) | source authority and signatures |
//! | 4 fold | [`fold`] | pure (state, event, policy) → (state, decision, effects) |
//! | 5 project | `project` | sled: projection + offsets it reflects, written behind the fold on a writer thread |
//! | 6 derive | [`derive`] | decisions × mapping → commands with deterministic ids |
//! | 7 out | `publish` | one Kafka transaction per batch |
//! | 8 time | `timers` | the injected clock and the sled deadline index: due timers become `deadline_reached` events in the log |
//! | tasks | [`tasks`] | fans a batch's per-partition folds, and restores, out to threads |
//! | tools | [`replay`] | the offline replay analysts and tests run over JSON lines |
//! | observe | [`metrics`] | OpenTelemetry instruments of committed batches, `/metrics`, OTLP |

/// The allocator for every binary, bench and test built on this crate. The fold and the
/// processor make many small short-lived allocations (ids, names, command payloads); glibc's
/// malloc/free was a third of the fold's profile, mimalloc roughly halves that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod app;
pub mod cli;
pub mod codec;
pub mod config;
pub mod demo;
pub mod derive;
pub mod failpoint;
pub mod fold;
pub mod generate;
pub mod health;
pub mod ingest;
pub mod kpi;
pub mod metrics;
pub mod model;
pub mod policy;
pub mod project;
pub mod publish;
pub mod replay;
pub mod tasks;
pub mod telemetry;
pub mod timers;
pub mod tools;
pub mod topics;
