//! The hot path, out of line, for `ci/hot_path.sh` to disassemble.
//!
//! `get_put_hit` is a get and a return that hit the current thread's magazine; `take_put_hit` the
//! same through the Go-style pair. The script checks that neither contains an atomic
//! read-modify-write (`lock` prefix, `xchg`) or a fence instruction. Running the example also
//! checks that the calls really are hits.

use reuse_pool::Pool;
use std::hint::black_box;

static P: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(4096)).reset(Vec::clear);

/// A get, 64 bytes of work, and the guard's return.
#[inline(never)]
pub fn get_put_hit(p: &Pool<Vec<u8>>) {
    let mut g = p.get();
    g.extend_from_slice(&[7u8; 64]);
    black_box(&mut *g);
}

/// `take` and `put`.
#[inline(never)]
pub fn take_put_hit(p: &Pool<Vec<u8>>) {
    let mut v = p.take();
    v.extend_from_slice(&[7u8; 64]);
    black_box(&mut v);
    p.put(v);
}

fn main() {
    reuse_pool::set_cleanup_interval(None);
    const N: u64 = 1_000_000;
    for _ in 0..N {
        get_put_hit(&P);
        take_put_hit(&P);
    }
    let s = P.stats();
    println!(
        "hot path: {} gets, {} create(s), {} hits, asymmetric fence (membarrier): {}",
        s.gets(),
        s.misses,
        s.hits,
        reuse_pool::uses_asymmetric_fence()
    );
    assert_eq!(s.misses, 1, "every call after the first must be a hit");
    assert_eq!(s.hits, 2 * N - 1);
}
