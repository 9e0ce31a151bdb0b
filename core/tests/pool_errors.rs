//! Each way a call can fail yields its documented code, and a connection that misbehaved is
//! never reused: the next request goes out on a new connection and succeeds.

mod common;

use std::time::Duration;

use blender_mcp_pool_core::{PoolConfig, PoolError};
use common::{dead_port, echo_bytes, eventually, req, result_of, test_config, Reply, TestServer};
use serde_json::json;
use tokio::time::Instant;

/// Runs a good request, then one the server answers with `fault`, then another good one, with
/// `max_connections` 1 (so without a discard the same connection would be reused). Returns the
/// fault's outcome after checking the faulty connection was closed and replaced.
async fn fault_then_recover(fault: Reply, tweak: impl FnOnce(&mut PoolConfig)) -> Result<String, PoolError> {
    let server = TestServer::start(move |r| if r.kind == "fault" { fault.clone() } else { Reply::Echo }).await;
    let pool = server.pool(|c| {
        c.max_connections = 1;
        tweak(c);
    });
    let reply = pool.execute(req("warm", json!(1))).await.unwrap();
    assert_eq!(result_of(&reply), json!(1));
    let outcome = pool.execute(req("fault", json!(2))).await;
    // The connection the fault came on is closed (by the pool, or by the server itself)...
    let _ = server.wait_for("the faulty connection to close", |c| c.open == 0).await;
    eventually("the pool to drop the faulty connection", || pool.stats().total_connections == 0).await;
    // ...and the next request opens a new one and succeeds.
    let reply = pool.execute(req("after", json!(3))).await.unwrap();
    assert_eq!(result_of(&reply), json!(3));
    assert_eq!(server.conns(), vec![1, 1, 2]);
    assert_eq!(server.counts().accepted, 2);
    let stats = pool.stats();
    assert_eq!(stats.connections_opened, 2);
    assert_eq!(stats.failed_requests, u64::from(outcome.is_err()));
    pool.shutdown().await;
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_a_closed_port_fails_with_err_connect() {
    let dead = dead_port();
    let mut config = test_config(dead.port);
    config.max_connections = 2;
    config.connection_timeout = Duration::from_millis(200);
    let pool = blender_mcp_pool_core::Pool::new(config, tokio::runtime::Handle::current());
    let err = pool.execute(req("get_scene_info", json!({}))).await.unwrap_err();
    assert_eq!(err.code(), "ERR_CONNECT");
    assert!(matches!(&err, PoolError::Connect { addr, .. } if addr.starts_with("127.0.0.1:")), "{err:?}");
    // A lease fails the same way, and the failures are counted.
    assert_eq!(pool.acquire().await.unwrap_err().code(), "ERR_CONNECT");
    let stats = pool.stats();
    assert!(stats.connect_failures >= 2, "{stats:?}");
    assert_eq!((stats.total_connections, stats.opening_connections, stats.pending_requests), (0, 0, 0));
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_keeps_waiting_through_connect_retries_then_fails_with_err_connect_at_its_deadline() {
    let dead = dead_port();
    let mut config = test_config(dead.port);
    config.min_connections = 1;
    config.connection_timeout = Duration::from_millis(300);
    let pool = blender_mcp_pool_core::Pool::new(config, tokio::runtime::Handle::current());
    let started = Instant::now();
    let err = pool.execute(req("get_scene_info", json!({}))).await.unwrap_err();
    assert_eq!(err.code(), "ERR_CONNECT");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300), "retried until its deadline, not less: {waited:?}");
    assert!(waited < Duration::from_secs(2), "and not much longer: {waited:?}");
    assert!(pool.stats().connect_failures >= 2, "it was retried: {:?}", pool.stats());
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_replies_fails_with_err_response_timeout() {
    let started = Instant::now();
    let outcome = fault_then_recover(Reply::Never, |c| c.socket_timeout = Duration::from_millis(200)).await;
    let err = outcome.unwrap_err();
    assert_eq!(err, PoolError::ResponseTimeout(Duration::from_millis(200), None));
    assert_eq!(err.code(), "ERR_RESPONSE_TIMEOUT");
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_timeout_is_measured_from_the_request_not_from_the_last_use() {
    // The connection sits idle for longer than the socket timeout before the request that never
    // gets a reply: the request must still get its full timeout, and then fail.
    let server = TestServer::start(|r| if r.kind == "never" { Reply::Never } else { Reply::Echo }).await;
    let pool = server.pool(|c| {
        c.max_connections = 1;
        c.socket_timeout = Duration::from_millis(150);
    });
    let _ = pool.execute(req("warm", json!(1))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await; // idle time, the behaviour under test
    assert_eq!(pool.stats().total_connections, 1, "an idle connection is not timed out");
    let started = Instant::now();
    let err = pool.execute(req("never", json!(2))).await.unwrap_err();
    assert_eq!(err.code(), "ERR_RESPONSE_TIMEOUT");
    assert!(started.elapsed() >= Duration::from_millis(150), "{:?}", started.elapsed());
    assert_eq!(server.conns(), vec![1, 1]);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_timeout_restarts_whenever_bytes_arrive() {
    // Six gaps of 100 ms: the reply takes ~600 ms in all, twice the 300 ms timeout, but no gap
    // comes near the timeout.
    let server = TestServer::start(|r| {
        let bytes = echo_bytes(&r.params);
        let chunk = bytes.len().div_ceil(7);
        Reply::Chunked { bytes: bytes.into(), chunk, gap: Duration::from_millis(100) }
    })
    .await;
    let pool = server.pool(|c| c.socket_timeout = Duration::from_millis(300));
    let params = json!({"payload": "x".repeat(70)});
    let started = Instant::now();
    let reply = pool.execute(req("slow", params.clone())).await.unwrap();
    assert!(started.elapsed() > Duration::from_millis(300), "the reply took longer than the timeout");
    assert_eq!(result_of(&reply), params);
    assert_eq!(server.counts().accepted, 1);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_stalls_halfway_fails_with_err_response_timeout() {
    let outcome = fault_then_recover(Reply::Raw(br#"{"status":"success","result":"#.to_vec()), |c| {
        c.socket_timeout = Duration::from_millis(200)
    })
    .await;
    assert_eq!(outcome.unwrap_err().code(), "ERR_RESPONSE_TIMEOUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_waiting_on_an_unreachable_server_make_a_trickle_of_attempts_not_a_storm() {
    let dead = dead_port();
    let mut config = test_config(dead.port);
    config.max_connections = 5;
    config.connection_timeout = Duration::from_millis(400);
    let pool = std::sync::Arc::new(blender_mcp_pool_core::Pool::new(config, tokio::runtime::Handle::current()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.execute(req("echo", json!(i))).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap_err().code(), "ERR_CONNECT");
    }
    assert!(started.elapsed() < Duration::from_secs(2), "all fail at their deadline: {:?}", started.elapsed());
    let stats = pool.stats();
    // The first connects, at most one per free slot (5; fewer if the first is refused before
    // all callers have arrived), then one probe at a time, 25-50, 50-100, 100-200, 125-250 ms
    // apart: at most 4 more in 400 ms, whatever the number of callers (50).
    assert!((2..=9).contains(&stats.connect_failures), "{stats:?}");
    assert_eq!((stats.pending_requests, stats.opening_connections), (0, 0), "{stats:?}");
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_closes_without_replying_fails_with_err_connection_closed() {
    let err = fault_then_recover(Reply::Close, |_| {}).await.unwrap_err();
    assert_eq!(err.code(), "ERR_CONNECTION_CLOSED");
    assert!(matches!(err, PoolError::ConnectionClosed(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_closes_mid_reply_fails_with_err_connection_closed() {
    let err = fault_then_recover(Reply::RawThenClose(br#"{"status":"success","result":{"a":"#.to_vec()), |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ERR_CONNECTION_CLOSED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_closes_after_whitespace_fails_with_err_connection_closed() {
    let err = fault_then_recover(Reply::RawThenClose(b"  \n".to_vec()), |_| {}).await.unwrap_err();
    assert_eq!(err.code(), "ERR_CONNECTION_CLOSED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_reply_fails_with_err_invalid_response() {
    let err = fault_then_recover(Reply::Raw(b"Hello, this is not JSON".to_vec()), |_| {}).await.unwrap_err();
    assert_eq!(err.code(), "ERR_INVALID_RESPONSE");
    match err {
        PoolError::InvalidResponse { sample, .. } => assert!(sample.starts_with("Hello, this is not JSON"), "{sample}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_is_not_an_object_fails_with_err_invalid_response() {
    for bytes in [&b"[1,2,3]"[..], b"\"success\"", b"  42", b"null"] {
        let err = fault_then_recover(Reply::Raw(bytes.to_vec()), |_| {}).await.unwrap_err();
        assert_eq!(err.code(), "ERR_INVALID_RESPONSE", "{:?}", String::from_utf8_lossy(bytes));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_with_a_bad_status_fails_with_err_invalid_response() {
    for bytes in [
        &br#"{"status":"ok","result":1}"#[..],
        br#"{"result":1}"#,
        br#"{"status":"error","message":42}"#,
        br#"{"status":"success","result":[1,]}"#,
    ] {
        let err = fault_then_recover(Reply::Raw(bytes.to_vec()), |_| {}).await.unwrap_err();
        assert_eq!(err.code(), "ERR_INVALID_RESPONSE", "{:?}", String::from_utf8_lossy(bytes));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_is_not_utf8_fails_with_err_invalid_response() {
    let bytes = b"{\"status\":\"success\",\"result\":\"caf\xe9\"}".to_vec();
    let err = fault_then_recover(Reply::Raw(bytes), |_| {}).await.unwrap_err();
    assert_eq!(err.code(), "ERR_INVALID_RESPONSE");
    match err {
        PoolError::InvalidResponse { reason, sample } => {
            assert!(reason.contains("UTF-8"), "{reason}");
            assert!(sample.contains("caf\u{fffd}"), "{sample}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_far_over_max_response_bytes_fails_with_err_response_too_large() {
    let huge = format!(r#"{{"status":"success","result":"{}"}}"#, "x".repeat(1024 * 1024)).into_bytes();
    let err = fault_then_recover(Reply::Raw(huge), |c| c.max_response_bytes = 4096).await.unwrap_err();
    assert_eq!(err, PoolError::ResponseTooLarge { limit: 4096 });
    assert_eq!(err.code(), "ERR_RESPONSE_TOO_LARGE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_just_over_max_response_bytes_fails_with_err_response_too_large() {
    // Small enough to arrive in a single read: the limit must hold all the same.
    let reply = format!(r#"{{"status":"success","result":"{}"}}"#, "x".repeat(200)).into_bytes();
    let limit = reply.len() - 1;
    let err = fault_then_recover(Reply::Raw(reply), |c| c.max_response_bytes = limit).await.unwrap_err();
    assert_eq!(err, PoolError::ResponseTooLarge { limit });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_of_exactly_max_response_bytes_is_accepted() {
    let server = TestServer::echo().await;
    let params = json!("y".repeat(300));
    let limit = echo_bytes(&params).len();
    let pool = server.pool(|c| c.max_response_bytes = limit);
    let reply = pool.execute(req("echo", params.clone())).await.unwrap();
    assert_eq!(result_of(&reply), params);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_documents_back_to_back_answer_the_call_but_discard_the_connection() {
    let bytes = br#"{"status":"success","result":"first"}{"status":"success","result":"second"}"#.to_vec();
    let reply = fault_then_recover(Reply::Raw(bytes), |_| {}).await.unwrap();
    assert_eq!(reply, r#"{"status":"success","result":"first"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_followed_by_a_close_answers_the_call_and_replaces_the_connection() {
    let reply = fault_then_recover(Reply::RawThenClose(echo_bytes(&json!(2))), |_| {}).await.unwrap();
    assert_eq!(result_of(&reply), json!(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailing_whitespace_after_a_reply_keeps_the_connection() {
    let server = TestServer::start(|r| {
        let mut bytes = echo_bytes(&r.params);
        bytes.extend_from_slice(b" \r\n");
        Reply::Raw(bytes)
    })
    .await;
    let pool = server.pool(|c| c.max_connections = 1);
    for i in 0..3 {
        let reply = pool.execute(req("echo", json!(i))).await.unwrap();
        assert_eq!(result_of(&reply), json!(i));
    }
    assert_eq!(server.conns(), vec![1, 1, 1]);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_fail_only_the_request_on_the_faulty_connection() {
    // Two connections; the one that gets garbage is discarded, the other keeps serving.
    let gate = common::Gate::new();
    let g = gate.clone();
    let server = TestServer::start(move |r| match r.kind.as_str() {
        "garbage" => Reply::Raw(b"<html>".to_vec()),
        "slow" => Reply::EchoWhen(g.clone()),
        _ => Reply::Echo,
    })
    .await;
    let pool = std::sync::Arc::new(server.pool(|c| c.max_connections = 2));
    let p = pool.clone();
    let slow = tokio::spawn(async move { p.execute(req("slow", json!("s"))).await });
    let _ = server.wait_for("the slow request", |c| c.requests == 1).await;
    let err = pool.execute(req("garbage", json!("g"))).await.unwrap_err();
    assert_eq!(err.code(), "ERR_INVALID_RESPONSE");
    gate.open();
    assert_eq!(result_of(&slow.await.unwrap().unwrap()), json!("s"));
    let reply = pool.execute(req("echo", json!("e"))).await.unwrap();
    assert_eq!(result_of(&reply), json!("e"));
    let log = server.log();
    assert_eq!(log[2].conn, log[0].conn, "the healthy connection is reused");
    pool.shutdown().await;
}
