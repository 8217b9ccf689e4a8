//! What the fold decides and what the processor emits: decisions, ATS/HRIS update commands,
//! rejection records and alerts (DESIGN.md "Decisions of the fold", "Commands (outbound)").

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{FieldValue, SourceSystem, Timestamp};

/// Why the fold refused an event. The names are the wire names of DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    BadSignature,
    UnknownApplication,
    DuplicateApplication,
    UnknownStage,
    InvalidField,
    TerminalState,
    ForbiddenTransition,
    UnauthorizedSource,
    FieldConflict,
    UnknownCommand,
}

impl RejectReason {
    /// Every reason, in the order DESIGN.md checks them.
    pub const ALL: [RejectReason; 10] = [
        RejectReason::BadSignature,
        RejectReason::UnknownApplication,
        RejectReason::DuplicateApplication,
        RejectReason::UnknownStage,
        RejectReason::InvalidField,
        RejectReason::TerminalState,
        RejectReason::ForbiddenTransition,
        RejectReason::UnauthorizedSource,
        RejectReason::FieldConflict,
        RejectReason::UnknownCommand,
    ];

    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::BadSignature => "bad_signature",
            RejectReason::UnknownApplication => "unknown_application",
            RejectReason::DuplicateApplication => "duplicate_application",
            RejectReason::UnknownStage => "unknown_stage",
            RejectReason::InvalidField => "invalid_field",
            RejectReason::TerminalState => "terminal_state",
            RejectReason::ForbiddenTransition => "forbidden_transition",
            RejectReason::UnauthorizedSource => "unauthorized_source",
            RejectReason::FieldConflict => "field_conflict",
            RejectReason::UnknownCommand => "unknown_command",
        }
    }

    /// The inverse of [`RejectReason::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fold's one decision per input event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Applied,
    /// The application already moved past the requested stage; not a violation.
    Stale,
    Duplicate,
    Rejected(RejectReason),
}

impl Decision {
    /// `applied` / `stale` / `duplicate` / `rejected`.
    pub fn name(self) -> &'static str {
        match self {
            Decision::Applied => "applied",
            Decision::Stale => "stale",
            Decision::Duplicate => "duplicate",
            Decision::Rejected(_) => "rejected",
        }
    }

    /// The rejection reason, if any.
    pub fn reason(self) -> Option<RejectReason> {
        match self {
            Decision::Rejected(r) => Some(r),
            _ => None,
        }
    }
}

/// Which kind of system of record a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetSystem {
    Ats,
    Hris,
}

impl TargetSystem {
    /// `ats` / `hris`: the topic family `<system>.commands.<target>.v1`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSystem::Ats => "ats",
            TargetSystem::Hris => "hris",
        }
    }

    /// The source system that *is* this system: it needs no write-back of its own changes.
    pub fn as_source(self) -> SourceSystem {
        match self {
            TargetSystem::Ats => SourceSystem::Ats,
            TargetSystem::Hris => SourceSystem::Hris,
        }
    }
}

/// The operation a command asks a sink to perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandOp {
    MoveStage,
    UpdateFields,
    CreatePreHire,
}

impl CommandOp {
    /// The snake_case name; part of the command id's preimage.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandOp::MoveStage => "move_stage",
            CommandOp::UpdateFields => "update_fields",
            CommandOp::CreatePreHire => "create_pre_hire",
        }
    }
}

/// The op-specific part of a command, already in the target's vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CommandPayload {
    MoveStage {
        /// The canonical stage.
        stage: String,
        /// The target's own name for it, from the mapping.
        remote_stage: String,
    },
    UpdateFields {
        /// Target field key → value (dictionary names already mapped).
        fields: BTreeMap<String, FieldValue>,
    },
    CreatePreHire {
        requisition_id: String,
        /// Target field key → value of the HRIS-bound fields known at hire time.
        fields: BTreeMap<String, FieldValue>,
    },
}

impl CommandPayload {
    /// The op this payload belongs to.
    pub fn op(&self) -> CommandOp {
        match self {
            CommandPayload::MoveStage { .. } => CommandOp::MoveStage,
            CommandPayload::UpdateFields { .. } => CommandOp::UpdateFields,
            CommandPayload::CreatePreHire { .. } => CommandOp::CreatePreHire,
        }
    }
}

/// An ATS/HRIS update command. `command_id` is the sink's idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Shared (`Arc`) with the projection's record of it and its deadlines.
    pub command_id: Arc<str>,
    /// The policy's target name, shared (`Arc`): every command and its record carry it.
    pub target: Arc<str>,
    pub system: TargetSystem,
    pub candidate_id: String,
    /// Shared with the application's state.
    pub application_id: Arc<str>,
    /// The event that caused it; the id's preimage starts with it.
    pub causing_event_id: String,
    /// The causing event's `occurred_at` (write-back latency is measured from it).
    pub occurred_at: Timestamp,
    /// The policy's own strings, shared (`Arc`): every command carries them.
    pub policy_version: Arc<str>,
    pub policy_digest: Arc<str>,
    /// 1 for the first emission; re-emissions after a retryable failure count up.
    pub attempt: u32,
    #[serde(flatten)]
    pub payload: CommandPayload,
}

impl Command {
    /// The op of this command.
    pub fn op(&self) -> CommandOp {
        self.payload.op()
    }
}

/// What a vendor gets back when the policy refuses its event: never a silent drop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    pub event_id: String,
    pub candidate_id: String,
    pub application_id: String,
    pub source_system: SourceSystem,
    pub source_principal: String,
    pub kind: String,
    pub reason: RejectReason,
    /// Human-readable: what was refused and why (names the field or the transition).
    pub detail: String,
    pub stage: Option<String>,
    pub occurred_at: Timestamp,
    pub policy_version: String,
}

/// The alerts hirestate raises to a transition's or field's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The ATS asserted a move the policy forbids; canonical state did not follow.
    Divergence,
    /// An application stayed in a stage past its dwell SLA.
    Stuck,
    WritebackStuck,
    WritebackFailed,
    WritebackRejected,
}

impl AlertKind {
    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Divergence => "divergence",
            AlertKind::Stuck => "stuck",
            AlertKind::WritebackStuck => "writeback_stuck",
            AlertKind::WritebackFailed => "writeback_failed",
            AlertKind::WritebackRejected => "writeback_rejected",
        }
    }
}

/// One alert record for `hiring.alerts.v1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Deterministic, like command ids: derived from the causing event and the kind.
    pub alert_id: String,
    pub kind: AlertKind,
    /// Who must act: the owner named by the policy.
    pub owner: String,
    pub candidate_id: String,
    pub application_id: String,
    pub event_id: String,
    pub detail: String,
    pub occurred_at: Timestamp,
}
