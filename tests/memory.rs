//! Idle memory goes back to the OS: 100 MiB of 256 KiB buffers cached by parked threads are
//! freed by two cleanup cycles, and the process's resident set shrinks accordingly.
//!
//! Linux only: the resident set size comes from `/proc/self/smaps_rollup` (its `Rss:` line, in
//! kB), or, on kernels without it, from the second field of `/proc/self/statm` times an assumed
//! 4096-byte page. glibc serves allocations of 256 KiB with `mmap` (its default threshold is
//! 128 KiB, raised only after such a block is freed, and every buffer here is allocated before
//! any is freed), so freeing them unmaps them at once.
#![cfg(target_os = "linux")]

mod common;

use common::{cycles_lock, manual_cycles};
use reuse_pool::{cleanup, Pool};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Barrier};
use std::thread;

const MIB: usize = 1 << 20;
const BUF: usize = 256 << 10;
const THREADS: usize = 4;
const TOTAL: usize = 100 * MIB;
const PER_THREAD: usize = TOTAL / BUF / THREADS;

static CREATED: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// A 256 KiB buffer whose pages are resident, counting its creation and drop.
struct Buf(#[allow(dead_code)] Vec<u8>);

impl Buf {
    fn new() -> Buf {
        CREATED.fetch_add(1, Ordering::SeqCst);
        // Written in full, so that every page is resident.
        Buf(vec![1u8; BUF])
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

/// Resident set size of this process, in bytes.
fn rss() -> usize {
    if let Ok(rollup) = std::fs::read_to_string("/proc/self/smaps_rollup") {
        for line in rollup.lines() {
            if let Some(rest) = line.strip_prefix("Rss:") {
                let kb: usize = rest.trim().trim_end_matches("kB").trim().parse().unwrap();
                return kb * 1024;
            }
        }
    }
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
#[cfg_attr(miri, ignore)]
fn idle_buffers_go_back_to_the_os_after_two_cycles() {
    let _cycles = cycles_lock();
    manual_cycles();
    let pool: Pool<Buf> = Pool::new(Buf::new);
    let count = THREADS * PER_THREAD;
    let baseline = rss();
    let all_hold = Barrier::new(THREADS);
    let (parked_tx, parked) = mpsc::channel();
    thread::scope(|s| {
        let mut releases = Vec::new();
        let mut handles = Vec::new();
        for _ in 0..THREADS {
            let (release, wait) = mpsc::channel::<()>();
            releases.push(release);
            let (pool, all_hold, parked_tx) = (&pool, &all_hold, parked_tx.clone());
            handles.push(s.spawn(move || {
                // All buffers exist at once before any returns, so all are created.
                let held: Vec<_> = (0..PER_THREAD).map(|_| pool.get()).collect();
                all_hold.wait();
                drop(held);
                parked_tx.send(()).unwrap();
                let _ = wait.recv(); // parked: alive and idle, its cache full
            }));
        }
        for _ in 0..THREADS {
            parked.recv().unwrap();
        }
        assert_eq!(CREATED.load(Ordering::SeqCst), count);
        assert_eq!(
            DROPPED.load(Ordering::SeqCst),
            0,
            "all {count} buffers are cached"
        );
        let peak = rss();
        assert!(
            peak >= baseline + 90 * MIB,
            "100 MiB of buffers should be resident: baseline {} MiB, peak {} MiB",
            baseline / MIB,
            peak / MIB
        );

        cleanup();
        cleanup();
        assert_eq!(
            DROPPED.load(Ordering::SeqCst),
            count,
            "two cycles drop every idle buffer"
        );
        let after = rss();
        assert!(
            after <= baseline + 20 * MIB && after + 80 * MIB <= peak,
            "memory not returned: baseline {} MiB, peak {} MiB, after two cycles {} MiB",
            baseline / MIB,
            peak / MIB,
            after / MIB
        );

        for r in releases {
            r.send(()).unwrap();
        }
        for h in handles {
            h.join().unwrap();
        }
    });
}
