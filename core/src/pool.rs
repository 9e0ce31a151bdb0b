//! The pool: its public API, its lock, and the driver that carries out what the state machine
//! decides.
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
//! # Design
//! Calls go one way: the API (or a connection's event) takes the one lock, runs one transition
//! of the [`State`] machine, which lists its [`Effects`]; the driver resolves the connections
//! they name to their sockets, releases the lock, and carries them out ([`Ready::run`], the only
//! place that writes, wakes, spawns and answers). Connections report back through
//! [`ConnEvents`], one entry point per event, each one lock.
//!
//! Calls are callback-driven ([`Pool::submit`]) rather than `async`, so that a call arriving
//! while a connection is idle is written to the socket right there on the caller's thread: no
//! task is spawned and no thread is woken until Blender's reply arrives.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::runtime::Handle;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use crate::completion::Completion;
use crate::config::PoolConfig;
use crate::connection::{drive, ConnEvents, ConnIo};
use crate::effects::Effects;
use crate::error::PoolError;
use crate::framing::Reply;
use crate::lease::{Lease, LeaseOps};
use crate::metrics::prometheus::{self, Family};
use crate::metrics::{bump, Metrics, MetricsSnapshot};
use crate::observer::PoolObserver;
use crate::progress::{CallPhase, CallProgress};
use crate::reader::Reader;
use crate::request::{CallId, CallOptions, Job, Request};
use crate::socket::Socket;
use crate::state::{Now, Phase, Probe, State, Verdict};
use crate::stats::PoolStats;
use crate::watcher::{ReadWatcher, WatchedConn};

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

    /// [`Pool::new`], with replies read by `watcher` on its own thread instead of on the I/O
    /// thread (see [`ReadWatcher`]). Ignored where watching is not supported (not Unix).
    pub fn with_watcher(config: PoolConfig, runtime: Handle, watcher: Option<Arc<dyn ReadWatcher>>) -> Self {
        Self::builder(config).watcher(watcher).start(runtime)
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
        self.shared.id
    }

    /// The configuration in force.
    pub fn config(&self) -> &PoolConfig {
        &self.shared.config
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
        self.shared.lock().state.maintenance_due
    }

    /// A snapshot of the pool's counts.
    pub fn stats(&self) -> PoolStats {
        let inner = self.shared.lock();
        let st = &inner.state;
        // A connection on probation after its first reply carries no request: idle, to a caller.
        let active = st.conns.values().filter(|c| matches!(c.phase, Phase::Busy(_) | Phase::Leased)).count();
        let m = &self.shared.metrics;
        PoolStats {
            total_connections: st.conns.len(),
            active_connections: active,
            idle_connections: st.conns.len() - active,
            pending_requests: st.waiters.len(),
            total_requests: m.successes.load(Ordering::Relaxed),
            opening_connections: st.opening,
            open_sockets: st.sockets,
            failed_requests: m.failed_after_send.load(Ordering::Relaxed),
            connections_opened: m.connects.load(Ordering::Relaxed),
            connect_failures: m.connect_failures.load(Ordering::Relaxed),
        }
    }

    /// Counters and latency percentiles since the pool started.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics.snapshot()
    }

    /// The pool's metrics as Prometheus families (counters, latency histograms, connection
    /// gauges), each sample labelled with the pool's `name`.
    pub fn metric_families(&self) -> Vec<Family> {
        let (metrics, stats) = (self.metrics(), self.stats());
        prometheus::families(&metrics, &stats, &self.shared.config.name)
    }

    /// [`Pool::metric_families`] in Prometheus' text exposition format.
    pub fn metrics_text(&self) -> String {
        prometheus::render(&self.metric_families())
    }

    /// Shuts the pool down and calls `done` once every socket is closed. Waiting callers fail
    /// at once with `ERR_POOL_SHUTDOWN`; requests in flight finish (or time out) first. Later
    /// calls fail at once and open nothing. Idempotent.
    pub fn shutdown_with(&self, done: Completion<()>) {
        self.shared.transition(|inner, _, _, fx| inner.state.shutdown(Some(done), fx));
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
        self.shared.transition(|inner, _, _, fx| inner.state.shutdown(None, fx));
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

    /// Replies are read by `watcher` (see [`Pool::with_watcher`]).
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
        let shared = Arc::new_cyclic(|this| Shared {
            this: this.clone(),
            id,
            span,
            config,
            runtime,
            inner: Mutex::new(Inner { state: State::default(), ios: HashMap::new() }),
            maintenance: Notify::new(),
            metrics: Metrics::default(),
            watcher,
            observer,
        });
        {
            let _in_pool = shared.span.enter();
            let (addr, max) = (shared.config.addr(), shared.config.max_connections);
            tracing::debug!(addr, max, watched = shared.watcher.is_some(), "pool created");
        }
        shared.spawn(maintain(shared.clone()));
        Pool { shared }
    }
}

/// What the lock guards: the state machine, and the socket of each connection it names.
struct Inner {
    state: State,
    ios: HashMap<u64, Arc<ConnIo>>,
}

impl Inner {
    /// The state machine, and the [`Probe`] it asks before handing a connection to a caller:
    /// a peek at that connection's socket.
    fn with_probe<R>(&mut self, f: impl FnOnce(&mut State, &mut Probe<'_>) -> R) -> R {
        let ios = &self.ios;
        let mut gone = |id: u64| ios.get(&id).and_then(|io| io.peer_gone());
        f(&mut self.state, &mut gone)
    }
}

/// What the pool handle, its leases, its connections and its tasks share.
pub(crate) struct Shared {
    /// This, for the effects that spawn tasks from a connection's event (which only borrows).
    this: std::sync::Weak<Shared>,
    id: u64,
    span: tracing::Span,
    config: PoolConfig,
    runtime: Handle,
    inner: Mutex<Inner>,
    /// Wakes the maintenance task (a waiter queued, connects failing, shutdown).
    maintenance: Notify,
    metrics: Metrics,
    /// Reads replies instead of the connections' tasks, when given.
    watcher: Option<Arc<dyn ReadWatcher>>,
    /// Hears of connections opening and closing, when given.
    observer: Option<Arc<dyn PoolObserver>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("id", &self.id).field("addr", &self.config.addr()).finish_non_exhaustive()
    }
}

/// The effects of a transition, their connections resolved to sockets: what [`Ready::run`]
/// does once the lock is released.
#[must_use]
struct Ready {
    closes: Vec<(Arc<ConnIo>, &'static str)>,
    replies: Vec<(Completion<Reply>, Result<Reply, PoolError>)>,
    grants: Vec<(Completion<u64>, Result<u64, PoolError>)>,
    sends: Vec<(Arc<ConnIo>, Vec<u8>)>,
    wakes: Vec<Arc<ConnIo>>,
    connects: usize,
    shutdown_done: Vec<Completion<()>>,
    wake_maintenance: bool,
}

impl Effects {
    /// Resolves the connections the effects name, under the lock: a closed connection leaves
    /// the socket map here (its socket closes when the last holder lets go of it).
    fn resolve(self, ios: &mut HashMap<u64, Arc<ConnIo>>) -> Ready {
        let closes = self.closes.into_iter().filter_map(|(id, why)| ios.remove(&id).map(|io| (io, why))).collect();
        let sends =
            self.sends.into_iter().filter_map(|(id, bytes)| ios.get(&id).map(|io| (io.clone(), bytes))).collect();
        let wakes = self.wakes.into_iter().filter_map(|id| ios.get(&id).cloned()).collect();
        Ready {
            closes,
            replies: self.replies,
            grants: self.grants,
            sends,
            wakes,
            connects: self.connects,
            shutdown_done: self.shutdown_done,
            wake_maintenance: self.wake_maintenance,
        }
    }
}

impl Ready {
    /// Carries the effects out, in order: close, answer, grant, write, wake, connect,
    /// report shutdown done. The only place that does any of these.
    fn run(self, shared: &Shared) {
        let _in_pool = shared.span.enter();
        for (io, why) in self.closes {
            io.close_because(why);
        }
        for (done, outcome) in self.replies {
            done.complete(outcome);
        }
        for (done, outcome) in self.grants {
            done.complete(outcome);
        }
        for (io, bytes) in self.sends {
            if let Err(err) = io.write_or_queue(bytes) {
                shared.on_failed(io.id, err);
            }
        }
        for io in self.wakes {
            io.wake();
        }
        if let (n @ 1.., Some(pool)) = (self.connects, shared.this.upgrade()) {
            for _ in 0..n {
                shared.spawn(connect(pool.clone()));
            }
        }
        for done in self.shutdown_done {
            done.complete(Ok(()));
        }
        if self.wake_maintenance {
            shared.maintenance.notify_one();
        }
    }
}

impl Shared {
    /// Runs `task` on the pool's runtime, inside the pool's span.
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        drop(self.runtime.spawn(tracing::Instrument::instrument(task, self.span.clone())));
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the bookkeeping as it was at the panic; carrying
        // on is better than failing every later call.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the lock, runs one transition `f` and resolves its effects; returns what `f`
    /// returned and the effects, to be run once the lock is released.
    fn decide<R>(&self, f: impl FnOnce(&mut Inner, &PoolConfig, Now, &mut Effects) -> R) -> (R, Ready) {
        let _in_pool = self.span.enter();
        let now = Now { at: Instant::now(), wall_ms: wall_ms() };
        let mut fx = Effects::default();
        let mut inner = self.lock();
        let out = f(&mut inner, &self.config, now, &mut fx);
        // Counted under the lock, with the state they count: `stats()` (which reads both under
        // it) never shows a connection whose connect is not counted yet, and a caller that
        // reads the stats after its reply sees its own request in them.
        self.metrics.add(&fx.tally);
        let ready = fx.resolve(&mut inner.ios);
        (out, ready)
    }

    /// [`Shared::decide`], then runs the effects.
    fn transition<R>(&self, f: impl FnOnce(&mut Inner, &PoolConfig, Now, &mut Effects) -> R) -> R {
        let (out, ready) = self.decide(f);
        ready.run(self);
        out
    }

    /// Serves a job at once if a connection is idle, otherwise queues it.
    fn submit(&self, job: Job, options: CallOptions) -> CallId {
        let deadline = options.timeout.map(|t| Instant::now() + t);
        self.transition(|inner, cfg, now, fx| {
            inner.with_probe(|state, gone| {
                let call = state.next_call();
                state.submit(cfg, now, call, job, deadline, gone, fx);
                call
            })
        })
    }

    /// [`Pool::progress`].
    fn progress(&self, call: CallId) -> Option<CallProgress> {
        let now = Instant::now();
        let (state, io) = {
            let inner = self.lock();
            let state = inner.state.call_state(call, now)?;
            let io = state.conn.and_then(|id| inner.ios.get(&id).cloned());
            (state, io)
        };
        let bytes_received = match (state.phase, io) {
            (CallPhase::Receiving, Some(io)) => io.received(),
            _ => 0,
        };
        Some(CallProgress {
            phase: state.phase,
            in_phase: now.saturating_duration_since(state.since),
            bytes_received,
            busy: state.busy,
        })
    }

    /// Wraps a request's completion so that its outcome and latency are counted.
    fn measured(&self, done: Completion<Reply>, submitted: Instant) -> Completion<Reply> {
        bump(&self.metrics.requests);
        let pool = self.this.clone();
        Completion::with_connection(move |outcome: Result<Reply, PoolError>, conn| {
            if let Some(pool) = pool.upgrade() {
                pool.metrics.request_ended(outcome.as_ref().map(|_| ()), submitted.elapsed());
            }
            done.complete_on(outcome, conn);
        })
    }

    /// A connect begun at `started` finished with `outcome`.
    fn on_connected(self: &Arc<Self>, started: Instant, outcome: Result<Socket, PoolError>) {
        let events: std::sync::Weak<dyn ConnEvents> = self.this.clone();
        let (opened, ready) = self.decide(|inner, cfg, now, fx| {
            let (socket, result) = match outcome {
                Ok(socket) => (Some(socket), Ok(())),
                Err(err) => (None, Err(err)),
            };
            // The new connection's socket is not in `ios` yet: it passed its settle (see
            // `socket::open`) a moment ago, and is asked again by the caller it serves.
            let id = inner.with_probe(|state, gone| state.connected(cfg, now, started, result, gone, fx))?;
            let reader = Reader::new(cfg.framing, cfg.max_response_bytes);
            let socket = socket.expect("a connection opened with a socket");
            let io = Arc::new(ConnIo::new(id, socket, reader, events));
            let _ = inner.ios.insert(id, io.clone());
            Some(io)
        });
        if let Some(io) = opened {
            if let Some(observer) = &self.observer {
                observer.connection_opened(io.id);
            }
            // Outside the lock: the watcher is the embedder's code (and may take its own locks).
            // Before the task starts, so the watcher hears of the connection before its end.
            if let (Some(watcher), true) = (&self.watcher, io.sock.is_watched()) {
                watcher.watch(WatchedConn::new(io.clone()));
            }
            self.spawn(drive(self.clone(), io));
        }
        ready.run(self);
    }
}

/// Milliseconds since the Unix epoch, for what a lease shows.
fn wall_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64)
}

/// Opens one connection and reports to the pool.
async fn connect(shared: Arc<Shared>) {
    let started = Instant::now();
    let outcome = crate::socket::open(&shared.config, shared.watcher.is_some()).await;
    shared.on_connected(started, outcome);
}

/// The maintenance task: enforces waiters' deadlines, paces connect retries and tops the pool
/// up to `min_connections`. Ends at shutdown, which dropping the `Pool` starts.
async fn maintain(shared: Arc<Shared>) {
    loop {
        let Some(next) = shared.transition(|inner, cfg, now, fx| inner.state.housekeep(cfg, now, fx)) else { return };
        tokio::select! {
            () = shared.maintenance.notified() => {}
            () = tokio::time::sleep_until(next) => {}
        }
    }
}

impl ConnEvents for Shared {
    fn on_read(&self, conn: u64, verdict: Verdict) -> bool {
        self.transition(|inner, cfg, now, fx| {
            inner.with_probe(|state, gone| state.on_read(cfg, now, conn, verdict, gone, fx))
        })
    }

    fn on_timer(&self, conn: u64, progress: Instant) -> Option<Instant> {
        self.transition(|inner, cfg, now, fx| {
            inner.with_probe(|state, gone| state.on_timer(cfg, now, conn, progress, gone, fx))
        })
    }

    fn on_failed(&self, conn: u64, err: PoolError) {
        self.transition(|inner, cfg, now, fx| inner.state.discard(cfg, now, conn, err, fx));
    }

    fn on_gone(&self, conn: u64, reason: &'static str) {
        if let Some(observer) = &self.observer {
            observer.connection_closed(conn, reason);
        }
    }

    fn on_socket_closed(&self) {
        self.transition(|inner, cfg, now, fx| inner.state.socket_closed(cfg, now, fx));
    }

    fn on_handed_back(&self, conn: u64) {
        if let Some(watcher) = &self.watcher {
            watcher.resume(conn);
        }
    }

    fn on_task_ended(&self, conn: u64) {
        if let Some(watcher) = &self.watcher {
            watcher.unwatch(conn);
        }
    }

    fn span(&self) -> &tracing::Span {
        &self.span
    }
}

impl LeaseOps for Shared {
    fn submit_on_lease(&self, conn: u64, request: Request, options: CallOptions, done: Completion<Reply>) -> CallId {
        let done = self.measured(done, Instant::now());
        let deadline = options.timeout.map(|t| Instant::now() + t);
        self.transition(|inner, cfg, now, fx| {
            inner.with_probe(|state, gone| {
                let call = state.next_call();
                state.submit_on_lease(cfg, now, conn, call, request, deadline, done, gone, fx);
                call
            })
        })
    }

    fn next_call(&self) -> CallId {
        self.lock().state.next_call()
    }

    fn cancel(&self, call: CallId) {
        self.transition(|inner, cfg, now, fx| inner.state.cancel(cfg, now, call, fx));
    }

    fn progress(&self, call: CallId) -> Option<CallProgress> {
        Shared::progress(self, call)
    }

    fn end_lease(&self, conn: u64) {
        self.transition(|inner, cfg, now, fx| {
            inner.with_probe(|state, gone| state.end_lease(cfg, now, conn, gone, fx))
        });
    }

    fn lease_view(&self, conn: u64) -> Option<(f64, f64, u64)> {
        self.lock().state.lease_view(conn)
    }
}
