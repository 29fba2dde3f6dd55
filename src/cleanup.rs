//! Cleanup cycles (Go's `poolCleanup`) and the automatic driver that runs them.
//!
//! One cycle, for every registered pool at once:
//! 1. flag every per-thread cache (`reclaim = true`);
//! 2. one heavy barrier ([`crate::barrier::heavy`]);
//! 3. for each pool: retire each cache's magazine and deque whole (the owners return to their
//!    lock-free path as soon as their cache is done);
//! 4. for each pool: install the retired deques as the new victim tier and drop every object of
//!    the old one.
//!
//! So an object unused for two cycles is dropped and one used in the last cycle is kept. The work
//! is O(pools + threads) plus the drops themselves: deques move as whole structures, never
//! object by object.
//!
//! The driver is a thread started lazily on the first use of any pool, unless
//! [`set_cleanup_interval`] was called before; it runs a cycle every
//! [`DEFAULT_CLEANUP_INTERVAL`] by default (`crate::driver`).
//!
//! This module is the public face; the layers below it, each calling only downwards:
//! `crate::drops` (dropping without nesting), `crate::registry` (the pools and one cycle over
//! them), `crate::driver` (the thread), `crate::fork` (the handlers, which hold every lock of
//! the layers below).

use crate::driver;
use crate::drops;
use crate::registry;
use std::time::Duration;

pub use crate::driver::DEFAULT_CLEANUP_INTERVAL;
pub use crate::registry::cycles;

/// Runs one cleanup cycle over every pool, synchronously.
///
/// Objects that the previous cycle moved to the victim tier and that nobody took since are
/// dropped before this returns; everything still cached moves to the victim tier. Two calls in a
/// row therefore drop everything that is not in use.
///
/// Cycles are serialised: a call waits for a cycle in progress on another thread. The aged-out
/// objects are dropped after the cycle has released its lock, so an object's `Drop` may use any
/// pool, call `cleanup()` or drop a pool.
///
/// A `cleanup()` called by such a `Drop`, while this thread drops a cycle's objects (or objects
/// that a pool gave up on a get or a return), runs its cycle at once (it is counted by
/// [`cycles`] before it returns) but leaves the objects that cycle ages out to the outermost
/// such drop on the thread (a `cleanup()`, a get or a return), which drops them after the ones
/// it already had, before it returns. So the stack stays a few frames deep however many objects
/// each cycle drops and however many cycles their `Drop`s ask for.
///
/// # Panics
///
/// If the `Drop` of a cached object panics, the cycle still completes (every other object is
/// handled as usual) and the first such panic is then resumed.
///
/// ```
/// use reuse_pool::Pool;
/// static P: Pool<Vec<u8>> = Pool::new(Vec::new);
/// reuse_pool::set_cleanup_interval(None);
/// P.put(Vec::with_capacity(10));
/// reuse_pool::cleanup(); // moved to the victim tier
/// reuse_pool::cleanup(); // dropped
/// assert!(P.try_take().is_none());
/// ```
pub fn cleanup() {
    // Before taking a lock that the `fork` handlers take: a `cleanup` before any pool exists
    // must not hold one at a fork with no handler registered to take it.
    crate::fork::init();
    driver::after_fork_check();
    // No lock and no pin is held once `run_cycle` returns: dropping objects runs the user's code.
    drops::drop_garbage(registry::run_cycle());
}

/// Sets the period of automatic cleanup cycles; `None` stops them.
///
/// `Some(d)` starts the driver thread if it is not running. The default, applied on the first
/// use of any pool unless this was called before, is [`DEFAULT_CLEANUP_INTERVAL`].
///
/// # Panics
///
/// If `d` is zero: "cleanup interval must be non-zero".
///
/// ```
/// use std::time::Duration;
/// reuse_pool::set_cleanup_interval(Some(Duration::from_secs(30)));
/// reuse_pool::set_cleanup_interval(None); // no automatic cycles; call `cleanup()` yourself
/// ```
pub fn set_cleanup_interval(interval: Option<Duration>) {
    crate::fork::init();
    if let Some(d) = interval {
        assert!(
            !d.is_zero(),
            "reuse_pool::set_cleanup_interval: cleanup interval must be non-zero (use None to stop)"
        );
    }
    driver::set_interval(interval);
}

/// The current period of automatic cleanup, `None` if stopped.
pub fn cleanup_interval() -> Option<Duration> {
    crate::fork::init();
    driver::interval()
}
