//! Small, recycled per-thread indices.
//!
//! Every thread that uses a pool gets the smallest free index; the index goes back to the free
//! list when the thread exits, and the next new thread gets it together with the per-pool caches
//! that belong to it (see [`crate::locals`]). Indices therefore stay below the largest number of
//! threads ever alive at once, which is what bounds memory under thread churn.
//!
//! Unlike the `thread_local` crate, this module never panics when a pool is used from inside a
//! thread-local destructor: once the guard below has run, [`current`] returns `None` and the pool
//! falls back to a path that needs no per-thread state.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Mutex;

/// Index of the current thread in every pool's table of per-thread caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ThreadId {
    /// The index itself, `0..`.
    pub(crate) id: usize,
    /// `floor(log2(id + 1))`: which bucket of the table holds this thread.
    pub(crate) bucket: usize,
    /// Position inside that bucket.
    pub(crate) index: usize,
}

impl ThreadId {
    pub(crate) const fn new(id: usize) -> Self {
        let n = id + 1;
        let bucket = (usize::BITS - 1 - n.leading_zeros()) as usize;
        ThreadId {
            id,
            bucket,
            index: n - (1 << bucket),
        }
    }
}

/// Bucket `b` holds `bucket_len(b)` entries; together the buckets cover every `usize` index.
pub(crate) const fn bucket_len(bucket: usize) -> usize {
    1 << bucket
}

/// Number of buckets in a table.
pub(crate) const BUCKETS: usize = usize::BITS as usize;

pub(crate) struct Ids {
    next: usize,
    free: BinaryHeap<Reverse<usize>>,
}

impl Ids {
    #[cfg_attr(any(miri, reuse_pool_loom, not(unix)), allow(dead_code))]
    /// Whether index `id` is held by a thread (handed out and not given back).
    pub(crate) fn is_held(&self, id: usize) -> bool {
        id < self.next && !self.free.iter().any(|&Reverse(f)| f == id)
    }
}

#[cfg_attr(any(miri, reuse_pool_loom, not(unix)), allow(dead_code))]
/// Holds the allocator's lock (for the `fork` handlers).
pub(crate) fn ids_lock() -> std::sync::MutexGuard<'static, Ids> {
    IDS.lock().unwrap_or_else(|e| e.into_inner())
}

static IDS: Mutex<Ids> = Mutex::new(Ids {
    next: 0,
    free: BinaryHeap::new(),
});

/// `THREAD` holds `UNSET`, `DEAD`, or the thread's index plus one.
const UNSET: usize = 0;
const DEAD: usize = usize::MAX;

thread_local! {
    // A `const` thread-local without a destructor: reading it is a plain TLS load and works at
    // any point of the thread's life, during TLS destruction too.
    static THREAD: Cell<usize> = const { Cell::new(UNSET) };
    static GUARD: Guard = const { Guard { id: Cell::new(DEAD) } };
}

/// Gives the index back when the thread exits.
struct Guard {
    id: Cell<usize>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // From here on the thread has no index; later uses take the no-local paths.
        let _ = THREAD.try_with(|t| t.set(DEAD));
        let id = self.id.get();
        if id != DEAD {
            // The mutex release here happens-before the acquire in `register` of the next thread
            // that gets this index: everything this thread did to its caches is visible to it.
            let mut ids = IDS.lock().unwrap_or_else(|e| e.into_inner());
            ids.free.push(Reverse(id));
        }
    }
}

/// The current thread's index, or `None` if it has none yet or is exiting.
#[inline(always)]
pub(crate) fn current() -> Option<ThreadId> {
    let raw = THREAD.with(Cell::get);
    if raw == UNSET || raw == DEAD {
        None
    } else {
        Some(ThreadId::new(raw - 1))
    }
}

/// The current thread's raw index state: `0` (no index yet), `usize::MAX` (exiting), or the
/// index plus one. Two live threads never share an index, so a cache whose index plus one
/// equals this value belongs to the calling thread.
#[inline(always)]
pub(crate) fn raw() -> usize {
    THREAD.with(Cell::get)
}

/// The address of the calling thread's index cell (in its static TLS block), for the layout
/// diagnostic [`Pool::hit_addresses`](crate::Pool::hit_addresses).
pub(crate) fn tls_address() -> usize {
    THREAD.with(|c| c as *const Cell<usize> as usize)
}

/// The current thread's index as a plain number, for the fast paths: `usize::MAX` when the
/// thread has no index yet and `usize::MAX - 1` once it is exiting, so a single bounds check
/// rejects both.
#[inline(always)]
pub(crate) fn index_or_huge() -> usize {
    raw().wrapping_sub(1)
}

/// The current thread's index, allocating one on first use; `None` once the thread is exiting.
#[cold]
pub(crate) fn register() -> Option<ThreadId> {
    let raw = THREAD.with(Cell::get);
    if raw == DEAD {
        return None;
    }
    if raw != UNSET {
        return Some(ThreadId::new(raw - 1));
    }
    let id = {
        let mut ids = IDS.lock().unwrap_or_else(|e| e.into_inner());
        match ids.free.pop() {
            Some(Reverse(id)) => id,
            None => {
                let id = ids.next;
                ids.next += 1;
                id
            }
        }
    };
    // Registers the guard's destructor. This fails only while the thread's TLS is being torn
    // down; the index is then given back at once and the thread stays without one.
    if GUARD.try_with(|g| g.id.set(id)).is_err() {
        IDS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .free
            .push(Reverse(id));
        THREAD.with(|t| t.set(DEAD));
        return None;
    }
    THREAD.with(|t| t.set(id + 1));
    Some(ThreadId::new(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_arithmetic_covers_every_index_once() {
        let mut expected = (0usize, 0usize);
        for id in 0..10_000 {
            let t = ThreadId::new(id);
            assert_eq!((t.bucket, t.index), expected, "id {id}");
            expected.1 += 1;
            if expected.1 == bucket_len(expected.0) {
                expected = (expected.0 + 1, 0);
            }
        }
    }

    #[test]
    fn exited_thread_index_is_reused() {
        let a = std::thread::spawn(|| register().unwrap().id)
            .join()
            .unwrap();
        let b = std::thread::spawn(|| register().unwrap().id)
            .join()
            .unwrap();
        // Other tests run concurrently and may take the freed index first; what must hold is
        // that indices stay small instead of growing with every thread.
        let live_bound = 64;
        assert!(a < live_bound && b < live_bound, "{a} {b}");
        let me = register().expect("a running test thread gets an index");
        assert_eq!(
            current(),
            Some(me),
            "the index is cached after registration"
        );
    }
}
