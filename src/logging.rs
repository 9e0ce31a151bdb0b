//! Where the pool's log records go: to the host's logger when the pool was given one, else to
//! **stderr** (never stdout: the consumer's stdout is its MCP protocol channel).
//!
//! Level from `LOG_LEVEL` (debug|info|warn|error|silent, default warn), stderr format from
//! `LOG_FORMAT` (json|pretty, default pretty). Records carry command types, sizes, timings and
//! connection ids, never request or reply bodies.
//!
//! Every record the core emits is inside its pool's `pool` span (`pool = <id>`). A pool created
//! with a `logger` registers it under its id; [`HostLoggers`] forwards that pool's records to
//! it through a weak threadsafe function (it never keeps Node alive), and the stderr layer
//! skips them. Records below the level are filtered before any of this, at no cost.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock, RwLock};

use napi::bindgen_prelude::{FnArgs, Function, Unknown};
use napi::threadsafe_function::{ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{dynamic_filter_fn, LevelFilter};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// A record for the host: `(level, message, fieldsJson)`.
pub(crate) type LogArgs = FnArgs<(&'static str, String, String)>;
/// The JavaScript function receiving a pool's records.
pub(crate) type JsLogFn<'scope> = Function<'scope, LogArgs, Unknown<'static>>;
type LogFn = ThreadsafeFunction<LogArgs, Unknown<'static>, LogArgs, napi::Status, false, true>;

/// Host loggers by pool id.
fn host_loggers() -> &'static RwLock<HashMap<u64, Arc<LogFn>>> {
  static LOGGERS: OnceLock<RwLock<HashMap<u64, Arc<LogFn>>>> = OnceLock::new();
  LOGGERS.get_or_init(Default::default)
}

/// Routes pool `pool`'s records to `log(level, message, fieldsJson)` until [`forget_logger`].
pub(crate) fn register_logger(pool: u64, log: JsLogFn<'_>) -> napi::Result<()> {
  let tsfn: LogFn = log
    .build_threadsafe_function::<LogArgs>()
    .weak::<true>()
    .callee_handled::<false>()
    .build_callback(|ctx: ThreadsafeCallContext<LogArgs>| Ok(ctx.value))?;
  let _ = host_loggers().write().unwrap_or_else(|p| p.into_inner()).insert(pool, Arc::new(tsfn));
  Ok(())
}

/// Stops routing pool `pool`'s records (the pool is gone).
pub(crate) fn forget_logger(pool: u64) {
  let _ = host_loggers().write().unwrap_or_else(|p| p.into_inner()).remove(&pool);
}

/// The pool id stored on a `pool` span.
struct PoolId(u64);

/// The id of the pool whose span encloses the current record, if any.
fn pool_of<S>(scope: Option<tracing_subscriber::registry::Scope<'_, S>>) -> Option<u64>
where
  S: for<'a> LookupSpan<'a>,
{
  scope?.find_map(|span| span.extensions().get::<PoolId>().map(|p| p.0))
}

fn has_host_logger(pool: Option<u64>) -> bool {
  pool.is_some_and(|id| host_loggers().read().unwrap_or_else(|p| p.into_inner()).contains_key(&id))
}

/// Records pool ids on `pool` spans, and forwards the records of pools with a host logger.
struct HostLoggers;

impl<S> Layer<S> for HostLoggers
where
  S: Subscriber + for<'a> LookupSpan<'a>,
{
  fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
    if attrs.metadata().name() != "pool" {
      return;
    }
    let mut visitor = PoolIdVisitor(None);
    attrs.record(&mut visitor);
    if let (Some(pool), Some(span)) = (visitor.0, ctx.span(id)) {
      span.extensions_mut().insert(PoolId(pool));
    }
  }

  fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
    let Some(pool) = pool_of(ctx.event_scope(event)) else { return };
    let logger = host_loggers().read().unwrap_or_else(|p| p.into_inner()).get(&pool).cloned();
    let Some(logger) = logger else { return };
    let mut fields = JsonFields::default();
    event.record(&mut fields);
    let level = match *event.metadata().level() {
      Level::ERROR => "error",
      Level::WARN => "warn",
      Level::INFO => "info",
      _ => "debug",
    };
    let json = format!("{{\"pool\":{pool}{}}}", fields.json);
    let _ = logger.call(FnArgs::from((level, fields.message, json)), ThreadsafeFunctionCallMode::NonBlocking);
  }
}

struct PoolIdVisitor(Option<u64>);

impl Visit for PoolIdVisitor {
  fn record_u64(&mut self, field: &Field, value: u64) {
    if field.name() == "pool" {
      self.0 = Some(value);
    }
  }
  fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// An event's message and its other fields as the inside of a JSON object (`,"k":v...`).
#[derive(Default)]
struct JsonFields {
  message: String,
  json: String,
}

impl JsonFields {
  fn push_raw(&mut self, field: &Field, raw: &str) {
    let _ = write!(self.json, ",{}:{raw}", serde_json::Value::from(field.name()));
  }
}

impl Visit for JsonFields {
  fn record_u64(&mut self, field: &Field, value: u64) {
    self.push_raw(field, &value.to_string());
  }
  fn record_i64(&mut self, field: &Field, value: i64) {
    self.push_raw(field, &value.to_string());
  }
  fn record_bool(&mut self, field: &Field, value: bool) {
    self.push_raw(field, if value { "true" } else { "false" });
  }
  fn record_str(&mut self, field: &Field, value: &str) {
    if field.name() == "message" {
      self.message = value.to_owned();
    } else {
      self.push_raw(field, &serde_json::Value::from(value).to_string());
    }
  }
  fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
    let text = format!("{value:?}");
    if field.name() == "message" {
      self.message = text;
    } else {
      self.push_raw(field, &serde_json::Value::from(text).to_string());
    }
  }
}

/// Installs the process-wide subscriber. The first call wins (later pools, or worker threads,
/// share it); unknown values fall back to the defaults.
#[napi]
pub fn init_logging(level: Option<String>, format: Option<String>) {
  let filter = match level.as_deref().map(str::to_ascii_lowercase).as_deref() {
    Some("debug") => LevelFilter::DEBUG,
    Some("info") => LevelFilter::INFO,
    Some("error") => LevelFilter::ERROR,
    Some("silent") | Some("off") => LevelFilter::OFF,
    _ => LevelFilter::WARN,
  };
  // The stderr layer leaves out the records of pools that have a host logger.
  let not_hosted = || dynamic_filter_fn(|_, cx| !has_host_logger(pool_of(cx.lookup_current().map(|s| s.scope()))));
  let stderr = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false).with_ansi(false);
  let registry = tracing_subscriber::registry().with(filter).with(HostLoggers);
  let _ = match format.as_deref() {
    Some("json") => registry.with(stderr.json().with_filter(not_hosted())).try_init(),
    _ => registry.with(stderr.compact().with_filter(not_hosted())).try_init(),
  };
}
