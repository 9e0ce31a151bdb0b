//! Counters and latency histograms since the pool started, for dashboards and alerts.
//!
//! Everything is a relaxed atomic: recording costs a few uncontended increments per call, and a
//! snapshot may be a hair out of date, which metrics tolerate. Latencies go into log-linear
//! buckets (8 per power of two, so a percentile is within ~9% of the truth) from 1 µs to about
//! 2^33 µs (2.4 h); no sample is ever stored.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::PoolError;

/// Sub-buckets per power of two.
const SUB: usize = 8;
/// Powers of two covered, from 1 µs.
const POWERS: usize = 33;
const BUCKETS: usize = POWERS * SUB;

/// Every failure code, in the order `failures_by_code` reports them.
pub const FAILURE_CODES: [&str; 11] = [
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

/// A latency histogram with fixed log-linear buckets.
#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

/// The bucket of `micros`: 8 linear steps inside each power of two.
fn bucket_of(micros: u64) -> usize {
    let v = micros.max(1);
    let power = 63 - v.leading_zeros() as usize;
    let sub = if power >= 3 { ((v >> (power - 3)) & 7) as usize } else { ((v << (3 - power)) & 7) as usize };
    (power * SUB + sub).min(BUCKETS - 1)
}

/// The upper bound, in µs, of bucket `i`.
fn bucket_ceiling(i: usize) -> f64 {
    let power = i / SUB;
    let sub = i % SUB;
    (1u64 << power) as f64 * (1.0 + (sub as f64 + 1.0) / SUB as f64)
}

impl Histogram {
    pub(crate) fn record(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let _ = self.buckets[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
        let _ = self.count.fetch_add(1, Ordering::Relaxed);
        let _ = self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn snapshot(&self) -> LatencySummary {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let quantile = |q: f64| -> f64 {
            if total == 0 {
                return 0.0;
            }
            let rank = ((q * total as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return bucket_ceiling(i) / 1000.0;
                }
            }
            bucket_ceiling(BUCKETS - 1) / 1000.0
        };
        LatencySummary {
            count: total,
            sum_ms: self.sum_micros.load(Ordering::Relaxed) as f64 / 1000.0,
            p50_ms: quantile(0.5),
            p90_ms: quantile(0.9),
            p99_ms: quantile(0.99),
        }
    }
}

/// Percentiles of one latency, in ms (each the upper bound of its bucket: within ~9%).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LatencySummary {
    /// Samples recorded.
    pub count: u64,
    /// Sum of all samples, ms.
    pub sum_ms: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

/// The pool's counters and histograms.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) requests: AtomicU64,
    pub(crate) successes: AtomicU64,
    failures: [AtomicU64; FAILURE_CODES.len()],
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
    /// Records how a request ended, `took` after it was submitted.
    pub(crate) fn request_ended(&self, outcome: Result<(), &PoolError>, took: Duration) {
        match outcome {
            Ok(()) => bump(&self.successes),
            Err(e) => {
                let i = FAILURE_CODES.iter().position(|c| *c == e.code()).unwrap_or(FAILURE_CODES.len() - 1);
                bump(&self.failures[i]);
            }
        }
        self.execute.record(took);
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let failures: Vec<(&'static str, u64)> =
            FAILURE_CODES.iter().zip(&self.failures).map(|(c, n)| (*c, n.load(Ordering::Relaxed))).collect();
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

impl MetricsSnapshot {
    /// The snapshot in Prometheus' text exposition format (version 0.0.4), names prefixed
    /// `blender_mcp_pool_`; latencies are summaries in seconds.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP blender_mcp_pool_{name} {help}");
            let _ = writeln!(out, "# TYPE blender_mcp_pool_{name} counter");
            let _ = writeln!(out, "blender_mcp_pool_{name} {value}");
        };
        counter("requests_total", "Commands submitted.", self.requests);
        counter("successes_total", "Commands answered with a valid reply.", self.successes);
        counter("connects_total", "Connections opened.", self.connects);
        counter("connect_failures_total", "Connect attempts that failed.", self.connect_failures);
        counter("connect_retries_total", "Connect attempts made as retries.", self.retries);
        counter("timeouts_total", "Pool and response timeouts.", self.timeouts);
        counter("waits_total", "Calls that waited for a connection.", self.waits);
        counter("aborts_total", "Calls aborted by their AbortSignal.", self.aborts);
        let _ = writeln!(out, "# HELP blender_mcp_pool_failures_total Failed commands by error code.");
        let _ = writeln!(out, "# TYPE blender_mcp_pool_failures_total counter");
        for (code, n) in &self.failures_by_code {
            let _ = writeln!(out, "blender_mcp_pool_failures_total{{code=\"{code}\"}} {n}");
        }
        for (name, help, s) in [
            ("execute_seconds", "Time from submitting a command to its outcome.", &self.execute),
            ("wait_seconds", "Time spent waiting for a connection.", &self.wait),
        ] {
            let _ = writeln!(out, "# HELP blender_mcp_pool_{name} {help}");
            let _ = writeln!(out, "# TYPE blender_mcp_pool_{name} summary");
            for (q, v) in [("0.5", s.p50_ms), ("0.9", s.p90_ms), ("0.99", s.p99_ms)] {
                let _ = writeln!(out, "blender_mcp_pool_{name}{{quantile=\"{q}\"}} {}", v / 1000.0);
            }
            let _ = writeln!(out, "blender_mcp_pool_{name}_sum {}", s.sum_ms / 1000.0);
            let _ = writeln!(out, "blender_mcp_pool_{name}_count {}", s.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_within_a_ninth() {
        let mut last = 0;
        for micros in [1u64, 2, 3, 7, 8, 9, 15, 16, 100, 1000, 12_345, 1 << 20, 1 << 32] {
            let b = bucket_of(micros);
            assert!(b >= last, "{micros}");
            last = b;
            let ceiling = bucket_ceiling(b);
            assert!(ceiling >= micros as f64, "{micros} -> {ceiling}");
            assert!(ceiling <= micros as f64 * 1.125 + 1.0, "{micros} -> {ceiling}");
        }
    }

    #[test]
    fn percentiles_come_from_the_recorded_samples() {
        let h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.snapshot();
        assert_eq!(s.count, 100);
        assert!((s.sum_ms - 5050.0).abs() < 1e-6);
        assert!(s.p50_ms >= 50.0 && s.p50_ms <= 50.0 * 1.13, "{s:?}");
        assert!(s.p90_ms >= 90.0 && s.p90_ms <= 90.0 * 1.13, "{s:?}");
        assert!(s.p99_ms >= 99.0 && s.p99_ms <= 99.0 * 1.13, "{s:?}");
    }

    #[test]
    fn failures_are_counted_by_code_and_exported_for_prometheus() {
        let m = Metrics::default();
        bump(&m.requests);
        bump(&m.requests);
        m.request_ended(Ok(()), Duration::from_millis(2));
        m.request_ended(Err(&PoolError::Aborted), Duration::from_millis(1));
        let s = m.snapshot();
        assert_eq!((s.requests, s.successes, s.aborts, s.timeouts), (2, 1, 1, 0));
        assert_eq!(s.failures_by_code.iter().find(|(c, _)| *c == "ABORT_ERR").unwrap().1, 1);
        let text = s.to_prometheus();
        assert!(text.contains("blender_mcp_pool_requests_total 2\n"));
        assert!(text.contains("blender_mcp_pool_failures_total{code=\"ABORT_ERR\"} 1\n"));
        assert!(text.contains("blender_mcp_pool_execute_seconds_count 2\n"));
        assert!(text.contains("# TYPE blender_mcp_pool_wait_seconds summary\n"));
    }
}
