//! Leases: one connection held for several commands, one command at a time, unusable after
//! release, and given back to the pool however the holder lets go of it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use blender_mcp_pool_core::{CallOptions, Completion, PoolError};
use common::{eventually, req, result_of, Gate, Reply, TestServer};
use serde_json::json;
use tokio::sync::oneshot;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_runs_several_commands_on_one_connection() {
    let server = TestServer::echo().await;
    let pool = server.pool(|c| c.max_connections = 3);
    let lease = pool.acquire().await.unwrap();
    for i in 0..5 {
        let reply = lease.execute(req("echo", json!({"step": i}))).await.unwrap();
        assert_eq!(result_of(&reply), json!({"step": i}));
    }
    assert_eq!(server.conns(), vec![1; 5]);
    assert_eq!(server.counts().accepted, 1);
    assert_eq!(pool.stats().total_requests, 5);
    lease.release();
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_info_reports_the_connection() {
    let server = TestServer::echo().await;
    let pool = server.pool(|_| {});
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as f64;
    let lease = pool.acquire().await.unwrap();
    let info = lease.info();
    assert_eq!(info.id, "conn-1");
    assert_eq!(lease.id(), "conn-1");
    assert!(info.in_use);
    assert_eq!(info.request_count, 0.0);
    assert!(info.created_at >= before - 1.0 && info.created_at > 0.0, "{info:?}");
    assert!(info.last_used_at >= info.created_at, "{info:?}");
    for n in 1..=3 {
        let _ = lease.execute(req("echo", json!(n))).await.unwrap();
        let info = lease.info();
        assert_eq!(info.request_count, f64::from(n));
        assert!(info.in_use);
        assert_eq!(info.id, "conn-1");
    }
    let last = lease.info();
    assert!(last.last_used_at >= info.last_used_at);
    lease.release();
    let info = lease.info();
    assert!(!info.in_use);
    assert_eq!(info.id, "conn-1");
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_ids_are_unique_over_the_pools_life() {
    let server = TestServer::echo().await;
    let pool = server.pool(|c| c.max_connections = 3);
    let a = pool.acquire().await.unwrap();
    let b = pool.acquire().await.unwrap();
    let c = pool.acquire().await.unwrap();
    let mut ids = vec![a.id(), b.id(), c.id()];
    ids.sort();
    assert_eq!(ids, vec!["conn-1", "conn-2", "conn-3"]);
    let stats = pool.stats();
    assert_eq!((stats.active_connections, stats.idle_connections), (3, 0));
    drop((a, b, c));
    assert_eq!(pool.stats().idle_connections, 3);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_refuses_a_second_command_while_one_runs() {
    let gate = Gate::new();
    let g = gate.clone();
    let server =
        TestServer::start(move |r| if r.kind == "slow" { Reply::EchoWhen(g.clone()) } else { Reply::Echo }).await;
    let pool = server.pool(|_| {});
    let lease = pool.acquire().await.unwrap();
    let (tx, slow) = oneshot::channel();
    let _ =
        lease.submit(req("slow", json!("first")), CallOptions::default(), Completion::new(move |r| drop(tx.send(r))));
    let err = lease.execute(req("echo", json!("second"))).await.unwrap_err();
    assert_eq!(err, PoolError::LeaseBusy);
    assert_eq!(err.code(), "ERR_CONNECTION_BUSY");
    gate.open();
    assert_eq!(result_of(&slow.await.unwrap().unwrap()), json!("first"));
    // Once the first is answered the lease takes commands again.
    assert_eq!(result_of(&lease.execute(req("echo", json!("third"))).await.unwrap()), json!("third"));
    let sent: Vec<_> = server.log().into_iter().map(|r| r.params).collect();
    assert_eq!(sent, vec![json!("first"), json!("third")], "the refused command was never sent");
    drop(lease);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_fails_with_err_connection_released_after_release() {
    let server = TestServer::echo().await;
    let pool = server.pool(|_| {});
    let lease = pool.acquire().await.unwrap();
    let _ = lease.execute(req("echo", json!(1))).await.unwrap();
    lease.release();
    let err = lease.execute(req("echo", json!(2))).await.unwrap_err();
    assert_eq!(err, PoolError::Released);
    assert_eq!(err.code(), "ERR_CONNECTION_RELEASED");
    assert_eq!(server.counts().requests, 1);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_is_idempotent() {
    let server = TestServer::echo().await;
    let pool = server.pool(|c| c.max_connections = 1);
    let lease = pool.acquire().await.unwrap();
    lease.release();
    lease.release();
    let stats = pool.stats();
    assert_eq!((stats.total_connections, stats.idle_connections, stats.active_connections), (1, 1, 0));
    // The connection was returned once: a new lease gets it, and a second release of the old
    // lease does not take it away from the new holder.
    let second = pool.acquire().await.unwrap();
    assert_eq!(second.id(), "conn-1");
    lease.release();
    drop(lease);
    assert_eq!(pool.stats().active_connections, 1);
    assert_eq!(result_of(&second.execute(req("echo", json!("mine"))).await.unwrap()), json!("mine"));
    drop(second);
    assert_eq!(server.counts().accepted, 1);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_lease_hands_the_connection_to_a_waiter() {
    let server = TestServer::echo().await;
    let pool = Arc::new(server.pool(|c| c.max_connections = 1));
    let lease = pool.acquire().await.unwrap();
    let _ = lease.execute(req("echo", json!("leased"))).await.unwrap();
    let p = pool.clone();
    let waiter = tokio::spawn(async move { p.execute(req("echo", json!("waiter"))).await });
    eventually("the caller to queue", || pool.stats().pending_requests == 1).await;
    drop(lease);
    assert_eq!(result_of(&waiter.await.unwrap().unwrap()), json!("waiter"));
    assert_eq!(server.conns(), vec![1, 1]);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releasing_a_lease_mid_command_returns_the_connection_after_the_reply() {
    let gate = Gate::new();
    let g = gate.clone();
    let server =
        TestServer::start(move |r| if r.kind == "slow" { Reply::EchoWhen(g.clone()) } else { Reply::Echo }).await;
    let pool = Arc::new(server.pool(|c| c.max_connections = 1));
    let lease = pool.acquire().await.unwrap();
    let (tx, slow) = oneshot::channel();
    let _ =
        lease.submit(req("slow", json!("slow")), CallOptions::default(), Completion::new(move |r| drop(tx.send(r))));
    let (tx, waiting) = oneshot::channel();
    let _ = pool.submit(req("echo", json!("next")), Completion::new(move |r| drop(tx.send(r))));
    drop(lease);
    assert_eq!(pool.stats().pending_requests, 1, "the connection is still busy");
    gate.open();
    assert_eq!(result_of(&slow.await.unwrap().unwrap()), json!("slow"));
    assert_eq!(result_of(&waiting.await.unwrap().unwrap()), json!("next"));
    assert_eq!(server.conns(), vec![1, 1]);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_whose_connection_failed_reports_err_connection_closed() {
    let server = TestServer::start(|r| if r.kind == "close" { Reply::Close } else { Reply::Echo }).await;
    let pool = server.pool(|_| {});
    let lease = pool.acquire().await.unwrap();
    let err = lease.execute(req("close", json!(1))).await.unwrap_err();
    assert_eq!(err.code(), "ERR_CONNECTION_CLOSED");
    assert!(!lease.info().in_use);
    let err = lease.execute(req("echo", json!(2))).await.unwrap_err();
    assert_eq!(err.code(), "ERR_CONNECTION_CLOSED");
    lease.release();
    // The pool itself carries on with a new connection.
    assert_eq!(result_of(&pool.execute(req("echo", json!(3))).await.unwrap()), json!(3));
    assert_eq!(server.conns(), vec![1, 2]);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_held_at_shutdown_fails_with_err_pool_shutdown() {
    let server = TestServer::echo().await;
    let pool = server.pool(|_| {});
    let lease = pool.acquire().await.unwrap();
    let _ = server.wait_for("the leased connection", |c| c.accepted == 1).await;
    tokio::time::timeout(Duration::from_secs(5), pool.shutdown()).await.expect("shutdown does not wait for leases");
    let _ = server.wait_for("the leased socket to close", |c| c.open == 0).await;
    let err = lease.execute(req("echo", json!(1))).await.unwrap_err();
    assert_eq!(err.code(), "ERR_POOL_SHUTDOWN");
    assert!(!lease.info().in_use);
    lease.release();
    assert_eq!(server.counts().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_command_that_times_out_fails_with_err_response_timeout() {
    let server = TestServer::start(|r| if r.kind == "hang" { Reply::Never } else { Reply::Echo }).await;
    let pool = server.pool(|c| c.socket_timeout = Duration::from_millis(200));
    let lease = pool.acquire().await.unwrap();
    let err = lease.execute(req("hang", json!(1))).await.unwrap_err();
    assert_eq!(err.code(), "ERR_RESPONSE_TIMEOUT");
    assert!(!lease.info().in_use, "the connection was discarded");
    assert_eq!(lease.execute(req("echo", json!(2))).await.unwrap_err().code(), "ERR_CONNECTION_CLOSED");
    let _ = server.wait_for("the timed-out socket to close", |c| c.open == 0).await;
    drop(lease);
    assert_eq!(result_of(&pool.execute(req("echo", json!(3))).await.unwrap()), json!(3));
    assert_eq!(server.conns(), vec![1, 2]);
    pool.shutdown().await;
}
