//! The one-shot callback that answers a caller, and the guarantee that it always does.
//!
//! The pool is callback-driven (see `pool.rs` for why). A callback that is lost — dropped on an
//! error path nobody thought of, or by a panic unwinding a task — would leave a JavaScript
//! promise pending forever. [`Completion`] makes that impossible: dropping one that was never
//! completed answers it with `ERR_INTERNAL`.

use std::fmt;

use crate::error::PoolError;
use crate::framing::Reply;

type Callback<T> = Box<dyn FnOnce(Result<T, PoolError>, Option<u64>) + Send>;

/// A caller waiting for a `T` (a reply, a lease). Answered exactly once, with the id of the
/// connection that carried the request when there was one.
pub struct Completion<T: 'static> {
    callback: Option<Callback<T>>,
    conn: Option<u64>,
}

impl<T: 'static> Completion<T> {
    /// Wraps the function to call with the outcome.
    pub fn new(f: impl FnOnce(Result<T, PoolError>) + Send + 'static) -> Self {
        Self::with_connection(move |outcome, _| f(outcome))
    }

    /// Wraps the function to call with the outcome and the id of the connection the request
    /// was sent on (`None`: it was never sent).
    pub fn with_connection(f: impl FnOnce(Result<T, PoolError>, Option<u64>) + Send + 'static) -> Self {
        Completion { callback: Some(Box::new(f)), conn: None }
    }

    /// The request is being sent on connection `conn`.
    pub(crate) fn served_by(&mut self, conn: u64) {
        self.conn = Some(conn);
    }

    /// Answers the caller.
    pub fn complete(mut self, outcome: Result<T, PoolError>) {
        if let Some(f) = self.callback.take() {
            f(outcome, self.conn);
        }
    }

    /// Answers the caller, naming the connection (when this completion wraps another's).
    pub(crate) fn complete_on(mut self, outcome: Result<T, PoolError>, conn: Option<u64>) {
        self.conn = conn.or(self.conn);
        self.complete(outcome);
    }
}

impl Completion<String> {
    /// A completion for a [`Reply`] that answers this one with the reply's text.
    pub(crate) fn of_reply_text(self) -> Completion<Reply> {
        Completion::with_connection(move |outcome: Result<Reply, PoolError>, conn| {
            self.complete_on(outcome.map(Reply::into_string), conn)
        })
    }
}

impl<T: 'static> Drop for Completion<T> {
    fn drop(&mut self) {
        if let Some(f) = self.callback.take() {
            f(Err(PoolError::Internal("the request was dropped without an answer".into())), self.conn);
        }
    }
}

impl<T: 'static> fmt::Debug for Completion<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion").field("pending", &self.callback.is_some()).field("conn", &self.conn).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_dropped_completion_answers_with_an_internal_error() {
        let (tx, rx) = mpsc::channel();
        drop(Completion::<u8>::new(move |r| tx.send(r).unwrap()));
        assert_eq!(rx.recv().unwrap().unwrap_err().code(), "ERR_INTERNAL");
    }

    #[test]
    fn the_connection_that_carried_the_request_is_reported_through_wrappers() {
        let (tx, rx) = mpsc::channel();
        let inner = Completion::with_connection(move |r, conn| tx.send((r, conn)).unwrap());
        let mut outer = Completion::with_connection(move |r, conn| inner.complete_on(r, conn));
        outer.served_by(7);
        outer.complete(Ok(1u8));
        assert_eq!(rx.recv().unwrap(), (Ok(1), Some(7)));
    }

    #[test]
    fn a_completed_completion_answers_once() {
        let (tx, rx) = mpsc::channel();
        Completion::new(move |r| tx.send(r).unwrap()).complete(Ok(7u8));
        assert_eq!(rx.recv().unwrap(), Ok(7));
        assert!(rx.recv().is_err(), "no second answer");
    }
}
