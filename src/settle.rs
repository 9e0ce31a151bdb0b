//! How outcomes travel from the I/O thread back to JavaScript.
//!
//! Each pool owns one threadsafe function wrapping the JavaScript `settle(id, code, text,
//! lease)` callback of `index.js`. Completions from any thread queue a [`Settlement`] on it;
//! Node runs the callback on the JS thread, where `index.js` resolves or rejects the promise
//! registered under `id`. Calls finishing close together share one event-loop wake-up.
//!
//! The function is created *weak* (it does not keep Node alive) and is referenced only while
//! calls are outstanding, so a script that forgets `shutdown()` still exits once its work is
//! done, yet never exits with a call in flight.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::{FnArgs, Function, Unknown};
use napi::threadsafe_function::{ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{sys, Env, Result};
use pool_core::{Completion, Lease, PoolError};

use crate::lease::NativeLease;
use crate::reply_text::ReplyText;

/// What a finished call hands to JavaScript.
#[derive(Debug)]
pub(crate) enum Outcome {
  /// Blender's reply, as JSON text (prepared for conversion off the JS thread).
  Reply(ReplyText),
  /// A new lease.
  Lease(Lease),
  /// Done, nothing to hand over (shutdown).
  Done,
  /// The call failed.
  Failed(PoolError),
}

/// One finished call.
#[derive(Debug)]
pub(crate) struct Settlement {
  id: u32,
  outcome: Outcome,
}

/// Arguments of the JavaScript callback: `(id, code | null, text | null, lease | null)`.
pub(crate) type SettleArgsPublic = SettleArgs;
type SettleArgs = FnArgs<(u32, Option<&'static str>, Option<ReplyText>, Option<NativeLease>)>;

type Tsfn = ThreadsafeFunction<Settlement, Unknown<'static>, SettleArgs, napi::Status, false, true>;

/// The JavaScript `settle` callback of one pool, callable from any thread.
pub(crate) struct Settler {
  tsfn: Tsfn,
  /// Calls started on the JS thread and not yet settled there. Only touched on the JS thread.
  outstanding: Arc<AtomicU32>,
}

impl std::fmt::Debug for Settler {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("Settler").field("outstanding", &self.outstanding.load(Ordering::Relaxed)).finish()
  }
}

impl Settler {
  /// Wraps the JavaScript `settle` function.
  pub(crate) fn new(callback: Function<SettleArgs, Unknown<'static>>) -> Result<Arc<Self>> {
    let outstanding = Arc::new(AtomicU32::new(0));
    let counter = outstanding.clone();
    let settler_for_leases: Arc<std::sync::OnceLock<std::sync::Weak<Settler>>> = Arc::default();
    let leases_settler = settler_for_leases.clone();
    let tsfn: Tsfn = callback
      .build_threadsafe_function::<Settlement>()
      .weak::<true>()
      .callee_handled::<false>()
      .build_callback(move |ctx: ThreadsafeCallContext<Settlement>| {
        // This call is settled now; once none is outstanding, stop keeping Node alive.
        if counter.fetch_sub(1, Ordering::Relaxed) == 1 {
          set_referenced(&ctx.env, &leases_settler, false);
        }
        let Settlement { id, outcome } = ctx.value;
        Ok(FnArgs::from(match outcome {
          Outcome::Reply(text) => (id, None, Some(text), None),
          Outcome::Done => (id, None, None, None),
          Outcome::Failed(err) => (id, Some(err.code()), Some(ReplyText::new(err.to_string())), None),
          Outcome::Lease(lease) => {
            let settler = leases_settler.get().and_then(std::sync::Weak::upgrade);
            match settler {
              Some(settler) => (id, None, None, Some(NativeLease::new(lease, settler))),
              None => (id, Some("ERR_INTERNAL"), Some(ReplyText::new("pool is gone".to_owned())), None),
            }
          }
        }))
      })?;
    let settler = Arc::new(Settler { tsfn, outstanding });
    let _ = settler_for_leases.set(Arc::downgrade(&settler));
    Ok(settler)
  }

  /// Registers a call about to start (on the JS thread) and returns the completion that will
  /// settle it, mapping the core outcome with `wrap`.
  pub(crate) fn begin<T: Send + 'static>(
    self: &Arc<Self>,
    env: &Env,
    id: u32,
    wrap: fn(T) -> Outcome,
  ) -> Completion<T> {
    if self.outstanding.fetch_add(1, Ordering::Relaxed) == 0 {
      self.reference(env, true);
    }
    let settler = self.clone();
    Completion::new(move |outcome: std::result::Result<T, PoolError>| {
      let outcome = match outcome {
        Ok(value) => wrap(value),
        Err(err) => Outcome::Failed(err),
      };
      // NonBlocking: the queue is unbounded, so this never fails for want of room. It fails
      // only when the JS context is gone (worker terminated), and then nobody is waiting.
      let settlement = Settlement { id, outcome };
      crate::deferred::hand_over(Box::new(move || {
        let _ = settler.tsfn.call(settlement, ThreadsafeFunctionCallMode::NonBlocking);
      }));
    })
  }

  fn reference(&self, env: &Env, on: bool) {
    set_raw_referenced(env, self.tsfn.raw(), on);
  }
}

fn set_referenced(env: &Env, settler: &std::sync::OnceLock<std::sync::Weak<Settler>>, on: bool) {
  if let Some(settler) = settler.get().and_then(std::sync::Weak::upgrade) {
    settler.reference(env, on);
  }
}

fn set_raw_referenced(env: &Env, raw: sys::napi_threadsafe_function, on: bool) {
  // Safety: `raw` is the live threadsafe function owned by a `Settler` the caller holds, and
  // `env` is the environment it was created in (both calls run on its JS thread).
  unsafe {
    if on {
      let _ = sys::napi_ref_threadsafe_function(env.raw(), raw);
    } else {
      let _ = sys::napi_unref_threadsafe_function(env.raw(), raw);
    }
  }
}
