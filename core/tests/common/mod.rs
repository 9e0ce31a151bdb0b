//! A scriptable stand-in for Blender's add-on server, on a real TCP socket, and helpers to
//! point a [`Pool`] at it.
//!
//! The server reads requests by scanning for the `\n` terminator, records each one (with the
//! number of the server-side connection it came on), and answers as the test's handler says:
//! echo the params, wait, never answer, close, send raw bytes, trickle bytes, ...
//!
//! Tests synchronise on the server's counters (accepted / open / peak open connections,
//! requests) through a `watch` channel, never by sleeping.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use blender_mcp_pool_core::{Pool, PoolConfig, Request};
#[cfg(unix)]
use blender_mcp_pool_core::{ReadWatcher, WatchNext, WatchedConn};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long any wait-for-condition helper waits before failing the test.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// What the server saw, as counts. Every change is published on a `watch` channel.
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
    /// Order of arrival over the whole server, from 0.
    pub index: usize,
    /// The request's `type`.
    pub kind: String,
    /// The request's `params` (`null` when absent).
    pub params: Value,
}

/// A latch the test opens to let gated replies go.
#[derive(Debug, Clone)]
pub struct Gate(Arc<watch::Sender<bool>>);

impl Gate {
    pub fn new() -> Self {
        Gate(Arc::new(watch::channel(false).0))
    }

    pub fn open(&self) {
        self.0.send_replace(true);
    }

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
    /// Write these bytes, then close the connection.
    RawThenClose(Vec<u8>),
    /// Write `bytes` in pieces of `chunk` bytes, pausing `gap` between them (a zero gap yields to
    /// the scheduler instead).
    Chunked { bytes: Vec<u8>, chunk: usize, gap: Duration },
}

type Handler = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

struct ServerState {
    counts: watch::Sender<Counts>,
    log: Mutex<Vec<Received>>,
    handler: Handler,
    /// Bumped to make every open connection close.
    kill: watch::Sender<u64>,
}

/// The test server. Dropping it stops accepting.
pub struct TestServer {
    pub port: u16,
    state: Arc<ServerState>,
    accept_task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

/// The bytes of an echo reply for `params`.
pub fn echo_bytes(params: &Value) -> Vec<u8> {
    format!(r#"{{"status":"success","result":{params}}}"#).into_bytes()
}

impl TestServer {
    /// A server that echoes every request.
    pub async fn echo() -> Self {
        Self::start(|_| Reply::Echo).await
    }

    /// A server answering each request as `handler` says.
    pub async fn start(handler: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(ServerState {
            counts: watch::channel(Counts::default()).0,
            log: Mutex::new(Vec::new()),
            handler: Arc::new(handler),
            kill: watch::channel(0).0,
        });
        let st = state.clone();
        let accept_task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                stream.set_nodelay(true).unwrap();
                let mut conn = 0;
                st.counts.send_modify(|c| {
                    c.accepted += 1;
                    c.open += 1;
                    c.peak_open = c.peak_open.max(c.open);
                    conn = c.accepted;
                });
                drop(tokio::spawn(serve(st.clone(), stream, conn)));
            }
        });
        TestServer { port, state, accept_task }
    }

    pub fn counts(&self) -> Counts {
        *self.state.counts.borrow()
    }

    /// Every request received so far, in order of arrival.
    pub fn log(&self) -> Vec<Received> {
        self.state.log.lock().unwrap().clone()
    }

    /// Server-side connection numbers of the requests received so far, in order.
    pub fn conns(&self) -> Vec<usize> {
        self.log().iter().map(|r| r.conn).collect()
    }

    /// Closes, from the server's side, every open connection that is waiting for a request.
    pub fn close_connections(&self) {
        self.state.kill.send_modify(|g| *g += 1);
    }

    /// Waits until the counts satisfy `pred`, failing the test after [`DEADLINE`].
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&Counts) -> bool) -> Counts {
        let mut rx = self.state.counts.subscribe();
        let outcome = tokio::time::timeout(DEADLINE, rx.wait_for(|c| pred(c))).await.map(|r| r.map(|c| *c));
        match outcome {
            Ok(Ok(c)) => c,
            _ => panic!("server: timed out waiting for {what}; counts now {:?}", self.counts()),
        }
    }

    /// A config pointing at this server; see [`test_config`].
    pub fn config(&self) -> PoolConfig {
        test_config(self.port)
    }

    /// A pool with [`TestServer::config`] tweaked by `f`. With `POOL_TEST_WATCHED=1` in the
    /// environment, its replies are read by a [`PollWatcher`] instead of the I/O thread, so the
    /// whole suite runs once per way of reading.
    pub fn pool(&self, f: impl FnOnce(&mut PoolConfig)) -> Pool {
        let mut c = self.config();
        f(&mut c);
        #[cfg(unix)]
        let watcher = watched().then(|| Arc::new(PollWatcher::start()) as Arc<dyn ReadWatcher>);
        #[cfg(not(unix))]
        let watcher: Option<Arc<dyn blender_mcp_pool_core::ReadWatcher>> = None;
        Pool::with_watcher(c, tokio::runtime::Handle::current(), watcher)
    }
}

/// Serves one connection: reads `\n`-terminated requests and answers each as the handler says.
async fn serve(st: Arc<ServerState>, stream: TcpStream, conn: usize) {
    struct Closed(Arc<ServerState>);
    impl Drop for Closed {
        fn drop(&mut self) {
            self.0.counts.send_modify(|c| c.open -= 1);
        }
    }
    let _closed = Closed(st.clone());
    // Declared after the guard, so dropped before it: the socket is closed when `open` drops.
    let mut stream = stream;
    let mut kill = st.kill.subscribe();
    kill.mark_unchanged();
    let mut buf = Vec::new();
    // Bytes of `buf` already searched for the terminator (big requests arrive in many reads).
    let mut scanned = 0;
    loop {
        let line = loop {
            if let Some(pos) = buf[scanned..].iter().position(|&b| b == b'\n') {
                let rest = buf.split_off(scanned + pos + 1);
                scanned = 0;
                break std::mem::replace(&mut buf, rest);
            }
            scanned = buf.len();
            tokio::select! {
                n = stream.read_buf(&mut buf) => match n {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
                _ = kill.changed() => return,
            }
        };
        let value: Value = serde_json::from_slice(&line).expect("the pool sent a JSON request line");
        let received = {
            let mut log = st.log.lock().unwrap();
            let r = Received {
                conn,
                index: log.len(),
                kind: value["type"].as_str().unwrap_or_default().to_owned(),
                params: value.get("params").cloned().unwrap_or(Value::Null),
            };
            log.push(r.clone());
            r
        };
        let reply = (st.handler)(&received);
        st.counts.send_modify(|c| c.requests += 1);
        let ok = match reply {
            Reply::Echo => stream.write_all(&echo_bytes(&received.params)).await.is_ok(),
            Reply::EchoAfter(d) => {
                tokio::time::sleep(d).await;
                stream.write_all(&echo_bytes(&received.params)).await.is_ok()
            }
            Reply::EchoWhen(gate) => {
                gate.wait().await;
                stream.write_all(&echo_bytes(&received.params)).await.is_ok()
            }
            Reply::Never => true,
            Reply::Close => return,
            Reply::Raw(bytes) => stream.write_all(&bytes).await.is_ok(),
            Reply::RawThenClose(bytes) => {
                let _ = stream.write_all(&bytes).await;
                return;
            }
            Reply::Chunked { bytes, chunk, gap } => {
                let mut ok = true;
                for (i, piece) in bytes.chunks(chunk).enumerate() {
                    if i > 0 {
                        if gap.is_zero() {
                            tokio::task::yield_now().await;
                        } else {
                            tokio::time::sleep(gap).await;
                        }
                    }
                    if stream.write_all(piece).await.is_err() {
                        ok = false;
                        break;
                    }
                }
                ok
            }
        };
        if !ok {
            return;
        }
    }
}

/// A config for the server on `port`: no background connections (`min_connections` 0) so the
/// server's counts only move when a test asks for a connection, and timeouts short enough that
/// a hang fails the test rather than the suite.
pub fn test_config(port: u16) -> PoolConfig {
    let mut c = PoolConfig::new();
    c.host = "127.0.0.1".to_owned();
    c.port = port;
    c.min_connections = 0;
    c.connection_timeout = Duration::from_secs(5);
    c.socket_timeout = Duration::from_secs(5);
    c
}

/// A request `{"type":kind,"params":params}`.
pub fn req(kind: &str, params: Value) -> Request {
    Request::new(kind, json!({"type": kind, "params": params}).to_string())
}

/// The `result` of a reply text, checking it is a success.
pub fn result_of(reply: &str) -> Value {
    let v: Value = serde_json::from_str(reply).expect("reply is JSON");
    assert_eq!(v["status"], "success", "{reply}");
    v["result"].clone()
}

/// Polls `cond` until it holds, failing the test after [`DEADLINE`]. For state that has no
/// notification (the pool's stats); the server's counts have [`TestServer::wait_for`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A port on which nothing listens. The port stays bound (without listening) for as long as
/// this lives, so no other test's server can be given it meanwhile: connects to it are refused.
pub struct DeadPort {
    pub port: u16,
    _socket: socket2::Socket,
}

impl DeadPort {
    /// Starts listening on the port (Blender came back): connects succeed from now on.
    pub fn listen(self) -> std::net::TcpListener {
        self._socket.listen(16).unwrap();
        self._socket.into()
    }
}

pub fn dead_port() -> DeadPort {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&addr.into()).unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    DeadPort { port, _socket: socket }
}

/// Whether this run reads replies through a [`PollWatcher`] (`POOL_TEST_WATCHED=1`).
pub fn watched() -> bool {
    std::env::var("POOL_TEST_WATCHED").is_ok_and(|v| v == "1")
}

#[cfg(unix)]
enum WatchMsg {
    Watch(WatchedConn),
    Unwatch(u64),
    Resume(u64),
    Stop,
}

#[cfg(unix)]
/// A [`ReadWatcher`] like the binding's event loop, on a thread of its own: `poll(2)`,
/// level-triggered, calling `on_readable` while a socket is readable.
#[derive(Debug)]
pub struct PollWatcher {
    queue: Arc<Mutex<Vec<WatchMsg>>>,
    wake: std::os::unix::net::UnixStream,
    /// Held by the watcher's thread while it reads; a test holds it to make that thread busy.
    busy: Arc<Mutex<()>>,
}

#[cfg(unix)]
impl std::fmt::Debug for WatchMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WatchMsg")
    }
}

#[cfg(unix)]
impl PollWatcher {
    pub fn start() -> Self {
        let (wake, woken) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        woken.set_nonblocking(true).expect("nonblocking");
        let queue: Arc<Mutex<Vec<WatchMsg>>> = Arc::default();
        let busy: Arc<Mutex<()>> = Arc::default();
        let (inbox, held) = (queue.clone(), busy.clone());
        std::thread::Builder::new()
            .name("poll-watcher".into())
            .spawn(move || poll_loop(&inbox, woken, &held))
            .expect("spawn the poll watcher");
        PollWatcher { queue, wake, busy }
    }

    /// Keeps the watcher's thread from reading until the guard is dropped, as a JavaScript
    /// thread busy with a long synchronous task would.
    pub fn hold(&self) -> std::sync::MutexGuard<'_, ()> {
        self.busy.lock().unwrap()
    }

    fn post(&self, msg: WatchMsg) {
        self.queue.lock().unwrap().push(msg);
        let _ = std::io::Write::write(&mut &self.wake, &[1]);
    }
}

#[cfg(unix)]
impl ReadWatcher for PollWatcher {
    fn watch(&self, conn: WatchedConn) {
        self.post(WatchMsg::Watch(conn));
    }
    fn unwatch(&self, id: u64) {
        self.post(WatchMsg::Unwatch(id));
    }
    fn resume(&self, id: u64) {
        self.post(WatchMsg::Resume(id));
    }
}

#[cfg(unix)]
impl Drop for PollWatcher {
    fn drop(&mut self) {
        self.post(WatchMsg::Stop);
    }
}

#[cfg(unix)]
fn poll_loop(inbox: &Mutex<Vec<WatchMsg>>, woken: std::os::unix::net::UnixStream, busy: &Mutex<()>) {
    use std::os::fd::AsRawFd;
    // Each watched connection, and whether it is paused (its big reply handed to the task).
    let mut conns: Vec<(WatchedConn, bool)> = Vec::new();
    loop {
        let msgs = std::mem::take(&mut *inbox.lock().unwrap());
        for msg in msgs {
            match msg {
                WatchMsg::Watch(conn) => conns.push((conn, false)),
                WatchMsg::Unwatch(id) => conns.retain(|(c, _)| c.id() != id),
                WatchMsg::Resume(id) => {
                    conns.iter_mut().filter(|(c, _)| c.id() == id).for_each(|(_, paused)| *paused = false)
                }
                WatchMsg::Stop => return,
            }
        }
        let polled: Vec<u64> = conns.iter().filter(|(_, paused)| !paused).map(|(c, _)| c.id()).collect();
        let mut fds: Vec<libc::pollfd> = std::iter::once(woken.as_raw_fd())
            .chain(conns.iter().filter(|(_, paused)| !paused).map(|(c, _)| c.raw_fd()))
            .map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
            .collect();
        // Safety: `fds` is a valid array of `fds.len()` pollfd structs for the call's duration.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            continue;
        }
        let mut sink = [0u8; 64];
        while std::io::Read::read(&mut &woken, &mut sink).is_ok_and(|n| n > 0) {}
        let ready: Vec<u64> = fds[1..].iter().zip(&polled).filter(|(p, _)| p.revents != 0).map(|(_, &id)| id).collect();
        let _busy = busy.lock().unwrap();
        for id in ready {
            let Some(pos) = conns.iter().position(|(c, _)| c.id() == id) else { continue };
            match conns[pos].0.on_readable() {
                WatchNext::Keep => {}
                WatchNext::Pause => conns[pos].1 = true,
                WatchNext::Stop => drop(conns.remove(pos)),
            }
        }
    }
}
