//! The pool's [`ReadWatcher`] on the JavaScript thread's event loop: replies are read where
//! they are consumed.
//!
//! With replies read on the I/O thread, each one costs two thread wake-ups (the I/O thread,
//! then the JS thread to settle the promise) and, on a busy machine where both share a CPU, two
//! context switches. Here each connection's socket is polled by libuv (`uv_poll_t`, unref'd:
//! it never keeps Node alive) and read on the JS thread when readable: a reply costs no thread
//! hop at all, as with Node's own sockets, and under load one `epoll_wait` serves many. Reads
//! are non-blocking and taken at most ~1 MiB per callback, so a big reply arriving never stalls
//! the loop for long. Connects, timeouts and writes that block stay on the I/O thread.
//!
//! The I/O thread tells the JS thread which connections to watch or drop through a queue and a
//! `uv_async_t`. Everything else here runs on the JS thread. A connection's socket stays open
//! until its poll handle is closed (its [`WatchedConn`] is dropped right after `uv_close`), so
//! a descriptor is never reused under libuv's feet. On Windows that matters twice over:
//! `uv_poll_stop` leaves libuv's AFD poll on the socket outstanding, and `uv_close` polls the
//! socket itself to cancel it.

use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null_mut;
use std::sync::{Arc, Mutex};

use napi::{sys, Env};
use pool_core::{ReadWatcher, WatchNext, WatchedConn};

use crate::node::uv::{self, Handle, Uv, UV_ASYNC, UV_POLL, UV_READABLE};

/// The watcher a pool holds (its `Drop` tells the JS thread to close everything).
#[derive(Debug)]
pub(crate) struct UvWatcher {
    link: Arc<Link>,
}

/// What the I/O thread and the JS thread share.
#[derive(Debug)]
struct Link {
    uv: Uv,
    state: Mutex<LinkState>,
}

#[derive(Debug)]
struct LinkState {
    inbox: Vec<Msg>,
    /// The `uv_async_t` that wakes the JS thread; null once closed (nothing is posted after).
    wakeup: SendPtr,
}

#[derive(Debug, Clone, Copy)]
struct SendPtr(*mut Handle);
// SAFETY: the pointer is only dereferenced by libuv: `uv_async_send` (thread-safe by contract)
// under the lock that also guards its closing, and everything else on the JS thread.
unsafe impl Send for SendPtr {}

#[derive(Debug)]
enum Msg {
    Watch(WatchedConn),
    Unwatch(u64),
    Resume(u64),
    Close,
}

/// The JS thread's side, behind the `uv_async_t`'s `data`.
struct Owner {
    link: Arc<Link>,
    uv_loop: *mut uv::Loop,
    env: sys::napi_env,
    wakeup: *mut Handle,
    polls: HashMap<u64, *mut Handle>,
}

/// Behind each `uv_poll_t`'s `data`.
struct Polled {
    conn: WatchedConn,
    owner: *mut Owner,
}

impl UvWatcher {
    /// Sets up the watcher on `env`'s event loop, or `None` where libuv is not available (the
    /// pool then reads on its I/O thread). On the JS thread.
    pub(crate) fn start(env: &Env) -> Option<Arc<UvWatcher>> {
        if std::env::var_os("BLENDER_POOL_IO_THREAD_READS").is_some_and(|v| v == "1") {
            return None;
        }
        let uv = uv::uv()?;
        let mut uv_loop = null_mut();
        // SAFETY: `env` is live on this thread; the out-pointer is valid.
        if unsafe { sys::napi_get_uv_event_loop(env.raw(), &mut uv_loop) } != sys::Status::napi_ok || uv_loop.is_null()
        {
            return None;
        }
        let wakeup = uv::alloc_handle(&uv, UV_ASYNC);
        if wakeup.is_null() {
            return None;
        }
        let link = Arc::new(Link { uv, state: Mutex::new(LinkState { inbox: Vec::new(), wakeup: SendPtr(wakeup) }) });
        let owner = Box::into_raw(Box::new(Owner {
            link: link.clone(),
            uv_loop: uv_loop.cast(),
            env: env.raw(),
            wakeup,
            polls: HashMap::new(),
        }));
        // SAFETY: `wakeup` is a zeroed block of uv_async_t's size; `uv_loop` is this thread's loop.
        // On failure the handle was never initialised, so it is freed directly.
        unsafe {
            uv::set_data(wakeup, owner.cast());
            if (uv.async_init)(uv_loop.cast(), wakeup, on_wakeup) != 0 {
                uv::free_handle(wakeup);
                drop(Box::from_raw(owner));
                return None;
            }
            (uv.unref)(wakeup);
            let _ = sys::napi_add_env_cleanup_hook(env.raw(), Some(on_env_cleanup), owner.cast());
        }
        Some(Arc::new(UvWatcher { link }))
    }

    fn post(&self, msg: Msg) {
        let mut state = self.link.lock();
        if state.wakeup.0.is_null() {
            // The loop is gone (worker terminated): nobody can read this connection.
            drop(state);
            if let Msg::Watch(conn) = msg {
                conn.end_with_host();
            }
            return;
        }
        state.inbox.push(msg);
        // SAFETY: `wakeup` is an initialised uv_async_t, not closed while this lock is held.
        let _ = unsafe { (self.link.uv.async_send)(state.wakeup.0) };
    }
}

impl Link {
    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ReadWatcher for UvWatcher {
    fn watch(&self, conn: WatchedConn) {
        self.post(Msg::Watch(conn));
    }

    fn unwatch(&self, id: u64) {
        self.post(Msg::Unwatch(id));
    }

    fn resume(&self, id: u64) {
        self.post(Msg::Resume(id));
    }
}

impl Drop for UvWatcher {
    fn drop(&mut self) {
        self.post(Msg::Close);
    }
}

/// The I/O thread posted messages (JS thread).
///
/// # Safety
/// Called by libuv with the `uv_async_t` initialised in [`UvWatcher::start`].
unsafe extern "C" fn on_wakeup(handle: *mut Handle) {
    // SAFETY: `handle` is our initialised uv_async_t; its data is the Owner or null.
    let owner = unsafe { uv::data(handle) }.cast::<Owner>();
    if owner.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `owner` is the live Owner set up in `start`, only touched on this thread.
        let msgs = std::mem::take(&mut unsafe { &*owner }.link.lock().inbox);
        for msg in msgs {
            match msg {
                // SAFETY: on the JS thread, with the live Owner (freed only by `close_all`, after
                // which nothing more is read from the inbox).
                Msg::Watch(conn) => unsafe { watch(owner, conn) },
                // SAFETY: as above.
                Msg::Unwatch(id) => unsafe { unwatch(owner, id) },
                // SAFETY: as above.
                Msg::Resume(id) => unsafe { resume(owner, id) },
                Msg::Close => {
                    // SAFETY: as above; the Owner is freed here, and this loop returns at once.
                    unsafe { close_all(owner, false) };
                    return;
                }
            }
        }
    }));
}

/// Starts polling `conn`.
///
/// # Safety
/// On the JS thread, with `owner` the live Owner.
unsafe fn watch(owner: *mut Owner, conn: WatchedConn) {
    // SAFETY: called on the JS thread with the live Owner.
    let o = unsafe { &mut *owner };
    let uv = o.link.uv;
    let handle = uv::alloc_handle(&uv, UV_POLL);
    if handle.is_null() {
        conn.abandon("out of memory");
        return;
    }
    let id = conn.id();
    let sock = uv::os_sock(conn.raw_socket());
    // SAFETY: `handle` is a zeroed block of uv_poll_t's size, `o.uv_loop` this thread's loop,
    // and `sock` an open socket that stays open while `Polled` (holding `conn`) lives.
    unsafe {
        if (uv.poll_init)(o.uv_loop, handle, sock) != 0 {
            uv::free_handle(handle);
            conn.abandon("uv_poll_init failed");
            return;
        }
        let polled = Box::into_raw(Box::new(Polled { conn, owner }));
        uv::set_data(handle, polled.cast());
        (uv.unref)(handle);
        let _ = o.polls.insert(id, handle);
        if (uv.poll_start)(handle, UV_READABLE, on_readable) != 0 {
            (*polled).conn.abandon("uv_poll_start failed");
            unwatch(owner, id);
        }
    }
}

/// Stops polling connection `id`, closes the handle, then drops its `WatchedConn`.
///
/// # Safety
/// On the JS thread, with `owner` the live Owner.
unsafe fn unwatch(owner: *mut Owner, id: u64) {
    // SAFETY: the caller's contract, passed on.
    unsafe { stop(owner, id, false) }
}

/// [`unwatch`]; with `env_gone`, the connection is given up too (nobody will read it again).
///
/// # Safety
/// On the JS thread, with `owner` the live Owner.
unsafe fn stop(owner: *mut Owner, id: u64, env_gone: bool) {
    // SAFETY: called on the JS thread with the live Owner.
    let o = unsafe { &mut *owner };
    let Some(handle) = o.polls.remove(&id) else { return };
    let uv = o.link.uv;
    // SAFETY: `handle` is an initialised uv_poll_t of this loop, closed once here: it was just
    // taken out of `polls`. Its data is the live `Polled` boxed in `watch` (or null), freed
    // once, here, after `uv_close` (libuv calls nothing back once a handle is closing).
    unsafe {
        let _ = (uv.poll_stop)(handle);
        let polled = uv::data(handle).cast::<Polled>();
        uv::set_data(handle, null_mut());
        (uv.close)(handle, Some(uv::free_handle));
        if !polled.is_null() {
            let polled = Box::from_raw(polled);
            if env_gone {
                polled.conn.end_with_host();
            }
            drop(polled);
        }
    }
}

/// Polls connection `id` again after a pause (its big reply was read on the I/O thread).
///
/// # Safety
/// On the JS thread, with `owner` the live Owner.
unsafe fn resume(owner: *mut Owner, id: u64) {
    // SAFETY: the caller's contract: the live Owner, on its thread.
    let o = unsafe { &mut *owner };
    let Some(&handle) = o.polls.get(&id) else { return };
    // SAFETY: `handle` is an initialised, stopped uv_poll_t of this loop (it is in `polls`).
    if unsafe { (o.link.uv.poll_start)(handle, UV_READABLE, on_readable) } != 0 {
        // SAFETY: as above; its data is the live `Polled` or null.
        let polled = unsafe { uv::data(handle) }.cast::<Polled>();
        if !polled.is_null() {
            // SAFETY: non-null data is the `Polled` boxed in `watch`, freed only by `stop`.
            unsafe { &*polled }.conn.abandon("uv_poll_start failed");
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { unwatch(owner, id) };
    }
}

/// A watched socket is readable (JS thread).
///
/// # Safety
/// Called by libuv with a uv_poll_t initialised in [`watch`].
unsafe extern "C" fn on_readable(handle: *mut Handle, status: c_int, _events: c_int) {
    // SAFETY: `data` is the live `Polled` set in `watch` (cleared by `stop`, which closes the
    // handle: libuv calls nothing back after that).
    let polled = unsafe { uv::data(handle) }.cast::<Polled>();
    if polled.is_null() {
        return;
    }
    // `on_readable` reads whatever the status: an error shows up as a failed read, once the
    // bytes that arrived before it are taken.
    let (next, owner, id) = {
        // SAFETY: non-null data is the `Polled` boxed in `watch`; freed only by `stop`, which
        // closes the handle first, so not while this callback runs.
        let p = unsafe { &*polled };
        let next = catch_unwind(AssertUnwindSafe(|| p.conn.on_readable())).unwrap_or(WatchNext::Stop);
        (next, p.owner, p.conn.id())
    };
    match next {
        // On an error event (POLLERR: a reset, say) libuv has stopped this handle before calling
        // back. The read above took the bytes that came before the error; poll again, so that the
        // next callback reads the error itself. Without this, part of a reply followed by a reset
        // would wait for the reply timeout instead of failing at once.
        // SAFETY: the Owner outlives its polls; `resume` restarts this stopped, initialised handle.
        WatchNext::Keep if status < 0 => unsafe { resume(owner, id) },
        WatchNext::Keep => {}
        // A big reply: the I/O thread reads the rest, then `resume` polls again.
        WatchNext::Pause => {
            // SAFETY: the Owner outlives its polls (closing it unwatches them all first).
            let poll_stop = unsafe { &*owner }.link.uv.poll_stop;
            // SAFETY: `handle` is this loop's initialised uv_poll_t.
            let _ = unsafe { poll_stop(handle) };
        }
        // SAFETY: the Owner outlives its polls (closing it unwatches them all first).
        WatchNext::Stop => unsafe { unwatch(owner, id) },
    }
}

/// Closes every handle and frees the Owner (JS thread): the pool is gone, or (`env_gone`) its
/// environment, whose connections are then given up.
///
/// # Safety
/// On the JS thread, with `owner` the live Owner, once: it is freed here.
unsafe fn close_all(owner: *mut Owner, env_gone: bool) {
    // SAFETY: called on the JS thread with the live Owner, once.
    let o = unsafe { &mut *owner };
    let pending = {
        let mut state = o.link.lock();
        state.wakeup = SendPtr(null_mut());
        std::mem::take(&mut state.inbox)
    };
    for msg in pending {
        if let (Msg::Watch(conn), true) = (msg, env_gone) {
            conn.end_with_host();
        }
    }
    let ids: Vec<u64> = o.polls.keys().copied().collect();
    for id in ids {
        // SAFETY: the caller's contract; the Owner is freed only below.
        unsafe { stop(owner, id, env_gone) };
    }
    let uv = o.link.uv;
    // SAFETY: `o.wakeup` is the initialised uv_async_t of `start`, closed once here; the cleanup
    // hook is removed only if the environment did not run it (it is what runs us then); the
    // Owner was boxed in `start` and nothing refers to it after this.
    unsafe {
        uv::set_data(o.wakeup, null_mut());
        (uv.close)(o.wakeup, Some(uv::free_handle));
        if !env_gone {
            let _ = sys::napi_remove_env_cleanup_hook(o.env, Some(on_env_cleanup), owner.cast());
        }
        drop(Box::from_raw(owner));
    }
}

/// The environment is being torn down (worker terminated, or process exit) before the pool.
///
/// # Safety
/// Called by Node with the Owner registered in [`UvWatcher::start`].
unsafe extern "C" fn on_env_cleanup(arg: *mut c_void) {
    // SAFETY: `arg` is the live Owner, on the JS thread; the hook runs once.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe { close_all(arg.cast(), true) }));
}
