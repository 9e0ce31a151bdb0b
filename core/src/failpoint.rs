//! Test-only fault injection: make the pool panic at chosen points, to prove that a panic never
//! takes the process down and that the caller is answered with `ERR_INTERNAL`.
//!
//! Off unless a test turns a point on; checking one is a relaxed atomic load.

use std::sync::atomic::{AtomicU8, Ordering};

/// Where to panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Failpoint {
    /// On the I/O thread, when a complete reply arrives.
    PanicOnReply = 1,
    /// On the calling thread, when a call is submitted (checked by the binding).
    PanicOnSubmit = 2,
}

static ARMED: AtomicU8 = AtomicU8::new(0);

/// Turns `point` on or off for the whole process.
pub fn set(point: Failpoint, on: bool) {
    let bit = 1u8 << (point as u8);
    if on {
        let _ = ARMED.fetch_or(bit, Ordering::Relaxed);
    } else {
        let _ = ARMED.fetch_and(!bit, Ordering::Relaxed);
    }
}

/// Panics if `point` is on.
pub fn hit(point: Failpoint) {
    if ARMED.load(Ordering::Relaxed) & (1u8 << (point as u8)) != 0 {
        panic!("failpoint {point:?} hit (a panic injected by a test: expected)");
    }
}
