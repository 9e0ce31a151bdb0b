//! Connection events for JavaScript: the core's [`PoolObserver`] calling `onConnection(kind,
//! conn, reason)` of `index.js` on the JS thread, which publishes them on `node:diagnostics_channel`.
//!
//! Connections open and close rarely (not per call), so the events always travel; the JS side
//! drops them when nobody subscribes. The function is weak: it never keeps Node alive.

use napi::bindgen_prelude::{FnArgs, Function, Unknown};
use napi::threadsafe_function::{ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode};
use pool_core::PoolObserver;

/// `(kind, conn, reason)`: `"open"` or `"close"`, the connection id, why it closed.
pub(crate) type EventArgs = FnArgs<(&'static str, u32, Option<&'static str>)>;
/// The JavaScript function receiving a pool's connection events.
pub(crate) type JsEventFn<'scope> = Function<'scope, EventArgs, Unknown<'static>>;
type EventFn = ThreadsafeFunction<EventArgs, Unknown<'static>, EventArgs, napi::Status, false, true>;

/// Forwards a pool's connection events to JavaScript.
pub(crate) struct JsObserver {
    tsfn: EventFn,
}

impl std::fmt::Debug for JsObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsObserver")
    }
}

impl JsObserver {
    pub(crate) fn new(callback: JsEventFn<'_>) -> napi::Result<Self> {
        let tsfn = callback
            .build_threadsafe_function::<EventArgs>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(|ctx: ThreadsafeCallContext<EventArgs>| Ok(ctx.value))?;
        Ok(JsObserver { tsfn })
    }

    fn send(&self, kind: &'static str, conn: u64, reason: Option<&'static str>) {
        let conn = u32::try_from(conn).unwrap_or(u32::MAX);
        let _ = self.tsfn.call(FnArgs::from((kind, conn, reason)), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

impl PoolObserver for JsObserver {
    fn connection_opened(&self, conn: u64) {
        self.send("open", conn, None);
    }

    fn connection_closed(&self, conn: u64, reason: &'static str) {
        self.send("close", conn, Some(reason));
    }
}
