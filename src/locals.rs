//! A pool's table of per-thread caches, indexed by [`crate::thread_id`].
//!
//! A flat array for the first 1,024 indices, then buckets of doubling size of pointers to boxed
//! [`Local`]s, as in the `thread_local` crate: lookup is one load (two above 1,024), no lock, no
//! read-modify-write. The flat part is that large so that a hit costs the same on every thread of
//! a process with up to 1,024 threads using the pool at once: the bucket's extra dependent load
//! made the hit 1.3-1.4x slower on the threads past a 64-entry flat part
//! (`benches/hit_spread.rs`). It costs 8 KiB per pool, allocated with the pool's storage on its
//! first use.
//! A cache, once installed, lives as long as the pool. When its thread exits the cache stays
//! where it is: other threads keep stealing from its deque, cleanup keeps ageing it, and the next
//! thread that receives the same index becomes its owner. The table therefore never holds more
//! caches than the largest number of threads that used the pool at once.

use crate::local::Local;
use crate::placement::{self, Span};
use crate::sync::{AtomicPtr, AtomicUsize, Ordering};
use crate::thread_id::{bucket_len, ThreadId, BUCKETS};
use std::marker::PhantomData;
use std::ptr;

/// Indices below this are looked up in a flat array, without bucket arithmetic. Smaller in the
/// loom models and under Miri, which build storage in every execution or test and use a few
/// indices: under Miri the 1,024 entries made the CI's fast run 3.5x slower (877 s against
/// 249 s), for no path that 64 does not take.
const DIRECT: usize = if cfg!(any(reuse_pool_loom, miri)) {
    64
} else {
    1024
};

pub(crate) struct Locals<T> {
    /// Caches of threads `0..DIRECT`: null until installed, then fixed until `drop`.
    direct: [AtomicPtr<Local<T>>; DIRECT],
    /// Bucket `b` points to `bucket_len(b)` entries, or is null until first needed.
    /// Set once (compare-exchange from null), freed only in `drop`.
    /// A fixed-size array, so that the bucket index (always below `BUCKETS`) needs no bounds check.
    buckets: [AtomicPtr<AtomicPtr<Local<T>>>; BUCKETS],
    /// One past the largest index with an installed cache; only grows.
    len: AtomicUsize,
    /// The table owns `Local<T>`s (auto traits follow `Local<T>`, not the raw pointers).
    _owns: PhantomData<Box<Local<T>>>,
}

impl<T> std::fmt::Debug for Locals<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locals")
            .field("len", &self.len.load(Ordering::Relaxed))
            .finish()
    }
}

impl<T: Send + 'static> Locals<T> {
    pub(crate) fn new() -> Self {
        Locals {
            direct: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            buckets: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            len: AtomicUsize::new(0),
            _owns: PhantomData,
        }
    }

    /// The cache of thread `t`, if installed.
    #[inline(always)]
    pub(crate) fn get(&self, t: ThreadId) -> Option<&Local<T>> {
        if t.id < DIRECT {
            // load-acquire: pairs with the store-release in `install`.
            let local = self.direct[t.id].load(Ordering::Acquire);
            // SAFETY: a non-null entry points to a boxed `Local` that lives until `drop`.
            return unsafe { local.as_ref() };
        }
        self.get_bucketed(t)
    }

    /// The cache of thread index `id` if installed, for the fast paths: one bounds check and one
    /// load in the flat part of the table, the bucket arithmetic and two loads beyond it (inline
    /// in both cases, but one dependent load more past the flat part). `None` for the values
    /// [`thread_id::index_or_huge`](crate::thread_id::index_or_huge) gives a thread without an
    /// index (`usize::MAX` and `usize::MAX - 1`) and for a cache not installed yet.
    #[inline(always)]
    pub(crate) fn get_direct(&self, id: usize) -> Option<&Local<T>> {
        if let Some(entry) = self.direct.get(id) {
            // load-acquire: pairs with the store-release in `install`.
            let local = entry.load(Ordering::Acquire);
            // SAFETY: a non-null entry points to a boxed `Local` that lives until `drop`.
            return unsafe { local.as_ref() };
        }
        if id >= usize::MAX - 1 {
            return None;
        }
        self.get_bucketed(ThreadId::new(id))
    }

    /// The address of the flat table's entry for index `id`, which a hit on that thread loads
    /// (what an install places the cache away from, and the layout diagnostic
    /// `Pool::hit_addresses`); `None` past the flat part.
    pub(crate) fn entry_address(&self, id: usize) -> Option<usize> {
        Some(self.direct.get(id)? as *const AtomicPtr<Local<T>> as usize)
    }

    #[inline(always)]
    fn get_bucketed(&self, t: ThreadId) -> Option<&Local<T>> {
        // load-acquire: pairs with the compare-exchange that published the bucket.
        let bucket = self.buckets[t.bucket].load(Ordering::Acquire);
        if bucket.is_null() {
            return None;
        }
        // SAFETY: a non-null bucket points to `bucket_len(t.bucket)` initialised entries and
        // `t.index < bucket_len(t.bucket)` by construction of `ThreadId`; buckets are freed only
        // in `drop`, which cannot run while `&self` is borrowed.
        let entry = unsafe { &*bucket.add(t.index) };
        // load-acquire: pairs with the store-release in `install`, so the cache's initialisation
        // is visible to any thread that finds it.
        let local = entry.load(Ordering::Acquire);
        // SAFETY: a non-null entry points to a boxed `Local` that lives until `drop`.
        unsafe { local.as_ref() }
    }

    /// Installs the cache of the current thread `t`, placed away from `avoid` modulo 4 KiB
    /// (`crate::placement`): `make` builds the cache, given the span of the hot line it will
    /// have, so that its magazine can be placed away from that too. Only the thread holding
    /// index `t` calls this, and only when `get(t)` is `None`.
    #[cold]
    pub(crate) fn install(
        &self,
        t: ThreadId,
        avoid: &[Span],
        make: impl FnOnce(Span) -> Local<T>,
    ) -> &Local<T> {
        let entry = if t.id < DIRECT {
            &self.direct[t.id]
        } else {
            self.bucket_entry(t)
        };
        let mut boxed = placement::box_clear_of::<Local<T>>(Local::<T>::hot_span, avoid);
        let hot = Local::<T>::hot_span(boxed.as_ptr() as usize);
        boxed.write(make(hot));
        // SAFETY: the line above initialised the box's value.
        let local = Box::into_raw(unsafe { boxed.assume_init() });
        debug_assert!(entry.load(Ordering::Relaxed).is_null());
        // store-release: pairs with the load-acquire in `get`. No other thread writes this entry:
        // only the holder of index `t` installs it, and indices are unique among live threads.
        entry.store(local, Ordering::Release);
        self.len.fetch_max(t.id + 1, Ordering::Release);
        // SAFETY: just boxed; lives until `drop`.
        unsafe { &*local }
    }

    /// The entry of `t` in the bucketed part, allocating its bucket if needed.
    fn bucket_entry(&self, t: ThreadId) -> &AtomicPtr<Local<T>> {
        let slot = &self.buckets[t.bucket];
        let mut bucket = slot.load(Ordering::Acquire);
        if bucket.is_null() {
            let fresh: Box<[AtomicPtr<Local<T>>]> = (0..bucket_len(t.bucket))
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect();
            let fresh = Box::into_raw(fresh) as *mut AtomicPtr<Local<T>>;
            // AcqRel: release publishes the initialised entries; acquire (on failure too) sees
            // the winner's entries.
            match slot.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => bucket = fresh,
                Err(winner) => {
                    // SAFETY: `fresh` came from `Box::into_raw` of a slice of this length just
                    // above and was never shared.
                    drop(unsafe {
                        Box::from_raw(ptr::slice_from_raw_parts_mut(fresh, bucket_len(t.bucket)))
                    });
                    bucket = winner;
                }
            }
        }
        // SAFETY: as in `get`: non-null bucket, index in bounds, alive for `&self`.
        unsafe { &*bucket.add(t.index) }
    }

    /// One past the largest installed index.
    pub(crate) fn len(&self) -> usize {
        // load-acquire: pairs with the `fetch_max` in `install`.
        self.len.load(Ordering::Acquire)
    }

    /// The cache at raw index `id`, if installed.
    pub(crate) fn at(&self, id: usize) -> Option<&Local<T>> {
        self.get(ThreadId::new(id))
    }

    /// Calls `f` on every installed cache.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Local<T>)) {
        for id in 0..self.len() {
            if let Some(l) = self.at(id) {
                f(l);
            }
        }
    }
}

/// Frees a cache at the table's drop, unless a fork froze it: a frozen cache belonged to a
/// thread that does not exist in this (forked) process and may have been cut off in the middle
/// of an operation, so its magazine and deque are leaked, never dropped (`crate::fork`).
///
/// # Safety
///
/// `local` is null or came from `Box::into_raw` in `install`, and is freed nowhere else.
unsafe fn free_unless_frozen<T>(local: *mut Local<T>) {
    if local.is_null() {
        return;
    }
    // SAFETY: non-null, so a live box (the caller's contract); only read here.
    if unsafe { &*local }.is_frozen() {
        return;
    }
    // SAFETY: the caller's contract: a box from `Box::into_raw`, freed only here.
    drop(unsafe { Box::from_raw(local) });
}

impl<T> Drop for Locals<T> {
    fn drop(&mut self) {
        for entry in &self.direct {
            let local = entry.load(Ordering::Acquire);
            // SAFETY: installed by `install` from `Box::into_raw`, freed only here.
            unsafe { free_unless_frozen(local) };
        }
        for (b, slot) in self.buckets.iter().enumerate() {
            let bucket = slot.load(Ordering::Acquire);
            if bucket.is_null() {
                continue;
            }
            for i in 0..bucket_len(b) {
                // SAFETY: non-null bucket of `bucket_len(b)` entries, `i` in bounds; `&mut self`
                // means nothing else uses the table.
                let local = unsafe { &*bucket.add(i) }.load(Ordering::Acquire);
                // SAFETY: installed by `install` from `Box::into_raw`, freed only here.
                unsafe { free_unless_frozen(local) };
            }
            // SAFETY: allocated in `install` as a boxed slice of exactly this length.
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(bucket, bucket_len(b))) });
        }
    }
}
