//! What holds in a process forked from one that uses pools (Unix).
//!
//! `fork` copies only the calling thread. Whatever another thread was doing at that instant is
//! cut off in the child: a lock it held stays held, an access to its cache stays half done. The
//! crate registers `pthread_atfork` handlers (on the first use of any pool) so that the child is
//! left in a state it can go on from:
//!
//! * **prepare** (in the parent, before the fork): takes, in this order, the cycle lock (so no
//!   cleanup cycle is in progress), the registry's list, every pool's victim-tier lock, the
//!   driver's lock and the thread-index allocator. These are every lock that any thread may hold
//!   across a pool operation; none of them is ever held while code that the crate does not own
//!   runs, so the handler cannot wait for the thread that forks.
//! * **parent** (after the fork): releases them.
//! * **child** (after the fork, only the forking thread exists): every per-thread cache whose
//!   thread index was held by *another* thread is frozen: that thread does not exist in the
//!   child and may have been inside an access to the cache, so cleanup and the pool's drop never
//!   touch it again: its private magazine is leaked in the child (neither handed out nor
//!   dropped), and what its deque holds can still be stolen (a steal is safe against an owner
//!   stopped anywhere) but is never aged or dropped. Caches of threads that had exited stay in use. The
//!   crate's epoch collector is replaced (a thread pinned at the fork would hold its epoch back
//!   for good), the driver thread is marked as not running, and the locks are released. The
//!   child starts its own driver thread on its next pool operation that leaves the fast path,
//!   or on its next call of a `cleanup*` function.
//!
//! Everything else holds in the child as in the parent: the forking thread keeps its cache,
//! objects in the depot and the victim tier are shared by the child's threads, and cycles age them.
//!
//! The handlers allocate nothing and start no thread.
//!
//! Not covered: a `fork()` called from one of the forking thread's TLS destructors, after this
//! module's per-thread record of the held locks is destroyed. The handlers then take no lock
//! (there is nowhere to keep them until the parent and child handlers), so the fork goes on
//! unprotected: a child forked while another thread holds one of the crate's locks can block on
//! its first pool use. Nor is crossbeam-epoch's own lazy set-up (see the `implementation` docs).

#[cfg(all(unix, not(miri), not(reuse_pool_loom)))]
mod imp {
    use crate::driver::{self, Driver};
    use crate::registry::{self, Cycle};
    use crate::thread_id::{self, Ids};
    use std::cell::RefCell;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, MutexGuard};

    /// The locks the prepare handler took, held by the forking thread until the parent or child
    /// handler. Dropped in reverse order of acquisition.
    struct Held {
        ids: MutexGuard<'static, Ids>,
        driver: MutexGuard<'static, Driver>,
        pools: MutexGuard<'static, Vec<Arc<dyn Cycle>>>,
        _cycle: MutexGuard<'static, ()>,
    }

    thread_local! {
        static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
    }

    /// Registers the handlers before the calling thread makes any pool storage.
    ///
    /// No `Once`: a `fork` while another thread is inside one leaves the child a `Once` that
    /// stays "running" for good, and the child's first pool would wait on it for ever. Nor may a
    /// thread go on while another is still registering: it could take the registry's locks
    /// before any handler exists to take them at a fork. So every thread that has not seen a
    /// registration finished registers itself: a few threads racing at start-up (or a child
    /// forked in the middle of it) register the handlers more than once, which they allow (the
    /// first `prepare` of a fork takes the locks, the others find them taken by this thread).
    pub(crate) fn init() {
        static DONE: AtomicBool = AtomicBool::new(false);
        // load-acquire: pairs with the store-release below, after a finished registration.
        if DONE.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: the three handlers are `extern "C" fn()` that live for the whole process.
        let r = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
        debug_assert_eq!(r, 0, "pthread_atfork failed");
        // store-release: see the load above.
        DONE.store(true, Ordering::Release);
    }

    extern "C" fn prepare() {
        // A second registration's `prepare` for the same fork: the locks are held already.
        // In a TLS destructor after `HELD` is gone (`Err`): nowhere to keep the locks until the
        // parent or child handler, so none is taken and the fork goes on unprotected (see the
        // module docs). Taking them here would leave the pools' spin locks held for good.
        match HELD.try_with(|h| h.borrow().is_some()) {
            Ok(false) => {}
            Ok(true) | Err(_) => return,
        }
        let cycle = registry::cycle_lock();
        let pools = registry::pools_lock();
        for p in pools.iter() {
            p.fork_lock();
        }
        let driver = driver::driver_lock();
        let ids = thread_id::ids_lock();
        let held = Held {
            ids,
            driver,
            pools,
            _cycle: cycle,
        };
        // Cannot fail: `HELD` was alive at the top of this handler, and a thread-local is
        // destroyed only by its own thread, which is here.
        HELD.with(move |h| *h.borrow_mut() = Some(held));
    }

    extern "C" fn parent() {
        release(false);
    }

    extern "C" fn child() {
        release(true);
    }

    fn release(in_child: bool) {
        // `None` for a second registration's handler: the first one released already.
        let Ok(Some(mut held)) = HELD.try_with(|h| h.borrow_mut().take()) else {
            return;
        };
        if in_child {
            let own = thread_id::raw();
            let ids = &*held.ids;
            let owned_elsewhere = |id: usize| ids.is_held(id) && id.wrapping_add(1) != own;
            for p in held.pools.iter() {
                p.freeze_owned_elsewhere(&owned_elsewhere);
            }
            crate::epoch::after_fork_in_child();
            driver::after_fork_in_child(&mut held.driver);
        }
        for p in held.pools.iter() {
            // SAFETY: `prepare` took each of these locks on this thread (the child's only thread
            // is the one that forked), and `HELD` hands them to exactly one release.
            unsafe { p.fork_unlock() };
        }
        drop(held);
    }
}

#[cfg(not(all(unix, not(miri), not(reuse_pool_loom))))]
mod imp {
    pub(crate) fn init() {}
}

pub(crate) use imp::*;
