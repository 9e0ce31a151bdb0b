//! Reading replies on a thread of the embedder's choosing: the [`ReadWatcher`] hook.
//!
//! By default a connection's replies are read by its task on the I/O thread, and handed to
//! whoever waits for them. When that waiter is a JavaScript event loop, every reply costs two
//! thread wake-ups (the I/O thread, then the JS thread), and on a loaded machine they dominate
//! the cost of a small call. A pool given a watcher instead registers each new connection with
//! the I/O thread for writability only (for writes that blocked), and asks the watcher to poll
//! the socket for readability on its own thread; the watcher calls
//! [`WatchedConn::on_readable`] there, which reads and finishes replies exactly as the task
//! would have. Timeouts, blocked writes and closing stay with the task on the I/O thread.

use std::fmt;
use std::sync::Arc;

use crate::connection::{ConnEvents, ConnIo};
use crate::error::PoolError;
use crate::socket::RawSocket;

/// Most bytes one [`WatchedConn::on_readable`] reads.
const READ_BUDGET: usize = HANDOFF_BYTES;

/// Polls connections for readability on the embedder's thread. Both methods are called on the
/// pool's I/O thread, `unwatch` always after the `watch` of the same connection.
pub trait ReadWatcher: Send + Sync + fmt::Debug {
    /// Connection `conn` opened: poll [`WatchedConn::raw_socket`] for readability (level-triggered)
    /// and call [`WatchedConn::on_readable`] whenever it is readable, until it returns `false`.
    fn watch(&self, conn: WatchedConn);
    /// Connection `id` is finished: stop polling it and drop its [`WatchedConn`] (the socket
    /// closes once that and the pool's own references are gone).
    fn unwatch(&self, id: u64);
    /// Connection `id`, paused when [`WatchedConn::on_readable`] said [`WatchNext::Pause`], is
    /// to be polled again: the I/O thread has read the big reply it handed over.
    fn resume(&self, id: u64);
}

/// What a watcher does after [`WatchedConn::on_readable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchNext {
    /// Keep polling.
    Keep,
    /// Stop polling, but keep the connection: a big reply is arriving, and the I/O thread reads
    /// the rest of it (so the watcher's thread is not kept busy). [`ReadWatcher::resume`] says
    /// when to poll again.
    Pause,
    /// Stop polling and drop the connection.
    Stop,
}

/// A reply in progress past this size is handed to the I/O thread: the watcher's thread (the
/// JS event loop) only ever reads the start of a big reply.
const HANDOFF_BYTES: usize = 256 * 1024;

/// A connection whose replies a [`ReadWatcher`] reads. Holding it keeps the socket open (so its
/// descriptor cannot be reused while polled).
pub struct WatchedConn {
    io: Arc<ConnIo>,
}

impl WatchedConn {
    pub(crate) fn new(io: Arc<ConnIo>) -> Self {
        WatchedConn { io }
    }

    /// The connection's id, as given to [`ReadWatcher::unwatch`].
    pub fn id(&self) -> u64 {
        self.io.id
    }

    /// The socket's handle (a descriptor on Unix, a `SOCKET` on Windows), to poll for
    /// readability.
    pub fn raw_socket(&self) -> RawSocket {
        self.io.sock.raw_socket()
    }

    /// Reads what has arrived (up to 256 KiB) and acts on it: a complete reply is validated
    /// and handed to its caller, a bad one fails the call and discards the connection. Says
    /// what the watcher does next.
    pub fn on_readable(&self) -> WatchNext {
        let Some(events) = self.io.events.upgrade() else { return WatchNext::Stop };
        if self.io.is_closing() {
            return WatchNext::Stop;
        }
        let _in_pool = events.span().enter();
        // A panic below (a bug) must not leave the call in flight hanging: like the task's
        // guard, this fails it with `ERR_INTERNAL` and discards the connection.
        let _guard = FailOnPanic { events: &*events, id: self.io.id };
        let (alive, _) = self.io.read_with(&*events, |buf| self.io.sock.recv_into(buf), READ_BUDGET);
        let big = self.io.reader().len() >= HANDOFF_BYTES;
        if !alive {
            self.io.close_because("closed");
            WatchNext::Stop
        } else if big {
            self.io.hand_over_reads();
            WatchNext::Pause
        } else {
            WatchNext::Keep
        }
    }

    /// Gives the connection up (the watcher cannot poll it): a call in flight on it fails with
    /// `ERR_INTERNAL`, and the pool opens another when needed.
    pub fn abandon(&self, why: &str) {
        if let Some(events) = self.io.events.upgrade() {
            events.on_failed(self.io.id, PoolError::Internal(format!("cannot watch the socket: {why}")));
        }
        self.io.close_because("closed");
    }

    /// Gives the connection up because the watcher's host is going away before the pool was
    /// shut down (its event loop is torn down: a worker ends, the process exits). That is an
    /// expected end, not a fault: a call in flight fails with `ERR_POOL_SHUTDOWN` (nobody is
    /// left to hear it), and the only record is at debug level.
    pub fn end_with_host(&self) {
        if let Some(events) = self.io.events.upgrade() {
            events.on_failed(self.io.id, PoolError::Shutdown);
        }
        self.io.close_because("shutdown");
    }
}

/// Fails the connection if dropped while panicking.
struct FailOnPanic<'a> {
    events: &'a dyn ConnEvents,
    id: u64,
}

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.events.on_failed(self.id, PoolError::Internal("reading a reply panicked".into()));
        }
    }
}

impl fmt::Debug for WatchedConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchedConn").field("id", &self.io.id).finish_non_exhaustive()
    }
}
