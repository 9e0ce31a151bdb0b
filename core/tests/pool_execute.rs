//! `Pool::execute` against a real TCP server: round trips, concurrency, and replies that arrive
//! in pieces or very large.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{echo_bytes, req, result_of, Reply, TestServer};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_round_trip_returns_the_reply_text() {
    let server = TestServer::echo().await;
    let pool = server.pool(|_| {});
    let reply = pool.execute(req("get_scene_info", json!({"detail": true}))).await.unwrap();
    assert_eq!(reply, r#"{"status":"success","result":{"detail":true}}"#);
    let log = server.log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].kind, "get_scene_info");
    assert_eq!(log[0].params, json!({"detail": true}));
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_returns_an_error_reply_as_a_reply() {
    let server =
        TestServer::start(|_| Reply::Raw(br#"{"status":"error","message":"Object not found"}"#.to_vec())).await;
    let pool = server.pool(|_| {});
    let reply = pool.execute(req("get_object_info", json!({"name": "Nope"}))).await.unwrap();
    assert_eq!(reply, r#"{"status":"error","message":"Object not found"}"#);
    assert_eq!(pool.stats().total_requests, 1);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_reuses_one_connection_for_sequential_requests() {
    let server = TestServer::echo().await;
    let pool = server.pool(|_| {});
    for i in 0..10 {
        let reply = pool.execute(req("echo", json!({"i": i}))).await.unwrap();
        assert_eq!(result_of(&reply), json!({"i": i}));
    }
    assert_eq!(server.conns(), vec![1; 10]);
    assert_eq!(server.counts().accepted, 1);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_concurrent_replies_match_their_requests_within_the_cap() {
    // Delays vary per request so replies come back out of order across connections.
    let server = TestServer::start(|r| {
        let id = r.params["id"].as_u64().unwrap();
        Reply::EchoAfter(Duration::from_millis(id * 7 % 11))
    })
    .await;
    let pool = Arc::new(server.pool(|c| c.max_connections = 5));
    let mut tasks = Vec::new();
    for id in 0..16u64 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for round in 0..5u64 {
                let params = json!({"id": id, "round": round, "pad": "x".repeat(id as usize * 100)});
                let reply = pool.execute(req("echo", params.clone())).await.unwrap();
                out.push((params, result_of(&reply)));
            }
            out
        }));
    }
    for t in tasks {
        for (sent, got) in t.await.unwrap() {
            assert_eq!(got, sent);
        }
    }
    let counts = server.counts();
    assert!(counts.peak_open <= 5, "{counts:?}");
    assert_eq!(counts.requests, 80);
    let stats = pool.stats();
    assert_eq!(stats.total_requests, 80);
    assert!(stats.total_connections <= 5, "{stats:?}");
    assert_eq!((stats.pending_requests, stats.active_connections), (0, 0));
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_answered_requests() {
    let server = TestServer::echo().await;
    let pool = server.pool(|_| {});
    assert_eq!(pool.stats().total_requests, 0);
    for i in 0..3 {
        let _ = pool.execute(req("echo", json!(i))).await.unwrap();
    }
    let stats = pool.stats();
    assert_eq!(stats.total_requests, 3);
    assert_eq!(stats.failed_requests, 0);
    assert_eq!((stats.total_connections, stats.idle_connections, stats.active_connections), (1, 1, 0));
    assert_eq!(stats.connections_opened, 1);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_reassembles_a_reply_sent_one_byte_at_a_time() {
    let server =
        TestServer::start(|r| Reply::Chunked { bytes: echo_bytes(&r.params).into(), chunk: 1, gap: Duration::ZERO })
            .await;
    let pool = server.pool(|_| {});
    let params = json!({"text": "a \"quoted\" {brace} h\u{e9}llo \u{1f3a8} \\", "list": [1, [2, {"x": []}]]});
    for _ in 0..3 {
        let reply = pool.execute(req("echo", params.clone())).await.unwrap();
        assert_eq!(result_of(&reply), params);
    }
    assert_eq!(server.counts().accepted, 1, "the connection stays usable");
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_reassembles_a_reply_split_across_timed_writes() {
    let server = TestServer::start(|r| Reply::Chunked {
        bytes: echo_bytes(&r.params).into(),
        chunk: 7,
        gap: Duration::from_millis(2),
    })
    .await;
    let pool = server.pool(|_| {});
    let params = json!({"s": "}]\"\\".repeat(10), "n": [1.5, null, true]});
    let reply = pool.execute(req("echo", params.clone())).await.unwrap();
    assert_eq!(result_of(&reply), params);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_ignores_whitespace_before_the_reply() {
    let server = TestServer::start(|r| {
        let mut bytes = b" \r\n\t\n  ".to_vec();
        bytes.extend(echo_bytes(&r.params));
        Reply::Raw(bytes)
    })
    .await;
    let pool = server.pool(|_| {});
    for i in 0..3 {
        let reply = pool.execute(req("echo", json!({"i": i}))).await.unwrap();
        assert_eq!(reply, format!(r#"{{"status":"success","result":{{"i":{i}}}}}"#));
    }
    assert_eq!(server.counts().accepted, 1);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_ignores_whitespace_split_from_the_reply() {
    let server = TestServer::start(|r| {
        let mut bytes = b"\n\n\n\n".to_vec();
        bytes.extend(echo_bytes(&r.params));
        Reply::Chunked { bytes: bytes.into(), chunk: 2, gap: Duration::from_millis(1) }
    })
    .await;
    let pool = server.pool(|_| {});
    let reply = pool.execute(req("echo", json!("hi"))).await.unwrap();
    assert_eq!(reply, r#"{"status":"success","result":"hi"}"#);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_receives_a_20_mb_reply_whole() {
    const SIZE: usize = 20 * 1024 * 1024;
    // A long string with escapes and braces all the way through, as `execute_code` output can be.
    let unit = "line {of} \\\"output\\\" ]\\n";
    let body: String = unit.repeat(SIZE.div_ceil(unit.len()));
    let reply_bytes = format!(r#"{{"status":"success","result":"{body}"}}"#).into_bytes();
    assert!(reply_bytes.len() >= SIZE - 100);
    let expected = String::from_utf8(reply_bytes.clone()).unwrap();
    let server = TestServer::start(move |_| Reply::Raw(reply_bytes.clone())).await;
    let pool = server.pool(|_| {});
    let reply = pool.execute(req("execute_code", json!({"code": "print()"}))).await.unwrap();
    assert_eq!(reply.len(), expected.len());
    assert!(reply == expected, "the 20 MB reply differs");
    // The connection is reusable after it.
    let reply = pool.execute(req("execute_code", json!({}))).await.unwrap();
    assert_eq!(reply.len(), expected.len());
    assert_eq!(server.counts().accepted, 1);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_sends_a_request_larger_than_the_socket_buffer() {
    // 8 MB does not fit in the socket's send buffer: the rest is finished by the connection task.
    let server = TestServer::echo().await;
    let pool = server.pool(|_| {});
    let params = json!({"code": "#".repeat(8 * 1024 * 1024)});
    let reply = pool.execute(req("execute_code", params.clone())).await.unwrap();
    assert!(result_of(&reply) == params, "the 8 MB request came back different");
    // And the connection is in step for the next one.
    let reply = pool.execute(req("echo", json!("small"))).await.unwrap();
    assert_eq!(result_of(&reply), json!("small"));
    assert_eq!(server.conns(), vec![1, 1]);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_works_from_threads_outside_the_runtime() {
    let server = TestServer::echo().await;
    let pool = Arc::new(server.pool(|c| c.max_connections = 3));
    let (tx, rx) = std::sync::mpsc::channel();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let pool = pool.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let params = json!([t, i]);
                    let tx = tx.clone();
                    let expected = params.clone();
                    pool.submit(
                        req("echo", params),
                        blender_mcp_pool_core::Completion::new(move |r| drop(tx.send((expected, r)))),
                    );
                }
            })
        })
        .collect();
    drop(tx);
    for t in threads {
        t.join().unwrap();
    }
    let replies = tokio::task::spawn_blocking(move || rx.iter().collect::<Vec<_>>()).await.unwrap();
    assert_eq!(replies.len(), 100);
    for (sent, reply) in replies {
        assert_eq!(result_of(&reply.unwrap()), sent);
    }
    assert!(server.counts().peak_open <= 3);
    pool.shutdown().await;
}

/// Big and small replies alternate on one connection: the reading changes hands for each big
/// one (with a watcher: to the I/O thread past 256 KiB, then back) and no byte is lost or
/// misattributed on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_and_small_replies_alternate_on_one_connection() {
    let server = TestServer::start(|r| {
        let size = r.params["size"].as_u64().unwrap_or(0) as usize;
        let body = "x".repeat(size);
        Reply::Raw(format!(r#"{{"status":"success","result":{{"n":{},"body":"{body}"}}}}"#, r.params["n"]).into_bytes())
    })
    .await;
    let pool = server.pool(|c| c.max_connections = 1);
    for n in 0..12 {
        let size = if n % 3 == 0 { 3_000_000 + n * 1000 } else { n * 10 };
        let reply = pool.execute(req("echo", json!({"n": n, "size": size}))).await.unwrap();
        let result = result_of(&reply);
        assert_eq!(result["n"], json!(n));
        assert_eq!(result["body"].as_str().map(str::len), Some(size), "reply {n}");
    }
    assert_eq!(server.conns(), vec![1; 12], "every request on the one connection");
    pool.shutdown().await;
}
