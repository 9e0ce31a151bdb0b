//! The pool as a state machine: what each connection is doing, who waits, and every decision
//! about them.
//!
//! Every transition is a method `(&mut self, cfg, now, ..., &mut Effects)`: it changes the
//! bookkeeping and lists what must happen (write a request, answer a caller, open or close a
//! connection) in [`Effects`], for the driver (`pool.rs`) to do once its lock is released. No
//! method does I/O, takes a lock or reads a clock: connections are ids, time is the `now` given,
//! and the one question only a socket can answer (is this idle connection still alive?) is a
//! function the caller passes in. So every rule is tested here without sockets
//! (`state/tests.rs`).
//!
//! Rules kept here:
//! - waiters are served first-in first-out;
//! - `max_connections` counts open and opening sockets, and a removed connection holds its
//!   slot until its socket is closed ([`State::socket_closed`]), so no race can exceed it;
//! - a request is written once, and moved to another connection only while it provably never
//!   reached Blender (queued, or the connection it was to go on found closed before writing);
//! - a connection is handed to a caller only once its socket was asked ([`Probe`]) whether
//!   the peer closed it or sent bytes nobody asked for: idle, just freed, or just opened;
//! - after its first reply a connection is watched for `new_connection_settle` before it is
//!   reused ([`Phase::Probation`]): a server that closes after each reply, or whose greeting
//!   came late and was taken for that reply, shows it then, and nobody else's request is
//!   written into it. Once a connection came through clean, the server is `proven` and later
//!   connections skip the settle and the probation, until anything out of step is seen;
//! - while connects fail, one probe at a time, paced by [`ConnectBackoff`]; a caller held by
//!   the outage for `connect_retry_timeout` fails with the connect error.

use std::collections::{HashMap, VecDeque};

use tokio::time::Instant;

use crate::backoff::ConnectBackoff;
use crate::completion::Completion;
use crate::config::PoolConfig;
use crate::effects::Effects;
use crate::error::{Busy, PoolError};
use crate::framing::Reply;
use crate::progress::{CallPhase, CallState};
use crate::reader::Verdict;
use crate::request::{CallId, Job, Request};

/// The moment a transition happens: for deadlines, and for the wall-clock times a lease shows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Now {
    pub(crate) at: Instant,
    /// Milliseconds since the Unix epoch.
    pub(crate) wall_ms: f64,
}

/// A request sent on a connection, waiting for its reply.
pub(crate) struct InFlight {
    pub(crate) done: Completion<Reply>,
    pub(crate) call: CallId,
    /// The command's type, for logs.
    pub(crate) command: String,
    /// When the request was handed to the socket.
    pub(crate) since: Instant,
    /// When the first bytes of its reply arrived: Blender is done with it from then on.
    pub(crate) replying_since: Option<Instant>,
    /// The call's own deadline (`timeout` option), if any.
    pub(crate) deadline: Option<Instant>,
    /// Whether the connection goes back to a lease (rather than the pool) afterwards.
    pub(crate) leased: bool,
}

/// What a connection is doing.
pub(crate) enum Phase {
    /// In the pool, free.
    Idle,
    /// Held by a lease, no command running.
    Leased,
    /// A request was sent and its reply is awaited.
    Busy(InFlight),
    /// Its first reply is in, and it is watched a while before anyone else is given it (see
    /// [`State::finish_request`]): until then it is neither idle nor handed over.
    Probation {
        /// When it becomes available, if nothing arrived on it meanwhile.
        until: Instant,
    },
}

/// The bookkeeping of one open connection.
pub(crate) struct ConnEntry {
    pub(crate) phase: Phase,
    /// Wall-clock ms, for the lease's JavaScript handle.
    pub(crate) created_at_ms: f64,
    pub(crate) last_used_ms: f64,
    pub(crate) last_used: Instant,
    /// When `max_lifetime` (less its jitter) runs out: retired at its next idle moment.
    pub(crate) expires_at: Option<Instant>,
    pub(crate) requests: u64,
}

impl ConnEntry {
    fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// A caller in the queue.
pub(crate) struct Waiter {
    pub(crate) call: CallId,
    pub(crate) job: Job,
    /// When it stops waiting: `connection_timeout` or its own deadline, whichever is first.
    pub(crate) give_up_at: Instant,
    /// Its own deadline, carried over to the request once a connection is found.
    pub(crate) deadline: Option<Instant>,
    /// When it joined the queue.
    pub(crate) queued_at: Instant,
}

/// Why connection `id` cannot carry a request now, if it cannot: the one question only its
/// socket can answer (the driver peeks at it: closed by the peer, or bytes nobody asked for).
/// Asked before every hand-over of a connection to a caller, however it became free.
pub(crate) type Probe<'a> = dyn FnMut(u64) -> Option<&'static str> + 'a;

/// The pool's bookkeeping.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) conns: HashMap<u64, ConnEntry>,
    /// Idle connection ids, most recently used last (taken from the end: hot connections stay
    /// hot and surplus ones age out).
    pub(crate) idle: Vec<u64>,
    /// Connects in progress; they count against `max_connections`.
    pub(crate) opening: usize,
    /// Sockets not yet closed: the entries, plus removed ones whose socket is still open.
    /// Never fewer than `conns.len()`.
    pub(crate) sockets: usize,
    pub(crate) waiters: VecDeque<Waiter>,
    pub(crate) shutdown: bool,
    shutdown_done: Vec<Completion<()>>,
    /// The last connection id and call id handed out.
    last_conn: u64,
    last_call: CallId,
    pub(crate) backoff: ConnectBackoff,
    /// The server was seen in step: a connection came through its probation clean, and no
    /// connection has shown anything out of step since (a close or bytes while idle, a close or
    /// bytes found before a hand-over). While it holds, new connections skip the settle and
    /// the probation: they cost nothing at connection turnover. Anything out of step clears it.
    pub(crate) proven: bool,
    next_top_up: Option<Instant>,
    /// When the maintenance task will next look, as it last said: a waiter giving up later
    /// than this need not wake it.
    pub(crate) maintenance_due: Option<Instant>,
}

impl State {
    /// A new call id.
    pub(crate) fn next_call(&mut self) -> CallId {
        self.last_call += 1;
        self.last_call
    }

    /// Something out of step was seen on a connection: new connections are watched again.
    fn out_of_step_seen(&mut self) {
        if self.proven {
            tracing::debug!("the server was seen out of step: new connections are watched again");
        }
        self.proven = false;
    }

    /// How long a new connection is watched before its first request: the settle, unless the
    /// server was seen in step.
    pub(crate) fn settle(&self, cfg: &PoolConfig) -> std::time::Duration {
        if self.proven {
            std::time::Duration::ZERO
        } else {
            cfg.new_connection_settle
        }
    }

    /// Whether the cap leaves room for one more socket.
    fn can_open(&self, cfg: &PoolConfig) -> bool {
        !self.shutdown && self.sockets + self.opening < cfg.max_connections
    }

    /// Whether connection `id` is waiting for a reply.
    pub(crate) fn in_flight(&self, id: u64) -> bool {
        matches!(self.conns.get(&id).map(|c| &c.phase), Some(Phase::Busy(_)))
    }

    // ---- callers ------------------------------------------------------------------------

    /// A call: served by an idle connection at once, else queued (opening a connection if the
    /// cap allows). Idle connections that `gone` finds unfit are dropped unused.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn submit(
        &mut self,
        cfg: &PoolConfig,
        now: Now,
        call: CallId,
        job: Job,
        deadline: Option<Instant>,
        gone: &mut Probe<'_>,
        fx: &mut Effects,
    ) {
        if self.shutdown {
            fx.fail(job, PoolError::Shutdown);
            return;
        }
        if let Some(id) = self.take_idle(gone, fx) {
            self.assign(cfg, now, id, call, job, deadline, fx);
            return;
        }
        let wait = now.at + cfg.connection_timeout;
        let give_up_at = deadline.map_or(wait, |d| d.min(wait));
        // The maintenance task enforces waiters' deadlines (and paces connect retries only while
        // the queue is non-empty): wake it only when this waiter changes when it must next look.
        // Under load the queue is rarely empty and deadlines grow in FIFO order, so this saves
        // waking the I/O thread per queued call.
        fx.wake_maintenance |= self.waiters.is_empty() || self.maintenance_due.is_none_or(|due| give_up_at < due);
        self.waiters.push_back(Waiter { call, job, give_up_at, deadline, queued_at: now.at });
        fx.tally.waits += 1;
        self.open_for_waiters(cfg, now, fx);
    }

    /// The most recently used idle connection still alive.
    fn take_idle(&mut self, gone: &mut Probe<'_>, fx: &mut Effects) -> Option<u64> {
        while let Some(id) = self.idle.pop() {
            if let Some(why) = gone(id) {
                tracing::debug!(conn = id, why, "idle connection found closed; not using it");
                self.out_of_step_seen();
                let _ = self.remove(id, "closed-by-blender", fx);
                continue;
            }
            return Some(id);
        }
        None
    }

    /// Gives connection `id` (just taken from the idle list, or just freed or opened) to a job.
    #[allow(clippy::too_many_arguments)]
    fn assign(
        &mut self,
        cfg: &PoolConfig,
        now: Now,
        id: u64,
        call: CallId,
        job: Job,
        deadline: Option<Instant>,
        fx: &mut Effects,
    ) {
        let entry = self.conns.get_mut(&id).expect("an assigned id has an entry");
        entry.last_used = now.at;
        entry.last_used_ms = now.wall_ms;
        match job {
            Job::Execute(Request { command, mut bytes }, mut done) => {
                tracing::debug!(conn = id, command, bytes = bytes.len(), "sending");
                cfg.framing.frame_request(&mut bytes);
                done.served_by(id);
                entry.phase = Phase::Busy(InFlight {
                    done,
                    call,
                    command,
                    since: now.at,
                    replying_since: None,
                    deadline,
                    leased: false,
                });
                if deadline.is_some_and(|d| d < now.at + cfg.socket_timeout) {
                    fx.wakes.push(id);
                }
                fx.sends.push((id, bytes));
            }
            Job::Acquire(done) => {
                entry.phase = Phase::Leased;
                fx.grants.push((done, Ok(id)));
            }
        }
    }

    /// Starts the connects the queue needs: one per waiter not already covered by a connect in
    /// progress or a connection on probation, within the cap. While connects are failing, only
    /// one probe at a time, once its back-off delay has passed (the maintenance task calls again
    /// then).
    fn open_for_waiters(&mut self, cfg: &PoolConfig, now: Now, fx: &mut Effects) {
        if self.backoff.failing() {
            let due = self.backoff.retry_at().is_none_or(|at| at <= now.at);
            if due && self.opening == 0 && !self.waiters.is_empty() && self.can_open(cfg) {
                self.opening += 1;
                fx.connects += 1;
                fx.tally.retries += 1;
            }
            return;
        }
        // A connection on probation is free within `new_connection_settle`: it covers a waiter
        // as a connect in progress does (which takes that long too, after its settle).
        let probation = self.conns.values().filter(|c| matches!(c.phase, Phase::Probation { .. })).count();
        while self.waiters.len() > self.opening + probation && self.can_open(cfg) {
            self.opening += 1;
            fx.connects += 1;
        }
    }

    /// A free connection goes to the first waiter, or back to the idle list, unless it has
    /// served its quota, outlived `max_lifetime`, or the pool is shutting down: then it closes.
    /// Before a waiter is given it, `gone` is asked, as for an idle one: a peer that closed
    /// right after its last reply (or greeted a new connection) costs the waiter nothing, it
    /// stays first in the queue.
    fn make_available(&mut self, cfg: &PoolConfig, now: Now, id: u64, gone: &mut Probe<'_>, fx: &mut Effects) {
        let retire = match self.conns.get(&id) {
            _ if self.shutdown => Some("shutdown"),
            Some(c) if c.requests >= cfg.max_requests_per_connection => Some("max-requests"),
            Some(c) if c.expired(now.at) => Some("max-lifetime"),
            _ => None,
        };
        if let Some(why) = retire {
            tracing::debug!(conn = id, why, "retiring connection");
            let _ = self.remove(id, why, fx);
            self.open_for_waiters(cfg, now, fx);
            return;
        }
        if !self.waiters.is_empty() {
            if let Some(why) = gone(id) {
                tracing::debug!(conn = id, why, "freed connection found unfit; not handing it over");
                self.out_of_step_seen();
                let _ = self.remove(id, "closed-by-blender", fx);
                self.open_for_waiters(cfg, now, fx);
                return;
            }
        }
        match self.waiters.pop_front() {
            Some(w) => {
                fx.tally.waited.push(now.at.saturating_duration_since(w.queued_at));
                self.assign(cfg, now, id, w.call, w.job, w.deadline, fx);
            }
            None => {
                self.conns.get_mut(&id).expect("caller checked").phase = Phase::Idle;
                self.idle.push(id);
            }
        }
    }

    /// Removes connection `id` and has its socket closed, `why`; returns the request it was
    /// serving.
    fn remove(&mut self, id: u64, why: &'static str, fx: &mut Effects) -> Option<InFlight> {
        let entry = self.conns.remove(&id)?;
        self.idle.retain(|&i| i != id);
        fx.closes.push((id, why));
        match entry.phase {
            Phase::Busy(flight) => Some(flight),
            _ => None,
        }
    }

    /// Drops connection `id` because of `err`, failing the request in flight on it, if any.
    pub(crate) fn discard(&mut self, cfg: &PoolConfig, now: Now, id: u64, err: PoolError, fx: &mut Effects) {
        if !self.conns.contains_key(&id) {
            return;
        }
        let flight = self.remove(id, err.code(), fx);
        log_discard(id, &err, flight.as_ref());
        if let Some(flight) = flight {
            fx.tally.failed += 1;
            fx.replies.push((flight.done, Err(err)));
        }
        self.open_for_waiters(cfg, now, fx);
    }

    /// Aborts call `call` wherever it is: a waiting call leaves the queue, a call in flight has
    /// its connection discarded.
    pub(crate) fn cancel(&mut self, cfg: &PoolConfig, now: Now, call: CallId, fx: &mut Effects) {
        if let Some(pos) = self.waiters.iter().position(|w| w.call == call) {
            let waiter = self.waiters.remove(pos).expect("position is in range");
            tracing::debug!("call aborted while waiting for a connection");
            fx.fail(waiter.job, PoolError::Aborted);
        } else if let Some(id) = self.conn_running(call) {
            self.discard(cfg, now, id, PoolError::Aborted, fx);
        }
    }

    /// The connection serving call `call`, if it is in flight.
    fn conn_running(&self, call: CallId) -> Option<u64> {
        self.conns.iter().find(|(_, c)| matches!(&c.phase, Phase::Busy(f) if f.call == call)).map(|(&id, _)| id)
    }

    // ---- connections ----------------------------------------------------------------------

    /// What the reader of connection `id` found. Returns whether the reader goes on reading.
    pub(crate) fn on_read(
        &mut self,
        cfg: &PoolConfig,
        now: Now,
        id: u64,
        verdict: Verdict,
        gone: &mut Probe<'_>,
        fx: &mut Effects,
    ) -> bool {
        if !self.conns.contains_key(&id) {
            return false;
        }
        let expected = self.in_flight(id);
        match verdict {
            Verdict::Pending { stray: None } => true,
            Verdict::Pending { stray: Some(_) } if expected => {
                // The reply has begun: Blender has finished that command.
                if let Some(Phase::Busy(flight)) = self.conns.get_mut(&id).map(|c| &mut c.phase) {
                    let _ = flight.replying_since.get_or_insert(now.at);
                }
                true
            }
            Verdict::Pending { stray: Some(err) } => {
                self.out_of_step_seen();
                self.discard(cfg, now, id, err, fx);
                false
            }
            Verdict::Reply { outcome, reusable } if expected => {
                self.finish_request(cfg, now, id, outcome, reusable, gone, fx);
                self.conns.contains_key(&id)
            }
            // A whole document nobody asked for: the stream is out of step.
            Verdict::Reply { outcome, .. } => {
                let err = match outcome {
                    Ok(text) => PoolError::invalid_response(
                        format!("{} bytes arrived while no request was in flight", text.len()),
                        text.as_bytes(),
                    ),
                    Err(err) => err,
                };
                self.out_of_step_seen();
                self.discard(cfg, now, id, err, fx);
                false
            }
            Verdict::Closed => {
                let detail = if expected {
                    "Blender closed the connection without replying"
                } else {
                    self.out_of_step_seen();
                    "closed by Blender while idle"
                };
                self.discard(cfg, now, id, PoolError::ConnectionClosed(detail.into()), fx);
                false
            }
            Verdict::Failed(err) => {
                if !expected {
                    self.out_of_step_seen();
                }
                self.discard(cfg, now, id, err, fx);
                false
            }
        }
    }

    /// A reply (or a bad reply) arrived on `id`: its caller is answered; the connection is
    /// reused if `reusable`, otherwise closed.
    #[allow(clippy::too_many_arguments)]
    fn finish_request(
        &mut self,
        cfg: &PoolConfig,
        now: Now,
        id: u64,
        outcome: Result<Reply, PoolError>,
        reusable: bool,
        gone: &mut Probe<'_>,
        fx: &mut Effects,
    ) {
        let Some(entry) = self.conns.get_mut(&id) else { return };
        let Phase::Busy(flight) = std::mem::replace(&mut entry.phase, Phase::Idle) else { return };
        entry.requests += 1;
        entry.last_used = now.at;
        entry.last_used_ms = now.wall_ms;
        match &outcome {
            Ok(text) => {
                let micros = now.at.saturating_duration_since(flight.since).as_micros() as u64;
                tracing::debug!(conn = id, bytes = text.len(), micros, "reply");
            }
            Err(e) => {
                fx.tally.failed += 1;
                log_discard(id, e, Some(&flight));
            }
        }
        let why = match &outcome {
            Err(e) => e.code(),
            Ok(_) => "unusable-after-reply",
        };
        let first = entry.requests == 1;
        fx.replies.push((flight.done, outcome));
        if !reusable {
            let _ = self.remove(id, why, fx);
            self.open_for_waiters(cfg, now, fx);
        } else if first && !flight.leased && !self.shutdown && !self.settle(cfg).is_zero() {
            // A new connection's first exchange proves little: a server that closes after each
            // reply closes now, and a greeting that arrived after the settle was just taken for
            // the reply (the real one follows). Either shows within the settle; any byte or the
            // close ends the connection then (`on_read`), before a second request is written.
            let until = now.at + cfg.new_connection_settle;
            if let Some(entry) = self.conns.get_mut(&id) {
                entry.phase = Phase::Probation { until };
            }
            fx.wakes.push(id);
        } else if flight.leased {
            if self.shutdown {
                let _ = self.remove(id, "shutdown", fx);
            } else if let Some(entry) = self.conns.get_mut(&id) {
                entry.phase = Phase::Leased;
            }
        } else {
            self.make_available(cfg, now, id, gone, fx);
        }
    }

    /// The timer of connection `id` fired (its reader saw bytes last at `progress`): enforce
    /// the reply timeout, the call's deadline, the idle timeout and the lifetime, and say when
    /// to look again (`None`: the connection is gone).
    ///
    /// The answer is never later than `socket_timeout` (nor `idle_timeout`) from now. That is
    /// what lets requests start without waking the connection's task: any deadline they bring
    /// is at least that far away, unless [`State::assign`] wakes the task itself.
    pub(crate) fn on_timer(
        &mut self,
        cfg: &PoolConfig,
        now: Now,
        id: u64,
        progress: Instant,
        gone: &mut Probe<'_>,
        fx: &mut Effects,
    ) -> Option<Instant> {
        let horizon = now.at + cfg.socket_timeout.min(cfg.idle_timeout);
        let total = self.conns.len();
        let entry = self.conns.get(&id)?;
        match &entry.phase {
            Phase::Busy(flight) => {
                let quiet_deadline = flight.since.max(progress) + cfg.socket_timeout;
                let deadline = flight.deadline.map_or(quiet_deadline, |d| d.min(quiet_deadline));
                if now.at < deadline {
                    // Look again by the horizon and the expiry too: with a watcher reading
                    // replies, the task does not hear when the call ends and the connection
                    // goes idle, and must still close it on time then.
                    let next = deadline.min(horizon);
                    return Some(match entry.expires_at {
                        Some(end) if end > now.at => next.min(end),
                        _ => next,
                    });
                }
                let after = match flight.deadline {
                    Some(d) if d <= quiet_deadline => d - flight.since,
                    _ => cfg.socket_timeout,
                };
                // Silent because Blender was busy with an earlier command? Then say which.
                let busy = self.holder(Some(flight.since), flight.call, now.at);
                self.discard(cfg, now, id, PoolError::ResponseTimeout(after, busy), fx);
                None
            }
            // Look again soon enough: the lease may be given back without the task hearing of
            // it, and the connection must then expire on time.
            Phase::Leased => Some(horizon.min(entry.expires_at.unwrap_or(horizon))),
            Phase::Probation { until } if now.at < *until => Some(*until),
            Phase::Probation { .. } => {
                // Quiet through its probation: the server is in step.
                self.proven = true;
                self.make_available(cfg, now, id, gone, fx);
                self.conns.contains_key(&id).then_some(now.at)
            }
            Phase::Idle => {
                if entry.expired(now.at) {
                    tracing::debug!(conn = id, "retiring connection: max lifetime reached");
                    let _ = self.remove(id, "max-lifetime", fx);
                    return None;
                }
                let lifetime_end = entry.expires_at.unwrap_or(horizon);
                let idle_end = entry.last_used + cfg.idle_timeout;
                if total <= cfg.min_connections {
                    return Some(horizon.min(lifetime_end));
                }
                if now.at < idle_end {
                    return Some(horizon.min(idle_end).min(lifetime_end));
                }
                tracing::debug!(conn = id, "closing idle connection");
                let _ = self.remove(id, "idle-timeout", fx);
                None
            }
        }
    }

    /// A connect begun at `started` finished. On success the connection gets an id (returned:
    /// the driver attaches its socket to it) and serves the queue.
    pub(crate) fn connected(
        &mut self,
        cfg: &PoolConfig,
        now: Now,
        started: Instant,
        outcome: Result<(), PoolError>,
        gone: &mut Probe<'_>,
        fx: &mut Effects,
    ) -> Option<u64> {
        self.opening -= 1;
        fx.wake_maintenance = true;
        let opened = match outcome {
            Ok(()) if !self.shutdown => {
                let failures = self.backoff.failures();
                if let Some(outage) = self.backoff.succeeded(now.at) {
                    let outage_ms = outage.as_millis() as u64;
                    tracing::info!(addr = %cfg.addr(), outage_ms, failures, "Blender reachable again");
                }
                self.last_conn += 1;
                let id = self.last_conn;
                self.sockets += 1;
                fx.tally.connects += 1;
                let entry = ConnEntry {
                    phase: Phase::Idle,
                    created_at_ms: now.wall_ms,
                    last_used_ms: now.wall_ms,
                    last_used: now.at,
                    expires_at: lifetime_end(cfg, now.at, id),
                    requests: 0,
                };
                let _ = self.conns.insert(id, entry);
                tracing::debug!(conn = id, "connected");
                self.make_available(cfg, now, id, gone, fx);
                // Back from an outage: open for the rest of the queue now.
                self.open_for_waiters(cfg, now, fx);
                Some(id)
            }
            // Shut down meanwhile: the driver drops the socket, which never held a slot.
            Ok(()) => None,
            Err(err) => {
                fx.tally.connect_failures += 1;
                // Once per outage at warn (the first failure); each retry after it at debug.
                let reason = match &err {
                    PoolError::Connect { reason, .. } => reason.clone(),
                    other => other.to_string(),
                };
                if self.backoff.failed(err, started, now.at) {
                    let retry_ms = cfg.connect_retry_timeout.as_millis() as u64;
                    tracing::warn!(
                        addr = %cfg.addr(),
                        reason,
                        retry_ms,
                        "Blender is not reachable; calls fail with ERR_CONNECT after connectRetryTimeout until it is back"
                    );
                } else {
                    tracing::debug!(addr = %cfg.addr(), reason, failures = self.backoff.failures(), "connect retry failed");
                }
                self.next_top_up = Some(now.at + self.backoff.top_up_delay(cfg.health_check_interval));
                // Waiters stay queued (nothing was sent): the maintenance task retries for them
                // after the back-off, and tells them the connect error if their time is up.
                None
            }
        };
        self.take_shutdown_done(fx);
        opened
    }

    /// A socket was closed for good: its slot is free for waiters now.
    pub(crate) fn socket_closed(&mut self, cfg: &PoolConfig, now: Now, fx: &mut Effects) {
        self.sockets -= 1;
        self.open_for_waiters(cfg, now, fx);
        self.take_shutdown_done(fx);
    }

    // ---- leases ---------------------------------------------------------------------------

    /// The holder of a lease on `id` gave it back. A command still running on it finishes
    /// first, then the connection returns to the pool.
    pub(crate) fn end_lease(&mut self, cfg: &PoolConfig, now: Now, id: u64, gone: &mut Probe<'_>, fx: &mut Effects) {
        let Some(entry) = self.conns.get_mut(&id) else { return };
        match &mut entry.phase {
            Phase::Leased => {
                // Idle time counts from the release, not from the lease's last command.
                entry.last_used = now.at;
                self.make_available(cfg, now, id, gone, fx);
            }
            Phase::Busy(flight) => flight.leased = false,
            Phase::Idle | Phase::Probation { .. } => {}
        }
    }

    /// Runs `request` on leased connection `id`, which must be between commands. The lease's
    /// connection is asked (`gone`) first, as any connection handed to a caller: one the peer
    /// closed fails the call at once, its request unsent.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn submit_on_lease(
        &mut self,
        cfg: &PoolConfig,
        now: Now,
        id: u64,
        call: CallId,
        request: Request,
        deadline: Option<Instant>,
        done: Completion<Reply>,
        gone: &mut Probe<'_>,
        fx: &mut Effects,
    ) {
        match self.conns.get(&id).map(|e| &e.phase) {
            Some(Phase::Leased) if gone(id).is_some() => {
                tracing::debug!(conn = id, "leased connection found unfit; the request is not sent");
                self.out_of_step_seen();
                let _ = self.remove(id, "closed-by-blender", fx);
                let err =
                    "Blender closed the leased connection, or sent bytes nobody asked for: the request was not sent";
                fx.replies.push((done, Err(PoolError::ConnectionClosed(err.into()))));
                self.open_for_waiters(cfg, now, fx);
            }
            Some(Phase::Leased) => {
                self.assign(cfg, now, id, call, Job::Execute(request, done), deadline, fx);
                if let Some(Phase::Busy(flight)) = self.conns.get_mut(&id).map(|e| &mut e.phase) {
                    flight.leased = true;
                }
            }
            Some(_) => fx.replies.push((done, Err(PoolError::LeaseBusy))),
            None if self.shutdown => fx.replies.push((done, Err(PoolError::Shutdown))),
            None => fx.replies.push((done, Err(PoolError::ConnectionClosed("the leased connection was lost".into())))),
        }
    }

    // ---- the pool as a whole --------------------------------------------------------------

    /// Shuts the pool down: waiting callers fail at once, connections not carrying a request
    /// close; `done` is answered once every socket is closed. Idempotent.
    pub(crate) fn shutdown(&mut self, done: Option<Completion<()>>, fx: &mut Effects) {
        if !self.shutdown {
            self.shutdown = true;
            tracing::info!(connections = self.conns.len(), waiting = self.waiters.len(), "shutting down pool");
            for waiter in std::mem::take(&mut self.waiters) {
                fx.fail(waiter.job, PoolError::Shutdown);
            }
            let not_busy: Vec<u64> =
                self.conns.iter().filter(|(_, c)| !matches!(c.phase, Phase::Busy(_))).map(|(&id, _)| id).collect();
            for id in not_busy {
                let _ = self.remove(id, "shutdown", fx);
            }
        }
        self.shutdown_done.extend(done);
        self.take_shutdown_done(fx);
        fx.wake_maintenance = true;
    }

    fn take_shutdown_done(&mut self, fx: &mut Effects) {
        if self.shutdown && self.sockets == 0 && self.opening == 0 {
            fx.shutdown_done.append(&mut self.shutdown_done);
        }
    }

    /// The maintenance task's round: fail waiters past their deadline (or held by an outage for
    /// `connect_retry_timeout`), start due connect retries, top up to `min_connections`.
    /// Returns when to look again, or `None` once the pool is shut down.
    pub(crate) fn housekeep(&mut self, cfg: &PoolConfig, now: Now, fx: &mut Effects) -> Option<Instant> {
        if self.shutdown {
            return None;
        }
        let budget = cfg.connect_retry_timeout;
        let waiters = std::mem::take(&mut self.waiters);
        let backoff = &self.backoff;
        let (gave_up, kept): (Vec<_>, Vec<_>) =
            waiters.into_iter().partition(|w| w.give_up_at <= now.at || backoff.gives_up(w.queued_at, budget, now.at));
        self.waiters = kept.into();
        for waiter in gave_up {
            let waited_ms = now.at.saturating_duration_since(waiter.queued_at).as_millis() as u64;
            // While connects are failing, the connect error says more than "no connection".
            let err = match self.backoff.last_error() {
                Some(err) => err.clone(),
                // It waited its whole connectionTimeout (not a shorter deadline of its own)
                // with no connection open, only a connect that never answered (a host that
                // drops SYNs): that is a connect failure, not a busy pool.
                None if self.opening > 0
                    && self.conns.is_empty()
                    && waiter.deadline.is_none_or(|d| d > waiter.give_up_at) =>
                {
                    PoolError::Connect { addr: cfg.addr(), reason: format!("timed out after {waited_ms} ms") }
                }
                None => PoolError::PoolTimeout(self.holder(None, waiter.call, now.at)),
            };
            tracing::debug!(code = err.code(), waited_ms, "caller gave up waiting for a connection");
            fx.fail(waiter.job, err);
        }

        // Connect retries for the queue (a no-op unless one is due).
        self.open_for_waiters(cfg, now, fx);

        // Top-up to min_connections, paced by the interval (and backed off while failing).
        let next_top_up = *self.next_top_up.get_or_insert(now.at);
        if next_top_up <= now.at {
            let mut deficit = cfg.min_connections.saturating_sub(self.conns.len() + self.opening);
            while deficit > 0 && self.can_open(cfg) && (!self.backoff.failing() || self.opening == 0) {
                if self.backoff.failing() {
                    fx.tally.retries += 1;
                }
                self.opening += 1;
                fx.connects += 1;
                deficit -= 1;
            }
            self.next_top_up = Some(now.at + cfg.health_check_interval);
        }

        let mut next = self.next_top_up.expect("set above");
        if let Some(first_give_up) = self.waiters.iter().map(|w| w.give_up_at).min() {
            next = next.min(first_give_up);
            if let Some(retry) = self.backoff.retry_at() {
                next = next.min(retry.max(now.at));
            }
            // A budget already spent waits for the next failed attempt, which wakes the task.
            let budget_ends = self.waiters.iter().filter_map(|w| self.backoff.budget_end(w.queued_at, budget));
            if let Some(end) = budget_ends.filter(|&end| end > now.at).min() {
                next = next.min(end);
            }
        }
        self.maintenance_due = Some(next);
        Some(next)
    }

    /// The command holding Blender, as far as this pool knows: of its requests still waiting
    /// for their first reply byte (other than `except`'s, and sent before `before` if given), the
    /// oldest. Blender runs commands one at a time, in about the order they arrive.
    pub(crate) fn holder(&self, before: Option<Instant>, except: CallId, now: Instant) -> Option<Busy> {
        self.conns
            .values()
            .filter_map(|c| match &c.phase {
                Phase::Busy(f) if f.call != except && f.replying_since.is_none() => Some(f),
                _ => None,
            })
            .filter(|f| before.is_none_or(|b| f.since < b))
            .min_by_key(|f| f.since)
            .map(|f| Busy { command: f.command.clone(), running: now.saturating_duration_since(f.since) })
    }

    /// Where call `call` stands, for its progress reports; `None` once it is settled.
    pub(crate) fn call_state(&self, call: CallId, now: Instant) -> Option<CallState> {
        if let Some(w) = self.waiters.iter().find(|w| w.call == call) {
            return Some(CallState {
                phase: CallPhase::Waiting,
                since: w.queued_at,
                conn: None,
                busy: self.holder(None, call, now),
            });
        }
        let (&id, flight) = self.conns.iter().find_map(|(id, c)| match &c.phase {
            Phase::Busy(f) if f.call == call => Some((id, f)),
            _ => None,
        })?;
        Some(match flight.replying_since {
            Some(since) => CallState { phase: CallPhase::Receiving, since, conn: Some(id), busy: None },
            None => CallState {
                phase: CallPhase::Sent,
                since: flight.since,
                conn: Some(id),
                busy: self.holder(Some(flight.since), call, now),
            },
        })
    }

    /// What a lease shows of connection `id`: when it opened and was last used (wall ms), and
    /// how many requests it answered. `None` once it is gone.
    pub(crate) fn lease_view(&self, id: u64) -> Option<(f64, f64, u64)> {
        self.conns.get(&id).map(|e| (e.created_at_ms, e.last_used_ms, e.requests))
    }
}

/// A new connection's lifetime end, jittered down by up to 10% so connections opened together
/// do not all retire together.
fn lifetime_end(cfg: &PoolConfig, now: Instant, id: u64) -> Option<Instant> {
    let lifetime = cfg.max_lifetime?;
    // Spread by id: cheap, deterministic per connection, and different for neighbours.
    let spread = (id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54) as f64 / 1024.0;
    Some(now + lifetime - lifetime.mul_f64(0.1 * spread))
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
        // The embedder is going away (its event loop torn down before `shutdown()`): expected.
        PoolError::Shutdown => tracing::debug!(conn = id, command, "pool's host is gone; discarding connection"),
        PoolError::Internal(_) => tracing::error!(conn = id, command, code, "discarding connection: {summary}"),
        PoolError::InvalidResponse { .. } => {
            tracing::warn!(conn = id, command, code, "discarding connection: {summary}")
        }
        _ if flight.is_none() => tracing::debug!(conn = id, code, "discarding idle connection: {summary}"),
        _ => tracing::warn!(conn = id, command, code, "discarding connection: {summary}"),
    }
}

#[cfg(test)]
mod tests;
