//! The few libuv functions the read watcher needs, looked up in the running Node.
//!
//! Node exports libuv's API to addons (`uv.h` is part of its public headers), but napi-rs links
//! only Node-API. The symbols are found once (`symbols.rs`); without them (a Node built
//! without exporting libuv) the pool reads on its I/O thread as before.

use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

use crate::node::symbols::load;

/// `uv_handle_type` values (`uv.h`: the order of `UV_HANDLE_TYPE_MAP`).
pub(crate) const UV_ASYNC: c_int = 1;
pub(crate) const UV_POLL: c_int = 8;
/// `uv_poll_event`.
pub(crate) const UV_READABLE: c_int = 1;

pub(crate) type Handle = c_void;
pub(crate) type Loop = c_void;
pub(crate) type AsyncCb = unsafe extern "C" fn(*mut Handle);
pub(crate) type PollCb = unsafe extern "C" fn(*mut Handle, c_int, c_int);
pub(crate) type CloseCb = unsafe extern "C" fn(*mut Handle);
/// `uv_os_sock_t`: a descriptor on Unix, a `SOCKET` (pointer-sized) on Windows.
#[cfg(unix)]
pub(crate) type OsSock = c_int;
#[cfg(windows)]
pub(crate) type OsSock = usize;
/// What polls a socket: `uv_poll_init` takes a descriptor, but on Windows only
/// `uv_poll_init_socket` takes a `SOCKET`.
#[cfg(unix)]
const POLL_INIT: &std::ffi::CStr = c"uv_poll_init";
#[cfg(windows)]
const POLL_INIT: &std::ffi::CStr = c"uv_poll_init_socket";

/// A socket's handle as libuv takes it.
#[cfg(unix)]
pub(crate) fn os_sock(raw: pool_core::RawSocket) -> OsSock {
    raw
}

/// A socket's handle as libuv takes it (`SOCKET` is pointer-sized; Rust's `RawSocket` is u64).
#[cfg(windows)]
pub(crate) fn os_sock(raw: pool_core::RawSocket) -> OsSock {
    raw as usize
}

/// libuv's entry points.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Uv {
    pub(crate) handle_size: unsafe extern "C" fn(c_int) -> usize,
    pub(crate) async_init: unsafe extern "C" fn(*mut Loop, *mut Handle, AsyncCb) -> c_int,
    pub(crate) async_send: unsafe extern "C" fn(*mut Handle) -> c_int,
    pub(crate) poll_init: unsafe extern "C" fn(*mut Loop, *mut Handle, OsSock) -> c_int,
    pub(crate) poll_start: unsafe extern "C" fn(*mut Handle, c_int, PollCb) -> c_int,
    pub(crate) poll_stop: unsafe extern "C" fn(*mut Handle) -> c_int,
    pub(crate) close: unsafe extern "C" fn(*mut Handle, Option<CloseCb>),
    pub(crate) unref: unsafe extern "C" fn(*mut Handle),
}

/// libuv, if this process exports it.
pub(crate) fn uv() -> Option<Uv> {
    static FOUND: OnceLock<Option<Uv>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        // Safety: each name is looked up in the loaded process image; a non-null result is the
        // libuv function of that name, whose C signature (uv.h, stable across libuv 1.x) is the
        // one it is transmuted to.
        unsafe {
            Some(Uv {
                handle_size: load(c"uv_handle_size")?,
                async_init: load(c"uv_async_init")?,
                async_send: load(c"uv_async_send")?,
                poll_init: load(POLL_INIT)?,
                poll_start: load(c"uv_poll_start")?,
                poll_stop: load(c"uv_poll_stop")?,
                close: load(c"uv_close")?,
                unref: load(c"uv_unref")?,
            })
        }
    })
}

/// A zeroed handle of `kind` from the C heap (null if out of memory). Freed by
/// [`free_handle`], given to `uv_close` as its callback.
pub(crate) fn alloc_handle(uv: &Uv, kind: c_int) -> *mut Handle {
    // Safety: uv_handle_size has no precondition; calloc returns null or a zeroed block of at
    // least that size, aligned for any C type.
    unsafe { libc::calloc(1, (uv.handle_size)(kind)) }
}

/// Frees a handle from [`alloc_handle`] once libuv has closed it.
pub(crate) unsafe extern "C" fn free_handle(handle: *mut Handle) {
    // Safety: `handle` came from `alloc_handle` (calloc) and libuv no longer uses it.
    unsafe { libc::free(handle) };
}

/// `handle->data`: the first field of every libuv handle (`UV_HANDLE_FIELDS`).
pub(crate) unsafe fn data(handle: *mut Handle) -> *mut c_void {
    // Safety: per the caller, `handle` is a live libuv handle; `data` is its first field.
    unsafe { *handle.cast::<*mut c_void>() }
}

/// Sets `handle->data`.
pub(crate) unsafe fn set_data(handle: *mut Handle, data: *mut c_void) {
    // Safety: as for `data`.
    unsafe { *handle.cast::<*mut c_void>() = data };
}
