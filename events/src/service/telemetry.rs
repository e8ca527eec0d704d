//! One way to set up `tracing` for every service.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber: JSON lines unless `CSTRACK_LOG_FORMAT=pretty`, filtered by
/// `RUST_LOG` (default `info`). A second call (tests start several services in one process) is a
/// no-op.
pub fn init(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let pretty = std::env::var("CSTRACK_LOG_FORMAT").is_ok_and(|format| format == "pretty");
    let result = if pretty {
        fmt().with_env_filter(filter).try_init()
    } else {
        fmt().json().with_current_span(false).with_env_filter(filter).try_init()
    };
    // Already installed: keep the first one.
    drop(result);
}
