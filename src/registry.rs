//! The global registry of live pools, which a cleanup cycle visits in O(pools + threads).
//!
//! A pool registers its [`Tiers`](crate::tiers::Tiers) on first use and unregisters when it
//! drops. The registry and the cycle lock are process-wide `std` statics (loom cannot model
//! statics; the per-pool steps they call are what the loom models check).

use crate::barrier;
pub(crate) use crate::drops::Garbage;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

static CYCLES: AtomicU64 = AtomicU64::new(0);

/// Number of cleanup cycles run so far in this process (the global epoch).
pub fn cycles() -> u64 {
    CYCLES.load(Ordering::Relaxed)
}

/// One cleanup cycle over every registered pool, under the cycle lock (see `crate::cleanup`):
/// returns what it aged out, for the caller to drop once no lock is held.
pub(crate) fn run_cycle() -> Vec<Garbage> {
    let _cycle = cycle_lock();
    CYCLES.fetch_add(1, Ordering::Relaxed);
    let pools = snapshot();
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
    pools.into_iter().filter_map(|p| p.rotate()).collect()
}

/// What a cleanup cycle needs from a pool, with the object type erased.
///
/// No step runs code that the crate does not own: objects leave a pool only as [`Garbage`],
/// which the caller drops after releasing every lock.
pub(crate) trait Cycle: Send + Sync {
    /// Step 1: sets the reclaim flag of every per-thread cache. Returns whether there was any.
    fn flag(&self) -> bool;
    /// Step 2, after the heavy barrier: retires every flagged cache.
    fn retire(&self);
    /// Step 3: installs what `retire` collected, and the depot's shards, as the new victim tier;
    /// returns the old one to drop.
    fn rotate(self: Arc<Self>) -> Option<Garbage>;
    /// Marks the pool dropped, so that a cycle in progress skips it.
    fn mark_dead(&self);
    #[cfg_attr(any(miri, reuse_pool_loom, not(unix)), allow(dead_code))]
    /// `fork` prepare handler: takes the pool's own locks that any thread may hold.
    fn fork_lock(&self);
    #[cfg_attr(any(miri, reuse_pool_loom, not(unix)), allow(dead_code))]
    /// `fork` parent and child handlers: releases what `fork_lock` took.
    ///
    /// # Safety
    ///
    /// `fork_lock` ran on the calling thread (in the child: on the thread that forked), and this
    /// is the only release for it.
    unsafe fn fork_unlock(&self);
    #[cfg_attr(any(miri, reuse_pool_loom, not(unix)), allow(dead_code))]
    /// `fork` child handler: freezes the caches of the thread indices that `owned_elsewhere`
    /// names (held by threads that do not exist in the child).
    fn freeze_owned_elsewhere(&self, owned_elsewhere: &dyn Fn(usize) -> bool);
}

static POOLS: Mutex<Vec<Arc<dyn Cycle>>> = Mutex::new(Vec::new());

/// Serialises cleanup cycles with each other and with pool drops. No code that the crate does
/// not own runs while it is held.
static CYCLE: Mutex<()> = Mutex::new(());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Holds the cycle lock.
pub(crate) fn cycle_lock() -> MutexGuard<'static, ()> {
    lock(&CYCLE)
}

#[cfg_attr(any(miri, reuse_pool_loom, not(unix)), allow(dead_code))]
/// Holds the registry's list lock (for the `fork` handlers).
pub(crate) fn pools_lock() -> MutexGuard<'static, Vec<Arc<dyn Cycle>>> {
    lock(&POOLS)
}

pub(crate) fn register(pool: Arc<dyn Cycle>) {
    lock(&POOLS).push(pool);
}

/// Removes `pool` from the registry and marks it dead, after any cycle in progress has finished.
pub(crate) fn unregister(pool: &Arc<dyn Cycle>) {
    let _cycle = lock(&CYCLE);
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
