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

/// Whether `len_a` bytes at `a` and `len_b` bytes at `b` come within 16 bytes of each other
/// modulo 4 KiB (the crate's placement margin).
fn meet_mod_4k(a: usize, len_a: usize, b: usize, len_b: usize) -> bool {
    let d = b.wrapping_sub(a) % 4096;
    d < len_a + 16 || d + len_b + 16 > 4096
}

/// Every thread's cache is placed where its hot line and the first two slots of its magazine
/// do not meet, modulo 4 KiB, what a hit loads besides them: the thread's index cell, the pool's
/// fields and the pool's table entry for the thread (`Pool::hit_addresses`). Left to the
/// allocator, about one cache in ten met one of them, and each such cache was slower for as
/// long as it lived (`benches/hit_spread.rs`).
#[test]
fn each_threads_cache_lies_away_from_what_a_hit_loads() {
    let n = if cfg!(miri) { 8 } else { 400 };
    let pools: Vec<Box<Pool<Vec<u8>>>> = (0..n)
        .map(|_| Box::new(Pool::new(Vec::new).reset(Vec::clear)))
        .collect();
    let check = || {
        for (i, pool) in pools.iter().enumerate() {
            drop(pool.get()); // installs this thread's cache
            let [tls, _storage, hot, mag, _index, entry] =
                pool.hit_addresses().expect("the cache is installed");
            let at = &**pool as *const Pool<Vec<u8>> as usize;
            let loads = [
                (tls, 8),
                (entry, 8),
                (at, std::mem::size_of::<Pool<Vec<u8>>>()),
            ];
            for (what, start, len) in [("hot line", hot, 64), ("magazine", mag, 48)] {
                for (l, (s, n)) in loads.into_iter().enumerate() {
                    assert!(
                        !meet_mod_4k(start, len, s, n),
                        "pool {i}: {what} at {start:#x} meets load {l} at {s:#x}"
                    );
                }
            }
            assert!(
                !meet_mod_4k(hot, 64, mag, 48),
                "pool {i}: hot line {hot:#x} meets magazine {mag:#x}"
            );
        }
    };
    check();
    thread::scope(|s| {
        s.spawn(check);
    });
}
