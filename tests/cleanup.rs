//! Where objects end: dropped exactly once when the pool drops (also with the automatic driver
//! running), rejected by `keep_if`, discarded, detached, over the per-thread bound; and `reset`
//! runs on every return.

mod common;

use common::{cycles_lock, manual_cycles, panic_message, reset_tracked, Counters, Tracked};
use reuse_pool::{cleanup, Pool, Pooled, PooledOwned};
use std::collections::HashSet;
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// A pool of [`Tracked`] objects counted by `counters`.
fn tracked_pool(counters: &Arc<Counters>) -> Pool<Tracked, impl Fn() -> Tracked + Send + Sync> {
    let c = counters.clone();
    Pool::from_fn(move || c.make())
}

/// Gets `n` objects at once on the current thread (so they are all distinct) and returns them.
fn cycle_through<F: Fn() -> Tracked>(pool: &Pool<Tracked, F>, n: usize) {
    let held: Vec<_> = (0..n).map(|_| pool.get()).collect();
    drop(held);
}

/// Dropping a pool drops every cached object exactly once: objects cached by this thread, by
/// threads that exited, by threads that are alive but parked, and in the victim tier.
#[test]
fn pool_drop_drops_every_cached_object_once() {
    let _cycles = cycles_lock();
    manual_cycles();
    const PER: usize = if cfg!(miri) { 5 } else { 20 };
    let counters = Counters::new();
    let pool = Arc::new(tracked_pool(&counters));

    // Two threads that return their objects and exit (alive together: distinct caches).
    let both_returned = Arc::new(Barrier::new(2));
    let exited: Vec<_> = (0..2)
        .map(|_| {
            let (pool, both_returned) = (pool.clone(), both_returned.clone());
            thread::spawn(move || {
                cycle_through(&pool, PER);
                both_returned.wait();
            })
        })
        .collect();
    for h in exited {
        h.join().unwrap();
    }
    cycle_through(&pool, PER);
    // Everything so far moves to the victim tier.
    cleanup();

    // Two threads that return their objects, give up their handle on the pool, and park.
    let (parked_tx, parked) = mpsc::channel();
    let mut releases = Vec::new();
    let idle: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            let parked_tx = parked_tx.clone();
            let (release, wait) = mpsc::channel::<()>();
            releases.push(release);
            thread::spawn(move || {
                cycle_through(&pool, PER);
                drop(pool);
                parked_tx.send(()).unwrap();
                let _ = wait.recv();
            })
        })
        .collect();
    for _ in 0..2 {
        parked.recv().unwrap();
    }
    pool.put(counters.make());

    let created = counters.created();
    assert!(created > PER as u64, "created {created}");
    assert_eq!(counters.dropped(), 0, "everything is cached");
    assert_eq!(Arc::strong_count(&pool), 1);
    drop(pool);
    assert_eq!(counters.created(), created);
    counters.assert_all_dropped_once();

    for r in releases {
        r.send(()).unwrap();
    }
    for h in idle {
        h.join().unwrap();
    }
    assert_eq!(
        counters.dropped(),
        created,
        "nothing dropped after the pool"
    );
}

/// Restores manual cycles when a test that started the driver ends, even by a panic.
struct StopDriver;

impl Drop for StopDriver {
    fn drop(&mut self) {
        reuse_pool::set_cleanup_interval(None);
    }
}

/// Pools dropped while the automatic driver runs cycles on its own thread: every object is still
/// dropped exactly once, whether a cycle or the pool's drop gets it.
#[test]
fn pool_drop_while_driver_runs() {
    let _cycles = cycles_lock();
    const MIN_ROUNDS: usize = if cfg!(miri) { 2 } else { 50 };
    const MIN_CYCLES: u64 = if cfg!(miri) { 1 } else { 20 };
    let _stop = StopDriver;
    reuse_pool::set_cleanup_interval(Some(Duration::from_millis(1)));
    let start_cycles = reuse_pool::cycles();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut rounds = 0;
    while rounds < MIN_ROUNDS || reuse_pool::cycles() < start_cycles + MIN_CYCLES {
        assert!(
            Instant::now() < deadline,
            "the driver ran {} cycles in 30 s",
            reuse_pool::cycles() - start_cycles
        );
        let counters = Counters::new();
        let pool = tracked_pool(&counters);
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..10 {
                        cycle_through(&pool, 10);
                    }
                });
            }
            cycle_through(&pool, 10);
        });
        drop(pool);
        counters.assert_all_dropped_once();
        rounds += 1;
    }
}

/// `keep_if` returning false drops the returned object instead of caching it, counts it in
/// `stats().drops`, and only kept objects come back.
#[test]
fn keep_if_rejects_are_dropped() {
    let _cycles = cycles_lock();
    manual_cycles();
    let counters = Counters::new();
    // `dirty` stands for a buffer's size: "oversize" objects are not worth keeping.
    let pool = tracked_pool(&counters).keep_if(|t| t.dirty <= 1000);
    let mut kept = HashSet::new();
    for i in 0..20 {
        let mut t = counters.make();
        t.dirty = i * 100;
        if t.dirty <= 1000 {
            kept.insert(t.id);
        }
        pool.put(t);
    }
    assert_eq!(kept.len(), 11);
    assert_eq!(
        counters.dropped(),
        9,
        "rejected objects are dropped at once"
    );
    let s = pool.stats();
    assert_eq!((s.puts, s.drops), (11, 9), "{s:?}");

    // The guard path too.
    let mut g = pool.get();
    assert!(kept.contains(&g.id));
    let grown = g.id;
    g.dirty = 5000;
    drop(g);
    kept.remove(&grown);
    assert_eq!(counters.drops_of(grown), 1);
    assert_eq!(pool.stats().drops, 10);

    let mut back = HashSet::new();
    while let Some(t) = pool.try_take() {
        assert!(back.insert(t.id), "object {} handed out twice", t.id);
    }
    assert_eq!(back, kept, "exactly the kept objects come back");
    assert_eq!(counters.created(), 20, "try_take never creates");
    counters.assert_no_double_drop();
}

/// `Pooled::discard` and `PooledOwned::discard` drop the object instead of returning it.
#[test]
fn discard_drops_instead_of_returning() {
    let _cycles = cycles_lock();
    manual_cycles();
    let counters = Counters::new();
    let pool = Arc::new(tracked_pool(&counters));
    let g = pool.get();
    let first = g.id;
    Pooled::discard(g);
    assert_eq!(counters.drops_of(first), 1);
    assert_eq!(pool.stats().drops, 1);
    assert_eq!(pool.stats().puts, 0);

    let g = pool.get();
    assert_ne!(g.id, first, "a discarded object never comes back");
    assert_eq!(counters.created(), 2);
    drop(g);

    let owned = pool.get_owned();
    let second = owned.id;
    assert_eq!(counters.created(), 2, "the returned object is reused");
    PooledOwned::discard(owned);
    assert_eq!(counters.drops_of(second), 1);
    assert_eq!(pool.stats().drops, 2);
    assert!(pool.try_take().is_none());
    counters.assert_all_dropped_once();
}

/// `Pooled::detach` keeps the object: it never comes back from the pool, and the pool never
/// drops it.
#[test]
fn detach_keeps_the_object_out_of_the_pool() {
    let _cycles = cycles_lock();
    manual_cycles();
    const ROUNDS: usize = if cfg!(miri) { 10 } else { 1000 };
    let counters = Counters::new();
    let pool = Arc::new(tracked_pool(&counters));
    let kept = Pooled::detach(pool.get());
    let kept_owned = PooledOwned::detach(pool.get_owned());
    let detached = [kept.id, kept_owned.id];
    for _ in 0..ROUNDS {
        let held: Vec<_> = (0..3).map(|_| pool.get()).collect();
        for h in &held {
            assert!(
                !detached.contains(&h.id),
                "detached object {} came back",
                h.id
            );
        }
    }
    cleanup();
    cleanup();
    drop(pool);
    for id in detached {
        assert_eq!(
            counters.drops_of(id),
            0,
            "the pool dropped detached object {id}"
        );
    }
    assert_eq!(counters.live_ids(), detached.to_vec());
    drop((kept, kept_owned));
    counters.assert_all_dropped_once();
}

/// With the depot off, returns beyond `max_per_thread` are dropped: a thread never caches more
/// than the bound.
#[test]
fn max_per_thread_bounds_the_cache() {
    let _cycles = cycles_lock();
    manual_cycles();
    const PUTS: u64 = if cfg!(miri) { 100 } else { 1000 };
    // (bound, objects one thread caches): the bound is split into the fewest equal magazines of
    // at most `MAGAZINE` (32), so 33 is two magazines of 16.
    for (max, expected) in [
        (1, 1),
        (5, 5),
        (16, 16),
        (33, 32),
        (48, 48),
        (100, 100),
        (128, 128),
    ] {
        let counters = Counters::new();
        let pool = tracked_pool(&counters).max_per_thread(max).max_shared(0);
        assert_eq!(pool.per_thread_bound(), max);
        for _ in 0..PUTS {
            pool.put(counters.make());
        }
        let expected = expected.min(PUTS);
        let mut cached = 0;
        while let Some(t) = pool.try_take() {
            cached += 1;
            drop(t);
        }
        assert_eq!(
            cached, expected,
            "max_per_thread({max}): objects cached on one thread"
        );
        // Everything else was dropped by the pool, at return time.
        assert_eq!(pool.stats().drops, PUTS - cached, "max_per_thread({max})");
        assert_eq!(counters.dropped(), PUTS);
        counters.assert_all_dropped_once();
    }
}

/// A zero per-thread bound is refused at construction, with a message naming the setting.
#[test]
fn max_per_thread_zero_is_refused() {
    let zero = std::hint::black_box(0);
    let err = std::panic::catch_unwind(|| Pool::new(Vec::<u8>::new).max_per_thread(zero))
        .expect_err("max_per_thread(0) must panic");
    let msg = panic_message(&*err);
    assert!(msg.contains("max_per_thread"), "message: {msg}");
}

/// `reset` runs on every return (guard drop, `put`, owned guard drop), before `keep_if`, and not
/// on `detach` or `discard`.
#[test]
fn reset_runs_on_every_return() {
    let _cycles = cycles_lock();
    manual_cycles();
    const N: u32 = if cfg!(miri) { 10 } else { 100 };
    let counters = Counters::new();
    // keep_if sees the object after reset: `dirty` is always 0 by then, so nothing is rejected.
    let pool = Arc::new(
        tracked_pool(&counters)
            .reset(reset_tracked)
            .keep_if(|t| t.dirty == 0),
    );
    for i in 0..N {
        let mut g = pool.get();
        assert_eq!(g.dirty, 0, "round {i}: not reset");
        assert_eq!(g.resets, i, "round {i}");
        g.dirty = 7;
    }
    assert_eq!(counters.created(), 1, "one object, reused");

    let mut t = pool.take();
    assert_eq!(t.resets, N);
    t.dirty = 9;
    pool.put(t);
    let mut g = pool.get_owned();
    assert_eq!((g.dirty, g.resets), (0, N + 1));
    g.dirty = 3;
    drop(g);

    let mut g = pool.get();
    assert_eq!((g.dirty, g.resets), (0, N + 2));
    g.dirty = 4;
    let t = Pooled::detach(g);
    assert_eq!((t.dirty, t.resets), (4, N + 2), "detach does not reset");
    assert_eq!(pool.stats().drops, 0, "keep_if saw reset objects only");
    assert_eq!(pool.stats().puts, u64::from(N) + 2);
    drop(t);
    drop(pool);
    counters.assert_all_dropped_once();
}
