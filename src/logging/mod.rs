//! Where the pool's log records go, and which are made at all.
//!
//! Each pool has its settings, read when it is created: a level (`LOG_LEVEL`), a stderr format
//! (`LOG_FORMAT`: pino-shaped JSON lines or readable lines) and optionally the host's logger.
//! Every record the core emits is inside its pool's `pool` span, so [`Router`] finds the pool
//! of each record and sends it to that pool's logger (through a weak threadsafe function that
//! never keeps Node alive) or to **stderr**, never stdout (the consumer's stdout is its MCP
//! protocol channel). Records outside any pool (a panic on a thread of no pool) follow the
//! settings the module was loaded with.
//!
//! Records below every live pool's level are rejected by tracing's own level check, at the
//! cost of one atomic load: [`Router`] reports the most verbose level in use as its hint, and
//! the callsite cache is rebuilt whenever that changes. Panics are records too (see
//! [`install_panic_hook`]).

pub(crate) mod format;

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use napi::bindgen_prelude::{FnArgs, Function, Unknown};
use napi::threadsafe_function::{ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::logging::format::Record;

/// A record for the host: `(level, message, fieldsJson)`.
pub(crate) type LogArgs = FnArgs<(&'static str, String, String)>;
/// The JavaScript function receiving a pool's records.
pub(crate) type JsLogFn<'scope> = Function<'scope, LogArgs, Unknown<'static>>;
type LogFn = ThreadsafeFunction<LogArgs, Unknown<'static>, LogArgs, napi::Status, false, true>;

/// How records are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `LOG_FORMAT=pretty` (the default): one readable line per record.
    Pretty,
    /// `LOG_FORMAT=json`: one pino-shaped JSON object per line.
    Json,
}

/// Where one pool's records go.
#[derive(Clone)]
struct Settings {
    level: LevelFilter,
    format: Format,
    name: String,
    host: Option<Arc<LogFn>>,
}

/// The settings of every live pool, and those of records outside any pool.
struct Sinks {
    pools: HashMap<u64, Settings>,
    default: Settings,
}

fn sinks() -> &'static RwLock<Sinks> {
    static SINKS: OnceLock<RwLock<Sinks>> = OnceLock::new();
    SINKS.get_or_init(|| {
        let default = Settings { level: LevelFilter::WARN, format: Format::Pretty, name: String::new(), host: None };
        RwLock::new(Sinks { pools: HashMap::new(), default })
    })
}

/// The most verbose level any sink wants, as a `LevelFilter` index (0 = off .. 5 = trace).
static MAX_LEVEL: AtomicUsize = AtomicUsize::new(2);

fn filter_index(f: LevelFilter) -> usize {
    match f.into_level() {
        None => 0,
        Some(Level::ERROR) => 1,
        Some(Level::WARN) => 2,
        Some(Level::INFO) => 3,
        Some(Level::DEBUG) => 4,
        Some(Level::TRACE) => 5,
    }
}

fn filter_of(index: usize) -> LevelFilter {
    [LevelFilter::OFF, LevelFilter::ERROR, LevelFilter::WARN, LevelFilter::INFO, LevelFilter::DEBUG, LevelFilter::TRACE]
        [index.min(5)]
}

/// Changes the sinks with `change`, then recomputes [`MAX_LEVEL`] and, when it moved, rebuilds
/// tracing's callsite cache (outside the lock), so records no sink wants cost one atomic load.
fn change_sinks(change: impl FnOnce(&mut Sinks)) {
    let moved = {
        let mut s = sinks().write().unwrap_or_else(|p| p.into_inner());
        change(&mut s);
        let max =
            s.pools.values().map(|p| filter_index(p.level)).chain([filter_index(s.default.level)]).max().unwrap_or(0);
        MAX_LEVEL.swap(max, Ordering::Relaxed) != max
    };
    if moved {
        tracing::callsite::rebuild_interest_cache();
    }
}

/// A level from `LOG_LEVEL`: `debug` (also `trace`, `verbose`), `info`, `warn` (the default,
/// also `warning`), `error` (also `fatal`), `silent` (also `off`, `none`). Anything else means
/// warn, and the second value says so.
fn parse_level(raw: Option<&str>) -> (LevelFilter, Option<String>) {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else { return (LevelFilter::WARN, None) };
    let level = match raw.to_ascii_lowercase().as_str() {
        "debug" | "trace" | "verbose" => LevelFilter::DEBUG,
        "info" => LevelFilter::INFO,
        "warn" | "warning" => LevelFilter::WARN,
        "error" | "fatal" => LevelFilter::ERROR,
        "silent" | "off" | "none" => LevelFilter::OFF,
        _ => return (LevelFilter::WARN, Some(raw.to_owned())),
    };
    (level, None)
}

/// A format from `LOG_FORMAT`: `pretty` (default) or `json`; anything else is pretty, and the
/// second value says so.
fn parse_format(raw: Option<&str>) -> (Format, Option<String>) {
    match raw.map(str::trim).filter(|r| !r.is_empty()).map(str::to_ascii_lowercase).as_deref() {
        None | Some("pretty") => (Format::Pretty, None),
        Some("json") => (Format::Json, None),
        Some(_) => (Format::Pretty, raw.map(|r| r.trim().to_owned())),
    }
}

/// Warns once per process for each unknown value of `variable`: a typo must not go unseen, nor
/// be repeated for every pool.
fn warn_unknown(variable: &'static str, value: Option<String>, valid: &'static str) {
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let Some(value) = value else { return };
    let first = SEEN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(format!("{variable}={value}"));
    if first {
        tracing::warn!(variable, value, valid, "unknown {variable} value; using the default");
    }
}

/// What a pool was created with: its `LOG_LEVEL`, `LOG_FORMAT`, name and (maybe) logger.
pub(crate) struct PoolLogging<'a> {
    pub(crate) level: Option<String>,
    pub(crate) format: Option<String>,
    pub(crate) name: String,
    pub(crate) host: Option<JsLogFn<'a>>,
}

/// Registers pool `pool`'s settings, before its first record; until [`forget_pool`]. Warnings
/// about its environment are the pool's own first records (inside `span`).
pub(crate) fn register_pool(pool: u64, span: &tracing::Span, logging: PoolLogging<'_>) -> napi::Result<()> {
    let host = match logging.host {
        Some(log) => Some(Arc::new(
            log.build_threadsafe_function::<LogArgs>()
                .weak::<true>()
                .callee_handled::<false>()
                .build_callback(|ctx: ThreadsafeCallContext<LogArgs>| Ok(ctx.value))?,
        )),
        None => None,
    };
    let (level, bad_level) = parse_level(logging.level.as_deref());
    let (format, bad_format) = parse_format(logging.format.as_deref());
    change_sinks(|s| drop(s.pools.insert(pool, Settings { level, format, name: logging.name, host })));
    let _in_pool = span.enter();
    warn_unknown("LOG_LEVEL", bad_level, "debug, info, warn, error, silent (or trace, verbose, fatal)");
    warn_unknown("LOG_FORMAT", bad_format, "pretty, json");
    Ok(())
}

/// Stops routing pool `pool`'s records (the pool is gone).
pub(crate) fn forget_pool(pool: u64) {
    change_sinks(|s| drop(s.pools.remove(&pool)));
}

/// The pool id stored on a `pool` span.
struct PoolId(u64);

/// Sends each record to its pool's logger or to stderr, in its pool's format, if its pool's
/// level wants it.
struct Router;

impl<S> Layer<S> for Router
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        if *meta.level() <= filter_of(MAX_LEVEL.load(Ordering::Relaxed)) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _: Context<'_, S>) -> bool {
        *meta.level() <= filter_of(MAX_LEVEL.load(Ordering::Relaxed))
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(filter_of(MAX_LEVEL.load(Ordering::Relaxed)))
    }

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
        let pool = ctx
            .event_scope(event)
            .and_then(|scope| scope.from_root().find_map(|s| s.extensions().get::<PoolId>().map(|p| p.0)));
        let settings = {
            let s = sinks().read().unwrap_or_else(|p| p.into_inner());
            match pool.and_then(|id| s.pools.get(&id)) {
                Some(p) => p.clone(),
                None => s.default.clone(),
            }
        };
        let level = *event.metadata().level();
        if level > settings.level {
            return;
        }
        let mut record = Record::new(level, String::new(), pool.map(|id| (id, settings.name.clone())));
        event.record(&mut record);
        match &settings.host {
            Some(host) => {
                let name = match level {
                    Level::ERROR => "error",
                    Level::WARN => "warn",
                    Level::INFO => "info",
                    _ => "debug",
                };
                let fields = record.fields_json();
                let _ =
                    host.call(FnArgs::from((name, record.message, fields)), ThreadsafeFunctionCallMode::NonBlocking);
            }
            None => {
                let line = match settings.format {
                    Format::Json => record.json_line(),
                    Format::Pretty => record.pretty_line(),
                };
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
        }
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

/// Makes a panic a record like any other: an `error` of the pool whose work panicked (so it
/// reaches that pool's logger, or stderr in its format), instead of Rust's raw message. The
/// panic itself is unchanged: it is still caught and answered with `ERR_INTERNAL`.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let what = match (info.payload().downcast_ref::<&str>(), info.payload().downcast_ref::<String>()) {
            (Some(s), _) => (*s).to_owned(),
            (_, Some(s)) => s.clone(),
            _ => "a panic with a non-text payload".to_owned(),
        };
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        let thread = std::thread::current().name().unwrap_or("unnamed").to_owned();
        tracing::error!(
            location,
            thread,
            "panic (a bug in blender-mcp-pool; the call fails with ERR_INTERNAL): {what}"
        );
    }));
}

/// Installs the process-wide subscriber and panic hook (the first call wins: later pools and
/// worker threads share them), with `level` and `format` for records outside any pool. An
/// unknown value is reported by the first pool created with it, to its own logger.
#[napi]
pub fn init_logging(level: Option<String>, format: Option<String>) {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let () = *INSTALLED.get_or_init(|| {
        let (level, _) = parse_level(level.as_deref());
        let (format, _) = parse_format(format.as_deref());
        change_sinks(|s| {
            s.default.level = level;
            s.default.format = format;
        });
        let _ = tracing_subscriber::registry().with(Router).try_init();
        install_panic_hook();
    });
}
