//! The asymmetric fence pair that keeps the owner's fast path free of atomic read-modify-writes.
//!
//! The owner of a per-thread cache and the cleanup cycle form a Dekker pair: the owner stores
//! `busy = true` and then loads `reclaim`; cleanup stores `reclaim = true` and then loads `busy`.
//! Each side needs a store→load fence for at least one of them to see the other's store. The
//! owner runs this pair on every `get` and `put`, cleanup once per cycle, so the cost is moved to
//! cleanup:
//!
//! * the owner's half: a compiler fence only, when [`heavy`] can use Linux
//!   `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`. That system call makes every running thread of
//!   the process execute a full memory barrier before it returns, so at the instant of that barrier
//!   each owner is either before its `busy` store (its next `reclaim` load sees `true`) or after
//!   it (the store is visible to cleanup's `busy` load). This is the pattern of Folly's
//!   `asymmetricHeavyBarrier` and of userspace RCU.
//! * Everywhere else (other platforms, a kernel without the command, Miri, loom), both sides use
//!   `fence(SeqCst)` (the owner's is [`light`]): slower for the owner, and exactly the textbook Dekker argument in the C++
//!   memory model, which is what Miri and loom check.
//!
//! The mode is chosen once, by [`init`], before the first per-thread cache of any pool exists, and
//! never changes afterwards, so the owner and cleanup always use matching halves.

use crate::sync::{fence, Ordering};

#[cfg(all(target_os = "linux", not(miri), not(reuse_pool_loom)))]
mod imp {
    use std::sync::atomic::{AtomicU8, Ordering};

    const MEMBARRIER_CMD_QUERY: libc::c_long = 0;
    const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    /// The mode: [`UNKNOWN`] until the first `init` has decided, then [`FENCES`] or
    /// [`MEMBARRIER`] for good.
    ///
    /// No `Once`: a `fork` while another thread is inside one leaves the child a `Once` that
    /// stays "running" for good, and the child's first pool would wait on it for ever. Every
    /// thread that finds the mode unknown decides it itself instead; the decision is the same on
    /// every thread (the same environment, the same kernel, and registering twice is harmless),
    /// and the first to finish stores it.
    static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);
    const UNKNOWN: u8 = 0;
    const FENCES: u8 = 1;
    const MEMBARRIER: u8 = 2;

    fn membarrier(cmd: libc::c_long) -> libc::c_long {
        // SAFETY: `membarrier` takes two integer arguments and touches no memory of ours.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_long,
                0 as libc::c_long,
            )
        }
    }

    pub(super) fn init() {
        // load-acquire: pairs with the compare-and-swap below, so a thread that sees the mode
        // also sees the registration that preceded it.
        if MODE.load(Ordering::Acquire) != UNKNOWN {
            return;
        }
        let mode = if std::env::var_os("REUSE_POOL_NO_MEMBARRIER").is_some() {
            FENCES
        } else {
            let supported = membarrier(MEMBARRIER_CMD_QUERY);
            let needed =
                MEMBARRIER_CMD_PRIVATE_EXPEDITED | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED;
            if supported >= 0
                && supported & needed == needed
                && membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0
            {
                MEMBARRIER
            } else {
                FENCES
            }
        };
        // compare-and-swap, release: publishes the mode after this thread's registration. A
        // thread that lost the race decided the same; the stored mode stands either way.
        let _ = MODE.compare_exchange(UNKNOWN, mode, Ordering::AcqRel, Ordering::Acquire);
    }

    #[inline(always)]
    pub(super) fn uses_membarrier() -> bool {
        // Every reader called `init` first (before any cache exists), which returned only once
        // the mode was stored (acquire there); the mode never changes afterwards.
        MODE.load(Ordering::Relaxed) == MEMBARRIER
    }

    pub(super) fn heavy_membarrier() {
        let r = membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
        // Registration succeeded, so the kernel guarantees this command. If it ever failed the
        // owners' compiler fences would no longer be paired with a barrier: refuse to go on.
        assert!(
            r == 0,
            "membarrier(PRIVATE_EXPEDITED) failed after successful registration: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(not(all(target_os = "linux", not(miri), not(reuse_pool_loom))))]
mod imp {
    pub(super) fn init() {}

    #[inline(always)]
    pub(super) fn uses_membarrier() -> bool {
        false
    }

    pub(super) fn heavy_membarrier() {
        unreachable!("membarrier is only used on Linux")
    }
}

/// Chooses the fence mode. Called before any per-thread cache is created.
pub(crate) fn init() {
    imp::init();
}

/// Whether the owner's half is a compiler fence (Linux `membarrier` available).
pub fn asymmetric() -> bool {
    imp::uses_membarrier()
}

/// The owner's half without `membarrier`, between `busy.store(true)` and the `reclaim` load that
/// decides: a full fence, the Dekker argument of the C++ model, paired with the `fence(SeqCst)`
/// in `heavy`. With `membarrier` the owner's half is a compiler fence, which the owner places
/// itself (`Local::enter`). Out of line so that the fast path's code holds no fence instruction
/// at all when `membarrier` is in use (`ci/hot_path.sh` checks the disassembly).
#[cold]
#[inline(never)]
pub(crate) fn light() {
    fence(Ordering::SeqCst);
}

/// Cleanup's half: between storing every `reclaim` flag and loading the `busy` flags.
pub(crate) fn heavy() {
    if imp::uses_membarrier() {
        imp::heavy_membarrier();
    } else {
        // Pairs with the `fence(SeqCst)` in `light`.
        fence(Ordering::SeqCst);
    }
}
