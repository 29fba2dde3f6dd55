//! A tokio TCP echo server whose per-connection buffers come from a pool, with a built-in load
//! generator, as goim, WuKongIM and twemproxy do with their connection buffers.
//!
//! Each accepted connection takes a read buffer (a zeroed `Box<[u8]>`) and a write buffer
//! (a `Vec<u8>`) from two `static` pools and holds them across `.await` points until the peer
//! closes; dropping the guards returns them. With `--alloc`, the same run allocates both buffers
//! per connection instead, so the two modes differ only in where the buffers come from.
//!
//! The load generator runs `--clients` tasks on a separate runtime. Each does `--requests`
//! request/response round trips of `--size` payload bytes, reconnecting every `--per-conn`
//! requests (short-lived connections are where per-connection buffers are allocated most often).
//! Every echo is compared with what was sent; any mismatch or I/O error makes the exit status 1,
//! and reaching the overall `--deadline` makes it 2.
//!
//! ```text
//! cargo run --release --example echo_server -- --short            # a few seconds, for CI
//! cargo run --release --example echo_server -- --alloc            # plain allocation, same shape
//! cargo run --release --example echo_server -- --compare --buf 262144
//! cargo run --release --example echo_server -- --help
//! ```
//!
//! What to expect, measured on a shared 2-core VM with glibc's malloc (medians of interleaved
//! runs; `CPU` is the process's CPU time per request, server and load generator together):
//!
//! * 16 KiB buffers, 20 requests per connection (the defaults): no measurable difference
//!   (pooled/alloc 1.02–1.06x in requests/s, 0.97–0.99x in CPU). Accepting and closing a
//!   connection costs far more than two allocations.
//! * 256 KiB buffers, one request per connection: pooled 2.8–2.9x the requests/s, 0.35x the
//!   CPU, half the peak RSS (15 against 31–34 MiB). glibc hands the freed blocks back to the
//!   kernel and `calloc` faults them in and zeroes them again on every connection (37 page faults
//!   per connection, against almost none pooled). mimalloc and jemalloc avoid most of that cost:
//!   see `benches/real.rs`.
//!
//! Everything runs on 127.0.0.1 with an ephemeral port. Peak RSS is `VmHWM` from
//! `/proc/self/status` (Linux only); `--compare` resets it between runs through
//! `/proc/self/clear_refs`.

#[path = "support/cpu_time.rs"]
mod cpu_time;

use cpu_time::process_cpu_time;
use reuse_pool::{Pool, Pooled};
use std::io;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Size of each connection's read and write buffer, set once from `--buf` before any pool use.
static BUF_SIZE: AtomicUsize = AtomicUsize::new(16 << 10);

fn buf_size() -> usize {
    BUF_SIZE.load(Ordering::Relaxed)
}

/// Read buffers are zeroed once, when created; a pooled one is reused as it is, since every
/// byte the server looks at was written by `read` on the current connection first.
fn new_read_buf() -> Box<[u8]> {
    vec![0u8; buf_size()].into_boxed_slice()
}

fn new_write_buf() -> Vec<u8> {
    Vec::with_capacity(buf_size())
}

static READ_BUFS: Pool<Box<[u8]>> = Pool::new(new_read_buf).keep_if(|b| b.len() == buf_size());

static WRITE_BUFS: Pool<Vec<u8>> = Pool::new(new_write_buf)
    .reset(Vec::clear)
    // A write buffer that grew for a burst of pipelined replies is not kept (Go issue 23199).
    .keep_if(|v| v.capacity() <= 4 * buf_size());

/// A buffer from a pool, or one allocated for this connection alone (`--alloc`).
enum Lease<T: Send + 'static> {
    Pooled(Pooled<'static, T>),
    Owned(T),
}

impl<T: Send + 'static> Lease<T> {
    fn new(pool: &'static Pool<T>, create: fn() -> T, pooled: bool) -> Self {
        if pooled {
            Lease::Pooled(pool.get())
        } else {
            Lease::Owned(create())
        }
    }
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

#[derive(Clone, Debug)]
struct Config {
    clients: usize,
    requests: usize,
    per_conn: usize,
    size: usize,
    buf: usize,
    server_threads: usize,
    client_threads: usize,
    pooled: bool,
    compare: bool,
    rounds: usize,
    deadline: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            clients: 32,
            requests: 2_000,
            per_conn: 20,
            size: 512,
            buf: 16 << 10,
            server_threads: 2,
            client_threads: 2,
            pooled: true,
            compare: false,
            rounds: 3,
            deadline: Duration::from_secs(120),
        }
    }
}

const USAGE: &str = "\
usage: echo_server [options]
  --clients N         concurrent client tasks (default 32)
  --requests N        round trips per client (default 2000)
  --per-conn N        round trips per connection before reconnecting (default 20)
  --size BYTES        payload bytes per request (default 512)
  --buf BYTES         per-connection read and write buffer size (default 16384)
  --server-threads N  server runtime worker threads (default 2)
  --client-threads N  client runtime worker threads (default 2)
  --alloc             allocate buffers per connection instead of pooling them
  --compare           run plain allocation and pooled alternately and print ratios
  --rounds N          runs per mode with --compare (default 3)
  --deadline SECS     stop everything after this long (default 120)
  --short             a few seconds, for CI: 8 clients x 1000 requests, both modes once
                      (only plain allocation with --alloc), deadline 30 s";

fn parse_args() -> Result<Config, String> {
    let mut cfg = Config::default();
    // `--short` sets the base that the other flags then adjust, wherever it appears.
    if std::env::args().any(|a| a == "--short") {
        // Both modes once each (only plain allocation with --alloc), so that CI checks the
        // echoes of both paths.
        cfg.clients = 8;
        cfg.requests = 1_000;
        cfg.per_conn = 10;
        cfg.compare = true;
        cfg.rounds = 1;
        cfg.deadline = Duration::from_secs(30);
    }
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            let v = args.next().ok_or_else(|| format!("{name} needs a value"))?;
            v.parse::<usize>().map_err(|e| format!("{name} {v}: {e}"))
        };
        match arg.as_str() {
            "--clients" => cfg.clients = num("--clients")?,
            "--requests" => cfg.requests = num("--requests")?,
            "--per-conn" => cfg.per_conn = num("--per-conn")?,
            "--size" => cfg.size = num("--size")?,
            "--buf" => cfg.buf = num("--buf")?,
            "--server-threads" => cfg.server_threads = num("--server-threads")?,
            "--client-threads" => cfg.client_threads = num("--client-threads")?,
            "--rounds" => cfg.rounds = num("--rounds")?,
            "--deadline" => cfg.deadline = Duration::from_secs(num("--deadline")? as u64),
            "--alloc" => {
                cfg.pooled = false;
                cfg.compare = false;
            }
            "--compare" => cfg.compare = true,
            "--short" => {}
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    for (name, v) in [
        ("--clients", cfg.clients),
        ("--requests", cfg.requests),
        ("--per-conn", cfg.per_conn),
        ("--server-threads", cfg.server_threads),
        ("--client-threads", cfg.client_threads),
        ("--rounds", cfg.rounds),
    ] {
        if v == 0 {
            return Err(format!("{name} must be at least 1"));
        }
    }
    if cfg.size > u32::MAX as usize - 4 {
        return Err("--size is too large".into());
    }
    // A frame (4-byte length + payload) must fit in the read buffer.
    cfg.buf = cfg.buf.max(cfg.size + 4);
    Ok(cfg)
}

// ---------------------------------------------------------------------------------------------
// Server

/// How long a connection may stay silent before the server gives up on it.
const IDLE: Duration = Duration::from_secs(10);

async fn serve(mut sock: TcpStream, pooled: bool) -> io::Result<()> {
    sock.set_nodelay(true)?;
    // Held across every `.await` below; `Pooled` is `Send`, so the task can move between threads.
    let mut rbuf = Lease::new(&READ_BUFS, new_read_buf, pooled);
    let mut wbuf = Lease::new(&WRITE_BUFS, new_write_buf, pooled);
    wbuf.clear();
    let mut filled = 0;
    // Bounded: every pass reads at least one byte or returns, and a read waits at most IDLE.
    loop {
        let n = tokio::time::timeout(IDLE, sock.read(&mut rbuf[filled..]))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "idle connection"))??;
        if n == 0 {
            return if filled == 0 {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "partial frame",
                ))
            };
        }
        filled += n;
        let mut start = 0;
        while filled - start >= 4 {
            let len = u32::from_le_bytes(rbuf[start..start + 4].try_into().unwrap()) as usize;
            if 4 + len > rbuf.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "frame exceeds buffer",
                ));
            }
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

async fn accept_loop(listener: TcpListener, pooled: bool, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((sock, _)) => {
                    tokio::spawn(async move {
                        if let Err(e) = serve(sock, pooled).await {
                            eprintln!("server: connection error: {e}");
                        }
                    });
                }
                Err(e) => eprintln!("server: accept: {e}"),
            },
            _ = stop.changed() => return,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Load generator

#[derive(Default)]
struct ClientResult {
    latencies_ns: Vec<u64>,
    connections: u64,
    mismatches: u64,
    errors: u64,
    hit_deadline: bool,
}

/// The payload a client sends: a pattern of its own, with the request number in front.
fn pattern(client: usize, size: usize) -> Vec<u8> {
    let mut x = (client as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut frame = Vec::with_capacity(4 + size);
    frame.extend_from_slice(&(size as u32).to_le_bytes());
    for _ in 0..size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        frame.push(x as u8);
    }
    frame
}

async fn client(id: usize, addr: SocketAddr, cfg: Arc<Config>, deadline: Instant) -> ClientResult {
    let deadline = tokio::time::Instant::from_std(deadline);
    let mut res = ClientResult {
        latencies_ns: Vec::with_capacity(cfg.requests),
        ..ClientResult::default()
    };
    let mut send = pattern(id, cfg.size);
    let mut recv = vec![0u8; send.len()];
    let stamp_len = cfg.size.min(8);
    let mut done = 0;
    // Bounded by count (`requests`) and by time (`deadline` on every await).
    while done < cfg.requests {
        let conn = tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await;
        let mut sock = match conn {
            Err(_) => {
                res.hit_deadline = true;
                break;
            }
            Ok(Err(e)) => {
                eprintln!("client {id}: connect: {e}");
                res.errors += 1;
                break;
            }
            Ok(Ok(s)) => s,
        };
        res.connections += 1;
        if sock.set_nodelay(true).is_err() {
            res.errors += 1;
        }
        let batch = cfg.per_conn.min(cfg.requests - done);
        for _ in 0..batch {
            let seq = (done as u64).to_le_bytes();
            send[4..4 + stamp_len].copy_from_slice(&seq[..stamp_len]);
            let t = Instant::now();
            let round_trip = async {
                sock.write_all(&send).await?;
                sock.read_exact(&mut recv).await?;
                io::Result::Ok(())
            };
            match tokio::time::timeout_at(deadline, round_trip).await {
                Err(_) => {
                    res.hit_deadline = true;
                    return res;
                }
                Ok(Err(e)) => {
                    eprintln!("client {id}: request {done}: {e}");
                    res.errors += 1;
                    return res;
                }
                Ok(Ok(())) => {}
            }
            res.latencies_ns.push(t.elapsed().as_nanos() as u64);
            if recv != send {
                res.mismatches += 1;
            }
            done += 1;
        }
        // Close our side and wait for the server's EOF, so that the server has returned its
        // buffers before the next connection (and before the run ends).
        let _ = sock.shutdown().await;
        let mut byte = [0u8; 1];
        match tokio::time::timeout_at(deadline, sock.read(&mut byte)).await {
            Err(_) => {
                res.hit_deadline = true;
                return res;
            }
            Ok(Ok(0)) => {}
            Ok(Ok(_)) => res.mismatches += 1,
            Ok(Err(_)) => res.errors += 1,
        }
    }
    res
}

// ---------------------------------------------------------------------------------------------
// One run

struct Report {
    pooled: bool,
    requests: u64,
    connections: u64,
    elapsed: Duration,
    /// Process CPU time (server and clients together) during the run.
    cpu: Option<Duration>,
    p50: Duration,
    p99: Duration,
    peak_rss_kib: Option<u64>,
    start_rss_kib: Option<u64>,
    mismatches: u64,
    errors: u64,
    hit_deadline: bool,
}

impl Report {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Process CPU microseconds per request, server and load generator together.
    fn cpu_us_per_request(&self) -> Option<f64> {
        Some(self.cpu?.as_secs_f64() * 1e6 / self.requests.max(1) as f64)
    }
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Resets `VmHWM` to the current RSS (Linux 4.0+); false where that is not possible.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn run(cfg: &Config, pooled: bool, overall: Instant) -> io::Result<Report> {
    let mut cfg = cfg.clone();
    cfg.pooled = pooled;
    let cfg = Arc::new(cfg);
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.server_threads)
        .thread_name("echo-server")
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.client_threads)
        .thread_name("echo-client")
        .enable_all()
        .build()?;

    let listener = server_rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    server_rt.spawn(accept_loop(listener, pooled, stop_rx));

    let start_rss_kib = status_kib("VmRSS:");
    let cpu_start = process_cpu_time();
    let start = Instant::now();
    let results: Vec<ClientResult> = client_rt.block_on(async {
        let tasks: Vec<_> = (0..cfg.clients)
            .map(|id| tokio::spawn(client(id, addr, cfg.clone(), overall)))
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await.unwrap_or_else(|e| {
                eprintln!("client task failed: {e}");
                ClientResult {
                    errors: 1,
                    ..ClientResult::default()
                }
            }));
        }
        out
    });
    let elapsed = start.elapsed();
    let cpu = process_cpu_time()
        .zip(cpu_start)
        .map(|(end, start)| end - start);
    let peak_rss_kib = status_kib("VmHWM:");

    let _ = stop_tx.send(true);
    client_rt.shutdown_timeout(Duration::from_secs(1));
    server_rt.shutdown_timeout(Duration::from_secs(1));

    let mut lat: Vec<u64> = Vec::new();
    let mut r = Report {
        pooled,
        requests: 0,
        connections: 0,
        elapsed,
        cpu,
        p50: Duration::ZERO,
        p99: Duration::ZERO,
        peak_rss_kib,
        start_rss_kib,
        mismatches: 0,
        errors: 0,
        hit_deadline: false,
    };
    for c in results {
        r.requests += c.latencies_ns.len() as u64;
        r.connections += c.connections;
        r.mismatches += c.mismatches;
        r.errors += c.errors;
        r.hit_deadline |= c.hit_deadline;
        lat.extend(c.latencies_ns);
    }
    lat.sort_unstable();
    let pct = |p: f64| -> Duration {
        if lat.is_empty() {
            return Duration::ZERO;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        Duration::from_nanos(lat[i])
    };
    r.p50 = pct(0.50);
    r.p99 = pct(0.99);
    Ok(r)
}

fn mode(pooled: bool) -> &'static str {
    if pooled {
        "pooled"
    } else {
        "alloc"
    }
}

fn mib(kib: Option<u64>) -> String {
    match kib {
        Some(k) => format!("{:.1} MiB", k as f64 / 1024.0),
        None => "n/a".into(),
    }
}

fn print_report(r: &Report) {
    println!(
        "  {:<6} {:>8} requests in {:>7.3} s = {:>9.0} req/s ({} connections, {:.0}/s)",
        mode(r.pooled),
        r.requests,
        r.elapsed.as_secs_f64(),
        r.rps(),
        r.connections,
        r.connections as f64 / r.elapsed.as_secs_f64()
    );
    println!(
        "         latency p50 {:>7.1} us  p99 {:>7.1} us   CPU {} per request   peak RSS {} (RSS at start {})",
        r.p50.as_secs_f64() * 1e6,
        r.p99.as_secs_f64() * 1e6,
        r.cpu_us_per_request()
            .map_or("n/a".into(), |us| format!("{us:.1} us")),
        mib(r.peak_rss_kib),
        mib(r.start_rss_kib)
    );
    if r.mismatches > 0 || r.errors > 0 || r.hit_deadline {
        println!(
            "         PROBLEMS: {} mismatched echoes, {} I/O errors{}",
            r.mismatches,
            r.errors,
            if r.hit_deadline {
                ", stopped at the deadline"
            } else {
                ""
            }
        );
    }
}

fn print_pool_stats() {
    for (name, s) in [
        ("read bufs", READ_BUFS.stats()),
        ("write bufs", WRITE_BUFS.stats()),
    ] {
        println!(
            "  pool {name:<10}: {} gets = {} hits + {} steals + {} victim + {} creates; \
             {} puts, {} drops; reuse {:.2}%; cleanup cycles {}",
            s.gets(),
            s.hits,
            s.steals,
            s.victim_hits,
            s.misses,
            s.puts,
            s.drops,
            s.reuse_ratio() * 100.0,
            s.cycles
        );
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("echo_server: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if msg.is_empty() { 0 } else { 64 });
        }
    };
    BUF_SIZE.store(cfg.buf, Ordering::Relaxed);
    let overall = Instant::now() + cfg.deadline;

    println!(
        "echo_server: {} clients x {} requests ({} per connection), {} B payload, {} B buffers, \
         {} server + {} client threads",
        cfg.clients,
        cfg.requests,
        cfg.per_conn,
        cfg.size,
        cfg.buf,
        cfg.server_threads,
        cfg.client_threads
    );

    let modes: Vec<bool> = if cfg.compare {
        (0..cfg.rounds).flat_map(|_| [false, true]).collect()
    } else {
        vec![cfg.pooled]
    };
    let mut reports = Vec::new();
    for pooled in modes {
        if Instant::now() >= overall {
            eprintln!("echo_server: deadline reached before all runs started");
            return ExitCode::from(2);
        }
        reset_peak_rss();
        let r = match run(&cfg, pooled, overall) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("echo_server: {e}");
                return ExitCode::FAILURE;
            }
        };
        print_report(&r);
        reports.push(r);
    }
    print_pool_stats();

    if cfg.compare {
        let rps = |p: bool| {
            median(
                reports
                    .iter()
                    .filter(|r| r.pooled == p)
                    .map(Report::rps)
                    .collect(),
            )
        };
        let lat = |p: bool, f: fn(&Report) -> Duration| {
            median(
                reports
                    .iter()
                    .filter(|r| r.pooled == p)
                    .map(|r| f(r).as_secs_f64() * 1e6)
                    .collect(),
            )
        };
        let (a, p) = (rps(false), rps(true));
        if cfg.rounds < 3 {
            println!("  (fewer than 3 runs per mode: the ratio below is noise, not a measurement)");
        }
        println!(
            "  median of {} runs each: alloc {:.0} req/s, pooled {:.0} req/s: pooled/alloc = {:.3}",
            cfg.rounds,
            a,
            p,
            p / a
        );
        println!(
            "  median p50 alloc {:.1} us, pooled {:.1} us; p99 alloc {:.1} us, pooled {:.1} us",
            lat(false, |r| r.p50),
            lat(true, |r| r.p50),
            lat(false, |r| r.p99),
            lat(true, |r| r.p99)
        );
        let cpu = |p: bool| -> Option<f64> {
            let v: Option<Vec<f64>> = reports
                .iter()
                .filter(|r| r.pooled == p)
                .map(Report::cpu_us_per_request)
                .collect();
            Some(median(v?))
        };
        if let (Some(a), Some(p)) = (cpu(false), cpu(true)) {
            println!(
                "  median CPU per request (server + clients): alloc {a:.1} us, pooled {p:.1} us: \
                 pooled/alloc = {:.3}",
                p / a
            );
        }
    }

    let mismatches: u64 = reports.iter().map(|r| r.mismatches).sum();
    let errors: u64 = reports.iter().map(|r| r.errors).sum();
    if mismatches > 0 || errors > 0 {
        eprintln!("echo_server: FAILED: {mismatches} mismatched echoes, {errors} I/O errors");
        return ExitCode::FAILURE;
    }
    if reports.iter().any(|r| r.hit_deadline) {
        eprintln!(
            "echo_server: FAILED: the deadline stopped the run before every request was done"
        );
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
