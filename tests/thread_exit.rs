//! Objects cached by threads that have exited: other threads take them, cleanup cycles age and
//! drop them, and thousands of short-lived threads do not grow the pool's memory.

mod common;

use common::{cycles_lock, manual_cycles, Counters, Tracked};
use reuse_pool::{cleanup, Pool, MAGAZINE};
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;
use std::thread;

/// A pool of [`Tracked`] objects counted by `counters`.
fn tracked_pool(counters: &Arc<Counters>) -> Pool<Tracked, impl Fn() -> Tracked + Sync> {
    let c = counters.clone();
    Pool::from_fn(move || c.make())
}

const OBJECTS: usize = if cfg!(miri) { MAGAZINE + 8 } else { 100 };

/// Gives this thread its own per-thread index before another thread exits, so that it does not
/// inherit the exited thread's cache (that would make the tests below pass trivially).
fn register_this_thread<F: Fn() -> Tracked>(pool: &Pool<Tracked, F>) {
    assert!(pool.try_take().is_none());
}

/// Runs a thread that gets `OBJECTS` objects at once, returns them all, and exits; joins it.
fn exited_owner<F: Fn() -> Tracked + Sync>(pool: &Pool<Tracked, F>) {
    thread::scope(|s| {
        // An explicit join waits for the thread's TLS destructors, which release its index.
        s.spawn(|| {
            let held: Vec<_> = (0..OBJECTS).map(|_| pool.get()).collect();
            drop(held);
        })
        .join()
        .unwrap();
    });
}

/// Takes `n` objects on this thread, checking that they are distinct.
fn take_distinct<F: Fn() -> Tracked>(pool: &Pool<Tracked, F>, n: usize) -> Vec<Tracked> {
    let got: Vec<_> = (0..n).map(|_| pool.take()).collect();
    let ids: HashSet<u64> = got.iter().map(|t| t.id).collect();
    assert_eq!(ids.len(), n, "an object was handed out twice");
    got
}

/// An exited thread's deque stays stealable: another thread takes its objects without a cycle,
/// creating at most what sat in its private magazine.
#[test]
fn exited_thread_objects_are_stolen() {
    let _cycles = cycles_lock();
    manual_cycles();
    let counters = Counters::new();
    let pool = tracked_pool(&counters);
    register_this_thread(&pool);
    exited_owner(&pool);
    assert_eq!(counters.created() as usize, OBJECTS);
    assert_eq!(counters.dropped(), 0);
    let got = take_distinct(&pool, OBJECTS);
    let creates = counters.created() as usize - OBJECTS;
    assert!(
        creates <= MAGAZINE,
        "{creates} creates after a thread exited caching {OBJECTS} objects; at most MAGAZINE \
         ({MAGAZINE}) may be out of reach: {:?}",
        pool.stats()
    );
    assert!(pool.stats().steals > 0);
    drop(got);
    drop(pool);
    counters.assert_all_dropped_once();
}

/// After one cleanup cycle, an exited thread's objects, its magazine included, are all in the
/// victim tier: another thread takes them without a single create.
#[test]
fn exited_thread_objects_reachable_after_one_cycle() {
    let _cycles = cycles_lock();
    manual_cycles();
    let counters = Counters::new();
    let pool = tracked_pool(&counters);
    register_this_thread(&pool);
    exited_owner(&pool);
    cleanup();
    assert_eq!(counters.dropped(), 0, "one cycle drops nothing");
    let got = take_distinct(&pool, OBJECTS);
    assert_eq!(
        counters.created() as usize,
        OBJECTS,
        "creates after one cycle: {:?}",
        pool.stats()
    );
    drop(got);
    drop(pool);
    counters.assert_all_dropped_once();
}

/// Two cleanup cycles drop everything an exited thread cached.
#[test]
fn exited_thread_objects_dropped_after_two_cycles() {
    let _cycles = cycles_lock();
    manual_cycles();
    let counters = Counters::new();
    let pool = tracked_pool(&counters);
    register_this_thread(&pool);
    exited_owner(&pool);
    cleanup();
    assert_eq!(counters.dropped(), 0, "one cycle drops nothing");
    cleanup();
    assert_eq!(counters.dropped() as usize, OBJECTS);
    counters.assert_all_dropped_once();
    assert_eq!(pool.stats().drops as usize, OBJECTS);
    assert!(pool.try_take().is_none());
}

/// 2,000 short-lived threads, 8 alive at a time, each getting and returning a few objects: the
/// number of live objects stays bounded, and two cycles drop them all.
///
/// The bound: per-thread indices are recycled, so the pool never has more per-thread caches than
/// threads that used it at the same time — the 8 of a wave, plus this thread. Each cache holds at
/// most `max_per_thread` objects, no cycle runs (so the victim tier is empty), and after a wave
/// is joined nobody holds an object: live <= (WAVE + 1) * MAX. A pool that gave every thread a
/// fresh cache would strand up to HELD objects per thread in dead magazines: 8,000 here.
#[test]
fn thread_churn_does_not_grow_memory() {
    let _cycles = cycles_lock();
    manual_cycles();
    const THREADS: usize = if cfg!(miri) { 16 } else { 2_000 };
    const WAVE: usize = 8;
    const MAX: usize = 16;
    const HELD: usize = 4;
    const BOUND: u64 = ((WAVE + 1) * MAX) as u64;
    let counters = Counters::new();
    let pool = tracked_pool(&counters).max_per_thread(MAX);
    let mut max_live = 0;
    for wave in 0..THREADS / WAVE {
        thread::scope(|s| {
            let handles: Vec<_> = (0..WAVE)
                .map(|_| {
                    s.spawn(|| {
                        for _ in 0..2 {
                            let held: Vec<_> = (0..HELD).map(|_| pool.get()).collect();
                            for h in &held {
                                h.hold();
                            }
                            for h in &held {
                                h.release();
                            }
                        }
                    })
                })
                .collect();
            // Explicit joins: they wait for the threads' TLS destructors (index release).
            for h in handles {
                h.join().unwrap();
            }
        });
        let live = counters.live();
        max_live = max_live.max(live);
        assert!(
            live <= BOUND,
            "after wave {wave}: {live} live objects, bound {BOUND}: {:?}",
            pool.stats()
        );
    }
    assert!(max_live >= HELD as u64, "the threads did use the pool");
    counters.assert_no_double_drop();
    cleanup();
    cleanup();
    assert_eq!(
        counters.dropped(),
        counters.created(),
        "two cycles after the churn must drop everything: {:?}",
        pool.stats()
    );
    counters.assert_all_dropped_once();
}

/// What a thread-local destructor does with the pool: take one object and return two.
struct UsesPoolOnExit {
    pool: Arc<Pool<Tracked, Box<dyn Fn() -> Tracked + Send + Sync>>>,
    counters: Arc<Counters>,
}

impl Drop for UsesPoolOnExit {
    fn drop(&mut self) {
        let got = self.pool.take();
        self.pool.put(got);
        self.pool.put(self.counters.make());
    }
}

thread_local! {
    static BEFORE: RefCell<Option<UsesPoolOnExit>> = const { RefCell::new(None) };
    static AFTER: RefCell<Option<UsesPoolOnExit>> = const { RefCell::new(None) };
}

/// A pool used from thread-local destructors, whichever order they run in relative to the
/// pool's own per-thread state, works (take steals or creates, put caches or drops) and loses
/// or double-drops nothing.
#[test]
fn pool_used_from_thread_local_destructors() {
    let _cycles = cycles_lock();
    manual_cycles();
    const THREADS: usize = if cfg!(miri) { 2 } else { 16 };
    let counters = Counters::new();
    let create: Box<dyn Fn() -> Tracked + Send + Sync> = {
        let c = counters.clone();
        Box::new(move || c.make())
    };
    let pool = Arc::new(Pool::from_fn(create));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (pool, counters) = (pool.clone(), counters.clone());
            thread::spawn(move || {
                let user = || UsesPoolOnExit {
                    pool: pool.clone(),
                    counters: counters.clone(),
                };
                // Registered before the thread's first pool use: on common platforms its
                // destructor runs after the pool's per-thread state is released.
                BEFORE.with(|b| *b.borrow_mut() = Some(user()));
                let held: Vec<_> = (0..4).map(|_| pool.get()).collect();
                drop(held);
                // Registered after: its destructor runs while the thread still has its state.
                AFTER.with(|a| *a.borrow_mut() = Some(user()));
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // Each thread created up to 4 objects, and its two destructors made one each.
    assert!(counters.created() >= 2 * THREADS as u64);
    counters.assert_no_double_drop();
    cleanup();
    cleanup();
    assert_eq!(counters.dropped(), counters.created(), "{:?}", pool.stats());
    counters.assert_all_dropped_once();
    assert_eq!(
        Arc::strong_count(&pool),
        1,
        "the destructors dropped their handles"
    );
}

/// Returns its object to its pool when the thread-local holding it is destroyed.
struct LatePut {
    pool: Arc<Pool<Tracked, Box<dyn Fn() -> Tracked + Send + Sync>>>,
    object: Option<Tracked>,
}

impl Drop for LatePut {
    fn drop(&mut self) {
        if let Some(object) = self.object.take() {
            self.pool.put(object);
        }
    }
}

thread_local! {
    static LATE_PUT: RefCell<Option<LatePut>> = const { RefCell::new(None) };
}
/// A thread that has given its index back (its pool state is released first, its other
/// thread-local destructors later) no longer owns the cache it used: a return from a later
/// destructor is dropped at once, as the docs say, and does not land in that cache, which the
/// next thread with the same index owns.
#[test]
fn a_return_after_the_thread_gave_its_index_back_is_dropped_not_cached() {
    let _cycles = cycles_lock();
    manual_cycles();
    let counters = Counters::new();
    let create: Box<dyn Fn() -> Tracked + Send + Sync> = {
        let c = counters.clone();
        Box::new(move || c.make())
    };
    let pool = Arc::new(Pool::from_fn(create));
    let late = counters.make();
    let late_id = late.id;
    {
        let pool = pool.clone();
        thread::spawn(move || {
            // Registered before the thread's first pool use, so its destructor runs after the
            // pool's per-thread state has been released (destructors run last-registered first).
            LATE_PUT.with(|l| {
                *l.borrow_mut() = Some(LatePut {
                    pool: pool.clone(),
                    object: Some(late),
                })
            });
            // The thread's cache is installed and holds one object.
            drop(pool.get());
        })
        .join()
        .unwrap();
    }
    // The thread's destructor returned `late`. It must have been dropped at once: had it gone
    // into the thread's old cache, it would still be alive.
    assert_eq!(counters.dropped(), 1, "{:?}", pool.stats());
    assert_eq!(
        counters.drops_of(late_id),
        1,
        "the late return was not the object dropped"
    );
    assert_eq!(pool.stats().drops, 1, "{:?}", pool.stats());
    counters.assert_no_double_drop();
}
