//! Latency histograms: fine log-linear buckets for percentiles, and the fixed buckets a
//! Prometheus histogram exports.
//!
//! Recording is a few relaxed atomic increments; no sample is stored. The fine buckets (8 per
//! power of two from 1 µs to about 2^33 µs) give percentiles within ~12.5% above the truth,
//! never above the largest sample seen. The fixed buckets are cumulative counts a scraper can
//! sum across processes and turn into rates, which percentiles cannot be.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two.
const SUB: usize = 8;
/// Powers of two covered, from 1 µs.
const POWERS: usize = 33;
const FINE: usize = POWERS * SUB;

/// Upper bounds, in µs, of the exported buckets: Blender calls last from 100 µs (a small
/// command on loopback) to minutes (imports, renders). `+Inf` follows.
pub(crate) const EXPORTED_BUCKETS_MICROS: [u64; 21] = [
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    120_000_000,
    300_000_000,
    600_000_000,
];

/// A latency histogram.
#[derive(Debug)]
pub(crate) struct Histogram {
    fine: Box<[AtomicU64]>,
    /// Samples per exported bucket (not cumulative; past the last bound: counted in `count` only).
    exported: [AtomicU64; EXPORTED_BUCKETS_MICROS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    max_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            fine: (0..FINE).map(|_| AtomicU64::new(0)).collect(),
            exported: Default::default(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
            max_micros: AtomicU64::new(0),
        }
    }
}

/// The fine bucket of `micros`: 8 linear steps inside each power of two.
fn fine_bucket_of(micros: u64) -> usize {
    let v = micros.max(1);
    let power = 63 - v.leading_zeros() as usize;
    let sub = if power >= 3 { ((v >> (power - 3)) & 7) as usize } else { ((v << (3 - power)) & 7) as usize };
    (power * SUB + sub).min(FINE - 1)
}

/// The upper bound of fine bucket `i`, in whole µs (rounded up).
fn fine_ceiling(i: usize) -> u64 {
    let power = i / SUB;
    let sub = (i % SUB) as u64;
    // 2^power * (1 + (sub + 1) / 8), rounded up.
    ((1u64 << power) * (SUB as u64 + sub + 1)).div_ceil(SUB as u64)
}

impl Histogram {
    pub(crate) fn record(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let _ = self.fine[fine_bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
        if let Some(i) = EXPORTED_BUCKETS_MICROS.iter().position(|&bound| micros <= bound) {
            let _ = self.exported[i].fetch_add(1, Ordering::Relaxed);
        }
        let _ = self.count.fetch_add(1, Ordering::Relaxed);
        let _ = self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        let _ = self.max_micros.fetch_max(micros, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> LatencySummary {
        let fine: Vec<u64> = self.fine.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = fine.iter().sum();
        let max = self.max_micros.load(Ordering::Relaxed);
        // The bound of the bucket holding the rank-th sample, never past the largest sample.
        let quantile = |q: f64| -> u64 {
            if total == 0 {
                return 0;
            }
            let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
            let mut seen = 0;
            let i = fine.iter().position(|c| {
                seen += c;
                seen >= rank
            });
            i.map_or(max, fine_ceiling).min(max)
        };
        let mut cumulative = 0;
        let buckets = EXPORTED_BUCKETS_MICROS
            .iter()
            .zip(&self.exported)
            .map(|(&bound, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (bound, cumulative)
            })
            .collect();
        LatencySummary {
            count: total,
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
            max_micros: max,
            p50_micros: quantile(0.5),
            p90_micros: quantile(0.9),
            p99_micros: quantile(0.99),
            buckets,
        }
    }
}

/// One latency, summarised. Whole microseconds: the values divide into ms or seconds exactly
/// once, so they print without float noise.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LatencySummary {
    /// Samples recorded.
    pub count: u64,
    /// Sum of all samples.
    pub sum_micros: u64,
    /// The largest sample.
    pub max_micros: u64,
    /// Median: the upper bound of its fine bucket (within 12.5%), at most `max_micros`.
    pub p50_micros: u64,
    /// 90th percentile, as `p50_micros`.
    pub p90_micros: u64,
    /// 99th percentile, as `p50_micros`.
    pub p99_micros: u64,
    /// Cumulative sample counts at each of [`EXPORTED_BUCKETS_MICROS`]: `(upper bound, count)`.
    pub buckets: Vec<(u64, u64)>,
}

/// `micros` in milliseconds, by one division (so 288 µs is exactly `0.288`).
pub fn micros_to_ms(micros: u64) -> f64 {
    micros as f64 / 1e3
}

/// `micros` in seconds, by one division (so 288 µs is exactly `0.000288`).
pub(crate) fn micros_to_seconds(micros: u64) -> f64 {
    micros as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fine_buckets_are_monotonic_and_bound_their_samples_within_an_eighth() {
        let mut last = 0;
        for micros in [1u64, 2, 3, 7, 8, 9, 15, 16, 100, 1000, 12_345, 1 << 20, 1 << 32] {
            let b = fine_bucket_of(micros);
            assert!(b >= last, "{micros}");
            last = b;
            let ceiling = fine_ceiling(b);
            assert!(ceiling >= micros, "{micros} -> {ceiling}");
            assert!(ceiling as f64 <= micros as f64 * 1.125 + 1.0, "{micros} -> {ceiling}");
        }
    }

    #[test]
    fn percentiles_come_from_the_samples_and_never_exceed_the_largest() {
        let h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.snapshot();
        assert_eq!((s.count, s.sum_micros, s.max_micros), (100, 5_050_000, 100_000));
        assert!(s.p50_micros >= 50_000 && s.p50_micros <= 56_250, "{s:?}");
        assert!(s.p90_micros >= 90_000 && s.p90_micros <= 101_250, "{s:?}");
        // 99 ms lands in the bucket up to 104 ms: clamped to the largest sample.
        assert_eq!(s.p99_micros, 100_000);
        let one = Histogram::default();
        one.record(Duration::from_micros(288));
        let s = one.snapshot();
        assert_eq!((s.p50_micros, s.p99_micros), (288, 288), "a single sample is its own percentile");
        assert_eq!(micros_to_ms(s.p50_micros).to_string(), "0.288");
        assert_eq!(micros_to_seconds(s.p50_micros).to_string(), "0.000288");
    }

    #[test]
    fn exported_buckets_are_cumulative_and_inclusive_of_their_bound() {
        let h = Histogram::default();
        for micros in [50, 100, 101, 1_000_000, 700_000_000] {
            h.record(Duration::from_micros(micros));
        }
        let s = h.snapshot();
        let at = |bound: u64| s.buckets.iter().find(|(b, _)| *b == bound).unwrap().1;
        assert_eq!(at(100), 2, "le=0.0001 holds 50 µs and 100 µs");
        assert_eq!(at(250), 3);
        assert_eq!(at(1_000_000), 4);
        assert_eq!(at(600_000_000), 4, "700 s is only in +Inf");
        assert_eq!(s.count, 5);
    }
}
