//! Configuration errors as JavaScript exceptions, thrown synchronously by the constructor as a
//! `RangeError` with Node's own code.
//!
//! The other errors are not exceptions: a call's failure travels to JavaScript as `(code,
//! message)` through [`crate::settle`], where `index.js` makes it a `BlenderPoolError`; a panic
//! in a `#[napi]` method is caught by napi-rs (`catch_unwind`) and thrown as an `Error`, which
//! `index.js` reports as `ERR_INTERNAL`.

use napi::{Env, Error, Status};
use pool_core::ConfigError;

/// Throws `err` as a `RangeError` (`ERR_OUT_OF_RANGE`; wrong types are `TypeError`s thrown by
/// `lib/options.js` first) and returns the marker error that tells napi an exception is already
/// pending.
pub(crate) fn throw_config_error(env: &Env, err: &ConfigError) -> Error {
    let message = err.to_string();
    match env.throw_range_error(&message, Some("ERR_OUT_OF_RANGE")) {
        Ok(()) => Error::new(Status::PendingException, message),
        Err(e) => e,
    }
}
