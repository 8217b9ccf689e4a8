//! The Kafka tools vendors, sinks and analysts run beside the processor: `produce` (JSON-form
//! events onto a topic, in the configured framing) and `tail` (any hirestate topic back to
//! JSON lines, whatever its framing), and the standard output of every command that prints
//! data (`stdout`).

pub mod produce;
pub mod stdout;
pub mod tail;
