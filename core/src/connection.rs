//! One TCP connection to Blender: its socket and reader, and the task that serves it.
//!
//! Requests are written by whoever starts them (usually the JavaScript thread, directly with a
//! non-blocking `write`); only what does not fit in the socket buffer is handed to the task.
//! The task sleeps on the socket's readability and wakes when Blender answers, so a request
//! costs one wake-up of the I/O thread (the reply), not two.
//!
//! For the same reason the task is not told when a request starts. Its timer is kept armed no
//! later than `socketTimeout` ahead, so any request started since it last looked has a deadline
//! at or after the timer; when the timer fires the task asks the pool again
//! ([`ConnEvents::on_timer`]) and re-arms on the exact deadline.
//!
//! The connection never calls into the pool's internals: what it finds goes to the pool through
//! the [`ConnEvents`] it is given, once per event.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use tokio::io::Interest;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::PoolError;
use crate::in_step::InStep;
use crate::reader::Reader;
use crate::reader::Verdict;
use crate::socket::{Borrowed, ReadReady, Socket, WriteReady};

/// What a connection tells its pool: the pool's one entry point per event.
pub(crate) trait ConnEvents: Send + Sync {
    /// The reader of `conn` found `verdict`. Returns whether reading goes on.
    fn on_read(&self, conn: u64, verdict: Verdict) -> bool;
    /// The timer of `conn` fired; bytes last arrived at `progress`. Returns when to look again,
    /// or `None` when the connection is finished.
    fn on_timer(&self, conn: u64, progress: Instant) -> Option<Instant>;
    /// `conn` cannot go on (a write failed, its task ended, its watcher gave it up).
    fn on_failed(&self, conn: u64, err: PoolError);
    /// `conn` is gone, `reason` (its close event).
    fn on_gone(&self, conn: u64, reason: &'static str);
    /// A socket closed for good: its slot is free.
    fn on_socket_closed(&self);
    /// The big reply `conn` handed over to its task is in: its watcher reads it again.
    fn on_handed_back(&self, conn: u64);
    /// The task of watched connection `conn` ended: its watcher stops watching it.
    fn on_task_ended(&self, conn: u64);
    /// The span the pool's records go in, for threads of the embedder.
    fn span(&self) -> &tracing::Span;
}

/// Bytes queued behind a write that would have blocked, and how many of them are written.
type Unwritten = (Vec<u8>, usize);

/// The parts of a connection that the pool, its task and its watcher share.
pub(crate) struct ConnIo {
    pub(crate) id: u64,
    pub(crate) sock: Socket,
    /// The pool; weak, so that a connection never keeps a dropped pool alive.
    pub(crate) events: Weak<dyn ConnEvents>,
    /// Wakes the task: bytes were queued in `outbox`, or the connection is closing.
    wake: Notify,
    outbox: Mutex<Option<Unwritten>>,
    closing: AtomicBool,
    /// Why the connection closes, as its close event reports it (the first reason given wins).
    close_reason: OnceLock<&'static str>,
    /// A watcher handed the reply in progress over to the task (it is big).
    handoff: AtomicBool,
    /// Whether the connection is in step: where its request stands.
    in_step: InStep,
    /// Bytes of the reply in progress, as of the reader's last read: for progress reports,
    /// which must not wait for the reader's lock while a big reply streams in.
    received: AtomicUsize,
    /// The reply being received. Locked by whoever reads the socket: the task, or the
    /// watcher's thread for a watched connection (see `watcher.rs`).
    reader: Mutex<Reader>,
    /// Must stay after `sock`; only its `Drop` matters (see [`SocketSlot`]).
    _slot: SocketSlot,
}

impl std::fmt::Debug for ConnIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnIo").field("id", &self.id).field("watched", &self.sock.is_watched()).finish_non_exhaustive()
    }
}

impl ConnIo {
    pub(crate) fn new(id: u64, sock: Socket, reader: Reader, events: Weak<dyn ConnEvents>) -> Self {
        ConnIo {
            id,
            sock,
            events: events.clone(),
            wake: Notify::new(),
            outbox: Mutex::new(None),
            closing: AtomicBool::new(false),
            close_reason: OnceLock::new(),
            handoff: AtomicBool::new(false),
            in_step: InStep::default(),
            received: AtomicUsize::new(0),
            reader: Mutex::new(reader),
            _slot: SocketSlot(events),
        }
    }

    /// Writes a request without blocking; what does not fit is left for the task to finish.
    /// Refuses, writing nothing, unless the connection is between requests and in step: two
    /// requests' bytes never interleave, and none follows bytes nobody asked for.
    pub(crate) fn write_or_queue(&self, bytes: Vec<u8>) -> Result<(), PoolError> {
        self.in_step.begin_write()?;
        let mut off = 0;
        while off < bytes.len() {
            match self.sock.try_write(&bytes[off..]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.in_step.queue_rest();
                    let mut outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
                    debug_assert!(outbox.is_none(), "one request at a time is being written");
                    *outbox = Some((bytes, off));
                    drop(outbox);
                    self.wake.notify_one();
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.in_step.write_failed();
                    return Err(PoolError::Write(e.to_string()));
                }
            }
        }
        self.in_step.end_write();
        Ok(())
    }

    /// Why this idle connection cannot carry a request, if it cannot: the peer closed or reset
    /// it, or sent bytes nobody asked for. One non-blocking `recv(MSG_PEEK)`, so a connection
    /// Blender dropped is found before a request is written to it, not after.
    pub(crate) fn peer_gone(&self) -> Option<&'static str> {
        self.sock.peer_gone()
    }

    /// Bytes of the reply in progress, as of the last read.
    pub(crate) fn received(&self) -> usize {
        self.received.load(Ordering::Relaxed)
    }

    /// Makes the task re-check its timers now (a call's deadline is earlier than its timer).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Asks the task to stop and close the socket, `why` (unless a reason was given before).
    pub(crate) fn close_because(&self, why: &'static str) {
        let _ = self.close_reason.set(why);
        self.closing.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Asks the task to read the rest of the reply in progress (a watcher's request).
    pub(crate) fn hand_over_reads(&self) {
        self.handoff.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    fn take_handoff(&self) -> bool {
        self.handoff.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    pub(crate) fn reader(&self) -> MutexGuard<'_, Reader> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads a burst with `recv` and hands what it found to the pool. Returns whether reading
    /// goes on, and whether the socket was drained.
    pub(crate) fn read_with(
        &self,
        events: &dyn ConnEvents,
        recv: impl FnMut(&mut Vec<u8>) -> io::Result<usize>,
        budget: usize,
    ) -> (bool, bool) {
        let mut reader = self.reader();
        let (verdict, drained) = reader.read(recv, budget);
        let verdict = self.in_step.judge(self.id, verdict, reader.len());
        self.received.store(reader.len(), Ordering::Relaxed);
        (events.on_read(self.id, verdict), drained)
    }
}

/// The connection is gone: its close event (the socket closes as the fields drop, right after).
impl Drop for ConnIo {
    fn drop(&mut self) {
        if let Some(events) = self.events.upgrade() {
            events.on_gone(self.id, self.close_reason.get().copied().unwrap_or("closed"));
        }
    }
}

/// Gives the connection's slot back to the pool when dropped. Declared after the socket in
/// [`ConnIo`], and fields drop in declaration order: the socket is closed first, so a
/// replacement opened for the slot can never overlap it.
struct SocketSlot(Weak<dyn ConnEvents>);

impl Drop for SocketSlot {
    fn drop(&mut self) {
        if let Some(events) = self.0.upgrade() {
            events.on_socket_closed();
        }
    }
}

/// The connection's task: reads replies (unless a watcher does), finishes writes that blocked,
/// enforces timeouts. Ends when the pool closes the connection or the connection fails.
pub(crate) async fn drive(events: Arc<dyn ConnEvents>, io: Arc<ConnIo>) {
    // However this task ends (even by a panic) the connection leaves the pool, a request in
    // flight on it is answered (`ERR_INTERNAL` if nothing better is known), and its watcher,
    // if any, stops watching it.
    let _guard = EndOfTask { events: events.clone(), io: io.clone() };
    let mut unwritten: Option<Unwritten> = None;
    let Some(first_check) = events.on_timer(io.id, io.reader().progress) else {
        io.close_because("closed");
        return;
    };
    // One timer for the task's life, moved only when the deadline moves.
    let timer = tokio::time::sleep_until(first_check);
    tokio::pin!(timer);
    // While a watcher has handed a big reply over: the socket, registered here for reads.
    let mut borrowed: Option<Borrowed> = None;
    loop {
        if io.is_closing() {
            break;
        }
        if borrowed.is_none() && io.take_handoff() {
            match io.sock.borrow_for_reads() {
                Ok(fd) => borrowed = Some(fd),
                Err(e) => {
                    events.on_failed(io.id, PoolError::ConnectionClosed(format!("cannot read the reply: {e}")));
                    break;
                }
            }
        }
        tokio::select! {
            biased;
            () = io.wake.notified() => {
                if let Some(queued) = io.outbox.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    // The writer queues a request only once the previous one is written.
                    debug_assert!(unwritten.is_none(), "one request at a time is being written");
                    unwritten = Some(queued);
                }
            }
            ready = io.sock.writable(), if unwritten.is_some() => {
                if let Err(e) = ready.and_then(|ready| finish_write(ready, &mut unwritten)) {
                    io.in_step.write_failed();
                    events.on_failed(io.id, PoolError::Write(e.to_string()));
                    break;
                }
                if unwritten.is_none() {
                    io.in_step.end_write();
                }
            }
            ready = io.sock.task_readable(), if !io.sock.is_watched() => {
                let alive = match ready {
                    Ok(stream) => io.read_with(&*events, |buf| read_stream(stream, buf), usize::MAX).0,
                    Err(e) => io.read_with(&*events, |_| Err(io::Error::new(e.kind(), e.to_string())), usize::MAX).0,
                };
                if !alive {
                    break;
                }
            }
            ready = borrowed_readable(borrowed.as_ref()), if borrowed.is_some() => {
                match read_borrowed(&*events, &io, ready) {
                    BigReply::Arriving => {}
                    BigReply::Delivered => {
                        // The big reply is in: the watcher reads this connection again.
                        borrowed = None;
                        events.on_handed_back(io.id);
                    }
                    BigReply::ConnectionOver => break,
                }
            }
            () = &mut timer => {
                // A watcher reads this connection on the embedder's thread, which may be busy
                // (a JavaScript thread running a long synchronous task): bytes that reached the
                // socket before a deadline may not have been read yet. Read them here before
                // the deadline is judged, so a reply that arrived in time is not a timeout.
                if io.sock.is_watched() && borrowed.is_none() && !io.read_with(&*events, |buf| io.sock.recv_into(buf), usize::MAX).0 {
                    break;
                }
            }
        }
        let progress = io.reader().progress;
        match events.on_timer(io.id, progress) {
            Some(next) if next != timer.deadline() => timer.as_mut().reset(next),
            Some(_) => {}
            None => break,
        }
    }
    io.close_because("closed");
}

/// One read of the task's own stream into `buf`'s spare capacity. A read that drains the socket
/// is reported as `WouldBlock` (the bytes are in `buf` all the same) so that tokio clears the
/// readiness at once, saving the `recv` returning `EAGAIN` a read-until-`WouldBlock` loop pays.
fn read_stream(stream: &tokio::net::TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let room = buf.capacity() - buf.len();
    stream.try_io(Interest::READABLE, || match stream.try_read_buf(buf)? {
        n if n > 0 && n < room => Err(io::ErrorKind::WouldBlock.into()),
        n => Ok(n),
    })
}

/// Where a big reply, read by the task on a borrowed descriptor, stands.
enum BigReply {
    /// Still arriving.
    Arriving,
    /// Handed to its caller: the watcher reads the connection again.
    Delivered,
    /// The connection cannot go on.
    ConnectionOver,
}

async fn borrowed_readable(borrowed: Option<&Borrowed>) -> io::Result<ReadReady<'_>> {
    match borrowed {
        Some(borrowed) => borrowed.readable().await,
        None => std::future::pending().await,
    }
}

/// Reads a borrowed socket once it is readable, and acts on what arrived.
fn read_borrowed(events: &dyn ConnEvents, io: &ConnIo, ready: io::Result<ReadReady<'_>>) -> BigReply {
    let alive = match ready {
        Ok(mut ready) => {
            let (alive, drained) = io.read_with(events, |buf| ready.recv_into(buf), usize::MAX);
            if drained {
                ready.clear_ready();
            }
            alive
        }
        Err(e) => io.read_with(events, |_| Err(io::Error::new(e.kind(), e.to_string())), usize::MAX).0,
    };
    if !alive {
        BigReply::ConnectionOver
    } else if io.reader().len() == 0 {
        BigReply::Delivered
    } else {
        BigReply::Arriving
    }
}

/// Tells the pool the task ended (a no-op when the pool removed the connection already), and
/// the watcher to stop watching it.
struct EndOfTask {
    events: Arc<dyn ConnEvents>,
    io: Arc<ConnIo>,
}

impl Drop for EndOfTask {
    fn drop(&mut self) {
        let why = if std::thread::panicking() { "the connection task panicked" } else { "the connection task ended" };
        self.events.on_failed(self.io.id, PoolError::Internal(why.into()));
        if self.io.sock.is_watched() {
            self.events.on_task_ended(self.io.id);
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
