//! The one place where core errors become JavaScript exceptions.
//!
//! Pool errors travel to JavaScript as `(code, message)` through [`crate::settle`] and become
//! `BlenderPoolError`s in `index.js`. Configuration errors are thrown synchronously from the
//! constructor, as `TypeError`/`RangeError` with Node's own codes.

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
