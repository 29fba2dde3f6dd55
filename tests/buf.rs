//! `BufPool`: class edges, what is never cached, cross-thread returns, a workload shift under
//! cleanup cycles, calibration, the guard, and settings that must be refused.
//!
//! Tests in this file run in parallel in one process, and `reuse_pool::cleanup()` ages every
//! pool at once; every test that counts takes `serial()`, which also stops automatic cycles.

use reuse_pool::buf::{BufPool, Calibration, PooledBuf};
use std::io::Write;
use std::sync::{Mutex, MutexGuard};
use std::thread;

static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the process-wide test lock and stops automatic cleanup cycles.
fn serial() -> MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    reuse_pool::set_cleanup_interval(None);
    g
}

/// The capacity contract of `get(min)`.
fn check_capacity(pool: &BufPool, min: usize, cap: usize) {
    assert!(cap >= min, "get({min}) returned capacity {cap}");
    if min > pool.largest_class() {
        assert_eq!(
            cap, min,
            "get({min}) above the classes must allocate exactly"
        );
    } else if min >= pool.smallest_class() {
        assert!(cap < 2 * min, "get({min}) returned capacity {cap} >= 2x");
        assert_eq!(Some(cap), pool.class_for_request(min));
    } else {
        assert_eq!(cap, pool.smallest_class(), "get({min}) below the classes");
    }
}

#[test]
fn capacity_bounds_at_every_class_edge() {
    let _g = serial();
    let max_k = if cfg!(miri) { 12 } else { 20 };
    let pool = BufPool::new().classes(64, 1 << max_k);
    let mut in_class = 0u64;
    for k in 6..=max_k {
        for min in [(1usize << k) - 1, 1 << k, (1 << k) + 1] {
            // Fresh (a miss the first time a class is used), then reused.
            for _ in 0..2 {
                let buf = pool.get(min);
                assert!(buf.is_empty());
                check_capacity(&pool, min, buf.capacity());
                if min <= pool.largest_class() {
                    in_class += 1;
                }
            }
        }
    }
    for min in [0, 1, 2, 63] {
        let buf = pool.get(min);
        check_capacity(&pool, min, buf.capacity());
        in_class += 1;
    }
    let s = pool.stats();
    let t = s.total();
    // Each class misses once (its first get); every later get reuses the one buffer.
    let classes = (max_k - 6 + 1) as u64;
    assert_eq!(t.misses, classes);
    assert_eq!(t.hits + t.steals + t.victim_hits, in_class - classes);
    assert_eq!(t.puts, in_class);
    assert_eq!(t.drops, 0);
    // 2^max_k + 1, twice: plain allocations, dropped on return.
    assert_eq!(s.unpooled_gets, 2);
    assert_eq!(s.oversize_drops, 2);
    for c in &s.classes {
        assert_eq!(c.stats.misses, 1, "class {}", c.size);
    }
}

#[test]
fn undersize_and_oversize_buffers_are_dropped_never_cached() {
    let _g = serial();
    let pool = BufPool::new().classes(64, 4096);
    for cap in [0, 1, 63] {
        pool.put(Vec::with_capacity(cap));
    }
    for cap in [4097, 8192, 3 * 4096] {
        pool.put(Vec::with_capacity(cap));
    }
    let big = pool.get(5000);
    assert_eq!(big.capacity(), 5000);
    drop(big);
    let s = pool.stats();
    assert_eq!(s.undersize_drops, 3);
    assert_eq!(s.oversize_drops, 4);
    assert_eq!(s.unpooled_gets, 1);
    assert_eq!(s.total().puts, 0);
    for size in pool.class_sizes() {
        assert!(
            pool.try_take(size).is_none(),
            "class {size} cached something"
        );
    }
    assert!(pool.try_take(5000).is_none());
}

#[test]
fn capacity_between_classes_is_shrunk_into_its_class() {
    let _g = serial();
    let pool = BufPool::new();
    pool.put(Vec::with_capacity(5000));
    let mut grown = pool.get(1000);
    assert_eq!(grown.capacity(), 1024);
    grown.extend_from_slice(&[1; 3000]); // reserve(3000) on 1024: capacity 3000
    assert!(grown.capacity() >= 2048 && grown.capacity() < 4096);
    drop(grown);
    let s = pool.stats();
    assert_eq!(s.shrunk, 2);
    assert_eq!(s.class(4096).unwrap().puts, 1);
    assert_eq!(s.class(2048).unwrap().puts, 1);
    assert_eq!(s.class(1024).unwrap().puts, 0);
    assert_eq!(pool.try_take(4096).map(|b| b.capacity()), Some(4096));
    assert_eq!(pool.try_take(2048).map(|b| b.capacity()), Some(2048));
    assert!(pool.try_take(1024).is_none());
}

#[test]
fn cross_thread_return_goes_to_the_class_of_the_new_capacity() {
    let _g = serial();
    // More than a magazine, so that some spill to the returning thread's deque.
    const N: usize = reuse_pool::MAGAZINE + 8;
    let pool = BufPool::new();
    let bufs: Vec<Vec<u8>> = (0..N).map(|_| pool.take(1000)).collect();
    assert!(bufs.iter().all(|b| b.capacity() == 1024));
    thread::scope(|s| {
        s.spawn(|| {
            for mut b in bufs {
                b.extend_from_slice(&[7; 3000]); // grows into the 2 KiB class
                pool.put(b);
            }
        });
    });
    let s = pool.stats();
    assert_eq!(s.class(2048).unwrap().puts, N as u64);
    assert_eq!(s.class(1024).unwrap().puts, 0);
    assert_eq!(s.shrunk, N as u64);

    // The returning thread has exited: what spilled to its deque is stolen at once, what stayed
    // in its magazine becomes reachable after one cleanup cycle (victim tier).
    let mut got = Vec::new();
    while let Some(b) = pool.try_take(2048) {
        got.push(b);
    }
    assert!(
        !got.is_empty(),
        "nothing stolen from the exited thread's deque"
    );
    reuse_pool::cleanup();
    while let Some(b) = pool.try_take(2048) {
        got.push(b);
    }
    assert_eq!(got.len(), N);
    assert!(got.iter().all(|b| b.capacity() == 2048 && b.is_empty()));
    let c = pool.class_stats(2048).unwrap();
    assert_eq!(c.misses, 0);
    assert_eq!(c.steals + c.victim_hits + c.hits, N as u64);
    assert!(c.steals >= 1);
}

/// Resident set size of this process, in bytes.
#[cfg(target_os = "linux")]
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: `sysconf` has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    pages * page
}

/// glibc raises its mmap threshold when a large chunk is freed, after which 1 MiB buffers come
/// from the heap and freeing them need not lower RSS. Fixing the threshold keeps them mmapped,
/// so the RSS check measures what the pool holds, not the allocator's heuristics.
fn pin_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` has no preconditions; it only changes a malloc tuning parameter.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn workload_shift_drops_big_buffers_within_two_cycles_and_rss_falls() {
    let _g = serial();
    pin_mmap_threshold();
    const BIG: usize = 1 << 20;
    const N: usize = 48;
    let pool = BufPool::new()
        .classes(1024, BIG)
        .max_bytes_per_thread(N * BIG);

    // Phase 1: many 1 MiB buffers in use at once, written, then returned.
    let held: Vec<_> = (0..N)
        .map(|_| {
            let mut b = pool.get(BIG);
            b.resize(BIG, 1);
            b
        })
        .collect();
    drop(held);
    assert_eq!(pool.class_stats(BIG).unwrap().puts, N as u64);
    #[cfg(target_os = "linux")]
    let rss_cached = rss();

    // Phase 2: only 1 KiB buffers, across two cleanup cycles.
    let small_phase = || {
        for _ in 0..1000 {
            let mut b = pool.get(1000);
            b.extend_from_slice(&[3; 1000]);
        }
    };
    small_phase();
    reuse_pool::cleanup();
    assert_eq!(
        pool.class_stats(BIG).unwrap().drops,
        0,
        "dropped after one cycle"
    );
    small_phase();
    reuse_pool::cleanup();
    assert_eq!(pool.class_stats(BIG).unwrap().drops, N as u64);
    assert!(pool.try_take(BIG).is_none());

    // The 1 KiB buffer used within the last cycle survived it (in the victim tier).
    let small = pool.class_stats(1024).unwrap();
    drop(pool.get(1000));
    assert_eq!(pool.class_stats(1024).unwrap().misses, small.misses);
    assert_eq!(small.misses, 1);

    #[cfg(target_os = "linux")]
    {
        let rss_after = rss();
        let freed = rss_cached.saturating_sub(rss_after);
        eprintln!("RSS with {N} x 1 MiB cached: {rss_cached} B; after two cycles: {rss_after} B");
        assert!(
            freed >= N * BIG / 2,
            "RSS fell by {freed} bytes only ({rss_cached} -> {rss_after})"
        );
    }
}

#[test]
fn calibration_converges_on_a_known_size_distribution() {
    let _g = serial();
    let round: u32 = if cfg!(miri) { 100 } else { 1000 };
    let pool = BufPool::new()
        .classes(64, 1 << 20)
        .calibration(Calibration {
            sample_every: 1,
            samples_per_round: round,
            percentile: 95,
        });
    assert_eq!(pool.default_size(), 64);
    assert_eq!(pool.max_kept(), 1 << 20);
    // The per-thread sampling countdown is shared by all pools: run it down to 1 with returns
    // that are never recorded (zero length).
    for _ in 0..Calibration::DEFAULT.sample_every {
        pool.put(Vec::new());
    }
    let zeros = vec![0u8; 100_000];
    let give_back = |len: usize| {
        let mut b = pool.take(len);
        b.extend_from_slice(&zeros[..len]);
        pool.put(b);
    };

    // 90 % of 1000 B, 6 % of 3000 B, 4 % of 100 000 B: the mode is the 1 KiB class and the
    // 95th percentile the 4 KiB class.
    for i in 0..round {
        give_back(match i % 100 {
            0..=89 => 1000,
            90..=95 => 3000,
            _ => 100_000,
        });
    }
    let s = pool.stats();
    assert_eq!(s.calibrations, 1);
    assert_eq!(s.default_size, 1024);
    assert_eq!(s.max_kept, 4096);
    assert_eq!(pool.get_default().capacity(), 1024);

    // Above the limit: dropped (counted in its class too); at the limit: cached.
    let before = pool.stats();
    pool.put(Vec::with_capacity(128 << 10));
    pool.put(Vec::with_capacity(4096));
    let after = pool.stats();
    assert_eq!(after.over_limit_drops, before.over_limit_drops + 1);
    assert_eq!(
        after.class(128 << 10).unwrap().drops,
        before.class(128 << 10).unwrap().drops + 1
    );
    assert_eq!(
        after.class(4096).unwrap().puts,
        before.class(4096).unwrap().puts + 1
    );

    // The workload shifts to 100 000 B only: the next round follows it.
    for _ in 0..round {
        give_back(100_000);
    }
    let s = pool.stats();
    assert_eq!(s.calibrations, 2);
    assert_eq!(s.default_size, 128 << 10);
    assert_eq!(s.max_kept, 128 << 10);
    assert_eq!(pool.take_default().capacity(), 128 << 10);
}

static GUARDED: BufPool = BufPool::new().classes(64, 1 << 16).max_per_thread(8);

#[test]
fn guard_writes_detaches_and_discards() {
    fn assert_send<T: Send>() {}
    assert_send::<PooledBuf<'static>>();
    let _g = serial();
    let mut g = GUARDED.get(100);
    write!(g, "hello {}", 5).unwrap();
    assert_eq!(&g[..], b"hello 5");
    assert_eq!(g.capacity(), 128);
    assert!(std::ptr::eq(PooledBuf::pool(&g), &GUARDED));
    let v = PooledBuf::detach(g);
    assert_eq!(v, b"hello 5");
    assert_eq!(GUARDED.class_stats(128).unwrap().puts, 0);
    GUARDED.put(v);
    assert_eq!(GUARDED.class_stats(128).unwrap().puts, 1);
    let g = GUARDED.get(128);
    assert!(g.is_empty(), "returned buffers are cleared");
    assert_eq!(GUARDED.class_stats(128).unwrap().misses, 1);
    PooledBuf::discard(g);
    let s = GUARDED.class_stats(128).unwrap();
    assert_eq!((s.puts, s.drops), (1, 1));
    assert!(GUARDED.try_take(128).is_none());
}

#[test]
fn concurrent_mixed_sizes_stay_in_bounds_and_every_return_is_accounted() {
    let _g = serial();
    const THREADS: usize = 4;
    const OPS: usize = if cfg!(miri) { 200 } else { 20_000 };
    let pool = BufPool::new().classes(64, 1 << 16);
    thread::scope(|s| {
        for t in 0..THREADS {
            let pool = &pool;
            s.spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (t as u64 + 1);
                let mut held = Vec::new();
                for _ in 0..OPS {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // 1 B ..= 128 KiB, log-uniform: below, inside and above the classes.
                    let min = (1usize << (x % 18)) | ((x >> 32) as usize % 1024);
                    let mut b = pool.get(min);
                    check_capacity(pool, min, b.capacity());
                    if x & 7 == 0 {
                        // Sometimes grow past the capacity.
                        let grown = b.capacity() + 1;
                        b.resize(grown, 1);
                    }
                    held.push(b);
                    if held.len() > 4 {
                        held.remove((x >> 40) as usize % held.len());
                    }
                }
            });
        }
    });
    let s = pool.stats();
    let t = s.total();
    let ops = (THREADS * OPS) as u64;
    assert_eq!(t.gets() + s.unpooled_gets, ops);
    // Every return either reached its class or was dropped outside the classes.
    assert_eq!(t.puts + s.undersize_drops + s.oversize_drops, ops, "{s:?}");
    assert!(t.reuse_ratio() > 0.5, "{s:?}");

    // Exactly once: what the classes still cache is what was cached, minus what was handed out
    // again, minus what the per-thread bounds dropped. One cycle makes the exited threads'
    // magazines reachable; every buffer found has exactly its class's capacity.
    reuse_pool::cleanup();
    let mut cached = 0u64;
    for size in pool.class_sizes() {
        while let Some(b) = pool.try_take(size) {
            assert_eq!((b.capacity(), b.len()), (size, 0));
            cached += 1;
        }
    }
    let reused = t.hits + t.steals + t.victim_hits + t.depot_takes;
    let after = pool.stats().total();
    assert_eq!(after.drops, t.drops, "the cycle dropped something");
    assert_eq!(cached, t.puts - reused - t.drops, "{s:?}");
}

#[test]
#[should_panic(
    expected = "BufPool::classes: the smallest class must not be above the largest class"
)]
fn smallest_above_largest_is_refused() {
    let _ = BufPool::new().classes(4096, 64);
}

#[test]
#[should_panic(expected = "BufPool::classes: the smallest class must be non-zero")]
fn zero_smallest_class_is_refused() {
    let _ = BufPool::new().classes(0, 64);
}

#[test]
#[should_panic(expected = "BufPool::classes: the largest class must be a power of two")]
fn non_power_of_two_class_is_refused() {
    let _ = BufPool::new().classes(64, 3000);
}

#[test]
#[should_panic(expected = "BufPool::classes: the largest class must be at most MAX_CLASS_SIZE")]
fn class_above_the_maximum_is_refused() {
    let _ = BufPool::new().classes(64, reuse_pool::buf::MAX_CLASS_SIZE * 2);
}

#[test]
#[should_panic(expected = "BufPool::max_per_thread: the per-thread bound must be at least 1")]
fn zero_per_thread_bound_is_refused() {
    let _ = BufPool::new().max_per_thread(0);
}

#[test]
#[should_panic(
    expected = "BufPool::max_bytes_per_thread: the per-thread byte budget must be non-zero"
)]
fn zero_byte_budget_is_refused() {
    let _ = BufPool::new().max_bytes_per_thread(0);
}

#[test]
#[should_panic(expected = "Calibration::percentile must be in 1..=100")]
fn percentile_above_100_is_refused() {
    let _ = BufPool::new().calibration(Calibration {
        percentile: 101,
        ..Calibration::DEFAULT
    });
}

#[test]
#[should_panic(expected = "Calibration::sample_every must be at least 1")]
fn zero_sample_interval_is_refused() {
    let _ = BufPool::new().calibration(Calibration {
        sample_every: 0,
        ..Calibration::DEFAULT
    });
}

/// Regression: a round recalibrated only when its counter read exactly `samples_per_round`, and
/// subtracted the round afterwards; samples from other threads in between made the counter pass
/// the threshold for good, and calibration stopped. Every round must happen.
#[test]
fn calibration_rounds_never_stall_under_concurrent_samples() {
    let _s = serial();
    let per_thread: u64 = if cfg!(miri) { 200 } else { 200_000 };
    let pool = BufPool::new().calibration(Calibration {
        sample_every: 1,
        samples_per_round: 1,
        percentile: 95,
    });
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..per_thread {
                    let mut b = pool.take(100);
                    b.push(1);
                    pool.put(b);
                }
            });
        }
    });
    // Every return was sampled (`sample_every: 1`), and every sample completed a round.
    assert_eq!(pool.stats().calibrations, 2 * per_thread);
}

/// The byte bound of each class's depot holds: with one buffer per thread and 2 MiB of depot,
/// ten returns of 1 MiB buffers keep three (one in the thread's cache, two in the depot) and
/// drop seven; another thread then finds the two in the depot.
#[test]
fn class_depots_hold_at_most_their_bytes() {
    let _s = serial();
    let pool = BufPool::new().max_per_thread(1).max_shared_bytes(2 << 20);
    assert_eq!(pool.class_shared_bound(1 << 20), Some(2));
    let bufs: Vec<Vec<u8>> = (0..10).map(|_| pool.take(1 << 20)).collect();
    for b in bufs {
        pool.put(b);
    }
    let c = pool.class_stats(1 << 20).unwrap();
    assert_eq!(c.drops, 7, "{c:?}");
    assert_eq!(c.depot_puts, 2, "{c:?}");
    let found = thread::scope(|s| {
        s.spawn(|| {
            let mut n = 0;
            while pool.try_take(1 << 20).is_some() {
                n += 1;
            }
            n
        })
        .join()
        .unwrap()
    });
    assert_eq!(found, 2, "the other thread takes what the depot holds");
}
