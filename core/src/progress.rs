//! Where a call stands while it waits: for progress reports to a caller whose own caller (an
//! MCP client) gives up on silence, and for naming the command that keeps Blender busy.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::Busy;

/// The stage a call is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallPhase {
    /// Queued: every connection is busy (or being opened).
    Waiting,
    /// Sent; no byte of the reply yet. Blender is running the command, or another before it.
    Sent,
    /// The reply is arriving.
    Receiving,
}

impl CallPhase {
    /// Its name, as the JavaScript `onProgress` info gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            CallPhase::Waiting => "waiting",
            CallPhase::Sent => "sent",
            CallPhase::Receiving => "receiving",
        }
    }
}

/// A snapshot of a call in progress ([`crate::Pool::progress`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallProgress {
    /// Its stage.
    pub phase: CallPhase,
    /// How long it has been at that stage.
    pub in_phase: Duration,
    /// Bytes of its reply received so far.
    pub bytes_received: usize,
    /// The command keeping Blender busy ahead of it, if one is (never while receiving).
    pub busy: Option<Busy>,
}

/// What the state machine knows of a call: its stage, since when, on which connection.
#[derive(Debug)]
pub(crate) struct CallState {
    pub(crate) phase: CallPhase,
    pub(crate) since: Instant,
    pub(crate) conn: Option<u64>,
    pub(crate) busy: Option<Busy>,
}
