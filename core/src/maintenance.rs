//! The pool's background work: opening connections, and the one task that watches the clock
//! for the queue (waiters' deadlines, connect retries) and tops the pool up to
//! `min_connections` every `health_check_interval`.

use std::sync::Arc;

use tokio::time::Instant;

use crate::connection::{drive, tune_socket, ConnIo, ReplyBuffer};
use crate::socket::Socket;
use crate::watcher::WatchedConn;
use crate::error::PoolError;
use crate::metrics::bump;
use crate::pool::{fail_job, wall_ms, Effects, Shared};
use crate::state::{ConnEntry, Phase};

/// The maintenance task. Ends at shutdown, which dropping the `Pool` starts.
pub(crate) async fn maintain(shared: Arc<Shared>) {
    loop {
        let Some(next) = housekeep(&shared) else { return };
        tokio::select! {
            () = shared.maintenance.notified() => {}
            () = tokio::time::sleep_until(next) => {}
        }
    }
}

/// One round: fail waiters past their deadline, start due connect retries, top up. Returns
/// when to run again, or `None` once the pool is shut down.
fn housekeep(shared: &Arc<Shared>) -> Option<Instant> {
    let now = Instant::now();
    let mut fx = Effects::default();
    let mut st = shared.lock();
    if st.shutdown {
        return None;
    }

    // Waiters past their deadline give up, and so do those Blender's absence has held for
    // `connect_retry_timeout`. While connects are failing, the connect error says more than
    // "no connection available".
    let budget = shared.config.connect_retry_timeout;
    let gave_up: Vec<_> = {
        let waiters = std::mem::take(&mut st.waiters);
        let backoff = &st.backoff;
        let (expired, kept): (Vec<_>, Vec<_>) =
            waiters.into_iter().partition(|w| w.give_up_at <= now || backoff.gives_up(w.queued_at, budget, now));
        st.waiters = kept.into();
        expired
    };
    for waiter in gave_up {
        let waited_ms = now.saturating_duration_since(waiter.queued_at).as_millis() as u64;
        let err = match st.backoff.last_error() {
            Some(err) => err.clone(),
            // It waited its whole connectionTimeout (not a shorter deadline of its own) with
            // no connection open, only a connect that never answered (a host that drops SYNs):
            // that is a connect failure, not a busy pool.
            None if st.opening > 0 && st.conns.is_empty() && waiter.deadline.is_none_or(|d| d > waiter.give_up_at) => {
                PoolError::Connect { addr: shared.config.addr(), reason: format!("timed out after {waited_ms} ms") }
            }
            None => PoolError::PoolTimeout,
        };
        tracing::debug!(code = err.code(), waited_ms, "caller gave up waiting for a connection");
        fail_job(waiter.job, err, &mut fx);
    }

    // Connect retries for the queue (a no-op unless one is due).
    shared.open_for_waiters(&mut st, &mut fx);

    // Top-up to min_connections, paced by the interval (and backed off while failing).
    let next_top_up = *st.next_top_up.get_or_insert(now);
    if next_top_up <= now {
        let have = st.conns.len() + st.opening;
        let mut deficit = shared.config.min_connections.saturating_sub(have);
        while deficit > 0 && st.can_open(&shared.config) && (!st.backoff.failing() || st.opening == 0) {
            if st.backoff.failing() {
                bump(&shared.metrics.retries);
            }
            st.opening += 1;
            fx.connects += 1;
            deficit -= 1;
        }
        st.next_top_up = Some(now + shared.config.health_check_interval);
    }

    let mut next = st.next_top_up.expect("set above");
    if let Some(first_give_up) = st.waiters.iter().map(|w| w.give_up_at).min() {
        next = next.min(first_give_up);
        if let Some(retry) = st.backoff.retry_at() {
            next = next.min(retry.max(now));
        }
        // A budget already spent waits for the next failed attempt, which wakes this task.
        let budget_ends = st.waiters.iter().filter_map(|w| st.backoff.budget_end(w.queued_at, budget));
        if let Some(end) = budget_ends.filter(|&end| end > now).min() {
            next = next.min(end);
        }
    }
    st.maintenance_due = Some(next);
    drop(st);
    fx.run(shared);
    Some(next)
}

/// Opens one connection, within `connection_timeout`, and reports to the pool.
pub(crate) async fn connect(shared: Arc<Shared>) {
    let addr = shared.config.addr();
    let timeout = shared.config.connection_timeout;
    let watched = shared.watcher.is_some();
    let started = Instant::now();
    let outcome = match tokio::time::timeout(timeout, crate::dial::dial(&shared.config.host, shared.config.port)).await {
        Ok(Ok(stream)) => tune_socket(&stream).and_then(|()| Socket::new(stream, watched)).map_err(|e| describe_connect_error(&e)),
        Ok(Err(e)) => Err(describe_connect_error(&e)),
        Err(_) => Err(format!("timed out after {} ms", timeout.as_millis())),
    };
    connected(&shared, started, outcome.map_err(|reason| PoolError::Connect { addr, reason }));
}

/// What a failed connect says, in the words a user searches for. A summary of several
/// addresses' failures (see `dial.rs`) is kept as it is.
fn describe_connect_error(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    if e.get_ref().is_some() {
        return e.to_string();
    }
    match e.kind() {
        ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        ErrorKind::HostUnreachable => "host unreachable".to_owned(),
        ErrorKind::NetworkUnreachable => "network unreachable".to_owned(),
        ErrorKind::TimedOut => "timed out".to_owned(),
        ErrorKind::AddrNotAvailable => "address not available".to_owned(),
        _ => e.to_string(),
    }
}

/// A connect attempt begun at `started` finished (or failed).
fn connected(shared: &Arc<Shared>, started: Instant, outcome: Result<Socket, PoolError>) {
    let now = Instant::now();
    let mut fx = Effects::default();
    let mut st = shared.lock();
    st.opening -= 1;
    let mut opened = None;
    match outcome {
        Ok(stream) if !st.shutdown => {
            let failures = st.backoff.failures();
            if let Some(outage) = st.backoff.succeeded(now) {
                let outage_ms = outage.as_millis() as u64;
                tracing::info!(addr = %shared.config.addr(), outage_ms, failures, "Blender reachable again");
            }
            st.next_id += 1;
            let id = st.next_id;
            st.sockets += 1;
            bump(&shared.metrics.connects);
            let reply = ReplyBuffer::new(shared.config.framing, shared.config.max_response_bytes);
            let io = Arc::new(ConnIo::new(id, stream, reply, Arc::downgrade(shared)));
            let wall = wall_ms();
            let _ = st.conns.insert(
                id,
                ConnEntry {
                    io: io.clone(),
                    phase: Phase::Idle,
                    created_at_ms: wall,
                    last_used_ms: wall,
                    last_used: now,
                    expires_at: shared.lifetime_end(now, id),
                    requests: 0,
                },
            );
            tracing::debug!(conn = id, "connected");
            opened = Some(io);
            shared.make_available(&mut st, id, &mut fx);
            // Back from an outage: open for the rest of the queue now.
            shared.open_for_waiters(&mut st, &mut fx);
        }
        Ok(_closed_by_shutdown) => {}
        Err(err) => {
            bump(&shared.metrics.connect_failures);
            // Once per outage at warn (the first failure); each retry after it at debug.
            let reason = match &err {
                PoolError::Connect { reason, .. } => reason.clone(),
                other => other.to_string(),
            };
            if st.backoff.failed(err, started, now) {
                let retry_ms = shared.config.connect_retry_timeout.as_millis() as u64;
                tracing::warn!(
                    addr = %shared.config.addr(),
                    reason,
                    retry_ms,
                    "Blender is not reachable; calls fail with ERR_CONNECT after connectRetryTimeout until it is back"
                );
            } else {
                tracing::debug!(addr = %shared.config.addr(), reason, failures = st.backoff.failures(), "connect retry failed");
            }
            let delay = st.backoff.top_up_delay(shared.config.health_check_interval);
            st.next_top_up = Some(now + delay);
            // Waiters stay queued (nothing was sent): the maintenance task retries for them
            // after the back-off, and tells them the connect error if their deadline passes.
        }
    }
    fx.closed = shared.take_shutdown_done(&mut st);
    drop(st);
    if let Some(io) = opened {
        if let Some(observer) = &shared.observer {
            observer.connection_opened(io.id);
        }
        // Outside the lock: the watcher is the embedder's code (and may take its own locks).
        // Before the task starts, so the watcher hears of the connection before its end.
        if let (Some(watcher), true) = (&shared.watcher, io.sock.is_watched()) {
            watcher.watch(WatchedConn::new(shared, io.clone()));
        }
        shared.spawn(drive(shared.clone(), io));
    }
    shared.maintenance.notify_one();
    fx.run(shared);
}
