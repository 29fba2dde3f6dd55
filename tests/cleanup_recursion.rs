//! `cleanup()` called from the `Drop` of a pooled object, with many objects aged out per cycle
//! and cycles asked for by every such `Drop`: the stack must stay a few frames deep, every
//! object must be dropped exactly once, and every cycle asked for must be counted.
//!
//! Regression: `a_chain_of_drops_each_asking_for_two_cycles_stays_shallow` overflowed the stack
//! of a debug build when each nested `cleanup()` dropped its own cycle's objects on the stack.
//!
//! Its own file, so its own process: the cycles it counts are its own.

use reuse_pool::{cleanup, cycles, Pool};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

/// Serialises the tests of this file: each counts the process's cycles.
static LOCK: Mutex<()> = Mutex::new(());

static CREATED: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicUsize = AtomicUsize::new(0);
/// `cleanup()` calls made by `Drop`s.
static NESTED: AtomicUsize = AtomicUsize::new(0);
/// Drops still allowed to put a fresh object back and ask for two cycles.
static BUDGET: AtomicUsize = AtomicUsize::new(0);
/// Whether a `Drop` calls `cleanup()` once (the first test's shape).
static CLEANUP_ON_DROP: AtomicBool = AtomicBool::new(false);

static POOL: Pool<Obj> = Pool::new(Obj::new).max_per_thread(1 << 14);

struct Obj {
    _payload: Vec<u8>,
}

impl Obj {
    fn new() -> Obj {
        CREATED.fetch_add(1, Relaxed);
        Obj {
            _payload: vec![0; 16],
        }
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Relaxed);
        if CLEANUP_ON_DROP.load(Relaxed) {
            NESTED.fetch_add(1, Relaxed);
            cleanup();
        }
        // A chain: each drop caches a fresh object and runs the two cycles that drop it, whose
        // `Drop` does the same, `BUDGET` times.
        if BUDGET
            .fetch_update(Relaxed, Relaxed, |b| b.checked_sub(1))
            .is_ok()
        {
            POOL.put(Obj::new());
            NESTED.fetch_add(2, Relaxed);
            cleanup();
            cleanup();
        }
    }
}

/// Takes this file's lock, stops automatic cycles and drains the pool, then zeroes the counts.
fn serial_start() -> std::sync::MutexGuard<'static, ()> {
    let l = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    reuse_pool::set_cleanup_interval(None);
    reset_counts();
    l
}

fn reset_counts() {
    CLEANUP_ON_DROP.store(false, Relaxed);
    BUDGET.store(0, Relaxed);
    cleanup();
    cleanup();
    CREATED.store(0, Relaxed);
    DROPPED.store(0, Relaxed);
    NESTED.store(0, Relaxed);
}

#[test]
fn drop_calling_cleanup_with_thousands_of_cached_objects() {
    let _l = serial_start();
    const N: usize = if cfg!(miri) { 200 } else { 5_000 };
    let held: Vec<Obj> = (0..N).map(|_| POOL.take()).collect();
    for o in held {
        POOL.put(o);
    }
    assert_eq!(CREATED.load(Relaxed), N);
    CLEANUP_ON_DROP.store(true, Relaxed);
    let before = cycles();
    cleanup(); // all N to the victim tier
    cleanup(); // all N dropped, each `Drop` asking for a cycle
    assert_eq!(
        DROPPED.load(Relaxed),
        N,
        "every aged-out object dropped once"
    );
    assert_eq!(NESTED.load(Relaxed), N);
    assert_eq!(
        cycles() - before,
        2 + N as u64,
        "every cycle asked for, nested ones included, counted before cleanup() returned"
    );
    CLEANUP_ON_DROP.store(false, Relaxed);
    assert!(POOL.try_take().is_none(), "nothing left cached");
}

#[test]
fn a_chain_of_drops_each_asking_for_two_cycles_stays_shallow() {
    let _l = serial_start();
    const CHAIN: usize = if cfg!(miri) { 200 } else { 20_000 };
    BUDGET.store(CHAIN, Relaxed);
    POOL.put(Obj::new());
    let before = cycles();
    cleanup();
    cleanup();
    // Each link was dropped by a cycle that the previous link's `Drop` asked for.
    assert_eq!(BUDGET.load(Relaxed), 0, "the whole chain ran");
    assert_eq!(CREATED.load(Relaxed), CHAIN + 1);
    assert_eq!(DROPPED.load(Relaxed), CHAIN + 1, "every link dropped once");
    assert_eq!(cycles() - before, 2 + 2 * CHAIN as u64);
    assert!(POOL.try_take().is_none());
}

#[test]
fn two_threads_with_held_objects_and_a_drop_that_calls_cleanup() {
    let _l = serial_start();
    CLEANUP_ON_DROP.store(true, Relaxed);
    const ROUNDS: usize = if cfg!(miri) { 20 } else { 2_000 };
    std::thread::scope(|s| {
        for t in 0..2 {
            s.spawn(move || {
                let mut held = Vec::with_capacity(40);
                for round in 0..ROUNDS {
                    while held.len() < 40 {
                        held.push(POOL.get());
                    }
                    held.truncate(round % 7);
                    if round % 50 == 25 * t {
                        cleanup();
                    }
                }
            });
        }
    });
    CLEANUP_ON_DROP.store(false, Relaxed);
    cleanup();
    cleanup();
    assert!(CREATED.load(Relaxed) > 0);
    assert_eq!(
        DROPPED.load(Relaxed),
        CREATED.load(Relaxed),
        "every object dropped exactly once"
    );
}
