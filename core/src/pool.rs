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
//! All state sits behind one mutex, held only for bookkeeping (never across I/O or a callback).
//! Calls are callback-driven ([`Pool::submit`]) rather than `async`, so that a call arriving
//! while a connection is idle is written to the socket right there on the caller's thread: no
//! task is spawned and no thread is woken until Blender's reply arrives. Everything that must
//! happen after the lock is released (answering callers, writing a request handed to a
//! connection, spawning a connect) is collected in [`Effects`] and run by [`Effects::run`].
//!
//! Waiters are served first-in first-out. The cap `maxConnections` counts open and opening
//! sockets, and every decision to open one is taken under the lock, so no race can exceed it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use crate::completion::Completion;
use crate::config::PoolConfig;
use crate::connection::{drive, tune_socket, ConnIo};
use crate::error::PoolError;
use crate::lease::Lease;
use crate::stats::PoolStats;

/// One command for Blender: its type (for logs) and the bytes to send.
#[derive(Debug, Clone)]
pub struct Request {
    command: String,
    pub(crate) bytes: Vec<u8>,
}

impl Request {
    /// A request whose body is the JSON text `json` (`{"type":...,"params":...}`); the framing
    /// newline is appended here. `command` is only used in logs: bodies are never logged.
    pub fn new(command: impl Into<String>, json: impl Into<String>) -> Self {
        let mut bytes = json.into().into_bytes();
        bytes.push(b'\n');
        Request { command: command.into(), bytes }
    }

    /// The command type, as given.
    pub fn command(&self) -> &str {
        &self.command
    }
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
        let shared = Arc::new(Shared {
            config,
            runtime,
            state: Mutex::new(State::default()),
            maintenance: Notify::new(),
            counters: Counters::default(),
        });
        let task = maintain(shared.clone());
        drop(shared.runtime.spawn(task));
        Pool { shared }
    }

    /// The configuration in force.
    pub fn config(&self) -> &PoolConfig {
        &self.shared.config
    }

    /// Sends `request` on a free connection and calls `done` with Blender's reply text (a
    /// validated Blender response) or the error. May be called from any thread.
    pub fn submit(&self, request: Request, done: Completion<String>) {
        self.shared.submit(Job::Execute(request, done));
    }

    /// `async` form of [`Pool::submit`].
    pub async fn execute(&self, request: Request) -> Result<String, PoolError> {
        let (tx, rx) = oneshot::channel();
        self.submit(request, Completion::new(move |r| drop(tx.send(r))));
        rx.await.unwrap_or_else(|_| Err(PoolError::Internal("reply channel dropped".into())))
    }

    /// Leases a connection for several commands in a row; `done` receives the [`Lease`].
    pub fn acquire_with(&self, done: Completion<Lease>) {
        self.shared.submit(Job::Acquire(done));
    }

    /// `async` form of [`Pool::acquire_with`].
    pub async fn acquire(&self) -> Result<Lease, PoolError> {
        let (tx, rx) = oneshot::channel();
        self.acquire_with(Completion::new(move |r| drop(tx.send(r))));
        rx.await.unwrap_or_else(|_| Err(PoolError::Internal("lease channel dropped".into())))
    }

    /// A snapshot of the pool's counts.
    pub fn stats(&self) -> PoolStats {
        let st = self.shared.lock();
        let active = st.conns.values().filter(|c| !matches!(c.phase, Phase::Idle)).count();
        PoolStats {
            total_connections: st.conns.len(),
            active_connections: active,
            idle_connections: st.conns.len() - active,
            pending_requests: st.waiters.len(),
            total_requests: self.shared.counters.completed.load(Ordering::Relaxed),
            opening_connections: st.opening,
            failed_requests: self.shared.counters.failed.load(Ordering::Relaxed),
            connections_opened: self.shared.counters.opened.load(Ordering::Relaxed),
            connect_failures: self.shared.counters.connect_failures.load(Ordering::Relaxed),
        }
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

/// What a caller asked for.
pub(crate) enum Job {
    /// Send a request, answer with the reply.
    Execute(Request, Completion<String>),
    /// Hand over a connection.
    Acquire(Completion<Lease>),
}

/// What a connection is doing.
pub(crate) enum Phase {
    /// In the pool, free.
    Idle,
    /// Held by a lease, no command running.
    Leased,
    /// A request was sent; `done` gets the reply. `leased` says where the connection goes after.
    Busy { done: Completion<String>, since: Instant, leased: bool },
}

/// The pool's bookkeeping for one open connection.
pub(crate) struct ConnEntry {
    pub(crate) io: Arc<ConnIo>,
    pub(crate) phase: Phase,
    /// Wall-clock ms, for the JavaScript handle.
    pub(crate) created_at_ms: f64,
    pub(crate) last_used_ms: f64,
    last_used: Instant,
    pub(crate) requests: u64,
}

/// A caller in the queue.
struct Waiter {
    job: Job,
    deadline: Instant,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) conns: HashMap<u64, ConnEntry>,
    /// Idle connection ids, most recently used last (taken from the end: hot connections stay
    /// hot and surplus ones age out).
    idle: Vec<u64>,
    /// Connects in progress; they count against `max_connections`.
    opening: usize,
    /// Sockets not yet closed (entries plus those being torn down).
    sockets: usize,
    waiters: VecDeque<Waiter>,
    pub(crate) shutdown: bool,
    shutdown_done: Vec<Completion<()>>,
    next_id: u64,
    /// Consecutive failed connects, for the top-up back-off.
    connect_failures: u32,
    next_top_up: Option<Instant>,
}

impl State {
    fn can_open(&self, config: &PoolConfig) -> bool {
        !self.shutdown && self.conns.len() + self.opening < config.max_connections
    }
}

#[derive(Debug, Default)]
struct Counters {
    completed: AtomicU64,
    failed: AtomicU64,
    opened: AtomicU64,
    connect_failures: AtomicU64,
}

/// State shared by the pool handle, its leases and its tasks.
pub(crate) struct Shared {
    pub(crate) config: PoolConfig,
    runtime: Handle,
    state: Mutex<State>,
    /// Wakes the maintenance task (a first waiter queued, shutdown).
    maintenance: Notify,
    counters: Counters,
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
    replies: Vec<(Completion<String>, Result<String, PoolError>)>,
    leases: Vec<(Completion<Lease>, Result<Lease, PoolError>)>,
    pub(crate) sends: Vec<(Arc<ConnIo>, Vec<u8>)>,
    connects: usize,
    closed: Vec<Completion<()>>,
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
        for _ in 0..self.connects {
            drop(shared.runtime.spawn(connect(shared.clone())));
        }
        for done in self.closed {
            done.complete(Ok(()));
        }
    }
}

fn bump(counter: &AtomicU64) {
    let _ = counter.fetch_add(1, Ordering::Relaxed);
}

fn wall_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64)
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the bookkeeping as it was at the panic; carrying
        // on is better than failing every later call.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves a job at once if a connection is idle, otherwise queues it (opening a connection
    /// if the cap allows).
    pub(crate) fn submit(self: &Arc<Self>, job: Job) {
        let mut fx = Effects::default();
        let mut st = self.lock();
        if st.shutdown {
            drop(st);
            fail_job(job, PoolError::Shutdown, &mut fx);
            return fx.run(self);
        }
        if let Some(id) = st.idle.pop() {
            self.assign(&mut st, id, job, &mut fx);
        } else {
            st.waiters.push_back(Waiter { job, deadline: Instant::now() + self.config.connection_timeout });
            let first = st.waiters.len() == 1;
            self.open_for_waiters(&mut st, &mut fx);
            drop(st);
            if first {
                self.maintenance.notify_one();
            }
        }
        fx.run(self);
    }

    /// Gives connection `id` (just taken from the idle list, or just opened) to `job`.
    fn assign(self: &Arc<Self>, st: &mut State, id: u64, job: Job, fx: &mut Effects) {
        let entry = st.conns.get_mut(&id).expect("an idle or new id has an entry");
        entry.last_used = Instant::now();
        entry.last_used_ms = wall_ms();
        match job {
            Job::Execute(request, done) => {
                tracing::debug!(conn = id, command = request.command(), bytes = request.bytes.len(), "sending");
                entry.phase = Phase::Busy { done, since: Instant::now(), leased: false };
                fx.sends.push((entry.io.clone(), request.bytes));
            }
            Job::Acquire(done) => {
                entry.phase = Phase::Leased;
                fx.leases.push((done, Ok(Lease::new(self.clone(), id))));
            }
        }
    }

    /// Starts one connect per waiter not already covered by a connect in progress.
    fn open_for_waiters(&self, st: &mut State, fx: &mut Effects) {
        while st.waiters.len() > st.opening && st.can_open(&self.config) {
            st.opening += 1;
            fx.connects += 1;
        }
    }

    /// A free connection goes to the first waiter, or back to the idle list — unless it has
    /// served its quota or the pool is shutting down, in which case it is closed.
    fn make_available(self: &Arc<Self>, st: &mut State, id: u64, fx: &mut Effects) {
        let retire = st.shutdown
            || st.conns.get(&id).is_some_and(|c| c.requests >= self.config.max_requests_per_connection);
        if retire {
            tracing::debug!(conn = id, "retiring connection");
            let _ = self.remove(st, id);
            self.open_for_waiters(st, fx);
            return;
        }
        match st.waiters.pop_front() {
            Some(waiter) => self.assign(st, id, waiter.job, fx),
            None => {
                let entry = st.conns.get_mut(&id).expect("caller checked");
                entry.phase = Phase::Idle;
                st.idle.push(id);
            }
        }
    }

    /// Removes connection `id` and closes its socket; a request it was serving fails with `err`.
    fn remove(&self, st: &mut State, id: u64) -> Option<Completion<String>> {
        let entry = st.conns.remove(&id)?;
        st.idle.retain(|&i| i != id);
        entry.io.close();
        match entry.phase {
            Phase::Busy { done, .. } => Some(done),
            _ => None,
        }
    }

    /// Drops connection `id` because of `err`, failing the request in flight on it, if any.
    pub(crate) fn discard(self: &Arc<Self>, id: u64, err: PoolError) {
        let mut fx = Effects::default();
        let mut st = self.lock();
        if !st.conns.contains_key(&id) {
            return;
        }
        tracing::debug!(conn = id, code = err.code(), "discarding connection");
        if let Some(done) = self.remove(&mut st, id) {
            bump(&self.counters.failed);
            fx.replies.push((done, Err(err)));
        }
        self.open_for_waiters(&mut st, &mut fx);
        drop(st);
        fx.run(self);
    }

    /// Whether connection `id` is waiting for a reply.
    pub(crate) fn has_request_in_flight(&self, id: u64) -> bool {
        matches!(self.lock().conns.get(&id).map(|c| &c.phase), Some(Phase::Busy { .. }))
    }

    /// A reply (or a bad reply) arrived on `id`. The caller is answered; the connection is
    /// reused if `reusable`, otherwise closed.
    pub(crate) fn finish_request(self: &Arc<Self>, id: u64, outcome: Result<String, PoolError>, reusable: bool) {
        let mut fx = Effects::default();
        let mut st = self.lock();
        let Some(entry) = st.conns.get_mut(&id) else { return };
        let Phase::Busy { done, since, leased } = std::mem::replace(&mut entry.phase, Phase::Idle) else {
            return;
        };
        entry.requests += 1;
        entry.last_used = Instant::now();
        entry.last_used_ms = wall_ms();
        match &outcome {
            Ok(text) => {
                bump(&self.counters.completed);
                tracing::debug!(conn = id, bytes = text.len(), micros = since.elapsed().as_micros() as u64, "reply");
            }
            Err(e) => {
                bump(&self.counters.failed);
                tracing::warn!(conn = id, code = e.code(), "bad reply from Blender; discarding connection");
            }
        }
        fx.replies.push((done, outcome));
        if !reusable {
            let _ = self.remove(&mut st, id);
            self.open_for_waiters(&mut st, &mut fx);
        } else if leased {
            if st.shutdown {
                let _ = self.remove(&mut st, id);
            } else if let Some(entry) = st.conns.get_mut(&id) {
                entry.phase = Phase::Leased;
            }
        } else {
            self.make_available(&mut st, id, &mut fx);
        }
        drop(st);
        fx.run(self);
    }

    /// The connection task's timer fired or it handled an event: enforce the reply timeout and
    /// the idle timeout, and say when to look again (`None`: the connection is gone, stop).
    pub(crate) fn check_timers(self: &Arc<Self>, id: u64, progress: Instant) -> Option<Instant> {
        let now = Instant::now();
        let horizon = now + self.config.socket_timeout;
        let mut st = self.lock();
        let min = self.config.min_connections;
        let total = st.conns.len();
        let entry = st.conns.get(&id)?;
        match &entry.phase {
            Phase::Busy { since, .. } => {
                let deadline = (*since).max(progress) + self.config.socket_timeout;
                if now < deadline {
                    return Some(deadline);
                }
                drop(st);
                tracing::warn!(conn = id, "reply timeout");
                self.discard(id, PoolError::ResponseTimeout(self.config.socket_timeout));
                None
            }
            // Look again within the idle timeout: the lease may be given back without this
            // task hearing of it, and the connection must then expire on time.
            Phase::Leased => Some(horizon.min(now + self.config.idle_timeout)),
            Phase::Idle => {
                let expiry = entry.last_used + self.config.idle_timeout;
                if total <= min {
                    return Some(horizon.min(now + self.config.idle_timeout));
                }
                if now < expiry {
                    return Some(horizon.min(expiry));
                }
                tracing::debug!(conn = id, "closing idle connection");
                let _ = self.remove(&mut st, id);
                None
            }
        }
    }

    /// The holder of a lease on `id` gave it back. A command still running on it finishes
    /// first, then the connection returns to the pool.
    pub(crate) fn end_lease(self: &Arc<Self>, id: u64) {
        let mut fx = Effects::default();
        let mut st = self.lock();
        match st.conns.get_mut(&id).map(|e| &mut e.phase) {
            Some(Phase::Leased) => {
                // Idle time counts from the release, not from the lease's last command.
                if let Some(entry) = st.conns.get_mut(&id) {
                    entry.last_used = Instant::now();
                }
                self.make_available(&mut st, id, &mut fx)
            }
            Some(Phase::Busy { leased, .. }) => *leased = false,
            _ => {}
        }
        drop(st);
        fx.run(self);
    }

    /// A socket was closed for good.
    pub(crate) fn socket_closed(&self) {
        let mut st = self.lock();
        st.sockets -= 1;
        let done = self.take_shutdown_done(&mut st);
        drop(st);
        for d in done {
            d.complete(Ok(()));
        }
    }

    fn take_shutdown_done(&self, st: &mut State) -> Vec<Completion<()>> {
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
                .filter(|(_, c)| !matches!(c.phase, Phase::Busy { .. }))
                .map(|(&id, _)| id)
                .collect();
            for id in not_busy {
                let _ = self.remove(&mut st, id);
            }
        }
        st.shutdown_done.extend(done);
        fx.closed = self.take_shutdown_done(&mut st);
        drop(st);
        self.maintenance.notify_one();
        fx.run(self);
    }

    /// Housekeeping: expire waiters past their deadline, top up to `min_connections`.
    /// Returns when to run again, or `None` once the pool is shut down.
    fn housekeep(self: &Arc<Self>) -> Option<Instant> {
        let now = Instant::now();
        let mut fx = Effects::default();
        let mut st = self.lock();
        if st.shutdown {
            return None;
        }
        while st.waiters.front().is_some_and(|w| w.deadline <= now) {
            let waiter = st.waiters.pop_front().expect("checked");
            tracing::debug!("caller gave up waiting for a connection");
            fail_job(waiter.job, PoolError::PoolTimeout, &mut fx);
        }
        let next_top_up = *st.next_top_up.get_or_insert(now);
        if next_top_up <= now {
            let have = st.conns.len() + st.opening;
            let mut deficit = self.config.min_connections.saturating_sub(have);
            while deficit > 0 && st.can_open(&self.config) {
                st.opening += 1;
                fx.connects += 1;
                deficit -= 1;
            }
            st.next_top_up = Some(now + self.config.health_check_interval);
        }
        let mut next = st.next_top_up.expect("set above");
        if let Some(w) = st.waiters.front() {
            next = next.min(w.deadline);
        }
        drop(st);
        fx.run(self);
        Some(next)
    }

    /// A connect finished (or failed).
    fn connected(self: &Arc<Self>, outcome: Result<TcpStream, PoolError>) {
        let mut fx = Effects::default();
        let mut st = self.lock();
        st.opening -= 1;
        match outcome {
            Ok(stream) if !st.shutdown => {
                st.connect_failures = 0;
                st.next_id += 1;
                let id = st.next_id;
                st.sockets += 1;
                bump(&self.counters.opened);
                let io = Arc::new(ConnIo::new(id, stream, Arc::downgrade(self)));
                let now = wall_ms();
                let _ = st.conns.insert(id, ConnEntry {
                    io: io.clone(),
                    phase: Phase::Idle,
                    created_at_ms: now,
                    last_used_ms: now,
                    last_used: Instant::now(),
                    requests: 0,
                });
                tracing::debug!(conn = id, "connected");
                drop(self.runtime.spawn(drive(self.clone(), io)));
                self.make_available(&mut st, id, &mut fx);
            }
            Ok(_closed_by_shutdown) => {}
            Err(err) => {
                bump(&self.counters.connect_failures);
                st.connect_failures = st.connect_failures.saturating_add(1);
                // Back off the background top-up: never sooner than the check interval, and
                // 100 ms, 200 ms, 400 ms, ... (up to a minute) apart while Blender stays down.
                let backoff = Duration::from_millis(100u64 << (st.connect_failures - 1).min(10))
                    .min(Duration::from_secs(60))
                    .max(self.config.health_check_interval);
                st.next_top_up = Some(Instant::now() + backoff);
                tracing::warn!(addr = %self.config.addr(), code = err.code(), "connect failed: {err}");
                // The caller waiting longest learns that Blender is unreachable now rather
                // than after its full timeout.
                if let Some(waiter) = st.waiters.pop_front() {
                    fail_job(waiter.job, err, &mut fx);
                }
                self.open_for_waiters(&mut st, &mut fx);
            }
        }
        fx.closed = self.take_shutdown_done(&mut st);
        drop(st);
        fx.run(self);
    }
}

fn fail_job(job: Job, err: PoolError, fx: &mut Effects) {
    match job {
        Job::Execute(_, done) => fx.replies.push((done, Err(err))),
        Job::Acquire(done) => fx.leases.push((done, Err(err))),
    }
}

/// Opens one connection, within `connection_timeout`.
async fn connect(shared: Arc<Shared>) {
    let addr = shared.config.addr();
    let outcome = match tokio::time::timeout(shared.config.connection_timeout, TcpStream::connect(&addr)).await {
        Ok(Ok(stream)) => match tune_socket(&stream) {
            Ok(()) => Ok(stream),
            Err(e) => Err(PoolError::Connect { addr, reason: e.to_string() }),
        },
        Ok(Err(e)) => Err(PoolError::Connect { addr, reason: e.to_string() }),
        Err(_) => Err(PoolError::Connect {
            addr,
            reason: format!("timed out after {} ms", shared.config.connection_timeout.as_millis()),
        }),
    };
    shared.connected(outcome);
}

/// The pool's background task. Ends at shutdown, which dropping the [`Pool`] starts.
async fn maintain(shared: Arc<Shared>) {
    loop {
        let Some(next) = shared.housekeep() else { return };
        tokio::select! {
            () = shared.maintenance.notified() => {}
            () = tokio::time::sleep_until(next) => {}
        }
    }
}
