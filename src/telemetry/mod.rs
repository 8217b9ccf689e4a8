//! Logging set-up: tracing with JSON output on stderr, filtered by `RUST_LOG` (default `warn`,
//! so command output on stdout stays clean). W3C trace context propagation through record
//! headers is [`trace_context`].

pub mod trace_context;

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber once; later calls do nothing.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A client context for readers that read to the end of partitions on purpose (restore,
/// `tail`): end-of-partition is how they know they are done, not an error worth a log line.
#[derive(Debug, Default, Clone, Copy)]
pub struct EofReaderContext;

impl rdkafka::ClientContext for EofReaderContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        let eof = matches!(error, rdkafka::error::KafkaError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(rdkafka::error::RDKafkaErrorCode::PartitionEOF);
        if !eof {
            tracing::error!(%error, reason, "librdkafka error");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for EofReaderContext {}
