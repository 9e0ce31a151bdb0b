//! What a caller hands the pool: a [`Request`], its [`CallOptions`], and the [`CallId`] that
//! names the call afterwards (to cancel it).

use std::time::Duration;

use crate::completion::Completion;
use crate::framing::Reply;

/// Identifies one call (an execute or an acquire), so it can be cancelled.
pub type CallId = u64;

/// One command for Blender: its type (for logs) and the bytes to send.
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) command: String,
    pub(crate) bytes: Vec<u8>,
}

impl Request {
    /// A request whose body is the JSON text `json` (`{"type":...,"params":...}`); the pool
    /// frames it for the wire when it sends it. `command` is only used in logs: bodies are
    /// never logged.
    pub fn new(command: impl Into<String>, json: impl Into<String>) -> Self {
        Request { command: command.into(), bytes: json.into().into_bytes() }
    }

    /// The command type, as given.
    pub fn command(&self) -> &str {
        &self.command
    }
}

/// Options of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// The call's deadline, counted from the call. Past it, a call still waiting for a
    /// connection fails with `ERR_POOL_TIMEOUT` (nothing was sent) and a call in flight with
    /// `ERR_RESPONSE_TIMEOUT` (its connection is discarded). `socketTimeout` and
    /// `connectionTimeout` still apply.
    pub timeout: Option<Duration>,
}

/// What a caller asked for.
pub(crate) enum Job {
    /// Send a request, answer with the reply.
    Execute(Request, Completion<Reply>),
    /// Lease a connection: answered with its id (the pool's API wraps it in a `Lease`).
    Acquire(Completion<u64>),
}
