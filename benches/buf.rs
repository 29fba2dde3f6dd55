//! Mixed-size byte buffers: `BufPool` against what a user would pick instead — a fresh
//! `Vec::with_capacity`, one `Pool<Vec<u8>>` for every size, and the `zeropool` crate.
//!
//! One op: a size `n`, log-uniform in 64 B ..= 256 KiB (per octave: uniform) from a fixed-seed
//! xorshift; a buffer with capacity `>= n`; `n` bytes copied into it; the buffer kept in a ring of
//! 16 live buffers per thread, replacing (returning) the oldest — a server with 16 requests in
//! flight per thread. Every implementation copies the same bytes from the same source.
//!
//! Timings are per-thread ns per op: threads start together at a `Barrier`, `iter_custom`
//! returns the slowest thread's time. Peak memory: each implementation runs a fixed workload in
//! a child process (this binary, re-executed), which reports its `VmHWM` from
//! `/proc/self/status`; the figures are printed and written to
//! `target/reuse-pool-bench/buf_memory.csv`.
//!
//! ```text
//! cargo bench --bench buf           # about a minute
//! ```

#[path = "../examples/support/results.rs"]
#[allow(dead_code)] // only the place of the files
mod results;

use criterion::{BenchmarkId, Criterion};
use results::out_dir;
use reuse_pool::buf::BufPool;
use reuse_pool::Pool;
use std::hint::black_box;
use std::process::Command;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

/// Largest size asked for: 256 KiB - 1.
const MAX_LEN: usize = 256 << 10;
/// Buffers each thread holds at once.
const RING: usize = 16;
/// Ops per thread in the memory measurement.
const MEM_OPS: u64 = 200_000;
/// Threads in the memory measurement.
const MEM_THREADS: usize = 2;
/// Set (to an implementation's name) in the child processes that measure memory.
const MEM_ENV: &str = "REUSE_POOL_BUF_BENCH_MEMORY";

/// The bytes copied into every buffer.
static SRC: [u8; MAX_LEN] = [0xA5; MAX_LEN];

/// Fixed-seed xorshift64; `size` is log-uniform by octave in 64 ..= 256 KiB - 1.
struct Sizes(u64);

impl Sizes {
    fn new(seed: u64) -> Self {
        Sizes(0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1)
    }

    #[inline]
    fn size(&mut self) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        let octave = 6 + (x % 12) as u32; // 64 B ..= 128 KiB
        (1usize << octave) + (x >> 32) as usize % (1usize << octave)
    }
}

/// A source of buffers holding `n` copied bytes.
trait Source: Sync {
    type Buf<'a>
    where
        Self: 'a;
    fn filled(&self, n: usize) -> Self::Buf<'_>;
}

/// `Vec::with_capacity(n)` every time.
struct Alloc;

impl Source for Alloc {
    type Buf<'a> = Vec<u8>;
    #[inline]
    fn filled(&self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        v.extend_from_slice(&SRC[..n]);
        v
    }
}

/// One `Pool<Vec<u8>>` for every size: buffers grow to the largest size they served.
struct OnePool(Pool<Vec<u8>>);

impl Source for OnePool {
    type Buf<'a> = reuse_pool::Pooled<'a, Vec<u8>>;
    #[inline]
    fn filled(&self, n: usize) -> Self::Buf<'_> {
        let mut v = self.0.get();
        v.extend_from_slice(&SRC[..n]);
        v
    }
}

/// `zeropool::ZeroPool`, pooling every size (`min_buffer_size(0)`), without zeroing
/// (`alloc_uninit` then a copy, the same work as the others).
struct Zero(zeropool::ZeroPool);

impl Source for Zero {
    type Buf<'a> = zeropool::Buf<'a>;
    #[inline]
    fn filled(&self, n: usize) -> zeropool::Buf<'_> {
        self.0.alloc_uninit(n).write_from_slice(&SRC[..n])
    }
}

/// `BufPool` with its defaults (classes 64 B ..= 1 MiB).
struct Classes(BufPool);

impl Source for Classes {
    type Buf<'a> = reuse_pool::buf::PooledBuf<'a>;
    #[inline]
    fn filled(&self, n: usize) -> Self::Buf<'_> {
        let mut v = self.0.get(n);
        v.extend_from_slice(&SRC[..n]);
        v
    }
}

/// `ops` ops on the current thread; returns the time they took (the ring's final drop excluded).
fn work<S: Source>(src: &S, ops: u64, seed: u64, barrier: &Barrier) -> Duration {
    let mut sizes = Sizes::new(seed);
    let mut ring: Vec<Option<S::Buf<'_>>> = (0..RING).map(|_| None).collect();
    barrier.wait();
    let start = Instant::now();
    for i in 0..ops as usize {
        let n = sizes.size();
        let slot = &mut ring[i % RING];
        *slot = Some(src.filled(n));
        black_box(slot);
    }
    let t = start.elapsed();
    drop(ring);
    t
}

/// Runs `work` on `threads` threads started together; returns the slowest thread's time.
fn run<S: Source>(src: &S, threads: usize, ops: u64) -> Duration {
    let barrier = Barrier::new(threads);
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || work(src, ops, t as u64 + 1, barrier))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap()
    })
}

const IMPLS: [&str; 4] = ["vec_alloc", "pool_vec", "zeropool", "bufpool"];

fn one_pool() -> OnePool {
    OnePool(Pool::new(Vec::new).reset(Vec::clear))
}

fn zero() -> Zero {
    Zero(zeropool::ZeroPool::new().min_buffer_size(0))
}

fn classes() -> Classes {
    Classes(BufPool::new())
}

/// Runs `ops` ops on each of `threads` threads against one source; returns the slowest time.
type Runner<'a> = &'a dyn Fn(usize, u64) -> Duration;

/// Calls `f` with the source named `name`.
fn with_source(name: &str, f: &mut dyn FnMut(Runner<'_>)) {
    match name {
        "vec_alloc" => f(&|t, ops| run(&Alloc, t, ops)),
        "pool_vec" => {
            let p = one_pool();
            f(&|t, ops| run(&p, t, ops))
        }
        "zeropool" => {
            let p = zero();
            f(&|t, ops| run(&p, t, ops))
        }
        "bufpool" => {
            let p = classes();
            f(&|t, ops| run(&p, t, ops))
        }
        other => panic!("unknown implementation {other}"),
    }
}

fn bench_mixed(c: &mut Criterion) {
    let mut g = c.benchmark_group("buf_mixed");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for threads in [1, 2] {
        for name in IMPLS {
            with_source(name, &mut |run| {
                g.bench_function(BenchmarkId::new(name, threads), |b| {
                    b.iter_custom(|iters| run(threads, iters))
                });
            });
        }
    }
    g.finish();
}

/// `VmHWM` and `VmRSS` of this process, in KiB.
fn vm_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Child process: runs the fixed workload and prints `rss_before peak rss_after` in KiB.
fn memory_child(name: &str) {
    let (_, before) = vm_kib();
    let mut elapsed = Duration::ZERO;
    with_source(name, &mut |run| elapsed = run(MEM_THREADS, MEM_OPS));
    let (peak, after) = vm_kib();
    println!("{before} {peak} {after} {}", elapsed.as_nanos());
}

/// Runs every implementation's memory workload in a child process; prints and writes the CSV.
fn memory_report() {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut csv = String::from(
        "impl,threads,ops_per_thread,rss_before_kib,peak_rss_kib,peak_growth_kib,ns_per_op\n",
    );
    println!(
        "\nbuf_mixed peak memory ({MEM_THREADS} threads x {MEM_OPS} ops, {RING} buffers in flight per thread):"
    );
    println!(
        "{:<10} {:>14} {:>14} {:>10}",
        "impl", "peak VmHWM KiB", "growth KiB", "ns/op"
    );
    for name in IMPLS {
        let out = match Command::new(&exe).env(MEM_ENV, name).output() {
            Ok(o) if o.status.success() => o,
            _ => {
                eprintln!("{name}: memory child failed");
                continue;
            }
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Vec<u64> = text
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let [before, peak, _after, nanos] = v[..] else {
            eprintln!("{name}: unexpected output {text:?}");
            continue;
        };
        let growth = peak.saturating_sub(before);
        let ns = nanos as f64 / MEM_OPS as f64;
        println!("{name:<10} {peak:>14} {growth:>14} {ns:>10.1}");
        csv += &format!("{name},{MEM_THREADS},{MEM_OPS},{before},{peak},{growth},{ns:.1}\n");
    }
    let path = out_dir().join("buf_memory.csv");
    match std::fs::write(&path, csv) {
        Ok(()) => println!("written to {}", path.display()),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
}

fn main() {
    if let Ok(name) = std::env::var(MEM_ENV) {
        memory_child(&name);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench_mixed(&mut c);
    c.final_summary();
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--test" || a == "--list");
    if !quick {
        memory_report();
    }
}
