//! `maxResponseBytes` bounds a reply's body, and only its body: leading whitespace and a length
//! prefix do not count, however the bytes are split across reads.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use blender_mcp_pool_core::framing::Framing;
use blender_mcp_pool_core::{Pool, PoolError};
use common::{echo_bytes, req, result_of, test_config, Reply, TestServer};
use serde_json::json;

/// An echo reply body of exactly `len` bytes.
fn reply_of_len(len: usize) -> (serde_json::Value, Vec<u8>) {
    let overhead = echo_bytes(&json!("")).len();
    let params = json!("z".repeat(len - overhead));
    let bytes = echo_bytes(&params);
    assert_eq!(bytes.len(), len);
    (params, bytes)
}

async fn json_reply_in_pieces(limit: usize, body_len: usize, leading: &[u8]) -> Result<String, PoolError> {
    let (_, body) = reply_of_len(body_len);
    let wire = [leading, &body[..]].concat();
    let server = TestServer::start(move |_| Reply::Chunked {
        bytes: wire.clone().into(),
        chunk: 7,
        gap: Duration::from_millis(1),
    })
    .await;
    let pool = server.pool(|c| c.max_response_bytes = limit);
    let outcome = pool.execute(req("echo", json!("ignored"))).await;
    pool.shutdown().await;
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_reply_of_exactly_the_limit_after_whitespace_is_accepted_in_pieces() {
    let reply = json_reply_in_pieces(300, 300, b" \r\n\t ").await.unwrap();
    assert_eq!(reply.len(), 300);
    let err = json_reply_in_pieces(300, 301, b" \r\n\t ").await.unwrap_err();
    assert_eq!(err, PoolError::ResponseTooLarge { limit: 300 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whitespace_before_a_reply_never_counts_nor_accumulates() {
    // Ten times the limit of whitespace first: dropped as it comes, the reply still fits.
    let reply = json_reply_in_pieces(300, 300, &[b' '; 3000]).await.unwrap();
    assert_eq!(result_of(&reply).as_str().map(str::len), Some(300 - echo_bytes(&json!("")).len()));
}

/// A one-shot length-prefixed server: reads one framed request and writes `reply` (framed) in
/// pieces of `chunk` bytes, flushing each.
fn length_prefixed_server(reply: Vec<u8>, chunk: usize) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_nodelay(true).unwrap();
        let mut prefix = [0u8; 4];
        stream.read_exact(&mut prefix).unwrap();
        let mut request = vec![0u8; u32::from_be_bytes(prefix) as usize];
        stream.read_exact(&mut request).unwrap();
        let wire = [&(reply.len() as u32).to_be_bytes()[..], &reply].concat();
        for piece in wire.chunks(chunk) {
            if stream.write_all(piece).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // Wait for the pool to close its side, so the pieces are all read first.
        let _ = stream.read(&mut [0u8; 1]);
        request
    });
    (port, handle)
}

async fn length_prefixed_in_pieces(limit: usize, body_len: usize) -> Result<String, PoolError> {
    let (_, body) = reply_of_len(body_len);
    let (port, server) = length_prefixed_server(body, 3);
    let mut config = test_config(port);
    config.framing = Framing::LengthPrefixed;
    config.max_response_bytes = limit;
    let pool = Pool::new(config, tokio::runtime::Handle::current());
    let outcome = pool.execute(req("echo", json!(1))).await;
    pool.shutdown().await;
    let request: serde_json::Value = serde_json::from_slice(&server.join().unwrap()).unwrap();
    assert_eq!(request, json!({"type": "echo", "params": 1}));
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_length_prefixed_reply_of_exactly_the_limit_is_accepted_in_pieces() {
    assert_eq!(length_prefixed_in_pieces(200, 200).await.unwrap().len(), 200);
    let err = length_prefixed_in_pieces(200, 201).await.unwrap_err();
    assert_eq!(err, PoolError::ResponseTooLarge { limit: 200 });
}
