//! What the state machine decided must happen, for the driver (`pool.rs`) to carry out once the
//! pool's lock is released: close, answer, grant, write, wake, connect, report shutdown done,
//! in that order. Connections are named by id; the driver holds their sockets.

use std::time::Duration;

use crate::completion::Completion;
use crate::error::PoolError;
use crate::framing::Reply;
use crate::request::Job;

/// The effects of one or more transitions, in the order they were decided.
#[derive(Default)]
#[must_use]
pub(crate) struct Effects {
    /// Connections to close, and why (the reason their close event reports).
    pub(crate) closes: Vec<(u64, &'static str)>,
    /// Callers of `execute` to answer.
    pub(crate) replies: Vec<(Completion<Reply>, Result<Reply, PoolError>)>,
    /// Callers of `acquire` to answer: the connection leased to them, or why not.
    pub(crate) grants: Vec<(Completion<u64>, Result<u64, PoolError>)>,
    /// Requests to write, framed, on a connection.
    pub(crate) sends: Vec<(u64, Vec<u8>)>,
    /// Connection tasks to wake: a call's deadline is earlier than their timer.
    pub(crate) wakes: Vec<u64>,
    /// Connects to start.
    pub(crate) connects: usize,
    /// Callers of `shutdown` to answer: every socket is closed.
    pub(crate) shutdown_done: Vec<Completion<()>>,
    /// Whether the maintenance task must look again (its next deadline moved earlier).
    pub(crate) wake_maintenance: bool,
    /// What to add to the metrics.
    pub(crate) tally: Tally,
}

/// Counts a transition adds to the metrics.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Requests that failed after being sent.
    pub(crate) failed: u64,
    /// Calls that had to wait for a connection.
    pub(crate) waits: u64,
    /// How long callers that had to wait waited, for those that got a connection.
    pub(crate) waited: Vec<Duration>,
    /// Connections opened.
    pub(crate) connects: u64,
    /// Connect attempts that failed.
    pub(crate) connect_failures: u64,
    /// Connect attempts made as retries.
    pub(crate) retries: u64,
}

impl Effects {
    /// Answers `job`'s caller with `err`.
    pub(crate) fn fail(&mut self, job: Job, err: PoolError) {
        match job {
            Job::Execute(_, done) => self.replies.push((done, Err(err))),
            Job::Acquire(done) => self.grants.push((done, Err(err))),
        }
    }
}
