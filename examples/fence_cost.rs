//! What the fence mode costs a hit: times 10 million get+drop pairs on a `static` pool, five
//! times, and prints the median ns per pair.
//!
//! On Linux the owner's half of the reclaim handshake is a compiler fence, paid for by one
//! `membarrier` per cleanup cycle. Elsewhere (or with `REUSE_POOL_NO_MEMBARRIER=1`, which
//! forces the fallback) every hit runs a full fence instead. Compare:
//!
//! ```sh
//! cargo run --release --example fence_cost
//! REUSE_POOL_NO_MEMBARRIER=1 cargo run --release --example fence_cost
//! ```

use reuse_pool::Pool;
use std::hint::black_box;
use std::time::Instant;

static POOL: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(64)).reset(Vec::clear);

const OPS: u32 = 10_000_000;
const RUNS: usize = 5;

/// One get and the guard's return.
#[inline(never)]
fn get_drop() {
    let mut g = POOL.get();
    g.push(1);
    black_box(&mut *g);
}

fn main() {
    reuse_pool::set_cleanup_interval(None);
    get_drop(); // the pool's storage and this thread's cache
    let mut per_op: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..OPS {
                get_drop();
            }
            start.elapsed().as_nanos() as f64 / f64::from(OPS)
        })
        .collect();
    per_op.sort_by(f64::total_cmp);
    let mode = if reuse_pool::uses_asymmetric_fence() {
        "membarrier (compiler fence on the hit)"
    } else {
        "fallback (full fence on the hit)"
    };
    println!(
        "fence mode: {mode}; get+drop: median {:.2} ns of {RUNS} runs of {OPS} (min {:.2}, max {:.2})",
        per_op[RUNS / 2],
        per_op[0],
        per_op[RUNS - 1]
    );
    let s = POOL.stats();
    assert_eq!(s.misses, 1, "every get after the first is a hit");
}
