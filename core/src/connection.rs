//! One TCP connection to Blender: its socket, and the task that reads its replies.
//!
//! Requests are written by whoever starts them — usually the JavaScript thread, directly with a
//! non-blocking `write` — and only what does not fit in the socket buffer is handed to the task.
//! The task sleeps on the socket's readability and wakes when Blender answers. So a request
//! costs one wake-up of the I/O thread (the reply), not two (a hand-off, then the reply).
//!
//! For the same reason the task is not told when a request starts. Its timer is kept armed no
//! later than `socketTimeout` ahead, so any request started since it last looked has a deadline
//! at or after the timer; when the timer fires the task re-reads the pool's view of the
//! connection and re-arms on the exact deadline (see [`Shared::check_timers`]).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::socket::{Socket, WriteReady};

use crate::error::PoolError;
use crate::framing::{validate_reply, Decoder, Framing, Scan};
use crate::pool::Shared;

/// Bytes queued behind a write that would have blocked, and how many of them are written.
type Unwritten = (Vec<u8>, usize);

/// The parts of a connection that both the pool and the connection's task use.
#[derive(Debug)]
pub(crate) struct ConnIo {
    pub(crate) id: u64,
    pub(crate) sock: Socket,
    /// Wakes the task: bytes were queued in `outbox`, or the connection is closing.
    wake: Notify,
    outbox: Mutex<Option<Unwritten>>,
    closing: AtomicBool,
    /// Why the connection closes, as its close event reports it (the first reason given wins).
    close_reason: std::sync::OnceLock<&'static str>,
    /// A watcher handed the reply in progress over to the task (it is big).
    handoff: AtomicBool,
    /// The reply being received. Locked by whoever reads the socket: the task, or the
    /// watcher's thread for a watched connection (see `watcher.rs`).
    reader: Mutex<Reader>,
    /// Must stay after `sock` (see [`SocketSlot`]); only its `Drop` matters.
    #[allow(dead_code)]
    slot: SocketSlot,
}

/// The receive side of a connection.
#[derive(Debug)]
pub(crate) struct Reader {
    pub(crate) reply: ReplyBuffer,
    /// When bytes last arrived: the reply timeout restarts from here.
    pub(crate) progress: Instant,
}

impl ConnIo {
    pub(crate) fn new(id: u64, sock: Socket, reply: ReplyBuffer, pool: Weak<Shared>) -> Self {
        ConnIo {
            id,
            sock,
            wake: Notify::new(),
            outbox: Mutex::new(None),
            closing: AtomicBool::new(false),
            close_reason: std::sync::OnceLock::new(),
            handoff: AtomicBool::new(false),
            reader: Mutex::new(Reader { reply, progress: Instant::now() }),
            slot: SocketSlot(pool),
        }
    }

    /// Writes `bytes` without blocking; what does not fit is left for the task to finish.
    pub(crate) fn write_or_queue(&self, bytes: Vec<u8>) -> io::Result<()> {
        let mut off = 0;
        while off < bytes.len() {
            match self.sock.try_write(&bytes[off..]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    *self.outbox.lock().unwrap_or_else(|p| p.into_inner()) = Some((bytes, off));
                    self.wake.notify_one();
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Why this idle connection cannot carry a request, if it cannot: the peer closed or reset
    /// it, or sent bytes nobody asked for. One non-blocking `recv(MSG_PEEK)`, so a connection
    /// Blender dropped is found before a request is written to it, not after.
    pub(crate) fn peer_gone(&self) -> Option<&'static str> {
        self.sock.peer_gone()
    }

    /// Makes the task re-check its timers now (a call's deadline is earlier than its timer).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Asks the task to stop and close the socket, `why`.
    pub(crate) fn close_because(&self, why: &'static str) {
        let _ = self.close_reason.set(why);
        self.close();
    }

    /// Asks the task to stop and close the socket.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Asks the task to read the rest of the reply in progress (a watcher's request).
    pub(crate) fn hand_over_reads(&self) {
        self.handoff.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    #[cfg(unix)]
    fn take_handoff(&self) -> bool {
        self.handoff.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    pub(crate) fn reader(&self) -> MutexGuard<'_, Reader> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The connection is gone: its close event (the socket closes as the fields drop, right after).
impl Drop for ConnIo {
    fn drop(&mut self) {
        if let Some(observer) = self.slot.0.upgrade().and_then(|pool| pool.observer.clone()) {
            observer.connection_closed(self.id, self.close_reason.get().copied().unwrap_or("closed"));
        }
    }
}

/// Gives the connection's slot back to the pool when dropped. Declared after the stream in
/// [`ConnIo`], and fields drop in declaration order: the socket is closed first, so a
/// replacement opened for the slot can never overlap it.
#[derive(Debug)]
struct SocketSlot(Weak<Shared>);

impl Drop for SocketSlot {
    fn drop(&mut self) {
        if let Some(pool) = self.0.upgrade() {
            pool.socket_closed();
        }
    }
}

/// What one burst of reads produced.
pub(crate) enum ReadOutcome {
    /// Bytes were appended; the socket has no more for now.
    Data,
    /// The peer closed its side (possibly after appending bytes).
    Eof,
    /// The read failed (reset, ...).
    Failed(io::Error),
}

/// The receive buffer of the reply in progress, with its scanner.
#[derive(Debug)]
pub(crate) struct ReplyBuffer {
    buf: Vec<u8>,
    scanner: Decoder,
    framing: Framing,
    limit: usize,
    /// Bytes arrived since the last look ([`ReplyBuffer::take_fresh`]): what restarts the reply
    /// timeout. A read that found nothing (a catch-up read, a spurious wake) is no progress.
    fresh: bool,
}

impl ReplyBuffer {
    const MIN_SPARE: usize = 16 * 1024;

    pub(crate) fn new(framing: Framing, limit: usize) -> Self {
        ReplyBuffer { buf: Vec::new(), scanner: Decoder::new(framing, limit), framing, limit, fresh: false }
    }

    /// Makes room for the next read: grows geometrically, but never reserves far beyond the
    /// limit. Returns the room offered.
    fn reserve(&mut self) -> usize {
        if self.buf.capacity() - self.buf.len() < Self::MIN_SPARE {
            let want = self.buf.len().max(Self::MIN_SPARE).min(self.limit.saturating_add(1));
            self.buf.reserve(want.max(Self::MIN_SPARE));
        }
        self.buf.capacity() - self.buf.len()
    }

    /// Reads with `recv` (one non-blocking read appended to the buffer) until the socket is
    /// drained (the short-read rule of [`ReplyBuffer::fill`]), the buffer passes the limit (an
    /// oversized reply is never buffered whole) or about `budget` bytes were read. Also returns
    /// whether the socket was drained.
    pub(crate) fn fill_with(&mut self, mut recv: impl FnMut(&mut Vec<u8>) -> io::Result<usize>, budget: usize) -> (ReadOutcome, bool) {
        let start = self.buf.len();
        loop {
            let room = self.reserve();
            let outcome = recv(&mut self.buf);
            self.fresh |= matches!(outcome, Ok(n) if n > 0);
            match outcome {
                Ok(0) => return (ReadOutcome::Eof, true),
                Ok(n) if n < room => return (ReadOutcome::Data, true),
                Ok(_) if self.buf.len() > self.limit || self.buf.len() - start >= budget => return (ReadOutcome::Data, false),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (ReadOutcome::Data, true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (ReadOutcome::Failed(e), true),
            }
        }
    }

    /// Bytes of the reply in progress received so far.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of the reply's body received so far (after the last scan): what the limit is
    /// measured against, leading whitespace and length prefix left out.
    fn body_len(&self) -> usize {
        self.buf.len() - self.scanner.body_start(self.buf.len())
    }

    /// Forgets whitespace received before a reply started, so that a peer sending only
    /// whitespace cannot grow the buffer.
    fn drop_leading_whitespace(&mut self) {
        self.buf.clear();
        self.scanner.reset();
    }

    /// Reads until the socket is drained, stopping early once the buffer passes the limit so
    /// an oversized reply is never buffered whole.
    ///
    /// A read that returns less than the room offered has drained the socket: it is taken as
    /// the end of the burst and the readiness cleared right away (tokio only clears readiness
    /// on `WouldBlock`, and its event tick keeps the clear from hiding newer data). That saves
    /// the extra `recv` returning `EAGAIN` that a read-until-`WouldBlock` loop pays per reply.
    fn fill(&mut self, stream: &TcpStream) -> ReadOutcome {
        let read = |buf: &mut Vec<u8>| {
            let room = buf.capacity() - buf.len();
            stream.try_io(Interest::READABLE, || match stream.try_read_buf(buf)? {
                // Drained: report `WouldBlock` so tokio clears the readiness now (the bytes are
                // in `buf` all the same).
                n if n > 0 && n < room => Err(io::ErrorKind::WouldBlock.into()),
                n => Ok(n),
            })
        };
        self.fill_with(read, usize::MAX).0
    }

    /// Takes the complete reply out of the buffer, leaving it empty for the next one.
    /// Returns the validated reply text and whether non-whitespace bytes followed it.
    fn take_reply(&mut self, start: usize, end: usize) -> (Result<String, PoolError>, bool) {
        let mut bytes = std::mem::take(&mut self.buf);
        self.scanner.reset();
        let trailing = bytes.split_off(end);
        let garbage_after = !self.framing.is_harmless_extra(&trailing);
        if start > 0 {
            drop(bytes.drain(..start));
        }
        let outcome = match String::from_utf8(bytes) {
            Ok(text) => validate_reply(text.as_bytes()).map(|_| ()).map(|()| text),
            Err(e) => {
                let bytes = e.into_bytes();
                Err(validate_reply(&bytes).expect_err("not UTF-8, so not valid"))
            }
        };
        (outcome, garbage_after)
    }
}

/// The connection's task: reads replies (unless a watcher does), finishes writes that blocked,
/// enforces timeouts. Ends when the pool closes the connection or the connection fails.
pub(crate) async fn drive(shared: Arc<Shared>, io: Arc<ConnIo>) {
    // However this task ends — even by a panic — the connection leaves the pool, a request in
    // flight on it is answered (`ERR_INTERNAL` if nothing better is known), and its watcher,
    // if any, stops watching it.
    let _guard = DiscardOnExit { shared: shared.clone(), id: io.id, watched: io.sock.is_watched() };
    let mut unwritten: Option<Unwritten> = None;
    // The timer is never later than the connection's next deadline as of the last look, nor
    // than `min(socketTimeout, idleTimeout)` after it: a connection that goes idle without this
    // task seeing an event (a lease given back, a reply read by a watcher) must still expire.
    let Some(first_check) = shared.check_timers(io.id, io.reader().progress) else {
        io.close();
        return;
    };
    // One timer for the task's life, moved only when the deadline moves (most events leave it).
    let timer = tokio::time::sleep_until(first_check);
    tokio::pin!(timer);
    // While a watcher has handed a big reply over: the socket, registered here for reads.
    #[cfg(unix)]
    let mut borrowed: Option<crate::socket::Borrowed> = None;
    #[cfg(not(unix))]
    let mut borrowed: Option<std::convert::Infallible> = None;
    loop {
        if io.is_closing() {
            break;
        }
        #[cfg(unix)]
        if borrowed.is_none() && io.take_handoff() {
            match io.sock.borrow_for_reads() {
                Ok(fd) => borrowed = Some(fd),
                Err(e) => {
                    shared.discard(io.id, PoolError::ConnectionClosed(format!("cannot read the reply: {e}")));
                    break;
                }
            }
        }
        tokio::select! {
            biased;
            () = io.wake.notified() => {
                if let Some(queued) = io.outbox.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    unwritten = Some(queued);
                }
            }
            ready = io.sock.writable(), if unwritten.is_some() => {
                let result = ready.and_then(|ready| finish_write(ready, &mut unwritten));
                if let Err(e) = result {
                    shared.discard(io.id, PoolError::Write(e.to_string()));
                    break;
                }
            }
            ready = io.sock.task_readable(), if !io.sock.is_watched() => {
                let mut reader = io.reader();
                let Reader { reply, progress } = &mut *reader;
                let outcome = match ready {
                    Ok(stream) => reply.fill(stream),
                    Err(e) => ReadOutcome::Failed(e),
                };
                if !on_read(&shared, &io, reply, outcome, progress) {
                    break;
                }
            }
            ready = borrowed_readable(borrowed.as_ref()), if borrowed.is_some() => {
                match read_borrowed(&shared, &io, ready) {
                    Borrow::More => {}
                    Borrow::Done => {
                        // The big reply is in: the watcher reads this connection again.
                        borrowed = None;
                        if let Some(watcher) = &shared.watcher {
                            watcher.resume(io.id);
                        }
                    }
                    Borrow::Finished => break,
                }
            }
            () = &mut timer => {
                // A watcher reads this connection on the embedder's thread, which may be busy
                // (a JavaScript thread running a long synchronous task): bytes that reached the
                // socket before a deadline may not have been read yet. Read them here before
                // the deadline is judged, so a reply that arrived in time is not a timeout.
                if io.sock.is_watched() && borrowed.is_none() && !catch_up(&shared, &io) {
                    break;
                }
            }
        }
        let progress = io.reader().progress;
        match shared.check_timers(io.id, progress) {
            Some(next) if next != timer.deadline() => timer.as_mut().reset(next),
            Some(_) => {}
            None => break,
        }
    }
    io.close();
}

/// Reads whatever a watched socket holds, on the I/O thread, and acts on it. Returns `false`
/// when the connection is finished.
fn catch_up(shared: &Arc<Shared>, io: &ConnIo) -> bool {
    let mut reader = io.reader();
    let Reader { reply, progress } = &mut *reader;
    let (outcome, _) = reply.fill_with(|buf| io.sock.recv_into(buf), usize::MAX);
    on_read(shared, io, reply, outcome, progress)
}

/// What reading a borrowed socket led to.
#[cfg_attr(not(unix), allow(dead_code))]
enum Borrow {
    /// The reply is not complete yet.
    More,
    /// The reply was handed to its caller (or was harmless): give the reads back.
    Done,
    /// The connection is finished.
    Finished,
}

#[cfg(unix)]
async fn borrowed_readable(fd: Option<&crate::socket::Borrowed>) -> io::Result<tokio::io::unix::AsyncFdReadyGuard<'_, std::net::TcpStream>> {
    match fd {
        Some(fd) => fd.readable().await,
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn borrowed_readable(_: Option<&std::convert::Infallible>) -> io::Result<std::convert::Infallible> {
    std::future::pending().await
}

/// Reads a borrowed socket once it is readable, and acts on what arrived.
#[cfg(unix)]
fn read_borrowed(
    shared: &Arc<Shared>,
    io: &ConnIo,
    ready: io::Result<tokio::io::unix::AsyncFdReadyGuard<'_, std::net::TcpStream>>,
) -> Borrow {
    let mut reader = io.reader();
    let Reader { reply, progress } = &mut *reader;
    let outcome = match ready {
        Ok(mut guard) => {
            let (outcome, drained) = reply.fill_with(|buf| crate::socket::recv_into(socket2::SockRef::from(guard.get_inner()), buf), usize::MAX);
            if drained {
                guard.clear_ready();
            }
            outcome
        }
        Err(e) => ReadOutcome::Failed(e),
    };
    if !on_read(shared, io, reply, outcome, progress) {
        Borrow::Finished
    } else if reply.len() == 0 {
        Borrow::Done
    } else {
        Borrow::More
    }
}

#[cfg(not(unix))]
fn read_borrowed(_: &Arc<Shared>, _: &ConnIo, ready: io::Result<std::convert::Infallible>) -> Borrow {
    match ready {
        Ok(never) => match never {},
        Err(_) => Borrow::Finished,
    }
}

/// Discards the connection when its task ends (a no-op when the pool already removed it), and
/// tells the watcher to stop watching it.
struct DiscardOnExit {
    shared: Arc<Shared>,
    id: u64,
    watched: bool,
}

impl Drop for DiscardOnExit {
    fn drop(&mut self) {
        let why = if std::thread::panicking() { "the connection task panicked" } else { "the connection task ended" };
        self.shared.discard(self.id, PoolError::Internal(why.into()));
        if self.watched {
            if let Some(watcher) = &self.shared.watcher {
                watcher.unwatch(self.id);
            }
        }
    }
}

/// Writes queued bytes until done or the socket would block again.
fn finish_write(mut ready: WriteReady<'_>, unwritten: &mut Option<Unwritten>) -> io::Result<()> {
    while let Some((bytes, off)) = unwritten.as_mut() {
        match ready.try_write(&bytes[*off..]) {
            Ok(n) => {
                *off += n;
                if *off == bytes.len() {
                    *unwritten = None;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Acts on what a burst of reads produced. Returns `false` when the connection is finished.
pub(crate) fn on_read(
    shared: &Arc<Shared>,
    io: &ConnIo,
    reply: &mut ReplyBuffer,
    outcome: ReadOutcome,
    progress: &mut Instant,
) -> bool {
    let eof = match outcome {
        ReadOutcome::Data => false,
        ReadOutcome::Eof => true,
        ReadOutcome::Failed(e) => {
            shared.discard(io.id, PoolError::ConnectionClosed(format!("read failed: {e}")));
            return false;
        }
    };
    if !shared.has_request_in_flight(io.id) {
        // Nothing is expected. Stray whitespace is harmless; anything else means the stream is
        // out of step, and a close means Blender went away: drop the connection now, before
        // anyone is handed it.
        if !reply.framing.is_harmless_extra(&reply.buf) {
            let reason = format!("{} bytes arrived while no request was in flight", reply.buf.len());
            shared.discard(io.id, PoolError::invalid_response(reason, &reply.buf));
            return false;
        }
        reply.buf.clear();
        reply.fresh = false;
        if eof {
            shared.discard(io.id, PoolError::ConnectionClosed("closed by Blender while idle".into()));
            return false;
        }
        return true;
    }
    if std::mem::take(&mut reply.fresh) {
        *progress = Instant::now();
    }
    match reply.scanner.scan(&reply.buf) {
        // A reply that arrived whole in one read can be over the limit too.
        Scan::Complete { start, end } if end - start > reply.limit => {
            shared.discard(io.id, PoolError::ResponseTooLarge { limit: reply.limit });
            false
        }
        Scan::Complete { start, end } => {
            crate::failpoint::hit(crate::failpoint::Failpoint::PanicOnReply);
            let (outcome, garbage_after) = reply.take_reply(start, end);
            let reusable = outcome.is_ok() && !garbage_after && !eof;
            if garbage_after {
                tracing::warn!(conn = io.id, code = "ERR_INVALID_RESPONSE", "discarding connection: bytes followed the reply");
            }
            shared.finish_request(io.id, outcome, reusable);
            reusable
        }
        Scan::TooLarge(declared) => {
            tracing::debug!(conn = io.id, declared, "reply length prefix over maxResponseBytes");
            shared.discard(io.id, PoolError::ResponseTooLarge { limit: reply.limit });
            false
        }
        Scan::NotAnObject(at) => {
            shared.discard(io.id, PoolError::invalid_response("Reply is not a JSON object", &reply.buf[at..]));
            false
        }
        Scan::Incomplete if reply.body_len() > reply.limit => {
            shared.discard(io.id, PoolError::ResponseTooLarge { limit: reply.limit });
            false
        }
        Scan::Incomplete | Scan::Empty if eof => {
            let detail = if reply.buf.is_empty() {
                "Blender closed the connection without replying".to_owned()
            } else {
                format!("Blender closed the connection after {} bytes of an incomplete reply", reply.buf.len())
            };
            shared.discard(io.id, PoolError::ConnectionClosed(detail));
            false
        }
        Scan::Empty => {
            reply.drop_leading_whitespace();
            true
        }
        Scan::Incomplete => true,
    }
}

/// TCP options every pooled socket gets: no Nagle delay (requests are small and latency-bound)
/// and keepalive, so a peer that vanished without closing is eventually noticed.
pub(crate) fn tune_socket(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10));
    socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)
}
