//! Node.js binding of the Blender MCP connection pool.
//!
//! Thin by design: each `#[napi]` item converts JavaScript values into `pool-core` types, calls
//! the core, and converts back. Replies reach JavaScript through one threadsafe function per
//! pool ([`settle`]), so a call costs no per-call promise machinery on the Rust side; the
//! JavaScript layer (`index.js`) keeps the promises.
#![deny(clippy::all)]
#![warn(missing_docs, missing_debug_implementations, unused_results)]

mod config;
mod deferred;
mod errors;
mod events;
mod lease;
mod log_format;
mod logging;
mod metrics;
mod pool;
mod reply_text;
mod runtime;
mod settle;
mod testing;
#[cfg(unix)]
mod uv;
#[cfg(unix)]
mod watcher;
