//! Settlements made on the I/O thread are handed to JavaScript in one go, when the thread runs
//! out of work, rather than one by one.
//!
//! Each settlement queued on a threadsafe function wakes the JS thread if it is asleep, and on
//! a busy machine the JS thread then runs at once, takes that one settlement, and sleeps again
//! before the I/O thread queues the next. Holding the I/O thread's settlements until it is about
//! to park (tokio's `on_thread_park`) lets one wake-up carry all the replies of one round.
//!
//! Order is kept: every settlement, from any thread, goes through one queue in the order it was
//! made. A settlement made on another thread (the JS thread, say, leasing a connection the I/O
//! thread just freed) first hands over everything held before it, so JavaScript never learns of
//! a consequence before its cause. Each settlement is still its own call of the JS callback,
//! with microtasks run between them. Nothing is held for long: the thread parks whenever it has
//! nothing ready, and [`MAX_HELD`] bounds a batch.

use std::cell::Cell;
use std::sync::Mutex;

/// Settlements held at most before they are handed over regardless.
const MAX_HELD: usize = 64;

type Handover = Box<dyn FnOnce() + Send>;

/// Settlements made but not yet handed over, oldest first.
static QUEUE: Mutex<Queue> = Mutex::new(Queue { held: Vec::new(), running: false });

struct Queue {
    held: Vec<Handover>,
    /// A thread is running handovers; it also runs whatever is queued meanwhile.
    running: bool,
}

thread_local! {
  /// Whether this thread holds its settlements: the runtime's worker, marked on its first park
  /// (blocking-pool threads never park, and hand over at once like every other thread).
  static HOLDS: Cell<bool> = const { Cell::new(false) };
}

/// Queues `handover` behind every settlement made before it; runs the queue now unless this is
/// the I/O thread, which runs it when it parks.
pub(crate) fn hand_over(handover: Handover) {
    let now = {
        let mut queue = lock();
        queue.held.push(handover);
        !HOLDS.with(Cell::get) || queue.held.len() >= MAX_HELD
    };
    if now {
        run();
    }
}

/// Hands over everything held. Installed as the runtime's `on_thread_park` hook.
pub(crate) fn on_park() {
    HOLDS.with(|h| h.set(true));
    run();
}

/// Runs the queue until it is empty, in order. Only one thread runs it at a time, and it also
/// runs what is queued meanwhile, so no settlement overtakes an earlier one: one queued from
/// another thread, or by a handover itself (one that fails drops its value, which may free a
/// lease and so settle a waiter). Handovers run outside the lock.
fn run() {
    let mut queue = lock();
    if queue.running {
        return;
    }
    queue.running = true;
    loop {
        let batch = std::mem::take(&mut queue.held);
        if batch.is_empty() {
            queue.running = false;
            return;
        }
        drop(queue);
        for handover in batch {
            handover();
        }
        queue = lock();
    }
}

fn lock() -> std::sync::MutexGuard<'static, Queue> {
    QUEUE.lock().unwrap_or_else(|p| p.into_inner())
}
