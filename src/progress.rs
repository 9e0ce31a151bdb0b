//! `progress(call)`: where a call stands, for the JavaScript layer's `onProgress` reports.

use napi_derive::napi;
use pool_core::CallProgress;

/// A call in progress, as `NativePool#progress` and `NativeLease#progress` return it.
#[napi(object)]
#[derive(Debug)]
pub struct JsCallProgress {
    /// `waiting` (for a connection), `sent` (no reply byte yet) or `receiving`.
    pub phase: String,
    /// Milliseconds spent in that phase so far.
    pub phase_ms: f64,
    /// Bytes of the reply received so far.
    pub bytes_received: f64,
    /// The command keeping Blender busy ahead of this call, if any.
    pub busy_command: Option<String>,
    /// How long that command has been running, in milliseconds.
    pub busy_ms: Option<f64>,
}

impl From<CallProgress> for JsCallProgress {
    fn from(p: CallProgress) -> Self {
        JsCallProgress {
            phase: p.phase.as_str().to_owned(),
            phase_ms: p.in_phase.as_secs_f64() * 1000.0,
            bytes_received: p.bytes_received as f64,
            busy_ms: p.busy.as_ref().map(|b| b.running.as_secs_f64() * 1000.0),
            busy_command: p.busy.map(|b| b.command),
        }
    }
}
