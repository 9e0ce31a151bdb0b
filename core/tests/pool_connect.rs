//! Blender not there: a call fails fast with `ERR_CONNECT` after `connect_retry_timeout` (not
//! `connection_timeout`), connects are retried meanwhile at least every 250 ms, and a Blender
//! that comes back is used at once.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use blender_mcp_pool_core::{Pool, PoolError};
use common::{dead_port, eventually, req, result_of, test_config};
use serde_json::json;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_against_a_closed_port_fails_after_the_retry_budget_not_the_connection_timeout() {
    let dead = dead_port();
    let mut config = test_config(dead.port);
    config.connection_timeout = Duration::from_secs(30);
    config.connect_retry_timeout = Duration::from_millis(300);
    let pool = Pool::new(config, tokio::runtime::Handle::current());
    for call in 1..=2 {
        let started = Instant::now();
        let err = pool.execute(req("get_scene_info", json!({}))).await.unwrap_err();
        let waited = started.elapsed();
        assert_eq!(err.code(), "ERR_CONNECT", "call {call}: {err}");
        let text = err.to_string();
        let addr = format!("(127.0.0.1:{})", dead.port);
        assert!(text.starts_with("Failed to connect to Blender: connection refused "), "{text}");
        assert!(
            text.contains(&addr) && text.ends_with("is Blender running with the MCP add-on's server started?"),
            "{text}"
        );
        // Held for its whole budget (retrying), and released long before connectionTimeout.
        assert!(waited >= Duration::from_millis(300), "call {call} gave up early: {waited:?}");
        assert!(waited < Duration::from_secs(10), "call {call} waited for connectionTimeout: {waited:?}");
    }
    let stats = pool.stats();
    assert!(stats.connect_failures >= 4, "both calls were retried: {stats:?}");
    assert_eq!((stats.pending_requests, stats.opening_connections), (0, 0), "{stats:?}");
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_retry_budget_fails_each_call_with_one_attempt_made_for_it() {
    let dead = dead_port();
    let mut config = test_config(dead.port);
    config.connect_retry_timeout = Duration::ZERO;
    let pool = Pool::new(config, tokio::runtime::Handle::current());
    for call in 1..=3u64 {
        let err = pool.execute(req("get_scene_info", json!({}))).await.unwrap_err();
        assert_eq!(err.code(), "ERR_CONNECT");
        assert_eq!(pool.stats().connect_failures, call, "one attempt per call");
    }
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_fails_fast_too_with_the_reason_of_the_connect() {
    let dead = dead_port();
    let mut config = test_config(dead.port);
    config.connect_retry_timeout = Duration::from_millis(100);
    let pool = Pool::new(config, tokio::runtime::Handle::current());
    let err = pool.acquire().await.unwrap_err();
    assert!(matches!(&err, PoolError::Connect { reason, .. } if reason == "connection refused"), "{err:?}");
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_that_hangs_is_bounded_by_connection_timeout_not_the_retry_budget() {
    // A listener whose accept queue is full drops further SYNs: the connect hangs, as to a host
    // that drops packets.
    let listener = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    listener.listen(0).unwrap();
    let port = listener.local_addr().unwrap().as_socket().unwrap().port();
    let _queued = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut config = test_config(port);
    config.connection_timeout = Duration::from_millis(600);
    config.connect_retry_timeout = Duration::from_millis(50);
    let pool = Pool::new(config, tokio::runtime::Handle::current());
    let started = Instant::now();
    let err = pool.execute(req("get_scene_info", json!({}))).await.unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(&err, PoolError::Connect { reason, .. } if reason.starts_with("timed out after")), "{err:?}");
    assert!(waited >= Duration::from_millis(600), "held until connectionTimeout: {waited:?}");
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_a_caller_waits_probes_keep_coming_and_a_returning_blender_serves_it_at_once() {
    let dead = dead_port();
    let port = dead.port;
    let mut config = test_config(port);
    config.connection_timeout = Duration::from_secs(30);
    config.connect_retry_timeout = Duration::from_secs(20);
    let pool = std::sync::Arc::new(Pool::new(config, tokio::runtime::Handle::current()));
    let caller = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.execute(req("echo", json!("back"))).await })
    };
    // Probes at most 250 ms apart: 8 failures come within ~1.3 s. Backed off to 5 s, as before,
    // they would take over 3 s.
    let started = Instant::now();
    eventually("eight failed probes", || pool.stats().connect_failures >= 8).await;
    let probing = started.elapsed();
    assert!(probing < Duration::from_millis(3000), "probes are backed off too far: {probing:?}");
    // Blender comes back: the next probe connects and the caller is served.
    let listener = dead.listen();
    let back = Instant::now();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut line = String::new();
        let _ = BufReader::new(&stream).read_line(&mut line).unwrap();
        (&stream).write_all(br#"{"status":"success","result":"back"}"#).unwrap();
        line
    });
    let reply = caller.await.unwrap().unwrap();
    let served_after = back.elapsed();
    assert_eq!(result_of(&reply), json!("back"));
    let request: serde_json::Value = serde_json::from_str(&server.join().unwrap()).unwrap();
    assert_eq!(request, json!({"type": "echo", "params": "back"}));
    assert!(served_after < Duration::from_millis(1000), "the returning Blender was used late: {served_after:?}");
    pool.shutdown().await;
}
