//! A first look: hits, creates, stealing across threads, and a cleanup cycle.
//!
//! Run with `cargo run --release --example quickstart`.

use reuse_pool::{Pool, Pooled};
use std::sync::atomic::{AtomicUsize, Ordering};

static CREATED: AtomicUsize = AtomicUsize::new(0);

static BUFS: Pool<Vec<u8>> = Pool::new(|| {
    CREATED.fetch_add(1, Ordering::Relaxed);
    Vec::with_capacity(4096)
})
.reset(Vec::clear)
.keep_if(|v| v.capacity() <= 64 << 10);

fn main() {
    // Cycles are run by hand here, so that the output is the same on every run.
    reuse_pool::set_cleanup_interval(None);

    // 1. The same thread gets and returns a buffer 10,000 times: one create, then hits.
    for i in 0..10_000u32 {
        let mut buf = BUFS.get();
        buf.extend_from_slice(&i.to_le_bytes());
    }
    let s = BUFS.stats();
    println!(
        "same thread: 10000 gets -> {} create(s), {} hits",
        s.misses, s.hits
    );

    // 2. A thread returns 100 buffers and exits; the main thread reuses them.
    std::thread::spawn(|| {
        let held: Vec<Pooled<'_, Vec<u8>>> = (0..100).map(|_| BUFS.get()).collect();
        drop(held);
    })
    .join()
    .unwrap();
    let before = BUFS.stats();
    let held: Vec<_> = (0..100).map(|_| BUFS.get()).collect();
    let after = BUFS.stats();
    println!(
        "other thread: 100 gets after it exited -> {} create(s), {} stolen, {} from own cache",
        after.misses - before.misses,
        after.steals - before.steals,
        after.hits - before.hits
    );
    drop(held);

    // 3. A buffer that grew past 64 KiB is dropped on return instead of pinning memory.
    let mut big = BUFS.get();
    big.reserve(1 << 20);
    drop(big);
    println!("oversize return: drops = {}", BUFS.stats().drops);

    // 4. Two cleanup cycles: the first moves idle buffers to the victim tier, the second drops them.
    let cached_before = BUFS.stats().drops;
    reuse_pool::cleanup();
    let after_one = BUFS.stats().drops;
    reuse_pool::cleanup();
    let after_two = BUFS.stats().drops;
    println!(
        "cleanup: dropped {} after one cycle, {} after two (cycles run: {})",
        after_one - cached_before,
        after_two - cached_before,
        reuse_pool::cycles()
    );
    println!(
        "total creates: {}, reuse ratio {:.4}",
        CREATED.load(Ordering::Relaxed),
        BUFS.stats().reuse_ratio()
    );
}
