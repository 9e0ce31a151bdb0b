//! How outcomes travel from the I/O thread back to JavaScript.
//!
//! Each pool owns one threadsafe function wrapping the JavaScript `settle(id, code, text,
//! lease, conn)` callback of `index.js`. Completions from any thread queue a [`Settlement`] on it;
//! Node runs the callback on the JS thread, where `index.js` resolves or rejects the promise
//! registered under `id`. Calls finishing close together share one event-loop wake-up.
//!
//! The function is created *weak* (it does not keep Node alive) and is referenced only while
//! calls are outstanding, so a script that forgets `shutdown()` still exits once its work is
//! done, yet never exits with a call in flight.

pub(crate) mod deferred;
pub(crate) mod reply_text;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::{FnArgs, Function, ToNapiValue, Unknown};
use napi::threadsafe_function::{ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{sys, Env, Result};
use pool_core::{Completion, PoolError};

use crate::settle::reply_text::ReplyText;

/// What a finished call hands to JavaScript.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Blender's reply, as JSON text (prepared for conversion off the JS thread).
    Reply(ReplyText),
    /// A value made for JavaScript on the JS thread (a new lease's `NativeLease`).
    Object(Box<dyn IntoJs>),
    /// Done, nothing to hand over (shutdown).
    Done,
    /// The call failed.
    Failed(PoolError),
}

/// One finished call, with the settler it belongs to: a settlement in the queue keeps its
/// pool's settler (and so the threadsafe function) alive until JavaScript has it, even if the
/// pool object was garbage-collected meanwhile.
pub(crate) struct Settlement {
    id: u32,
    outcome: Outcome,
    settler: Arc<Settler>,
    /// The connection the request was sent on, if it was.
    conn: Option<u64>,
}

/// Arguments of the JavaScript callback: `(id, code | null, text | null, lease | null, conn |
/// null)`, every value already created on the JavaScript thread (see [`Settler::arguments`]).
pub(crate) type SettleArgs = FnArgs<(u32, Option<&'static str>, Option<Created>, Option<Created>, Option<u32>)>;

type Tsfn = ThreadsafeFunction<Settlement, Unknown<'static>, SettleArgs, napi::Status, false, true>;

/// A value turned into JavaScript on the JS thread, by the settlement's callback.
pub(crate) trait IntoJs: Send + std::fmt::Debug {
    /// Creates the JavaScript value.
    fn into_js(self: Box<Self>, env: &Env) -> Result<Created>;
}

/// A JavaScript value created by the callback itself, handed to napi-rs as it is.
#[derive(Debug)]
pub struct Created(sys::napi_value);

impl ToNapiValue for Created {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        Ok(val.0)
    }
}

/// The JavaScript `settle` callback of one pool, callable from any thread.
pub(crate) struct Settler {
    tsfn: Tsfn,
    /// Calls started on the JS thread and not yet settled there. Only touched on the JS thread.
    outstanding: AtomicU32,
}

impl std::fmt::Debug for Settler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settler").field("outstanding", &self.outstanding.load(Ordering::Relaxed)).finish()
    }
}

impl Settler {
    /// Wraps the JavaScript `settle` function.
    pub(crate) fn new(callback: Function<SettleArgs, Unknown<'static>>) -> Result<Arc<Self>> {
        let tsfn: Tsfn = callback
            .build_threadsafe_function::<Settlement>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(|ctx: ThreadsafeCallContext<Settlement>| {
                let Settlement { id, outcome, settler, conn } = ctx.value;
                // This call is settled now; once none is outstanding, stop keeping Node alive.
                if settler.outstanding.fetch_sub(1, Ordering::Relaxed) == 1 {
                    settler.reference(&ctx.env, false);
                }
                let (id, code, text, lease) = Settler::arguments(&ctx.env, id, outcome);
                Ok(FnArgs::from((id, code, text, lease, conn.and_then(|c| u32::try_from(c).ok()))))
            })?;
        Ok(Arc::new(Settler { tsfn, outstanding: AtomicU32::new(0) }))
    }

    /// The callback's arguments for `outcome`, created here rather than by napi-rs, so that a
    /// value JavaScript cannot hold (a reply past V8's longest string, say) fails this one call
    /// with a rejection instead of throwing out of the callback as an uncaught exception.
    fn arguments(
        env: &Env,
        id: u32,
        outcome: Outcome,
    ) -> (u32, Option<&'static str>, Option<Created>, Option<Created>) {
        let created = match outcome {
            Outcome::Reply(text) => create(env, text).map(|text| (None, Some(text), None)),
            Outcome::Done => Ok((None, None, None)),
            Outcome::Failed(err) => create(env, err.to_string()).map(|text| (Some(err.code()), Some(text), None)),
            // Dropping a lease that could not be handed over gives its connection back.
            Outcome::Object(object) => object.into_js(env).map(|object| (None, None, Some(object))),
        };
        let (code, text, lease) = created.unwrap_or_else(|err| {
            let failure = PoolError::Internal(format!("could not hand the outcome to JavaScript: {}", err.reason));
            (Some(failure.code()), create(env, failure.to_string()).ok(), None)
        });
        (id, code, text, lease)
    }
    /// Registers a call about to start (on the JS thread) and returns the completion that will
    /// settle it, mapping the core outcome with `wrap`.
    pub(crate) fn begin<T: Send + 'static>(
        self: &Arc<Self>,
        env: &Env,
        id: u32,
        wrap: impl FnOnce(T) -> Outcome + Send + 'static,
    ) -> Completion<T> {
        if self.outstanding.fetch_add(1, Ordering::Relaxed) == 0 {
            self.reference(env, true);
        }
        let settler = self.clone();
        Completion::with_connection(move |outcome: std::result::Result<T, PoolError>, conn| {
            let outcome = match outcome {
                Ok(value) => wrap(value),
                Err(err) => Outcome::Failed(err),
            };
            // NonBlocking: the queue is unbounded, so this never fails for want of room. It fails
            // only when the JS context is gone (worker terminated), and then nobody is waiting.
            crate::settle::deferred::hand_over(Box::new(move || {
                let settlement = Settlement { id, outcome, settler: settler.clone(), conn };
                let _ = settler.tsfn.call(settlement, ThreadsafeFunctionCallMode::NonBlocking);
            }));
        })
    }

    fn reference(&self, env: &Env, on: bool) {
        set_raw_referenced(env, self.tsfn.raw(), on);
    }
}

/// Creates `value` on the JavaScript thread, clearing any exception the failure left pending
/// (V8 throws a `RangeError` for a string past its longest), so it cannot escape the callback.
pub(crate) fn create<T: ToNapiValue>(env: &Env, value: T) -> Result<Created> {
    // Safety: `env` is the live environment of the JS thread this callback runs on.
    let created = unsafe { T::to_napi_value(env.raw(), value) };
    if created.is_err() {
        let mut pending = false;
        // Safety: as above; the out-pointers are valid for the calls.
        unsafe {
            if sys::napi_is_exception_pending(env.raw(), &mut pending) == sys::Status::napi_ok && pending {
                let mut exception = std::ptr::null_mut();
                let _ = sys::napi_get_and_clear_last_exception(env.raw(), &mut exception);
            }
        }
    }
    created.map(Created)
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
