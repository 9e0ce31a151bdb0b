//! When to try connecting again after connects failed.
//!
//! Retries are paced for the whole pool, not per caller: while Blender is unreachable one probe
//! is in flight at a time, the next one after an exponentially growing, jittered delay. However
//! many callers wait, Blender's port sees a trickle (about ten attempts in the first 30 s), and
//! callers that arrive during an outage wait for the next probe instead of adding their own.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::PoolError;

/// First retry delay; doubled per consecutive failure.
const BASE: Duration = Duration::from_millis(50);
/// Longest delay between two probes for waiting callers.
const MAX_RETRY: Duration = Duration::from_secs(5);
/// Longest delay between two background top-up attempts.
const MAX_TOP_UP: Duration = Duration::from_secs(60);

/// Consecutive connect failures and what follows from them.
#[derive(Debug)]
pub(crate) struct ConnectBackoff {
    failures: u32,
    last_error: Option<PoolError>,
    retry_at: Option<Instant>,
    rng: u64,
}

impl Default for ConnectBackoff {
    fn default() -> Self {
        // Seeded per pool from the clock: pools restarted together must not retry in lockstep.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64);
        ConnectBackoff { failures: 0, last_error: None, retry_at: None, rng: seed | 1 }
    }
}

impl ConnectBackoff {
    /// A connect failed at `now`: the next probe waits `50 ms * 2^(n-1)`, capped at 5 s, with
    /// "equal jitter" (a random point in the upper half of that delay).
    pub(crate) fn failed(&mut self, err: PoolError, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        self.last_error = Some(err);
        let full = doubled(BASE, self.failures).min(MAX_RETRY);
        let half = full / 2;
        let jitter = half.mul_f64(self.next_unit());
        self.retry_at = Some(now + half + jitter);
    }

    /// A connect succeeded: Blender is back.
    pub(crate) fn succeeded(&mut self) {
        self.failures = 0;
        self.last_error = None;
        self.retry_at = None;
    }

    /// Whether connects are failing (so new ones go one at a time, after the delay).
    pub(crate) fn failing(&self) -> bool {
        self.failures > 0
    }

    /// When the next probe may start, while failing.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// The error of the last failed connect, while failing: what a caller who gave up waiting
    /// is told, since it explains the wait better than "no connection available".
    pub(crate) fn last_error(&self) -> Option<&PoolError> {
        self.last_error.as_ref()
    }

    /// Delay before the next background top-up: never sooner than the check interval, and
    /// `100 ms * 2^(n-1)` (up to a minute) while failing.
    pub(crate) fn top_up_delay(&self, interval: Duration) -> Duration {
        if self.failures == 0 {
            return interval;
        }
        doubled(BASE * 2, self.failures).min(MAX_TOP_UP).max(interval)
    }

    /// A number in `[0, 1)` from a xorshift generator: jitter needs no better randomness.
    fn next_unit(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `base * 2^(failures - 1)`, without overflow.
fn doubled(base: Duration, failures: u32) -> Duration {
    base.saturating_mul(1u32 << failures.saturating_sub(1).min(20))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> PoolError {
        PoolError::Connect { addr: "h:1".into(), reason: "refused".into() }
    }

    #[test]
    fn retry_delays_double_with_jitter_and_cap_at_five_seconds() {
        let mut b = ConnectBackoff::default();
        let now = Instant::now();
        let mut previous_full = Duration::ZERO;
        for n in 1..=12u32 {
            b.failed(refused(), now);
            let delay = b.retry_at().unwrap() - now;
            let full = doubled(BASE, n).min(MAX_RETRY);
            assert!(delay >= full / 2 && delay <= full, "failure {n}: {delay:?} not in [{:?}, {full:?}]", full / 2);
            assert!(full >= previous_full);
            previous_full = full;
        }
        assert_eq!(previous_full, MAX_RETRY);
    }

    #[test]
    fn success_resets_everything() {
        let mut b = ConnectBackoff::default();
        b.failed(refused(), Instant::now());
        assert!(b.failing());
        assert_eq!(b.last_error().map(PoolError::code), Some("ERR_CONNECT"));
        b.succeeded();
        assert!(!b.failing());
        assert!(b.last_error().is_none() && b.retry_at().is_none());
    }

    #[test]
    fn top_up_delay_never_undercuts_the_interval() {
        let mut b = ConnectBackoff::default();
        let interval = Duration::from_millis(20);
        assert_eq!(b.top_up_delay(interval), interval);
        b.failed(refused(), Instant::now());
        assert_eq!(b.top_up_delay(interval), Duration::from_millis(100));
        b.failed(refused(), Instant::now());
        assert_eq!(b.top_up_delay(interval), Duration::from_millis(200));
        assert_eq!(b.top_up_delay(Duration::from_secs(30)), Duration::from_secs(30));
    }
}
