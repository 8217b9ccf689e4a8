//! [`Record`]: what a type must provide to travel through the codec — its Avro schema name,
//! its Avro value form both ways, and (through serde) its JSON form. Implemented for the five
//! records on hirestate's topics.

use apache_avro::types::Value;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::avro_value::{event, outbound, snapshot};
use super::direct;
use super::CodecError;
use crate::model::{Alert, CandidateState, Command, Event, Rejection};

/// A record the codec can encode and decode in every framing.
///
/// The JSON form is the type's serde form (DESIGN.md "Events (inbound), in JSON form").
pub trait Record: Sized + Serialize + DeserializeOwned {
    /// The Avro record name, without namespace (`HiringEvent`, `Command`, ...): the file
    /// `schemas/avro/<SCHEMA>.avsc`.
    const SCHEMA: &'static str;

    /// The Avro value of `self`, shaped by the compiled-in schema.
    ///
    /// # Errors
    /// [`CodecError::Encode`] when a value cannot be represented (e.g. a count above `i32::MAX`).
    fn to_avro(&self) -> Result<Value, CodecError>;

    /// The record from a value already resolved to the reader schema.
    ///
    /// # Errors
    /// [`CodecError::Model`] naming the field that is missing or of the wrong shape.
    fn from_avro(value: Value) -> Result<Self, CodecError>;

    /// The fingerprint of the schema [`Record::read_direct`] and [`Record::write_direct`] are
    /// written for, for a type that has either (`codec/direct/`).
    const DIRECT_FINGERPRINT: Option<[u8; 8]> = None;

    /// The record of a bare Avro body written with the schema of
    /// [`Record::DIRECT_FINGERPRINT`], read without the `Value` step; `None` when the generic
    /// path must decide (it then also names what is wrong).
    fn read_direct(_body: &[u8]) -> Option<Self> {
        None
    }

    /// Appends the bare Avro body of `self` under the schema of
    /// [`Record::DIRECT_FINGERPRINT`], written without the `Value` step; `None` when the
    /// `Value` path must write it (it then also names what is wrong).
    fn write_direct(&self, _out: &mut Vec<u8>) -> Option<()> {
        None
    }
}

impl Record for Event {
    const SCHEMA: &'static str = "HiringEvent";
    fn to_avro(&self) -> Result<Value, CodecError> {
        Ok(event::to_value(self))
    }
    fn from_avro(value: Value) -> Result<Self, CodecError> {
        event::from_value(value)
    }
    const DIRECT_FINGERPRINT: Option<[u8; 8]> = Some(direct::event::FINGERPRINT);
    fn read_direct(body: &[u8]) -> Option<Self> {
        direct::event::read(body)
    }
    fn write_direct(&self, out: &mut Vec<u8>) -> Option<()> {
        direct::event::write(self, out)
    }
}

impl Record for Command {
    const SCHEMA: &'static str = "Command";
    fn to_avro(&self) -> Result<Value, CodecError> {
        outbound::command_to_value(self)
    }
    fn from_avro(value: Value) -> Result<Self, CodecError> {
        outbound::command_from_value(value)
    }
    const DIRECT_FINGERPRINT: Option<[u8; 8]> = Some(direct::outbound::COMMAND);
    fn write_direct(&self, out: &mut Vec<u8>) -> Option<()> {
        direct::outbound::write_command(self, out)
    }
}

impl Record for Rejection {
    const SCHEMA: &'static str = "Rejection";
    fn to_avro(&self) -> Result<Value, CodecError> {
        Ok(outbound::rejection_to_value(self))
    }
    fn from_avro(value: Value) -> Result<Self, CodecError> {
        outbound::rejection_from_value(value)
    }
    const DIRECT_FINGERPRINT: Option<[u8; 8]> = Some(direct::outbound::REJECTION);
    fn write_direct(&self, out: &mut Vec<u8>) -> Option<()> {
        direct::outbound::write_rejection(self, out)
    }
}

impl Record for Alert {
    const SCHEMA: &'static str = "Alert";
    fn to_avro(&self) -> Result<Value, CodecError> {
        Ok(outbound::alert_to_value(self))
    }
    fn from_avro(value: Value) -> Result<Self, CodecError> {
        outbound::alert_from_value(value)
    }
    const DIRECT_FINGERPRINT: Option<[u8; 8]> = Some(direct::outbound::ALERT);
    fn write_direct(&self, out: &mut Vec<u8>) -> Option<()> {
        direct::outbound::write_alert(self, out)
    }
}

/// A candidate's snapshot (`hiring.snapshots.v1`).
impl Record for CandidateState {
    const SCHEMA: &'static str = "Snapshot";
    fn to_avro(&self) -> Result<Value, CodecError> {
        snapshot::to_value(self)
    }
    fn from_avro(value: Value) -> Result<Self, CodecError> {
        snapshot::from_value(value)
    }
    const DIRECT_FINGERPRINT: Option<[u8; 8]> = Some(direct::snapshot::FINGERPRINT);
    fn write_direct(&self, out: &mut Vec<u8>) -> Option<()> {
        direct::snapshot::write(self, out)
    }
}
