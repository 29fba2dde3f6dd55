//! Panic safety: a panic in `create`, `reset`, `keep_if` or `T::drop` (during a cleanup cycle,
//! a pool drop, or a drop over the per-thread bound) leaves the pool usable and loses nothing
//! else: every other object is still cached or dropped exactly once.

mod common;

use common::{cycles_lock, manual_cycles, panic_message, Counters, Tracked};
use reuse_pool::{cleanup, Pool};
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Marks an object whose `reset` or `keep_if` panics.
const POISON: u64 = 666;

/// A pool of [`Tracked`] objects counted by `counters`.
fn tracked_pool(counters: &Arc<Counters>) -> Pool<Tracked, impl Fn() -> Tracked + Send + Sync> {
    let c = counters.clone();
    Pool::from_fn(move || c.make())
}

/// Puts `n` fresh objects into `pool` on this thread and returns their ids.
fn fill<F: Fn() -> Tracked>(
    pool: &Pool<Tracked, F>,
    counters: &Arc<Counters>,
    n: usize,
) -> HashSet<u64> {
    (0..n)
        .map(|_| {
            let t = counters.make();
            let id = t.id;
            pool.put(t);
            id
        })
        .collect()
}

/// Takes everything this thread can reach without creating, checking ids are distinct.
fn drain<F: Fn() -> Tracked>(pool: &Pool<Tracked, F>) -> HashSet<u64> {
    let mut ids = HashSet::new();
    while let Some(t) = pool.try_take() {
        assert!(ids.insert(t.id), "object {} handed out twice", t.id);
    }
    ids
}

/// A panicking `create` propagates to the caller of `get`; the cached objects, the counters and
/// later gets are unaffected.
#[test]
fn panic_in_create() {
    let _cycles = cycles_lock();
    manual_cycles();
    let counters = Counters::new();
    let fail = Arc::new(AtomicBool::new(false));
    let pool = {
        let (c, fail) = (counters.clone(), fail.clone());
        Pool::from_fn(move || {
            if fail.load(Ordering::Relaxed) {
                panic!("create failed");
            }
            c.make()
        })
    };
    let cached = fill(&pool, &counters, 3);
    fail.store(true, Ordering::Relaxed);
    let held: Vec<_> = (0..3).map(|_| pool.get()).collect();
    let err = catch_unwind(AssertUnwindSafe(|| pool.get())).expect_err("create must panic");
    assert_eq!(panic_message(&*err), "create failed");
    let err = catch_unwind(AssertUnwindSafe(|| pool.take())).expect_err("create must panic");
    assert_eq!(panic_message(&*err), "create failed");
    drop(held);

    fail.store(false, Ordering::Relaxed);
    let again: Vec<_> = (0..4).map(|_| pool.get()).collect();
    let ids: HashSet<u64> = again.iter().map(|t| t.id).collect();
    assert_eq!(ids.len(), 4);
    assert!(
        cached.is_subset(&ids),
        "the cached objects survived the panics"
    );
    assert_eq!(counters.created(), 4);
    drop(again);
    assert_eq!(counters.dropped(), 0);
    drop(pool);
    counters.assert_all_dropped_once();
}

/// A panicking `reset` propagates out of the return (guard drop or `put`); the object being
/// returned is dropped exactly once by the unwinding, the others stay cached.
#[test]
fn panic_in_reset() {
    let _cycles = cycles_lock();
    manual_cycles();
    let counters = Counters::new();
    let pool = tracked_pool(&counters).reset(|t| {
        assert_ne!(t.dirty, POISON, "reset of a poisoned object");
        t.dirty = 0;
    });
    let cached = fill(&pool, &counters, 5);

    let mut g = pool.get();
    let via_guard = g.id;
    g.dirty = POISON;
    let err = catch_unwind(AssertUnwindSafe(move || drop(g))).expect_err("reset must panic");
    assert!(panic_message(&*err).contains("poisoned"));
    assert_eq!(counters.drops_of(via_guard), 1);

    let mut t = pool.take();
    let via_put = t.id;
    t.dirty = POISON;
    let err = catch_unwind(AssertUnwindSafe(|| pool.put(t))).expect_err("reset must panic");
    assert!(panic_message(&*err).contains("poisoned"));
    assert_eq!(counters.drops_of(via_put), 1);

    let left: HashSet<u64> = cached
        .difference(&[via_guard, via_put].into())
        .copied()
        .collect();
    assert_eq!(drain(&pool), left, "the other objects are still cached");
    assert_eq!(counters.created(), 5);
    counters.assert_all_dropped_once();
    // Still usable.
    pool.put(counters.make());
    assert!(pool.try_take().is_some());
}

/// A panicking `keep_if` propagates out of the return; the object is dropped exactly once, the
/// others stay cached.
#[test]
fn panic_in_keep_if() {
    let _cycles = cycles_lock();
    manual_cycles();
    let counters = Counters::new();
    let pool = tracked_pool(&counters).keep_if(|t| {
        assert_ne!(t.dirty, POISON, "keep_if of a poisoned object");
        true
    });
    let cached = fill(&pool, &counters, 5);

    let mut g = pool.get();
    let poisoned = g.id;
    g.dirty = POISON;
    let err = catch_unwind(AssertUnwindSafe(move || drop(g))).expect_err("keep_if must panic");
    assert!(panic_message(&*err).contains("poisoned"));
    assert_eq!(counters.drops_of(poisoned), 1);

    let left: HashSet<u64> = cached.difference(&[poisoned].into()).copied().collect();
    assert_eq!(drain(&pool), left, "the other objects are still cached");
    counters.assert_all_dropped_once();
    pool.put(counters.make());
    assert!(pool.try_take().is_some(), "still usable");
}

/// A panicking `Drop` during a cleanup cycle: the cycle still completes — every other object of
/// this pool and of other pools is dropped — and then the first panic is resumed. Later cycles
/// and the pools work as before.
#[test]
fn panic_in_drop_during_cleanup() {
    let _cycles = cycles_lock();
    manual_cycles();
    const N: usize = 10;
    let (ca, cb) = (Counters::new(), Counters::new());
    let (a, b) = (tracked_pool(&ca), tracked_pool(&cb));
    for i in 0..N {
        let mut t = ca.make();
        t.panic_on_drop = i % 4 == 1; // two of them
        a.put(t);
    }
    fill(&b, &cb, N);
    cleanup();
    assert_eq!((ca.dropped(), cb.dropped()), (0, 0));
    let err = catch_unwind(cleanup).expect_err("the Drop panic is resumed");
    assert!(
        panic_message(&*err).contains("panics in drop"),
        "{}",
        panic_message(&*err)
    );
    assert_eq!(
        ca.dropped(),
        N as u64,
        "every object of the panicking pool was dropped"
    );
    assert_eq!(
        cb.dropped(),
        N as u64,
        "every object of the other pool was dropped"
    );
    ca.assert_all_dropped_once();
    cb.assert_all_dropped_once();
    assert_eq!(a.stats().drops, N as u64);

    // Both pools and the cycles still work.
    fill(&a, &ca, 3);
    fill(&b, &cb, 3);
    assert_eq!(drain(&a).len(), 3);
    fill(&a, &ca, 3);
    cleanup();
    cleanup();
    ca.assert_all_dropped_once();
    cb.assert_all_dropped_once();
}

/// A panicking `Drop` while the pool drops: every other cached object, here and in the victim
/// tier, is still dropped exactly once, then the panic propagates.
#[test]
fn panic_in_drop_during_pool_drop() {
    let _cycles = cycles_lock();
    manual_cycles();
    let counters = Counters::new();
    let pool = tracked_pool(&counters);
    let put_some = |n: usize, panicky: bool| {
        for i in 0..n {
            let mut t = counters.make();
            t.panic_on_drop = panicky && i == 0;
            pool.put(t);
        }
    };
    put_some(10, true);
    cleanup(); // to the victim tier
    put_some(10, true);
    let err = catch_unwind(AssertUnwindSafe(move || drop(pool))).expect_err("Drop panic resumed");
    assert!(panic_message(&*err).contains("panics in drop"));
    assert_eq!(counters.created(), 20);
    counters.assert_all_dropped_once();
}

/// A panicking `Drop` of an object that a return drops (over the per-thread bound, or rejected by
/// `keep_if`) propagates out of that return; the returned object and the rest are not lost.
#[test]
fn panic_in_drop_of_object_dropped_by_a_return() {
    let _cycles = cycles_lock();
    manual_cycles();
    let counters = Counters::new();
    // The depot is off: a full cache drops the returned object.
    let pool = tracked_pool(&counters)
        .max_per_thread(1)
        .max_shared(0)
        .keep_if(|t| t.dirty == 0);
    let first = counters.make();
    let first_id = first.id;
    pool.put(first);
    // The bound is 1 and the cache is full: this return drops the returned object, whose Drop
    // panics.
    let mut second = counters.make();
    second.panic_on_drop = true;
    let second_id = second.id;
    let err = catch_unwind(AssertUnwindSafe(|| pool.put(second))).expect_err("Drop panic");
    assert!(panic_message(&*err).contains("panics in drop"));
    assert_eq!(counters.drops_of(second_id), 1);
    assert_eq!(drain(&pool), [first_id].into(), "the cached object stays");

    let mut rejected = counters.make();
    rejected.panic_on_drop = true;
    rejected.dirty = 1;
    let rejected_id = rejected.id;
    let err = catch_unwind(AssertUnwindSafe(|| pool.put(rejected))).expect_err("Drop panic");
    assert!(panic_message(&*err).contains("panics in drop"));
    assert_eq!(counters.drops_of(rejected_id), 1);
    assert_eq!(pool.stats().drops, 2);

    pool.put(counters.make());
    assert_eq!(drain(&pool).len(), 1, "still usable");
    counters.assert_all_dropped_once();
}
