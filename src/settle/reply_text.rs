//! Handing a reply's text to JavaScript without copying it, when it is large.
//!
//! Blender's replies are almost always ASCII (Python's `json.dumps` escapes everything else),
//! and ASCII is valid Latin-1, which V8 can use in place as an *external* one-byte string. For a
//! 20 MB reply that saves a 20 MB copy on the JavaScript thread and 20 MB of peak memory: the
//! reply buffer itself becomes the string, freed by V8's garbage collector.
//!
//! `node_api_create_external_string_latin1` exists from Node 18.18 / 20.4; it is looked up at
//! run time (`../node/symbols.rs`), and without it (or for small or
//! non-ASCII replies) the text is copied as usual.
//!
//! Whether a reply is ASCII is what the core's validator found on its one pass over the bytes
//! ([`Reply::is_ascii`]): nothing here reads the reply again before V8 gets it.

use std::ffi::{c_char, c_void};
use std::sync::OnceLock;

use napi::bindgen_prelude::ToNapiValue;
use napi::{sys, Result};
use pool_core::framing::Reply;

/// Replies below this size are copied: a copy is cheaper than an external string's bookkeeping.
const EXTERNAL_MIN_BYTES: usize = 64 * 1024;

/// A reply's text, prepared on the I/O thread for cheap conversion on the JavaScript thread.
#[derive(Debug)]
pub struct ReplyText {
    /// The reply's bytes: valid UTF-8 (the core validated them).
    text: Vec<u8>,
    external: bool,
}

impl ReplyText {
    /// Decides (off the JavaScript thread) whether `reply` can become an external string. The
    /// buffer keeps its capacity: once V8 lets go of the string it goes back to the core
    /// ([`pool_core::framing::recycle`]), where the next big reply is read into it.
    pub(crate) fn new(reply: Reply) -> Self {
        let external = reply.len() >= EXTERNAL_MIN_BYTES && reply.is_ascii() && create_external_fn().is_some();
        ReplyText { text: reply.into_bytes(), external }
    }
}

/// `node_api_basic_finalize` (declared here: napi-sys only has it with its `napi10` feature).
type BasicFinalize = Option<unsafe extern "C" fn(sys::napi_env, *mut c_void, *mut c_void)>;

type CreateExternalLatin1 = unsafe extern "C" fn(
    sys::napi_env,
    *mut c_char,
    isize,
    BasicFinalize,
    *mut c_void,
    *mut sys::napi_value,
    *mut bool,
) -> sys::napi_status;

/// `node_api_create_external_string_latin1`, if this Node has it.
fn create_external_fn() -> Option<CreateExternalLatin1> {
    static FOUND: OnceLock<Option<CreateExternalLatin1>> = OnceLock::new();
    // Safety: the signature declared above is that of the Node-API function of this name
    // (node_api.h).
    *FOUND.get_or_init(|| unsafe { crate::node::symbols::load(c"node_api_create_external_string_latin1") })
}

/// Takes back a reply buffer V8 no longer needs, for the next big reply. `hint` is the boxed
/// `Vec` that owns the buffer `data` points into.
unsafe extern "C" fn free_reply(env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // Safety: `hint` is the `Box<Vec<u8>>` leaked in `to_napi_value` below, handed back exactly
    // once by Node (on GC, or at once if it copied).
    let bytes = unsafe { Box::from_raw(hint.cast::<Vec<u8>>()) };
    adjust_external_memory(env, -(bytes.len() as i64));
    pool_core::framing::recycle(*bytes);
}

/// Tells V8 that `delta` bytes outside its heap now live or died with its objects. Without it,
/// external strings do not count towards V8's decision to collect, and a caller that only
/// keeps a few small objects between big replies would hold every reply ever received.
fn adjust_external_memory(env: sys::napi_env, delta: i64) {
    let mut total = 0i64;
    // Safety: `env` is live on this thread (caller's contract); the out-pointer is valid.
    let _ = unsafe { sys::napi_adjust_external_memory(env, delta, &mut total) };
}

impl ToNapiValue for ReplyText {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        if crate::testing::fail_reply_string() {
            // As V8 does for a string past its longest: an exception pending, and a failed call.
            // Safety: `env` is live on this thread (caller's contract); the strings are NUL-terminated.
            let _ = unsafe { sys::napi_throw_range_error(env, std::ptr::null(), c"Invalid string length".as_ptr()) };
            return Err(napi::Error::new(napi::Status::GenericFailure, "Invalid string length (failpoint)"));
        }
        let create = match create_external_fn() {
            Some(create) if val.external => create,
            _ => {
                let result = copied(env, &val.text);
                pool_core::framing::recycle(val.text);
                return result;
            }
        };
        let bytes = Box::new(val.text);
        let (data, len) = (bytes.as_ptr(), bytes.len());
        let owner = Box::into_raw(bytes);
        // Counted before the call: `free_reply` uncounts it, whenever and however it runs.
        adjust_external_memory(env, len as i64);
        let mut result = std::ptr::null_mut();
        let mut copied = false;
        // Safety: `data` points to `len` ASCII (so Latin-1) bytes of the `Vec` that `owner` holds,
        // which stays where it is until `free_reply` runs, which Node guarantees to call once: when
        // the string is collected, or before returning if it chose to copy. `env` is live on this
        // thread per the caller.
        let status = unsafe {
            create(env, data.cast_mut().cast(), len as isize, Some(free_reply), owner.cast(), &mut result, &mut copied)
        };
        if status != sys::Status::napi_ok {
            // Node did not take the buffer: give it back and report the failure.
            // Safety: the buffer was not handed over (the call failed), so `owner` is still ours.
            unsafe { free_reply(env, data.cast_mut().cast(), owner.cast()) };
            return Err(napi::Error::new(napi::Status::from(status), "could not create the reply string"));
        }
        Ok(result)
    }
}

/// A JavaScript string copied from `text` (UTF-8), as napi-rs makes one of a `String`.
fn copied(env: sys::napi_env, text: &[u8]) -> Result<sys::napi_value> {
    let mut result = std::ptr::null_mut();
    // Safety: `env` is live on this thread (the caller's contract); `text` is valid for
    // `text.len()` bytes for the duration of the call, which copies them; the out-pointer is valid.
    let status = unsafe { sys::napi_create_string_utf8(env, text.as_ptr().cast(), text.len() as isize, &mut result) };
    if status != sys::Status::napi_ok {
        return Err(napi::Error::new(napi::Status::from(status), "could not create the reply string"));
    }
    Ok(result)
}
