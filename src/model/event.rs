//! Inbound hiring events, as DESIGN.md "Events (inbound)" defines them. The JSON form is the
//! serde form of [`Event`]: one flat object with the common fields and `kind`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// The system an event claims to come from. Authority and golden-source rules are keyed on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceSystem {
    Ats,
    ScreeningVendor,
    Hris,
    AtsSink,
    HrisSink,
    Privacy,
    /// hirestate itself: only the deadline events its timers write into the log.
    Hirestate,
}

impl SourceSystem {
    /// Every system, in a fixed order (policy validation lists them in errors).
    pub const ALL: [SourceSystem; 7] = [
        SourceSystem::Ats,
        SourceSystem::ScreeningVendor,
        SourceSystem::Hris,
        SourceSystem::AtsSink,
        SourceSystem::HrisSink,
        SourceSystem::Privacy,
        SourceSystem::Hirestate,
    ];

    /// The snake_case name used on the wire and in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceSystem::Ats => "ats",
            SourceSystem::ScreeningVendor => "screening_vendor",
            SourceSystem::Hris => "hris",
            SourceSystem::AtsSink => "ats_sink",
            SourceSystem::HrisSink => "hris_sink",
            SourceSystem::Privacy => "privacy",
            SourceSystem::Hirestate => "hirestate",
        }
    }

    /// The inverse of [`SourceSystem::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for SourceSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value of a dictionary field. The dictionary, not this type, decides what is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    Bool(bool),
    Number(f64),
    Text(String),
    List(Vec<String>),
}

/// What a sink says happened to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    Confirmed,
    Failed,
    Rejected,
}

impl AckStatus {
    /// The snake_case name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AckStatus::Confirmed => "confirmed",
            AckStatus::Failed => "failed",
            AckStatus::Rejected => "rejected",
        }
    }
}

/// One inbound event: the common fields and the kind's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique per event; the fold's duplicate check and the command ids derive from it.
    pub event_id: String,
    /// The Kafka key: every event of one candidate lands on one partition, in order.
    pub candidate_id: String,
    pub application_id: String,
    pub source_system: SourceSystem,
    /// Who within the source system, e.g. a vendor id; the key for signature checks.
    pub source_principal: String,
    pub occurred_at: Timestamp,
    /// HMAC-SHA256 of the payload, hex, for sources configured to sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The kind-specific part of an [`Event`]; `kind` is the tag in the JSON form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// Starts the application in `applied`. Only the ATS may send it.
    ApplicationCreated {
        requisition_id: String,
        region: String,
    },
    StageChanged {
        to_stage: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Asks for stage `screened` and asserts the `screening.*` fields.
    ScreeningCompleted {
        score: f64,
        recommendation: String,
        rubric_version: String,
        reviewer_ids: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_url: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transcript_url: Option<String>,
    },
    FieldsAsserted {
        fields: BTreeMap<String, FieldValue>,
    },
    WritebackAcked {
        command_id: String,
        status: AckStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remote_ref: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(default)]
        retryable: bool,
    },
    /// Forget the candidate's personal and sensitive fields.
    ErasureRequested {},
    /// A deadline hirestate's clock passed (`src/timers`): written into the log by the
    /// processor itself, so firing a timer is folded, replayed and deduplicated like any event.
    DeadlineReached {
        timer: TimerKind,
        /// The stage (`stage_dwell`) or the command id (`writeback_sla`, `retry`).
        subject: String,
        /// The deadline, in event time; also this event's `occurred_at`.
        due_at: Timestamp,
        /// For `retry`: the attempt to emit; 0 otherwise.
        #[serde(default)]
        attempt: u32,
    },
}

/// The deadlines hirestate keeps (DESIGN.md "Write-back lifecycle and KPIs").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// An application's time in its stage passed the stage's dwell SLA → `stuck` alert.
    StageDwell,
    /// A command stayed unconfirmed past the write-back SLA → `writeback_stuck` alert.
    WritebackSla,
    /// A retryable failure's backoff ended → the same command, next attempt.
    Retry,
}

impl TimerKind {
    pub const ALL: [TimerKind; 3] = [
        TimerKind::StageDwell,
        TimerKind::WritebackSla,
        TimerKind::Retry,
    ];

    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::StageDwell => "stage_dwell",
            TimerKind::WritebackSla => "writeback_sla",
            TimerKind::Retry => "retry",
        }
    }
}

impl EventKind {
    /// The snake_case `kind` name.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::ApplicationCreated { .. } => "application_created",
            EventKind::StageChanged { .. } => "stage_changed",
            EventKind::ScreeningCompleted { .. } => "screening_completed",
            EventKind::FieldsAsserted { .. } => "fields_asserted",
            EventKind::WritebackAcked { .. } => "writeback_acked",
            EventKind::ErasureRequested {} => "erasure_requested",
            EventKind::DeadlineReached { .. } => "deadline_reached",
        }
    }
}
