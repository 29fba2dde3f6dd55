//! reuse-pool against the alternatives a user would pick instead, one criterion group per
//! workload (Go's `BenchmarkPool`, `Overflow`, `Starvation`, `ExpensiveNew` from
//! `src/sync/pool_test.go`, plus a producer/consumer pipeline, thread churn, the cost of a
//! cleanup cycle and the memory given back).
//!
//! Every timing is **per-thread ns per object**: threads are started together with a `Barrier`,
//! `iter_custom` returns the wall time from the first start to the last end (one thread's share
//! when all run in parallel) divided by the objects each thread handled in one iteration. Go's
//! `ns/op` for Overflow and Starvation (one op = 100 objects) is 100 times the figure here.
//! `create` calls are counted and written with the gets to `target/reuse-pool-bench/results.tsv`;
//! the memory measurement goes to `target/reuse-pool-bench/memory.tsv`, and the spread of the
//! single-thread hit over 64 live threads (each timed alone) to `live.tsv`.
//!
//! On a busy machine, `REUSE_POOL_BENCH_CLOCK=cpu` makes the workloads that never block report
//! the mean of the threads' CPU time instead of wall time (see `common::Clock`).
//!
//! Ports of Go's benchmarks use objects instead of Go's `Put(1)`: a thread gets its objects
//! (creating where every tier is empty) and returns them. In Starvation, Go's pool has no `New`,
//! so 33 of its 100 `Get`s return nil; here the thread gets 100 (the 33 that its own cache
//! cannot serve are stolen or created), returns 67 and drops 33, so that the pool is short of 33
//! objects per thread per round, as in Go.
//!
//! ```text
//! cargo bench --bench pool                      # everything, 3 rounds (~18 minutes)
//! cargo bench --bench pool -- get_put           # one group (criterion's filter)
//! cargo bench --bench pool -- memory            # only the RSS measurement
//! cargo bench --bench pool -- live              # only the 64 live threads
//! cargo run --release --example bench_report    # docs/BENCHMARKS.md and docs/benchmarks.svg
//! ```

mod common;
#[path = "../examples/support/rounds.rs"]
#[allow(dead_code)] // the report reads rounds back with `split_round`; the bench only names them
mod rounds;
#[path = "../examples/support/workloads.rs"]
#[allow(dead_code)] // the report also reads the units and floors
mod workloads;

use common::{
    for_each_impl, out_dir, record, rss_bytes, run_threads, trim_system_allocator, Clock, Impl,
    ReusePool, Spec, Visit,
};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Bytes written into every buffer handed out.
const LEN: usize = 64;
/// Objects a thread holds at once in Overflow, Starvation and ExpensiveNew (Go's 100).
const HOLD: usize = 100;
/// Objects returned per round in Starvation: `100 - int(100 * 0.33)`.
const STARVED: usize = HOLD - 33;
/// get/put pairs per short-lived thread in Churn.
const CHURN_OPS: u64 = 1000;
/// Capacity of the pipeline's bounded channel.
const PIPE_CAP: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Work {
    /// Go's BenchmarkPool: get, write 64 bytes, put.
    GetPut,
    /// Go's BenchmarkPoolOverflow: get 100, then put 100.
    Overflow,
    /// Go's BenchmarkPoolStarvation: get 100, put back 67, drop 33.
    Starvation,
    /// Go's BenchmarkPoolExpensiveNew: Overflow's shape with a 1 µs `create`.
    ExpensiveNew,
    /// get on a producer, send through a bounded channel, put on a consumer.
    Pipeline,
    /// waves of threads, each doing 1,000 get/put and exiting.
    Churn,
}

/// Runs `iters` iterations of `work` on `threads` threads; returns per-thread time per object.
/// Adds the objects handed out (priming included) to `gets`.
fn run<I: Impl>(work: Work, imp: &I, threads: usize, iters: u64, gets: &AtomicU64) -> Duration {
    let prime = |_| {
        // Untimed: registers the thread with the pool and caches one object, so the timed
        // part measures the steady state.
        let h = imp.get(LEN, 1);
        imp.put(h);
    };
    let t = threads as u64;
    // The pipeline blocks on its channel and churn's cost is thread creation: wall time only.
    let clock = common::clock();
    match work {
        Work::GetPut => {
            gets.fetch_add(t * (iters + 1), Ordering::Relaxed);
            run_threads(threads, clock, prime, |_| {
                for i in 0..iters {
                    let h = imp.get(LEN, i as u8);
                    black_box(&h);
                    imp.put(h);
                }
            })
        }
        Work::Overflow | Work::ExpensiveNew | Work::Starvation => {
            gets.fetch_add(t * (iters * HOLD as u64 + 1), Ordering::Relaxed);
            let time = if work == Work::Starvation {
                run_threads(threads, clock, prime, |_| hold::<I, true>(imp, iters))
            } else {
                run_threads(threads, clock, prime, |_| hold::<I, false>(imp, iters))
            };
            time / HOLD as u32
        }
        Work::Pipeline => {
            assert_eq!(threads, 2, "the pipeline is one producer and one consumer");
            gets.fetch_add(iters, Ordering::Relaxed);
            let (tx, rx) = crossbeam_channel::bounded::<I::H<'_>>(PIPE_CAP);
            run_threads(
                2,
                Clock::Wall,
                |_| {},
                |t| {
                    if t == 0 {
                        for i in 0..iters {
                            tx.send(imp.get(LEN, i as u8)).expect("consumer alive");
                        }
                    } else {
                        for _ in 0..iters {
                            let h = rx.recv().expect("producer alive");
                            black_box(imp.peek(&h));
                            imp.put(h);
                        }
                    }
                },
            )
        }
        Work::Churn => {
            gets.fetch_add(iters * t * CHURN_OPS, Ordering::Relaxed);
            let start = Instant::now();
            for _ in 0..iters {
                thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            for i in 0..CHURN_OPS {
                                let h = imp.get(LEN, i as u8);
                                black_box(&h);
                                imp.put(h);
                            }
                        });
                    }
                });
            }
            start.elapsed() / CHURN_OPS as u32
        }
    }
}

/// `iters` rounds of Overflow (get `HOLD`, put them back) or, with `STARVE`, of Starvation
/// (33 of them discarded instead); the constant keeps the discard loop out of Overflow's code.
#[inline(always)]
fn hold<I: Impl, const STARVE: bool>(imp: &I, iters: u64) {
    let mut hand = Vec::with_capacity(HOLD);
    for _ in 0..iters {
        for k in 0..HOLD {
            hand.push(imp.get(LEN, k as u8));
        }
        black_box(&hand);
        if STARVE {
            for _ in STARVED..HOLD {
                imp.discard(hand.pop().expect("held"));
            }
        }
        for h in hand.drain(..) {
            imp.put(h);
        }
    }
}

/// One round of one workload over every implementation.
struct GroupRun<'g, 'c> {
    g: &'g mut BenchmarkGroup<'c, WallTime>,
    /// The criterion group id of this round (`rounds::round_group`).
    group: String,
    work: Work,
    threads: &'static [usize],
    spec: Spec,
}

impl GroupRun<'_, '_> {
    fn bench<I: Impl>(&mut self, name: &str, extra_note: &str) {
        for &t in self.threads {
            if self.work == Work::Pipeline {
                if let Some(why) = I::CROSS_THREAD {
                    let note = format!("n/a: {why}");
                    record(&self.group, name, &t.to_string(), None, 0, &note);
                    continue;
                }
            }
            let imp = I::new(&self.spec);
            let gets = AtomicU64::new(0);
            let (work, cycles0) = (self.work, reuse_pool::cycles());
            let mut ran = false;
            self.g.bench_function(BenchmarkId::new(name, t), |b| {
                ran = true;
                b.iter_custom(|iters| run(work, &imp, t, iters, &gets))
            });
            if !ran {
                continue; // filtered out
            }
            let gets = gets.into_inner();
            let creates = if I::EVERY_GET_CREATES {
                gets
            } else {
                imp.creates()
            };
            let mut notes: Vec<String> = Vec::new();
            if I::EVERY_GET_CREATES {
                notes.push("no pool: every get allocates".into());
            }
            if work == Work::Starvation {
                if let Some(why) = I::NO_DISCARD {
                    notes.push(why.into());
                }
            }
            if work == Work::Pipeline && !I::EVERY_GET_CREATES && creates * 2 > gets {
                notes.push(
                    "objects returned on the consumer are not handed back to the producer: \
                     it creates instead (and the returned ones pile up)"
                        .into(),
                );
            }
            if let Some(n) = I::NOTE {
                notes.push(n.into());
            }
            if !extra_note.is_empty() {
                notes.push(format!(
                    "{extra_note} ({} cycles ran)",
                    reuse_pool::cycles() - cycles0
                ));
            }
            drop(imp);
            let (t, note) = (t.to_string(), notes.join("; "));
            record(&self.group, name, &t, Some(creates), gets, &note);
        }
    }
}

impl Visit for GroupRun<'_, '_> {
    fn visit<I: Impl>(&mut self) {
        assert!(
            workloads::IMPLS.iter().any(|(n, _)| *n == I::NAME),
            "{} is not described in examples/support/workloads.rs",
            I::NAME
        );
        self.bench::<I>(I::NAME, "");
    }
}

/// Round `round` of one workload over every implementation (`rounds::round_group` names it).
#[allow(clippy::too_many_arguments)]
fn workload(
    c: &mut Criterion,
    name: &'static str,
    work: Work,
    threads: &'static [usize],
    spec: Spec,
    extras: bool,
    round: usize,
    rounds: usize,
) {
    let group = rounds::round_group(name, round);
    let title = workloads::group(name).title;
    let what = title.split_once(" — ").map_or(title, |t| t.1);
    eprintln!("== {group} (round {round} of {rounds}): {what} ==");
    warm_up(work, threads, &spec);
    let mut g = c.benchmark_group(group.as_str());
    let mut run = GroupRun {
        g: &mut g,
        group: group.clone(),
        work,
        threads,
        spec,
    };
    for_each_impl(&mut run, extras, (round - 1, rounds));
    if work == Work::ExpensiveNew {
        // Go's ExpensiveNew exists to stress cleanup and re-creation (there, GC cycles): the
        // same workload with the automatic driver on at a short period.
        reuse_pool::set_cleanup_interval(Some(Duration::from_millis(10)));
        run.bench::<ReusePool>(
            "reuse-pool+driver-10ms",
            "automatic cleanup every 10 ms during this benchmark",
        );
        reuse_pool::set_cleanup_interval(None);
    }
    if work == Work::Pipeline {
        channel_only(&mut g, &group);
    }
    g.finish();
}

/// Runs the workload untimed for half a second per thread count, on a throwaway pool.
///
/// The alternatives of a group run one after another; without this, the first one pays alone for
/// the change from the previous group (threads parked or exited, the system
/// allocator's arenas and free lists in another state): churn measured 240 ns per object for
/// reuse-pool in a full run and 116 ns when its group ran alone.
fn warm_up(work: Work, threads: &[usize], spec: &Spec) {
    let pool = ReusePool::new(spec);
    let gets = AtomicU64::new(0);
    for &t in threads {
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(500) {
            run(work, &pool, t, 1000, &gets);
        }
    }
}

/// The pipeline's baseline: the same channel carrying a `u64`, no objects at all.
fn channel_only(g: &mut BenchmarkGroup<'_, WallTime>, group: &str) {
    let sent = AtomicU64::new(0);
    let mut ran = false;
    g.bench_function(BenchmarkId::new("channel-only", 2), |b| {
        ran = true;
        b.iter_custom(|iters| {
            sent.fetch_add(iters, Ordering::Relaxed);
            let (tx, rx) = crossbeam_channel::bounded::<u64>(PIPE_CAP);
            run_threads(
                2,
                Clock::Wall,
                |_| {},
                |t| {
                    if t == 0 {
                        for i in 0..iters {
                            tx.send(i).expect("consumer alive");
                        }
                    } else {
                        for _ in 0..iters {
                            black_box(rx.recv().expect("producer alive"));
                        }
                    }
                },
            )
        })
    });
    if ran {
        let note = "baseline: the bounded channel carrying a u64, no buffer";
        record(group, "channel-only", "2", None, sent.into_inner(), note);
    }
}

// ---------------------------------------------------------------------------------------------
// cleanup: the time of one cycle (Go's BenchmarkPoolSTW analogue).
// ---------------------------------------------------------------------------------------------

type BenchPool = reuse_pool::Pool<Vec<u8>, Box<dyn Fn() -> Vec<u8> + Send + Sync>>;

/// `threads` parked threads that, on each round, fill their caches in `pools` pools with
/// `objects` buffers each, so that the main thread can time one cleanup cycle.
struct CleanupRig {
    pools: Arc<Vec<BenchPool>>,
    go: Arc<Barrier>,
    taken: Arc<Barrier>,
    cached: Arc<Barrier>,
    stop: Arc<AtomicBool>,
    workers: Vec<thread::JoinHandle<()>>,
    rounds: u64,
    /// Wall time of the take phases (every take served by the victim tier after round 1).
    refill: Duration,
}

impl CleanupRig {
    fn start(pools: usize, threads: usize, objects: usize) -> CleanupRig {
        let pools: Arc<Vec<BenchPool>> = Arc::new(
            (0..pools)
                .map(|_| {
                    let f: Box<dyn Fn() -> Vec<u8> + Send + Sync> =
                        Box::new(|| Vec::with_capacity(4096));
                    reuse_pool::Pool::from_fn(f)
                })
                .collect(),
        );
        let go = Arc::new(Barrier::new(threads + 1));
        let taken = Arc::new(Barrier::new(threads + 1));
        let cached = Arc::new(Barrier::new(threads + 1));
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..threads)
            .map(|_| {
                let (pools, go, taken, cached, stop) = (
                    pools.clone(),
                    go.clone(),
                    taken.clone(),
                    cached.clone(),
                    stop.clone(),
                );
                thread::spawn(move || {
                    let mut hand = Vec::with_capacity(objects * pools.len());
                    loop {
                        go.wait();
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        // Phase 1, all threads: take. Nothing is cached by anyone, so these
                        // drain the victim tier the last cycle filled (creates on round 1).
                        for (i, p) in pools.iter().enumerate() {
                            for _ in 0..objects {
                                hand.push((i, p.take()));
                            }
                        }
                        taken.wait();
                        // Phase 2: return, filling this thread's cache; the victim tier is empty.
                        for (i, v) in hand.drain(..) {
                            pools[i].put(v);
                        }
                        cached.wait();
                    }
                })
            })
            .collect();
        reuse_pool::cleanup();
        reuse_pool::cleanup();
        CleanupRig {
            pools,
            go,
            taken,
            cached,
            stop,
            workers,
            rounds: 0,
            refill: Duration::ZERO,
        }
    }

    /// `iters` rounds of: fill every cache (untimed), run one cleanup cycle (timed).
    fn run(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let t_go = Instant::now();
            self.go.wait();
            self.taken.wait();
            self.refill += t_go.elapsed();
            self.cached.wait();
            total += match common::clock() {
                Clock::Wall => {
                    let t0 = Instant::now();
                    reuse_pool::cleanup();
                    t0.elapsed()
                }
                Clock::Cpu => {
                    let c0 = common::thread_cpu_time();
                    reuse_pool::cleanup();
                    common::thread_cpu_time() - c0
                }
            };
        }
        self.rounds += iters;
        total
    }

    fn stop(self) -> (u64, Duration, reuse_pool::Stats) {
        self.stop.store(true, Ordering::Relaxed);
        self.go.wait();
        for w in self.workers {
            w.join().expect("cleanup worker panicked");
        }
        let sum = self.pools.iter().map(|p| p.stats()).sum();
        (self.rounds, self.refill, sum)
    }
}

fn cleanup_group(c: &mut Criterion) {
    eprintln!("== {} ==", workloads::group("cleanup").title);
    // (pools, threads, objects cached per thread per pool)
    const CASES: &[(usize, usize, usize)] = &[
        (1, 1, 128),
        (1, 8, 128),
        (1, 64, 1),
        (1, 64, 16),
        (1, 64, 128),
        (8, 64, 16),
    ];
    let mut g = c.benchmark_group("cleanup");
    // Every timed cycle needs an untimed refill of all caches that costs more than the cycle
    // itself, so this group measures for a shorter time.
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_millis(400));
    for &(pools, threads, objects) in CASES {
        let name = format!("reuse-pool pools={pools} objects={objects}");
        let mut rig = None;
        g.bench_function(BenchmarkId::new(&name, threads), |b| {
            let rig = rig.get_or_insert_with(|| CleanupRig::start(pools, threads, objects));
            b.iter_custom(|iters| rig.run(iters))
        });
        let Some(rig) = rig else { continue };
        let (rounds, refill, s) = rig.stop();
        let cached = pools * threads * objects;
        let per_take = refill.as_nanos() as f64 / (rounds.max(1) as f64 * cached as f64);
        let note = format!(
            "{cached} objects cached before each timed cycle ({rounds} cycles timed); \
                 refills: {} victim hits, {} steals, {} creates, refill phase {per_take:.0} ns \
                 wall per object (waking {threads} threads included)",
            s.victim_hits, s.steals, s.misses
        );
        let t = threads.to_string();
        record("cleanup", &name, &t, Some(s.misses), s.gets(), &note);
    }
    g.finish();
    let note =
        "n/a: no alternative has a cleanup cycle; they keep idle objects forever (see memory)";
    record("cleanup", "other implementations", "-", None, 0, note);
}

// ---------------------------------------------------------------------------------------------
// memory: RSS with 100 MiB of idle buffers, and after two cleanup cycles.
// ---------------------------------------------------------------------------------------------

const MEM_THREADS: usize = 16;
const MEM_PER_THREAD: usize = 100;
const MEM_CAP: usize = 64 << 10; // 16 threads x 100 buffers x 64 KiB = 100 MiB

struct MemoryRun;

impl Visit for MemoryRun {
    fn visit<I: Impl>(&mut self) {
        memory_of::<I>();
    }
}

fn mib(b: u64) -> String {
    format!("{:.1}", b as f64 / (1024.0 * 1024.0))
}

fn memory_of<I: Impl>() {
    let spec = Spec {
        cap: MEM_CAP,
        create_cost: Duration::ZERO,
        bound: 4096,
    };
    reuse_pool::cleanup();
    reuse_pool::cleanup();
    let trimmed = trim_system_allocator();
    let start = rss_bytes();
    let imp = I::new(&spec);
    let held = Barrier::new(MEM_THREADS);
    let filled = Barrier::new(MEM_THREADS + 1);
    let release = Barrier::new(MEM_THREADS + 1);
    let mut m = [0u64; 4];
    let mut drops = [None; 3];
    thread::scope(|s| {
        for _ in 0..MEM_THREADS {
            s.spawn(|| {
                // Touch every byte, so the buffers are resident; all threads hold theirs at
                // once, so that shared pools end up with 1,600 distinct buffers.
                let hand: Vec<_> = (0..MEM_PER_THREAD)
                    .map(|k| imp.get(MEM_CAP, k as u8 | 1))
                    .collect();
                held.wait();
                for h in hand {
                    imp.put(h);
                }
                filled.wait();
                release.wait(); // idle, alive, until measured
            });
        }
        filled.wait();
        m[0] = rss_bytes();
        drops[0] = imp.stats().map(|s| s.drops);
        reuse_pool::cleanup();
        m[1] = rss_bytes();
        drops[1] = imp.stats().map(|s| s.drops);
        reuse_pool::cleanup();
        m[2] = rss_bytes();
        drops[2] = imp.stats().map(|s| s.drops);
        trim_system_allocator();
        m[3] = rss_bytes();
        release.wait();
    });
    drop(imp);
    trim_system_allocator();
    let end = rss_bytes();
    let note = if I::EVERY_GET_CREATES {
        "no pool: buffers freed on return; what stays is the allocator's".to_string()
    } else if let [Some(d0), Some(d1), Some(d2)] = drops {
        format!(
            "cycle 1 moves idle caches to the victim tier, cycle 2 drops them: the pool dropped \
             {} then {} of {} buffers; RSS left after cycle 2 is glibc's free memory \
             (see + malloc_trim)",
            d1 - d0,
            d2 - d1,
            MEM_THREADS * MEM_PER_THREAD
        )
    } else {
        "no cleanup: idle objects stay until the pool (or thread) drops".to_string()
    };
    eprintln!(
        "  memory/{}: start {} MiB, filled {}, after cycle 1 {}, after cycle 2 {}, \
         after malloc_trim {}, after drop {}",
        I::NAME,
        mib(start),
        mib(m[0]),
        mib(m[1]),
        mib(m[2]),
        mib(m[3]),
        mib(end)
    );
    let fields = [
        I::NAME.to_string(),
        mib(start),
        mib(m[0]),
        mib(m[1]),
        mib(m[2]),
        if trimmed { mib(m[3]) } else { String::new() },
        mib(end),
        note,
    ];
    common::merge_line(
        "memory.tsv",
        "impl\tstart_mib\tfilled_mib\tcycle1_mib\tcycle2_mib\tcycle2_trimmed_mib\tdropped_mib\tnote",
        1,
        &fields,
    );
}

fn memory() {
    eprintln!(
        "== memory: {MEM_THREADS} idle threads x {MEM_PER_THREAD} buffers x {} KiB ==",
        MEM_CAP >> 10
    );
    for_each_impl(&mut MemoryRun, false, (0, 1));
    eprintln!("  written to {}", out_dir().join("memory.tsv").display());
}

// ---- live threads: the same hit on every thread of a process with many ---------------------

/// Threads registered with one pool in the live-threads measurement.
const LIVE_THREADS: usize = 64;
/// get/put pairs each thread times per turn.
const LIVE_ITERS: u64 = 300_000;
/// Turns per thread; each thread's figure is the median of its turns.
const LIVE_TURNS: usize = 5;

/// The single-thread get+put of `get_put`, on each of [`LIVE_THREADS`] live threads of one pool
/// in turn (the others wait, blocked): the spread between the fastest and the slowest thread
/// shows costs that depend on where a thread's state sits in memory (its stack, its cache, its
/// thread-local block) rather than on the code, which is the same for all.
fn live() {
    eprintln!("== live: {LIVE_THREADS} threads, each timed alone, {LIVE_TURNS} turns ==");
    for_each_impl(&mut LiveRun, true, (0, 1));
    eprintln!("  written to {}", out_dir().join("live.tsv").display());
}

struct LiveRun;

impl Visit for LiveRun {
    fn visit<I: Impl>(&mut self) {
        // The floor and reuse-pool's two APIs: the figure is about one pool's threads, not a
        // ranking of every alternative.
        if ![
            ReusePool::NAME,
            common::ReusePoolGuard::NAME,
            common::TlsFloor::NAME,
        ]
        .contains(&I::NAME)
        {
            return;
        }
        live_of::<I>();
    }
}

fn live_of<I: Impl>() {
    let imp = I::new(&Spec::DEFAULT);
    let ready = Barrier::new(LIVE_THREADS + 1);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<(usize, f64)>();
    let mut per_thread: Vec<Vec<f64>> = (0..LIVE_THREADS)
        .map(|_| Vec::with_capacity(LIVE_TURNS))
        .collect();
    thread::scope(|s| {
        let mut turns = Vec::with_capacity(LIVE_THREADS);
        for t in 0..LIVE_THREADS {
            let (turn_tx, turn_rx) = std::sync::mpsc::channel::<()>();
            turns.push(turn_tx);
            let (imp, ready, done_tx) = (&imp, &ready, done_tx.clone());
            s.spawn(move || {
                let h = imp.get(LEN, 1);
                imp.put(h);
                ready.wait();
                while turn_rx.recv().is_ok() {
                    for i in 0..1000u64 {
                        let h = imp.get(LEN, i as u8);
                        black_box(&h);
                        imp.put(h);
                    }
                    let start = Instant::now();
                    for i in 0..LIVE_ITERS {
                        let h = imp.get(LEN, i as u8);
                        black_box(&h);
                        imp.put(h);
                    }
                    let ns = start.elapsed().as_nanos() as f64 / LIVE_ITERS as f64;
                    done_tx.send((t, ns)).expect("main thread waits");
                }
            });
        }
        // Only the threads hold senders now: a thread that panics closes its own, and the
        // `recv` below fails instead of waiting for ever.
        drop(done_tx);
        ready.wait();
        for _ in 0..LIVE_TURNS {
            for turn in &turns {
                turn.send(()).expect("thread alive");
                let (t, ns) = done_rx.recv().expect("thread alive");
                per_thread[t].push(ns);
            }
        }
        drop(turns);
    });
    let mut medians: Vec<f64> = per_thread
        .iter_mut()
        .map(|v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    let (fastest, median, slowest) = (
        medians[0],
        medians[medians.len() / 2],
        medians[medians.len() - 1],
    );
    eprintln!(
        "  live/{}: fastest {fastest:.2} ns, median {median:.2}, slowest {slowest:.2}: \
         slowest/fastest {:.3}",
        I::NAME,
        slowest / fastest
    );
    common::merge_line(
        "live.tsv",
        "impl\tthreads\tfastest_ns\tmedian_ns\tslowest_ns\tslowest_over_fastest",
        1,
        &[
            I::NAME.to_string(),
            LIVE_THREADS.to_string(),
            format!("{fastest:.3}"),
            format!("{median:.3}"),
            format!("{slowest:.3}"),
            format!("{:.4}", slowest / fastest),
        ],
    );
}

// ---------------------------------------------------------------------------------------------

/// Whether a group is selected by the command line's filter (criterion's first positional
/// argument). Used only for `memory`, which is not a criterion benchmark.
fn selected(group: &str) -> bool {
    const WITH_VALUE: &[&str] = &[
        "-c",
        "--color",
        "-s",
        "--save-baseline",
        "-b",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--profile-time",
        "--output-format",
        "--plotting-backend",
        "--format",
    ];
    let mut args = std::env::args().skip(1);
    let mut filter = None;
    while let Some(a) = args.next() {
        if a == "--list" {
            return false;
        }
        if WITH_VALUE.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') && filter.is_none() {
            filter = Some(a);
        }
    }
    match filter {
        None => true,
        Some(f) => group.contains(f.as_str()) || f.contains(group),
    }
}

/// The checked-out commit, marked when the tree has uncommitted changes; `?` without git.
fn git_commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(mut commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "?".into();
    };
    if git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty()) {
        commit.push_str(" (with uncommitted changes)");
    }
    commit
}

/// How many rounds of every timed workload group to run: `REUSE_POOL_BENCH_ROUNDS`, default
/// [`DEFAULT_ROUNDS`]. The report takes the median over the rounds.
fn rounds() -> usize {
    match std::env::var("REUSE_POOL_BENCH_ROUNDS") {
        Err(_) => DEFAULT_ROUNDS,
        Ok(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => panic!("REUSE_POOL_BENCH_ROUNDS must be a whole number of at least 1, not {v:?}"),
        },
    }
}

/// Rounds of every timed group when `REUSE_POOL_BENCH_ROUNDS` is not set.
const DEFAULT_ROUNDS: usize = 3;

/// Records when the run started and ended, its arguments, the load and the commit, for the
/// report.
fn write_run_info(phase: &str, rounds: usize) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let info = |k: &str, v: &str| common::merge_line("run.tsv", "key\tvalue", 1, &[k, v]);
    if phase == "started" {
        // Before anything is written: a `--test` or `--list` run must not replace a real run's
        // files.
        let dry = std::env::args().any(|a| a == "--test" || a == "--list");
        common::set_dry_run(dry);
        if !dry {
            let _ = std::fs::remove_file(out_dir().join("run.tsv"));
        }
        let args: Vec<String> = std::env::args().skip(1).collect();
        info("started", &now.to_string());
        info("args", &args.join(" "));
        info("loadavg_start", &load);
        info(
            "clock",
            if common::clock() == Clock::Cpu {
                "cpu"
            } else {
                "wall"
            },
        );
        info("commit", &git_commit());
        info("rounds", &rounds.to_string());
    } else {
        info("finished", &now.to_string());
        info("loadavg_end", &load);
    }
}

fn main() {
    // No automatic cycles while timing; groups that need cycles run them explicitly.
    reuse_pool::set_cleanup_interval(None);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(20)
        .configure_from_args();

    let expensive = Spec {
        create_cost: Duration::from_micros(1),
        ..Spec::DEFAULT
    };
    let d = Spec::DEFAULT;
    let rounds = rounds();
    write_run_info("started", rounds);
    // The whole list of workloads once per round, so that the rounds of one group lie minutes
    // apart: a slow spell of a shared machine then lands in one round, not in all of them.
    for r in 1..=rounds {
        let w = |c: &mut Criterion, name, work, threads, spec, extras| {
            workload(c, name, work, threads, spec, extras, r, rounds)
        };
        w(&mut c, "get_put", Work::GetPut, &[1, 2], d, true);
        w(&mut c, "overflow", Work::Overflow, &[1, 2], d, false);
        w(&mut c, "starvation", Work::Starvation, &[1, 2], d, false);
        w(
            &mut c,
            "expensive_new",
            Work::ExpensiveNew,
            &[1, 2],
            expensive,
            false,
        );
        w(&mut c, "pipeline", Work::Pipeline, &[2], d, true);
        w(&mut c, "churn", Work::Churn, &[2], d, false);
    }
    cleanup_group(&mut c);
    if selected("live") {
        live();
    }
    if selected("memory") {
        memory();
    }
    c.final_summary();
    write_run_info("finished", rounds);
    eprintln!(
        "results: {}; report: cargo run --release --example bench_report",
        out_dir().join("results.tsv").display()
    );
}
