//! The validated, in-memory policy: what the fold and the command derivation read. Built only
//! by [`crate::policy::load`] from files that passed every check, so the fold may rely on its
//! invariants (every transition names known stages, every region has targets, every mapping
//! names known stages/fields/targets) without re-checking them per event.

use std::sync::Arc;

use serde::Serialize;

use super::lookup::{NameMap, Transitions};
use crate::model::{SourceSystem, TargetSystem};

/// One stage of the canonical state machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    pub name: String,
    /// Rank on the forward path; `None` for `rejected`/`withdrawn`.
    pub rank: Option<u32>,
    pub terminal: bool,
    /// Dwell SLA in seconds; `None` for terminal stages.
    pub dwell_sla_secs: Option<i64>,
    pub owner: String,
}

/// One allowed move. Anything not listed is forbidden.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub from: String,
    /// Shared (`Arc`) with every application that moves into it.
    pub to: Arc<str>,
    /// The source systems allowed to assert this move.
    pub authority: Vec<SourceSystem>,
    pub owner: String,
}

/// The type (and range) a dictionary field's value must have.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FieldType {
    Number {
        min: f64,
        max: f64,
    },
    Enum {
        values: Vec<String>,
    },
    String,
    ListOfString,
    /// An absolute `https://` URL; any other scheme is invalid.
    HttpsUrl,
    /// `YYYY-MM-DD`.
    Date,
}

/// How sensitive a field is: redaction and retention follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldClass {
    Internal,
    Personal,
    Sensitive,
}

/// What happens when a system that is not the golden source asserts a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictRule {
    /// The assertion is rejected (`field_conflict`) and counted as an incident.
    GoldenWins,
    /// The assertion is accepted and counted.
    LatestWins,
}

/// One entry of the golden-source field dictionary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldSpec {
    pub name: String,
    pub golden_source: SourceSystem,
    pub ty: FieldType,
    pub class: FieldClass,
    pub conflict: ConflictRule,
    /// The system this field is written back to, if any.
    pub writeback: Option<TargetSystem>,
    pub owner: String,
}

/// One ATS or HRIS the commands go to, with its own vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    /// Shared (`Arc`) with every command to this target.
    pub name: Arc<str>,
    pub system: TargetSystem,
    /// Canonical stage → the target's stage name.
    pub stage_names: NameMap<String>,
    /// Dictionary field → the target's field key.
    pub field_keys: NameMap<String>,
}

/// Retention, in days, by field class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retention {
    /// Days after a terminal stage.
    pub sensitive_days: u32,
    pub personal_days: u32,
}

/// A region: which targets its applications write back to, and its addendum.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Region {
    pub name: String,
    pub ats_target: String,
    pub hris_target: String,
    /// Dictionary fields this region never writes back.
    pub withhold: Vec<String>,
    pub retention: Retention,
}

/// Write-back lifecycle settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WritebackSettings {
    /// Pending longer than this → `writeback_stuck`.
    pub sla_secs: i64,
    /// Attempts (first emission included) before `writeback_failed`.
    pub max_attempts: u32,
    pub backoff_initial_secs: i64,
    pub backoff_max_secs: i64,
}

/// The approval block: who approved which content, when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    /// Shared with every command that carries it (`Arc`: one copy, not one per command).
    pub version: Arc<str>,
    pub approvers: Vec<String>,
    pub date: String,
    /// SHA-256 (hex) of the canonical content; must match what the files say. Shared like
    /// `version`.
    pub digest: Arc<str>,
}

/// The whole validated policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    pub approval: Approval,
    /// Stage name → stage.
    pub stages: NameMap<Stage>,
    pub transitions: Transitions,
    /// Who may send `application_created`.
    pub application_created_authority: Vec<SourceSystem>,
    /// The stage `screening_completed` asks for.
    pub screening_stage: String,
    /// The stage a new application starts in.
    pub initial_stage: Arc<str>,
    /// The stage whose entry triggers `create_pre_hire`.
    pub hired_stage: String,
    /// Field name → spec.
    pub fields: NameMap<FieldSpec>,
    pub targets: NameMap<Target>,
    pub regions: NameMap<Region>,
    pub writeback: WritebackSettings,
}

impl Policy {
    /// The listed transition from `from` to `to`, if any.
    pub fn transition(&self, from: &str, to: &str) -> Option<&Transition> {
        self.transitions.get(from, to)
    }

    /// The policy version commands carry.
    pub fn version(&self) -> &str {
        &self.approval.version
    }

    /// The digest commands carry.
    pub fn digest(&self) -> &str {
        &self.approval.digest
    }
}
