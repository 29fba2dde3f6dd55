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
//! [`DEFAULT_CLEANUP_INTERVAL`] by default.

use crate::barrier;
use crate::registry::{self, Garbage};
use std::cell::{Cell, RefCell};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Period of the automatic cleanup driver unless [`set_cleanup_interval`] says otherwise.
///
/// An idle object is therefore dropped after 5 to 10 seconds.
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(5);

static CYCLES: AtomicU64 = AtomicU64::new(0);

/// Number of cleanup cycles run so far in this process (the global epoch).
pub fn cycles() -> u64 {
    CYCLES.load(Ordering::Relaxed)
}

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
    after_fork_check();
    let garbage = {
        let _cycle = registry::cycle_lock();
        CYCLES.fetch_add(1, Ordering::Relaxed);
        let pools = registry::snapshot();
        let mut any = false;
        for p in &pools {
            any |= p.flag();
        }
        if any {
            barrier::heavy();
        }
        // Every cache first, so owners leave the locked path as soon as possible.
        for p in &pools {
            p.retire();
        }
        pools
            .into_iter()
            .filter_map(|p| p.rotate())
            .collect::<Vec<_>>()
    };
    // No lock and no pin is held from here on: dropping objects runs the user's code.
    drop_garbage(garbage);
}

thread_local! {
    /// While this thread drops objects for the crate (in [`drop_loop`]: a cycle's aged-out
    /// objects, or what a get or a return gave up): the queue of what is left to drop, on that
    /// call's stack. Null otherwise.
    ///
    /// Only this thread reads or writes it. A `Cell` of a raw pointer has no destructor, so it
    /// is usable from thread-local destructors too.
    static DROPPING: Cell<*const RefCell<Vec<Garbage>>> = const { Cell::new(ptr::null()) };
}

/// Drops what one cycle aged out (see [`drop_loop`]).
fn drop_garbage(garbage: Vec<Garbage>) {
    drop_loop(|| None, garbage);
}

/// Most drops of [`drop_flat`] nested inside one another on the stack; deeper ones are queued.
const MAX_NESTED_DROPS: usize = 8;

thread_local! {
    /// How many [`drop_flat`] drops run nested inside one another below the outermost
    /// [`drop_loop`] of this thread. No destructor, like `DROPPING`.
    static NESTED: Cell<usize> = const { Cell::new(0) };
}

/// Drops `value`, something a pool gives up on a get or a return (over a bound, refused by
/// `keep_if`, discarded), as [`drop_loop`] does.
///
/// A `Drop` that returns an object to a full pool (which drops another object, whose `Drop`
/// returns one, and so on) nests up to [`MAX_NESTED_DROPS`] drops on the stack, as a plain drop
/// would (a `Drop` that guards itself against re-entry with a flag of its own sees the nested
/// drop inside that guard); a drop deeper than that is queued for the outermost call on the
/// thread, which runs the queue as a loop. So the stack stays a few frames deep however long
/// the chain is. Every object is dropped before the outermost call returns; a panic of a queued
/// object's `Drop` is resumed there once the queue is empty.
pub(crate) fn drop_flat<V: Send + 'static>(value: V) {
    let nested = NESTED.with(Cell::get);
    if !DROPPING.with(Cell::get).is_null() && nested < MAX_NESTED_DROPS {
        /// Restores the depth, also when the drop unwinds.
        struct Back(usize);
        impl Drop for Back {
            fn drop(&mut self) {
                NESTED.with(|n| n.set(self.0));
            }
        }
        NESTED.with(|n| n.set(nested + 1));
        let back = Back(nested);
        drop(value);
        drop(back);
        return;
    }
    drop_loop(
        move || {
            let mut panicked = None;
            crate::tiers::drop_caught(value, &mut panicked);
            panicked
        },
        Vec::new(),
    );
}

/// Runs `first`, then drops `garbage`, or, when this thread is already inside `drop_loop` (an
/// object's `Drop` called `cleanup()` or returned an object that the pool gave up), queues both
/// for that outer call: a `Drop` that calls back into the crate would otherwise nest one more
/// drop on the stack per object dropped.
///
/// The outer call runs its own work, then every batch queued meanwhile, in a loop, and
/// resumes the first panic of an object's `Drop` once the queue is empty.
fn drop_loop<F>(first: F, garbage: Vec<Garbage>)
where
    F: FnOnce() -> Option<Box<dyn std::any::Any + Send>> + Send + 'static,
{
    let outer = DROPPING.with(Cell::get);
    if !outer.is_null() {
        // SAFETY: a non-null `DROPPING` points to the `queue` of the `drop_loop` call below
        // on this same thread, which is still running (it is the caller, some frames up): it
        // resets `DROPPING` to null, also when unwinding, before `queue` goes out of scope. It
        // borrows `queue` only for a `pop`, never while a batch runs, so this borrow cannot
        // overlap another.
        let queue = unsafe { &*outer };
        let mut queue = queue.borrow_mut();
        queue.push(Box::new(first));
        queue.extend(garbage);
        return;
    }
    let queue = RefCell::new(garbage);
    /// Resets `DROPPING` when the loop ends, also when it unwinds.
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            DROPPING.with(|d| d.set(ptr::null()));
        }
    }
    DROPPING.with(|d| d.set(&queue));
    let reset = Reset;
    // Catches its own panics (`drop_caught`, or a cycle's batch).
    let mut panicked = first();
    loop {
        // FIFO order is not needed; popping from the end keeps each step O(1).
        let next = queue.borrow_mut().pop();
        let Some(g) = next else { break };
        // Runs the user's `Drop`s; a batch catches their panics itself.
        if let Some(p) = g() {
            panicked.get_or_insert(p);
        }
    }
    drop(reset);
    if let Some(p) = panicked {
        std::panic::resume_unwind(p);
    }
}

pub(crate) struct Driver {
    /// Period, or `None` when stopped.
    interval: Option<Duration>,
    /// Whether the interval was set by the user (then pool registration does not start the
    /// driver with the default).
    configured: bool,
    /// Whether the thread exists.
    started: bool,
    /// Bumped on every change, so the thread notices while it sleeps.
    generation: u64,
    /// In a forked child: the parent's driver thread was running, and the child's is to be
    /// started by the next call of [`after_fork_check`].
    restart: bool,
}

static DRIVER: Mutex<Driver> = Mutex::new(Driver {
    interval: None,
    configured: false,
    started: false,
    generation: 0,
    restart: false,
});

/// Set in a forked child by the `fork` handler: the driver thread of the parent is not there.
static FORKED: AtomicBool = AtomicBool::new(false);
static WAKE: Condvar = Condvar::new();

fn driver() -> MutexGuard<'static, Driver> {
    DRIVER.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg_attr(any(miri, reuse_pool_loom, not(unix)), allow(dead_code))]
/// Holds the driver's lock (for the `fork` handlers).
pub(crate) fn driver_lock() -> MutexGuard<'static, Driver> {
    driver()
}

#[cfg_attr(any(miri, reuse_pool_loom, not(unix)), allow(dead_code))]
/// In a forked child, from the `fork` handler (no other thread runs): the driver thread did not
/// survive the fork. Only flags are written here; the thread is started again by
/// [`after_fork_check`], outside the handler.
pub(crate) fn after_fork_in_child(d: &mut Driver) {
    d.restart = d.started;
    d.started = false;
    // Relaxed: read by this thread, or by threads it starts later (ordered by their spawn).
    FORKED.store(true, Ordering::Relaxed);
}

/// Restarts automatic cycles in a forked child whose parent ran them. Called on every cold path
/// of the pools (misses, spills, registration) and by the functions of this module, so a child
/// that keeps using a pool resumes its cycles.
#[inline]
pub(crate) fn after_fork_check() {
    // Relaxed: see `after_fork_in_child`.
    if FORKED.load(Ordering::Relaxed) {
        restart_after_fork();
    }
}

#[cold]
fn restart_after_fork() {
    let mut d = driver();
    if FORKED.swap(false, Ordering::Relaxed) && d.restart {
        d.restart = false;
        if d.interval.is_some() {
            start(&mut d);
        }
    }
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
    after_fork_check();
    if let Some(d) = interval {
        assert!(
            !d.is_zero(),
            "reuse_pool::set_cleanup_interval: cleanup interval must be non-zero (use None to stop)"
        );
    }
    let mut d = driver();
    d.interval = interval;
    d.configured = true;
    d.generation += 1;
    if interval.is_some() {
        start(&mut d);
    }
    WAKE.notify_all();
}

/// The current period of automatic cleanup, `None` if stopped.
pub fn cleanup_interval() -> Option<Duration> {
    crate::fork::init();
    after_fork_check();
    let d = driver();
    if d.configured || d.started {
        d.interval
    } else {
        Some(DEFAULT_CLEANUP_INTERVAL)
    }
}

/// Called when a pool registers: applies the default on first use.
pub(crate) fn pool_registered() {
    after_fork_check();
    let mut d = driver();
    if !d.configured && !d.started {
        d.interval = Some(DEFAULT_CLEANUP_INTERVAL);
        start(&mut d);
    }
}

fn start(d: &mut Driver) {
    if d.started {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("reuse-pool-cleanup".into())
        .spawn(run_driver);
    // If no thread can be spawned, automatic cleanup stays off and `cleanup()` still works.
    d.started = spawned.is_ok();
}

fn run_driver() {
    let mut d = driver();
    loop {
        let Some(period) = d.interval else {
            d = WAKE.wait(d).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        let generation = d.generation;
        let deadline = Instant::now() + period;
        loop {
            let now = Instant::now();
            if now >= deadline || d.generation != generation {
                break;
            }
            d = WAKE
                .wait_timeout(d, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if d.generation != generation {
            continue;
        }
        drop(d);
        if registry::len() > 0 {
            // A panicking `Drop` of a cached object must not stop the driver.
            let _ = std::panic::catch_unwind(cleanup);
        }
        d = driver();
    }
}
