//! Pool configuration: defaults, environment fallbacks and validation.
//!
//! Durations are typed here; they are converted from the JavaScript milliseconds once, in
//! [`PoolConfig::from_input`], so nothing past this file deals in raw numbers of ms.

use std::fmt;
use std::time::Duration;

use crate::framing::Framing;

/// The largest delay a JavaScript timer accepts (2^31 - 1 ms); we refuse anything above it so a
/// config that works here also means the same thing in the original pool.
const MAX_MS: f64 = 2_147_483_647.0;

/// A validated pool configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// The pool's name: the `pool` label of its metrics and a field of its log records.
    /// Default: `default`.
    pub name: String,
    /// Host of Blender's add-on server. Default: `BLENDER_HOST` or `localhost`.
    pub host: String,
    /// Port of Blender's add-on server. Default: `BLENDER_PORT` or 9876.
    pub port: u16,
    /// Connections kept open even when idle, opened in the background. Default: 1.
    pub min_connections: usize,
    /// Hard cap on open plus opening sockets. Default: 5.
    pub max_connections: usize,
    /// Bounds one connect attempt that hangs, and how long a caller waits in the queue for a
    /// free connection. Default: 30 s.
    pub connection_timeout: Duration,
    /// How long a caller is held while Blender is unreachable (connects refused or failing):
    /// connects are retried meanwhile, then the call fails with `ERR_CONNECT`. Zero: the call
    /// fails with the first connect attempt made after it arrived. Default: 2 s.
    pub connect_retry_timeout: Duration,
    /// An idle connection above `min_connections` is closed after this long unused. Default: 60 s.
    pub idle_timeout: Duration,
    /// A connection is retired after serving this many requests. Default: 1000.
    pub max_requests_per_connection: u64,
    /// Period of the housekeeping task (top-up to `min_connections`). Default: 30 s.
    pub health_check_interval: Duration,
    /// Accepted for compatibility with the original pool, which guarded its state with an async
    /// mutex. This pool has no such mutex, so the value is unused. Default: 30 s.
    pub mutex_timeout: Duration,
    /// Reply timeout, restarted whenever bytes arrive. Default: `SOCKET_TIMEOUT` or 180 s.
    pub socket_timeout: Duration,
    /// A reply larger than this fails with `ERR_RESPONSE_TOO_LARGE`. Default: 64 MiB.
    pub max_response_bytes: usize,
    /// A connection is retired (at its next idle moment) after this long, less up to 10%
    /// jitter; `None` keeps connections forever. Default: 30 min.
    pub max_lifetime: Option<Duration>,
    /// How messages are delimited: bare JSON (the classic add-on) or a 4-byte length prefix
    /// (newer add-ons). Default: [`Framing::Json`].
    pub framing: Framing,
    /// How long a new connection is watched before its first request: a server that greets
    /// (or closes) on connect is found then, so no caller takes its greeting for a reply. The
    /// add-on never sends first, so with Blender the wait always runs out; only callers waiting
    /// for a new connection pay it. Default: 25 ms.
    pub new_connection_settle: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl PoolConfig {
    /// The defaults, ignoring the environment.
    pub fn new() -> Self {
        PoolConfig {
            name: "default".to_owned(),
            host: "localhost".to_owned(),
            port: 9876,
            min_connections: 1,
            max_connections: 5,
            connection_timeout: Duration::from_secs(30),
            connect_retry_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(60),
            max_requests_per_connection: 1000,
            health_check_interval: Duration::from_secs(30),
            mutex_timeout: Duration::from_secs(30),
            socket_timeout: Duration::from_secs(180),
            max_response_bytes: 64 * 1024 * 1024,
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            framing: Framing::Json,
            new_connection_settle: Duration::from_millis(25),
        }
    }

    /// `host:port`, as dialled and as shown in errors.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Builds a config from what the caller passed, falling back on the environment, then on
    /// the defaults. Every value is checked; the first bad one is reported by name.
    pub fn from_input(input: &ConfigInput, env: &EnvInput) -> Result<Self, ConfigError> {
        let mut c = PoolConfig::new();
        if let Some(host) = non_empty(&env.blender_host) {
            c.host = host.to_owned();
        }
        if let Some(port) = non_empty(&env.blender_port) {
            c.port = parse_env_int(port, "BLENDER_PORT", 1, 65_535)? as u16;
        }
        if let Some(t) = non_empty(&env.socket_timeout) {
            // The consumer's own config accepts 1000..=600000 for this variable.
            c.socket_timeout = Duration::from_millis(parse_env_int(t, "SOCKET_TIMEOUT", 1000, 600_000)?);
        }

        if let Some(name) = &input.name {
            if name.is_empty() || name.chars().count() > 100 {
                return Err(ConfigError::range("name", "must be a non-empty string of at most 100 characters"));
            }
            c.name = name.clone();
        }
        if let Some(host) = &input.host {
            if host.is_empty() {
                return Err(ConfigError::range("host", "must be a non-empty string"));
            }
            c.host = host.clone();
        }
        if let Some(port) = input.port {
            c.port = int_in(port, "port", 1.0, 65_535.0)? as u16;
        }
        if let Some(v) = input.min_connections {
            c.min_connections = int_in(v, "minConnections", 0.0, 10_000.0)? as usize;
        }
        if let Some(v) = input.max_connections {
            c.max_connections = int_in(v, "maxConnections", 1.0, 10_000.0)? as usize;
        }
        if let Some(v) = input.connection_timeout {
            c.connection_timeout = ms(v, "connectionTimeout")?;
        }
        if let Some(v) = input.connect_retry_timeout {
            c.connect_retry_timeout = Duration::from_millis(int_in(v, "connectRetryTimeout", 0.0, MAX_MS)? as u64);
        }
        if let Some(v) = input.idle_timeout {
            c.idle_timeout = ms(v, "idleTimeout")?;
        }
        if let Some(v) = input.max_requests_per_connection {
            c.max_requests_per_connection = int_in(v, "maxRequestsPerConnection", 1.0, 9_007_199_254_740_991.0)? as u64;
        }
        if let Some(v) = input.health_check_interval {
            c.health_check_interval = ms(v, "healthCheckInterval")?;
        }
        if let Some(v) = input.mutex_timeout {
            c.mutex_timeout = Duration::from_millis(int_in(v, "mutexTimeout", 0.0, MAX_MS)? as u64);
        }
        if let Some(v) = input.socket_timeout {
            c.socket_timeout = ms(v, "socketTimeout")?;
        }
        if let Some(v) = input.max_response_bytes {
            c.max_response_bytes = int_in(v, "maxResponseBytes", 1.0, 4_294_967_295.0)? as usize;
        }
        if let Some(v) = input.max_lifetime {
            // 0 means "never retire for age".
            let ms = int_in(v, "maxLifetime", 0.0, MAX_MS)? as u64;
            c.max_lifetime = (ms > 0).then(|| Duration::from_millis(ms));
        }
        if let Some(v) = input.new_connection_settle {
            c.new_connection_settle = Duration::from_millis(int_in(v, "newConnectionSettle", 0.0, 60_000.0)? as u64);
        }
        if let Some(f) = &input.framing {
            c.framing = match f.as_str() {
                "json" => Framing::Json,
                "length-prefixed" => Framing::LengthPrefixed,
                other => {
                    return Err(ConfigError::range(
                        "framing",
                        format!("must be 'json' or 'length-prefixed', got {other:?}"),
                    ))
                }
            };
        }
        if c.min_connections > c.max_connections {
            return Err(ConfigError::range(
                "minConnections",
                format!("must not exceed maxConnections ({} > {})", c.min_connections, c.max_connections),
            ));
        }
        Ok(c)
    }
}

/// What the caller passed to `new ConnectionPool(config)`, field by field, as JavaScript numbers.
/// `None` means "not given": take the environment or the default.
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)]
pub struct ConfigInput {
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
    pub framing: Option<String>,
}

/// The environment variables the consumer documents. Passed in (rather than read here) because
/// a Node worker thread has its own `process.env`, which the OS environment does not reflect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvInput {
    /// `BLENDER_HOST`.
    pub blender_host: Option<String>,
    /// `BLENDER_PORT`.
    pub blender_port: Option<String>,
    /// `SOCKET_TIMEOUT` in ms.
    pub socket_timeout: Option<String>,
}

/// A configuration value out of range (types are checked by the JavaScript layer,
/// `lib/options.js`, before the core sees a value). The binding throws it as a `RangeError`
/// naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The option (or environment variable) at fault, as the user spells it.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    fn range(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Invalid ConnectionPool config: {} {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty())
}

/// A whole number within `[lo, hi]`, or a range error naming `field`.
fn int_in(v: f64, field: &str, lo: f64, hi: f64) -> Result<f64, ConfigError> {
    if !v.is_finite() || v.fract() != 0.0 {
        return Err(ConfigError::range(field, format!("must be an integer, got {v}")));
    }
    if v < lo || v > hi {
        return Err(ConfigError::range(field, format!("must be between {lo} and {hi}, got {v}")));
    }
    Ok(v)
}

/// A positive whole number of milliseconds that a JavaScript timer accepts.
fn ms(v: f64, field: &str) -> Result<Duration, ConfigError> {
    Ok(Duration::from_millis(int_in(v, field, 1.0, MAX_MS)? as u64))
}

fn parse_env_int(raw: &str, var: &str, lo: u64, hi: u64) -> Result<u64, ConfigError> {
    match raw.trim().parse::<u64>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(ConfigError::range(
            var,
            format!("(environment variable) must be an integer between {lo} and {hi}, got {raw:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(input: ConfigInput) -> Result<PoolConfig, ConfigError> {
        PoolConfig::from_input(&input, &EnvInput::default())
    }

    #[test]
    fn defaults_match_the_original_pool() {
        let c = build(ConfigInput::default()).unwrap();
        assert_eq!(c, PoolConfig::new());
        assert_eq!((c.min_connections, c.max_connections), (1, 5));
        assert_eq!(c.connection_timeout, Duration::from_millis(30_000));
        assert_eq!(c.connect_retry_timeout, Duration::from_millis(2_000));
        assert_eq!(c.idle_timeout, Duration::from_millis(60_000));
        assert_eq!(c.max_requests_per_connection, 1000);
        assert_eq!(c.health_check_interval, Duration::from_millis(30_000));
        assert_eq!(c.socket_timeout, Duration::from_millis(180_000));
        assert_eq!(c.addr(), "localhost:9876");
    }

    #[test]
    fn environment_fills_host_port_and_socket_timeout_and_options_win() {
        let env = EnvInput {
            blender_host: Some("10.1.2.3".into()),
            blender_port: Some("7000".into()),
            socket_timeout: Some("5000".into()),
        };
        let c = PoolConfig::from_input(&ConfigInput::default(), &env).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.socket_timeout), ("10.1.2.3", 7000, Duration::from_secs(5)));
        let input = ConfigInput { port: Some(7001.0), socket_timeout: Some(1.0), ..Default::default() };
        let c = PoolConfig::from_input(&input, &env).unwrap();
        assert_eq!((c.port, c.socket_timeout), (7001, Duration::from_millis(1)));
    }

    #[test]
    fn empty_environment_values_count_as_unset() {
        let env = EnvInput { blender_host: Some(String::new()), blender_port: Some(" ".into()), socket_timeout: None };
        assert_eq!(PoolConfig::from_input(&ConfigInput::default(), &env).unwrap(), PoolConfig::new());
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        for (env, var) in [
            (EnvInput { blender_port: Some("abc".into()), ..Default::default() }, "BLENDER_PORT"),
            (EnvInput { blender_port: Some("70000".into()), ..Default::default() }, "BLENDER_PORT"),
            (EnvInput { socket_timeout: Some("999".into()), ..Default::default() }, "SOCKET_TIMEOUT"),
        ] {
            let e = PoolConfig::from_input(&ConfigInput::default(), &env).unwrap_err();
            assert_eq!(e.field.as_str(), var);
        }
    }

    #[test]
    fn bad_numbers_are_range_errors_naming_the_field() {
        let cases: Vec<(ConfigInput, &str)> = vec![
            (ConfigInput { max_connections: Some(f64::NAN), ..Default::default() }, "maxConnections"),
            (ConfigInput { max_connections: Some(0.0), ..Default::default() }, "maxConnections"),
            (ConfigInput { min_connections: Some(-1.0), ..Default::default() }, "minConnections"),
            (ConfigInput { min_connections: Some(1.5), ..Default::default() }, "minConnections"),
            (ConfigInput { min_connections: Some(6.0), ..Default::default() }, "minConnections"),
            (ConfigInput { port: Some(0.0), ..Default::default() }, "port"),
            (ConfigInput { port: Some(65_536.0), ..Default::default() }, "port"),
            (ConfigInput { connection_timeout: Some(f64::INFINITY), ..Default::default() }, "connectionTimeout"),
            (ConfigInput { idle_timeout: Some(0.0), ..Default::default() }, "idleTimeout"),
            (ConfigInput { connect_retry_timeout: Some(-1.0), ..Default::default() }, "connectRetryTimeout"),
            (ConfigInput { connect_retry_timeout: Some(0.5), ..Default::default() }, "connectRetryTimeout"),
            (ConfigInput { connect_retry_timeout: Some(3e9), ..Default::default() }, "connectRetryTimeout"),
            (ConfigInput { socket_timeout: Some(-5.0), ..Default::default() }, "socketTimeout"),
            (ConfigInput { health_check_interval: Some(3e9), ..Default::default() }, "healthCheckInterval"),
            (ConfigInput { max_requests_per_connection: Some(0.0), ..Default::default() }, "maxRequestsPerConnection"),
            (ConfigInput { max_response_bytes: Some(0.0), ..Default::default() }, "maxResponseBytes"),
            (ConfigInput { host: Some(String::new()), ..Default::default() }, "host"),
            (ConfigInput { name: Some(String::new()), ..Default::default() }, "name"),
            (ConfigInput { name: Some("n".repeat(101)), ..Default::default() }, "name"),
            (ConfigInput { framing: Some("xml".into()), ..Default::default() }, "framing"),
            (ConfigInput { max_lifetime: Some(-1.0), ..Default::default() }, "maxLifetime"),
        ];
        for (input, field) in cases {
            let e = build(input.clone()).unwrap_err();
            assert_eq!(e.field, field, "{input:?}");
            assert!(e.to_string().contains(field));
        }
    }

    #[test]
    fn min_equal_to_max_and_zero_min_are_fine() {
        let c = build(ConfigInput { min_connections: Some(0.0), max_connections: Some(1.0), ..Default::default() });
        assert_eq!(c.unwrap().max_connections, 1);
        let c = build(ConfigInput { min_connections: Some(3.0), max_connections: Some(3.0), ..Default::default() });
        assert_eq!(c.unwrap().min_connections, 3);
    }
}
