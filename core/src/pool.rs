//! The pool: who gets which connection, when connections open and close.
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
//! All state sits behind one mutex, held only for bookkeeping (never across a callback, and
//! across no I/O but a non-blocking peek). Calls are callback-driven ([`Pool::submit`]) rather
//! than `async`, so that a call arriving while a connection is idle is written to the socket
//! right there on the caller's thread: no task is spawned and no thread is woken until
//! Blender's reply arrives. Everything that must happen after the lock is released (answering
//! callers, writing a request handed to a connection, spawning a connect) is collected in
//! [`Effects`] and run by [`Effects::run`].
//!
//! Waiters are served first-in first-out. The cap `maxConnections` counts open and opening
//! sockets, and every decision to open one is taken under the lock, so no race can exceed it.
//!
//! A request is only ever written once. It is re-routed to another connection only when it
//! provably never reached Blender: while it waits for a connection (connects failing are
//! retried, see `backoff.rs`), or when the idle connection it was about to use turns out to be
//! closed before anything was written.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::runtime::Handle;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use crate::completion::Completion;
use crate::config::PoolConfig;
use crate::connection::ConnIo;
use crate::error::PoolError;
use crate::lease::Lease;
use crate::maintenance::{connect, maintain};
use crate::state::{CallId, InFlight, Job, Phase, State, Waiter};
use crate::metrics::prometheus::{self, Family};
use crate::metrics::{bump, Metrics, MetricsSnapshot};
use crate::stats::PoolStats;
use crate::observer::PoolObserver;
use crate::watcher::ReadWatcher;

/// One command for Blender: its type (for logs) and the bytes to send.
#[derive(Debug, Clone)]
pub struct Request {
    command: String,
    pub(crate) bytes: Vec<u8>,
}

impl Request {
    /// A request whose body is the JSON text `json` (`{"type":...,"params":...}`); the pool
    /// frames it for the wire when it sends it. `command` is only used in logs: bodies are
    /// never logged.
    pub fn new(command: impl Into<String>, json: impl Into<String>) -> Self {
        Request { command: command.into(), bytes: json.into().into_bytes() }
    }

    /// The command type, as given.
    pub fn command(&self) -> &str {
        &self.command
    }
}

/// Options of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// The call's deadline, counted from the call. Past it, a call still waiting for a
    /// connection fails with `ERR_POOL_TIMEOUT` (nothing was sent) and a call in flight with
    /// `ERR_RESPONSE_TIMEOUT` (its connection is discarded). `socketTimeout` and
    /// `connectionTimeout` still apply.
    pub timeout: Option<Duration>,
}

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
        let _in_pool = self.shared.span.enter();
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
        let _in_pool = self.shared.span.enter();
        self.shared.submit(Job::Acquire(done), options)
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
        let _in_pool = self.shared.span.enter();
        self.shared.cancel_call(call);
    }

    /// When the maintenance task will next look at the queue and the clock, as of its last
    /// round (`None` before its first). For tests that must know it has seen a waiter.
    #[doc(hidden)]
    pub fn next_maintenance(&self) -> Option<Instant> {
        self.shared.lock().maintenance_due
    }

    /// A snapshot of the pool's counts.
    pub fn stats(&self) -> PoolStats {
        let st = self.shared.lock();
        let active = st.conns.values().filter(|c| !matches!(c.phase, Phase::Idle)).count();
        let m = &self.shared.metrics;
        PoolStats {
            total_connections: st.conns.len(),
            active_connections: active,
            idle_connections: st.conns.len() - active,
            pending_requests: st.waiters.len(),
            total_requests: m.successes.load(Ordering::Relaxed),
            opening_connections: st.opening,
            open_sockets: st.sockets,
            failed_requests: self.shared.counters.failed.load(Ordering::Relaxed),
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
        let _in_pool = self.shared.span.enter();
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
        let _in_pool = self.shared.span.enter();
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
        let shared = Arc::new(Shared {
            id,
            span,
            config,
            runtime,
            state: Mutex::new(State::default()),
            maintenance: Notify::new(),
            counters: Counters::default(),
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

/// What `stats()` counts beyond the metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Requests that failed after being sent (the connection was discarded).
    pub(crate) failed: AtomicU64,
    /// Call ids handed out.
    calls: AtomicU64,
}

pub(crate) fn wall_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64)
}

/// State shared by the pool handle, its leases and its tasks.
pub(crate) struct Shared {
    id: u64,
    pub(crate) span: tracing::Span,
    pub(crate) config: PoolConfig,
    pub(crate) runtime: Handle,
    state: Mutex<State>,
    /// Wakes the maintenance task (a waiter queued, connects failing, shutdown).
    pub(crate) maintenance: Notify,
    pub(crate) counters: Counters,
    pub(crate) metrics: Metrics,
    /// Reads replies instead of the connections' tasks, when given.
    pub(crate) watcher: Option<Arc<dyn ReadWatcher>>,
    /// Hears of connections opening and closing, when given.
    pub(crate) observer: Option<Arc<dyn PoolObserver>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("addr", &self.config.addr()).finish_non_exhaustive()
    }
}

/// Work to do once the lock is released, in order.
#[derive(Default)]
#[must_use]
pub(crate) struct Effects {
    pub(crate) replies: Vec<(Completion<String>, Result<String, PoolError>)>,
    pub(crate) leases: Vec<(Completion<Lease>, Result<Lease, PoolError>)>,
    pub(crate) sends: Vec<(Arc<ConnIo>, Vec<u8>)>,
    /// Connection tasks to wake: a call's deadline is earlier than their timer.
    pub(crate) wakes: Vec<Arc<ConnIo>>,
    pub(crate) connects: usize,
    pub(crate) closed: Vec<Completion<()>>,
}

impl Effects {
    pub(crate) fn run(self, shared: &Arc<Shared>) {
        for (done, outcome) in self.replies {
            done.complete(outcome);
        }
        for (done, outcome) in self.leases {
            done.complete(outcome);
        }
        for (io, bytes) in self.sends {
            if let Err(e) = io.write_or_queue(bytes) {
                shared.discard(io.id, PoolError::Write(e.to_string()));
            }
        }
        for io in self.wakes {
            io.wake();
        }
        for _ in 0..self.connects {
            shared.spawn(connect(shared.clone()));
        }
        for done in self.closed {
            done.complete(Ok(()));
        }
    }
}

/// The one record of a connection discarded because of `err`, at a level that says whose
/// problem it is: a protocol or transport fault of Blender's is a warning (with its code and
/// the command it hit), the caller's own abort or an idle connection Blender closed is routine,
/// and a bug of the pool is an error. Never the reply itself: [`PoolError::summary`] leaves out
/// the sample of the reply that the caller's message carries.
fn log_discard(id: u64, err: &PoolError, flight: Option<&InFlight>) {
    let code = err.code();
    let command = flight.map(|f| f.command.as_str());
    let summary = err.summary();
    match err {
        PoolError::Aborted => tracing::debug!(conn = id, command, "call aborted; discarding its connection"),
        PoolError::Internal(_) => tracing::error!(conn = id, command, code, "discarding connection: {summary}"),
        PoolError::InvalidResponse { .. } => {
            tracing::warn!(conn = id, command, code, "discarding connection: {summary}")
        }
        _ if flight.is_none() => tracing::debug!(conn = id, code, "discarding idle connection: {summary}"),
        _ => tracing::warn!(conn = id, command, code, "discarding connection: {summary}"),
    }
}

pub(crate) fn fail_job(job: Job, err: PoolError, fx: &mut Effects) {
    match job {
        Job::Execute(_, done) => fx.replies.push((done, Err(err))),
        Job::Acquire(done) => fx.leases.push((done, Err(err))),
    }
}

impl Shared {
    /// Runs `task` on the pool's runtime, inside the pool's span.
    pub(crate) fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        drop(self.runtime.spawn(tracing::Instrument::instrument(task, self.span.clone())));
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the bookkeeping as it was at the panic; carrying
        // on is better than failing every later call.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wraps a request's completion so its outcome and latency are counted.
    pub(crate) fn measured(self: &Arc<Self>, done: Completion<String>, submitted: Instant) -> Completion<String> {
        bump(&self.metrics.requests);
        let shared = self.clone();
        Completion::with_connection(move |outcome: Result<String, PoolError>, conn| {
            shared.metrics.request_ended(outcome.as_ref().map(|_| ()), submitted.elapsed());
            done.complete_on(outcome, conn);
        })
    }

    pub(crate) fn next_call(&self) -> CallId {
        self.counters.calls.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Serves a job at once if a connection is idle, otherwise queues it (opening a connection
    /// if the cap allows).
    fn submit(self: &Arc<Self>, job: Job, options: CallOptions) -> CallId {
        let call = self.next_call();
        let now = Instant::now();
        let job = match job {
            Job::Execute(request, done) => Job::Execute(request, self.measured(done, now)),
            acquire => acquire,
        };
        let deadline = options.timeout.map(|t| now + t);
        let mut fx = Effects::default();
        let mut st = self.lock();
        if st.shutdown {
            drop(st);
            fail_job(job, PoolError::Shutdown, &mut fx);
            fx.run(self);
            return call;
        }
        match self.take_idle(&mut st) {
            Some(id) => self.assign(&mut st, id, call, job, deadline, &mut fx),
            None => {
                let wait = now + self.config.connection_timeout;
                let give_up_at = deadline.map_or(wait, |d| d.min(wait));
                // The maintenance task enforces waiters' deadlines (and paces connect retries
                // only while the queue is non-empty): wake it only when this waiter changes when
                // it must next look. Under load the queue is rarely empty and deadlines grow in
                // FIFO order, so this saves waking the I/O thread per queued call.
                let must_wake = st.waiters.is_empty() || st.maintenance_due.is_none_or(|due| give_up_at < due);
                st.waiters.push_back(Waiter { call, job, give_up_at, deadline, queued_at: now });
                bump(&self.metrics.waits);
                self.open_for_waiters(&mut st, &mut fx);
                drop(st);
                if must_wake {
                    self.maintenance.notify_one();
                }
            }
        }
        fx.run(self);
        call
    }

    /// The most recently used idle connection that is still alive. Connections Blender closed
    /// (or that hold stray bytes) are dropped here, before any request is written to them.
    fn take_idle(&self, st: &mut State) -> Option<u64> {
        while let Some(id) = st.idle.pop() {
            let io = &st.conns.get(&id).expect("idle ids have entries").io;
            if let Some(why) = io.peer_gone() {
                tracing::debug!(conn = id, why, "idle connection found closed; not using it");
                let _ = self.remove(st, id, "closed-by-blender");
                continue;
            }
            return Some(id);
        }
        None
    }

    /// Gives connection `id` (just taken from the idle list, or just freed or opened) to a job.
    fn assign(
        self: &Arc<Self>,
        st: &mut State,
        id: u64,
        call: CallId,
        job: Job,
        deadline: Option<Instant>,
        fx: &mut Effects,
    ) {
        let entry = st.conns.get_mut(&id).expect("an assigned id has an entry");
        let now = Instant::now();
        entry.last_used = now;
        entry.last_used_ms = wall_ms();
        match job {
            Job::Execute(mut request, done) => {
                tracing::debug!(conn = id, command = request.command(), bytes = request.bytes.len(), "sending");
                self.config.framing.frame_request(&mut request.bytes);
                let command = std::mem::take(&mut request.command);
                let mut done = done;
                done.served_by(id);
                entry.phase = Phase::Busy(InFlight { done, call, command, since: now, deadline, leased: false });
                if deadline.is_some_and(|d| d < now + self.config.socket_timeout) {
                    fx.wakes.push(entry.io.clone());
                }
                fx.sends.push((entry.io.clone(), request.bytes));
            }
            Job::Acquire(done) => {
                entry.phase = Phase::Leased;
                fx.leases.push((done, Ok(Lease::new(self.clone(), id))));
            }
        }
    }

    /// Starts the connects the queue needs: one per waiter not already covered by a connect in
    /// progress, within the cap. While connects are failing, only one probe at a time, once its
    /// back-off delay has passed (the maintenance task calls again then).
    pub(crate) fn open_for_waiters(&self, st: &mut State, fx: &mut Effects) {
        if st.backoff.failing() {
            let due = st.backoff.retry_at().is_none_or(|at| at <= Instant::now());
            if due && st.opening == 0 && !st.waiters.is_empty() && st.can_open(&self.config) {
                st.opening += 1;
                fx.connects += 1;
                bump(&self.metrics.retries);
            }
            return;
        }
        while st.waiters.len() > st.opening && st.can_open(&self.config) {
            st.opening += 1;
            fx.connects += 1;
        }
    }

    /// A free connection goes to the first waiter, or back to the idle list — unless it has
    /// served its quota, outlived `max_lifetime`, or the pool is shutting down: then it closes.
    pub(crate) fn make_available(self: &Arc<Self>, st: &mut State, id: u64, fx: &mut Effects) {
        let now = Instant::now();
        let retire = match st.conns.get(&id) {
            _ if st.shutdown => Some("shutdown"),
            Some(c) if c.requests >= self.config.max_requests_per_connection => Some("max-requests"),
            Some(c) if c.expired(now) => Some("max-lifetime"),
            _ => None,
        };
        if let Some(why) = retire {
            tracing::debug!(conn = id, why, "retiring connection");
            let _ = self.remove(st, id, why);
            self.open_for_waiters(st, fx);
            return;
        }
        match st.waiters.pop_front() {
            Some(w) => {
                self.metrics.wait.record(w.queued_at.elapsed());
                self.assign(st, id, w.call, w.job, w.deadline, fx)
            }
            None => {
                let entry = st.conns.get_mut(&id).expect("caller checked");
                entry.phase = Phase::Idle;
                st.idle.push(id);
            }
        }
    }

    /// Removes connection `id` and closes its socket, `why` (the reason the connection's close
    /// event reports); returns the request it was serving.
    pub(crate) fn remove(&self, st: &mut State, id: u64, why: &'static str) -> Option<InFlight> {
        let entry = st.conns.remove(&id)?;
        st.idle.retain(|&i| i != id);
        entry.io.close_because(why);
        match entry.phase {
            Phase::Busy(flight) => Some(flight),
            _ => None,
        }
    }

    /// Drops connection `id` because of `err`, failing the request in flight on it, if any.
    pub(crate) fn discard(self: &Arc<Self>, id: u64, err: PoolError) {
        let _in_pool = self.span.enter();
        let mut fx = Effects::default();
        let mut st = self.lock();
        self.discard_locked(&mut st, id, err, &mut fx);
        drop(st);
        fx.run(self);
    }

    fn discard_locked(&self, st: &mut State, id: u64, err: PoolError, fx: &mut Effects) {
        if !st.conns.contains_key(&id) {
            return;
        }
        let flight = self.remove(st, id, err.code());
        log_discard(id, &err, flight.as_ref());
        if let Some(flight) = flight {
            bump(&self.counters.failed);
            fx.replies.push((flight.done, Err(err)));
        }
        self.open_for_waiters(st, fx);
    }

    /// Aborts call `call` wherever it is.
    pub(crate) fn cancel_call(self: &Arc<Self>, call: CallId) {
        let _in_pool = self.span.enter();
        let mut fx = Effects::default();
        let mut st = self.lock();
        if let Some(pos) = st.waiters.iter().position(|w| w.call == call) {
            let waiter = st.waiters.remove(pos).expect("position is in range");
            tracing::debug!("call aborted while waiting for a connection");
            fail_job(waiter.job, PoolError::Aborted, &mut fx);
        } else if let Some(id) = st.conn_running(call) {
            self.discard_locked(&mut st, id, PoolError::Aborted, &mut fx);
        }
        drop(st);
        fx.run(self);
    }

    /// Whether connection `id` is waiting for a reply.
    pub(crate) fn has_request_in_flight(&self, id: u64) -> bool {
        matches!(self.lock().conns.get(&id).map(|c| &c.phase), Some(Phase::Busy(_)))
    }

    /// A reply (or a bad reply) arrived on `id`. The caller is answered; the connection is
    /// reused if `reusable`, otherwise closed.
    pub(crate) fn finish_request(self: &Arc<Self>, id: u64, outcome: Result<String, PoolError>, reusable: bool) {
        let mut fx = Effects::default();
        let mut st = self.lock();
        let Some(entry) = st.conns.get_mut(&id) else { return };
        let Phase::Busy(flight) = std::mem::replace(&mut entry.phase, Phase::Idle) else {
            return;
        };
        entry.requests += 1;
        entry.last_used = Instant::now();
        entry.last_used_ms = wall_ms();
        match &outcome {
            Ok(text) => {
                let micros = flight.since.elapsed().as_micros() as u64;
                tracing::debug!(conn = id, bytes = text.len(), micros, "reply");
            }
            Err(e) => {
                bump(&self.counters.failed);
                log_discard(id, e, Some(&flight));
            }
        }
        let why = match &outcome {
            Err(e) => e.code(),
            Ok(_) => "unusable-after-reply",
        };
        fx.replies.push((flight.done, outcome));
        if !reusable {
            let _ = self.remove(&mut st, id, why);
            self.open_for_waiters(&mut st, &mut fx);
        } else if flight.leased {
            if st.shutdown {
                let _ = self.remove(&mut st, id, "shutdown");
            } else if let Some(entry) = st.conns.get_mut(&id) {
                entry.phase = Phase::Leased;
            }
        } else {
            self.make_available(&mut st, id, &mut fx);
        }
        drop(st);
        fx.run(self);
    }

    /// The connection task's timer fired or it handled an event: enforce the reply timeout, the
    /// call's deadline, the idle timeout and the lifetime, and say when to look again (`None`:
    /// the connection is gone, stop).
    ///
    /// The answer is never later than `socket_timeout` (nor `idle_timeout`) from now. That is
    /// what lets requests start without waking the task: any deadline they bring is at least
    /// that far away, unless the caller wakes the task itself (see [`Shared::assign`]).
    pub(crate) fn check_timers(self: &Arc<Self>, id: u64, progress: Instant) -> Option<Instant> {
        let now = Instant::now();
        let horizon = now + self.config.socket_timeout.min(self.config.idle_timeout);
        let mut st = self.lock();
        let min = self.config.min_connections;
        let total = st.conns.len();
        let entry = st.conns.get(&id)?;
        match &entry.phase {
            Phase::Busy(flight) => {
                let quiet_deadline = flight.since.max(progress) + self.config.socket_timeout;
                let deadline = flight.deadline.map_or(quiet_deadline, |d| d.min(quiet_deadline));
                if now < deadline {
                    // Look again by the horizon and the expiry too: with a watcher reading
                    // replies, this task does not hear when the call ends and the connection
                    // goes idle, and must still close it on time then.
                    let next = deadline.min(horizon);
                    return Some(match entry.expires_at {
                        Some(end) if end > now => next.min(end),
                        _ => next,
                    });
                }
                let after = match flight.deadline {
                    Some(d) if d <= quiet_deadline => d - flight.since,
                    _ => self.config.socket_timeout,
                };
                drop(st);
                self.discard(id, PoolError::ResponseTimeout(after));
                None
            }
            // Look again soon enough: the lease may be given back without this task hearing
            // of it, and the connection must then expire on time.
            Phase::Leased => Some(horizon.min(entry.expires_at.unwrap_or(horizon))),
            Phase::Idle => {
                if entry.expired(now) {
                    tracing::debug!(conn = id, "retiring connection: max lifetime reached");
                    let _ = self.remove(&mut st, id, "max-lifetime");
                    return None;
                }
                let lifetime_end = entry.expires_at.unwrap_or(horizon);
                let idle_end = entry.last_used + self.config.idle_timeout;
                if total <= min {
                    return Some(horizon.min(lifetime_end));
                }
                if now < idle_end {
                    return Some(horizon.min(idle_end).min(lifetime_end));
                }
                tracing::debug!(conn = id, "closing idle connection");
                let _ = self.remove(&mut st, id, "idle-timeout");
                None
            }
        }
    }

    /// The holder of a lease on `id` gave it back. A command still running on it finishes
    /// first, then the connection returns to the pool.
    pub(crate) fn end_lease(self: &Arc<Self>, id: u64) {
        let _in_pool = self.span.enter();
        let mut fx = Effects::default();
        let mut st = self.lock();
        if let Some(entry) = st.conns.get_mut(&id) {
            match &mut entry.phase {
                Phase::Leased => {
                    // Idle time counts from the release, not from the lease's last command.
                    entry.last_used = Instant::now();
                    self.make_available(&mut st, id, &mut fx);
                }
                Phase::Busy(flight) => flight.leased = false,
                Phase::Idle => {}
            }
        }
        drop(st);
        fx.run(self);
    }

    /// Runs `request` on leased connection `id` (which must be between commands).
    pub(crate) fn submit_on_lease(
        self: &Arc<Self>,
        id: u64,
        request: Request,
        options: CallOptions,
        done: Completion<String>,
    ) -> CallId {
        let call = self.next_call();
        let done = self.measured(done, Instant::now());
        let mut fx = Effects::default();
        let mut st = self.lock();
        let shutting_down = st.shutdown;
        match st.conns.get(&id).map(|e| &e.phase) {
            Some(Phase::Leased) => {
                let deadline = options.timeout.map(|t| Instant::now() + t);
                self.assign(&mut st, id, call, Job::Execute(request, done), deadline, &mut fx);
                if let Some(Phase::Busy(flight)) = st.conns.get_mut(&id).map(|e| &mut e.phase) {
                    flight.leased = true;
                }
            }
            Some(_) => fx.replies.push((done, Err(PoolError::LeaseBusy))),
            None if shutting_down => fx.replies.push((done, Err(PoolError::Shutdown))),
            None => fx.replies.push((
                done,
                Err(PoolError::ConnectionClosed("the leased connection was lost".into())),
            )),
        }
        drop(st);
        fx.run(self);
        call
    }

    /// A socket was closed for good: its slot is free for waiters now.
    pub(crate) fn socket_closed(self: &Arc<Self>) {
        let _in_pool = self.span.enter();
        let mut fx = Effects::default();
        let mut st = self.lock();
        st.sockets -= 1;
        self.open_for_waiters(&mut st, &mut fx);
        fx.closed = self.take_shutdown_done(&mut st);
        drop(st);
        fx.run(self);
    }

    pub(crate) fn take_shutdown_done(&self, st: &mut State) -> Vec<Completion<()>> {
        if st.shutdown && st.sockets == 0 && st.opening == 0 {
            std::mem::take(&mut st.shutdown_done)
        } else {
            Vec::new()
        }
    }

    fn shutdown(self: &Arc<Self>, done: Option<Completion<()>>) {
        let mut fx = Effects::default();
        let mut st = self.lock();
        if !st.shutdown {
            st.shutdown = true;
            tracing::info!(connections = st.conns.len(), waiting = st.waiters.len(), "shutting down pool");
            for waiter in std::mem::take(&mut st.waiters) {
                fail_job(waiter.job, PoolError::Shutdown, &mut fx);
            }
            let not_busy: Vec<u64> = st
                .conns
                .iter()
                .filter(|(_, c)| !matches!(c.phase, Phase::Busy(_)))
                .map(|(&id, _)| id)
                .collect();
            for id in not_busy {
                let _ = self.remove(&mut st, id, "shutdown");
            }
        }
        st.shutdown_done.extend(done);
        fx.closed = self.take_shutdown_done(&mut st);
        drop(st);
        self.maintenance.notify_one();
        fx.run(self);
    }

    /// A new connection's lifetime end, jittered down by up to 10% so connections opened
    /// together do not all retire together.
    pub(crate) fn lifetime_end(&self, now: Instant, id: u64) -> Option<Instant> {
        let lifetime = self.config.max_lifetime?;
        // Spread by id: cheap, deterministic per connection, and different for neighbours.
        let spread = (id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54) as f64 / 1024.0;
        Some(now + lifetime - lifetime.mul_f64(0.1 * spread))
    }
}
