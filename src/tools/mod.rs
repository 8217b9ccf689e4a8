//! The Kafka tools vendors, sinks and analysts run beside the processor: `produce` (JSON-form
//! events onto a topic, in the configured framing), `tail` (any hirestate topic back to
//! JSON lines, whatever its framing), `copy_events` (the event log into a new one with more
//! partitions), and the standard output of every command that prints data (`stdout`).

pub mod copy_events;
pub mod produce;
pub mod stdout;
pub mod tail;
