//! A connection is reused only while it is provably in step, against servers that are not the
//! add-on: one that answers before the request is fully written, one that closes after every
//! reply, one that greets each new connection. No caller gets a reply that is not its own, and
//! no server sees two requests' bytes interleaved.
//!
//! The servers are written out here, on raw sockets: each misbehaves in one way the mock
//! Blender has no fault for.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{req, result_of, TestServer};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A listener on 127.0.0.1 serving each accepted connection (numbered from 1) with `serve`.
async fn serve_with<F, Fut>(serve: F) -> u16
where
    F: Fn(usize, TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let serve = Arc::new(serve);
    drop(tokio::spawn(async move {
        let mut n = 0;
        while let Ok((stream, _)) = listener.accept().await {
            n += 1;
            drop(tokio::spawn(serve(n, stream)));
        }
    }));
    port
}

/// A pool on `port`, built as [`TestServer::pool`] builds them (so both read modes run).
fn pool_on(port: u16, f: impl FnOnce(&mut blender_mcp_pool_core::PoolConfig)) -> blender_mcp_pool_core::Pool {
    let mut config = common::test_config(port);
    f(&mut config);
    common::pool_with(config)
}

/// Reads one request line; answers it with the echo of its params. Returns the request, or
/// `None` at the end of the stream.
async fn echo_one(reader: &mut BufReader<TcpStream>) -> Option<Value> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let request: Value = serde_json::from_str(line.trim_end()).expect("each request the server reads is whole JSON");
    let reply = common::echo_bytes(&request["params"]);
    reader.get_mut().write_all(&reply).await.ok()?;
    Some(request)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_begins_before_its_request_is_written_leaves_the_connection_unused() {
    // Connection 1 answers as soon as the first bytes of the request arrive, stops reading for
    // 300 ms (so most of a 16 MB request is still unwritten), then records what it gets.
    // Later connections echo.
    let (first_conn_tx, first_conn_bytes) = tokio::sync::oneshot::channel::<Vec<u8>>();
    let first_conn_tx = Mutex::new(Some(first_conn_tx));
    let later: Arc<Mutex<Vec<(usize, Value)>>> = Arc::default();
    let seen = later.clone();
    let port = serve_with(move |n, mut stream| {
        let seen = seen.clone();
        let done = if n == 1 { first_conn_tx.lock().unwrap().take() } else { None };
        async move {
            if let Some(done) = done {
                let mut got = vec![0; 64 * 1024];
                let n = stream.read(&mut got).await.unwrap();
                got.truncate(n);
                stream.write_all(br#"{"status":"success","result":"early"}"#).await.unwrap();
                // The server's own behaviour: busy for a while, not reading.
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = stream.read_to_end(&mut got).await;
                let _ = done.send(got);
                return;
            }
            let mut reader = BufReader::new(stream);
            while let Some(request) = echo_one(&mut reader).await {
                seen.lock().unwrap().push((n, request));
            }
        }
    })
    .await;
    let pool = pool_on(port, |c| c.max_connections = 1);
    let big = "b".repeat(16 * 1024 * 1024);
    let first = pool.execute(req("big", json!(big))).await.unwrap();
    assert_eq!(result_of(&first), json!("early"));
    let second = pool.execute(req("small", json!("mine"))).await.unwrap();
    assert_eq!(result_of(&second), json!("mine"), "the second call gets its own reply");
    let stats = pool.stats();
    pool.shutdown().await;
    // The second request went out alone on a new connection...
    assert_eq!(stats.connections_opened, 2);
    let later = later.lock().unwrap().clone();
    assert_eq!(later.len(), 1);
    assert_eq!((later[0].0, later[0].1["params"].clone()), (2, json!("mine")));
    // ...and the first connection carried nothing but a prefix of the first request.
    let got = first_conn_bytes.await.expect("the first connection is read to its end");
    let expected = serde_json::to_vec(&json!({"type": "big", "params": big})).unwrap();
    assert!(got.len() < expected.len(), "the first request was cut short when its connection was dropped");
    assert_eq!(&got[..], &expected[..got.len()], "only the first request's bytes, in order, on its connection");
}

/// Makes the kernel send what is written next, and the end of the stream, in one segment: so
/// the reply and the close arrive together, and the pool's check of a freed connection is
/// deterministic (otherwise the close can reach the socket a moment after the check, which no
/// client can tell from a server that read the next request and crashed).
#[cfg(target_os = "linux")]
fn cork(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // Safety: a valid descriptor, and a pointer to a c_int of the size given, for the call only.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "TCP_CORK");
}

#[cfg(not(target_os = "linux"))]
fn cork(_: &TcpStream) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_closes_after_each_reply_never_gets_a_request_on_a_closed_connection() {
    // One command per connection: read it, answer it, end the connection.
    let per_conn: Arc<Mutex<Vec<usize>>> = Arc::default();
    let counts = per_conn.clone();
    let port = serve_with(move |n, stream| {
        let counts = counts.clone();
        async move {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let request: Value = serde_json::from_str(line.trim_end()).expect("whole JSON");
            {
                let mut counts = counts.lock().unwrap();
                if counts.len() < n {
                    counts.resize(n, 0);
                }
                counts[n - 1] += 1;
            }
            let mut stream = reader.into_inner();
            cork(&stream);
            stream.write_all(&common::echo_bytes(&request["params"])).await.unwrap();
            let _ = stream.shutdown().await;
            // Whatever comes after the reply is counted: it must be nothing.
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest).await;
            assert!(rest.is_empty(), "connection {n} got {} bytes after its one reply", rest.len());
        }
    })
    .await;
    // Each request opens a connection: the settle (this server never greets) is shortened so
    // 400 of them take no longer than they must.
    let pool = Arc::new(pool_on(port, |c| {
        c.max_connections = 2;
        c.new_connection_settle = Duration::from_millis(1);
    }));
    let calls: Vec<_> = (0..400)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move { (i, pool.execute(req("echo", json!(i))).await) })
        })
        .collect();
    let mut failed = Vec::new();
    for call in calls {
        let (i, outcome) = call.await.unwrap();
        match outcome {
            Ok(reply) => assert_eq!(result_of(&reply), json!(i), "call {i} gets its own reply"),
            Err(e) => failed.push((i, e)),
        }
    }
    let stats = pool.stats();
    pool.shutdown().await;
    if cfg!(target_os = "linux") {
        assert_eq!(failed, vec![], "no request is sent into a connection the server closed");
        assert_eq!(stats.connections_opened, 400);
    } else {
        // Without TCP_CORK the close may trail the reply: only a closed connection is allowed.
        assert!(failed.iter().all(|(_, e)| e.code() == "ERR_CONNECTION_CLOSED"), "{failed:?}");
    }
    let per_conn = per_conn.lock().unwrap().clone();
    assert!(per_conn.iter().all(|&n| n <= 1), "one request per connection: {per_conn:?}");
}

/// A server that greets each connection with a whole document before any request, then
/// echoes. Returns its port and the number of requests it received.
async fn greeting_server() -> (u16, Arc<Mutex<usize>>) {
    let requests: Arc<Mutex<usize>> = Arc::default();
    let seen = requests.clone();
    let port = serve_with(move |_, mut stream| {
        let seen = seen.clone();
        async move {
            if stream.write_all(br#"{"status":"success","result":"greeting"}"#).await.is_err() {
                return;
            }
            let mut reader = BufReader::new(stream);
            while echo_one(&mut reader).await.is_some() {
                *seen.lock().unwrap() += 1;
            }
        }
    })
    .await;
    (port, requests)
}

/// Calls on a pool (keeping `min_connections` open) to a server that greets: none gets the
/// greeting, and none is written.
async fn no_call_gets_the_greeting(min_connections: usize) {
    let (port, requests) = greeting_server().await;
    // A settle long enough for the greeting to be on the socket however loaded the machine:
    // it ends as soon as the greeting arrives.
    let pool = pool_on(port, |c| {
        c.min_connections = min_connections;
        c.new_connection_settle = Duration::from_secs(5);
        c.connect_retry_timeout = Duration::from_millis(300);
    });
    for i in 0..5 {
        let err = pool.execute(req("echo", json!(i))).await.expect_err("no call gets the greeting");
        assert_eq!(err.code(), "ERR_CONNECT", "{err}");
        assert!(err.to_string().contains("sent bytes before any request"), "{err}");
    }
    let stats = pool.stats();
    pool.shutdown().await;
    assert_eq!(*requests.lock().unwrap(), 0, "no request was written to a connection that greeted");
    assert_eq!(stats.connections_opened, 0);
    assert!(stats.connect_failures >= 5, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_greeting_on_a_new_connection_opened_for_a_call_is_never_taken_for_a_reply() {
    no_call_gets_the_greeting(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_greeting_on_a_background_connection_or_its_replacement_is_never_taken_for_a_reply() {
    no_call_gets_the_greeting(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_server_is_in_step_so_the_settle_finds_nothing() {
    // The control: a server that speaks only when spoken to passes the settle, and its
    // connections are reused.
    let server = TestServer::echo().await;
    let pool = server.pool(|c| c.new_connection_settle = Duration::from_millis(20));
    for i in 0..3 {
        assert_eq!(result_of(&pool.execute(req("echo", json!(i))).await.unwrap()), json!(i));
    }
    assert_eq!(server.counts().accepted, 1);
    pool.shutdown().await;
}
