//! The global registry of live pools, which a cleanup cycle visits in O(pools + threads).
//!
//! A pool registers its [`Tiers`](crate::tiers::Tiers) on first use and unregisters when it
//! drops. The registry and the cycle lock are process-wide `std` statics (loom cannot model
//! statics; the per-pool steps they call are what the loom models check).

use std::any::Any;
use std::cell::Cell;
use std::sync::{Arc, Mutex, MutexGuard};

/// What a cleanup cycle needs from a pool, with the object type erased.
pub(crate) trait Cycle: Send + Sync {
    /// Step 1: sets the reclaim flag of every per-thread cache. Returns whether there was any.
    fn flag(&self) -> bool;
    /// Step 2, after the heavy barrier: retires every flagged cache (no user code runs).
    fn retire(&self);
    /// Step 3: installs what `retire` collected as the new victim tier and drops the old one.
    /// Panics from `T::drop` are caught; the first is kept in `panicked`.
    fn rotate(&self, panicked: &mut Option<Box<dyn Any + Send>>);
    /// Marks the pool dropped, so that a cycle in progress skips it.
    fn mark_dead(&self);
}

static POOLS: Mutex<Vec<Arc<dyn Cycle>>> = Mutex::new(Vec::new());

/// Serialises cleanup cycles with each other and with pool drops.
static CYCLE: Mutex<()> = Mutex::new(());

thread_local! {
    /// True on the thread running a cycle, while it runs. A `Drop` of a cached object that
    /// drops a pool or calls `cleanup()` must not wait for the cycle lock it already holds.
    static IN_CYCLE: Cell<bool> = const { Cell::new(false) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Holds the cycle lock (unless this thread is already inside a cycle) and marks the thread.
pub(crate) struct CycleGuard {
    _lock: Option<MutexGuard<'static, ()>>,
    outer: bool,
}

impl CycleGuard {
    /// `None` when called from inside a cycle on this thread.
    pub(crate) fn enter() -> Option<CycleGuard> {
        if IN_CYCLE.with(Cell::get) {
            return None;
        }
        let l = lock(&CYCLE);
        IN_CYCLE.with(|c| c.set(true));
        Some(CycleGuard {
            _lock: Some(l),
            outer: true,
        })
    }
}

impl Drop for CycleGuard {
    fn drop(&mut self) {
        if self.outer {
            IN_CYCLE.with(|c| c.set(false));
        }
    }
}

pub(crate) fn register(pool: Arc<dyn Cycle>) {
    lock(&POOLS).push(pool);
    crate::cleanup::pool_registered();
}

/// Removes `pool` from the registry and marks it dead, after any cycle in progress on another
/// thread has finished.
pub(crate) fn unregister(pool: &Arc<dyn Cycle>) {
    let _cycle = CycleGuard::enter();
    pool.mark_dead();
    let target = Arc::as_ptr(pool) as *const ();
    let mut pools = lock(&POOLS);
    if let Some(i) = pools
        .iter()
        .position(|p| Arc::as_ptr(p) as *const () == target)
    {
        pools.swap_remove(i);
    }
}

/// The pools registered now.
pub(crate) fn snapshot() -> Vec<Arc<dyn Cycle>> {
    lock(&POOLS).clone()
}

/// Number of registered pools.
pub(crate) fn len() -> usize {
    lock(&POOLS).len()
}
