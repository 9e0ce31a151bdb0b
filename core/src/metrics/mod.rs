//! Counters and latency histograms since the pool started, for dashboards and alerts.
//!
//! Everything is a relaxed atomic: recording costs a few uncontended increments per call, and a
//! snapshot may be a hair out of date, which metrics tolerate. See [`histogram`] for latencies
//! and [`prometheus`] for the exposition.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::PoolError;

pub(crate) mod histogram;
pub(crate) mod prometheus;

pub(crate) use histogram::Histogram;
pub use histogram::LatencySummary;

/// The pool's counters and histograms. Failures are counted by code, in the order of
/// [`PoolError::CODES`].
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) requests: AtomicU64,
    pub(crate) successes: AtomicU64,
    /// Requests that failed after being sent (their connection was discarded).
    pub(crate) failed_after_send: AtomicU64,
    failures: [AtomicU64; PoolError::CODES.len()],
    pub(crate) connects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) waits: AtomicU64,
    pub(crate) execute: Histogram,
    pub(crate) wait: Histogram,
}

pub(crate) fn bump(counter: &AtomicU64) {
    let _ = counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// Adds what a transition counted.
    pub(crate) fn add(&self, tally: &crate::effects::Tally) {
        for (counter, n) in [
            (&self.failed_after_send, tally.failed),
            (&self.waits, tally.waits),
            (&self.connects, tally.connects),
            (&self.connect_failures, tally.connect_failures),
            (&self.retries, tally.retries),
        ] {
            if n > 0 {
                let _ = counter.fetch_add(n, Ordering::Relaxed);
            }
        }
        for waited in &tally.waited {
            self.wait.record(*waited);
        }
    }

    /// Records how a request ended, `took` after it was submitted.
    pub(crate) fn request_ended(&self, outcome: Result<(), &PoolError>, took: Duration) {
        match outcome {
            Ok(()) => bump(&self.successes),
            Err(e) => {
                let i =
                    PoolError::CODES.iter().position(|c| *c == e.code()).expect("every code is in PoolError::CODES");
                bump(&self.failures[i]);
            }
        }
        self.execute.record(took);
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let failures: Vec<(&'static str, u64)> =
            PoolError::CODES.iter().zip(&self.failures).map(|(c, n)| (*c, n.load(Ordering::Relaxed))).collect();
        let code = |name: &str| failures.iter().find(|(c, _)| *c == name).map_or(0, |(_, n)| *n);
        MetricsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            successes: self.successes.load(Ordering::Relaxed),
            timeouts: code("ERR_RESPONSE_TIMEOUT") + code("ERR_POOL_TIMEOUT"),
            aborts: code("ABORT_ERR"),
            failures_by_code: failures,
            connects: self.connects.load(Ordering::Relaxed),
            connect_failures: self.connect_failures.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            waits: self.waits.load(Ordering::Relaxed),
            execute: self.execute.snapshot(),
            wait: self.wait.snapshot(),
        }
    }
}

/// `getMetrics()`: everything counted since the pool started.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricsSnapshot {
    /// Commands submitted (execute and lease commands).
    pub requests: u64,
    /// Commands answered with a valid reply (a `status: "error"` reply included).
    pub successes: u64,
    /// Failed commands by error code (every code listed, zeros included).
    pub failures_by_code: Vec<(&'static str, u64)>,
    /// Connections opened.
    pub connects: u64,
    /// Connect attempts that failed.
    pub connect_failures: u64,
    /// Connect attempts made as retries while Blender was unreachable.
    pub retries: u64,
    /// `ERR_RESPONSE_TIMEOUT` plus `ERR_POOL_TIMEOUT`.
    pub timeouts: u64,
    /// Calls that had to wait in the queue for a connection.
    pub waits: u64,
    /// Calls aborted by their `AbortSignal`.
    pub aborts: u64,
    /// Time from submitting a command to its outcome.
    pub execute: LatencySummary,
    /// Time callers who had to wait spent waiting for a connection.
    pub wait: LatencySummary,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_by_code() {
        let m = Metrics::default();
        bump(&m.requests);
        bump(&m.requests);
        m.request_ended(Ok(()), Duration::from_millis(2));
        m.request_ended(Err(&PoolError::Aborted), Duration::from_millis(1));
        let s = m.snapshot();
        assert_eq!((s.requests, s.successes, s.aborts, s.timeouts), (2, 1, 1, 0));
        assert_eq!(s.failures_by_code.iter().find(|(c, _)| *c == "ABORT_ERR").unwrap().1, 1);
        assert_eq!(s.failures_by_code.len(), PoolError::CODES.len());
        assert_eq!((s.execute.count, s.execute.sum_micros), (2, 3000));
    }
}
