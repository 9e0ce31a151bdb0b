//! Hooks for the project's own tests; not part of the public API (`__` prefix, untyped).

use napi_derive::napi;

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether creating a reply's JavaScript string fails (`"fail-reply-string"`).
static FAIL_REPLY_STRING: AtomicBool = AtomicBool::new(false);

/// Whether the `"fail-reply-string"` failpoint is on: the reply string is then refused the way
/// V8 refuses a string past its longest (a pending `RangeError` and a failed call).
pub(crate) fn fail_reply_string() -> bool {
    FAIL_REPLY_STRING.load(Ordering::Relaxed)
}

/// Test hook: turns a failpoint (`"panic-on-reply"`, `"panic-on-submit"`, `"fail-reply-string"`)
/// on or off.
#[napi(js_name = "__setFailpoint")]
pub fn set_failpoint(name: String, on: bool) -> napi::Result<()> {
    use pool_core::failpoint::{set, Failpoint};
    let point = match name.as_str() {
        "fail-reply-string" => {
            FAIL_REPLY_STRING.store(on, Ordering::Relaxed);
            return Ok(());
        }
        "panic-on-reply" => Failpoint::PanicOnReply,
        "panic-on-submit" => Failpoint::PanicOnSubmit,
        other => return Err(napi::Error::from_reason(format!("unknown failpoint {other}"))),
    };
    set(point, on);
    Ok(())
}
