//! A scriptable stand-in for Blender's add-on server, on a real TCP socket on 127.0.0.1.
//!
//! The one Rust mock of the project: the core's integration tests (`core/tests/common`) script
//! it request by request, and the benchmark's `mock-server` binary (`bench/native`) answers the
//! bench's commands with it. (The JavaScript mock, shipped to users as
//! `blender-mcp-pool/mock`, is the other one.)
//!
//! The server reads requests as the add-on's clients send them, one JSON object ended by `\n`
//! (JSON never holds a raw newline), answers each in order as the handler says (echo the
//! params, wait, never answer, close, send bytes, trickle them, ...), and writes the reply with
//! no delimiter after it, like the real add-on. A request that is not JSON gets an error reply.
//!
//! When recording (the default), it keeps every request with the number of the server-side
//! connection it came on, and publishes its counts (accepted / open / peak open connections,
//! requests) on a `watch` channel, so tests synchronise on them and never sleep. The benchmark
//! turns recording off: its server does only what a round trip needs.
#![deny(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long [`MockServer::wait_for`] waits before it panics (failing the test).
pub const DEADLINE: Duration = Duration::from_secs(5);

/// What the server saw, as counts. Kept only while recording.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Connections accepted over the server's life.
    pub accepted: usize,
    /// Connections open now (accepted, not yet closed by either side).
    pub open: usize,
    /// The most connections that were open at once.
    pub peak_open: usize,
    /// Requests received (complete lines).
    pub requests: usize,
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Server-side number of the connection it came on, from 1 in accept order.
    pub conn: usize,
    /// Order of arrival over the whole server, from 0 (0 for every request when not recording).
    pub index: usize,
    /// The request's `type`.
    pub kind: String,
    /// The request's `params` (`null` when absent).
    pub params: Value,
}

/// A latch the test opens to let gated replies go.
#[derive(Debug, Clone)]
pub struct Gate(Arc<watch::Sender<bool>>);

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Gate(Arc::new(watch::channel(false).0))
    }

    /// Opens it: every reply waiting on it goes, and later ones do not wait.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    /// Waits until it is open.
    pub async fn wait(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }
}

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// `{"status":"success","result":<params>}` at once.
    Echo,
    /// Echo after this delay.
    EchoAfter(Duration),
    /// Echo once the gate opens.
    EchoWhen(Gate),
    /// Never answer (the connection stays open).
    Never,
    /// Close the connection without answering.
    Close,
    /// Write these bytes, in one write.
    Raw(Vec<u8>),
    /// Write these bytes (shared, not copied: the bench's big replies), in one write.
    Shared(Arc<Vec<u8>>),
    /// Write these bytes, then close the connection.
    RawThenClose(Vec<u8>),
    /// Write `bytes` in pieces of `chunk` bytes, pausing `gap` between them (a zero gap yields to
    /// the scheduler instead): a reply that trickles in, or takes a while to arrive.
    Chunked {
        /// The whole reply.
        bytes: Arc<Vec<u8>>,
        /// Bytes per write.
        chunk: usize,
        /// The pause between writes.
        gap: Duration,
    },
}

/// The bytes of an echo reply for `params`: `{"status":"success","result":<params>}`.
pub fn echo_bytes(params: &Value) -> Vec<u8> {
    let mut out = br#"{"status":"success","result":"#.to_vec();
    serde_json::to_writer(&mut out, params).expect("writing a Value to a Vec cannot fail");
    out.push(b'}');
    out
}

/// The bytes of an error reply: `{"status":"error","message":<message>}`.
pub fn error_bytes(message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "status": "error", "message": message }))
        .expect("writing a Value to a Vec cannot fail")
}

type Handler = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

struct ServerState {
    record: bool,
    counts: watch::Sender<Counts>,
    log: Mutex<Vec<Received>>,
    handler: Handler,
    /// Bumped to make every open connection close.
    kill: watch::Sender<u64>,
}

impl ServerState {
    fn count(&self, f: impl FnOnce(&mut Counts)) {
        if self.record {
            self.counts.send_modify(f);
        }
    }
}

/// The server. Dropping it stops accepting; connections already open are served on.
pub struct MockServer {
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    state: Arc<ServerState>,
    accept_task: JoinHandle<()>,
}

impl fmt::Debug for MockServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServer").field("port", &self.port).field("counts", &self.counts()).finish()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl MockServer {
    /// A recording server on a free port that echoes every request.
    pub async fn echo() -> Self {
        Self::start(|_| Reply::Echo).await
    }

    /// A recording server on a free port, answering each request as `handler` says.
    pub async fn start(handler: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        Self::serve(listener, true, handler)
    }

    /// Serves on `listener` (on the current runtime), recording or not.
    pub fn serve(
        listener: TcpListener,
        record: bool,
        handler: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let port = listener.local_addr().expect("a bound listener has an address").port();
        let state = Arc::new(ServerState {
            record,
            counts: watch::channel(Counts::default()).0,
            log: Mutex::new(Vec::new()),
            handler: Arc::new(handler),
            kill: watch::channel(0).0,
        });
        let st = state.clone();
        let accept_task = tokio::spawn(async move {
            let mut accepted = 0;
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    // Out of file descriptors and the like: the client sees a refusal or a reset.
                    Err(_) => continue,
                };
                let _ = stream.set_nodelay(true);
                accepted += 1;
                st.count(|c| {
                    c.accepted += 1;
                    c.open += 1;
                    c.peak_open = c.peak_open.max(c.open);
                });
                drop(tokio::spawn(serve(st.clone(), stream, accepted)));
            }
        });
        MockServer { port, state, accept_task }
    }

    /// The counts so far (all zero when not recording).
    pub fn counts(&self) -> Counts {
        *self.state.counts.borrow()
    }

    /// Every request received so far, in order of arrival (empty when not recording).
    pub fn log(&self) -> Vec<Received> {
        self.state.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Server-side connection numbers of the requests received so far, in order.
    pub fn conns(&self) -> Vec<usize> {
        self.log().iter().map(|r| r.conn).collect()
    }

    /// Closes, from the server's side, every open connection that is waiting for a request.
    pub fn close_connections(&self) {
        self.state.kill.send_modify(|g| *g += 1);
    }

    /// Waits until the counts satisfy `pred`; panics (failing the test) after [`DEADLINE`].
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&Counts) -> bool) -> Counts {
        assert!(self.state.record, "wait_for needs a recording server");
        let mut rx = self.state.counts.subscribe();
        let outcome = tokio::time::timeout(DEADLINE, rx.wait_for(|c| pred(c))).await.map(|r| r.map(|c| *c));
        match outcome {
            Ok(Ok(c)) => c,
            _ => panic!("server: timed out waiting for {what}; counts now {:?}", self.counts()),
        }
    }
}

/// Serves one connection: reads `\n`-ended requests and answers each, in order, as the handler
/// says, until the client closes, a write fails, or the handler says close.
async fn serve(st: Arc<ServerState>, stream: TcpStream, conn: usize) {
    struct Closed(Arc<ServerState>);
    impl Drop for Closed {
        fn drop(&mut self) {
            self.0.count(|c| c.open -= 1);
        }
    }
    let _closed = Closed(st.clone());
    // Declared after the guard, so dropped before it: the socket is closed when `open` drops.
    let mut stream = stream;
    let mut kill = st.kill.subscribe();
    kill.mark_unchanged();
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    // Bytes of `buf` already searched for the terminator (big requests arrive in many reads).
    let mut scanned = 0;
    loop {
        let end = loop {
            if let Some(pos) = buf[scanned..].iter().position(|&b| b == b'\n') {
                break scanned + pos;
            }
            scanned = buf.len();
            if buf.capacity() - buf.len() < 16 * 1024 {
                buf.reserve(buf.capacity().max(64 * 1024));
            }
            tokio::select! {
                n = stream.read_buf(&mut buf) => match n {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
                _ = kill.changed() => return,
            }
        };
        let reply = answer(&st, &buf[..end], conn);
        let _ = buf.drain(..=end);
        scanned = 0;
        let Some((reply, params)) = reply else { continue };
        if !send(&mut stream, reply, &params).await {
            return;
        }
    }
}

/// The handler's answer to one request line, with the request's params (`None` for a blank
/// line, which the add-on skips).
fn answer(st: &ServerState, line: &[u8], conn: usize) -> Option<(Reply, Value)> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => return Some((Reply::Raw(error_bytes(&format!("invalid request: {e}"))), Value::Null)),
    };
    let mut received = Received {
        conn,
        index: 0,
        kind: value.get("type").and_then(Value::as_str).unwrap_or_default().to_owned(),
        params: value.get("params").cloned().unwrap_or(Value::Null),
    };
    if st.record {
        let mut log = st.log.lock().unwrap_or_else(|p| p.into_inner());
        received.index = log.len();
        log.push(received.clone());
    }
    let reply = (st.handler)(&received);
    st.count(|c| c.requests += 1);
    Some((reply, received.params))
}

/// Carries out one reply. Returns whether the connection goes on.
async fn send(stream: &mut TcpStream, reply: Reply, params: &Value) -> bool {
    match reply {
        Reply::Echo => stream.write_all(&echo_bytes(params)).await.is_ok(),
        Reply::EchoAfter(delay) => {
            tokio::time::sleep(delay).await;
            stream.write_all(&echo_bytes(params)).await.is_ok()
        }
        Reply::EchoWhen(gate) => {
            gate.wait().await;
            stream.write_all(&echo_bytes(params)).await.is_ok()
        }
        Reply::Never => true,
        Reply::Close => false,
        Reply::Raw(bytes) => stream.write_all(&bytes).await.is_ok(),
        Reply::Shared(bytes) => stream.write_all(&bytes).await.is_ok(),
        Reply::RawThenClose(bytes) => {
            let _ = stream.write_all(&bytes).await;
            false
        }
        Reply::Chunked { bytes, chunk, gap } => {
            for (i, piece) in bytes.chunks(chunk.max(1)).enumerate() {
                if i > 0 {
                    if gap.is_zero() {
                        tokio::task::yield_now().await;
                    } else {
                        tokio::time::sleep(gap).await;
                    }
                }
                if stream.write_all(piece).await.is_err() {
                    return false;
                }
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// Sends `request` on a new connection and reads until the server closes or `done` holds.
    async fn round_trip(port: u16, request: &[u8], done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut got = Vec::new();
        while !done(&got) {
            if stream.read_buf(&mut got).await.unwrap() == 0 {
                break;
            }
        }
        got
    }

    #[tokio::test]
    async fn answers_pipelined_requests_in_order_and_records_them() {
        let server = MockServer::echo().await;
        let want = br#"{"status":"success","result":1}{"status":"success","result":{"a":"b"}}"#;
        let got = round_trip(
            server.port,
            b"{\"type\":\"x\",\"params\":1}\n\n{\"type\":\"y\",\"params\":{\"a\":\"b\"}}\n",
            |got| got.len() >= want.len(),
        )
        .await;
        assert_eq!(got, want);
        let counts = server.wait_for("two requests", |c| c.requests == 2).await;
        assert_eq!((counts.accepted, counts.peak_open), (1, 1));
        let log: Vec<_> = server.log().into_iter().map(|r| (r.conn, r.index, r.kind)).collect();
        assert_eq!(log, [(1, 0, "x".to_owned()), (1, 1, "y".to_owned())]);
    }

    #[tokio::test]
    async fn a_request_that_is_not_json_gets_an_error_reply() {
        let server = MockServer::echo().await;
        let got = round_trip(server.port, b"{nope\n", |got| serde_json::from_slice::<Value>(got).is_ok()).await;
        let reply: Value = serde_json::from_slice(&got).unwrap();
        assert_eq!(reply["status"], "error");
        assert!(reply["message"].as_str().unwrap().starts_with("invalid request: "), "{reply}");
    }

    #[tokio::test]
    async fn a_server_that_does_not_record_keeps_no_log_and_no_counts() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = MockServer::serve(listener, false, |r| Reply::Raw(r.kind.clone().into_bytes()));
        assert_eq!(round_trip(server.port, b"{\"type\":\"abc\"}\n", |got| got.len() >= 3).await, b"abc");
        assert_eq!((server.counts(), server.log().len()), (Counts::default(), 0));
    }

    #[tokio::test]
    async fn chunked_replies_arrive_whole_and_close_ends_the_connection() {
        let server = MockServer::start(|r| match r.kind.as_str() {
            "chunked" => Reply::Chunked { bytes: Arc::new(b"0123456789".to_vec()), chunk: 3, gap: Duration::ZERO },
            _ => Reply::Close,
        })
        .await;
        // The second request closes the connection: reading to the end gives the first reply only.
        let got = round_trip(server.port, b"{\"type\":\"chunked\"}\n{\"type\":\"close\"}\n", |_| false).await;
        assert_eq!(got, b"0123456789");
        let _ = server.wait_for("the connection closed", |c| c.open == 0 && c.requests == 2).await;
    }
}
