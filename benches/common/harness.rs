//! The thread harness of the workloads and the result files the report tool
//! (`examples/bench_report.rs`) reads.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// What `run_threads` reports.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Clock {
    /// Wall time from the first thread's start to the last one's end.
    Wall,
    /// The mean of the threads' own CPU time (`CLOCK_THREAD_CPUTIME_ID`): ignores time spent
    /// descheduled, so it is far less noisy on a shared machine, but it also misses waiting.
    Cpu,
}

/// `REUSE_POOL_BENCH_CLOCK=cpu` selects [`Clock::Cpu`] for the workloads that never block;
/// the default is [`Clock::Wall`].
pub fn clock() -> Clock {
    static CLOCK: OnceLock<Clock> = OnceLock::new();
    *CLOCK.get_or_init(
        || match std::env::var("REUSE_POOL_BENCH_CLOCK").as_deref() {
            Ok("cpu") => Clock::Cpu,
            Ok("wall") | Err(_) => Clock::Wall,
            Ok(other) => panic!("REUSE_POOL_BENCH_CLOCK must be `wall` or `cpu`, not {other:?}"),
        },
    )
}

/// CPU time of the calling thread.
pub fn thread_cpu_time() -> Duration {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable `timespec`.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        if rc == 0 {
            return Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        }
    }
    panic!("no per-thread CPU clock here: run with REUSE_POOL_BENCH_CLOCK=wall")
}

/// Pins the calling thread to CPU `cpu` (Linux; elsewhere, or with `REUSE_POOL_BENCH_PIN=0`,
/// nothing). `run_threads` pins thread `t` to CPU `t` when there are at least as many CPUs as
/// threads: two threads left to the scheduler sometimes share a CPU and sometimes not, which
/// moved the pipeline (a bounded channel between them) between 30 and 190 ns per message for
/// the channel alone from one run to the next on the 2-CPU machine of the benches.
pub fn pin_to_cpu(cpu: usize) {
    #[cfg(target_os = "linux")]
    {
        static ON: OnceLock<bool> = OnceLock::new();
        if !*ON.get_or_init(|| std::env::var("REUSE_POOL_BENCH_PIN").as_deref() != Ok("0")) {
            return;
        }
        // SAFETY: `set` is a zeroed, valid `cpu_set_t`; `CPU_SET` writes inside it (`cpu` is
        // below the number of CPUs, far below `CPU_SETSIZE`); `sched_setaffinity` reads it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cpu;
}

/// Runs `body(thread_index)` on `threads` fresh threads released together by a `Barrier`, after
/// `prime(thread_index)` (untimed). Thread `t` is pinned to CPU `t` if there are enough CPUs
/// (see [`pin_to_cpu`]).
///
/// With `clock == Clock::Wall`, returns the wall time from the earliest start to the latest
/// end: with all threads running in parallel this is the time of one thread's share, so
/// dividing it by the operations *per thread* gives per-thread ns per operation. With
/// `Clock::Cpu`, returns the mean of the threads' CPU times instead.
pub fn run_threads<P, B>(threads: usize, clock: Clock, prime: P, body: B) -> Duration
where
    P: Fn(usize) + Sync,
    B: Fn(usize) + Sync,
{
    let barrier = Barrier::new(threads);
    let pin = thread::available_parallelism().is_ok_and(|n| threads <= n.get());
    let spans: Vec<(Instant, Instant, Duration)> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, prime, body) = (&barrier, &prime, &body);
                s.spawn(move || {
                    if pin {
                        pin_to_cpu(t);
                    }
                    prime(t);
                    barrier.wait();
                    let c0 = (clock == Clock::Cpu).then(thread_cpu_time);
                    let t0 = Instant::now();
                    body(t);
                    let t1 = Instant::now();
                    let cpu = c0.map_or(Duration::ZERO, |c0| thread_cpu_time() - c0);
                    (t0, t1, cpu)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .collect()
    });
    match clock {
        Clock::Wall => {
            let start = spans.iter().map(|s| s.0).min().expect("no threads");
            let end = spans.iter().map(|s| s.1).max().expect("no threads");
            end - start
        }
        Clock::Cpu => spans.iter().map(|s| s.2).sum::<Duration>() / threads as u32,
    }
}

// ---------------------------------------------------------------------------------------------
// Result files for the report tool.
// ---------------------------------------------------------------------------------------------

/// `$CARGO_TARGET_DIR/reuse-pool-bench` (or `target/reuse-pool-bench`), created.
pub fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("reuse-pool-bench");
    let _ = fs::create_dir_all(&dir);
    dir
}

/// One row of `results.tsv`: what a benchmark id did besides its timing.
#[derive(Debug, Clone)]
pub struct Row {
    pub group: String,
    pub name: String,
    pub threads: String,
    /// `create` calls over the whole benchmark (warm-up included); `None` where not counted.
    pub creates: Option<u64>,
    /// Objects handed out over the whole benchmark (warm-up included).
    pub gets: u64,
    pub note: String,
}

fn clean(s: &str) -> String {
    s.replace(['\t', '\n'], " ")
}

/// Prints `row` and merges it into `results.tsv` (replacing an earlier row with the same
/// group, name and threads; rows keep the order in which they were first written).
pub fn record(row: Row) {
    let per = match row.creates {
        Some(c) if row.gets > 0 => format!("{:.6}", c as f64 / row.gets as f64),
        _ => String::new(),
    };
    eprintln!(
        "  {}/{}/{}: creates {} / gets {} = {} per get{}{}",
        row.group,
        row.name,
        row.threads,
        row.creates.map_or("-".into(), |c| c.to_string()),
        row.gets,
        if per.is_empty() { "-" } else { &per },
        if row.note.is_empty() { "" } else { "; " },
        row.note
    );
    let line = format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        clean(&row.group),
        clean(&row.name),
        clean(&row.threads),
        row.creates.map_or(String::new(), |c| c.to_string()),
        row.gets,
        per,
        clean(&row.note)
    );
    merge_line(
        "results.tsv",
        "group\timpl\tthreads\tcreates\tgets\tcreates_per_get\tnote",
        3,
        line,
    );
}

static DRY_RUN: AtomicBool = AtomicBool::new(false);

/// Stops writing result files (criterion's `--test` and `--list` modes run every benchmark once
/// or not at all; their counts would overwrite a real run's).
pub fn set_dry_run(dry: bool) {
    DRY_RUN.store(dry, Ordering::Relaxed);
}

/// Replaces or appends `line` in `file` (keyed on its first `key_fields` tab-separated fields).
pub fn merge_line(file: &str, header: &str, key_fields: usize, line: String) {
    if DRY_RUN.load(Ordering::Relaxed) {
        return;
    }
    let path = out_dir().join(file);
    let old = fs::read_to_string(&path).unwrap_or_default();
    let key = |l: &str| {
        l.split('\t')
            .take(key_fields)
            .collect::<Vec<_>>()
            .join("\t")
    };
    let mut lines: Vec<String> = old
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let k = key(&line);
    match lines.iter().position(|l| key(l) == k) {
        Some(i) => lines[i] = line,
        None => lines.push(line),
    }
    let mut out = String::new();
    let _ = writeln!(out, "{header}");
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    if let Err(e) = fs::write(&path, out) {
        eprintln!("cannot write {}: {e}", path.display());
    }
}

/// Resident set size of this process in bytes (`/proc/self/statm`, second field).
pub fn rss_bytes() -> u64 {
    let statm = fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * page_size()
}

fn page_size() -> u64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `sysconf` has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if p > 0 {
            return p as u64;
        }
    }
    4096
}

/// Gives the system allocator's free memory back to the OS where it can (glibc `malloc_trim`).
pub fn trim_system_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` has no preconditions.
        unsafe { libc::malloc_trim(0) };
        true
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
