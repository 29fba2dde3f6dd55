//! Encoding a large batch of records with serde_json on a rayon thread pool, into pooled
//! `Vec<u8>` buffers, against a fresh buffer per record.
//!
//! This is the serializer side of a server: every record (a response, a log line, a message) is
//! encoded into a byte buffer, the buffer is handed on (written to a socket; here it is hashed),
//! and then it is free again. Three ways to get that buffer are timed in the same process:
//!
//! * `fresh`: `serde_json::to_vec`, which starts at 128 bytes and grows by doubling;
//! * `presized`: `Vec::with_capacity(2048)` per record, one allocation each;
//! * `pooled`: a buffer from a `static` [`Pool`], cleared on return, with no allocation at all
//!   once each thread has one.
//!
//! A counting `#[global_allocator]` (per-thread counters around `System`, read back with
//! `rayon::broadcast`) reports allocations per record. Every mode must produce byte-identical
//! output: the example hashes every encoded record and exits with status 1 if the checksums of
//! the modes differ.
//!
//! What to expect: allocation is a few percent of serde_json's work. The pool removes every
//! allocation (and `to_vec`'s three growth reallocations per record), which makes encoding about
//! 1.05–1.1x faster than `fresh`, but a `Vec::with_capacity` of the right size gains as much
//! (measured on a shared 2-core VM, glibc, 1 and 2 threads). Pooling a buffer pays when the
//! buffer is large or expensive to set up, not for a 1 KiB `Vec`.
//!
//! ```text
//! cargo run --release --example json_encode -- --short       # a few seconds, for CI
//! cargo run --release --example json_encode -- --threads 1 --rounds 41
//! cargo run --release --example json_encode -- --batch 256     # 200 KB buffers
//! ```

#[path = "support/cpu_time.rs"]
mod cpu_time;

#[path = "support/rng.rs"]
mod rng;

use cpu_time::process_cpu_time;
use rayon::prelude::*;
use reuse_pool::Pool;
use rng::Rng;
use serde::Serialize;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::process::ExitCode;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Allocation counting

/// Counts allocations in per-thread counters, so that counting adds no shared-cache-line traffic
/// to the allocation-heavy modes it measures.
struct Counting;

struct Counts {
    allocs: Cell<u64>,
    reallocs: Cell<u64>,
    deallocs: Cell<u64>,
    bytes: Cell<u64>,
}

thread_local! {
    // `const` and without `Drop`: usable from inside the allocator at any time, never allocates.
    static COUNTS: Counts = const {
        Counts {
            allocs: Cell::new(0),
            reallocs: Cell::new(0),
            deallocs: Cell::new(0),
            bytes: Cell::new(0),
        }
    };
}

fn count(f: impl FnOnce(&Counts)) {
    let _ = COUNTS.try_with(f);
}

// SAFETY: every method forwards to `System` with the same arguments and only adds bookkeeping in
// thread-local `Cell`s, which neither allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(|c| {
            c.allocs.set(c.allocs.get() + 1);
            c.bytes.set(c.bytes.get() + layout.size() as u64);
        });
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(|c| {
            c.allocs.set(c.allocs.get() + 1);
            c.bytes.set(c.bytes.get() + layout.size() as u64);
        });
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(|c| c.deallocs.set(c.deallocs.get() + 1));
        // SAFETY: `ptr` came from `System` through this allocator with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(|c| {
            c.reallocs.set(c.reallocs.get() + 1);
            c.bytes
                .set(c.bytes.get() + new_size.saturating_sub(layout.size()) as u64);
        });
        // SAFETY: `ptr` came from `System` through this allocator with this `layout`; the caller
        // upholds the rest of `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[derive(Clone, Copy, Default, Debug)]
struct AllocCounts {
    allocs: u64,
    reallocs: u64,
    deallocs: u64,
    bytes: u64,
}

impl AllocCounts {
    fn this_thread() -> Self {
        COUNTS
            .try_with(|c| AllocCounts {
                allocs: c.allocs.get(),
                reallocs: c.reallocs.get(),
                deallocs: c.deallocs.get(),
                bytes: c.bytes.get(),
            })
            .unwrap_or_default()
    }

    /// The sum over the calling thread and every thread of `pool`.
    fn total(pool: &rayon::ThreadPool) -> Self {
        let workers = pool.broadcast(|_| AllocCounts::this_thread());
        workers
            .into_iter()
            .fold(AllocCounts::this_thread(), |a, b| a.plus(&b))
    }

    fn plus(&self, o: &Self) -> Self {
        AllocCounts {
            allocs: self.allocs + o.allocs,
            reallocs: self.reallocs + o.reallocs,
            deallocs: self.deallocs + o.deallocs,
            bytes: self.bytes + o.bytes,
        }
    }

    fn since(&self, earlier: &Self) -> Self {
        AllocCounts {
            allocs: self.allocs - earlier.allocs,
            reallocs: self.reallocs - earlier.reallocs,
            deallocs: self.deallocs - earlier.deallocs,
            bytes: self.bytes - earlier.bytes,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The records

#[derive(Serialize)]
struct Address {
    street: String,
    city: String,
    zip: String,
    country: &'static str,
}

#[derive(Serialize)]
struct Event {
    ts: u64,
    kind: &'static str,
    value: i64,
    ok: bool,
}

#[derive(Serialize)]
struct Record {
    id: u64,
    name: String,
    email: String,
    active: bool,
    score: f64,
    tags: Vec<String>,
    address: Address,
    events: Vec<Event>,
    note: Option<String>,
}

impl Rng {
    fn word(&mut self, min: usize, max: usize) -> String {
        let len = min + self.below((max - min + 1) as u64) as usize;
        (0..len)
            .map(|_| (b'a' + self.below(26) as u8) as char)
            .collect()
    }
}

const KINDS: [&str; 5] = ["login", "view", "purchase", "logout", "error \"quoted\"\n"];
const COUNTRIES: [&str; 4] = ["NL", "DE", "FR", "Ελλάδα"];

fn make_records(n: usize) -> Vec<Record> {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    (0..n as u64)
        .map(|id| {
            let name = format!("{} {}", rng.word(3, 9), rng.word(4, 12));
            let email = format!("{}@{}.example", rng.word(4, 10), rng.word(3, 8));
            let tags = (0..rng.below(6)).map(|_| rng.word(2, 10)).collect();
            let events = (0..rng.below(16))
                .map(|_| Event {
                    ts: 1_700_000_000_000 + rng.below(1 << 32),
                    kind: KINDS[rng.below(KINDS.len() as u64) as usize],
                    value: rng.next() as i64 >> 20,
                    ok: rng.below(4) != 0,
                })
                .collect();
            Record {
                id,
                name,
                email,
                active: rng.below(3) != 0,
                score: (rng.below(1_000_000) as f64) / 7.0,
                tags,
                address: Address {
                    street: format!("{} {}", rng.below(999), rng.word(5, 14)),
                    city: rng.word(4, 12),
                    zip: format!("{:05}", rng.below(100_000)),
                    country: COUNTRIES[rng.below(COUNTRIES.len() as u64) as usize],
                },
                events,
                note: (rng.below(5) == 0).then(|| rng.word(20, 200)),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Bytes reserved per record by `presized` (and by the pool's `create`): most records fit.
const PRESIZE: usize = 2048;

/// Output buffers: created for one record, grown by use (a `--batch` buffer grows once, then
/// keeps its size); one that grew past 4 MiB is dropped on return rather than pinning memory
/// (Go issue 23199).
static BUFS: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(PRESIZE))
    .reset(Vec::clear)
    .keep_if(|v| v.capacity() <= 4 << 20);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Fresh,
    Presized,
    Pooled,
}

const MODES: [Mode; 3] = [Mode::Fresh, Mode::Presized, Mode::Pooled];

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Fresh => "fresh",
            Mode::Presized => "presized",
            Mode::Pooled => "pooled",
        }
    }
}

/// A fast 64-bit hash of the encoded bytes, standing in for "write it to the socket".
fn hash(bytes: &[u8], seed: u64) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h = (h ^ u64::from_le_bytes(c.try_into().unwrap())).wrapping_mul(K);
        h ^= h >> 29;
    }
    for &b in chunks.remainder() {
        h = (h ^ b as u64).wrapping_mul(K);
    }
    h ^ (h >> 32)
}

/// Writes `recs` as newline-delimited JSON into `out`.
fn write_batch(out: &mut Vec<u8>, recs: &[Record]) {
    for (i, rec) in recs.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        serde_json::to_writer(&mut *out, rec).expect("records always serialize");
    }
}

/// Encodes one batch of records (one record unless `--batch`) into one buffer obtained the way
/// `mode` says, and returns (hash, length) of the bytes.
fn encode(mode: Mode, index: usize, recs: &[Record]) -> (u64, u64) {
    let digest = |b: &[u8]| (hash(b, index as u64), b.len() as u64);
    match mode {
        Mode::Fresh => {
            let v = if let [rec] = recs {
                serde_json::to_vec(rec).expect("records always serialize")
            } else {
                let mut v = Vec::new();
                write_batch(&mut v, recs);
                v
            };
            digest(&v)
        }
        Mode::Presized => {
            let mut v = Vec::with_capacity(PRESIZE * recs.len());
            write_batch(&mut v, recs);
            digest(&v)
        }
        Mode::Pooled => {
            let mut v = BUFS.get();
            write_batch(&mut v, recs);
            digest(&v)
        }
    }
}

struct Pass {
    elapsed: Duration,
    /// Process CPU time of the pass (all threads).
    cpu: Option<Duration>,
    checksum: u64,
    bytes: u64,
    allocs: AllocCounts,
}

fn pass(pool: &rayon::ThreadPool, records: &[Record], batch: usize, mode: Mode) -> Pass {
    let before = AllocCounts::total(pool);
    let cpu_start = process_cpu_time();
    let start = Instant::now();
    let (checksum, bytes) = pool.install(|| {
        records
            .par_chunks(batch)
            .enumerate()
            .with_min_len((64 / batch).max(1))
            .map(|(i, r)| encode(mode, i, r))
            .reduce(|| (0, 0), |a, b| (a.0.wrapping_add(b.0), a.1 + b.1))
    });
    let elapsed = start.elapsed();
    let cpu = process_cpu_time()
        .zip(cpu_start)
        .map(|(end, start)| end - start);
    let allocs = AllocCounts::total(pool).since(&before);
    Pass {
        elapsed,
        cpu,
        checksum,
        bytes,
        allocs,
    }
}

// ---------------------------------------------------------------------------------------------
// main

struct Config {
    records: usize,
    batch: usize,
    rounds: usize,
    threads: usize,
}

const USAGE: &str = "\
usage: json_encode [options]
  --records N   records to encode per pass (default 50000)
  --batch N     records per output buffer, newline-delimited (default 1)
  --rounds N    timed passes per mode, interleaved; medians are reported (default 21)
  --threads N   rayon threads (default: available parallelism)
  --short       a few seconds, for CI: 20000 records, 3 rounds";

fn parse_args() -> Result<Config, String> {
    let mut cfg = Config {
        records: 50_000,
        batch: 1,
        rounds: 21,
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    if std::env::args().any(|a| a == "--short") {
        cfg.records = 20_000;
        cfg.rounds = 3;
    }
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            let v = args.next().ok_or_else(|| format!("{name} needs a value"))?;
            match v.parse::<usize>() {
                Ok(0) => Err(format!("{name} must be at least 1")),
                Ok(n) => Ok(n),
                Err(e) => Err(format!("{name} {v}: {e}")),
            }
        };
        match arg.as_str() {
            "--records" => cfg.records = num("--records")?,
            "--batch" => cfg.batch = num("--batch")?,
            "--rounds" => cfg.rounds = num("--rounds")?,
            "--threads" => cfg.threads = num("--threads")?,
            "--short" => {}
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("json_encode: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if msg.is_empty() { 0 } else { 64 });
        }
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .thread_name(|i| format!("json-{i}"))
        .build()
        .expect("rayon thread pool");
    let records = make_records(cfg.records);

    // One untimed pass per mode: page in the records, start the threads, fill the pool.
    let warm: Vec<Pass> = MODES
        .iter()
        .map(|&m| pass(&pool, &records, cfg.batch, m))
        .collect();
    let (checksum, bytes) = (warm[0].checksum, warm[0].bytes);
    println!(
        "json_encode: {} records in buffers of {}, {:.1} MB of JSON ({:.0} B per record), \
         {} rayon threads, {} rounds",
        cfg.records,
        cfg.batch,
        bytes as f64 / 1e6,
        bytes as f64 / cfg.records as f64,
        cfg.threads,
        cfg.rounds
    );

    let mut passes: Vec<(Mode, Pass)> = Vec::new();
    for _ in 0..cfg.rounds {
        for &m in &MODES {
            passes.push((m, pass(&pool, &records, cfg.batch, m)));
        }
    }

    let mut ok = true;
    for (m, p) in warm
        .iter()
        .zip(MODES)
        .map(|(p, m)| (m, p))
        .chain(passes.iter().map(|(m, p)| (*m, p)))
    {
        if p.checksum != checksum || p.bytes != bytes {
            eprintln!(
                "json_encode: MISMATCH: mode {} produced checksum {:#018x} / {} bytes, expected {:#018x} / {}",
                m.name(),
                p.checksum,
                p.bytes,
                checksum,
                bytes
            );
            ok = false;
        }
    }

    println!(
        "  {:<9} {:>10} {:>9} {:>12} {:>9} {:>11} {:>13} {:>13}",
        "mode",
        "records/s",
        "vs fresh",
        "CPU ns/rec",
        "vs fresh",
        "allocs/rec",
        "reallocs/rec",
        "KB alloc/rec"
    );
    // Medians over the timed passes of one mode; CPU time is that of the whole process.
    let median = |m: Mode, f: fn(&Pass) -> Option<Duration>| -> Option<Duration> {
        let mut t: Vec<Duration> = passes
            .iter()
            .filter(|(pm, _)| *pm == m)
            .map(|(_, p)| f(p))
            .collect::<Option<_>>()?;
        t.sort();
        Some(t[t.len() / 2])
    };
    let wall = |m| median(m, |p| Some(p.elapsed)).unwrap().as_secs_f64();
    let cpu = |m| median(m, |p| p.cpu).map(|d| d.as_secs_f64());
    let n = cfg.records as f64;
    for m in MODES {
        // Allocation counts of the last timed pass (the pool is warm by then).
        let a = passes
            .iter()
            .rev()
            .find(|(pm, _)| *pm == m)
            .unwrap()
            .1
            .allocs;
        let (cpu_ns, cpu_ratio) = match (cpu(m), cpu(Mode::Fresh)) {
            (Some(c), Some(f)) => (format!("{:.0}", c * 1e9 / n), format!("{:.3}x", f / c)),
            _ => ("n/a".into(), "n/a".into()),
        };
        println!(
            "  {:<9} {:>10.0} {:>8.3}x {:>12} {:>9} {:>11.3} {:>13.3} {:>13.3}",
            m.name(),
            n / wall(m),
            wall(Mode::Fresh) / wall(m),
            cpu_ns,
            cpu_ratio,
            a.allocs as f64 / n,
            a.reallocs as f64 / n,
            a.bytes as f64 / 1e3 / n
        );
    }
    let s = BUFS.stats();
    println!(
        "  pool: {} gets = {} hits + {} steals + {} victim + {} creates; {} puts, {} drops; reuse {:.4}%",
        s.gets(),
        s.hits,
        s.steals,
        s.victim_hits,
        s.misses,
        s.puts,
        s.drops,
        s.reuse_ratio() * 100.0
    );
    println!("  checksum {checksum:#018x} over {bytes} bytes, identical in every pass: {ok}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
