//! `NativePool`: the class `index.js` wraps as `ConnectionPool`.

use std::sync::Arc;

use napi::bindgen_prelude::{Function, Unknown};
use napi::{Env, Result};
use napi_derive::napi;
use pool_core::{Pool, PoolConfig, Request};

use crate::config::{call_options, JsPoolConfig, JsPoolEnv, JsPoolStats, JsResolvedConfig};
use crate::errors::throw_config_error;
use crate::lease::NativeLease;
use crate::logging;
use crate::metrics::{JsFamily, JsMetrics};
use crate::progress::JsCallProgress;
use crate::runtime;
use crate::settle::reply_text::ReplyText;
use crate::settle::{Outcome, Settler};

/// A pool of connections to Blender. Every method returns at once; outcomes arrive through the
/// `settle` callback given to the constructor, keyed by the caller's call id.
#[napi]
#[derive(Debug)]
pub struct NativePool {
    pool: Pool,
    settler: Arc<Settler>,
}

#[napi]
impl NativePool {
    /// Validates the configuration (throwing `TypeError`/`RangeError`) and starts the pool.
    /// Connection events go to `onConnection`. With `log`, the pool's records go to it
    /// (`log(level, message, fieldsJson)`) instead of stderr.
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "config: JsPoolConfig, env: JsPoolEnv, settle: (id: number, code: string | null, text: string | null, lease: NativeLease | null, conn: number | null) => void, onConnection: (kind: 'open' | 'close', conn: number, reason: string | null) => void, log?: (level: string, message: string, fieldsJson: string) => void"
    )]
    pub fn new(
        env: Env,
        config: JsPoolConfig,
        vars: JsPoolEnv,
        settle: Function<'_, crate::settle::SettleArgs, Unknown<'static>>,
        on_connection: crate::events::JsEventFn<'_>,
        log: Option<logging::JsLogFn<'_>>,
    ) -> Result<Self> {
        let config =
            PoolConfig::from_input(&config.into(), &(&vars).into()).map_err(|e| throw_config_error(&env, &e))?;
        let settler = Settler::new(settle)?;
        // Replies are read on this thread's event loop where libuv allows (see `watcher.rs`).
        let watcher = crate::node::watcher::UvWatcher::start(&env).map(|w| w as Arc<dyn pool_core::ReadWatcher>);
        let name = config.name.clone();
        let observer = Arc::new(crate::events::JsObserver::new(on_connection)?);
        let builder =
            Pool::builder(config).watcher(watcher).observer(Some(observer as Arc<dyn pool_core::PoolObserver>));
        // Before the pool starts, so that its every record, the first included, goes where it must.
        let settings = logging::PoolLogging { level: vars.log_level, format: vars.log_format, name, host: log };
        logging::register_pool(builder.id(), builder.span(), settings)?;
        let pool = builder.start(runtime::handle());
        Ok(NativePool { pool, settler })
    }

    /// Sends `body` (the JSON request) and settles call `id` with the reply text. `timeout` is
    /// the call's own deadline in ms. Returns the pool's id of the call, for `cancel`.
    #[napi(catch_unwind)]
    pub fn submit(&self, env: Env, id: u32, command: String, body: String, timeout: Option<f64>) -> Result<f64> {
        pool_core::failpoint::hit(pool_core::failpoint::Failpoint::PanicOnSubmit);
        let done = self.settler.begin(&env, id, |text| Outcome::Reply(ReplyText::new(text)));
        Ok(self.pool.submit_reply_with(Request::new(command, body), call_options(timeout), done) as f64)
    }

    /// Settles call `id` with a `NativeLease`. Returns the pool's id of the call, for `cancel`.
    #[napi(catch_unwind)]
    pub fn acquire(&self, env: Env, id: u32, timeout: Option<f64>) -> Result<f64> {
        let settler = self.settler.clone();
        let done =
            self.settler.begin(&env, id, move |lease| Outcome::Object(Box::new(NativeLease::new(lease, settler))));
        Ok(self.pool.acquire_with(call_options(timeout), done) as f64)
    }

    /// Aborts a call (waiting: it leaves the queue; in flight: its connection is discarded).
    #[napi(catch_unwind)]
    pub fn cancel(&self, call: f64) -> Result<()> {
        self.pool.cancel(call as u64);
        Ok(())
    }

    /// Where a call stands (its `submit`/`acquire` id), or `null` once it is settled.
    #[napi(catch_unwind)]
    pub fn progress(&self, call: f64) -> Result<Option<JsCallProgress>> {
        Ok(self.pool.progress(call as u64).map(JsCallProgress::from))
    }

    /// Starts shutting down; settles call `id` once every socket is closed.
    #[napi(catch_unwind)]
    pub fn shutdown(&self, env: Env, id: u32) -> Result<()> {
        let done = self.settler.begin(&env, id, |()| Outcome::Done);
        self.pool.shutdown_with(done);
        Ok(())
    }

    /// A snapshot of the pool's counts.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> Result<JsPoolStats> {
        Ok(self.pool.stats().into())
    }

    /// Counters and latency percentiles since the pool started.
    #[napi(catch_unwind)]
    pub fn metrics(&self) -> Result<JsMetrics> {
        Ok(self.pool.metrics().into())
    }

    /// The metrics in Prometheus' text exposition format.
    #[napi(catch_unwind)]
    pub fn metrics_text(&self) -> Result<String> {
        Ok(self.pool.metrics_text())
    }

    /// The metrics as Prometheus families, every sample labelled with the pool's name.
    #[napi(catch_unwind)]
    pub fn metric_families(&self) -> Result<Vec<JsFamily>> {
        Ok(self.pool.metric_families().into_iter().map(JsFamily::from).collect())
    }

    /// The configuration in force (defaults and environment applied).
    #[napi(catch_unwind)]
    pub fn config(&self) -> Result<JsResolvedConfig> {
        Ok(self.pool.config().into())
    }
}

impl Drop for NativePool {
    fn drop(&mut self) {
        logging::forget_pool(self.pool.id());
    }
}
