//! The pool's bookkeeping: what each connection is doing and who is waiting.
//!
//! Plain data behind the pool's one mutex; the transitions live in `pool.rs`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tokio::time::Instant;

use crate::backoff::ConnectBackoff;
use crate::completion::Completion;
use crate::config::PoolConfig;
use crate::connection::ConnIo;
use crate::lease::Lease;
use crate::pool::Request;

/// Identifies one call (an execute or an acquire), so it can be cancelled.
pub type CallId = u64;

/// What a caller asked for.
pub(crate) enum Job {
    /// Send a request, answer with the reply.
    Execute(Request, Completion<String>),
    /// Hand over a connection.
    Acquire(Completion<Lease>),
}

/// A request sent on a connection, waiting for its reply.
pub(crate) struct InFlight {
    pub(crate) done: Completion<String>,
    pub(crate) call: CallId,
    /// The command's type, for logs.
    pub(crate) command: String,
    /// When the request was handed to the socket.
    pub(crate) since: Instant,
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
}

/// The pool's bookkeeping for one open connection.
pub(crate) struct ConnEntry {
    pub(crate) io: Arc<ConnIo>,
    pub(crate) phase: Phase,
    /// Wall-clock ms, for the JavaScript handle.
    pub(crate) created_at_ms: f64,
    pub(crate) last_used_ms: f64,
    pub(crate) last_used: Instant,
    /// When `max_lifetime` (less its jitter) runs out: retired at its next idle moment.
    pub(crate) expires_at: Option<Instant>,
    pub(crate) requests: u64,
}

impl ConnEntry {
    pub(crate) fn expired(&self, now: Instant) -> bool {
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
    /// When it joined the queue, for the wait-time histogram.
    pub(crate) queued_at: Instant,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) conns: HashMap<u64, ConnEntry>,
    /// Idle connection ids, most recently used last (taken from the end: hot connections stay
    /// hot and surplus ones age out).
    pub(crate) idle: Vec<u64>,
    /// Connects in progress; they count against `max_connections`.
    pub(crate) opening: usize,
    /// Sockets not yet closed: the entries, plus removed ones whose task has not yet closed
    /// them. Never fewer than `conns.len()`.
    pub(crate) sockets: usize,
    pub(crate) waiters: VecDeque<Waiter>,
    pub(crate) shutdown: bool,
    pub(crate) shutdown_done: Vec<Completion<()>>,
    pub(crate) next_id: u64,
    pub(crate) backoff: ConnectBackoff,
    pub(crate) next_top_up: Option<Instant>,
    /// When the maintenance task will next look, as it last said: a waiter giving up later
    /// than this need not wake it.
    pub(crate) maintenance_due: Option<Instant>,
}

impl State {
    /// Whether the cap leaves room for one more socket. Counted in real sockets: a connection
    /// removed from the pool holds its slot until its socket is actually closed, so a
    /// replacement never overlaps it.
    pub(crate) fn can_open(&self, config: &PoolConfig) -> bool {
        !self.shutdown && self.sockets + self.opening < config.max_connections
    }

    /// The connection serving call `call`, if it is in flight.
    pub(crate) fn conn_running(&self, call: CallId) -> Option<u64> {
        self.conns
            .iter()
            .find(|(_, c)| matches!(&c.phase, Phase::Busy(f) if f.call == call))
            .map(|(&id, _)| id)
    }
}
