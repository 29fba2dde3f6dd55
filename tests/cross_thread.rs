//! Objects returned on one thread are handed out on another: producer/consumer pipelines,
//! owned guards dropped on other threads, and objects cached by a thread that is parked (alive
//! but idle) taken by others, aged by cleanup cycles while it stays parked.

mod common;

use common::{cycles_lock, manual_cycles, Counters, Tracked};
use reuse_pool::{cleanup, Pool, Pooled, PooledOwned, MAGAZINE};
use std::collections::HashSet;
use std::sync::{mpsc, Arc, Barrier};
use std::thread;

/// A pool of [`Tracked`] objects counted by `counters`.
fn tracked_pool(counters: &Arc<Counters>) -> Pool<Tracked, impl Fn() -> Tracked> {
    let c = counters.clone();
    Pool::from_fn(move || c.make())
}

/// Get on thread A, send through a bounded channel, return on thread B: the pipeline reaches a
/// steady state where A reuses what B returned, so `create` runs for at most 1% of the gets.
///
/// The channel is bounded so that the number of objects in flight is bounded by design; a
/// producer allowed to run arbitrarily far ahead legitimately needs that many objects. Under
/// Miri the run is short (1,000 objects, 8 in flight), so the bound there is 10%.
#[test]
fn pipeline_get_on_a_return_on_b() {
    let _cycles = cycles_lock();
    manual_cycles();
    const N: usize = if cfg!(miri) { 1_000 } else { 100_000 };
    const IN_FLIGHT: usize = if cfg!(miri) { 8 } else { 64 };
    const MAX_CREATES: usize = if cfg!(miri) { N / 10 } else { N / 100 };
    let counters = Counters::new();
    let pool = tracked_pool(&counters);
    let (tx, rx) = crossbeam_channel::bounded::<Pooled<'_, Tracked, _>>(IN_FLIGHT);
    let returned = thread::scope(|s| {
        let pool = &pool;
        s.spawn(move || {
            for _ in 0..N {
                let v = pool.get();
                v.hold();
                tx.send(v).unwrap();
            }
        });
        let consumer = s.spawn(move || {
            let mut n = 0;
            for v in rx {
                v.release();
                drop(v); // returns the object to B's cache
                n += 1;
            }
            n
        });
        consumer.join().unwrap()
    });
    assert_eq!(returned, N);
    let created = counters.created();
    let s = pool.stats();
    assert!(
        created as usize <= MAX_CREATES,
        "{created} create calls for {N} gets through a pipeline: {s:?}"
    );
    assert_eq!(s.misses, created, "{s:?}");
    assert_eq!(s.gets() as usize, N, "{s:?}");
    assert_eq!(s.puts as usize, N, "{s:?}");
    assert!(s.steals > 0, "A can only reuse by stealing from B: {s:?}");
    counters.assert_no_double_drop();
    drop(pool);
    counters.assert_all_dropped_once();
}

/// `get_owned` guards sent to other threads and dropped there return their objects to those
/// threads' caches, where this thread then finds them.
#[test]
fn owned_guards_return_on_the_thread_that_drops_them() {
    let _cycles = cycles_lock();
    manual_cycles();
    const THREADS: usize = 4;
    const PER: usize = if cfg!(miri) { 10 } else { 50 };
    let counters = Counters::new();
    let pool = Arc::new(tracked_pool(&counters));
    let mut guards: Vec<PooledOwned<Tracked, _>> =
        (0..THREADS * PER).map(|_| pool.get_owned()).collect();
    for g in &guards {
        g.hold();
    }
    // All returning threads are alive at the same time: a thread that starts after another
    // exited inherits its cache (and its per-thread bound), which is not what this test is about.
    let all_returned = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let mine: Vec<_> = guards.drain(..PER).collect();
            let all_returned = all_returned.clone();
            // `PooledOwned` is `'static + Send`: a plain `thread::spawn` takes it.
            thread::spawn(move || {
                for g in mine {
                    g.release();
                    drop(g);
                }
                all_returned.wait();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let total = (THREADS * PER) as u64;
    assert_eq!(counters.created(), total);
    assert_eq!(
        counters.dropped(),
        0,
        "every thread caches {PER} <= 128 objects"
    );
    assert_eq!(pool.stats().puts, total);

    // The returning threads have exited; their deques stay stealable, only what sits in their
    // magazines waits for a cleanup cycle.
    let taken: Vec<_> = (0..total).map(|_| pool.get()).collect();
    let ids: HashSet<u64> = taken.iter().map(|t| t.id).collect();
    assert_eq!(ids.len(), taken.len(), "an object was handed out twice");
    let creates = counters.created() - total;
    assert!(
        creates as usize <= THREADS * MAGAZINE,
        "{creates} creates, expected at most {} (the exited threads' magazines)",
        THREADS * MAGAZINE
    );
    drop(taken);
    drop(pool);
    counters.assert_all_dropped_once();
}

/// An owned guard keeps its pool alive: the pool drops (with every cached object) when the last
/// guard returns, on whichever thread that happens.
#[test]
fn owned_guard_keeps_the_pool_alive() {
    let _cycles = cycles_lock();
    manual_cycles();
    const THREADS: usize = 3;
    let counters = Counters::new();
    let pool = Arc::new(tracked_pool(&counters));
    // Two objects cached on this thread, then three guards out.
    pool.put(counters.make());
    pool.put(counters.make());
    let guards: Vec<_> = (0..THREADS).map(|_| pool.get_owned()).collect();
    let go = Arc::new(Barrier::new(THREADS + 1));
    let handles: Vec<_> = guards
        .into_iter()
        .map(|g| {
            let go = go.clone();
            thread::spawn(move || {
                go.wait(); // until the test has dropped its own handle
                drop(g);
            })
        })
        .collect();
    let weak = Arc::downgrade(&pool);
    drop(pool);
    assert_eq!(weak.strong_count(), THREADS, "the guards hold the pool");
    assert_eq!(counters.dropped(), 0);
    go.wait();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(weak.strong_count(), 0, "the last guard dropped the pool");
    assert_eq!(counters.created(), THREADS as u64);
    counters.assert_all_dropped_once();
}

/// A thread that returned `OBJECTS` objects and then parked (alive, blocked, not exited).
struct ParkedOwner<'scope> {
    release: mpsc::Sender<()>,
    handle: thread::ScopedJoinHandle<'scope, ()>,
}

const OBJECTS: usize = if cfg!(miri) { MAGAZINE + 8 } else { 100 };

/// Spawns a thread that gets `OBJECTS` objects at once (so all are created), returns them all,
/// and parks until released.
fn park_owner<'scope, F: Fn() -> Tracked + Sync>(
    s: &'scope thread::Scope<'scope, '_>,
    pool: &'scope Pool<Tracked, F>,
) -> ParkedOwner<'scope> {
    let (release, wait) = mpsc::channel::<()>();
    let (parked_tx, parked) = mpsc::channel::<()>();
    let handle = s.spawn(move || {
        let held: Vec<_> = (0..OBJECTS).map(|_| pool.get()).collect();
        drop(held);
        parked_tx.send(()).unwrap();
        // Parked: alive, idle, holding its cache, until the test says so.
        let _ = wait.recv();
    });
    parked.recv().unwrap();
    ParkedOwner { release, handle }
}

impl ParkedOwner<'_> {
    fn finish(self) {
        self.release.send(()).unwrap();
        self.handle.join().unwrap();
    }
}

/// Takes `n` objects on this thread at once, checking that they are distinct.
fn take_distinct<F: Fn() -> Tracked>(
    pool: &Pool<Tracked, F>,
    n: usize,
) -> Vec<Pooled<'_, Tracked, F>> {
    let got: Vec<_> = (0..n).map(|_| pool.get()).collect();
    let ids: HashSet<u64> = got.iter().map(|t| t.id).collect();
    assert_eq!(ids.len(), n, "an object was handed out twice");
    got
}

/// An idle thread's returned objects are taken by another thread without a cleanup cycle:
/// everything beyond its private magazine is stealable, so at most `MAGAZINE` creates.
#[test]
fn idle_thread_objects_are_stolen() {
    let _cycles = cycles_lock();
    manual_cycles();
    let counters = Counters::new();
    let pool = tracked_pool(&counters);
    thread::scope(|s| {
        let owner = park_owner(s, &pool);
        assert_eq!(counters.created() as usize, OBJECTS);
        assert_eq!(counters.dropped(), 0);
        let got = take_distinct(&pool, OBJECTS);
        let creates = counters.created() as usize - OBJECTS;
        assert!(
            creates <= MAGAZINE,
            "{creates} creates while an idle thread caches {OBJECTS} objects; at most MAGAZINE \
             ({MAGAZINE}) may be out of reach: {:?}",
            pool.stats()
        );
        assert!(pool.stats().steals > 0);
        drop(got);
        owner.finish();
    });
    drop(pool);
    counters.assert_all_dropped_once();
}

/// After one cleanup cycle, everything an idle thread cached, its magazine included, is in the
/// victim tier: another thread takes all of it without a single create.
#[test]
fn idle_thread_objects_reachable_after_one_cycle() {
    let _cycles = cycles_lock();
    manual_cycles();
    let counters = Counters::new();
    let pool = tracked_pool(&counters);
    thread::scope(|s| {
        let owner = park_owner(s, &pool);
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
        owner.finish();
    });
    drop(pool);
    counters.assert_all_dropped_once();
}

/// Two cleanup cycles drop everything an idle thread cached, while it is still parked.
#[test]
fn idle_thread_objects_dropped_after_two_cycles() {
    let _cycles = cycles_lock();
    manual_cycles();
    let counters = Counters::new();
    let pool = tracked_pool(&counters);
    thread::scope(|s| {
        let owner = park_owner(s, &pool);
        cleanup();
        assert_eq!(counters.dropped(), 0, "one cycle drops nothing");
        cleanup();
        assert_eq!(
            counters.dropped() as usize,
            OBJECTS,
            "two cycles must drop all {OBJECTS} objects of the parked thread"
        );
        counters.assert_all_dropped_once();
        assert_eq!(pool.stats().drops as usize, OBJECTS);
        assert!(pool.try_take().is_none());
        owner.finish();
    });
}

/// Threads that use a fresh pool at the same moment all race to create its storage, which is
/// published once (a compare-and-swap; the losers drop theirs, unused): every thread's returns
/// land in the one storage that the pool counts and drains, and no object is lost or dropped
/// twice.
#[test]
fn threads_racing_a_fresh_pools_first_use_share_one_storage() {
    let _cycles = cycles_lock();
    manual_cycles();
    const THREADS: usize = 4;
    const ROUNDS: usize = if cfg!(miri) { 3 } else { 200 };
    let counters = Counters::new();
    for round in 0..ROUNDS {
        let pool = tracked_pool(&counters);
        let start = Barrier::new(THREADS);
        thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    start.wait();
                    drop(pool.get()); // created, then cached
                    pool.put(counters.make());
                });
            }
        });
        let st = pool.stats();
        // A thread may inherit the cache of one that exited before it started: a hit then.
        let gets = st.hits + st.misses + st.steals + st.victim_hits + st.depot_takes;
        assert_eq!(
            (gets, st.puts),
            (THREADS as u64, 2 * THREADS as u64),
            "round {round}: every thread's get and returns counted in one storage: {st:?}"
        );
        drop(pool);
        assert_eq!(
            counters.dropped(),
            counters.created(),
            "round {round}: the pool's drop found every cached object"
        );
    }
    counters.assert_all_dropped_once();
}

/// 1,100 threads alive at once, so that the last ones' indices lie past the flat part of every
/// pool's table of caches (1,024 entries): each one finds its own cache, and gets back from it
/// the object it returned.
#[test]
#[cfg_attr(miri, ignore)] // more threads than Miri runs in reasonable time
fn threads_past_the_tables_flat_part_each_use_their_own_cache() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A cycle between the return and the take would move the object to the victim tier.
    let _cycles = cycles_lock();
    manual_cycles();
    const THREADS: usize = 1_100;
    let next = Arc::new(AtomicUsize::new(0));
    let pool = {
        let next = next.clone();
        Arc::new(Pool::from_fn(move || next.fetch_add(1, Ordering::Relaxed)))
    };
    let all_alive = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (pool, all_alive) = (pool.clone(), all_alive.clone());
            thread::Builder::new()
                .stack_size(512 << 10)
                .spawn(move || {
                    // Every thread takes its index before any thread gives one back.
                    let mine = pool.take();
                    all_alive.wait();
                    pool.put(mine);
                    let again = pool.take();
                    assert_eq!(again, mine, "a thread got another thread's object back");
                    pool.put(again);
                    all_alive.wait();
                })
                .unwrap()
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(
        next.load(Ordering::Relaxed),
        THREADS,
        "one object per thread"
    );
    let s = pool.stats();
    assert_eq!(s.misses, THREADS as u64, "{s:?}");
    assert_eq!(s.hits, THREADS as u64, "{s:?}");
}
