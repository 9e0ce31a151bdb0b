//! The one error type of the pool, a variant per stage where a call can fail.
//!
//! Every variant maps to one stable, documented code (see [`PoolError::code`]); the binding turns
//! that code into the `code` property of the JavaScript `Error`, so the mapping lives here once.

use std::fmt;
use std::time::Duration;

/// The command Blender was busy with while a call waited: Blender runs one command at a time
/// on its main thread, whatever the number of connections, so a long one (a render, an import)
/// holds up every other. The pool's oldest request still waiting for its first reply byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    /// Its command type.
    pub command: String,
    /// How long it had been running (since it was sent).
    pub running: Duration,
}

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Blender runs one command at a time and {:?} has been running for {}",
            self.command,
            human_duration(self.running)
        )
    }
}

/// `850 ms`, `4.2 s`, `212 s`: how long, in the unit a person reads.
pub fn human_duration(d: Duration) -> String {
    match d.as_millis() {
        ms @ 0..=999 => format!("{ms} ms"),
        ms @ 1000..=9_999 => format!("{:.1} s", ms as f64 / 1000.0),
        ms => format!("{} s", ms / 1000),
    }
}

/// Why a call on the pool failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolError {
    /// No connection became free within `connectionTimeout` while the caller waited in the queue;
    /// with the command that was keeping Blender busy meanwhile, if one was.
    PoolTimeout(Option<Busy>),
    /// Opening a TCP connection to Blender failed (refused, unreachable, or timed out).
    Connect {
        /// `host:port` that was dialled.
        addr: String,
        /// What the operating system (or the connect timer) said.
        reason: String,
    },
    /// Blender sent no byte for this long (`socketTimeout`, or the call's own `timeout`) while a
    /// reply was expected; with the command that was keeping Blender busy meanwhile, if one was
    /// sent before this one and had not been answered yet.
    ResponseTimeout(Duration, Option<Busy>),
    /// The peer closed (or reset) the connection before the reply was complete.
    ConnectionClosed(String),
    /// The reply was not a Blender response: not UTF-8, not JSON, not an object, or a bad
    /// `status`/`message`. `sample` is the start of what arrived, cut at 200 characters.
    InvalidResponse {
        /// What was wrong with it.
        reason: String,
        /// The first 200 characters of the reply (lossy UTF-8), `...` appended when cut.
        sample: String,
    },
    /// The reply is (or, still incomplete, already grew) larger than `maxResponseBytes`.
    ResponseTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The pool was shut down before the call could be served.
    Shutdown,
    /// A lease was used after it had been released (or its connection had been discarded).
    Released,
    /// A lease was asked to run a command while it was still running another (no pipelining).
    LeaseBusy,
    /// The caller aborted the call (its `AbortSignal` fired, or `cancel` was called).
    Aborted,
    /// Writing the request failed.
    Write(String),
    /// A bug in the pool (a panic was caught). Never expected; reported rather than crashing.
    Internal(String),
}

impl PoolError {
    /// Every code [`PoolError::code`] can return, once each: the one list the metrics, the
    /// binding and the typings are checked against.
    pub const CODES: [&'static str; 11] = [
        "ERR_POOL_TIMEOUT",
        "ERR_CONNECT",
        "ERR_RESPONSE_TIMEOUT",
        "ERR_CONNECTION_CLOSED",
        "ERR_INVALID_RESPONSE",
        "ERR_RESPONSE_TOO_LARGE",
        "ERR_POOL_SHUTDOWN",
        "ERR_CONNECTION_RELEASED",
        "ERR_CONNECTION_BUSY",
        "ABORT_ERR",
        "ERR_INTERNAL",
    ];

    /// The stable code the JavaScript layer exposes as `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            PoolError::PoolTimeout(_) => "ERR_POOL_TIMEOUT",
            PoolError::Connect { .. } => "ERR_CONNECT",
            PoolError::ResponseTimeout(..) => "ERR_RESPONSE_TIMEOUT",
            PoolError::ConnectionClosed(_) | PoolError::Write(_) => "ERR_CONNECTION_CLOSED",
            PoolError::InvalidResponse { .. } => "ERR_INVALID_RESPONSE",
            PoolError::ResponseTooLarge { .. } => "ERR_RESPONSE_TOO_LARGE",
            PoolError::Shutdown => "ERR_POOL_SHUTDOWN",
            PoolError::Released => "ERR_CONNECTION_RELEASED",
            PoolError::Aborted => "ABORT_ERR",
            PoolError::LeaseBusy => "ERR_CONNECTION_BUSY",
            PoolError::Internal(_) => "ERR_INTERNAL",
        }
    }

    /// What went wrong, in a few words safe to log: like the message, but without the sample
    /// of the reply that [`PoolError::InvalidResponse`] carries (replies hold users' data).
    pub fn summary(&self) -> std::borrow::Cow<'_, str> {
        match self {
            PoolError::InvalidResponse { reason, .. } => format!("invalid response: {reason}").into(),
            other => other.to_string().into(),
        }
    }

    /// Builds an [`PoolError::InvalidResponse`] with a sample of the offending bytes.
    pub fn invalid_response(reason: impl Into<String>, bytes: &[u8]) -> Self {
        PoolError::InvalidResponse { reason: reason.into(), sample: sample(bytes) }
    }
}

/// The first 200 characters of `bytes` (invalid UTF-8 replaced), with `...` when cut.
fn sample(bytes: &[u8]) -> String {
    const MAX_CHARS: usize = 200;
    // Look at a bounded prefix only: a 50 MB reply must not be decoded to build an error message.
    let head = &bytes[..bytes.len().min(MAX_CHARS * 4)];
    let text = String::from_utf8_lossy(head);
    let mut chars = text.chars();
    let cut: String = chars.by_ref().take(MAX_CHARS).collect();
    if chars.next().is_some() || head.len() < bytes.len() {
        cut + "..."
    } else {
        cut
    }
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::PoolTimeout(None) => f.write_str("Connection pool timeout - no connections available"),
            PoolError::PoolTimeout(Some(busy)) => {
                write!(f, "Connection pool timeout - no connections available ({busy})")
            }
            PoolError::Connect { addr, reason } => write!(
                f,
                "Failed to connect to Blender: {reason} ({addr}): is Blender running with the MCP \
                 add-on's server started?"
            ),
            PoolError::ResponseTimeout(after, None) => {
                write!(f, "Response timeout (no data from Blender for {} ms)", after.as_millis())
            }
            PoolError::ResponseTimeout(after, Some(busy)) => {
                write!(f, "Response timeout (no data from Blender for {} ms; {busy})", after.as_millis())
            }
            PoolError::ConnectionClosed(detail) => write!(f, "Connection closed ({detail})"),
            PoolError::InvalidResponse { reason, sample } => write!(
                f,
                "Invalid response structure from Blender. {reason}. Expected BlenderSocketResponse \
                 with status field, got: {sample}"
            ),
            PoolError::ResponseTooLarge { limit } => {
                write!(f, "Response too large: Blender's reply exceeded maxResponseBytes ({limit} bytes)")
            }
            PoolError::Shutdown => f.write_str("Connection pool shutting down"),
            PoolError::Released => {
                f.write_str("Connection was released to the pool (or discarded) and can no longer be used")
            }
            PoolError::LeaseBusy => {
                f.write_str("Connection is busy with another command (one command at a time per connection)")
            }
            PoolError::Aborted => f.write_str("The operation was aborted"),
            PoolError::Write(reason) => write!(f, "Connection closed (write failed: {reason})"),
            PoolError::Internal(what) => write!(f, "Internal error in blender-mcp-pool: {what}"),
        }
    }
}

impl std::error::Error for PoolError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_cuts_at_200_chars_and_marks_the_cut() {
        let long = "é".repeat(300);
        let s = sample(long.as_bytes());
        assert_eq!(s.chars().count(), 203);
        assert!(s.ends_with("..."));
        assert_eq!(sample(b"short"), "short");
    }

    #[test]
    fn invalid_utf8_is_replaced_in_the_sample() {
        assert_eq!(sample(b"ab\xffcd"), "ab\u{fffd}cd");
    }

    #[test]
    fn every_variant_has_a_listed_code_and_every_listed_code_a_variant() {
        let variants = [
            PoolError::PoolTimeout(None),
            PoolError::Connect { addr: String::new(), reason: String::new() },
            PoolError::ResponseTimeout(Duration::ZERO, None),
            PoolError::ConnectionClosed(String::new()),
            PoolError::invalid_response("", b""),
            PoolError::ResponseTooLarge { limit: 0 },
            PoolError::Shutdown,
            PoolError::Released,
            PoolError::LeaseBusy,
            PoolError::Aborted,
            PoolError::Write(String::new()),
            PoolError::Internal(String::new()),
        ];
        let codes: std::collections::BTreeSet<_> = variants.iter().map(PoolError::code).collect();
        let listed: std::collections::BTreeSet<_> = PoolError::CODES.into_iter().collect();
        assert_eq!(codes, listed);
        assert_eq!(listed.len(), PoolError::CODES.len(), "no code listed twice");
    }

    #[test]
    fn a_timeout_names_the_command_keeping_blender_busy() {
        let busy = Busy { command: "render_scene".into(), running: Duration::from_millis(212_400) };
        assert_eq!(
            PoolError::ResponseTimeout(Duration::from_secs(180), Some(busy.clone())).to_string(),
            "Response timeout (no data from Blender for 180000 ms; Blender runs one command at a time and \
             \"render_scene\" has been running for 212 s)"
        );
        assert_eq!(
            PoolError::PoolTimeout(Some(busy)).to_string(),
            "Connection pool timeout - no connections available (Blender runs one command at a time and \
             \"render_scene\" has been running for 212 s)"
        );
        assert_eq!(human_duration(Duration::from_millis(4_250)), "4.2 s");
        assert_eq!(human_duration(Duration::from_millis(850)), "850 ms");
    }

    #[test]
    fn the_summary_leaves_the_reply_sample_out() {
        let e = PoolError::invalid_response("Reply is not valid JSON", b"{\"secret\":\"sk-123\"");
        assert!(e.to_string().contains("sk-123"));
        assert_eq!(e.summary(), "invalid response: Reply is not valid JSON");
        assert_eq!(
            PoolError::ResponseTimeout(Duration::from_millis(5), None).summary(),
            "Response timeout (no data from Blender for 5 ms)"
        );
    }

    #[test]
    fn messages_keep_the_original_wording() {
        assert_eq!(PoolError::PoolTimeout(None).to_string(), "Connection pool timeout - no connections available");
        assert_eq!(PoolError::Shutdown.to_string(), "Connection pool shutting down");
        assert!(PoolError::ResponseTimeout(Duration::from_millis(5), None).to_string().starts_with("Response timeout"));
        assert!(PoolError::ConnectionClosed("eof".into()).to_string().starts_with("Connection closed"));
        let e = PoolError::Connect { addr: "127.0.0.1:9876".into(), reason: "connection refused".into() };
        assert_eq!(
            e.to_string(),
            "Failed to connect to Blender: connection refused (127.0.0.1:9876): is Blender running with the MCP add-on's server started?"
        );
        let e = PoolError::invalid_response("not an object", b"[1]");
        assert!(e.to_string().starts_with("Invalid response structure from Blender. "));
        assert!(e.to_string().ends_with("got: [1]"));
    }
}
