//! The pool's metrics as Prometheus metric families, and their text exposition (format 0.0.4).
//!
//! Every sample carries a `pool` label (the pool's `name`), so several pools in a process, or
//! the pools of several processes, stay apart and can be summed. Counters are totals since the
//! pool started, latencies are histograms in seconds (cumulative `_bucket{le}`, `_sum`,
//! `_count`: a scraper can aggregate them and turn them into rates), and the gauges are the
//! connection counts at the moment of the snapshot.

use std::fmt::Write as _;

use super::histogram::{micros_to_seconds, LatencySummary};
use super::MetricsSnapshot;
use crate::stats::PoolStats;

/// Prefix of every metric name.
pub(crate) const PREFIX: &str = "blender_mcp_pool_";

/// What kind of metric a family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A total that only grows.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A distribution, as cumulative buckets.
    Histogram,
}

impl Kind {
    /// The name of the kind in the exposition's `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One sample of a family.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The full metric name (a histogram's `_bucket`, `_sum` and `_count` included).
    pub name: String,
    /// Labels, `pool` first.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
}

/// A metric family: a name, its help text and kind, and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The family's name, prefixed.
    pub name: String,
    /// One line of help.
    pub help: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Its samples.
    pub samples: Vec<Sample>,
}

/// Builds the families of one pool: its counters and latencies, and gauges from `stats`.
pub(crate) fn families(metrics: &MetricsSnapshot, stats: &PoolStats, pool: &str) -> Vec<Family> {
    let label = || vec![("pool", pool.to_owned())];
    let single = |name: &str, help: &'static str, kind: Kind, value: f64| {
        let name = format!("{PREFIX}{name}");
        Family { samples: vec![Sample { name: name.clone(), labels: label(), value }], name, help, kind }
    };
    let count = |n: u64| n as f64;
    let gauge = |n: usize| n as f64;
    let mut out = vec![
        single("requests_total", "Commands submitted.", Kind::Counter, count(metrics.requests)),
        single("successes_total", "Commands answered with a valid reply.", Kind::Counter, count(metrics.successes)),
        single("connects_total", "Connections opened.", Kind::Counter, count(metrics.connects)),
        single(
            "connect_failures_total",
            "Connect attempts that failed.",
            Kind::Counter,
            count(metrics.connect_failures),
        ),
        single("connect_retries_total", "Connect attempts made as retries.", Kind::Counter, count(metrics.retries)),
        single("waits_total", "Calls that waited for a connection.", Kind::Counter, count(metrics.waits)),
    ];
    let name = format!("{PREFIX}failures_total");
    out.push(Family {
        samples: metrics
            .failures_by_code
            .iter()
            .map(|(code, n)| Sample {
                name: name.clone(),
                labels: vec![("pool", pool.to_owned()), ("code", (*code).to_owned())],
                value: count(*n),
            })
            .collect(),
        name,
        help: "Failed commands by error code.",
        kind: Kind::Counter,
    });
    out.push(single(
        "connections_open",
        "Open connections, idle or in use.",
        Kind::Gauge,
        gauge(stats.total_connections),
    ));
    out.push(single("connections_idle", "Open connections that are free.", Kind::Gauge, gauge(stats.idle_connections)));
    out.push(single(
        "connections_busy",
        "Connections running a command or leased.",
        Kind::Gauge,
        gauge(stats.active_connections),
    ));
    out.push(single("connections_opening", "Connects in progress.", Kind::Gauge, gauge(stats.opening_connections)));
    out.push(single(
        "requests_pending",
        "Callers waiting for a connection.",
        Kind::Gauge,
        gauge(stats.pending_requests),
    ));
    out.push(histogram("execute_seconds", "Time from submitting a command to its outcome.", &metrics.execute, pool));
    out.push(histogram("wait_seconds", "Time callers spent waiting for a connection.", &metrics.wait, pool));
    out
}

fn histogram(name: &str, help: &'static str, s: &LatencySummary, pool: &str) -> Family {
    let name = format!("{PREFIX}{name}");
    let bucket = format!("{name}_bucket");
    let with_le = |le: String| vec![("pool", pool.to_owned()), ("le", le)];
    let mut samples: Vec<Sample> = s
        .buckets
        .iter()
        .map(|&(bound, n)| Sample {
            name: bucket.clone(),
            labels: with_le(micros_to_seconds(bound).to_string()),
            value: n as f64,
        })
        .collect();
    samples.push(Sample { name: bucket, labels: with_le("+Inf".to_owned()), value: s.count as f64 });
    samples.push(Sample {
        name: format!("{name}_sum"),
        labels: vec![("pool", pool.to_owned())],
        value: micros_to_seconds(s.sum_micros),
    });
    samples.push(Sample {
        name: format!("{name}_count"),
        labels: vec![("pool", pool.to_owned())],
        value: s.count as f64,
    });
    Family { name, help, kind: Kind::Histogram, samples }
}

/// The families in Prometheus' text exposition format, version 0.0.4.
pub(crate) fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
        for s in &f.samples {
            out.push_str(&s.name);
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", s.value);
        }
    }
    out
}

/// A label value as the exposition format spells it: `\`, `"` and newlines escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use std::time::Duration;

    #[test]
    fn every_sample_has_the_pool_label_and_histograms_are_cumulative() {
        let m = Metrics::default();
        m.request_ended(Ok(()), Duration::from_micros(288));
        m.request_ended(Ok(()), Duration::from_millis(30));
        let stats =
            PoolStats { total_connections: 2, idle_connections: 1, active_connections: 1, ..Default::default() };
        let text = render(&families(&m.snapshot(), &stats, "main \"one\""));
        assert!(text.contains("blender_mcp_pool_successes_total{pool=\"main \\\"one\\\"\"} 2\n"), "{text}");
        assert!(text.contains("# TYPE blender_mcp_pool_execute_seconds histogram\n"));
        assert!(text.contains("blender_mcp_pool_execute_seconds_bucket{pool=\"main \\\"one\\\"\",le=\"0.0005\"} 1\n"));
        assert!(text.contains("blender_mcp_pool_execute_seconds_bucket{pool=\"main \\\"one\\\"\",le=\"0.05\"} 2\n"));
        assert!(text.contains("blender_mcp_pool_execute_seconds_bucket{pool=\"main \\\"one\\\"\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("blender_mcp_pool_execute_seconds_sum{pool=\"main \\\"one\\\"\"} 0.030288\n"), "{text}");
        assert!(text.contains("blender_mcp_pool_connections_busy{pool=\"main \\\"one\\\"\"} 1\n"));
        assert!(text.contains("blender_mcp_pool_failures_total{pool=\"main \\\"one\\\"\",code=\"ERR_CONNECT\"} 0\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.contains("{pool=\""), "{line}");
        }
    }
}
