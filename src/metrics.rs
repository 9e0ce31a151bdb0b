//! JavaScript shapes of the pool's metrics: `getMetrics()` and the Prometheus families.

use napi_derive::napi;
use pool_core::{micros_to_ms, Family, LatencySummary, MetricsSnapshot};

/// One latency, in ms: count, sum, largest sample and percentiles (each the bound of a
/// histogram bucket, within 12.5% above the truth, never above the largest sample).
#[napi(object)]
#[derive(Debug)]
#[allow(missing_docs)]
pub struct JsLatency {
    pub count: f64,
    pub sum_ms: f64,
    pub max: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

impl From<LatencySummary> for JsLatency {
    fn from(s: LatencySummary) -> Self {
        JsLatency {
            count: s.count as f64,
            sum_ms: micros_to_ms(s.sum_micros),
            max: micros_to_ms(s.max_micros),
            p50: micros_to_ms(s.p50_micros),
            p90: micros_to_ms(s.p90_micros),
            p99: micros_to_ms(s.p99_micros),
        }
    }
}

/// `getMetrics()`: counters and latency percentiles since the pool started.
#[napi(object)]
#[derive(Debug)]
#[allow(missing_docs)]
pub struct JsMetrics {
    pub requests: f64,
    pub successes: f64,
    pub failures: std::collections::BTreeMap<String, f64>,
    pub connects: f64,
    pub connect_failures: f64,
    pub retries: f64,
    pub timeouts: f64,
    pub waits: f64,
    pub aborts: f64,
    pub execute_latency: JsLatency,
    pub wait_latency: JsLatency,
}

impl From<MetricsSnapshot> for JsMetrics {
    fn from(m: MetricsSnapshot) -> Self {
        JsMetrics {
            requests: m.requests as f64,
            successes: m.successes as f64,
            failures: m.failures_by_code.iter().map(|(c, n)| ((*c).to_owned(), *n as f64)).collect(),
            connects: m.connects as f64,
            connect_failures: m.connect_failures as f64,
            retries: m.retries as f64,
            timeouts: m.timeouts as f64,
            waits: m.waits as f64,
            aborts: m.aborts as f64,
            execute_latency: m.execute.into(),
            wait_latency: m.wait.into(),
        }
    }
}

/// One sample of a Prometheus family: its full name, labels and value.
#[napi(object)]
#[derive(Debug)]
#[allow(missing_docs)]
pub struct JsSample {
    pub name: String,
    pub labels: std::collections::HashMap<String, String>,
    pub value: f64,
}

/// One Prometheus metric family (what prom-client's `Metric.get()` describes).
#[napi(object)]
#[derive(Debug)]
#[allow(missing_docs)]
pub struct JsFamily {
    pub name: String,
    pub help: String,
    /// `counter`, `gauge` or `histogram`.
    #[napi(js_name = "type")]
    pub kind: String,
    pub samples: Vec<JsSample>,
}

impl From<Family> for JsFamily {
    fn from(f: Family) -> Self {
        JsFamily {
            name: f.name,
            help: f.help.to_owned(),
            kind: f.kind.as_str().to_owned(),
            samples: f
                .samples
                .into_iter()
                .map(|s| JsSample {
                    name: s.name,
                    labels: s.labels.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                    value: s.value,
                })
                .collect(),
        }
    }
}
