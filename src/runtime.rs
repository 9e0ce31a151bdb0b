//! The process-wide tokio runtime every pool runs on.
//!
//! One I/O thread: a pool's work is a few sockets, and each extra worker would be one more
//! thread to wake per reply (see `bench/README.md`). It is shared by every pool and every
//! worker_thread of the process, and never shut down: its thread does not keep Node alive.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

/// The handle of the shared runtime, started on first use.
pub(crate) fn handle() -> Handle {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(1)
                .max_blocking_threads(2)
                .thread_name("blender-mcp-pool-io")
                // Settlements made on this thread reach JS in one batch per round (see `deferred.rs`).
                .on_thread_park(crate::settle::deferred::on_park)
                .enable_all()
                .build()
                .expect("cannot start the blender-mcp-pool I/O thread")
        })
        .handle()
        .clone()
}
