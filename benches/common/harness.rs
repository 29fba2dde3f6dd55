//! The thread harness of the workloads, and the row each benchmark adds to `results.tsv`.

use std::fs;
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
    *CLOCK.get_or_init(|| match env("REUSE_POOL_BENCH_CLOCK").as_deref() {
        Some("cpu") => Clock::Cpu,
        Some("wall") | None => Clock::Wall,
        Some(other) => panic!("REUSE_POOL_BENCH_CLOCK must be `wall` or `cpu`, not {other:?}"),
    })
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// CPU time of the calling thread.
pub fn thread_cpu_time() -> Duration {
    let t = super::cpu_time::thread_cpu_time();
    t.expect("no per-thread CPU clock here: run with REUSE_POOL_BENCH_CLOCK=wall")
}

/// Pins the calling thread to CPU `cpu` (Linux; elsewhere, or with `REUSE_POOL_BENCH_PIN=0`,
/// nothing). `run_threads` pins thread `t` to CPU `t` when there are at least as many CPUs as
/// threads: two threads left to the scheduler sometimes share a CPU and sometimes not, which
/// moved the pipeline (a bounded channel between them) between 30 and 190 ns per message for
/// the channel alone from one run to the next on the 2-CPU machine of the benches.
pub fn pin_to_cpu(cpu: usize) {
    static ON: OnceLock<bool> = OnceLock::new();
    if !*ON.get_or_init(|| env("REUSE_POOL_BENCH_PIN").as_deref() != Some("0")) {
        return;
    }
    // SAFETY: `set` is a zeroed, valid `cpu_set_t`; `CPU_SET` writes inside it (`cpu` is below
    // the number of CPUs, far below `CPU_SETSIZE`); `sched_setaffinity` reads it.
    #[cfg(target_os = "linux")]
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
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
    let run = |t| {
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
    };
    let spans: Vec<(Instant, Instant, Duration)> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|t| s.spawn(move || run(t))).collect();
        let joined = handles.into_iter().map(|h| h.join());
        joined.map(|r| r.expect("bench thread panicked")).collect()
    });
    match clock {
        Clock::Wall => {
            let start = spans.iter().map(|s| s.0).min().expect("no threads");
            spans.iter().map(|s| s.1).max().expect("no threads") - start
        }
        Clock::Cpu => spans.iter().map(|s| s.2).sum::<Duration>() / threads as u32,
    }
}

/// Prints one row of `results.tsv`, what a benchmark id did besides its timing, and merges it
/// into the file (replacing an earlier row with the same group, name and threads; rows keep the
/// order in which they were first written). `creates` and `gets` count over the whole benchmark,
/// warm-up included; `creates` is `None` where not counted.
pub fn record(group: &str, name: &str, threads: &str, creates: Option<u64>, gets: u64, note: &str) {
    let per = match creates {
        Some(c) if gets > 0 => format!("{:.6}", c as f64 / gets as f64),
        _ => String::new(),
    };
    let creates = creates.map_or(String::new(), |c| c.to_string());
    let dash = |s: &str| if s.is_empty() { "-" } else { s }.to_string();
    let sep = if note.is_empty() { "" } else { "; " };
    let (c, p) = (dash(&creates), dash(&per));
    eprintln!("  {group}/{name}/{threads}: creates {c} / gets {gets} = {p} per get{sep}{note}");
    let gets = gets.to_string();
    let fields = [group, name, threads, &creates, &gets, &per, note];
    let header = "group\timpl\tthreads\tcreates\tgets\tcreates_per_get\tnote";
    super::merge_line("results.tsv", header, 3, &fields);
}

/// Resident set size of this process in bytes (`/proc/self/statm`, second field).
pub fn rss_bytes() -> u64 {
    let statm = fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: Option<u64> = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    // SAFETY: `sysconf` has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages.unwrap_or(0) * if page > 0 { page as u64 } else { 4096 }
}

/// Gives the system allocator's free memory back to the OS where it can (glibc `malloc_trim`).
pub fn trim_system_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
    cfg!(all(target_os = "linux", target_env = "gnu"))
}
