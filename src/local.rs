//! One thread's cache for one pool: the private magazine and the thread's own deque.
//!
//! Go's `poolLocal` holds one `private` object and a `shared` chain; here the private slot is a
//! small magazine (up to [`MAGAZINE`] objects) and the shared part is a `crossbeam-deque`
//! [`Worker`] whose [`Stealer`] other threads use.
//!
//! # Who touches what
//!
//! * `magazine`: the owner thread, lock-free, inside a `busy` window (see below); or whoever holds
//!   `slow`: the owner on its slow paths, cleanup when it retires the cache, the pool's drop.
//! * `slow` (the worker): only under its lock. The owner's slow paths batch many objects per lock.
//! * `stealer`: any thread, lock-free (epoch-protected); replaced by cleanup under `slow`.
//! * counters: written by the owner only (plain load + store), read by anyone.
//!
//! # The reclaim protocol
//!
//! The owner's fast path is `busy = true; light fence; if reclaim { slow path } touch magazine;
//! busy = false (release)`. Cleanup sets `reclaim` on every cache of every pool, executes one heavy
//! fence ([`crate::barrier`]), then for each cache waits until `busy` is false, takes the lock,
//! retires the magazine and the deque, and clears `reclaim` (release). The Dekker argument:
//! an owner operation that read `reclaim == false` had its `busy = true` visible to cleanup, so
//! cleanup waits for it to end (and synchronises with its release store); every later operation
//! reads `reclaim == true` and goes through the lock until cleanup clears the flag, and reading
//! the cleared flag (acquire) makes cleanup's changes to the magazine visible.
//!
//! Nothing inside a `busy` window can panic or block: it is a `Vec::pop`, or a `Vec::push` below
//! the capacity reserved at creation.

use crate::barrier;
use crate::deque::{EpochCell, Steal, Stealer, Worker};
use crate::sync::{bump, lock, spin_wait, AtomicBool, AtomicU64, Mutex, Ordering, UnsafeCell};
use crossbeam_utils::CachePadded;
use std::mem;

/// Largest number of objects in a thread's private magazine.
///
/// Objects in a magazine are reachable by other threads only after a cleanup cycle, so this is
/// also the most that a parked thread can keep away from the others between cycles.
pub const MAGAZINE: usize = 8;

/// Per-cache counters. Written by the owner with plain stores, so counts are exact per thread
/// and approximate when summed while threads are running.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) victim_hits: AtomicU64,
    pub(crate) puts: AtomicU64,
    pub(crate) drops: AtomicU64,
}

/// The part of the cache that the owner touches on every operation.
#[derive(Debug)]
struct Hot<T> {
    /// True while the owner is inside a lock-free touch of `magazine`.
    /// Written by the owner only; read by cleanup.
    busy: AtomicBool,
    /// Set by cleanup for the duration of a cycle; while it is set the owner takes `slow`'s lock
    /// for every operation. Written by cleanup only; read by the owner.
    reclaim: AtomicBool,
    /// The private magazine. Capacity `mag_cap` is reserved at creation and never exceeded, so a
    /// push inside a `busy` window never allocates.
    magazine: UnsafeCell<Vec<T>>,
    /// Most objects the magazine holds (1..=MAGAZINE).
    mag_cap: usize,
    /// The thread's deque. The owner pushes and pops at the back under this lock; other threads
    /// steal from the front through `stealer` without it.
    slow: Mutex<Worker<T>>,
    /// Owner-written counters.
    counters: Counters,
}

/// One thread's cache for one pool.
#[derive(Debug)]
pub(crate) struct Local<T> {
    hot: CachePadded<Hot<T>>,
    /// Stealer of the current worker. Read by other threads on every steal, so it lives on its own
    /// cache line, away from the owner's stores.
    stealer: CachePadded<EpochCell<Stealer<T>>>,
}

// SAFETY: `magazine` is the only field that is not `Sync` by itself. It is accessed by the owner
// thread inside a `busy` window, or by a thread holding `slow`'s lock, and the reclaim protocol
// (module docs) proves that these never overlap. Every other field is `Sync` when `T: Send`, and
// objects only move between threads, which `T: Send` allows.
unsafe impl<T: Send> Sync for Local<T> {}

impl<T: Send + 'static> Local<T> {
    pub(crate) fn new(mag_cap: usize) -> Self {
        debug_assert!((1..=MAGAZINE).contains(&mag_cap));
        let worker = Worker::new_lifo();
        let stealer = worker.stealer();
        Local {
            hot: CachePadded::new(Hot {
                busy: AtomicBool::new(false),
                reclaim: AtomicBool::new(false),
                magazine: UnsafeCell::new(Vec::with_capacity(mag_cap)),
                mag_cap,
                slow: Mutex::new(worker),
                counters: Counters::default(),
            }),
            stealer: CachePadded::new(EpochCell::new(stealer)),
        }
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.hot.counters
    }

    /// Owner only: enters a lock-free window. Returns false if cleanup is reclaiming, in which
    /// case the window is already closed again and the caller must take the slow path.
    #[inline(always)]
    fn enter(&self) -> bool {
        let h = &*self.hot;
        h.busy.store(true, Ordering::Relaxed);
        // Orders the store above before the load below; `barrier::heavy` in cleanup is the
        // other half (see `crate::barrier`).
        barrier::light();
        // load-acquire: pairs with the store-release of `false` at the end of `retire`, so that
        // cleanup's changes to the magazine happen-before our use of it.
        if h.reclaim.load(Ordering::Acquire) {
            h.busy.store(false, Ordering::Release);
            return false;
        }
        true
    }

    /// Owner only: leaves a lock-free window.
    #[inline(always)]
    fn leave(&self) {
        // store-release: pairs with the load-acquire in `retire`'s wait, so our touch of the
        // magazine happens-before cleanup's.
        self.hot.busy.store(false, Ordering::Release);
    }

    /// Owner only: the fast path of `get`. `None` means "take the slow path".
    #[inline(always)]
    pub(crate) fn pop_fast(&self) -> Option<T> {
        if !self.enter() {
            return None;
        }
        let value = self.hot.magazine.with_mut(|m| {
            // SAFETY: we are the owner and inside a `busy` window that saw `reclaim == false`:
            // no other thread touches the magazine until we leave it (module docs).
            unsafe { (*m).pop() }
        });
        self.leave();
        if value.is_some() {
            bump(&self.hot.counters.hits, 1);
        }
        value
    }

    /// Owner only: the fast path of `put`. `Err` gives the object back for the slow path.
    #[inline(always)]
    pub(crate) fn push_fast(&self, value: T) -> Result<(), T> {
        if !self.enter() {
            return Err(value);
        }
        let cap = self.hot.mag_cap;
        let result = self.hot.magazine.with_mut(|m| {
            // SAFETY: as in `pop_fast`: owner, inside a window that saw `reclaim == false`.
            let m = unsafe { &mut *m };
            if m.len() < cap {
                // Never reallocates: `cap` slots were reserved in `new` and `len < cap`.
                m.push(value);
                Ok(())
            } else {
                Err(value)
            }
        });
        self.leave();
        if result.is_ok() {
            bump(&self.hot.counters.puts, 1);
        }
        result
    }

    /// Runs `f` on the magazine and the worker with the lock held.
    fn locked<R>(&self, f: impl FnOnce(&mut Vec<T>, &mut Worker<T>) -> R) -> R {
        let mut worker = lock(&self.hot.slow);
        self.hot.magazine.with_mut(|m| {
            // SAFETY: we hold `slow`'s lock. The owner touches the magazine without the lock only
            // inside a window that saw `reclaim == false`; a caller on another thread (cleanup,
            // pool drop) has either waited for `busy == false` after setting `reclaim`, or has
            // exclusive access to the pool. The owner itself does not hold a window here.
            f(unsafe { &mut *m }, &mut worker)
        })
    }

    /// Owner only: `get` when the magazine is empty or cleanup is reclaiming.
    ///
    /// Order of tiers: magazine, own deque (refilling half the magazine), then `steal_other`
    /// (other threads' deques, then the victim tier). Returns `None` when every tier is empty.
    #[cold]
    pub(crate) fn pop_slow(&self, steal_other: impl FnOnce(&Worker<T>) -> Option<T>) -> Option<T> {
        let (value, from_others) = self.locked(|mag, worker| {
            if let Some(v) = mag.pop() {
                return (Some(v), false);
            }
            if let Some(v) = worker.pop() {
                // Refill half the magazine so that the next gets take the fast path again.
                for _ in 0..self.hot.mag_cap / 2 {
                    match worker.pop() {
                        Some(x) => mag.push(x),
                        None => break,
                    }
                }
                return (Some(v), false);
            }
            (steal_other(worker), true)
        });
        if value.is_some() && !from_others {
            bump(&self.hot.counters.hits, 1);
        }
        value
    }

    /// Owner only: `put` when the magazine is full or cleanup is reclaiming.
    ///
    /// Spills the older half of the magazine to the deque; what does not fit under `deque_cap`
    /// is returned, to be dropped by the caller after the lock is released.
    #[cold]
    pub(crate) fn push_slow(&self, value: T, deque_cap: usize) -> Vec<T> {
        let cap = self.hot.mag_cap;
        let dropped = self.locked(|mag, worker| {
            if mag.len() < cap {
                mag.push(value);
                return Vec::new();
            }
            let spill = cap.div_ceil(2);
            let room = deque_cap.saturating_sub(worker.len());
            let mut dropped = Vec::new();
            for (i, x) in mag.drain(..spill).enumerate() {
                if i < room {
                    worker.push(x);
                } else {
                    dropped.push(x);
                }
            }
            mag.push(value);
            dropped
        });
        let c = &self.hot.counters;
        bump(&c.puts, 1);
        if !dropped.is_empty() {
            bump(&c.drops, dropped.len() as u64);
        }
        dropped
    }

    /// Any thread: steal from this cache's deque into `dest` (or one object if `dest` is None).
    pub(crate) fn steal(&self, dest: Option<&Worker<T>>) -> Option<T> {
        self.stealer.with(|s| loop {
            let r = match dest {
                Some(w) => s.steal_batch_and_pop(w),
                None => s.steal(),
            };
            match r {
                Steal::Success(v) => return Some(v),
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        })
    }

    /// Cleanup, step 1: announce the reclaim.
    pub(crate) fn flag(&self) {
        // Relaxed: ordered before the `busy` loads by `barrier::heavy`.
        self.hot.reclaim.store(true, Ordering::Relaxed);
    }

    /// Whether `flag` was called in the current cycle (only cleanup writes the flag).
    pub(crate) fn is_flagged(&self) -> bool {
        self.hot.reclaim.load(Ordering::Relaxed)
    }

    /// Cleanup, step 2, after `barrier::heavy`: moves the magazine into the deque and retires
    /// the deque whole, in O(1) plus the magazine. Returns the retired deque's stealer (the new
    /// victim tier's share of this cache), or `None` if the cache was empty.
    pub(crate) fn retire(&self) -> Option<Stealer<T>> {
        let mut step = 0;
        // load-acquire: pairs with the store-release in `leave`; see the module docs for why a
        // `false` here means no lock-free window is open and none can open until we are done.
        while self.hot.busy.load(Ordering::Acquire) {
            spin_wait(&mut step);
        }
        let retired = self.locked(|mag, worker| {
            if mag.is_empty() && worker.is_empty() {
                return None;
            }
            for x in mag.drain(..) {
                worker.push(x);
            }
            let fresh = Worker::new_lifo();
            self.stealer.replace(fresh.stealer(), |_| {});
            let old = mem::replace(worker, fresh);
            Some(old.stealer())
        });
        // store-release: pairs with the load-acquire in `enter`; the owner's next fast path sees
        // the emptied magazine.
        self.hot.reclaim.store(false, Ordering::Release);
        retired
    }

    /// Pool drop: everything this cache holds. The caller has exclusive use of the pool.
    pub(crate) fn drain_all(&self, out: &mut Vec<T>) {
        self.locked(|mag, worker| {
            out.append(mag);
            while let Some(x) = worker.pop() {
                out.push(x);
            }
        });
    }
}
