//! `mock-server`: the project's mock Blender (`mock-server/`, the one the core's tests use),
//! answering the benchmark's commands, for `npm run bench`.
//!
//! Listens on 127.0.0.1 (`--port N`, 0 = a free port), prints `listening on 127.0.0.1:PORT` on
//! stdout, then serves until killed. One thread serves every connection from one epoll loop
//! (tokio's current-thread runtime), and the server records nothing: the real add-on runs a
//! thread per client, but here each request would then cost the server a thread wake-up, and on
//! loopback the client's `send` pays for waking it. A busy single loop keeps the server's share
//! of each round trip small, so the figures show the clients' costs. Commands:
//!
//! - `echo` (and any unknown type): `{"status":"success","result":<params>}`
//! - `big` `{bytes: N, shape?}`: a reply whose `result` is N bytes of JSON (built once per shape
//!   and size): by default `"aaa…"`, one string of N `a`s; `shape: "scene"` a scene dump,
//!   `"printed"` a string of printed JSON (`blender_mcp_pool_bench::shapes`); with `pace_ms: P`,
//!   written 1 MB at a time with P ms between chunks
//! - `execute_code` `{code}`: `{"status":"success","result":{"executed":true,"length":<chars>}}`

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blender_mcp_pool_bench::args::{fail, Args};
use blender_mcp_pool_bench::shapes::{self, Shape};
use blender_mcp_pool_mock_server::{echo_bytes, error_bytes, MockServer, Received, Reply};
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// `big` replies already built, by shape and size: the benchmark asks for the same few many times.
#[derive(Default)]
struct BigReplies {
    by_size: Mutex<HashMap<(Shape, usize), Shared>>,
}

/// One reply's bytes, shared by every connection that sends it.
type Shared = Arc<Vec<u8>>;

impl BigReplies {
    fn get(&self, shape: Shape, size: usize) -> Shared {
        let mut map = self.by_size.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((shape, size)).or_insert_with(|| Arc::new(shapes::reply(shape, size))).clone()
    }
}

/// Answers one request.
fn respond(request: &Received, big: &BigReplies) -> Reply {
    let params = &request.params;
    match request.kind.as_str() {
        "big" => {
            let shape = params.get("shape").and_then(Value::as_str).map_or(Some(Shape::String), Shape::named);
            match (params.get("bytes").and_then(Value::as_u64), shape) {
                (Some(n), Some(shape)) => match params.get("pace_ms").and_then(Value::as_u64) {
                    Some(ms) => Reply::Chunked {
                        bytes: big.get(shape, n as usize),
                        chunk: 1_000_000,
                        gap: Duration::from_millis(ms),
                    },
                    None => Reply::Shared(big.get(shape, n as usize)),
                },
                (None, _) => Reply::Raw(error_bytes("big needs params.bytes (a whole number)")),
                (_, None) => Reply::Raw(error_bytes("big: params.shape is string, scene, printed or scene-utf8")),
            }
        }
        "execute_code" => match params.get("code").and_then(Value::as_str) {
            Some(code) => Reply::Raw(echo_bytes(&json!({ "executed": true, "length": code.chars().count() }))),
            None => Reply::Raw(error_bytes("execute_code needs params.code (a string)")),
        },
        _ => Reply::Echo,
    }
}

fn main() {
    let args = Args::from_env();
    let port: u16 = args.get("port", 0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot start the runtime: {e}")));
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| fail(&format!("cannot listen on 127.0.0.1:{port}: {e}")));
        let big = BigReplies::default();
        let server = MockServer::serve(listener, false, move |request| respond(request, &big));
        println!("listening on 127.0.0.1:{}", server.port);
        std::io::stdout().flush().ok();
        std::future::pending::<()>().await
    });
}
