//! The pool's driver: the one lock over the state machine and the sockets it names, the effects
//! of each transition carried out once the lock is released, and the entry points through which
//! connections and leases report back.
//!
//! Calls go one way: the API (`pool.rs`) or a connection's event takes the lock, runs one
//! transition of the [`State`] machine, which lists its [`Effects`]; the driver resolves the
//! connections they name to their sockets, releases the lock, and carries them out
//! ([`Ready::run`], the only place that writes, wakes, spawns and answers). Connections report
//! back through [`ConnEvents`], one entry point per event, each one lock.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::completion::Completion;
use crate::config::PoolConfig;
use crate::connection::{drive, ConnEvents, ConnIo};
use crate::effects::Effects;
use crate::error::PoolError;
use crate::framing::Reply;
use crate::lease::LeaseOps;
use crate::metrics::{bump, Metrics, MetricsSnapshot};
use crate::observer::PoolObserver;
use crate::progress::{CallPhase, CallProgress};
use crate::reader::{Reader, Verdict};
use crate::request::{CallId, CallOptions, Job, Request};
use crate::socket::Socket;
use crate::state::{Now, Phase, Probe, State};
use crate::stats::PoolStats;
use crate::watcher::{ReadWatcher, WatchedConn};

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
    /// The pool's shared core, its maintenance task started on `runtime`.
    pub(crate) fn start(
        id: u64,
        span: tracing::Span,
        config: PoolConfig,
        runtime: Handle,
        watcher: Option<Arc<dyn ReadWatcher>>,
        observer: Option<Arc<dyn PoolObserver>>,
    ) -> Arc<Shared> {
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
        shared
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// See [`crate::Pool::next_maintenance`].
    pub(crate) fn next_maintenance(&self) -> Option<Instant> {
        self.lock().state.maintenance_due
    }

    /// See [`crate::Pool::stats`].
    pub(crate) fn stats(&self) -> PoolStats {
        let inner = self.lock();
        let st = &inner.state;
        // A connection on probation after its first reply carries no request: idle, to a caller.
        let active = st.conns.values().filter(|c| matches!(c.phase, Phase::Busy(_) | Phase::Leased)).count();
        let m = &self.metrics;
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

    /// See [`crate::Pool::metrics`].
    pub(crate) fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// Starts shutting down (see [`crate::Pool::shutdown_with`]).
    pub(crate) fn shutdown(&self, done: Option<Completion<()>>) {
        self.transition(|inner, _, _, fx| inner.state.shutdown(done, fx));
    }

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
    pub(crate) fn submit(&self, job: Job, options: CallOptions) -> CallId {
        let deadline = options.timeout.map(|t| Instant::now() + t);
        self.transition(|inner, cfg, now, fx| {
            inner.with_probe(|state, gone| {
                let call = state.next_call();
                state.submit(cfg, now, call, job, deadline, gone, fx);
                call
            })
        })
    }

    /// See [`crate::Pool::progress`].
    pub(crate) fn progress(&self, call: CallId) -> Option<CallProgress> {
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
    pub(crate) fn measured(&self, done: Completion<Reply>, submitted: Instant) -> Completion<Reply> {
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
    let settle = {
        let inner = shared.lock();
        inner.state.settle(&shared.config)
    };
    let outcome = crate::socket::open(&shared.config, settle, shared.watcher.is_some()).await;
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
