//! The core's test harness: the project's mock Blender ([`MockServer`], from
//! `mock-server/`, the one the benchmark serves with too), scripted request by request, and
//! helpers to point a [`Pool`] at it.
//!
//! The server records each request (with the number of the server-side connection it came on)
//! and answers as the test's handler says: echo the params, wait, never answer, close, send raw
//! bytes, trickle bytes, ... Tests synchronise on its counts (accepted / open / peak open
//! connections, requests) through a `watch` channel, never by sleeping.
// Each test file uses some of it.
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blender_mcp_pool_core::{Pool, PoolConfig, Request};
#[cfg(unix)]
use blender_mcp_pool_core::{ReadWatcher, WatchNext, WatchedConn};
pub use blender_mcp_pool_mock_server::{echo_bytes, Counts, Gate, MockServer, Received, Reply, DEADLINE};
use serde_json::{json, Value};
use tokio::time::Instant;

/// The mock server, with what a pool needs to reach it.
#[derive(Debug)]
pub struct TestServer(MockServer);

impl Deref for TestServer {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.0
    }
}

impl TestServer {
    /// A server that echoes every request.
    pub async fn echo() -> Self {
        TestServer(MockServer::echo().await)
    }

    /// A server answering each request as `handler` says.
    pub async fn start(handler: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Self {
        TestServer(MockServer::start(handler).await)
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
        pool_with(c)
    }
}

/// A pool with `config`, its replies read by a [`PollWatcher`] when `POOL_TEST_WATCHED=1`.
pub fn pool_with(config: PoolConfig) -> Pool {
    #[cfg(unix)]
    let watcher = watched().then(|| Arc::new(PollWatcher::start()) as Arc<dyn ReadWatcher>);
    #[cfg(not(unix))]
    let watcher: Option<Arc<dyn blender_mcp_pool_core::ReadWatcher>> = None;
    Pool::builder(config).watcher(watcher).start(tokio::runtime::Handle::current())
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
            .chain(conns.iter().filter(|(_, paused)| !paused).map(|(c, _)| c.raw_socket()))
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
