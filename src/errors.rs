//! Configuration errors as JavaScript exceptions, thrown synchronously by the constructor as
//! `TypeError`/`RangeError` with Node's own codes.
//!
//! The other errors are not exceptions: a call's failure travels to JavaScript as `(code,
//! message)` through [`crate::settle`], where `index.js` makes it a `BlenderPoolError`; a panic
//! in a `#[napi]` method is caught by napi-rs (`catch_unwind`) and thrown as an `Error`, which
//! `index.js` reports as `ERR_INTERNAL`.

use napi::{Env, Error, Status};
use pool_core::{ConfigError, ConfigErrorKind};

/// Throws `err` as a `TypeError` (`ERR_INVALID_ARG_TYPE`) or `RangeError` (`ERR_OUT_OF_RANGE`)
/// and returns the marker error that tells napi an exception is already pending.
pub(crate) fn throw_config_error(env: &Env, err: &ConfigError) -> Error {
    let message = err.to_string();
    let thrown = match err.kind {
        ConfigErrorKind::Type => env.throw_type_error(&message, Some("ERR_INVALID_ARG_TYPE")),
        ConfigErrorKind::Range => env.throw_range_error(&message, Some("ERR_OUT_OF_RANGE")),
    };
    match thrown {
        Ok(()) => Error::new(Status::PendingException, message),
        Err(e) => e,
    }
}
