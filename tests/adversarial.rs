//! Objects whose `Drop` returns an object to the pool that dropped them.
//!
//! A pool that gives an object up on a return (its cache and depot are full, `keep_if` refuses
//! it) drops it; if that object's `Drop` returns another object to the same pool, which is given
//! up in turn, the chain must run as a loop, not nest one drop per object on the stack.
//!
//! Regression: each test overflowed the stack (`has overflowed its stack`, SIGABRT) in debug and
//! release builds when the pool dropped what it gave up inside the return that gave it up.

use reuse_pool::Pool;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

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
        if !cfg!(miri) {
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
