//! When to try connecting again after connects failed.
//!
//! Retries are paced for the whole pool, not per caller: while Blender is unreachable one probe
//! is in flight at a time, the next one after an exponentially growing, jittered delay that
//! never exceeds 250 ms while anyone waits. However many callers wait, Blender's port sees about
//! four attempts a second, callers that arrive during an outage wait for the next probe instead
//! of adding their own, and a Blender that comes back is used within about 250 ms. With nobody
//! waiting, the background top-up backs off much further (up to a minute).
//!
//! The back-off also remembers when the outage began and when its latest failed attempt
//! started: a caller is held for at most `connectRetryTimeout` of outage, and only fails once an
//! attempt made since it arrived has failed (see [`ConnectBackoff::gives_up`]).

use std::time::Duration;

use tokio::time::Instant;

use crate::error::PoolError;

/// First retry delay; doubled per consecutive failure.
const BASE: Duration = Duration::from_millis(50);
/// Longest delay between two probes while callers wait.
const MAX_RETRY: Duration = Duration::from_millis(250);
/// Longest delay between two background top-up attempts.
const MAX_TOP_UP: Duration = Duration::from_secs(60);

/// Consecutive connect failures and what follows from them.
#[derive(Debug)]
pub(crate) struct ConnectBackoff {
    failures: u32,
    last_error: Option<PoolError>,
    retry_at: Option<Instant>,
    /// When the first failure of this outage was seen.
    outage_since: Option<Instant>,
    /// When the latest failed attempt started.
    last_attempt: Option<Instant>,
    rng: u64,
}

impl Default for ConnectBackoff {
    fn default() -> Self {
        // Seeded per pool from the clock: pools restarted together must not retry in lockstep.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64);
        ConnectBackoff {
            failures: 0,
            last_error: None,
            retry_at: None,
            outage_since: None,
            last_attempt: None,
            rng: seed | 1,
        }
    }
}

impl ConnectBackoff {
    /// A connect attempt started at `started` failed at `now`: the next probe waits
    /// `50 ms * 2^(n-1)`, capped at 250 ms, with "equal jitter" (a random point in the upper
    /// half of that delay). Returns whether this failure began an outage.
    pub(crate) fn failed(&mut self, err: PoolError, started: Instant, now: Instant) -> bool {
        self.failures = self.failures.saturating_add(1);
        self.last_error = Some(err);
        let began = self.outage_since.is_none();
        let _ = self.outage_since.get_or_insert(now);
        self.last_attempt = Some(self.last_attempt.map_or(started, |t| t.max(started)));
        let full = doubled(BASE, self.failures).min(MAX_RETRY);
        let half = full / 2;
        let jitter = half.mul_f64(self.next_unit());
        self.retry_at = Some(now + half + jitter);
        began
    }

    /// A connect succeeded: Blender is back. Returns how long the outage lasted, if there was one.
    pub(crate) fn succeeded(&mut self, now: Instant) -> Option<Duration> {
        self.failures = 0;
        self.last_error = None;
        self.retry_at = None;
        self.last_attempt = None;
        self.outage_since.take().map(|since| now.saturating_duration_since(since))
    }

    /// Consecutive failed connects.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether a caller queued at `queued_at` has been held by this outage for `budget`, and an
    /// attempt made since it arrived has failed: it then fails with [`Self::last_error`].
    /// Counting from the later of its arrival and the outage's start means a caller that was
    /// waiting for a busy connection before Blender went away still gets its whole budget.
    pub(crate) fn gives_up(&self, queued_at: Instant, budget: Duration, now: Instant) -> bool {
        let tried_since_arrival = self.last_attempt.is_some_and(|t| t >= queued_at);
        tried_since_arrival && self.budget_end(queued_at, budget).is_some_and(|end| end <= now)
    }

    /// When a caller queued at `queued_at` has used its `budget` of this outage (`None`: no
    /// outage).
    pub(crate) fn budget_end(&self, queued_at: Instant, budget: Duration) -> Option<Instant> {
        self.outage_since.map(|since| since.max(queued_at) + budget)
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
    fn retry_delays_double_with_jitter_and_cap_at_250_ms() {
        let mut b = ConnectBackoff::default();
        let now = Instant::now();
        let mut previous_full = Duration::ZERO;
        for n in 1..=12u32 {
            let _ = b.failed(refused(), now, now);
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
        let t0 = Instant::now();
        assert!(b.failed(refused(), t0, t0), "the first failure begins an outage");
        assert!(!b.failed(refused(), t0, t0 + Duration::from_millis(5)), "the second does not");
        assert!(b.failing());
        assert_eq!(b.last_error().map(PoolError::code), Some("ERR_CONNECT"));
        assert_eq!(b.succeeded(t0 + Duration::from_millis(30)), Some(Duration::from_millis(30)));
        assert!(!b.failing());
        assert!(b.last_error().is_none() && b.retry_at().is_none());
        assert_eq!(b.budget_end(t0, Duration::from_secs(2)), None);
        assert_eq!(b.succeeded(t0), None, "no outage, nothing to report");
    }

    #[test]
    fn a_caller_gives_up_after_its_budget_once_an_attempt_since_its_arrival_failed() {
        let mut b = ConnectBackoff::default();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let budget = ms(2000);
        assert!(!b.gives_up(t0, budget, t0 + ms(5000)), "no outage: never");
        let _ = b.failed(refused(), t0, t0 + ms(1));
        // A caller queued before the outage counts from its start; one queued later, from its
        // own arrival.
        assert_eq!(b.budget_end(t0 - ms(500), budget), Some(t0 + ms(2001)));
        assert_eq!(b.budget_end(t0 + ms(700), budget), Some(t0 + ms(2700)));
        assert!(!b.gives_up(t0, budget, t0 + ms(2000)));
        assert!(b.gives_up(t0, budget, t0 + ms(2001)));
        // Arrived after the latest attempt started: waits for the next one to fail, whatever
        // the budget (a zero budget means "one attempt").
        assert!(!b.gives_up(t0 + ms(700), Duration::ZERO, t0 + ms(9000)));
        let _ = b.failed(refused(), t0 + ms(800), t0 + ms(801));
        assert!(b.gives_up(t0 + ms(700), Duration::ZERO, t0 + ms(801)));
    }

    #[test]
    fn top_up_delay_never_undercuts_the_interval() {
        let mut b = ConnectBackoff::default();
        let interval = Duration::from_millis(20);
        assert_eq!(b.top_up_delay(interval), interval);
        let now = Instant::now();
        let _ = b.failed(refused(), now, now);
        assert_eq!(b.top_up_delay(interval), Duration::from_millis(100));
        let _ = b.failed(refused(), now, now);
        assert_eq!(b.top_up_delay(interval), Duration::from_millis(200));
        assert_eq!(b.top_up_delay(Duration::from_secs(30)), Duration::from_secs(30));
    }
}
