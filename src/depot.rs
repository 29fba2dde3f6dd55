//! The per-CPU depot: full magazines that overflowed a thread's bounded cache (Go's per-P
//! `shared`, Bonwick's magazine depot, tcmalloc's transfer cache).
//!
//! One lock-free [`MagStack`] per CPU, each on its own cache line. A thread whose cache is full
//! pushes a whole magazine to the shard of the CPU it runs on; a thread whose cache is empty pops
//! one from its CPU's shard first, then from the others. Each transfer is one compare-and-swap
//! on the shard's `head` plus an epoch pin (which writes only the thread's own epoch record), for
//! a whole magazine: never an atomic operation per object.
//!
//! The bound is the pool's [`max_shared`](crate::Pool::max_shared) setting, in objects, for all
//! shards together (so memory does not grow with the number of CPUs); each shard holds up to its
//! share, rounded up to whole magazines, and a push to a full shard tries the others before the
//! magazine is dropped.
//!
//! Cleanup ages the depot like every other tier: a cycle takes every shard whole (one swap each,
//! O(shards)) and moves it to the victim tier.

use crate::epoch;
use crate::stack::{Chain, MagStack};
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Shards per depot: the CPUs this process may run on, at most [`MAX_SHARDS`].
///
/// Computed by whichever threads find it unknown (0) and stored by each: no `Once`, which a
/// `fork` could leave "running" for good in the child (see `Engine` in `pool.rs`). Threads may
/// see different counts only if the affinity changed in between, and any count is correct.
pub(crate) fn shard_count() -> usize {
    static SHARDS: AtomicUsize = AtomicUsize::new(0);
    let known = SHARDS.load(Ordering::Relaxed);
    if known != 0 {
        return known;
    }
    let n = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_SHARDS);
    SHARDS.store(n, Ordering::Relaxed);
    n
}

/// Default bound on the objects in a pool's depot, all shards together (see
/// [`Pool::max_shared`](crate::Pool::max_shared)).
pub const DEFAULT_MAX_SHARED: usize = 8192;

/// Most shards per depot, however many CPUs the machine has.
pub(crate) const MAX_SHARDS: usize = 256;

/// The CPU the calling thread runs on, as a shard index hint (any value is correct, only
/// the spread matters). Linux: `sched_getcpu` (glibc reads it from rseq, no system call).
/// Elsewhere, under Miri and under loom: the thread's pool index.
#[inline]
fn current_cpu() -> usize {
    #[cfg(all(target_os = "linux", not(miri), not(reuse_pool_loom)))]
    {
        // SAFETY: `sched_getcpu` takes no arguments and touches no memory of ours.
        let cpu = unsafe { libc::sched_getcpu() };
        if cpu >= 0 {
            return cpu as usize;
        }
    }
    crate::thread_id::index_or_huge()
}

/// A pool's depot.
pub(crate) struct Depot<T> {
    shards: Box<[CachePadded<MagStack<T>>]>,
    /// Most magazines per shard; zero disables the depot.
    per_shard: usize,
}

impl<T> std::fmt::Debug for Depot<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Depot")
            .field("shards", &self.shards.len())
            .field("per_shard", &self.per_shard)
            .finish()
    }
}

impl<T: Send> Depot<T> {
    /// A depot for up to `max_objects` objects in magazines of `batch`, over `shards` shards.
    pub(crate) fn new(max_objects: usize, batch: usize, shards: usize) -> Self {
        let shards = shards.max(1);
        let magazines = max_objects.div_ceil(batch.max(1));
        Depot {
            shards: (0..shards)
                .map(|_| CachePadded::new(MagStack::new()))
                .collect(),
            per_shard: magazines.div_ceil(shards),
        }
    }

    /// Most magazines the depot holds.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.per_shard * self.shards.len()
    }

    /// Whether the depot can hold anything (its bound is not zero).
    pub(crate) fn is_enabled(&self) -> bool {
        self.per_shard > 0
    }

    /// Moves a full magazine into the depot: the current CPU's shard, or the next one with room.
    /// Hands it back when every shard is full (the caller drops it, outside every lock and pin).
    pub(crate) fn push(&self, mut mag: Vec<T>) -> Result<(), Vec<T>> {
        if self.per_shard == 0 {
            return Err(mag);
        }
        let n = self.shards.len();
        let start = current_cpu() % n;
        let guard = epoch::pin();
        for k in 0..n {
            match self.shards[(start + k) % n].push(mag, self.per_shard, &guard) {
                Ok(()) => return Ok(()),
                Err(m) => mag = m,
            }
        }
        Err(mag)
    }

    /// A full magazine: from the current CPU's shard, else from the next one holding any.
    pub(crate) fn pop(&self) -> Option<Vec<T>> {
        let n = self.shards.len();
        let start = current_cpu() % n;
        // The hint loads touch no node: a miss with an empty depot pins nothing.
        let first = (0..n).find(|k| !self.shards[(start + k) % n].is_empty())?;
        let guard = epoch::pin();
        (first..n).find_map(|k| self.shards[(start + k) % n].pop(&guard))
    }

    /// Whether every shard looked empty (a hint).
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.is_empty())
    }

    /// Cleanup: takes every shard whole (one swap each), for the victim tier.
    pub(crate) fn take_all(&self, out: &mut Vec<Chain<T>>) {
        for s in self.shards.iter() {
            if !s.is_empty() {
                let chain = s.take_all();
                if !chain.is_empty() {
                    out.push(chain);
                }
            }
        }
    }
}

#[cfg(all(test, not(reuse_pool_loom)))]
mod tests {
    use super::*;

    #[test]
    fn bound_is_shared_by_the_shards() {
        // 10 objects in magazines of 2: 5 magazines over 2 shards, 3 per shard (rounded up).
        let d = Depot::new(10, 2, 2);
        assert_eq!(d.capacity(), 6);
        for i in 0..6 {
            assert!(d.push(vec![i, i]).is_ok(), "magazine {i}");
        }
        assert_eq!(d.push(vec![9, 9]), Err(vec![9, 9]), "every shard is full");
        let mut got = 0;
        while d.pop().is_some() {
            got += 1;
        }
        assert_eq!(got, 6);
        assert!(d.is_empty());
    }

    #[test]
    fn zero_bound_disables_it() {
        let d = Depot::new(0, 32, 4);
        assert_eq!(d.push(vec![1]), Err(vec![1]));
        assert!(d.pop().is_none());
    }

    #[test]
    fn take_all_empties_every_shard() {
        let d = Depot::new(100, 1, 3);
        for i in 0..9 {
            d.push(vec![i]).unwrap();
        }
        let mut chains = Vec::new();
        d.take_all(&mut chains);
        assert!(d.is_empty());
        let mut mags = Vec::new();
        for mut c in chains {
            c.drain_into(&mut mags);
        }
        let mut all: Vec<i32> = mags.into_iter().flatten().collect();
        all.sort_unstable();
        assert_eq!(all, (0..9).collect::<Vec<_>>());
    }
}
