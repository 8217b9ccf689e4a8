//! Logging set-up: tracing with JSON output on stderr, filtered by `RUST_LOG` (default `warn`,
//! so command output on stdout stays clean).

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
