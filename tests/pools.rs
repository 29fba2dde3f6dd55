//! Several pools on one thread: pools used in turn, nested, and created where a dropped one was
//! (at the same address, so a lookup keyed by address would find the dropped pool's cache) never
//! see each other's objects.

mod common;

use common::{cycles_lock, manual_cycles};
use reuse_pool::Pool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

const ROUNDS: usize = if cfg!(miri) { 20 } else { 2_000 };

/// Pools created one after the other, each dropped before the next (so the allocator hands the
/// next one the same memory): every pool returns only what was put into it.
#[test]
fn a_new_pool_in_a_dropped_pools_place_sees_none_of_its_objects() {
    // No cycle may move the objects to the victim tier between a return and the take.
    let _cycles = cycles_lock();
    manual_cycles();
    for i in 0..ROUNDS {
        let pool = Pool::from_fn(move || (i, 0usize));
        // The first get creates and installs this thread's cache; the return caches it.
        assert_eq!(*pool.get(), (i, 0));
        pool.put((i, 1));
        // The magazine holds (i, 0) and, on top, (i, 1).
        assert_eq!(pool.take(), (i, 1), "round {i}");
        assert_eq!(pool.take(), (i, 0), "round {i}");
        assert_eq!(pool.try_take(), None, "round {i}");
        let s = pool.stats();
        assert_eq!((s.hits, s.misses, s.puts), (2, 1, 2), "round {i}: {s:?}");
    }
}

/// Three pools used in turn and nested on two threads, so that the cache each thread found
/// last changes on every call: objects never cross pools, and each pool creates at most what
/// its threads hold at once.
#[test]
fn pools_used_in_turn_and_nested_keep_their_own_objects() {
    let _cycles = cycles_lock();
    manual_cycles();
    static CREATED: [AtomicUsize; 3] = [
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    ];
    fn make<const K: usize>() -> (usize, Vec<u8>) {
        CREATED[K].fetch_add(1, Ordering::Relaxed);
        (K, Vec::new())
    }
    static POOLS: [Pool<(usize, Vec<u8>)>; 3] = [
        Pool::new(make::<0>),
        Pool::new(make::<1>),
        Pool::new(make::<2>),
    ];
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for r in 0..ROUNDS {
                    for (k, pool) in POOLS.iter().enumerate() {
                        let mut g = pool.get();
                        assert_eq!(
                            g.0, k,
                            "round {r}: pool {k} handed out another pool's object"
                        );
                        g.1.push(k as u8);
                        // Nested: the next pool's guard is taken and returned while `g` is held.
                        let next = (k + 1) % 3;
                        let h = POOLS[next].get();
                        assert_eq!(h.0, next, "round {r}: nested get from pool {next}");
                        assert!(h.1.iter().all(|&b| b == next as u8));
                        drop(h);
                        assert!(g.1.iter().all(|&b| b == k as u8));
                        g.1.clear();
                    }
                }
            });
        }
    });
    for (k, c) in CREATED.iter().enumerate() {
        // Each thread holds at most one object of a pool at a time.
        let created = c.load(Ordering::Relaxed);
        assert!((1..=2).contains(&created), "pool {k} created {created}");
        let s = POOLS[k].stats();
        assert_eq!(s.misses as usize, created, "pool {k}: {s:?}");
        assert_eq!(
            s.hits + s.misses,
            (2 * 2 * ROUNDS) as u64,
            "pool {k}: {s:?}"
        );
    }
}
