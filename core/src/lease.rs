//! A lease: one connection held by one caller for several commands in a row.
//!
//! The lease is the guard of STYLE §5: dropping it gives the connection back (or, if a command
//! is still running on it, gives it back when the command finishes), so a lease can never leak
//! its slot. After [`Lease::release`] every use fails with `ERR_CONNECTION_RELEASED`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::completion::Completion;
use crate::error::PoolError;
use crate::pool::{CallOptions, Request, Shared};
use crate::state::CallId;

/// A connection taken out of the pool by [`crate::Pool::acquire`].
#[derive(Debug)]
pub struct Lease {
    shared: Arc<Shared>,
    conn: u64,
    released: AtomicBool,
}

/// What a lease's holder may see of its connection (the original pool's `PooledConnection`
/// fields, without the socket).
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseInfo {
    /// `conn-<n>`, unique over the pool's life.
    pub id: String,
    /// True until the lease is released (or its connection is lost).
    pub in_use: bool,
    /// When the connection was opened, in ms since the Unix epoch.
    pub created_at: f64,
    /// When a command last started or ended on it, in ms since the Unix epoch.
    pub last_used_at: f64,
    /// Commands it has answered over its life.
    pub request_count: f64,
}

impl Lease {
    pub(crate) fn new(shared: Arc<Shared>, conn: u64) -> Self {
        Lease { shared, conn, released: AtomicBool::new(false) }
    }

    /// `conn-<n>`: the id of the leased connection.
    pub fn id(&self) -> String {
        format!("conn-{}", self.conn)
    }

    /// Sends `request` on the leased connection; `done` gets the reply. Fails with
    /// `ERR_CONNECTION_BUSY` while another command runs on it, `ERR_CONNECTION_RELEASED` after
    /// release, `ERR_CONNECTION_CLOSED` if the connection was lost. Returns the call's id, for
    /// [`crate::Pool::cancel`] or [`Lease::cancel`].
    pub fn submit(&self, request: Request, options: CallOptions, done: Completion<String>) -> CallId {
        if self.released.load(Ordering::Acquire) {
            done.complete(Err(PoolError::Released));
            return self.shared.next_call();
        }
        let _in_pool = self.shared.span.enter();
        self.shared.submit_on_lease(self.conn, request, options, done)
    }

    /// Aborts a call made on this lease (see [`crate::Pool::cancel`]).
    pub fn cancel(&self, call: CallId) {
        self.shared.cancel_call(call);
    }

    /// `async` form of [`Lease::submit`].
    pub async fn execute(&self, request: Request) -> Result<String, PoolError> {
        let (tx, rx) = oneshot::channel();
        let _ = self.submit(request, CallOptions::default(), Completion::new(move |r| drop(tx.send(r))));
        rx.await.unwrap_or_else(|_| Err(PoolError::Internal("reply channel dropped".into())))
    }

    /// The connection's details, as the original's `PooledConnection` showed them.
    pub fn info(&self) -> LeaseInfo {
        let st = self.shared.lock();
        let entry = st.conns.get(&self.conn);
        LeaseInfo {
            id: self.id(),
            in_use: !self.released.load(Ordering::Acquire) && entry.is_some(),
            created_at: entry.map_or(0.0, |e| e.created_at_ms),
            last_used_at: entry.map_or(0.0, |e| e.last_used_ms),
            request_count: entry.map_or(0.0, |e| e.requests as f64),
        }
    }

    /// Gives the connection back to the pool. Idempotent.
    pub fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared.end_lease(self.conn);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.release();
    }
}
