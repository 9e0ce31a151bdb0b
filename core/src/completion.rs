//! The one-shot callback that answers a caller, and the guarantee that it always does.
//!
//! The pool is callback-driven (see `pool.rs` for why). A callback that is lost — dropped on an
//! error path nobody thought of, or by a panic unwinding a task — would leave a JavaScript
//! promise pending forever. [`Completion`] makes that impossible: dropping one that was never
//! completed answers it with `ERR_INTERNAL`.

use std::fmt;

use crate::error::PoolError;

type Callback<T> = Box<dyn FnOnce(Result<T, PoolError>) + Send>;

/// A caller waiting for a `T` (a reply, a lease). Answered exactly once.
pub struct Completion<T: 'static> {
    callback: Option<Callback<T>>,
}

impl<T: 'static> Completion<T> {
    /// Wraps the function to call with the outcome.
    pub fn new(f: impl FnOnce(Result<T, PoolError>) + Send + 'static) -> Self {
        Completion { callback: Some(Box::new(f)) }
    }

    /// Answers the caller.
    pub fn complete(mut self, outcome: Result<T, PoolError>) {
        if let Some(f) = self.callback.take() {
            f(outcome);
        }
    }
}

impl<T: 'static> Drop for Completion<T> {
    fn drop(&mut self) {
        if let Some(f) = self.callback.take() {
            f(Err(PoolError::Internal("the request was dropped without an answer".into())));
        }
    }
}

impl<T: 'static> fmt::Debug for Completion<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion").field("pending", &self.callback.is_some()).finish()
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
    fn a_completed_completion_answers_once() {
        let (tx, rx) = mpsc::channel();
        Completion::new(move |r| tx.send(r).unwrap()).complete(Ok(7u8));
        assert_eq!(rx.recv().unwrap(), Ok(7));
        assert!(rx.recv().is_err(), "no second answer");
    }
}
