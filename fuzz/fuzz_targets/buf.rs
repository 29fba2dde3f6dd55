//! `BufPool`: class arithmetic against a naive model, and get/put/try_take of arbitrary
//! capacities with exact accounting.
//!
//! Invariants checked after every operation (single thread, so the counters are exact):
//! * `class_for_request` / `class_for_capacity` agree with a loop over the classes;
//! * `get(n)` is empty, has capacity `>= n`, exactly its class's size inside the classes (so
//!   `< 2n` for `n >= smallest`), exactly `n` above them;
//! * `try_take(n)` returns only empty buffers of exactly the class size, never above the classes;
//! * a returned buffer below the smallest or above the largest class is counted as dropped and
//!   never cached; one between two classes is shrunk into the lower one;
//! * at the end, what the classes still hold is exactly what was cached, minus what was handed
//!   out again, minus what the pool dropped (per-thread bound, calibration, cleanup).
//!
//! ```text
//! cargo +nightly fuzz run buf
//! ```

#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use reuse_pool::buf::{BufPool, Calibration};

/// Largest capacity asked for or returned: 32 MiB (never touched beyond `MAX_LEN`).
const MAX_CAP: u32 = 32 << 20;
/// Largest length written into a returned buffer.
const MAX_LEN: usize = 1 << 16;

/// The smallest class `>= n` (and `>= smallest`), `None` above `largest`.
fn model_request(smallest: usize, largest: usize, n: usize) -> Option<usize> {
    let mut c = smallest;
    while c < n {
        if c == largest {
            return None;
        }
        c *= 2;
    }
    Some(c)
}

/// The largest class `<= cap`, `None` below `smallest` or above `largest`.
fn model_capacity(smallest: usize, largest: usize, cap: usize) -> Option<usize> {
    if cap < smallest || cap > largest {
        return None;
    }
    let mut c = smallest;
    while c * 2 <= cap {
        c *= 2;
    }
    Some(c)
}

fn check_get(pool: &BufPool, n: usize, b: &[u8], cap: usize) {
    assert!(b.is_empty(), "get({n}) not empty");
    assert!(cap >= n, "get({n}) capacity {cap}");
    match pool.class_for_request(n) {
        Some(class) => {
            assert_eq!(cap, class, "get({n})");
            if n >= pool.smallest_class() {
                assert!(cap < 2 * n, "get({n}) capacity {cap} >= 2n");
            }
        }
        None => assert_eq!(cap, n, "get({n}) above the classes"),
    }
}

/// One input. Public so that a plain driver can replay inputs without libFuzzer.
pub fn run(u: &mut Unstructured<'_>) -> Result<()> {
    reuse_pool::set_cleanup_interval(None);
    let min_shift = u.int_in_range(0..=16u32)?;
    let max_shift = min_shift + u.int_in_range(0..=8u32)?;
    let (smallest, largest) = (1usize << min_shift, 1usize << max_shift);
    let mut pool = BufPool::new()
        .classes(smallest, largest)
        .max_per_thread(u.int_in_range(1..=16usize)?);
    let calibrated = u.arbitrary::<bool>()?;
    if calibrated {
        pool = pool.calibration(Calibration {
            sample_every: u.int_in_range(1..=4)?,
            samples_per_round: u.int_in_range(1..=32)?,
            percentile: u.int_in_range(1..=100)?,
        });
    }
    let zeros = vec![0u8; MAX_LEN];
    let (mut unpooled, mut undersize, mut oversize, mut shrunk, mut class_puts) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut held: Vec<Vec<u8>> = Vec::new();

    while !u.is_empty() {
        match u.int_in_range(0..=5u8)? {
            // Class arithmetic only.
            0 => {
                let n = u.int_in_range(0..=MAX_CAP)? as usize;
                assert_eq!(
                    pool.class_for_request(n),
                    model_request(smallest, largest, n),
                    "class_for_request({n})"
                );
                assert_eq!(
                    pool.class_for_capacity(n),
                    model_capacity(smallest, largest, n),
                    "class_for_capacity({n})"
                );
            }
            // get with a guard, written and returned on drop.
            1 => {
                let n = u.int_in_range(0..=MAX_CAP)? as usize;
                let mut b = pool.get(n);
                let cap = b.capacity();
                check_get(&pool, n, &b, cap);
                let len = u.int_in_range(0..=MAX_LEN.min(cap))?;
                b.extend_from_slice(&zeros[..len]);
                if pool.class_for_request(n).is_none() {
                    unpooled += 1;
                    oversize += 1;
                } else {
                    class_puts += 1;
                }
            }
            // take, held for later.
            2 => {
                let n = u.int_in_range(0..=MAX_CAP)? as usize;
                let b = pool.take(n);
                check_get(&pool, n, &b, b.capacity());
                if pool.class_for_request(n).is_none() {
                    unpooled += 1;
                }
                held.push(b);
            }
            // try_take never allocates and never returns anything off its class.
            3 => {
                let n = u.int_in_range(0..=MAX_CAP)? as usize;
                match (pool.try_take(n), pool.class_for_request(n)) {
                    (Some(b), Some(class)) => {
                        assert_eq!((b.capacity(), b.len()), (class, 0), "try_take({n})");
                        held.push(b);
                    }
                    (Some(b), None) => panic!("try_take({n}) above the classes: {}", b.capacity()),
                    (None, _) => {}
                }
            }
            // put an arbitrary capacity, or one of the held buffers, maybe grown.
            4 => {
                let mut b = if !held.is_empty() && u.arbitrary::<bool>()? {
                    let i = u.choose_index(held.len())?;
                    held.swap_remove(i)
                } else {
                    Vec::with_capacity(u.int_in_range(0..=MAX_CAP)? as usize)
                };
                let len = u.int_in_range(0..=MAX_LEN)?;
                b.extend_from_slice(&zeros[..len]);
                let cap = b.capacity();
                match model_capacity(smallest, largest, cap) {
                    None if cap < smallest => undersize += 1,
                    None => oversize += 1,
                    Some(class) => {
                        class_puts += 1;
                        if cap != class {
                            shrunk += 1;
                        }
                    }
                }
                pool.put(b);
            }
            _ => reuse_pool::cleanup(),
        }
        let s = pool.stats();
        assert_eq!(s.unpooled_gets, unpooled);
        assert_eq!(s.undersize_drops, undersize);
        assert_eq!(s.oversize_drops, oversize);
        // Calibration drops a class above its limit before the shrink and the cache.
        if !calibrated {
            assert_eq!(s.shrunk, shrunk);
        }
        assert_eq!(s.total().puts + s.over_limit_drops, class_puts, "{s:?}");
        assert!(smallest <= s.default_size && s.default_size <= s.max_kept);
        assert!(s.max_kept <= largest && s.max_kept.is_power_of_two());
    }

    // Exactly once: drain everything this thread can reach.
    drop(held);
    let before = pool.stats();
    let t = before.total();
    let mut cached = 0u64;
    for class in pool.class_sizes() {
        while let Some(b) = pool.try_take(class) {
            assert_eq!((b.capacity(), b.len()), (class, 0));
            cached += 1;
        }
    }
    // Class `drops` also count buffers over the calibrated limit, which were never cached.
    let reused = t.hits + t.steals + t.victim_hits;
    let cache_drops = t.drops - before.over_limit_drops;
    assert_eq!(cached, t.puts - reused - cache_drops, "{before:?}");
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
