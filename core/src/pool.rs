//! The pool's public API: [`Pool`] and its [`PoolBuilder`]. The driver behind it (the lock,
//! the effects, the connection events) is `driver.rs`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), blender_mcp_pool_core::PoolError> {
//! use blender_mcp_pool_core::{Pool, PoolConfig, Request};
//! let pool = Pool::new(PoolConfig::new(), tokio::runtime::Handle::current());
//! let reply = pool.execute(Request::new("get_scene_info", r#"{"type":"get_scene_info"}"#)).await?;
//! println!("{reply}");
//! pool.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Calls are callback-driven ([`Pool::submit`]) rather than `async`, so that a call arriving
//! while a connection is idle is written to the socket right there on the caller's thread: no
//! task is spawned and no thread is woken until Blender's reply arrives.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::completion::Completion;
use crate::config::PoolConfig;
use crate::driver::Shared;
use crate::error::PoolError;
use crate::framing::Reply;
use crate::lease::{Lease, LeaseOps};
use crate::metrics::prometheus::{self, Family};
use crate::metrics::MetricsSnapshot;
use crate::observer::PoolObserver;
use crate::progress::CallProgress;
use crate::request::{CallId, CallOptions, Job, Request};
use crate::stats::PoolStats;
use crate::watcher::ReadWatcher;

/// A connection pool to Blender's add-on server. Dropping it shuts it down.
#[derive(Debug)]
pub struct Pool {
    shared: Arc<Shared>,
}

impl Pool {
    /// Creates the pool and starts opening `min_connections` in the background on `runtime`.
    /// Never fails because Blender is down: connection errors surface on calls.
    pub fn new(config: PoolConfig, runtime: Handle) -> Self {
        Self::builder(config).start(runtime)
    }

    /// A pool not started yet. Its [`PoolBuilder::id`] is known before the pool emits its
    /// first record, so an embedder can route that pool's records (to a host logger, say)
    /// from the very first.
    pub fn builder(config: PoolConfig) -> PoolBuilder {
        static NEXT_POOL: AtomicU64 = AtomicU64::new(1);
        let id = NEXT_POOL.fetch_add(1, Ordering::Relaxed);
        // Every record the pool emits happens inside this span, so a subscriber can tell which
        // pool it came from (the binding routes each pool's records to its logger).
        PoolBuilder { id, span: tracing::error_span!("pool", pool = id), config, watcher: None, observer: None }
    }

    /// A number unique to this pool in the process; records carry it as the `pool` span field.
    pub fn id(&self) -> u64 {
        self.shared.id()
    }

    /// The configuration in force.
    pub fn config(&self) -> &PoolConfig {
        self.shared.config()
    }

    /// Sends `request` on a free connection and calls `done` with Blender's reply text (a
    /// validated Blender response) or the error. May be called from any thread.
    pub fn submit(&self, request: Request, done: Completion<String>) -> CallId {
        self.submit_with(request, CallOptions::default(), done)
    }

    /// [`Pool::submit`] with per-call options.
    pub fn submit_with(&self, request: Request, options: CallOptions, done: Completion<String>) -> CallId {
        self.submit_reply_with(request, options, done.of_reply_text())
    }

    /// [`Pool::submit_with`], answering with the [`Reply`] as the reader left it (its bytes,
    /// and whether they are ASCII), for callers that make their own text of it.
    pub fn submit_reply_with(&self, request: Request, options: CallOptions, done: Completion<Reply>) -> CallId {
        let done = self.shared.measured(done, Instant::now());
        self.shared.submit(Job::Execute(request, done), options)
    }

    /// `async` form of [`Pool::submit`].
    pub async fn execute(&self, request: Request) -> Result<String, PoolError> {
        let (tx, rx) = oneshot::channel();
        let _ = self.submit(request, Completion::new(move |r| drop(tx.send(r))));
        rx.await.unwrap_or_else(|_| Err(PoolError::Internal("reply channel dropped".into())))
    }

    /// Leases a connection for several commands in a row; `done` receives the [`Lease`].
    pub fn acquire_with(&self, options: CallOptions, done: Completion<Lease>) -> CallId {
        let ops: Arc<dyn LeaseOps> = self.shared.clone();
        let granted =
            Completion::new(move |conn: Result<u64, PoolError>| done.complete(conn.map(|conn| Lease::new(ops, conn))));
        self.shared.submit(Job::Acquire(granted), options)
    }

    /// `async` form of [`Pool::acquire_with`].
    pub async fn acquire(&self) -> Result<Lease, PoolError> {
        let (tx, rx) = oneshot::channel();
        let _ = self.acquire_with(CallOptions::default(), Completion::new(move |r| drop(tx.send(r))));
        rx.await.unwrap_or_else(|_| Err(PoolError::Internal("lease channel dropped".into())))
    }

    /// Aborts call `call`: a waiting call leaves the queue, a call in flight has its connection
    /// discarded; either fails with `ABORT_ERR`. A finished call is left alone.
    pub fn cancel(&self, call: CallId) {
        LeaseOps::cancel(&*self.shared, call);
    }

    /// Where call `call` stands: its stage, the bytes of its reply so far, and the command
    /// keeping Blender busy ahead of it. `None` once the call is settled (or never was).
    pub fn progress(&self, call: CallId) -> Option<CallProgress> {
        self.shared.progress(call)
    }

    /// When the maintenance task will next look at the queue and the clock, as of its last
    /// round (`None` before its first). For tests that must know it has seen a waiter.
    #[doc(hidden)]
    pub fn next_maintenance(&self) -> Option<Instant> {
        self.shared.next_maintenance()
    }

    /// A snapshot of the pool's counts.
    pub fn stats(&self) -> PoolStats {
        self.shared.stats()
    }

    /// Counters and latency percentiles since the pool started.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics()
    }

    /// The pool's metrics as Prometheus families (counters, latency histograms, connection
    /// gauges), each sample labelled with the pool's `name`.
    pub fn metric_families(&self) -> Vec<Family> {
        let (metrics, stats) = (self.metrics(), self.stats());
        prometheus::families(&metrics, &stats, &self.config().name)
    }

    /// [`Pool::metric_families`] in Prometheus' text exposition format.
    pub fn metrics_text(&self) -> String {
        prometheus::render(&self.metric_families())
    }

    /// Shuts the pool down and calls `done` once every socket is closed. Waiting callers fail
    /// at once with `ERR_POOL_SHUTDOWN`; requests in flight finish (or time out) first. Later
    /// calls fail at once and open nothing. Idempotent.
    pub fn shutdown_with(&self, done: Completion<()>) {
        self.shared.shutdown(Some(done));
    }

    /// `async` form of [`Pool::shutdown_with`].
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        self.shutdown_with(Completion::new(move |_| {
            let _ = tx.send(());
        }));
        drop(rx.await);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shutdown(None);
    }
}

/// A [`Pool`] about to start: see [`Pool::builder`].
#[derive(Debug)]
pub struct PoolBuilder {
    id: u64,
    span: tracing::Span,
    config: PoolConfig,
    watcher: Option<Arc<dyn ReadWatcher>>,
    observer: Option<Arc<dyn PoolObserver>>,
}

impl PoolBuilder {
    /// The id the pool will have ([`Pool::id`]), and its records' `pool` span field.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The span every record of the pool will be in (`pool = id`).
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Replies are read by `watcher` on its own thread instead of on the I/O thread (see
    /// [`ReadWatcher`]).
    pub fn watcher(mut self, watcher: Option<Arc<dyn ReadWatcher>>) -> Self {
        self.watcher = watcher;
        self
    }

    /// Connections opening and closing are reported to `observer` (see [`PoolObserver`]).
    pub fn observer(mut self, observer: Option<Arc<dyn PoolObserver>>) -> Self {
        self.observer = observer;
        self
    }

    /// Starts the pool on `runtime`: its maintenance task begins opening `min_connections`.
    pub fn start(self, runtime: Handle) -> Pool {
        let PoolBuilder { id, span, config, watcher, observer } = self;
        Pool { shared: Shared::start(id, span, config, runtime, watcher, observer) }
    }
}
