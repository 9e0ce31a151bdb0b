//! The pool's counts, as `getStats()` reports them.

/// A snapshot of the pool. The first five fields mean what they meant in the original pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Open connections (idle or in use). Not counting connects in progress.
    pub total_connections: usize,
    /// Connections running a command or held by a lease.
    pub active_connections: usize,
    /// Open connections that are free.
    pub idle_connections: usize,
    /// Callers queued for a connection.
    pub pending_requests: usize,
    /// Requests answered with a valid Blender reply over the pool's life.
    pub total_requests: u64,
    /// Connects in progress.
    pub opening_connections: usize,
    /// Sockets not yet closed: the open connections plus discarded ones whose socket is still
    /// being torn down. `open_sockets + opening_connections` never exceeds `max_connections`.
    pub open_sockets: usize,
    /// Requests that failed after being sent (timeout, closed, invalid reply).
    pub failed_requests: u64,
    /// Connections successfully opened over the pool's life.
    pub connections_opened: u64,
    /// Connect attempts that failed over the pool's life.
    pub connect_failures: u64,
}
