//! `NativePool`: the class `index.js` wraps as `ConnectionPool`.

use std::sync::Arc;

use napi::bindgen_prelude::{Function, Unknown};
use napi::{Env, Result};
use napi_derive::napi;
use pool_core::{Pool, PoolConfig, Request};

use crate::config::{JsPoolConfig, JsPoolEnv, JsPoolStats, JsResolvedConfig};
use crate::errors::throw_config_error;
use crate::runtime;
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
  #[napi(constructor, ts_args_type = "config: JsPoolConfig, env: JsPoolEnv, settle: (id: number, code: string | null, text: string | null, lease: NativeLease | null) => void")]
  pub fn new(env: Env, config: JsPoolConfig, vars: JsPoolEnv, settle: Function<'_, crate::settle::SettleArgsPublic, Unknown<'static>>) -> Result<Self> {
    let config = PoolConfig::from_input(&config.into(), &vars.into()).map_err(|e| throw_config_error(&env, &e))?;
    let settler = Settler::new(settle)?;
    tracing::debug!(addr = %config.addr(), max = config.max_connections, "pool created");
    Ok(NativePool { pool: Pool::new(config, runtime::handle()), settler })
  }

  /// Sends `body` (the JSON request) and settles call `id` with the reply text.
  #[napi]
  pub fn submit(&self, env: Env, id: u32, command: String, body: String) {
    let done = self.settler.begin(&env, id, Outcome::Reply);
    self.pool.submit(Request::new(command, body), done);
  }

  /// Settles call `id` with a `NativeLease`.
  #[napi]
  pub fn acquire(&self, env: Env, id: u32) {
    let done = self.settler.begin(&env, id, Outcome::Lease);
    self.pool.acquire_with(done);
  }

  /// Starts shutting down; settles call `id` once every socket is closed.
  #[napi]
  pub fn shutdown(&self, env: Env, id: u32) {
    let done = self.settler.begin(&env, id, |()| Outcome::Done);
    self.pool.shutdown_with(done);
  }

  /// A snapshot of the pool's counts.
  #[napi]
  pub fn stats(&self) -> JsPoolStats {
    self.pool.stats().into()
  }

  /// The configuration in force (defaults and environment applied).
  #[napi]
  pub fn config(&self) -> JsResolvedConfig {
    self.pool.config().into()
  }
}
