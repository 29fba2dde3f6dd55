//! End-to-end workloads, pooled against plain allocation, under three allocators.
//!
//! * `echo_buf16KiB`, `echo_buf256KiB`: one iteration is 8 concurrent clients that each connect
//!   to a tokio echo server on 127.0.0.1, do 2 round trips of 512 bytes and close. The server
//!   takes a read buffer (zeroed `Box<[u8]>`) and a write buffer (`Vec<u8>`) of the group's size
//!   per connection, from a pool (`pooled`) or from the allocator (`alloc`). The cut-down twin of
//!   `examples/echo_server.rs`.
//! * `json_record`, `json_batch256`: one iteration encodes 4096 records with serde_json on
//!   rayon's global pool, one record (or 256 records, newline-delimited) per buffer. `fresh` is
//!   `serde_json::to_vec` / `Vec::new()`, `presized` a `Vec::with_capacity` per buffer, `pooled` a
//!   buffer from a pool. The cut-down twin of `examples/json_encode.rs`.
//!
//! The allocator is chosen when the process starts, from `REUSE_POOL_BENCH_ALLOC`
//! (`system`, the default; `mimalloc`; `jemalloc`), by a `#[global_allocator]` that dispatches
//! every call to the chosen one. The dispatch costs a load and a predictable branch per call,
//! in every variant alike. Benchmark ids end in the allocator's name:
//!
//! ```text
//! for a in system mimalloc jemalloc; do
//!     REUSE_POOL_BENCH_ALLOC=$a cargo bench --bench real
//! done
//! ```
//!
//! On a machine shared with other work, wall-clock time mostly measures the neighbours. With
//! `REUSE_POOL_BENCH_CLOCK=cpu` (64-bit Linux) each sample is the CPU time (user + system) that
//! the whole process spent on the iterations instead, which time slices lost to other processes
//! do not inflate; the ids then end in `-cpu` (`echo_buf16KiB/pooled/system-cpu`), so that the
//! two kinds of figures are never compared with each other as baselines.

#[path = "../examples/support/cpu_time.rs"]
mod cpu_time;

use cpu_time::process_cpu_time;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rayon::prelude::*;
use reuse_pool::{Pool, PooledOwned};
use serde::Serialize;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------------
// Allocator chosen at run time

const UNSET: u8 = 0;
const SYSTEM: u8 = 1;
const MIMALLOC: u8 = 2;
const JEMALLOC: u8 = 3;
const ALLOC_NAMES: [&str; 4] = ["", "system", "mimalloc", "jemalloc"];
const ENV: &str = "REUSE_POOL_BENCH_ALLOC";

/// Which allocator serves every call; fixed by the first allocation of the process and never
/// changed, so that every block is freed by the allocator that made it.
static CHOICE: AtomicU8 = AtomicU8::new(UNSET);

#[cfg(unix)]
fn env_choice() -> u8 {
    use std::ffi::CStr;
    use std::os::raw::c_char;
    extern "C" {
        fn getenv(name: *const c_char) -> *const c_char;
    }
    // `std::env::var` allocates, which the allocator cannot do while choosing itself; C's
    // `getenv` does not.
    // SAFETY: the name is a NUL-terminated literal; the first allocation happens before `main`
    // starts any thread, so no `setenv` runs concurrently.
    let v = unsafe { getenv(c"REUSE_POOL_BENCH_ALLOC".as_ptr()) };
    if v.is_null() {
        return SYSTEM;
    }
    // SAFETY: a non-null result of `getenv` is a NUL-terminated string.
    match unsafe { CStr::from_ptr(v) }.to_bytes() {
        b"mimalloc" => MIMALLOC,
        b"jemalloc" => JEMALLOC,
        // Anything else is refused by `main` (through `check_alloc_env`); meanwhile, System.
        _ => SYSTEM,
    }
}

#[cfg(not(unix))]
fn env_choice() -> u8 {
    SYSTEM
}

#[inline]
fn choice() -> u8 {
    // Relaxed: the value is a pure function of the environment, so a thread that races with the
    // first store computes and stores the same value.
    match CHOICE.load(Ordering::Relaxed) {
        UNSET => {
            let c = env_choice();
            CHOICE.store(c, Ordering::Relaxed);
            c
        }
        c => c,
    }
}

struct Dispatch;

macro_rules! dispatch {
    ($method:ident($($arg:expr),*)) => {
        match choice() {
            MIMALLOC => mimalloc::MiMalloc.$method($($arg),*),
            JEMALLOC => tikv_jemallocator::Jemalloc.$method($($arg),*),
            _ => System.$method($($arg),*),
        }
    };
}

// SAFETY: every call goes to one of three allocators that implement `GlobalAlloc` soundly, with
// the caller's arguments unchanged; `choice()` returns the same allocator for the whole life of
// the process, so a block is always freed or reallocated by the allocator that made it.
unsafe impl GlobalAlloc for Dispatch {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { dispatch!(alloc(layout)) }
    }
    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { dispatch!(alloc_zeroed(layout)) }
    }
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was made by the same allocator (see the impl).
        unsafe { dispatch!(dealloc(ptr, layout)) }
    }
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was made by the same allocator (see the impl).
        unsafe { dispatch!(realloc(ptr, layout, new_size)) }
    }
}

#[global_allocator]
static GLOBAL: Dispatch = Dispatch;

fn alloc_name() -> &'static str {
    ALLOC_NAMES[choice() as usize]
}

// ---------------------------------------------------------------------------------------------
// Clock

/// Whether samples are process CPU time (`REUSE_POOL_BENCH_CLOCK=cpu`) rather than wall time.
fn cpu_clock() -> bool {
    match std::env::var("REUSE_POOL_BENCH_CLOCK").as_deref() {
        Ok("cpu") => {
            assert!(
                process_cpu_time().is_some(),
                "REUSE_POOL_BENCH_CLOCK=cpu needs 64-bit Linux"
            );
            true
        }
        Ok("wall") | Err(_) => false,
        Ok(other) => panic!("REUSE_POOL_BENCH_CLOCK must be wall or cpu, not {other:?}"),
    }
}

/// The benchmark id's parameter: the allocator, and the clock if it is not wall time.
fn param() -> String {
    if cpu_clock() {
        format!("{}-cpu", alloc_name())
    } else {
        alloc_name().to_string()
    }
}

/// Runs `f` and returns what it took by the chosen clock.
fn measure(f: impl FnOnce()) -> Duration {
    if cpu_clock() {
        let start = process_cpu_time().unwrap();
        f();
        process_cpu_time().unwrap() - start
    } else {
        let start = Instant::now();
        f();
        start.elapsed()
    }
}

/// Refuses a misspelt allocator name instead of silently measuring `system`.
fn check_alloc_env() {
    if let Ok(v) = std::env::var(ENV) {
        assert_eq!(
            v,
            alloc_name(),
            "{ENV} must be system, mimalloc or jemalloc"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Echo over loopback

const CLIENTS: usize = 8;
const ROUND_TRIPS: usize = 2;
const PAYLOAD: usize = 512;
/// Bound on every await of a round; a stuck server fails the bench instead of hanging it.
const STEP: Duration = Duration::from_secs(10);

/// A `create` function chosen at run time (the buffer size is a parameter).
type Create<T> = Box<dyn Fn() -> T + Send + Sync>;
type BoxPool<T> = Pool<T, Create<T>>;

struct Pools {
    read: Arc<BoxPool<Box<[u8]>>>,
    write: Arc<BoxPool<Vec<u8>>>,
}

/// Where a connection's buffers come from.
#[derive(Clone)]
struct Buffers {
    size: usize,
    /// `None`: allocate per connection.
    pools: Option<Arc<Pools>>,
}

impl Buffers {
    fn new(size: usize, pooled: bool) -> Self {
        let pools = pooled.then(|| {
            // Annotated: `Box::new(closure)` does not coerce to `Box<dyn Fn>` through the
            // builder chain.
            let new_read: Create<Box<[u8]>> = Box::new(move || vec![0u8; size].into_boxed_slice());
            let new_write: Create<Vec<u8>> = Box::new(move || Vec::with_capacity(size));
            Arc::new(Pools {
                read: Arc::new(Pool::from_fn(new_read)),
                write: Arc::new(Pool::from_fn(new_write).reset(Vec::clear)),
            })
        });
        Buffers { size, pools }
    }

    fn lease(&self) -> (Lease<Box<[u8]>>, Lease<Vec<u8>>) {
        match &self.pools {
            Some(p) => (
                Lease::Pooled(p.read.get_owned()),
                Lease::Pooled(p.write.get_owned()),
            ),
            None => (
                Lease::Owned(vec![0u8; self.size].into_boxed_slice()),
                Lease::Owned(Vec::with_capacity(self.size)),
            ),
        }
    }
}

enum Lease<T: Send + 'static> {
    Pooled(PooledOwned<T, Create<T>>),
    Owned(T),
}

impl<T: Send + 'static> Deref for Lease<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Lease::Pooled(p) => p,
            Lease::Owned(v) => v,
        }
    }
}

impl<T: Send + 'static> DerefMut for Lease<T> {
    fn deref_mut(&mut self) -> &mut T {
        match self {
            Lease::Pooled(p) => p,
            Lease::Owned(v) => v,
        }
    }
}

async fn serve(mut sock: TcpStream, bufs: Buffers) -> io::Result<()> {
    sock.set_nodelay(true)?;
    let (mut rbuf, mut wbuf) = bufs.lease();
    let mut filled = 0;
    loop {
        let n = tokio::time::timeout(STEP, sock.read(&mut rbuf[filled..])).await??;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let mut start = 0;
        while filled - start >= 4 {
            let len = u32::from_le_bytes(rbuf[start..start + 4].try_into().unwrap()) as usize;
            assert!(4 + len <= rbuf.len(), "frame exceeds buffer");
            if filled - start < 4 + len {
                break;
            }
            wbuf.extend_from_slice(&rbuf[start..start + 4 + len]);
            start += 4 + len;
        }
        rbuf.copy_within(start..filled, 0);
        filled -= start;
        if !wbuf.is_empty() {
            sock.write_all(&wbuf).await?;
            wbuf.clear();
        }
    }
}

struct EchoServer {
    rt: tokio::runtime::Runtime,
    addr: SocketAddr,
}

impl EchoServer {
    fn start(bufs: Buffers) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move {
            loop {
                let (sock, _) = listener.accept().await.unwrap();
                let bufs = bufs.clone();
                tokio::spawn(async move { serve(sock, bufs).await.unwrap() });
            }
        });
        EchoServer { rt, addr }
    }

    fn stop(self) {
        self.rt.shutdown_timeout(Duration::from_secs(1));
    }
}

async fn echo_client(addr: SocketAddr, id: usize) {
    let mut frame = vec![id as u8; 4 + PAYLOAD];
    frame[..4].copy_from_slice(&(PAYLOAD as u32).to_le_bytes());
    let mut back = vec![0u8; frame.len()];
    let step = async {
        let mut sock = TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        for i in 0..ROUND_TRIPS {
            frame[4] = i as u8;
            sock.write_all(&frame).await?;
            sock.read_exact(&mut back).await?;
            assert_eq!(back, frame, "echo mismatch");
        }
        sock.shutdown().await?;
        // Wait for the server to close, i.e. to have returned its buffers.
        let mut byte = [0u8; 1];
        assert_eq!(sock.read(&mut byte).await?, 0);
        io::Result::Ok(())
    };
    tokio::time::timeout(STEP, step).await.unwrap().unwrap();
}

fn bench_echo(c: &mut Criterion) {
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for (group, size) in [("echo_buf16KiB", 16 << 10), ("echo_buf256KiB", 256 << 10)] {
        let mut g = c.benchmark_group(group);
        g.sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        for pooled in [false, true] {
            let server = EchoServer::start(Buffers::new(size, pooled));
            let addr = server.addr;
            let name = if pooled { "pooled" } else { "alloc" };
            g.bench_function(BenchmarkId::new(name, param()), |b| {
                b.iter_custom(|iters| {
                    measure(|| {
                        client.block_on(async {
                            for _ in 0..iters {
                                let tasks: Vec<_> = (0..CLIENTS)
                                    .map(|id| tokio::spawn(echo_client(addr, id)))
                                    .collect();
                                for t in tasks {
                                    t.await.unwrap();
                                }
                            }
                        })
                    })
                })
            });
            server.stop();
        }
        g.finish();
    }
}

// ---------------------------------------------------------------------------------------------
// JSON encoding on rayon

const RECORDS: usize = 4096;
const PRESIZE: usize = 2048;

#[derive(Serialize)]
struct Event {
    ts: u64,
    kind: &'static str,
    value: i64,
}

#[derive(Serialize)]
struct Record {
    id: u64,
    name: String,
    email: String,
    active: bool,
    score: f64,
    tags: Vec<String>,
    events: Vec<Event>,
    note: Option<String>,
}

fn make_records() -> Vec<Record> {
    let mut x = 0x5EED_1234_ABCD_0001u64;
    let mut next = move |n: u64| {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    };
    let word = |next: &mut dyn FnMut(u64) -> u64, min: u64, max: u64| -> String {
        let len = min + next(max - min + 1);
        (0..len).map(|_| (b'a' + next(26) as u8) as char).collect()
    };
    (0..RECORDS as u64)
        .map(|id| Record {
            id,
            name: word(&mut next, 3, 20),
            email: format!("{}@example.com", word(&mut next, 4, 10)),
            active: next(3) != 0,
            score: next(1_000_000) as f64 / 7.0,
            tags: (0..next(6)).map(|_| word(&mut next, 2, 10)).collect(),
            events: (0..next(16))
                .map(|_| Event {
                    ts: 1_700_000_000_000 + next(1 << 32),
                    kind: ["login", "view", "purchase", "error \"x\"\n"][next(4) as usize],
                    value: next(1 << 40) as i64 - (1 << 39),
                })
                .collect(),
            note: (next(5) == 0).then(|| word(&mut next, 20, 200)),
        })
        .collect()
}

static JSON_BUFS: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(PRESIZE))
    .reset(Vec::clear)
    .keep_if(|v| v.capacity() <= 4 << 20);

fn write_batch(out: &mut Vec<u8>, recs: &[Record]) {
    for (i, rec) in recs.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        serde_json::to_writer(&mut *out, rec).unwrap();
    }
}

fn digest(b: &[u8]) -> u64 {
    b.len() as u64 ^ u64::from(b[b.len() / 2])
}

fn encode(mode: &str, recs: &[Record]) -> u64 {
    match mode {
        "fresh" if recs.len() == 1 => digest(&serde_json::to_vec(&recs[0]).unwrap()),
        "fresh" => {
            let mut v = Vec::new();
            write_batch(&mut v, recs);
            digest(&v)
        }
        "presized" => {
            let mut v = Vec::with_capacity(PRESIZE * recs.len());
            write_batch(&mut v, recs);
            digest(&v)
        }
        _ => {
            let mut v = JSON_BUFS.get();
            write_batch(&mut v, recs);
            digest(&v)
        }
    }
}

fn bench_json(c: &mut Criterion) {
    let records = make_records();
    for (group, batch) in [("json_record", 1), ("json_batch256", 256)] {
        let mut g = c.benchmark_group(group);
        g.sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        let mut expected = None;
        for mode in ["fresh", "presized", "pooled"] {
            let run = || -> u64 {
                records
                    .par_chunks(batch)
                    .map(|r| encode(mode, r))
                    .reduce(|| 0, u64::wrapping_add)
            };
            let sum = run();
            assert_eq!(
                *expected.get_or_insert(sum),
                sum,
                "{mode} encodes differently"
            );
            g.bench_function(BenchmarkId::new(mode, param()), |b| {
                b.iter_custom(|iters| {
                    measure(|| {
                        for _ in 0..iters {
                            std::hint::black_box(run());
                        }
                    })
                })
            });
        }
        g.finish();
    }
}

fn setup(_: &mut Criterion) {
    check_alloc_env();
    cpu_clock();
    // Cleanup cycles run on their default period (5 s), as in a program that sets nothing.
}

criterion_group!(benches, setup, bench_echo, bench_json);
criterion_main!(benches);
