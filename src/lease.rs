//! `NativeLease`: one leased connection, wrapped by `PooledConnection` in `index.js`.

use std::sync::Arc;

use napi::{Env, Result};
use napi_derive::napi;
use pool_core::{Lease, Request};

use crate::config::call_options;
use crate::settle::reply_text::ReplyText;
use crate::settle::{Outcome, Settler};

/// A connection held by one caller. Garbage collection of a lease never released gives the
/// connection back to the pool.
#[napi]
#[derive(Debug)]
pub struct NativeLease {
    lease: Lease,
    settler: Arc<Settler>,
}

/// What `PooledConnection` shows of its connection.
#[napi(object)]
#[derive(Debug)]
#[allow(missing_docs)]
pub struct JsLeaseInfo {
    pub id: String,
    pub in_use: bool,
    pub created_at: f64,
    pub last_used_at: f64,
    pub request_count: f64,
}

impl NativeLease {
    pub(crate) fn new(lease: Lease, settler: Arc<Settler>) -> Self {
        NativeLease { lease, settler }
    }
}

impl crate::settle::IntoJs for NativeLease {
    fn into_js(self: Box<Self>, env: &napi::Env) -> Result<crate::settle::Created> {
        crate::settle::create(env, *self)
    }
}

#[napi]
impl NativeLease {
    /// Sends `body` on this connection and settles call `id` with the reply text. Returns the
    /// pool's id of the call, for `cancel`.
    #[napi(catch_unwind)]
    pub fn submit(&self, env: Env, id: u32, command: String, body: String, timeout: Option<f64>) -> Result<f64> {
        let done = self.settler.begin(&env, id, |text| Outcome::Reply(ReplyText::new(text)));
        Ok(self.lease.submit_reply(Request::new(command, body), call_options(timeout), done) as f64)
    }

    /// Where a call made on this lease stands, or `null` once it is settled.
    #[napi(catch_unwind)]
    pub fn progress(&self, call: f64) -> Result<Option<crate::progress::JsCallProgress>> {
        Ok(self.lease.progress(call as u64).map(crate::progress::JsCallProgress::from))
    }

    /// Aborts a call made on this lease; its connection is discarded.
    #[napi(catch_unwind)]
    pub fn cancel(&self, call: f64) -> Result<()> {
        self.lease.cancel(call as u64);
        Ok(())
    }

    /// The connection's details.
    #[napi(catch_unwind)]
    pub fn info(&self) -> JsLeaseInfo {
        let i = self.lease.info();
        JsLeaseInfo {
            id: i.id,
            in_use: i.in_use,
            created_at: i.created_at,
            last_used_at: i.last_used_at,
            request_count: i.request_count,
        }
    }

    /// Gives the connection back. Idempotent.
    #[napi(catch_unwind)]
    pub fn release(&self) -> Result<()> {
        self.lease.release();
        Ok(())
    }
}
