//! Node.js binding of the Blender MCP connection pool.
//!
//! Two kinds of file. The conversions, at the top: the `#[napi]` classes over the core's pool
//! and lease (`pool.rs`, `lease.rs`) and the JavaScript shapes of config, stats, metrics,
//! progress, errors and connection events (`config.rs`, `metrics.rs`, `progress.rs`,
//! `errors.rs`, `events.rs`). And the Node runtime glue, which is most of the code: `node/`
//! (symbols and libuv of the running Node, the event-loop watcher that reads replies on the
//! JavaScript thread), `runtime.rs` (the I/O thread), `settle/` (outcomes delivered to
//! JavaScript through one threadsafe function per pool, in order; big replies as external
//! strings) and `logging/` (records to stderr or to the host's logger). The JavaScript layer
//! (`lib/`) keeps the promises.
#![deny(clippy::all, unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
#![warn(missing_docs, missing_debug_implementations, unused_results)]
// napi-derive registers the exported items only outside `cfg(test)`, so a test build (which
// clippy --all-targets checks) sees them unused.
#![cfg_attr(test, allow(dead_code))]

mod config;
mod errors;
mod events;
mod lease;
mod logging;
mod metrics;
mod node;
mod pool;
mod progress;
mod runtime;
mod settle;
mod testing;
