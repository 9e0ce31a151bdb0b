//! JavaScript shapes of the pool's configuration and statistics (metrics: `metrics.rs`).
//!
//! Types are checked in `lib/options.js` (where `typeof` lives, and where the options are listed
//! once: `__test__/api/options.spec.mjs` holds `JsPoolConfig` and `JsResolvedConfig` to that list);
//! values are checked by the core.

use napi_derive::napi;
use pool_core::{CallOptions, ConfigInput, EnvInput, PoolStats};

/// The options object of `new ConnectionPool(config)`, numbers in milliseconds.
#[napi(object)]
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub struct JsPoolConfig {
    /// The `pool` label of the metrics, and a field of the log records.
    pub name: Option<String>,
    pub host: Option<String>,
    pub port: Option<f64>,
    pub min_connections: Option<f64>,
    pub max_connections: Option<f64>,
    pub connection_timeout: Option<f64>,
    pub connect_retry_timeout: Option<f64>,
    pub idle_timeout: Option<f64>,
    pub max_requests_per_connection: Option<f64>,
    pub health_check_interval: Option<f64>,
    pub mutex_timeout: Option<f64>,
    pub socket_timeout: Option<f64>,
    pub max_response_bytes: Option<f64>,
    pub max_lifetime: Option<f64>,
    pub new_connection_settle: Option<f64>,
    /// `'json'` (default) or `'length-prefixed'`.
    pub framing: Option<String>,
}

impl From<JsPoolConfig> for ConfigInput {
    fn from(c: JsPoolConfig) -> Self {
        ConfigInput {
            name: c.name,
            host: c.host,
            port: c.port,
            min_connections: c.min_connections,
            max_connections: c.max_connections,
            connection_timeout: c.connection_timeout,
            connect_retry_timeout: c.connect_retry_timeout,
            idle_timeout: c.idle_timeout,
            max_requests_per_connection: c.max_requests_per_connection,
            health_check_interval: c.health_check_interval,
            mutex_timeout: c.mutex_timeout,
            socket_timeout: c.socket_timeout,
            max_response_bytes: c.max_response_bytes,
            max_lifetime: c.max_lifetime,
            new_connection_settle: c.new_connection_settle,
            framing: c.framing,
        }
    }
}

/// The environment variables the pool reads, taken from this JS context's `process.env`.
#[napi(object)]
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub struct JsPoolEnv {
    #[napi(js_name = "BLENDER_HOST")]
    pub blender_host: Option<String>,
    #[napi(js_name = "BLENDER_PORT")]
    pub blender_port: Option<String>,
    #[napi(js_name = "SOCKET_TIMEOUT")]
    pub socket_timeout: Option<String>,
    #[napi(js_name = "LOG_LEVEL")]
    pub log_level: Option<String>,
    #[napi(js_name = "LOG_FORMAT")]
    pub log_format: Option<String>,
}

impl From<&JsPoolEnv> for EnvInput {
    fn from(e: &JsPoolEnv) -> Self {
        EnvInput {
            blender_host: e.blender_host.clone(),
            blender_port: e.blender_port.clone(),
            socket_timeout: e.socket_timeout.clone(),
        }
    }
}

/// `getStats()`: the original's five fields first, then extras.
#[napi(object)]
#[derive(Debug)]
#[allow(missing_docs)]
pub struct JsPoolStats {
    pub total_connections: u32,
    pub active_connections: u32,
    pub idle_connections: u32,
    pub pending_requests: u32,
    pub total_requests: f64,
    pub opening_connections: u32,
    pub open_sockets: u32,
    pub failed_requests: f64,
    pub connections_opened: f64,
    pub connect_failures: f64,
}

impl From<PoolStats> for JsPoolStats {
    fn from(s: PoolStats) -> Self {
        JsPoolStats {
            total_connections: s.total_connections as u32,
            active_connections: s.active_connections as u32,
            idle_connections: s.idle_connections as u32,
            pending_requests: s.pending_requests as u32,
            total_requests: s.total_requests as f64,
            opening_connections: s.opening_connections as u32,
            open_sockets: s.open_sockets as u32,
            failed_requests: s.failed_requests as f64,
            connections_opened: s.connections_opened as f64,
            connect_failures: s.connect_failures as f64,
        }
    }
}

/// The resolved configuration, for `pool.config`.
#[napi(object)]
#[derive(Debug)]
#[allow(missing_docs)]
pub struct JsResolvedConfig {
    pub name: String,
    pub host: String,
    pub port: u32,
    pub min_connections: u32,
    pub max_connections: u32,
    pub connection_timeout: f64,
    pub connect_retry_timeout: f64,
    pub idle_timeout: f64,
    pub max_requests_per_connection: f64,
    pub health_check_interval: f64,
    pub mutex_timeout: f64,
    pub socket_timeout: f64,
    pub max_response_bytes: f64,
    /// 0 when connections are never retired for age.
    pub max_lifetime: f64,
    pub new_connection_settle: f64,
    pub framing: String,
}

impl From<&pool_core::PoolConfig> for JsResolvedConfig {
    fn from(c: &pool_core::PoolConfig) -> Self {
        JsResolvedConfig {
            name: c.name.clone(),
            host: c.host.clone(),
            port: c.port.into(),
            min_connections: c.min_connections as u32,
            max_connections: c.max_connections as u32,
            connection_timeout: c.connection_timeout.as_millis() as f64,
            connect_retry_timeout: c.connect_retry_timeout.as_millis() as f64,
            idle_timeout: c.idle_timeout.as_millis() as f64,
            max_requests_per_connection: c.max_requests_per_connection as f64,
            health_check_interval: c.health_check_interval.as_millis() as f64,
            mutex_timeout: c.mutex_timeout.as_millis() as f64,
            socket_timeout: c.socket_timeout.as_millis() as f64,
            max_response_bytes: c.max_response_bytes as f64,
            max_lifetime: c.max_lifetime.map_or(0.0, |d| d.as_millis() as f64),
            new_connection_settle: c.new_connection_settle.as_millis() as f64,
            framing: match c.framing {
                pool_core::framing::Framing::Json => "json".to_owned(),
                pool_core::framing::Framing::LengthPrefixed => "length-prefixed".to_owned(),
            },
        }
    }
}

/// Per-call options from the JavaScript `timeout` (ms, already checked to be positive).
pub(crate) fn call_options(timeout: Option<f64>) -> CallOptions {
    CallOptions { timeout: timeout.map(|ms| std::time::Duration::from_micros((ms * 1000.0).ceil() as u64)) }
}
