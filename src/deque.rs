//! The thread's deque of full magazines.
//!
//! In normal builds this is `crossbeam-deque` (a Chase-Lev deque: the owner pushes and pops at
//! one end, other threads steal from the other). A steal pins crossbeam's *global* epoch, which
//! may run closures deferred by any library: the crate steals only outside its windows and locks.
//! The owner's push and pop pin nothing as long as the buffer does not resize, which the bound
//! on the deque guarantees (`local::MAX_DEQUE`). crossbeam-deque has no loom support, so under
//! `--cfg reuse_pool_loom` it is replaced by a small mutex-based model with the same interface:
//! loom then checks the pool's own hand-offs around it.

#[cfg(not(reuse_pool_loom))]
mod imp {
    pub(crate) use crossbeam_deque::{Steal, Stealer, Worker};
}

#[cfg(reuse_pool_loom)]
mod imp {
    //! A linearizable model of the crate, built from loom's `Mutex` and `Arc`, so that loom
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
}

pub(crate) use imp::*;

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
