//! `mock-server`: a fast mock of the Blender add-on's socket server, for `npm run bench`.
//!
//! Listens on 127.0.0.1 (`--port N`, 0 = a free port), prints `listening on 127.0.0.1:PORT` on
//! stdout, then serves until killed. One thread serves every connection from one epoll loop
//! (tokio's current-thread runtime): the real add-on runs a thread per client, but here each
//! request would then cost the server a thread wake-up, and on loopback the client's `send` pays
//! for waking it. A busy single loop keeps the server's share of each round trip small, so the
//! figures show the clients' costs. A request is one JSON object
//! ended by `\n` (the clients always append it, and JSON never holds a raw newline); the reply is
//! one JSON object with no delimiter after it, like the real add-on. Commands:
//!
//! - `echo` (and any unknown type): `{"status":"success","result":<params>}`
//! - `big` `{bytes: N}`: `{"status":"success","result":"aaa…"}` with N `a`s (built once per size);
//!   with `pace_ms: P`, written 1 MB at a time with P ms between chunks
//! - `execute_code` `{code}`: `{"status":"success","result":{"executed":true,"length":<chars>}}`

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use blender_mcp_pool_bench::args::{fail, Args};
use serde::Deserialize;
use serde_json::Value;

/// One request as the clients send it: `{"type": ..., "params": {...}}`.
#[derive(Deserialize)]
struct Request {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    params: Option<Value>,
}

/// `big` replies already built, by size: the benchmark asks for the same few sizes many times.
#[derive(Default)]
struct BigReplies {
    by_size: RefCell<HashMap<usize, Arc<Vec<u8>>>>,
}

impl BigReplies {
    fn get(&self, size: usize) -> Arc<Vec<u8>> {
        let mut map = self.by_size.borrow_mut();
        map.entry(size).or_insert_with(|| Arc::new(build_big_reply(size))).clone()
    }
}

fn build_big_reply(size: usize) -> Vec<u8> {
    const HEAD: &[u8] = br#"{"status":"success","result":""#;
    const TAIL: &[u8] = br#""}"#;
    let mut reply = Vec::with_capacity(HEAD.len() + size + TAIL.len());
    reply.extend_from_slice(HEAD);
    reply.resize(HEAD.len() + size, b'a');
    reply.extend_from_slice(TAIL);
    reply
}

/// The bytes of one reply: built for this request, or shared from the `big` cache, and
/// optionally paced: written 1 MB at a time with a pause between (a reply that takes a while to
/// arrive, as from a busy Blender or a slower link).
enum Reply {
    Owned(Vec<u8>),
    Shared(Arc<Vec<u8>>),
    Paced(Arc<Vec<u8>>, Duration),
}

impl Reply {
    fn bytes(&self) -> &[u8] {
        match self {
            Reply::Owned(v) => v,
            Reply::Shared(v) | Reply::Paced(v, _) => v,
        }
    }

    async fn write_to(&self, writer: &mut (impl AsyncWrite + Unpin)) -> std::io::Result<()> {
        match self {
            Reply::Paced(bytes, pause) => {
                for (i, chunk) in bytes.chunks(1_000_000).enumerate() {
                    if i > 0 {
                        tokio::time::sleep(*pause).await;
                    }
                    writer.write_all(chunk).await?;
                }
                Ok(())
            }
            _ => writer.write_all(self.bytes()).await,
        }
    }
}

fn success(result: &Value) -> Reply {
    let mut out = br#"{"status":"success","result":"#.to_vec();
    serde_json::to_writer(&mut out, result).expect("serialising a Value cannot fail");
    out.push(b'}');
    Reply::Owned(out)
}

fn error(message: &str) -> Reply {
    let body = serde_json::json!({ "status": "error", "message": message });
    Reply::Owned(serde_json::to_vec(&body).expect("serialising a Value cannot fail"))
}

/// Answers one request line.
fn respond(line: &[u8], big: &BigReplies) -> Reply {
    let request: Request = match serde_json::from_slice(line) {
        Ok(r) => r,
        Err(e) => return error(&format!("invalid request: {e}")),
    };
    let params = request.params.unwrap_or(Value::Null);
    match request.kind.as_str() {
        "big" => match params.get("bytes").and_then(Value::as_u64) {
            Some(n) => match params.get("pace_ms").and_then(Value::as_u64) {
                Some(ms) => Reply::Paced(big.get(n as usize), Duration::from_millis(ms)),
                None => Reply::Shared(big.get(n as usize)),
            },
            None => error("big needs params.bytes (a whole number)"),
        },
        "execute_code" => match params.get("code").and_then(Value::as_str) {
            Some(code) => success(&serde_json::json!({ "executed": true, "length": code.chars().count() })),
            None => error("execute_code needs params.code (a string)"),
        },
        _ => success(&params),
    }
}

/// Serves one connection until the client closes it.
async fn serve(mut stream: TcpStream, big: Rc<BigReplies>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut scanned = 0;
    loop {
        // Every complete line in the buffer is one request; answer them in order.
        while let Some(nl) = memchr::memchr(b'\n', &buf[scanned..]) {
            let end = scanned + nl;
            let line = &buf[..end];
            if !line.iter().all(u8::is_ascii_whitespace) {
                respond(line, &big).write_to(&mut stream).await?;
            }
            let _ = buf.drain(..=end);
            scanned = 0;
        }
        scanned = buf.len();
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(buf.capacity().max(64 * 1024));
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

fn main() {
    let args = Args::from_env();
    let port: u16 = args.get("port", 0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot start the runtime: {e}")));
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| fail(&format!("cannot listen on 127.0.0.1:{port}: {e}")));
        let addr = listener.local_addr().expect("a bound listener has an address");
        println!("listening on {addr}");
        std::io::stdout().flush().ok();
        let big = Rc::new(BigReplies::default());
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let big = Rc::clone(&big);
                    // A client going away mid-reply is normal at the end of a run.
                    drop(tokio::task::spawn_local(async move {
                        let _ = serve(stream, big).await;
                    }));
                }
                Err(e) => eprintln!("mock-server: accept failed: {e}"),
            }
        }
    });
}
