//! The types that cross stages: inbound [`Event`]s, per-candidate [`CandidateState`], the
//! fold's [`Decision`], and the outbound records ([`Command`], [`Rejection`], [`Alert`]).
//!
//! These types carry no behaviour beyond small conversions: the codec turns bytes into them,
//! the fold reads and writes them, the publisher turns them back into bytes. Keeping them in one
//! place is what lets the live processor and `hirestate replay` share every line of logic.

mod event;
mod id_set;
mod outbound;
mod state;
mod time;
mod vec_map;

pub use event::{AckStatus, Event, EventKind, FieldValue, SourceSystem, TimerKind};
pub use id_set::IdSet;
pub use outbound::{
    Alert, AlertKind, Command, CommandOp, CommandPayload, Decision, RejectReason, Rejection,
    TargetSystem,
};
pub use state::{Application, CandidateState, CommandRecord, CommandStatus};
pub use time::Timestamp;
pub use vec_map::VecMap;
