//! Connection events for an embedder: a connection opened, a connection closed and why.
//!
//! The binding turns these into `node:diagnostics_channel` messages. They are rare (not per
//! call), carry ids and a reason, never data, and are reported outside the pool's lock.

use std::fmt;

/// Hears of a pool's connections opening and closing. Called on whichever thread the event
/// happens (the I/O thread, or the embedder's when it reads replies), never under the pool's
/// lock; it must return quickly.
pub trait PoolObserver: Send + Sync + fmt::Debug {
    /// Connection `conn` opened (its id is the one leases report, `conn-<id>`).
    fn connection_opened(&self, conn: u64);
    /// Connection `conn` left the pool. `reason` is an error code (`ERR_RESPONSE_TIMEOUT`, ...)
    /// when a fault closed it, otherwise one of `closed-by-blender`, `idle-timeout`,
    /// `max-requests`, `max-lifetime`, `shutdown`, `unusable-after-reply` (bytes after a
    /// reply, or the peer closed right after it) or `closed`.
    fn connection_closed(&self, conn: u64, reason: &'static str);
}
