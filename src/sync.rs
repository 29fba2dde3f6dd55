//! The one place every synchronisation primitive comes from.
//!
//! Under `--cfg reuse_pool_loom` the atomics, `UnsafeCell`, `Arc`, `Mutex` and the spin hint come
//! from [`loom`], so the model checker sees every hand-off of the pool's own code. Everything else
//! in the crate imports these names from `crate::sync`, never from `std` directly (tokio's
//! `src/loom/` and sharded-slab's `src/sync.rs` follow the same pattern).
//!
//! The global registry of pools, the thread-id allocator and the automatic cleanup driver are
//! process-wide `static`s. loom cannot model statics, so those use `std` types in every
//! configuration and the loom models drive the per-pool functions directly.

#[cfg(not(reuse_pool_loom))]
mod imp {
    pub(crate) use std::sync::atomic::{
        compiler_fence, fence, AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering,
    };
    #[allow(unused_imports)]
    pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

    /// Called in a loop that waits for another thread's short critical section.
    #[inline]
    pub(crate) fn spin_wait(step: &mut u32) {
        if *step < 6 {
            for _ in 0..(1u32 << *step) {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
        *step = step.saturating_add(1);
    }

    /// `UnsafeCell` with loom's closure-based interface, so that loom can track every access.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) fn new(value: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(reuse_pool_loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{
        fence, AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize,
    };
    #[allow(unused_imports)]
    pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
    pub(crate) use std::sync::atomic::Ordering;

    /// A compiler fence orders nothing between threads in the memory model that loom checks, so
    /// the model leaves it out: the owner's protocol must hold by its full fence alone (under
    /// loom `membarrier` is never in use, and `Local::enter` always runs `barrier::light`).
    pub(crate) fn compiler_fence(_order: Ordering) {}

    /// Under loom a waiting loop must yield so that the other thread can be scheduled.
    pub(crate) fn spin_wait(_step: &mut u32) {
        loom::thread::yield_now();
    }

    /// loom's `UnsafeCell`, with the same interface as the std wrapper.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(loom::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) fn new(value: T) -> Self {
            UnsafeCell(loom::cell::UnsafeCell::new(value))
        }

        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            self.0.with_mut(f)
        }
    }
}

pub(crate) use imp::*;

/// Locks `mutex`, ignoring poisoning.
///
/// No user code runs while one of the crate's locks is held (user drops, `reset` and `keep_if`
/// always run after the guard is released), so a poisoned lock never guards a broken invariant.
#[inline]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    #[cfg(not(reuse_pool_loom))]
    {
        mutex.lock().unwrap_or_else(|e| e.into_inner())
    }
    #[cfg(reuse_pool_loom)]
    {
        mutex.lock().unwrap()
    }
}

/// A minimal spin lock whose lock and unlock can also be called apart ([`SpinLock::raw_lock`],
/// [`SpinLock::raw_unlock`]), so that the `fork` handlers can hold it across the `fork` call
/// (`crate::fork`). Holders run none of the user's code and never block, so waiters spin
/// briefly and then yield.
pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is accessed only by the thread holding `locked` (acquire on lock, release on
// unlock order the accesses), and it moves between threads only as `T: Send` allows.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub(crate) fn new(value: T) -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Runs `f` with the lock held. `f` must not run user code or take another lock.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        /// Unlocks on every way out, unwinding included.
        struct Unlock<'a, T>(&'a SpinLock<T>);
        impl<T> Drop for Unlock<'_, T> {
            fn drop(&mut self) {
                // SAFETY: created just after `raw_lock` returned on this thread.
                unsafe { self.0.raw_unlock() }
            }
        }
        self.raw_lock();
        let _unlock = Unlock(self);
        self.value.with_mut(|v| {
            // SAFETY: we hold the lock, so no other thread accesses `value`, and `f` cannot
            // re-enter this lock (it takes none).
            f(unsafe { &mut *v })
        })
    }

    /// Takes the lock; the caller must call [`raw_unlock`](Self::raw_unlock) on the same lock.
    pub(crate) fn raw_lock(&self) {
        let mut step = 0;
        // Acquire: pairs with the release in `raw_unlock`, so the previous holder's accesses
        // happen-before ours.
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spin_wait(&mut step);
        }
    }

    /// Releases the lock.
    ///
    /// # Safety
    ///
    /// The calling thread took the lock with `raw_lock` (or, in a forked child, the thread that
    /// forked took it) and no access to the value is still open.
    pub(crate) unsafe fn raw_unlock(&self) {
        // store-release: pairs with the acquire in `raw_lock`.
        self.locked.store(false, Ordering::Release);
    }
}

impl<T> std::fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpinLock { .. }")
    }
}

/// Owner-only counter increment: a plain load and store, never a read-modify-write.
///
/// Only the thread that owns the counter writes it, so no increment is lost; readers on other
/// threads see an approximate, monotonically growing value.
#[inline(always)]
pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}
