//! Whether a connection is in step: every byte it receives is the reply to the request written
//! on it, and every request written on it follows the previous reply.
//!
//! The add-on's protocol has no request ids: a reply is whatever document comes next. So the
//! only way to tell a reply from bytes nobody asked for is *when* they came, relative to the
//! request's write. The writer (any thread) and the reader (the I/O thread, or a watcher's)
//! share where the request stands:
//!
//! `None -> Writing` (the writer, before its first byte) `-> Written` (its last byte handed to
//! the socket) `-> None` (the reader, at the reply's end). A write that would block goes
//! `Writing -> Queued` before the connection's task is given the rest, and `Queued -> Written`
//! once the task wrote it.
//!
//! `Writing` is short: the writer is inside a loop of non-blocking writes, and leaves it
//! `Written` or `Queued`. A reply found then may well answer a request already all in the
//! socket (a fast server replies before the writer's thread records it), so the reader waits
//! for the writer to leave `Writing` before it judges. `Queued` means bytes are unwritten.
//!
//! A connection that proves out of step becomes `OutOfStep` for good, and nothing more is
//! written on it:
//! - a reply that began while its request was still being written: the server answered
//!   without reading it all, and the rest would land in whatever it reads next;
//! - bytes read while no request had been started (a greeting, a second document): they came
//!   before any request, so they are no one's reply. The reader reads the state *after* its
//!   read, which is what makes this proof and not a guess. Bytes that arrived just before a
//!   write began but are read after it cannot be told from a fast reply: that race is what the
//!   settle of a new connection (`socket.rs`) and the peek before every hand-over
//!   (`state.rs`'s `Probe`) narrow.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::error::PoolError;
use crate::reader::Verdict;

/// Where the request of a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Req {
    /// No request since the last reply ended.
    None = 0,
    /// A request is being written, by a loop of non-blocking writes.
    Writing = 1,
    /// Part of a request is written; the rest waits for the socket, with the connection's task.
    Queued = 2,
    /// A request is written; its reply is awaited.
    Written = 3,
    /// Out of step for good: nothing more is written on it.
    OutOfStep = 4,
}

/// A connection's [`Req`], shared by its writer and its reader.
#[derive(Debug, Default)]
pub(crate) struct InStep {
    request: AtomicU8,
    /// The reply in progress began arriving while its request was still being written. Only
    /// touched by the reader (with the connection's reader locked).
    replied_early: AtomicBool,
}

impl InStep {
    fn get(&self) -> Req {
        match self.request.load(Ordering::Acquire) {
            0 => Req::None,
            1 => Req::Writing,
            2 => Req::Queued,
            3 => Req::Written,
            _ => Req::OutOfStep,
        }
    }

    fn set(&self, to: Req) {
        self.request.store(to as u8, Ordering::Release);
    }

    /// Moves from `from` to `to`; returns what it found (the move happened if it is `from`).
    fn shift(&self, from: Req, to: Req) -> Req {
        match self.request.compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => from,
            Err(_) => self.get(),
        }
    }

    /// A request is about to be written: allowed only between requests on a connection in
    /// step. Refused otherwise, before a byte is written: two requests' bytes never
    /// interleave, and none follows bytes nobody asked for.
    pub(crate) fn begin_write(&self) -> Result<(), PoolError> {
        match self.shift(Req::None, Req::Writing) {
            Req::None => Ok(()),
            Req::OutOfStep => Err(PoolError::ConnectionClosed(
                "the request was not sent: bytes nobody asked for arrived on its connection first".into(),
            )),
            Req::Writing | Req::Queued | Req::Written => {
                Err(PoolError::Internal("a request was started on a connection still serving another".into()))
            }
        }
    }

    /// The socket is full: the rest of the request goes to the connection's task. Called
    /// before the task is handed the bytes, so it cannot finish them first.
    pub(crate) fn queue_rest(&self) {
        let _ = self.shift(Req::Writing, Req::Queued);
    }

    /// The request's last byte is written (by the writer, or by the task).
    pub(crate) fn end_write(&self) {
        if self.shift(Req::Writing, Req::Written) != Req::Writing {
            let _ = self.shift(Req::Queued, Req::Written);
        }
    }

    /// Writing the request failed: the connection is done for (and no reader waits on it).
    pub(crate) fn write_failed(&self) {
        self.set(Req::OutOfStep);
    }

    /// Where the request stands once its writer is out of its loop of non-blocking writes
    /// (see the module's doc): waited for, as that loop never blocks.
    fn settled(&self) -> Req {
        let mut spins = 0u32;
        loop {
            match self.get() {
                Req::Writing if spins < 64 => {
                    spins += 1;
                    std::hint::spin_loop();
                }
                // Its thread may have been preempted: let it run.
                Req::Writing => std::thread::yield_now(),
                state => return state,
            }
        }
    }

    /// What the reader of connection `conn` found, judged by where its request stands; the
    /// verdict comes back adjusted. `buffered`: bytes of a document held by the reader. Called
    /// right after the read (see the module's doc for why after).
    pub(crate) fn judge(&self, conn: u64, verdict: Verdict, buffered: usize) -> Verdict {
        match verdict {
            Verdict::Reply { outcome, reusable } => {
                let early = self.replied_early.swap(false, Ordering::Relaxed);
                let state = match self.settled() {
                    Req::None => self.shift(Req::None, Req::OutOfStep),
                    state => state,
                };
                match state {
                    Req::None => Verdict::Failed(match outcome {
                        Ok(reply) => PoolError::invalid_response(unasked(reply.len()), reply.as_bytes()),
                        // Not a reply at all: its own error says more.
                        Err(err) => err,
                    }),
                    Req::Written if !early => {
                        self.set(if reusable { Req::None } else { Req::OutOfStep });
                        Verdict::Reply { outcome, reusable }
                    }
                    // The reply is the caller's (it came after the request began), but the
                    // connection is not in step any more.
                    Req::Written | Req::Writing | Req::Queued | Req::OutOfStep => {
                        self.set(Req::OutOfStep);
                        if reusable {
                            tracing::debug!(conn, "the reply began before its request was fully written");
                        }
                        Verdict::Reply { outcome, reusable: false }
                    }
                }
            }
            Verdict::Pending { stray: Some(err) } => match self.settled() {
                Req::None if self.shift(Req::None, Req::OutOfStep) == Req::None => {
                    Verdict::Failed(unasked_error(err, buffered))
                }
                Req::Queued => {
                    self.replied_early.store(true, Ordering::Relaxed);
                    Verdict::Pending { stray: Some(err) }
                }
                _ => Verdict::Pending { stray: Some(err) },
            },
            other => other,
        }
    }
}

/// Why `n` bytes that arrived on a connection while no request was being sent fail it.
fn unasked(n: usize) -> String {
    format!(
        "{n} bytes arrived while no request was being sent (a greeting, or a reply nobody asked for): \
         the connection is out of step, and a request about to be sent on it was not sent"
    )
}

/// [`unasked`] as the error, keeping the sample of the reader's own error about the bytes.
fn unasked_error(err: PoolError, n: usize) -> PoolError {
    match err {
        PoolError::InvalidResponse { sample, .. } => PoolError::InvalidResponse { reason: unasked(n), sample },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: &str) -> Verdict {
        Verdict::Reply { outcome: Ok(text.into()), reusable: true }
    }

    fn stray(n: usize) -> Verdict {
        Verdict::Pending { stray: Some(PoolError::invalid_response(format!("{n} bytes"), &b"{\"gre"[..n])) }
    }

    fn reusable(v: &Verdict) -> Option<bool> {
        match v {
            Verdict::Reply { reusable, .. } => Some(*reusable),
            _ => None,
        }
    }

    #[test]
    fn a_reply_after_its_request_was_written_keeps_the_connection_and_allows_the_next() {
        let s = InStep::default();
        s.begin_write().unwrap();
        s.end_write();
        assert_eq!(reusable(&s.judge(1, reply("{}"), 0)), Some(true));
        s.begin_write().expect("the next request may go");
    }

    #[test]
    fn a_reply_while_part_of_its_request_is_unwritten_ends_the_connection() {
        let s = InStep::default();
        s.begin_write().unwrap();
        s.queue_rest();
        assert_eq!(reusable(&s.judge(1, reply("{}"), 0)), Some(false), "the caller gets it; the connection goes");
        s.end_write();
        assert_eq!(s.begin_write().unwrap_err().code(), "ERR_CONNECTION_CLOSED", "nothing more is written");
    }

    #[test]
    fn a_reply_that_began_while_part_of_its_request_was_unwritten_ends_the_connection() {
        let s = InStep::default();
        s.begin_write().unwrap();
        s.queue_rest();
        assert!(matches!(s.judge(1, stray(3), 3), Verdict::Pending { .. }));
        s.end_write();
        assert_eq!(reusable(&s.judge(1, reply("{}"), 0)), Some(false));
    }

    #[test]
    fn a_reply_found_while_the_writer_is_still_in_its_loop_waits_for_it() {
        // The request is all in the socket, and the reply read, before the writer's thread
        // records it: the reader waits for the writer, and the connection stays in step.
        let s = std::sync::Arc::new(InStep::default());
        s.begin_write().unwrap();
        let writer = {
            let s = s.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                s.end_write();
            })
        };
        assert_eq!(reusable(&s.judge(1, reply("{}"), 0)), Some(true));
        writer.join().unwrap();
        s.begin_write().expect("the next request may go");
    }

    #[test]
    fn bytes_before_any_request_fail_the_connection_and_refuse_the_request_about_to_be_written() {
        for early in [stray(5), reply("{\"status\":\"success\"}")] {
            let s = InStep::default();
            match s.judge(1, early, 5) {
                Verdict::Failed(PoolError::InvalidResponse { reason, .. }) => {
                    assert!(reason.contains("while no request was being sent"), "{reason}")
                }
                other => panic!("{other:?}"),
            }
            let refused = s.begin_write().unwrap_err();
            assert!(refused.to_string().contains("the request was not sent"), "{refused}");
        }
    }

    #[test]
    fn a_second_request_is_never_started_while_one_is_being_written_or_awaited() {
        let s = InStep::default();
        s.begin_write().unwrap();
        assert_eq!(s.begin_write().unwrap_err().code(), "ERR_INTERNAL");
        s.end_write();
        assert_eq!(s.begin_write().unwrap_err().code(), "ERR_INTERNAL");
    }

    #[test]
    fn whitespace_and_closes_pass_through_unjudged() {
        let s = InStep::default();
        assert!(matches!(s.judge(1, Verdict::Pending { stray: None }, 0), Verdict::Pending { stray: None }));
        assert!(matches!(s.judge(1, Verdict::Closed, 0), Verdict::Closed));
        s.begin_write().expect("still in step");
    }
}
