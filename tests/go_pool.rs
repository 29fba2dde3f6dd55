//! Ports of Go's `src/sync/pool_test.go` (golang/go): `TestPool`, `TestPoolNew`, `TestPoolGC`,
//! `TestPoolRelease` and `TestPoolStress`.
//!
//! Go forces a garbage collection with `runtime.GC()`; here a cleanup cycle is
//! `reuse_pool::cleanup()`. Go counts finalizers and tolerates one object kept alive by a stray
//! pointer; drop counting is exact, so these ports ask for exact counts. Where Go relies on
//! `Runtime_procPin` to stay on one P, these tests stay on one thread.

mod common;

use common::{cycles_lock, manual_cycles, Counters, Tracked};
use reuse_pool::{cleanup, Pool};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// `TestPool`: objects put on this thread come back; an object survives one cleanup cycle (the
/// victim tier keeps it) and is gone after two.
///
/// Also pins the "victim batch rescue" bug: taking one object from the victim tier must not
/// move other, unused victims into the taker's own cache (a stolen batch, or the rest of a
/// whole magazine), where the next cycle would retire them to the victim tier again instead of
/// dropping them; they would survive the second cycle, against DESIGN.md §2 ("a cleanup cycle
/// drops what the previous cycle moved to the victim tier").
#[test]
fn pool() {
    let _cycles = cycles_lock();
    manual_cycles();
    let counters = Counters::new();
    // Go's `var p Pool` has no `New`: `try_take` is its `Get` returning nil.
    let p = Pool::from_fn({
        let c = counters.clone();
        move || c.make()
    });
    assert!(p.try_take().is_none(), "expected empty");

    let (a, b) = (counters.make(), counters.make());
    let (a_id, b_id) = (a.id, b.id);
    p.put(a);
    p.put(b);
    // Go promises "a" then "b" only with its private+shared layout; order is not part of the
    // contract here, so compare as a set.
    let g1 = p.try_take().expect("want a or b");
    let g2 = p.try_take().expect("want a or b");
    let got: HashSet<u64> = [g1.id, g2.id].into();
    assert_eq!(got, [a_id, b_id].into());
    assert!(p.try_take().is_none(), "want nil");
    drop((g1, g2));
    assert_eq!(counters.dropped(), 2);

    // Put in a large number of objects so they spill into stealable space.
    const N: u64 = 100;
    for _ in 0..N {
        p.put(counters.make());
    }
    assert_eq!(
        counters.dropped(),
        2,
        "the default bound (128) keeps all {N}"
    );
    // After one cycle, the victim tier keeps them alive.
    cleanup();
    assert_eq!(counters.dropped(), 2, "one cycle must not drop anything");
    let c = p.try_take().expect("want c after one cleanup cycle");
    assert!(c.id >= 2, "got {c:?}");
    drop(c);
    // A second cycle drops the victim tier: the 99 objects nobody used since the first cycle.
    cleanup();
    let survivors = 2 + N - counters.dropped();
    assert_eq!(
        survivors,
        0,
        "ENGINE BUG (victim batch rescue): {survivors} of the 99 objects left unused since the \
         first cycle survived the second one: {:?}",
        p.stats()
    );
    assert!(
        p.try_take().is_none(),
        "want nothing after the second cleanup cycle"
    );
    counters.assert_all_dropped_once();
}

/// `TestPoolNew`: `get` calls `create` when the pool is empty, and prefers a returned object.
#[test]
fn pool_new() {
    let _cycles = cycles_lock();
    manual_cycles();
    let i = AtomicU64::new(0);
    let p = Pool::from_fn(|| i.fetch_add(1, Ordering::Relaxed) + 1);
    assert_eq!(p.take(), 1);
    assert_eq!(p.take(), 2);

    p.put(42);
    assert_eq!(p.take(), 42);

    assert_eq!(p.take(), 3);
    let s = p.stats();
    assert_eq!((s.misses, s.hits, s.puts), (3, 1, 1), "{s:?}");
}

/// `testPool(drain)`: after two cycles every object the pool held has been dropped, exactly once.
fn test_pool(drain: bool) {
    let _cycles = cycles_lock();
    manual_cycles();
    let counters = Counters::new();
    let p: Pool<Tracked> = Pool::new(|| unreachable!("this test never calls create"));
    const N: u64 = 100;
    let mut pool_drops = 0;
    for attempt in 0..3 {
        for _ in 0..N {
            p.put(counters.make());
        }
        if drain {
            for _ in 0..N {
                // Go's `p.Get()` with the result thrown away: the object is dropped here.
                drop(
                    p.try_take()
                        .expect("all {N} objects are cached on this thread"),
                );
            }
        } else {
            pool_drops += N;
        }
        cleanup();
        cleanup();
        assert_eq!(
            counters.dropped(),
            counters.created(),
            "only {} out of {} objects dropped on attempt {attempt}",
            counters.dropped(),
            counters.created()
        );
        counters.assert_all_dropped_once();
        assert_eq!(p.stats().drops, pool_drops, "attempt {attempt}");
        assert!(p.try_take().is_none());
    }
    assert_eq!(counters.created(), 3 * N);
}

/// `TestPoolGC`: a pool holds no object it handed out (drained, then two cycles).
#[test]
fn pool_gc() {
    test_pool(true);
}

/// `TestPoolRelease`: a pool drops what it caches after two cycles.
#[test]
fn pool_release() {
    test_pool(false);
}

/// `TestPoolStress`, made stricter: 8 threads get and return objects while another thread runs
/// cleanup cycles (Go's GC runs concurrently too); see [`common::stress_with_cycles`].
#[test]
fn pool_stress() {
    let _cycles = cycles_lock();
    manual_cycles();
    common::stress_with_cycles(8, if cfg!(miri) { 100 } else { 100_000 });
}
