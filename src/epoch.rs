//! The crate's own epoch collector, for the crate's own garbage.
//!
//! The shared tiers ([`crate::stack`]) free the nodes they unlink through epoch-based
//! reclamation. They use a private [`crossbeam_epoch::Collector`], not crossbeam's global one:
//! pinning the global collector runs closures that *any* library deferred on it (every 128th pin
//! of a thread), and those closures may use a pool, call [`cleanup`](crate::cleanup) or drop a
//! pool. A pin of this collector only ever runs the closures this module deferred, and each of
//! them frees one node whose magazine was moved out before (it drops no object of the user's).
//!
//! Under loom nothing is epoch-protected: the stack is replaced by a locked model and [`Guard`]
//! is a unit struct.
//!
//! # After `fork`
//!
//! A thread that was pinned when another thread forked does not exist in the child, and its pin
//! would hold this collector's epoch back there for good: nothing deferred would ever be freed
//! in the child. The child therefore starts a fresh collector ([`after_fork_in_child`]); what the
//! old one held is leaked (a bounded amount, deferred before the fork), and every thread of the
//! child registers with the new one on its next pin.

#[cfg(not(reuse_pool_loom))]
mod imp {
    use crossbeam_epoch::{Collector, LocalHandle};
    use std::cell::RefCell;
    use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

    pub(crate) use crossbeam_epoch::Guard;

    /// The collector in use, leaked once created (a forked child leaks the parent's and starts
    /// its own). Null until first needed.
    static COLLECTOR: AtomicPtr<Collector> = AtomicPtr::new(std::ptr::null_mut());
    /// Bumped by a fork (in the child): a thread's handle of an older generation belongs to the
    /// abandoned collector.
    static GENERATION: AtomicU64 = AtomicU64::new(0);

    thread_local! {
        /// This thread's registration with the collector of generation `.0`.
        static HANDLE: RefCell<Option<(u64, LocalHandle)>> = const { RefCell::new(None) };
    }

    fn collector() -> &'static Collector {
        // load-acquire: pairs with the compare-exchange below, so the collector is initialised.
        let mut c = COLLECTOR.load(Ordering::Acquire);
        if c.is_null() {
            let fresh = Box::into_raw(Box::new(Collector::new()));
            // AcqRel: release publishes `fresh`; acquire (also on failure) sees the winner's.
            match COLLECTOR.compare_exchange(
                std::ptr::null_mut(),
                fresh,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => c = fresh,
                Err(winner) => {
                    // SAFETY: `fresh` came from `Box::into_raw` above and was never shared.
                    drop(unsafe { Box::from_raw(fresh) });
                    c = winner;
                }
            }
        }
        // SAFETY: a non-null `COLLECTOR` points to a leaked `Box<Collector>`, never freed.
        unsafe { &*c }
    }

    /// Pins the crate's collector on the current thread.
    ///
    /// Works at any point of a thread's life: once the thread's handle is gone (in TLS
    /// destructors) it pins through a temporary registration, as crossbeam's `pin` does.
    #[inline]
    pub(crate) fn pin() -> Guard {
        // Relaxed: the generation changes only in a forked child, before it has other threads.
        let generation = GENERATION.load(Ordering::Relaxed);
        let pinned = HANDLE.try_with(|h| {
            let mut h = h.try_borrow_mut().ok()?;
            match &*h {
                Some((g, handle)) if *g == generation => Some(handle.pin()),
                _ => {
                    let handle = collector().register();
                    let guard = handle.pin();
                    if let Some((_, stale)) = h.replace((generation, handle)) {
                        // Registered with the collector abandoned by a fork: leave it alone.
                        std::mem::forget(stale);
                    }
                    Some(guard)
                }
            }
        });
        match pinned {
            Ok(Some(guard)) => guard,
            _ => collector().register().pin(),
        }
    }

    /// In a forked child, with no other thread running: abandons the parent's collector, which a
    /// thread that no longer exists may hold pinned.
    pub(crate) fn after_fork_in_child() {
        // Leaks the old collector: threads of the parent pinned it, and its garbage is bounded.
        COLLECTOR.store(std::ptr::null_mut(), Ordering::Relaxed);
        GENERATION.store(
            GENERATION.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }
}

#[cfg(reuse_pool_loom)]
mod imp {
    /// Stands in for `crossbeam_epoch::Guard` under loom, where nothing is deferred.
    #[derive(Debug)]
    pub(crate) struct Guard;

    pub(crate) fn pin() -> Guard {
        Guard
    }

    #[allow(dead_code)]
    pub(crate) fn after_fork_in_child() {}
}

pub(crate) use imp::*;
