//! Multi-threaded stress test with exact drop accounting, for the sanitizer jobs (`ci/san.sh`).
//!
//! ```text
//! cargo run --release --example stress -- [SECONDS] [THREADS]     (defaults: 3 s, 4 threads)
//! ```
//!
//! Worker threads hammer three pools at once with every operation of the API — `get` (guards
//! held for a while, dropped on this or another thread), `take`/`put`, `try_take`, `discard`,
//! `detach`, `get_owned` — while cleanup cycles run by hand and from the automatic driver,
//! short-lived threads come and go, and per-thread pools are created and dropped.
//!
//! Every object records its life in a global table: created → held ⇄ cached → dropped. Any other
//! transition is an error: an object handed to two holders, handed out after it was dropped,
//! dropped twice, or returned by a thread that did not hold it. Each holder also stamps the
//! object and checks the stamp before returning it, which catches two threads using one object.
//! At the end, after two cleanup cycles and the drop of every pool, every object created must
//! have been dropped exactly once. The process exits with status 1 on any error.

#[path = "support/rng.rs"]
mod rng;

use reuse_pool::{cleanup, set_cleanup_interval, Pool, Pooled, PooledOwned};
use rng::Rng;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Most objects one run may create (each has one byte of state in `LIFE`); the workers stop early
/// when 90% are used.
const MAX_OBJECTS: usize = 1 << 24;

const NEVER: u8 = 0;
const HELD: u8 = 1;
const CACHED: u8 = 2;
const DROPPED: u8 = 3;

/// The state of every object, by id.
///
/// Relaxed atomics on purpose: the bookkeeping must not add happens-before edges between the
/// threads, or it would hide from ThreadSanitizer a hand-off that the pool fails to order. The
/// read-modify-writes still catch every wrong transition.
static LIFE: [AtomicU8; MAX_OBJECTS] = [const { AtomicU8::new(NEVER) }; MAX_OBJECTS];
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static ERRORS: AtomicU64 = AtomicU64::new(0);
static OPS: AtomicU64 = AtomicU64::new(0);
static FULL: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The id of the object `Obj::new` created last on this thread, so that the caller of `get`
    /// can tell a fresh object from a cached one.
    static FRESH: Cell<Option<u64>> = const { Cell::new(None) };
}

fn error(msg: String) {
    if ERRORS.fetch_add(1, Relaxed) < 20 {
        eprintln!("stress: ERROR: {msg}");
    }
}

fn name(state: u8) -> &'static str {
    match state {
        NEVER => "never created",
        HELD => "held",
        CACHED => "cached",
        DROPPED => "dropped",
        _ => "?",
    }
}

/// Moves object `id` to state `to`; anything but a move from one of `from` is an error.
fn transition(id: u64, from: &[u8], to: u8, what: &str) {
    let prev = LIFE[id as usize].swap(to, Relaxed);
    if !from.contains(&prev) {
        error(format!("object {id}: {what} while {}", name(prev)));
    }
}

/// A pooled object that checks its own life.
struct Obj {
    id: u64,
    /// The holder's stamp, checked before it gives the object back: plain data, so that
    /// ThreadSanitizer sees two holders as a data race.
    stamp: u64,
    data: Vec<u8>,
}

impl Obj {
    fn new() -> Obj {
        let id = NEXT_ID.fetch_add(1, Relaxed);
        if id as usize >= MAX_OBJECTS * 9 / 10 {
            FULL.store(true, Relaxed);
        }
        assert!(
            (id as usize) < MAX_OBJECTS,
            "stress: more than {MAX_OBJECTS} objects"
        );
        transition(id, &[NEVER], HELD, "created");
        FRESH.with(|f| f.set(Some(id)));
        Obj {
            id,
            stamp: 0,
            data: Vec::with_capacity(64),
        }
    }

    /// The object came out of a pool (fresh from `create`, or cached): it is ours now.
    fn hold(&mut self, stamp: u64) {
        if FRESH.with(Cell::take) != Some(self.id) {
            transition(self.id, &[CACHED], HELD, "handed out");
        }
        self.stamp = stamp;
        self.data.clear();
        self.data.extend_from_slice(&stamp.to_le_bytes());
    }

    /// The holder is done with it: its stamp must still be there.
    fn check(&self, stamp: u64) {
        if self.stamp != stamp || self.data.get(..8) != Some(&stamp.to_le_bytes()[..]) {
            error(format!(
                "object {}: another thread wrote it while it was held",
                self.id
            ));
        }
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        transition(self.id, &[HELD, CACHED], DROPPED, "dropped");
    }
}

/// Every pool's `reset`: runs on every return, so it marks the object cached.
fn reset(o: &mut Obj) {
    transition(o.id, &[HELD], CACHED, "returned");
    o.data.clear();
}

/// Some returns are refused (exercises the `keep_if` path: the pool drops them).
fn keep(o: &Obj) -> bool {
    o.id % 17 != 0
}

fn fresh_pool(bound: usize) -> Pool<Obj> {
    Pool::new(Obj::new).reset(reset).max_per_thread(bound)
}

static SHARED: Pool<Obj> = Pool::new(Obj::new).reset(reset).keep_if(keep);

/// One worker: random operations until `deadline`.
fn worker(
    me: u64,
    deadline: Instant,
    owned: Arc<Pool<Obj>>,
    to_next: mpsc::Sender<PooledOwned<Obj>>,
    from_prev: mpsc::Receiver<PooledOwned<Obj>>,
) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (me + 1).wrapping_mul(0x1234_5678_9abc_def1));
    let mut stamp = me << 40;
    let mut held: Vec<(Pooled<'static, Obj>, u64)> = Vec::new();
    let mut ops = 0u64;
    // A pool of this thread's own, dropped with what it caches and recreated now and then.
    let mut mine = fresh_pool(1 + (me as usize % 40));
    while Instant::now() < deadline && !FULL.load(Relaxed) {
        for _ in 0..64 {
            stamp += 1;
            ops += 1;
            match rng.below(100) {
                0..=29 => {
                    let mut g = SHARED.get();
                    g.hold(stamp);
                    if rng.below(4) == 0 && held.len() < 40 {
                        held.push((g, stamp));
                    } else {
                        g.check(stamp);
                    }
                }
                30..=39 => {
                    if let Some((g, s)) = held.pop() {
                        g.check(s);
                    }
                }
                40..=49 => {
                    let mut o = SHARED.take();
                    o.hold(stamp);
                    o.check(stamp);
                    SHARED.put(o);
                }
                50..=54 => {
                    if let Some(mut o) = SHARED.try_take() {
                        o.hold(stamp);
                        o.check(stamp);
                        drop(o); // out of the pool for good: dropped here
                    }
                }
                55..=59 => {
                    let mut g = SHARED.get();
                    g.hold(stamp);
                    g.check(stamp);
                    if rng.below(2) == 0 {
                        Pooled::discard(g);
                    } else {
                        drop(Pooled::detach(g));
                    }
                }
                60..=69 => {
                    // Cross-thread return: the next worker drops this guard.
                    let mut g = owned.get_owned();
                    g.hold(stamp);
                    g.check(stamp);
                    if let Err(mpsc::SendError(g)) = to_next.send(g) {
                        drop(g);
                    }
                }
                70..=79 => {
                    while let Ok(g) = from_prev.try_recv() {
                        drop(g); // returns to this thread's cache
                    }
                    let mut o = owned.take();
                    o.hold(stamp);
                    o.check(stamp);
                    owned.put(o);
                }
                80..=89 => {
                    let mut o = mine.take();
                    o.hold(stamp);
                    o.check(stamp);
                    mine.put(o);
                }
                90..=93 => {
                    // Drop this thread's pool with whatever it caches; start a new one.
                    mine = fresh_pool(1 + rng.below(40) as usize);
                }
                94..=96 => {
                    // A short-lived thread that leaves objects in its cache and exits.
                    let n = rng.below(20);
                    let s = stamp;
                    thread::spawn(move || {
                        let objs: Vec<(Obj, u64)> = (0..n)
                            .map(|i| {
                                let mut o = SHARED.take();
                                o.hold(s + i);
                                (o, s + i)
                            })
                            .collect();
                        for (o, s) in objs {
                            o.check(s);
                            SHARED.put(o);
                        }
                    })
                    .join()
                    .unwrap();
                    stamp += n;
                }
                _ => cleanup(),
            }
        }
    }
    for (g, s) in held {
        g.check(s);
    }
    while let Ok(g) = from_prev.try_recv() {
        drop(g);
    }
    OPS.fetch_add(ops, Relaxed);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: f64 = args.next().map_or(3.0, |s| s.parse().expect("SECONDS"));
    let threads: u64 = args.next().map_or(4, |s| s.parse().expect("THREADS"));
    // Automatic cycles too, often, on top of the ones the workers run.
    set_cleanup_interval(Some(Duration::from_millis(7)));

    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let owned = Arc::new(fresh_pool(24));
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..threads).map(|_| mpsc::channel()).unzip();
    let mut rxs: Vec<Option<_>> = rxs.into_iter().map(Some).collect();
    let barrier = Arc::new(Barrier::new(threads as usize));
    let handles: Vec<_> = (0..threads)
        .map(|me| {
            let to_next = txs[((me + 1) % threads) as usize].clone();
            let from_prev = rxs[me as usize].take().unwrap();
            let owned = owned.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                worker(me, deadline, owned, to_next, from_prev)
            })
        })
        .collect();
    drop(txs);
    for h in handles {
        if h.join().is_err() {
            error("a worker panicked".into());
        }
    }

    // Nothing is held any more: two cycles drop everything cached in the static pool.
    set_cleanup_interval(None);
    cleanup();
    cleanup();
    let owned_stats = owned.stats();
    drop(owned);

    // Every thread that touched an object has been joined: these loads see the final states.
    let created = NEXT_ID.load(Relaxed);
    let mut not_dropped = 0u64;
    for id in 0..created {
        let state = LIFE[id as usize].load(Relaxed);
        if state != DROPPED {
            not_dropped += 1;
            if not_dropped <= 5 {
                error(format!(
                    "object {id} was never dropped: still {}",
                    name(state)
                ));
            }
        }
    }
    let errors = ERRORS.load(Relaxed);
    let s = SHARED.stats();
    println!(
        "stress: {threads} threads, {:.1} s, {} operations, {created} objects created, \
         {not_dropped} not dropped, {errors} errors; shared pool {s:?}; owned pool {owned_stats:?}",
        start.elapsed().as_secs_f64(),
        OPS.load(Relaxed),
    );
    if errors != 0 {
        std::process::exit(1);
    }
}
