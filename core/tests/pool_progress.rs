//! Where a call stands while it waits ([`Pool::progress`]), and the command keeping Blender busy
//! named when a call waits or times out behind it: Blender runs one command at a time.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use blender_mcp_pool_core::{CallOptions, CallPhase, Completion, Pool, PoolError};
use common::{eventually, req, Gate, Reply, TestServer};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

/// Submits `kind` with `timeout`; returns its call id and a receiver of its outcome.
fn submit(pool: &Pool, kind: &str, timeout: Option<Duration>) -> (u64, oneshot::Receiver<Result<String, PoolError>>) {
    let (tx, rx) = oneshot::channel();
    let call =
        pool.submit_with(req(kind, json!(kind)), CallOptions { timeout }, Completion::new(move |r| drop(tx.send(r))));
    (call, rx)
}

/// A server that runs commands one at a time, as Blender does: `long` and `small` both wait for
/// the gate (the small one is queued behind the long one in Blender); anything else echoes.
async fn serial_blender(gate: &Gate) -> TestServer {
    let gate = gate.clone();
    TestServer::start(move |r| match r.kind.as_str() {
        "long" | "small" => Reply::EchoWhen(gate.clone()),
        _ => Reply::Echo,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_sent_behind_a_long_command_names_it_while_it_waits_and_when_it_times_out() {
    let gate = Gate::new();
    let server = serial_blender(&gate).await;
    // Two connections open before anything is sent, so that the small command has one of its
    // own (two concurrent calls alone may share one: the first can be done before the second
    // connection is needed).
    let pool = server.pool(|c| {
        c.min_connections = 2;
        c.max_connections = 2;
        c.new_connection_settle = Duration::ZERO;
    });
    let _ = server.wait_for("two connections", |c| c.accepted == 2).await;
    let (a, b) = tokio::join!(pool.execute(req("warm", json!(1))), pool.execute(req("warm", json!(2))));
    assert!(a.is_ok() && b.is_ok());
    assert_eq!(server.counts().accepted, 2);
    let (long, long_done) = submit(&pool, "long", None);
    let _ = server.wait_for("the long command", |c| c.requests == 3).await;
    let (small, small_done) = submit(&pool, "small", Some(Duration::from_millis(300)));
    let _ = server.wait_for("the small command", |c| c.requests == 4).await;

    let seen = pool.progress(small).expect("in progress");
    assert_eq!((seen.phase, seen.bytes_received), (CallPhase::Sent, 0));
    assert_eq!(seen.busy.as_ref().map(|b| b.command.as_str()), Some("long"));
    let first = pool.progress(long).expect("in progress");
    assert_eq!((first.phase, first.busy), (CallPhase::Sent, None), "nothing was sent before the long one");

    let err = small_done.await.unwrap().unwrap_err();
    match &err {
        PoolError::ResponseTimeout(after, Some(busy)) => {
            // The call's deadline counts from its submission, a moment before it was sent.
            assert!(*after > Duration::from_millis(290) && *after <= Duration::from_millis(300), "{after:?}");
            assert_eq!(busy.command, "long");
            assert!(busy.running >= Duration::from_millis(300), "{busy:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("; Blender runs one command at a time and \"long\" has been running for "),
        "{err}"
    );
    assert!(pool.progress(small).is_none(), "a settled call has no progress");
    gate.open();
    assert!(long_done.await.unwrap().is_ok());
    assert!(pool.progress(long).is_none());
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_for_a_connection_names_the_command_holding_blender() {
    let gate = Gate::new();
    let server = serial_blender(&gate).await;
    let pool = server.pool(|c| {
        c.max_connections = 1;
        c.new_connection_settle = Duration::ZERO;
    });
    let (_long, long_done) = submit(&pool, "long", None);
    let _ = server.wait_for("the long command", |c| c.requests == 1).await;
    let (small, small_done) = submit(&pool, "small", Some(Duration::from_millis(200)));
    let seen = pool.progress(small).expect("queued");
    assert_eq!(seen.phase, CallPhase::Waiting);
    assert_eq!(seen.busy.map(|b| b.command), Some("long".to_owned()));
    let err = small_done.await.unwrap().unwrap_err();
    assert!(matches!(&err, PoolError::PoolTimeout(Some(b)) if b.command == "long"), "{err:?}");
    assert!(err.to_string().contains("\"long\" has been running for"), "{err}");
    gate.open();
    assert!(long_done.await.unwrap().is_ok());
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_arriving_shows_as_receiving_with_its_bytes_so_far() {
    // Half of a reply, then the rest once the test has seen the half.
    let (rest_tx, rest_rx) = oneshot::channel::<()>();
    let rest_rx = Arc::new(Mutex::new(Some(rest_rx)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let reply = br#"{"status":"success","result":"0123456789012345678901234567890123456789"}"#.to_vec();
    let half = reply.len() / 2;
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        let _ = reader.read_line(&mut line).await.unwrap();
        let mut stream = reader.into_inner();
        stream.write_all(&reply[..half]).await.unwrap();
        let rest = rest_rx.lock().unwrap().take().unwrap();
        let _ = rest.await;
        stream.write_all(&reply[half..]).await.unwrap();
        stream
    });
    let mut config = common::test_config(port);
    config.new_connection_settle = Duration::ZERO;
    let pool = common::pool_with(config);
    let (call, done) = submit(&pool, "echo", None);
    eventually("the first half to be read", || {
        pool.progress(call).is_some_and(|p| p.phase == CallPhase::Receiving && p.bytes_received == half)
    })
    .await;
    assert_eq!(pool.progress(call).unwrap().busy, None, "Blender is done with a command it replies to");
    rest_tx.send(()).unwrap();
    assert!(done.await.unwrap().is_ok());
    drop(server.await.unwrap());
    pool.shutdown().await;
}
