//! Hooks for the project's own tests; not part of the public API (`__` prefix, untyped).

use napi_derive::napi;

/// Test hook: turns a failpoint (`"panic-on-reply"`, `"panic-on-submit"`) on or off.
#[napi(js_name = "__setFailpoint")]
pub fn set_failpoint(name: String, on: bool) -> napi::Result<()> {
  use pool_core::failpoint::{set, Failpoint};
  let point = match name.as_str() {
    "panic-on-reply" => Failpoint::PanicOnReply,
    "panic-on-submit" => Failpoint::PanicOnSubmit,
    other => return Err(napi::Error::from_reason(format!("unknown failpoint {other}"))),
  };
  set(point, on);
  Ok(())
}
