//! The single-thread hit across fresh processes and across the live threads of one process,
//! with the addresses of what each hit touches printed beside its time.
//!
//! The parent starts `HIT_SPREAD_PROCS` (10) fresh copies of itself, one after the other. Each
//! child times, on its main thread, on one spawned thread and on each of two threads running at
//! once, five loops of the same work (take a 4 KiB `Vec<u8>`, write 64 bytes, clear, give back):
//!
//! * `floor`: a `const` `thread_local!` `RefCell<Vec<Vec<u8>>>` free list, the hand-rolled pool;
//! * `take/put`: `Pool::take` and `Pool::put` on a `static Pool` with `reset(Vec::clear)`;
//! * `guard`: `Pool::get`, the guard dropped at the end of its scope;
//! * `rx owner`: regex-automata's `Pool` on the thread that owns it (its first user);
//! * `rx other`: the same on a thread that does not own it (its mutex-guarded stacks);
//! * `held guard`: `get` on a pool of the thread's own, held in a struct on the measuring
//!   function's stack and used through a generic function (the shape of a user's code, with
//!   the pool at an address that the main thread's stack randomisation moves per process);
//! * `two pools`: a guard from each of two pools, nested (per iteration: two gets), the cost
//!   for a thread that switches pools on every call.
//!
//! Then it starts 16, 64 and 256 threads (`HIT_SPREAD_THREADS`) that stay alive together and
//! times each of them alone, in turn, on the same static pool. Every line of a child's output is
//! one thread: the medians of its loops (over `HIT_SPREAD_ROUNDS` interleaved rounds of
//! `HIT_SPREAD_ITERS` iterations) and the addresses of its stack slot for the object, its TLS
//! index cell, the pool's storage, its cache's hot line, its magazine's buffer and the object's
//! own buffer. The parent prints the spread of every figure across processes and across
//! threads, and how the hit time varies with the distance between those addresses modulo 4 KiB
//! (the part of an address that store-to-load forwarding and the L1 set index look at).
//!
//! ```text
//! cargo bench --bench hit_spread
//! HIT_SPREAD_PROCS=20 HIT_SPREAD_THREADS=16,64,256 cargo bench --bench hit_spread
//! ```

use std::cell::RefCell;
use std::hint::black_box;
use std::process::Command;
use std::sync::{mpsc, Barrier};
use std::thread;
use std::time::Instant;

use reuse_pool::Pool;

const CAP: usize = 4096;
const WORK: [u8; 64] = [7; 64];

fn make() -> Vec<u8> {
    Vec::with_capacity(CAP)
}

static POOL: Pool<Vec<u8>> = Pool::new(make).reset(Vec::clear);
static OTHER: Pool<Vec<u8>> = Pool::new(make).reset(Vec::clear);

type Rx = regex_automata::util::pool::Pool<Vec<u8>, fn() -> Vec<u8>>;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The loops. Each returns the address of the stack slot that holds the object (the slot
/// `black_box` makes the loop store and reload), taken on the first iteration.
#[inline(never)]
fn floor(n: usize) -> usize {
    let mut at = 0;
    for i in 0..n {
        let mut v = FREE.with(|f| f.borrow_mut().pop()).unwrap_or_else(make);
        v.extend_from_slice(&WORK);
        if i == 0 {
            at = &v as *const Vec<u8> as usize;
        }
        black_box(&mut v);
        v.clear();
        FREE.with(|f| f.borrow_mut().push(v));
    }
    at
}

#[inline(never)]
fn take_put(n: usize) -> usize {
    let mut at = 0;
    for i in 0..n {
        let mut v = POOL.take();
        v.extend_from_slice(&WORK);
        if i == 0 {
            at = &v as *const Vec<u8> as usize;
        }
        black_box(&mut v);
        POOL.put(v);
    }
    at
}

#[inline(never)]
fn guard(n: usize) -> usize {
    let mut at = 0;
    for i in 0..n {
        let mut g = POOL.get();
        g.extend_from_slice(&WORK);
        if i == 0 {
            at = &*g as *const Vec<u8> as usize;
        }
        black_box(&mut *g);
    }
    at
}

/// A user's struct that holds a pool.
struct Held<P> {
    _before: [u64; 3],
    pool: P,
}

#[inline(never)]
fn held_guard<F: Fn() -> Vec<u8>>(pool: &Pool<Vec<u8>, F>, n: usize) -> usize {
    let mut at = 0;
    for i in 0..n {
        let mut g = pool.get();
        g.extend_from_slice(&WORK);
        if i == 0 {
            at = &*g as *const Vec<u8> as usize;
        }
        black_box(&mut *g);
    }
    at
}

/// Two pools used nested: a guard from each, both written, both dropped (a thread that
/// switches pools on every call).
#[inline(never)]
fn two_pools(n: usize) -> usize {
    let mut at = 0;
    for i in 0..n {
        let mut g = POOL.get();
        let mut h = OTHER.get();
        g.extend_from_slice(&WORK);
        h.extend_from_slice(&WORK);
        if i == 0 {
            at = &*g as *const Vec<u8> as usize;
        }
        black_box(&mut *g);
        black_box(&mut *h);
    }
    at
}

#[inline(never)]
fn regex(rx: &Rx, n: usize) -> usize {
    let mut at = 0;
    for i in 0..n {
        let mut g = rx.get();
        g.extend_from_slice(&WORK);
        if i == 0 {
            at = &*g as *const Vec<u8> as usize;
        }
        black_box(&mut *g);
        g.clear();
    }
    at
}

/// The loops: floor, take/put, guard, rx owner, rx other, held guard, two pools.
const K: usize = 7;

/// One thread's figures: the median ns per iteration of each loop (NaN where not run) and the
/// addresses (`ADDRS`).
struct Row {
    ns: [f64; K],
    addrs: [usize; 9],
}

const ADDRS: [&str; 9] = [
    "slot",
    "tls",
    "storage",
    "hot",
    "mag",
    "object",
    "floor slot",
    "index",
    "entry",
];

/// Times the loops in `which` (indices into `KERNELS`), interleaved, the order rotated every
/// round; `rx_own` is a pool this thread owns, `rx_other` one it does not.
fn measure(which: &[usize], rx_own: &Rx, rx_other: &Rx, rounds: usize, iters: usize) -> Row {
    // A pool of this thread's own, in a struct on this frame (so at a stack address that the
    // process's stack randomisation moves), used through a generic function.
    let held = Held {
        _before: [0; 3],
        pool: Pool::new(make).reset(Vec::clear),
    };
    let run = |k: usize, n: usize| -> usize {
        match k {
            0 => floor(n),
            1 => take_put(n),
            2 => guard(n),
            3 => regex(rx_own, n),
            4 => regex(rx_other, n),
            5 => held_guard(&held.pool, n),
            _ => two_pools(n),
        }
    };
    let mut slots = [0; K];
    for &k in which {
        slots[k] = run(k, iters / 4 + 1);
    }
    let mut samples: Vec<Vec<f64>> = (0..K).map(|_| Vec::with_capacity(rounds)).collect();
    for r in 0..rounds {
        for j in 0..which.len() {
            let k = which[(j + r) % which.len()];
            let t = Instant::now();
            black_box(run(k, iters));
            samples[k].push(t.elapsed().as_nanos() as f64 / iters as f64);
        }
    }
    let mut ns = [f64::NAN; K];
    for &k in which {
        ns[k] = median(&mut samples[k]);
    }
    let object = {
        let v = POOL.take();
        let p = v.as_ptr() as usize;
        POOL.put(v);
        p
    };
    let [tls, storage, hot, mag, index, entry] = POOL.hit_addresses().unwrap_or([0; 6]);
    Row {
        ns,
        addrs: [
            slots[1], tls, storage, hot, mag, object, slots[0], index, entry,
        ],
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn print_row(phase: &str, thread: usize, pass: usize, row: &Row) {
    let mut line = format!("row\t{phase}\t{thread}\t{pass}");
    for ns in row.ns {
        line.push_str(&format!("\t{ns:.3}"));
    }
    for a in row.addrs {
        line.push_str(&format!("\t{a:#x}"));
    }
    println!("{line}");
}

fn child() {
    let rounds = env("HIT_SPREAD_ROUNDS", 9);
    let iters = env("HIT_SPREAD_ITERS", 200_000);
    let live: Vec<usize> = std::env::var("HIT_SPREAD_THREADS")
        .unwrap_or_else(|_| "16,64,256".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    reuse_pool::set_cleanup_interval(None);
    // Owned by the main thread: every other thread takes its other path.
    let rx_main: Rx = Rx::new(make);
    drop(rx_main.get());
    let all = [0, 1, 2, 3, 4, 5, 6];

    // The main thread (its stack's start is randomised per process).
    let rx_own: Rx = Rx::new(make);
    drop(rx_own.get());
    let rx_foreign = thread::scope(|s| {
        s.spawn(|| {
            let rx: Rx = Rx::new(make);
            drop(rx.get());
            rx
        })
        .join()
        .unwrap()
    });
    print_row(
        "main",
        0,
        0,
        &measure(&all, &rx_own, &rx_foreign, rounds, iters),
    );

    // One spawned thread, alone.
    thread::scope(|s| {
        s.spawn(|| {
            let rx_own: Rx = Rx::new(make);
            drop(rx_own.get());
            print_row("t1", 0, 0, &measure(&all, &rx_own, &rx_main, rounds, iters));
        });
    });

    // Two threads at once (one per core on a 2-core machine).
    let start = Barrier::new(2);
    let rows = thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let rx_own: Rx = Rx::new(make);
                    drop(rx_own.get());
                    start.wait();
                    measure(&[0, 1, 2, 5], &rx_own, &rx_main, rounds, iters)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    for (t, row) in rows.iter().enumerate() {
        print_row("t2", t, 0, row);
    }

    // Many live threads, each timed alone in turn, `passes` times: the threads form a ring in
    // which thread `i` waits for a message from thread `i - 1` (so that only the thread whose
    // turn it is wakes up) and sends one to `i + 1`. A second pass tells a thread that is slow
    // by itself from one that was slow once.
    let passes = env("HIT_SPREAD_PASSES", 2);
    for &n in &live {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..n).map(|_| mpsc::channel::<()>()).unzip();
        let done = Barrier::new(n + 1);
        let rows = thread::scope(|s| {
            let hs: Vec<_> = receivers
                .into_iter()
                .enumerate()
                .map(|(i, mine)| {
                    let next = senders[(i + 1) % n].clone();
                    let done = &done;
                    let rx_main = &rx_main;
                    s.spawn(move || {
                        // Untimed first use: installs the thread's cache and the free list.
                        drop(POOL.get());
                        floor(1);
                        let mut rows = Vec::new();
                        for _ in 0..passes {
                            mine.recv().unwrap();
                            rows.push(measure(&[0, 1, 2], rx_main, rx_main, rounds, iters / 2));
                            // After the last pass, thread 0 no longer listens.
                            let _ = next.send(());
                        }
                        done.wait();
                        rows
                    })
                })
                .collect();
            senders[0].send(()).unwrap();
            done.wait();
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        for (t, rows) in rows.iter().enumerate() {
            for (pass, row) in rows.iter().enumerate() {
                print_row(&format!("T{n}"), t, pass, row);
            }
        }
    }
}

/// One parsed output line of a child.
struct Line {
    proc_: usize,
    phase: String,
    thread: usize,
    pass: usize,
    ns: [f64; K],
    addrs: [usize; 9],
}

fn parse(proc_: usize, out: &str) -> Vec<Line> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() != 4 + K + 9 || f[0] != "row" {
                return None;
            }
            let mut ns = [0.0; K];
            for (k, x) in ns.iter_mut().enumerate() {
                *x = f[4 + k].parse().ok()?;
            }
            let mut addrs = [0; 9];
            for (k, a) in addrs.iter_mut().enumerate() {
                *a = usize::from_str_radix(f[4 + K + k].trim_start_matches("0x"), 16).ok()?;
            }
            Some(Line {
                proc_,
                phase: f[1].to_string(),
                thread: f[2].parse().ok()?,
                pass: f[3].parse().ok()?,
                ns,
                addrs,
            })
        })
        .collect()
}

/// Distance between two addresses modulo 4 KiB, folded to 0..=2048.
fn alias(a: usize, b: usize) -> usize {
    let d = a.wrapping_sub(b) & 4095;
    d.min(4096 - d)
}

fn pearson(xy: &[(f64, f64)]) -> f64 {
    let n = xy.len() as f64;
    let (mx, my) = (
        xy.iter().map(|p| p.0).sum::<f64>() / n,
        xy.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let cov: f64 = xy.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let vx: f64 = xy.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let vy: f64 = xy.iter().map(|p| (p.1 - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

/// The 10th and 90th percentiles.
fn deciles(v: &[f64]) -> (f64, f64) {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.1), at(0.9))
}

fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn parent() {
    let procs = env("HIT_SPREAD_PROCS", 10);
    let exe = std::env::current_exe().expect("current_exe");
    let mut lines = Vec::new();
    for p in 0..procs {
        let out = Command::new(&exe)
            .env("HIT_SPREAD_CHILD", "1")
            .output()
            .expect("start a child process");
        assert!(out.status.success(), "child {p} failed: {:?}", out.status);
        let text = String::from_utf8_lossy(&out.stdout);
        let parsed = parse(p, &text);
        eprintln!("hit_spread: process {p}: {} threads", parsed.len());
        lines.extend(parsed);
    }

    println!("# Per process: medians in ns per iteration (main thread, one thread, two threads)");
    println!("| process | phase | floor | take/put | guard | rx owner | rx other | held guard | two pools | take/put ÷ floor | guard ÷ floor | take/put ÷ rx owner | guard ÷ rx owner |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for phase in ["main", "t1", "t2"] {
        for p in 0..procs {
            let rows: Vec<&Line> = lines
                .iter()
                .filter(|l| l.proc_ == p && l.phase == phase)
                .collect();
            if rows.is_empty() {
                continue;
            }
            let mean = |k: usize| rows.iter().map(|l| l.ns[k]).sum::<f64>() / rows.len() as f64;
            println!(
                "| {p} | {phase} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                mean(0),
                mean(1),
                mean(2),
                mean(3),
                mean(4),
                mean(5),
                mean(6),
                mean(1) / mean(0),
                mean(2) / mean(0),
                mean(1) / mean(3),
                mean(2) / mean(3)
            );
        }
    }
    println!();
    println!("# Across processes: slowest / fastest process (medians)");
    println!("| phase | floor | take/put | guard | rx owner | rx other | held guard | two pools |");
    println!("|---|---|---|---|---|---|---|---|");
    for phase in ["main", "t1", "t2"] {
        let mut cells = Vec::new();
        for k in 0..K {
            let per: Vec<f64> = (0..procs)
                .map(|p| {
                    let v: Vec<f64> = lines
                        .iter()
                        .filter(|l| l.proc_ == p && l.phase == phase)
                        .map(|l| l.ns[k])
                        .collect();
                    v.iter().sum::<f64>() / v.len().max(1) as f64
                })
                .collect();
            let (lo, _, hi) = spread(&per);
            cells.push(if lo.is_finite() {
                format!("{:.3} ({lo:.2}–{hi:.2})", hi / lo)
            } else {
                "n/a".into()
            });
        }
        println!("| {phase} | {} |", cells.join(" | "));
    }
    println!();
    // The many-thread phases: each thread's best pass (a thread that is slow in every pass is
    // slow by itself; one slow pass is the machine).
    let all_passes: Vec<&Line> = lines.iter().filter(|l| l.phase.starts_with('T')).collect();
    let mut best: Vec<Line> = Vec::new();
    for l in &all_passes {
        match best
            .iter_mut()
            .find(|b| b.proc_ == l.proc_ && b.phase == l.phase && b.thread == l.thread)
        {
            Some(b) => {
                for k in 0..K {
                    b.ns[k] = b.ns[k].min(l.ns[k]);
                }
            }
            None => best.push(Line {
                proc_: l.proc_,
                phase: l.phase.clone(),
                thread: l.thread,
                pass: 0,
                ns: l.ns,
                addrs: l.addrs,
            }),
        }
    }
    let pass_pairs: Vec<(f64, f64)> = all_passes
        .iter()
        .filter(|l| l.pass == 0)
        .filter_map(|a| {
            let b = all_passes.iter().find(|b| {
                b.pass == 1 && b.proc_ == a.proc_ && b.phase == a.phase && b.thread == a.thread
            })?;
            Some((a.ns[1] / a.ns[0], b.ns[1] / b.ns[0]))
        })
        .collect();
    lines.retain(|l| !l.phase.starts_with('T'));
    lines.extend(best);
    println!(
        "# Within a process: slowest / fastest live thread, each timed alone (best of its passes)"
    );
    println!(
        "Correlation of a thread's take/put ÷ floor between its first and second pass: {:.2} over {} threads.",
        pearson(&pass_pairs),
        pass_pairs.len()
    );
    println!();
    println!("Each cell: slowest / fastest thread, p90 / p10, and (fastest/median/slowest ns).");
    println!();
    println!("| threads | process | floor | take/put | guard |");
    println!("|---|---|---|---|---|");
    let mut phases: Vec<String> = lines
        .iter()
        .filter(|l| l.phase.starts_with('T'))
        .map(|l| l.phase.clone())
        .collect();
    phases.dedup();
    phases.sort_by_key(|p| p[1..].parse::<usize>().unwrap_or(0));
    phases.dedup();
    for phase in &phases {
        let mut worst = [0.0f64; 3];
        for p in 0..procs {
            let mut cells = Vec::new();
            for (k, worst) in worst.iter_mut().enumerate() {
                let v: Vec<f64> = lines
                    .iter()
                    .filter(|l| l.proc_ == p && &l.phase == phase)
                    .map(|l| l.ns[k])
                    .collect();
                let (lo, mid, hi) = spread(&v);
                let (p10, p90) = deciles(&v);
                *worst = worst.max(hi / lo);
                cells.push(format!(
                    "{:.3}, p90/p10 {:.3} ({lo:.2}/{mid:.2}/{hi:.2})",
                    hi / lo,
                    p90 / p10
                ));
            }
            println!("| {} | {p} | {} |", &phase[1..], cells.join(" | "));
        }
        println!(
            "| {} | worst | {:.3} | {:.3} | {:.3} |",
            &phase[1..],
            worst[0],
            worst[1],
            worst[2]
        );
    }
    println!();
    println!("# Hit time against address distances modulo 4 KiB (all threads of all processes)");
    println!("Each cell: mean of (take/put ÷ floor, guard ÷ floor) over the threads whose two addresses lie");
    println!("within 64 bytes of each other modulo 4 KiB (near) and over the others (far), and the count near.");
    println!("| pair | near: take/put, guard (n) | far: take/put, guard |");
    println!("|---|---|---|");
    let pairs = [
        (0, 4),
        (0, 3),
        (0, 5),
        (0, 1),
        (3, 4),
        (4, 5),
        (3, 5),
        (1, 3),
        (1, 4),
        (2, 3),
        (6, 4),
        (6, 5),
        (8, 0),
        (8, 1),
        (8, 3),
        (8, 4),
        (8, 5),
    ];
    for (a, b) in pairs {
        let mut near = (0.0, 0.0, 0usize);
        let mut far = (0.0, 0.0, 0usize);
        for l in &lines {
            if l.addrs[a] == 0 || l.addrs[b] == 0 || !l.ns[0].is_finite() {
                continue;
            }
            let acc = if alias(l.addrs[a], l.addrs[b]) < 64 {
                &mut near
            } else {
                &mut far
            };
            acc.0 += l.ns[1] / l.ns[0];
            acc.1 += l.ns[2] / l.ns[0];
            acc.2 += 1;
        }
        let f = |x: (f64, f64, usize)| {
            if x.2 == 0 {
                "–".to_string()
            } else {
                format!("{:.2}, {:.2}", x.0 / x.2 as f64, x.1 / x.2 as f64)
            }
        };
        println!(
            "| {} – {} | {} ({}) | {} |",
            ADDRS[a],
            ADDRS[b],
            f(near),
            near.2,
            f(far)
        );
    }
    println!();
    println!(
        "# The slowest and fastest 8 threads by take/put ÷ floor, with their addresses mod 4 KiB"
    );
    println!("| process | phase | floor | take/put | guard | slot | tls | storage | hot | mag | object | floor slot | index | entry |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut sorted: Vec<&Line> = lines.iter().filter(|l| l.ns[0].is_finite()).collect();
    sorted.sort_by(|a, b| {
        (b.ns[1] / b.ns[0])
            .partial_cmp(&(a.ns[1] / a.ns[0]))
            .unwrap()
    });
    let n = sorted.len();
    for l in sorted
        .iter()
        .take(8)
        .chain(sorted.iter().skip(n.saturating_sub(8)))
    {
        let mut a: Vec<String> = l.addrs[..7]
            .iter()
            .map(|a| format!("{:03x}", a & 4095))
            .collect();
        a.push(l.addrs[7].to_string());
        a.push(format!("{:03x}", l.addrs[8] & 4095));
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {} |",
            l.proc_,
            l.phase,
            l.ns[0],
            l.ns[1],
            l.ns[2],
            a.join(" | ")
        );
    }
    if let Ok(path) = std::env::var("HIT_SPREAD_RAW") {
        let mut raw = String::new();
        for l in &lines {
            raw.push_str(&format!("{}\t{}", l.proc_, l.phase));
            for x in l.ns {
                raw.push_str(&format!("\t{x:.3}"));
            }
            for a in l.addrs {
                raw.push_str(&format!("\t{a:#x}"));
            }
            raw.push('\n');
        }
        std::fs::write(&path, raw).expect("write HIT_SPREAD_RAW");
    }
}

fn main() {
    if std::env::var_os("HIT_SPREAD_CHILD").is_some() {
        child();
    } else if std::env::args().any(|a| a == "--bench")
        || std::env::var_os("HIT_SPREAD_PROCS").is_some()
    {
        parent();
    } else {
        // `cargo test --benches` runs bench binaries without `--bench`: a quick child run.
        std::env::set_var("HIT_SPREAD_ROUNDS", "1");
        std::env::set_var("HIT_SPREAD_ITERS", "1000");
        std::env::set_var("HIT_SPREAD_THREADS", "4");
        child();
    }
}
