//! The shared deque tier and the epoch-protected cells around it.
//!
//! In normal builds this is `crossbeam-deque` (a Chase-Lev deque: the owner pushes and pops at
//! one end, other threads steal from the other) and `crossbeam-epoch` (deferred destruction of
//! anything swapped out while another thread may still read it). Neither has loom support of its
//! own, so under `--cfg reuse_pool_loom` both are replaced by small mutex-based models with the
//! same interface: loom then checks the pool's own hand-offs around them.

#[cfg(not(reuse_pool_loom))]
mod imp {
    pub(crate) use crossbeam_deque::{Steal, Stealer, Worker};
    use crossbeam_epoch::{self as epoch, Atomic, Owned};
    use std::sync::atomic::Ordering;

    /// A value that readers use without locks while a writer may replace it at any time.
    ///
    /// A replaced value is destroyed only after every reader that could have loaded it has
    /// unpinned (crossbeam-epoch).
    pub(crate) struct EpochCell<X> {
        ptr: Atomic<X>,
    }

    impl<X: Send + 'static> EpochCell<X> {
        pub(crate) fn new(value: X) -> Self {
            EpochCell {
                ptr: Atomic::new(value),
            }
        }

        /// Runs `f` on the current value.
        #[inline]
        pub(crate) fn with<R>(&self, f: impl FnOnce(&X) -> R) -> R {
            let guard = epoch::pin();
            // load-acquire: pairs with the swap in `replace`, so the new value's contents are
            // visible before it is used.
            let shared = self.ptr.load(Ordering::Acquire, &guard);
            // SAFETY: the pointer is never null (set in `new`, replaced only by non-null values),
            // and a replaced value is destroyed through `defer_destroy`, which waits until
            // `guard`, pinned before the load, is released.
            f(unsafe { shared.deref() })
        }

        /// Installs `value`, runs `retire` on the old value, then schedules its destruction.
        pub(crate) fn replace(&self, value: X, retire: impl FnOnce(&X)) {
            let guard = epoch::pin();
            // AcqRel: release publishes `value` to `with`; acquire makes the old value's
            // contents visible to `retire`.
            let old = self.ptr.swap(Owned::new(value), Ordering::AcqRel, &guard);
            // SAFETY: `old` was installed by `new` or `replace` and is non-null; it is now
            // unreachable for new readers, and readers that already loaded it stay pinned while
            // they use it, so deferring its destruction to the epoch collector is sound.
            unsafe {
                retire(old.deref());
                guard.defer_destroy(old);
            }
        }
    }

    impl<X> Drop for EpochCell<X> {
        fn drop(&mut self) {
            // SAFETY: `&mut self` means no reader holds a reference into the cell (readers only
            // borrow it for the duration of `with`), and the pointer is non-null and owned.
            unsafe {
                let guard = epoch::unprotected();
                drop(self.ptr.load(Ordering::Relaxed, guard).into_owned());
            }
        }
    }
}

#[cfg(reuse_pool_loom)]
mod imp {
    //! Linearizable models of the two crates, built from loom's `Mutex` and `Arc`, so that loom
    //! explores every interleaving of the pool's code around them.
    //!
    //! Faithful to the crates in what the pool relies on: the worker pushes and pops at one end,
    //! stealers take from the other, a stolen value leaves the deque exactly once, and a deque
    //! outlives its worker while stealers exist.
    //! A steal that runs into a concurrent operation on the same deque returns `Steal::Retry`, as
    //! crossbeam-deque's does when it loses a race, so that the pool's retry loops are explored.

    use crate::sync::{lock, Arc, Mutex};
    use std::collections::VecDeque;
    use std::sync::TryLockError;

    /// Result of a steal, as in crossbeam-deque.
    #[derive(Debug)]
    pub(crate) enum Steal<T> {
        Empty,
        Success(T),
        Retry,
    }

    /// Model of a Chase-Lev worker: a locked `VecDeque`, owner at the back, stealers at the front.
    pub(crate) struct Worker<T> {
        inner: Arc<Mutex<VecDeque<T>>>,
    }

    /// Model of a stealer handle.
    pub(crate) struct Stealer<T> {
        inner: Arc<Mutex<VecDeque<T>>>,
    }

    impl<T> Clone for Stealer<T> {
        fn clone(&self) -> Self {
            Stealer {
                inner: self.inner.clone(),
            }
        }
    }

    impl<T> std::fmt::Debug for Worker<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Worker { .. }")
        }
    }

    impl<T> std::fmt::Debug for Stealer<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Stealer { .. }")
        }
    }

    impl<T> Worker<T> {
        pub(crate) fn new_lifo() -> Self {
            Worker {
                inner: Arc::new(Mutex::new(VecDeque::new())),
            }
        }
        pub(crate) fn stealer(&self) -> Stealer<T> {
            Stealer {
                inner: self.inner.clone(),
            }
        }
        pub(crate) fn push(&self, value: T) {
            lock(&self.inner).push_back(value);
        }
        pub(crate) fn pop(&self) -> Option<T> {
            lock(&self.inner).pop_back()
        }
        pub(crate) fn len(&self) -> usize {
            lock(&self.inner).len()
        }
        pub(crate) fn is_empty(&self) -> bool {
            lock(&self.inner).is_empty()
        }
    }

    impl<T> Stealer<T> {
        /// Locks the deque for a steal, or `None` (meaning `Steal::Retry`) if another operation
        /// holds it. Yields first, so that loom schedules the holder before the caller retries.
        fn try_lock(&self) -> Option<crate::sync::MutexGuard<'_, VecDeque<T>>> {
            match self.inner.try_lock() {
                Ok(g) => Some(g),
                Err(TryLockError::WouldBlock) => {
                    loom::thread::yield_now();
                    None
                }
                Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            }
        }

        pub(crate) fn steal(&self) -> Steal<T> {
            let Some(mut src) = self.try_lock() else {
                return Steal::Retry;
            };
            match src.pop_front() {
                Some(v) => Steal::Success(v),
                None => Steal::Empty,
            }
        }
    }

    /// Model of the epoch cell: readers clone an `Arc` under a lock, so a replaced value lives
    /// until the last reader that loaded it is done, as with crossbeam-epoch's deferred
    /// destruction (and loom reports it if it is never freed).
    pub(crate) struct EpochCell<X> {
        cur: Mutex<Arc<X>>,
    }

    impl<X> EpochCell<X> {
        pub(crate) fn new(value: X) -> Self {
            EpochCell {
                cur: Mutex::new(Arc::new(value)),
            }
        }
        pub(crate) fn with<R>(&self, f: impl FnOnce(&X) -> R) -> R {
            let x = lock(&self.cur).clone();
            f(&x)
        }
        pub(crate) fn replace(&self, value: X, retire: impl FnOnce(&X)) {
            let old = std::mem::replace(&mut *lock(&self.cur), Arc::new(value));
            retire(&old);
        }
    }
}

pub(crate) use imp::*;

impl<X> std::fmt::Debug for EpochCell<X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EpochCell { .. }")
    }
}

/// Steals one value from `stealer`, retrying while a concurrent operation makes it lose the race.
/// `None` means the deque was empty.
pub(crate) fn steal_one<T>(stealer: &Stealer<T>) -> Option<T> {
    loop {
        match stealer.steal() {
            Steal::Success(v) => return Some(v),
            Steal::Empty => return None,
            Steal::Retry => continue,
        }
    }
}

/// Steals everything from `stealer`, handing each value to `each`. Returns how many.
///
/// Used only on deques whose worker is gone, so `Empty` is final.
pub(crate) fn drain<T>(stealer: &Stealer<T>, mut each: impl FnMut(T)) -> usize {
    let mut n = 0;
    while let Some(v) = steal_one(stealer) {
        n += 1;
        each(v);
    }
    n
}

/// Pins the epoch for a span of several steals, so that each one does not pin again.
#[cfg(not(reuse_pool_loom))]
pub(crate) fn pin() -> crossbeam_epoch::Guard {
    crossbeam_epoch::pin()
}

/// Under loom nothing is epoch-protected (the `EpochCell` model keeps values alive by `Arc`).
#[cfg(reuse_pool_loom)]
pub(crate) fn pin() -> PinGuard {
    PinGuard
}

/// Stands in for `crossbeam_epoch::Guard` under loom.
#[cfg(reuse_pool_loom)]
#[derive(Debug)]
pub(crate) struct PinGuard;
