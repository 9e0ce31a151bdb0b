//! Node.js binding of the Blender MCP connection pool.
//!
//! Thin by design: each `#[napi]` item converts JavaScript values into `pool-core` types, calls
//! the core, and converts back. Replies reach JavaScript through one threadsafe function per
//! pool ([`settle`]), so a call costs no per-call promise machinery on the Rust side; the
//! JavaScript layer (`index.js`) keeps the promises.
#![deny(clippy::all, unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
#![warn(missing_docs, missing_debug_implementations, unused_results)]
// napi-derive registers the exported items only outside `cfg(test)`, so a test build (which
// clippy --all-targets checks) sees them unused.
#![cfg_attr(test, allow(dead_code))]

mod config;
mod deferred;
mod errors;
mod events;
mod lease;
mod log_format;
mod logging;
mod metrics;
mod node_symbols;
mod pool;
mod progress;
mod reply_text;
mod runtime;
mod settle;
mod testing;
mod uv;
mod watcher;
