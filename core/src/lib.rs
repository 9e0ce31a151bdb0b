//! The Blender MCP connection pool, in plain Rust: framing, connections, the pool, its
//! configuration, errors and statistics. It knows nothing of Node: the napi binding in the
//! parent crate converts between JavaScript values and these types, and supplies the Node
//! runtime glue (a [`ReadWatcher`] on the event loop, the delivery of outcomes).
//!
//! ```no_run
//! # async fn demo() -> Result<(), blender_mcp_pool_core::PoolError> {
//! use blender_mcp_pool_core::{Pool, PoolConfig, Request};
//! let pool = Pool::new(PoolConfig::new(), tokio::runtime::Handle::current());
//! let reply = pool.execute(Request::new("get_scene_info", r#"{"type":"get_scene_info"}"#)).await?;
//! assert!(reply.starts_with('{'));
//! pool.shutdown().await;
//! # Ok(()) }
//! ```
#![warn(missing_docs, missing_debug_implementations, unreachable_pub, unused_results)]
#![deny(unsafe_code)]

// A socket is either a descriptor or a Windows `SOCKET` (`socket.rs`); no other kind is known.
#[cfg(not(any(unix, windows)))]
compile_error!("blender-mcp-pool-core builds for Unix and Windows only");

mod backoff;
mod completion;
mod config;
mod connection;
mod dial;
mod driver;
mod effects;
mod error;
#[doc(hidden)]
pub mod failpoint;
pub mod framing;
mod in_step;
mod lease;
mod metrics;
mod observer;
mod pool;
mod progress;
mod reader;
mod request;
mod socket;
mod state;
mod stats;
mod watcher;

pub use completion::Completion;
pub use config::{ConfigError, ConfigInput, EnvInput, PoolConfig};
pub use error::{human_duration, Busy, PoolError};
pub use lease::{Lease, LeaseInfo};
pub use metrics::histogram::micros_to_ms;
pub use metrics::prometheus::{Family, Kind, Sample};
pub use metrics::{LatencySummary, MetricsSnapshot};
pub use observer::PoolObserver;
pub use pool::{Pool, PoolBuilder};
pub use progress::{CallPhase, CallProgress};
pub use request::{CallId, CallOptions, Request};
pub use socket::RawSocket;
pub use stats::PoolStats;
pub use watcher::{ReadWatcher, WatchNext, WatchedConn};
