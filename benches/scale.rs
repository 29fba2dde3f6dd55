//! Scale: pipelines of any depth, many live threads, and misses with many parked threads.
//!
//! `cargo bench --bench scale` prints three tables (and writes them to
//! `target/reuse-pool-bench/scale.tsv`):
//!
//! 1. **pipeline depth**: a producer `get`s a 4 KiB buffer and sends the guard through a bounded
//!    channel of capacity 16, 256 or 4,096; a consumer writes 64 bytes and drops it. ns per
//!    object (wall clock) and `create` calls per object in the steady state (after a warm-up of
//!    4 × the depth plus 1,000,000 objects), next to the same channel carrying a `u64`; and all
//!    the creates of the run, which is at least the depth (the objects in the channel).
//! 2. **live threads**: 1, 16, 64, 256 or 1,024 threads registered with one pool, each timed
//!    alone in turn (the others parked) for a get + 64 B write + drop loop: the fastest, median
//!    and slowest thread, and slowest / fastest.
//! 3. **miss with parked threads**: 512 threads each return 8 objects and park; a fresh thread
//!    then takes objects without returning them (every take misses every tier and ends in
//!    `create`): ns per miss, next to the `create` alone.
//!
//! Medians of `REUSE_POOL_SCALE_REPS` repetitions (default 5), interleaved. No timing here is
//! asserted; the targets are read off the tables.

#[path = "../examples/support/results.rs"]
#[allow(dead_code)] // only the place of the files
mod results;

use reuse_pool::Pool;
use std::hint::black_box;
use std::io::Write as _;
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Instant;

type BenchPool = Pool<Vec<u8>, fn() -> Vec<u8>>;

fn buf() -> Vec<u8> {
    Vec::with_capacity(4096)
}

fn new_pool() -> Arc<BenchPool> {
    Arc::new(Pool::new(buf).reset(Vec::clear))
}

fn reps() -> usize {
    std::env::var("REUSE_POOL_SCALE_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// One pipeline run on a fresh pool: (ns per object, creates per object) over `n` objects after
/// the warm-up, and all the creates of the run (warm-up included).
fn pipeline(depth: usize, n: u64) -> (f64, f64, u64) {
    let pool = new_pool();
    let warm = 4 * depth as u64 + 1_000_000;
    let (tx, rx) = crossbeam_channel::bounded(depth);
    let (mark_tx, mark_rx) = mpsc::channel::<(Instant, u64)>();
    let consumer = {
        thread::spawn(move || {
            let mut i = 0u64;
            while let Ok(mut g) = rx.recv() {
                let g: &mut reuse_pool::PooledOwned<Vec<u8>> = &mut g;
                g.extend_from_slice(&[i as u8; 64]);
                black_box(&g);
                i += 1;
            }
        })
    };
    let producer = {
        let pool = pool.clone();
        thread::spawn(move || {
            for i in 0..warm + n {
                if i == warm {
                    let _ = mark_tx.send((Instant::now(), pool.stats().misses));
                }
                tx.send(pool.get_owned()).expect("consumer alive");
            }
        })
    };
    producer.join().unwrap();
    consumer.join().unwrap();
    let end = Instant::now();
    let (start, misses0) = mark_rx.recv().unwrap();
    let creates = pool.stats().misses - misses0;
    if std::env::var_os("REUSE_POOL_SCALE_STATS").is_some() {
        eprintln!("depth {depth}: {:?}", pool.stats());
    }
    (
        (end - start).as_nanos() as f64 / n as f64,
        creates as f64 / n as f64,
        pool.stats().misses,
    )
}

/// The same channel carrying a `u64`: ns per message.
fn channel_only(depth: usize, n: u64) -> f64 {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(depth);
    let start = Instant::now();
    let c = thread::spawn(move || {
        while let Ok(v) = rx.recv() {
            black_box(v);
        }
    });
    for i in 0..n {
        tx.send(i).unwrap();
    }
    drop(tx);
    c.join().unwrap();
    start.elapsed().as_nanos() as f64 / n as f64
}

/// `threads` live threads on one pool, each timed alone: ns per get+write+drop of each thread.
fn live_threads(threads: usize, iters: u64) -> Vec<f64> {
    let pool = new_pool();
    let ready = Arc::new(Barrier::new(threads + 1));
    let mut turns = Vec::new();
    let (done_tx, done_rx) = mpsc::channel::<f64>();
    let mut handles = Vec::new();
    for _ in 0..threads {
        let (turn_tx, turn_rx) = mpsc::channel::<()>();
        turns.push(turn_tx);
        let (pool, ready, done_tx) = (pool.clone(), ready.clone(), done_tx.clone());
        handles.push(
            thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || {
                    drop(pool.get());
                    ready.wait();
                    while turn_rx.recv().is_ok() {
                        for i in 0..1000 {
                            let mut g = pool.get();
                            g.extend_from_slice(&[i as u8; 64]);
                            black_box(&g);
                        }
                        let start = Instant::now();
                        for i in 0..iters {
                            let mut g = pool.get();
                            g.extend_from_slice(&[i as u8; 64]);
                            black_box(&g);
                        }
                        let ns = start.elapsed().as_nanos() as f64 / iters as f64;
                        done_tx.send(ns).unwrap();
                    }
                })
                .unwrap(),
        );
    }
    ready.wait();
    let mut per_thread = Vec::with_capacity(threads);
    for t in &turns {
        t.send(()).unwrap();
        per_thread.push(done_rx.recv().unwrap());
    }
    drop(turns);
    for h in handles {
        h.join().unwrap();
    }
    per_thread
}

/// 512 threads return 8 objects each and park; a fresh thread takes `misses` objects: ns per
/// take, and ns per `create` alone on another fresh thread. The objects are empty `Vec`s, whose
/// `create` allocates nothing, so that the figure is the pool's own cost of a miss.
fn miss_with_parked(parked: usize, misses: usize) -> (f64, f64) {
    let pool: Arc<BenchPool> = Arc::new(Pool::new(Vec::new));
    let ready = Arc::new(Barrier::new(parked + 1));
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let mut handles = Vec::new();
    for _ in 0..parked {
        let (pool, ready, stop_rx) = (pool.clone(), ready.clone(), stop_rx.clone());
        handles.push(
            thread::Builder::new()
                .stack_size(128 << 10)
                .spawn(move || {
                    let held: Vec<_> = (0..8).map(|_| pool.take()).collect();
                    for b in held {
                        pool.put(b);
                    }
                    ready.wait();
                    let _ = stop_rx.recv();
                })
                .unwrap(),
        );
    }
    ready.wait();
    let miss = {
        let pool = pool.clone();
        thread::spawn(move || {
            let mut held = Vec::with_capacity(misses);
            // The thread's first get registers it: untimed.
            held.push(pool.take());
            let start = Instant::now();
            for _ in 0..misses {
                held.push(pool.take());
            }
            let ns = start.elapsed().as_nanos() as f64 / misses as f64;
            black_box(&held);
            ns
        })
        .join()
        .unwrap()
    };
    drop(stop_tx);
    for h in handles {
        h.join().unwrap();
    }
    let create = thread::spawn(move || {
        let start = Instant::now();
        let made: Vec<Vec<u8>> = (0..misses).map(|_| black_box(Vec::new())).collect();
        let ns = start.elapsed().as_nanos() as f64 / misses as f64;
        black_box(&made);
        ns
    })
    .join()
    .unwrap();
    (miss, create)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    reuse_pool::set_cleanup_interval(None);
    let reps = reps();
    let out_dir = results::out_dir();
    let mut tsv = String::from("table\tcase\tvalue\tunit\n");

    let only = std::env::var("REUSE_POOL_SCALE_ONLY").unwrap_or_default();
    let run = |name: &str| only.is_empty() || only.split(',').any(|o| o == name);
    if run("pipeline") {
        println!("## pipeline depth (median of {reps})\n");
        println!(
            "| depth | ns/object | creates/object | creates in all | channel-only ns | ratio |"
        );
        println!("|---:|---:|---:|---:|---:|---:|");
        for depth in [16usize, 256, 4096] {
            let n = 1_000_000;
            let (mut ns, mut cr, mut all, mut ch) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for _ in 0..reps {
                let (a, b, c) = pipeline(depth, n);
                ns.push(a);
                cr.push(b);
                all.push(c as f64);
                ch.push(channel_only(depth, n));
            }
            let (ns, cr, all, ch) = (median(ns), median(cr), median(all), median(ch));
            println!(
                "| {depth} | {ns:.1} | {:.4} % | {all:.0} | {ch:.1} | {:.2}x |",
                cr * 100.0,
                ns / ch
            );
            tsv += &format!("pipeline\t{depth}\t{ns:.2}\tns\npipeline_creates\t{depth}\t{cr:.6}\tper_object\nchannel\t{depth}\t{ch:.2}\tns\n");
            std::io::stdout().flush().unwrap();
        }
    }
    if run("threads") {
        println!("\n## live threads, each timed alone (median of {reps} for each thread)\n");
        println!("| threads | fastest ns | median ns | slowest ns | slowest/fastest |");
        println!("|---:|---:|---:|---:|---:|");
        for threads in [1usize, 16, 64, 256, 1024] {
            let iters = 200_000;
            let runs: Vec<Vec<f64>> = (0..reps).map(|_| live_threads(threads, iters)).collect();
            let per_thread: Vec<f64> = (0..threads)
                .map(|t| median(runs.iter().map(|r| r[t]).collect()))
                .collect();
            let mut sorted = per_thread.clone();
            sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let (lo, med, hi) = (sorted[0], sorted[threads / 2], sorted[threads - 1]);
            println!(
                "| {threads} | {lo:.1} | {med:.1} | {hi:.1} | {:.2}x |",
                hi / lo
            );
            tsv += &format!(
                "live_threads\t{threads}\t{:.3}\tslowest_over_fastest\n",
                hi / lo
            );
            std::io::stdout().flush().unwrap();
        }
    }
    if run("miss") {
        println!("\n## a miss with 512 parked threads (median of {reps})\n");
        let (mut miss, mut create) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            let (m, c) = miss_with_parked(512, 10_000);
            miss.push(m);
            create.push(c);
        }
        let (miss, create) = (median(miss), median(create));
        println!("| ns per miss | ns per create alone |\n|---:|---:|\n| {miss:.0} | {create:.0} |");
        tsv += &format!("miss_512_parked\t512\t{miss:.1}\tns\ncreate\t-\t{create:.1}\tns\n");
    }
    let _ = std::fs::write(out_dir.join("scale.tsv"), tsv);
}
