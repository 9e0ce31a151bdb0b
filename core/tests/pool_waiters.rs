//! Callers waiting for a connection: first in, first out; counted in the stats; given up on
//! after `connection_timeout`; and never allowed to push the pool past `max_connections`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use blender_mcp_pool_core::{CallOptions, Completion, PoolError};
use common::{eventually, req, result_of, Gate, Reply, TestServer};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::time::Instant;

type ReplyRx = oneshot::Receiver<Result<String, PoolError>>;

/// Submits a request without awaiting: it is queued (or sent) before this returns.
fn submit(pool: &blender_mcp_pool_core::Pool, kind: &str, params: serde_json::Value) -> ReplyRx {
    let (tx, rx) = oneshot::channel();
    let _ = pool.submit(req(kind, params), Completion::new(move |r| drop(tx.send(r))));
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_served_in_submission_order() {
    let server = TestServer::echo().await;
    let pool = server.pool(|c| c.max_connections = 1);
    let lease = pool.acquire().await.unwrap();
    let waiting: Vec<ReplyRx> = (0..12).map(|i| submit(&pool, "echo", json!({"n": i}))).collect();
    assert_eq!(pool.stats().pending_requests, 12);
    assert_eq!(server.counts().requests, 0, "nothing is sent while the only connection is leased");
    lease.release();
    for (i, rx) in waiting.into_iter().enumerate() {
        let reply = rx.await.unwrap().unwrap();
        assert_eq!(result_of(&reply), json!({"n": i}));
    }
    let order: Vec<serde_json::Value> = server.log().into_iter().map(|r| r.params["n"].clone()).collect();
    assert_eq!(order, (0..12).map(|i| json!(i)).collect::<Vec<_>>());
    assert_eq!(server.conns(), vec![1; 12]);
    assert_eq!(pool.stats().pending_requests, 0);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_leases_and_requests_share_one_fifo_queue() {
    let server = TestServer::echo().await;
    let pool = Arc::new(server.pool(|c| c.max_connections = 1));
    let first = pool.acquire().await.unwrap();
    let a = submit(&pool, "echo", json!("a"));
    let (tx, lease_rx) = oneshot::channel();
    let _ = pool.acquire_with(CallOptions::default(), Completion::new(move |r| drop(tx.send(r))));
    let b = submit(&pool, "echo", json!("b"));
    assert_eq!(pool.stats().pending_requests, 3);
    first.release();
    assert_eq!(result_of(&a.await.unwrap().unwrap()), json!("a"));
    let second = lease_rx.await.unwrap().unwrap();
    // `b` waits behind the lease.
    assert_eq!(pool.stats().pending_requests, 1);
    assert_eq!(result_of(&second.execute(req("echo", json!("lease"))).await.unwrap()), json!("lease"));
    drop(second);
    assert_eq!(result_of(&b.await.unwrap().unwrap()), json!("b"));
    let order: Vec<_> = server.log().into_iter().map(|r| r.params).collect();
    assert_eq!(order, vec![json!("a"), json!("lease"), json!("b")]);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_times_out_with_err_pool_timeout_when_every_connection_is_busy() {
    let server = TestServer::echo().await;
    let pool = server.pool(|c| {
        c.max_connections = 1;
        c.connection_timeout = Duration::from_millis(200);
    });
    let lease = pool.acquire().await.unwrap();
    let started = Instant::now();
    let err = pool.execute(req("echo", json!(1))).await.unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err, PoolError::PoolTimeout(None));
    assert_eq!(err.code(), "ERR_POOL_TIMEOUT");
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    let err = pool.acquire().await.unwrap_err();
    assert_eq!(err.code(), "ERR_POOL_TIMEOUT");
    assert_eq!(pool.stats().pending_requests, 0);
    assert_eq!(server.counts().requests, 0);
    // The pool still works once the connection is free.
    drop(lease);
    assert_eq!(result_of(&pool.execute(req("echo", json!(2))).await.unwrap()), json!(2));
    assert_eq!(server.counts().accepted, 1);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_time_out_one_by_one_in_order() {
    let server = TestServer::echo().await;
    let pool = server.pool(|c| {
        c.max_connections = 1;
        c.connection_timeout = Duration::from_millis(150);
    });
    let _lease = pool.acquire().await.unwrap();
    let first = submit(&pool, "echo", json!(1));
    let second = submit(&pool, "echo", json!(2));
    assert_eq!(pool.stats().pending_requests, 2);
    assert_eq!(first.await.unwrap().unwrap_err().code(), "ERR_POOL_TIMEOUT");
    assert_eq!(second.await.unwrap().unwrap_err().code(), "ERR_POOL_TIMEOUT");
    // A waiter queued after those timed out gets its own full timeout.
    let started = Instant::now();
    let third = submit(&pool, "echo", json!(3));
    assert_eq!(pool.stats().pending_requests, 1);
    assert_eq!(third.await.unwrap().unwrap_err().code(), "ERR_POOL_TIMEOUT");
    assert!(started.elapsed() >= Duration::from_millis(150));
    pool.shutdown().await;
}

/// The maintenance task is woken for a queued call only when the call moves its next deadline
/// earlier: a later waiter with a shorter timeout must still give up on time, not when the
/// waiter ahead of it would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_waiter_with_a_shorter_timeout_gives_up_first() {
    let server = TestServer::echo().await;
    let pool = server.pool(|c| {
        c.max_connections = 1;
        c.connection_timeout = Duration::from_secs(20);
        c.health_check_interval = Duration::from_secs(60);
    });
    let lease = pool.acquire().await.unwrap();
    let patient = submit(&pool, "echo", json!("patient"));
    // Once the maintenance task has seen the first waiter, it sleeps until that one gives up
    // (20 s), no longer until the next top-up (60 s).
    let (near, far) = (Instant::now() + Duration::from_secs(10), Instant::now() + Duration::from_secs(30));
    eventually("the maintenance task to see the first waiter", || {
        pool.next_maintenance().is_some_and(|t| t > near && t < far)
    })
    .await;
    let started = Instant::now();
    let (tx, hasty) = oneshot::channel();
    let options = CallOptions { timeout: Some(Duration::from_millis(150)) };
    let _ = pool.submit_with(req("echo", json!("hasty")), options, Completion::new(move |r| drop(tx.send(r))));
    assert_eq!(pool.stats().pending_requests, 2);
    assert_eq!(hasty.await.unwrap().unwrap_err().code(), "ERR_POOL_TIMEOUT");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "gave up when the maintenance task next looked anyway: {waited:?}");
    // The one ahead of it still waits, and is served once the connection is free.
    assert_eq!(pool.stats().pending_requests, 1);
    lease.release();
    assert_eq!(result_of(&patient.await.unwrap().unwrap()), json!("patient"));
    assert_eq!(server.counts().requests, 1, "the hasty call was never sent");
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_pending_requests_while_they_wait() {
    let gate = Gate::new();
    let g = gate.clone();
    let server = TestServer::start(move |_| Reply::EchoWhen(g.clone())).await;
    let pool = Arc::new(server.pool(|c| c.max_connections = 2));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move { pool.execute(req("echo", json!(i))).await }));
    }
    let _ = server.wait_for("two requests in flight", |c| c.requests == 2).await;
    eventually("three callers queued", || pool.stats().pending_requests == 3).await;
    let stats = pool.stats();
    assert_eq!((stats.total_connections, stats.active_connections, stats.idle_connections), (2, 2, 0));
    gate.open();
    for t in tasks {
        let _ = t.await.unwrap().unwrap();
    }
    let stats = pool.stats();
    assert_eq!((stats.pending_requests, stats.active_connections, stats.total_requests), (0, 0, 5));
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_callers_never_exceed_max_connections() {
    let server = TestServer::start(|r| {
        let n = r.params.as_u64().unwrap();
        Reply::EchoAfter(Duration::from_millis(n % 3))
    })
    .await;
    let pool = Arc::new(server.pool(|c| c.max_connections = 3));
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let reply = pool.execute(req("echo", json!(i))).await.unwrap();
            assert_eq!(result_of(&reply), json!(i));
            let stats = pool.stats();
            assert!(stats.total_connections + stats.opening_connections <= 3, "{stats:?}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let counts = server.counts();
    assert!(counts.peak_open <= 3, "{counts:?}");
    assert!(counts.accepted <= 3, "no connection was opened beyond the cap: {counts:?}");
    assert_eq!(counts.requests, 200);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_leases_and_requests_never_exceed_max_connections() {
    let server = TestServer::echo().await;
    let pool = Arc::new(server.pool(|c| {
        c.max_connections = 2;
        c.min_connections = 2;
    }));
    let mut tasks = Vec::new();
    for i in 0..40u64 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let lease = pool.acquire().await.unwrap();
                for k in 0..3 {
                    let reply = lease.execute(req("echo", json!([i, k]))).await.unwrap();
                    assert_eq!(result_of(&reply), json!([i, k]));
                }
            } else {
                let reply = pool.execute(req("echo", json!(i))).await.unwrap();
                assert_eq!(result_of(&reply), json!(i));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let counts = server.counts();
    assert!(counts.peak_open <= 2 && counts.accepted <= 2, "{counts:?}");
    assert_eq!(counts.requests, 20 * 3 + 20);
    pool.shutdown().await;
}
