//! A pooled connection's socket: how it is opened and tuned, and how the I/O thread watches it.
//!
//! Most connections are [`Socket::Task`]: a tokio stream whose task on the I/O thread waits for
//! both its replies and its writes. A *watched* connection ([`Socket::Watched`]) has its replies
//! read by a [`ReadWatcher`](crate::ReadWatcher) on another thread (the binding's JavaScript
//! thread, via its event loop); the I/O thread waits on it only for writes that blocked. On Unix
//! it is registered for writability alone, so a reply arriving on it wakes no thread but the
//! watcher's — which, under load, is awake anyway. See `watcher.rs` for why.
//!
//! Windows has no such registration in tokio (`AsyncFd` is Unix-only): a watched socket there is
//! a plain tokio stream whose read readiness nothing waits on. Past its first reply, replies no
//! longer wake the I/O thread: tokio (mio) polls a Windows socket edge-style, and re-arms its poll
//! only after an operation through it would block, which the watcher's reads never are.

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::config::PoolConfig;
use crate::error::PoolError;

/// Opens a connection to Blender's add-on within `connection_timeout`, watches it `settle_for`
/// (see [`settle`]), and tunes and registers it with the I/O thread (for writes only when
/// `watched`). Must run on the runtime.
pub(crate) async fn open(config: &PoolConfig, settle_for: Duration, watched: bool) -> Result<Socket, PoolError> {
    let addr = config.addr();
    let timeout = config.connection_timeout;
    let opened = match tokio::time::timeout(timeout, crate::dial::dial(&config.host, config.port)).await {
        Ok(Ok(stream)) => match settle(&stream, settle_for).await {
            Ok(()) => tune(&stream).and_then(|()| Socket::new(stream, watched)).map_err(|e| describe_connect_error(&e)),
            Err(reason) => Err(reason),
        },
        Ok(Err(e)) => Err(describe_connect_error(&e)),
        Err(_) => Err(format!("timed out after {} ms", timeout.as_millis())),
    };
    opened.map_err(|reason| PoolError::Connect { addr, reason })
}

/// Watches a new connection for `within` before anyone writes to it: a server that speaks
/// first (a greeting, a banner) or closes at once is not in step with the add-on's protocol,
/// where the client always speaks first. Its bytes would otherwise be taken for the reply to
/// the first request written. Returns why the connection is unfit, if it is. The wait ends
/// early only when bytes (or the end of the stream) arrive.
async fn settle(stream: &TcpStream, within: Duration) -> Result<(), String> {
    if within.is_zero() {
        return Ok(());
    }
    let until = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(until, stream.readable()).await {
            Err(_elapsed) => return Ok(()),
            Ok(Err(e)) => return Err(describe_connect_error(&e)),
            Ok(Ok(())) => {}
        }
        let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        match stream.try_io(tokio::io::Interest::READABLE, || socket2::SockRef::from(stream).peek(&mut probe)) {
            Ok(0) => return Err("the server closed the connection as soon as it was opened".to_owned()),
            Ok(_) => {
                return Err("the server sent bytes before any request (a greeting?), which the Blender add-on \
                            never does: is another program listening on this port?"
                    .to_owned())
            }
            // A spurious wake: tokio cleared the readiness; wait again.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(describe_connect_error(&e)),
        }
    }
}

/// What a failed connect says, in the words a user searches for. A summary of several
/// addresses' failures (see `dial.rs`) is kept as it is.
fn describe_connect_error(e: &io::Error) -> String {
    use io::ErrorKind;
    if e.get_ref().is_some() {
        return e.to_string();
    }
    match e.kind() {
        ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        ErrorKind::HostUnreachable => "host unreachable".to_owned(),
        ErrorKind::NetworkUnreachable => "network unreachable".to_owned(),
        ErrorKind::TimedOut => "timed out".to_owned(),
        ErrorKind::AddrNotAvailable => "address not available".to_owned(),
        _ => e.to_string(),
    }
}

/// TCP options every pooled socket gets: no Nagle delay (requests are small and latency-bound)
/// and keepalive, so a peer that vanished without closing is eventually noticed.
fn tune(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let keepalive =
        socket2::TcpKeepalive::new().with_time(Duration::from_secs(30)).with_interval(Duration::from_secs(10));
    socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)
}

/// A connection's socket.
#[derive(Debug)]
pub(crate) enum Socket {
    /// Read and written by its task (and written directly by callers).
    Task(TcpStream),
    /// Read by a watcher; written by callers and, when a write blocked, by its task.
    Watched(Registered),
}

/// A socket registered with the I/O thread for one kind of readiness: on Unix an `AsyncFd`
/// with the interest it was registered with (writes for a watched socket, reads for a
/// [`Borrowed`] one).
#[cfg(unix)]
type Registered = tokio::io::unix::AsyncFd<std::net::TcpStream>;
/// A socket registered with the I/O thread: on Windows a tokio stream, registered for both, of
/// which only the readiness awaited is used (see the module's doc).
#[cfg(windows)]
type Registered = TcpStream;

/// The operating system's handle of a socket, as a watcher polls it.
#[cfg(unix)]
pub type RawSocket = std::os::fd::RawFd;
/// The operating system's handle of a socket, as a watcher polls it.
#[cfg(windows)]
pub type RawSocket = std::os::windows::io::RawSocket;

/// A socket the I/O thread found writable: the one place a blocked write is finished.
pub(crate) enum WriteReady<'a> {
    Task(&'a TcpStream),
    #[cfg(unix)]
    Watched(tokio::io::unix::AsyncFdReadyGuard<'a, std::net::TcpStream>),
}

/// A watched socket's handle again, registered with the I/O thread for reads: the task reads a
/// big reply with it while the watcher pauses (see `watcher.rs`). Dropping it deregisters it.
#[derive(Debug)]
pub(crate) struct Borrowed(Registered);

/// A [`Borrowed`] socket found readable.
pub(crate) struct ReadReady<'a> {
    #[cfg(unix)]
    guard: tokio::io::unix::AsyncFdReadyGuard<'a, std::net::TcpStream>,
    #[cfg(windows)]
    stream: &'a TcpStream,
}

impl Socket {
    /// Registers `stream` with the I/O thread: for reads too, unless `watched`. Must run on the
    /// runtime.
    #[allow(unsafe_code)]
    pub(crate) fn new(stream: TcpStream, watched: bool) -> io::Result<Self> {
        if !watched {
            return Ok(Socket::Task(stream));
        }
        #[cfg(unix)]
        {
            let std = stream.into_std()?;
            // Safety: the `AsyncFd` owns `std`, whose descriptor is open and stays the same
            // socket until `std` is dropped, which deregisters first (tokio's requirement).
            let fd = unsafe { tokio::io::unix::AsyncFd::register_with_interest(std, tokio::io::Interest::WRITABLE)? };
            Ok(Socket::Watched(fd))
        }
        #[cfg(windows)]
        Ok(Socket::Watched(stream))
    }

    pub(crate) fn is_watched(&self) -> bool {
        !matches!(self, Socket::Task(_))
    }

    fn sock_ref(&self) -> socket2::SockRef<'_> {
        match self {
            Socket::Task(s) => socket2::SockRef::from(s),
            #[cfg(unix)]
            Socket::Watched(fd) => socket2::SockRef::from(fd.get_ref()),
            #[cfg(windows)]
            Socket::Watched(s) => socket2::SockRef::from(s),
        }
    }

    /// One non-blocking write.
    pub(crate) fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Task(s) => s.try_write(bytes),
            // A `WouldBlock` here leaves tokio's readiness set; the task's next `writable()`
            // then tries once, sees `WouldBlock` and clears it.
            #[cfg(unix)]
            Socket::Watched(fd) => io::Write::write(&mut fd.get_ref(), bytes),
            #[cfg(windows)]
            Socket::Watched(s) => s.try_write(bytes),
        }
    }

    /// Why this idle socket cannot carry a request, if it cannot (see `ConnIo::peer_gone`).
    pub(crate) fn peer_gone(&self) -> Option<&'static str> {
        let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        match self.sock_ref().peek(&mut probe) {
            Ok(0) => Some("closed by Blender"),
            Ok(_) => Some("unexpected bytes from Blender"),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => None,
            Err(_) => Some("socket error"),
        }
    }

    /// Waits until a blocked write can go on.
    pub(crate) async fn writable(&self) -> io::Result<WriteReady<'_>> {
        match self {
            Socket::Task(s) => s.writable().await.map(|()| WriteReady::Task(s)),
            #[cfg(unix)]
            Socket::Watched(fd) => fd.writable().await.map(WriteReady::Watched),
            #[cfg(windows)]
            Socket::Watched(s) => s.writable().await.map(|()| WriteReady::Task(s)),
        }
    }

    /// Waits until the task has a reply to read. Never ready for a watched socket (its task
    /// does not read it).
    pub(crate) async fn task_readable(&self) -> io::Result<&TcpStream> {
        match self {
            Socket::Task(s) => s.readable().await.map(|()| s),
            Socket::Watched(_) => std::future::pending().await,
        }
    }

    /// One non-blocking read appended to `buf`'s spare capacity (outside tokio's readiness
    /// bookkeeping: for watched sockets). Returns the bytes read, 0 at end of stream.
    pub(crate) fn recv_into(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        recv_into(self.sock_ref(), buf)
    }

    /// A watched socket's handle again, registered with the I/O thread for reads.
    #[allow(unsafe_code)]
    pub(crate) fn borrow_for_reads(&self) -> io::Result<Borrowed> {
        let Socket::Watched(_) = self else {
            return Err(io::Error::other("only a watched socket is borrowed"));
        };
        let dup = self.sock_ref().try_clone()?;
        #[cfg(unix)]
        {
            // Safety: as in `Socket::new`: the `AsyncFd` owns the duplicate descriptor.
            let fd =
                unsafe { tokio::io::unix::AsyncFd::register_with_interest(dup.into(), tokio::io::Interest::READABLE)? };
            Ok(Borrowed(fd))
        }
        #[cfg(windows)]
        {
            // A duplicated Windows socket does not inherit non-blocking mode.
            dup.set_nonblocking(true)?;
            Ok(Borrowed(TcpStream::from_std(dup.into())?))
        }
    }

    /// The socket's handle, for a watcher to poll.
    pub(crate) fn raw_socket(&self) -> RawSocket {
        #[cfg(unix)]
        use std::os::fd::AsRawFd as AsRaw;
        #[cfg(windows)]
        use std::os::windows::io::AsRawSocket as AsRaw;
        match self {
            #[cfg(unix)]
            Socket::Task(s) => s.as_raw_fd(),
            #[cfg(unix)]
            Socket::Watched(fd) => fd.as_raw_fd(),
            #[cfg(windows)]
            Socket::Task(s) | Socket::Watched(s) => s.as_raw_socket(),
        }
    }
}

impl Borrowed {
    /// Waits until a reply's bytes can be read.
    pub(crate) async fn readable(&self) -> io::Result<ReadReady<'_>> {
        #[cfg(unix)]
        return self.0.readable().await.map(|guard| ReadReady { guard });
        #[cfg(windows)]
        return self.0.readable().await.map(|()| ReadReady { stream: &self.0 });
    }
}

impl ReadReady<'_> {
    /// One non-blocking read appended to `buf`'s spare capacity, as [`Socket::recv_into`].
    pub(crate) fn recv_into(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        #[cfg(unix)]
        return recv_into(socket2::SockRef::from(self.guard.get_inner()), buf);
        #[cfg(windows)]
        return recv_into(socket2::SockRef::from(self.stream), buf);
    }

    /// The socket was drained: wait for it to be readable again.
    pub(crate) fn clear_ready(&mut self) {
        #[cfg(unix)]
        self.guard.clear_ready();
        // tokio clears a stream's readiness (and, on Windows, re-arms its poll) when an
        // operation through it would block.
        #[cfg(windows)]
        let _ = self.stream.try_io(tokio::io::Interest::READABLE, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
    }
}

impl WriteReady<'_> {
    /// One non-blocking write; a `WouldBlock` clears the readiness so the task waits again.
    pub(crate) fn try_write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            WriteReady::Task(s) => s.try_write(bytes),
            #[cfg(unix)]
            WriteReady::Watched(guard) => match guard.try_io(|fd| io::Write::write(&mut fd.get_ref(), bytes)) {
                Ok(result) => result,
                Err(_would_block) => Err(io::ErrorKind::WouldBlock.into()),
            },
        }
    }
}

/// One non-blocking `recv` appended to `buf`'s spare capacity. Returns the bytes read, 0 at
/// end of stream.
#[allow(unsafe_code)]
pub(crate) fn recv_into(sock: socket2::SockRef<'_>, buf: &mut Vec<u8>) -> io::Result<usize> {
    let n = sock.recv(buf.spare_capacity_mut())?;
    // Safety: `recv` initialised the first `n` bytes of the spare capacity it was given (it
    // returns how many it wrote, never more than the slice's length).
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}
