//! Unusual objects and hooks against the engine.
//!
//! * Objects whose `Drop` returns an object to the pool that dropped them. A pool that gives an
//!   object up on a return (its cache and depot are full, `keep_if` refuses it) drops it; if
//!   that object's `Drop` returns another object to the same pool, which is given up in turn,
//!   the chain must run as a loop, not nest one drop per object on the stack. Regression: each
//!   `a_chain_of_*` test overflowed the stack (`has overflowed its stack`, SIGABRT) in debug and
//!   release builds when the pool dropped what it gave up inside the return that gave it up.
//! * A large object (256 KiB) on every path of a get and a return, on a thread with the default
//!   stack: see `a_large_object_fits_a_default_thread_stack`.

use reuse_pool::Pool;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

/// Held by every test of this file. A cleanup cycle empties every thread's cache, so a cycle
/// that runs during a chain (`a_large_object_fits_a_default_thread_stack` calls `cleanup()`)
/// lets one of the chain's returns be cached, and the chain stops before its budget is spent.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // No automatic cycle either (one every 5 s by default; a chain under a sanitizer is slow).
    reuse_pool::set_cleanup_interval(None);
    guard
}

/// One test's pool and ledger.
struct Case {
    pool: Pool<Obj>,
    created: AtomicUsize,
    dropped: AtomicUsize,
    /// Drops still allowed to return a fresh object to the pool.
    budget: AtomicUsize,
    /// Address of a local of the test's frame, and the deepest `Drop` seen below it (bytes).
    base: AtomicUsize,
    deepest: AtomicUsize,
}

impl Case {
    const fn new(pool: Pool<Obj>) -> Case {
        Case {
            pool,
            created: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
            budget: AtomicUsize::new(0),
            base: AtomicUsize::new(0),
            deepest: AtomicUsize::new(0),
        }
    }

    fn make(&'static self) -> Obj {
        self.created.fetch_add(1, Relaxed);
        Obj { case: self }
    }

    /// Returns one object with a budget of `chain` drops that each return a fresh object, and
    /// checks the ledger: every drop asked for happened, nothing was lost or dropped twice, and
    /// the stack stayed shallow.
    fn run(&'static self, chain: usize) {
        let _serial = serial();
        let here = 0u8;
        self.base.store(&here as *const u8 as usize, Relaxed);
        self.budget.store(chain, Relaxed);
        // Returns fresh objects until the pool gives one up: that drop starts the chain.
        let mut returned = 0;
        while self.dropped.load(Relaxed) == 0 {
            assert!(returned < 1 << 20, "the pool never gave an object up");
            self.pool.put(self.make());
            returned += 1;
        }
        assert_eq!(self.budget.load(Relaxed), 0, "every drop of the chain ran");
        let mut cached = 0;
        while let Some(o) = self.pool.try_take() {
            std::mem::forget(o);
            cached += 1;
        }
        assert_eq!(
            self.created.load(Relaxed),
            self.dropped.load(Relaxed) + cached,
            "every object is cached or dropped once"
        );
        assert!(
            self.dropped.load(Relaxed) >= chain,
            "the chain's objects were dropped"
        );
        // Under Miri the chain is short; under the sanitizers frames live on AddressSanitizer's
        // fake stack (`detect_stack_use_after_return`) and are many times larger, so addresses
        // say nothing about the depth there (a chain that nests still overflows the real stack).
        if !cfg!(miri) && !cfg!(reuse_pool_sanitize) {
            let deepest = self.deepest.load(Relaxed);
            assert!(
                deepest < 512 << 10,
                "a drop ran {deepest} bytes below the test's frame"
            );
        }
    }
}

/// Drops of the chain: enough to overflow the stack when each one nests.
const CHAIN: usize = if cfg!(miri) { 200 } else { 200_000 };

struct Obj {
    case: &'static Case,
}

impl Drop for Obj {
    fn drop(&mut self) {
        let c = self.case;
        c.dropped.fetch_add(1, Relaxed);
        let here = 0u8;
        let depth = c
            .base
            .load(Relaxed)
            .saturating_sub(&here as *const u8 as usize);
        c.deepest.fetch_max(depth, Relaxed);
        if c.budget
            .fetch_update(Relaxed, Relaxed, |b| b.checked_sub(1))
            .is_ok()
        {
            c.pool.put(c.make());
        }
    }
}

fn make_no_depot() -> Obj {
    NO_DEPOT.make()
}
fn make_full_depot() -> Obj {
    FULL_DEPOT.make()
}
fn make_refused() -> Obj {
    REFUSED.make()
}

/// One object per thread, no depot: every return to a full cache drops the returned object.
static NO_DEPOT: Case = Case::new(Pool::new(make_no_depot).max_per_thread(1).max_shared(0));
/// A cache of two magazines of 16 and a depot of one per shard: a return to a full cache drops a whole
/// magazine of cached objects.
static FULL_DEPOT: Case = Case::new(Pool::new(make_full_depot).max_per_thread(32).max_shared(16));
/// `keep_if` refuses everything: every return drops the object.
static REFUSED: Case = Case::new(Pool::new(make_refused).keep_if(|_| false));

#[test]
fn a_chain_of_refused_returns_with_the_depot_off_stays_shallow() {
    NO_DEPOT.run(CHAIN);
}

#[test]
fn a_chain_of_magazines_dropped_by_a_full_depot_stays_shallow() {
    FULL_DEPOT.run(CHAIN);
}

#[test]
fn a_chain_of_returns_refused_by_keep_if_stays_shallow() {
    REFUSED.run(CHAIN);
}

/// A large object: 256 KiB.
struct Large {
    bytes: [u8; LARGE],
}

const LARGE: usize = 256 << 10;

static LARGE_CREATED: AtomicUsize = AtomicUsize::new(0);

fn make_large() -> Large {
    LARGE_CREATED.fetch_add(1, Relaxed);
    Large { bytes: [7; LARGE] }
}

/// Batches of 4, no deque, a depot of two batches: small enough that returns spill to the depot
/// and gets refill from it, steal and reach the victim tier.
static LARGE_POOL: Pool<Large> = Pool::new(make_large).max_per_thread(4).max_shared(8);

/// Runs `f` on a thread with the stack a spawned thread gets by default (2 MiB); a debug build,
/// whose copies of `T` the optimiser does not remove, gets more.
fn on_default_stack(f: impl FnOnce() + Send) {
    let stack = if cfg!(debug_assertions) {
        64 << 20
    } else {
        2 << 20
    };
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(stack)
            .spawn_scoped(s, f)
            .unwrap()
            .join()
            .unwrap()
    });
}

#[inline(never)]
fn get_and_drop() -> u8 {
    let g = LARGE_POOL.get();
    g.bytes[LARGE - 1]
}

#[inline(never)]
fn take_one() -> Large {
    LARGE_POOL.take()
}

#[inline(never)]
fn put_one(l: Large) {
    LARGE_POOL.put(l);
}

/// Every path of a get and a return (create, hit, spill to the depot, refill from it, steal,
/// victim tier) moves a 256 KiB object without needing several times its size of stack.
///
/// Regression: a miss kept up to seven copies of `T` in one frame (`Local::pop_slow`, `Option<T>`
/// temporaries), and a get that missed needed more than 3 MiB of stack for this `T` in a release
/// build: the first `get` on a spawned thread aborted with "has overflowed its stack".
#[test]
#[cfg_attr(miri, ignore = "stack sizes: Miri does not model a thread's stack")]
fn a_large_object_fits_a_default_thread_stack() {
    let _serial = serial();
    on_default_stack(|| {
        assert_eq!(get_and_drop(), 7, "create");
        assert_eq!(get_and_drop(), 7, "hit");
        // Spill: 12 objects, one batch cached, two in the depot.
        let held: Vec<Large> = (0..12).map(|_| take_one()).collect();
        for l in held {
            put_one(l);
        }
        // Refill from the magazine and the depot.
        let held: Vec<Large> = (0..12).map(|_| take_one()).collect();
        assert!(held.iter().all(|l| l.bytes[0] == 7));
        for l in held {
            put_one(l);
        }
    });
    // Another thread finds this one's objects: the depot, then a steal.
    on_default_stack(|| {
        let held: Vec<Large> = (0..12).map(|_| take_one()).collect();
        assert!(held.iter().all(|l| l.bytes[LARGE / 2] == 7));
        for l in held {
            put_one(l);
        }
    });
    // The victim tier.
    reuse_pool::cleanup();
    on_default_stack(|| {
        let held: Vec<Large> = (0..12).map(|_| take_one()).collect();
        drop(held);
    });
    assert!(
        LARGE_POOL.stats().depot_puts > 0,
        "{:?}",
        LARGE_POOL.stats()
    );
}
