//! The automatic driver: a thread started lazily on the first use of any pool, unless
//! [`set_cleanup_interval`](crate::set_cleanup_interval) was called before, that runs a cleanup
//! cycle every [`DEFAULT_CLEANUP_INTERVAL`] by default; and its restart in a forked child.

use crate::drops;
use crate::registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Period of the automatic cleanup driver unless [`set_cleanup_interval`](crate::set_cleanup_interval)
/// says otherwise.
///
/// An idle object is therefore dropped after 5 to 10 seconds.
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(5);

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

/// Sets the period (see [`set_cleanup_interval`](crate::set_cleanup_interval), which checks it).
pub(crate) fn set_interval(interval: Option<Duration>) {
    after_fork_check();
    let mut d = driver();
    d.interval = interval;
    d.configured = true;
    d.generation += 1;
    if interval.is_some() {
        start(&mut d);
    }
    WAKE.notify_all();
}

/// The period in force (see [`cleanup_interval`](crate::cleanup_interval)).
pub(crate) fn interval() -> Option<Duration> {
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
            let _ = std::panic::catch_unwind(|| drops::drop_garbage(registry::run_cycle()));
        }
        d = driver();
    }
}
