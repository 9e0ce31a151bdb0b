//! Logs go to **stderr only**: the consumer's stdout is its MCP protocol channel.
//!
//! Level from `LOG_LEVEL` (debug|info|warn|error|silent, default warn), format from
//! `LOG_FORMAT` (json|pretty, default pretty). Records carry command types, sizes, timings and
//! connection ids, never request or reply bodies.

use napi_derive::napi;
use tracing_subscriber::filter::LevelFilter;

/// Installs the process-wide subscriber. The first call wins (later pools, or worker threads,
/// share it); unknown values fall back to the defaults.
#[napi]
pub fn init_logging(level: Option<String>, format: Option<String>) {
  let filter = match level.as_deref().map(str::to_ascii_lowercase).as_deref() {
    Some("debug") => LevelFilter::DEBUG,
    Some("info") => LevelFilter::INFO,
    Some("error") => LevelFilter::ERROR,
    Some("silent") | Some("off") => LevelFilter::OFF,
    _ => LevelFilter::WARN,
  };
  let builder = tracing_subscriber::fmt()
    .with_writer(std::io::stderr)
    .with_max_level(filter)
    .with_target(false)
    .with_ansi(false);
  let _ = match format.as_deref() {
    Some("json") => builder.json().try_init(),
    _ => builder.compact().try_init(),
  };
}

