//! The projection of one candidate: what the fold reads and writes, what sled stores and what
//! snapshots carry. Ordered maps ([`VecMap`]: sorted vectors, small and contiguous) and the
//! ordered [`IdSet`] only, so serialisation (and so snapshots and digests of the projection)
//! is deterministic.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{AckStatus, Command, CommandOp, FieldValue, IdSet, SourceSystem, Timestamp, VecMap};

/// One candidate's canonical state, rebuilt from the log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CandidateState {
    pub candidate_id: String,
    /// Every event id already folded for this candidate (the `duplicate` check).
    pub seen_event_ids: IdSet,
    pub applications: VecMap<String, Application>,
    /// Every command issued for this candidate, by id (the `unknown_command` check and the
    /// write-back lifecycle).
    pub commands: VecMap<Arc<str>, CommandRecord>,
    /// Event time of the last event folded (applied or not).
    pub last_event_at: Option<Timestamp>,
}

/// One application's canonical state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Application {
    /// Shared (`Arc`) with the application's commands, their records and its deadlines.
    pub application_id: Arc<str>,
    pub requisition_id: String,
    pub region: String,
    /// The policy's stage name, shared (`Arc`) with the policy and the outcomes.
    pub stage: Arc<str>,
    /// `occurred_at` of the event that moved the application into `stage` (dwell SLA clock).
    pub stage_entered_at: Timestamp,
    /// Dictionary field → current value. The names are the policy's own (`Arc`, shared by every
    /// application the fold writes; a decoded state has its own copies).
    pub fields: VecMap<Arc<str>, FieldValue>,
    /// Dictionary field → the system whose value is current.
    pub field_sources: VecMap<Arc<str>, SourceSystem>,
    /// The `stuck` alert was raised for this stage entry (reset by every move).
    #[serde(default)]
    pub stuck_alerted: bool,
}

/// Where a command is in its write-back lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    Pending,
    Confirmed,
    Failed,
    Rejected,
}

impl From<AckStatus> for CommandStatus {
    fn from(s: AckStatus) -> Self {
        match s {
            AckStatus::Confirmed => CommandStatus::Confirmed,
            AckStatus::Failed => CommandStatus::Failed,
            AckStatus::Rejected => CommandStatus::Rejected,
        }
    }
}

/// What the projection remembers of an issued command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandRecord {
    pub op: CommandOp,
    /// Shared with the command and the policy's target.
    pub target: Arc<str>,
    pub application_id: Arc<str>,
    pub status: CommandStatus,
    /// The causing event's `occurred_at`.
    pub issued_at: Timestamp,
    /// The latest ack's `occurred_at`.
    pub acked_at: Option<Timestamp>,
    pub attempts: u32,
    /// Who is told when it fails, is rejected or is stuck: the owner of the transition or
    /// field that caused it.
    #[serde(default)]
    pub owner: String,
    /// When the next attempt is due, after a retryable failure.
    #[serde(default)]
    pub retry_at: Option<Timestamp>,
    /// The `writeback_stuck` alert was raised for it.
    #[serde(default)]
    pub stuck_alerted: bool,
    /// The command as emitted, kept while it may still have to be emitted again (until
    /// confirmed, rejected or given up); shared with the outcome that emitted it.
    #[serde(default)]
    pub resend: Option<Arc<Command>>,
}

impl CommandRecord {
    /// Still waiting for a final answer (no confirmation, rejection or give-up yet).
    pub fn open(&self) -> bool {
        self.resend.is_some()
    }
}
