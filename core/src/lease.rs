//! A lease: one connection held by one caller for several commands in a row.
//!
//! The lease is a guard: dropping it gives the connection back (or, if a command
//! is still running on it, gives it back when the command finishes), so a lease can never leak
//! its slot. After [`Lease::release`] every use fails with `ERR_CONNECTION_RELEASED`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::completion::Completion;
use crate::error::PoolError;
use crate::framing::Reply;
use crate::progress::CallProgress;
use crate::request::{CallId, CallOptions, Request};

/// What a lease needs of its pool (implemented by the pool).
pub(crate) trait LeaseOps: Send + Sync + std::fmt::Debug {
    /// Runs `request` on leased connection `conn`.
    fn submit_on_lease(&self, conn: u64, request: Request, options: CallOptions, done: Completion<Reply>) -> CallId;
    /// A call id for a call answered at once.
    fn next_call(&self) -> CallId;
    /// Aborts call `call`.
    fn cancel(&self, call: CallId);
    /// Where a call stands (see [`crate::Pool::progress`]).
    fn progress(&self, call: CallId) -> Option<CallProgress>;
    /// The holder gave `conn` back.
    fn end_lease(&self, conn: u64);
    /// When `conn` opened and was last used (wall ms) and its requests; `None` once gone.
    fn lease_view(&self, conn: u64) -> Option<(f64, f64, u64)>;
}

/// A connection taken out of the pool by [`crate::Pool::acquire`].
#[derive(Debug)]
pub struct Lease {
    pool: Arc<dyn LeaseOps>,
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
    pub(crate) fn new(pool: Arc<dyn LeaseOps>, conn: u64) -> Self {
        Lease { pool, conn, released: AtomicBool::new(false) }
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
        self.submit_reply(request, options, done.of_reply_text())
    }

    /// [`Lease::submit`], answering with the [`Reply`] as the reader left it.
    pub fn submit_reply(&self, request: Request, options: CallOptions, done: Completion<Reply>) -> CallId {
        if self.released.load(Ordering::Acquire) {
            done.complete(Err(PoolError::Released));
            return self.pool.next_call();
        }
        self.pool.submit_on_lease(self.conn, request, options, done)
    }

    /// Aborts a call made on this lease (see [`crate::Pool::cancel`]).
    pub fn cancel(&self, call: CallId) {
        self.pool.cancel(call);
    }

    /// Where a call made on this lease stands (see [`crate::Pool::progress`]).
    pub fn progress(&self, call: CallId) -> Option<CallProgress> {
        self.pool.progress(call)
    }

    /// `async` form of [`Lease::submit`].
    pub async fn execute(&self, request: Request) -> Result<String, PoolError> {
        let (tx, rx) = oneshot::channel();
        let _ = self.submit(request, CallOptions::default(), Completion::new(move |r| drop(tx.send(r))));
        rx.await.unwrap_or_else(|_| Err(PoolError::Internal("reply channel dropped".into())))
    }

    /// The connection's details, as the original's `PooledConnection` showed them.
    pub fn info(&self) -> LeaseInfo {
        let view = self.pool.lease_view(self.conn);
        LeaseInfo {
            id: self.id(),
            in_use: !self.released.load(Ordering::Acquire) && view.is_some(),
            created_at: view.map_or(0.0, |v| v.0),
            last_used_at: view.map_or(0.0, |v| v.1),
            request_count: view.map_or(0.0, |v| v.2 as f64),
        }
    }

    /// Gives the connection back to the pool. Idempotent.
    pub fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        self.pool.end_lease(self.conn);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.release();
    }
}
