//! The single-thread hit, rebuilt bottom-up one layer at a time.
//!
//! Every variant runs the same work `N` times in its own `#[inline(never)]` loop: take a
//! `Vec<u8>` of capacity 4096, write 64 bytes into it, clear it, give it back. `black_box` takes
//! the `Vec` itself, as `examples/hot_path.rs` does, so the loop stores and reloads it through a
//! stack slot every iteration. `W` is the work alone, on one `Vec` that the loop keeps. The
//! layers, each adding one thing to the one before:
//!
//! * `L0`  a `thread_local!` `RefCell<Vec<Vec<u8>>>` free list (lazily initialised): the
//!   hand-rolled pool that a user compares with. `L0a` the same `const`-initialised; `L0b` an
//!   `UnsafeCell` instead of the `RefCell` (no borrow flag, still a TLS destructor); `L0c` the
//!   same without a destructor (`ManuallyDrop`), a plain TLS access.
//! * `L1`  `L0c` plus the read of a `const` thread-local `Cell<usize>` thread index and its bounds
//!   check, on the take and on the return (`thread_id::index_or_huge`).
//! * `L2`  the free list moves into a per-thread cache found through a pool's table: a load of the
//!   pool's table pointer, then of `[AtomicPtr<Local>; 64][index]` (`Locals::get_direct`).
//! * `L3`  plus the owner window around the pop and around the push (`Local::enter`/`leave`).
//! * `L4`  the magazine laid out as the crate's `Hot` inside `CachePadded`, with `set_len` and
//!   `ptr::read`/`write`, the object written into a `MaybeUninit` (`Local::pop_fast_into` and
//!   `push_fast_from` as they were before the crate moved objects word by word).
//! * `L5`  plus the owner-only `hits`/`puts` counters (plain load and store).
//! * `L6`  the crate: `take`/`put` on a `static Pool` with `reset(Vec::clear)`; `L6n` without
//!   `reset` (the loop clears, inline).
//! * `L7`  the crate with the guard, dropped at the end of its scope; `L7d` dropped by `drop(g)`
//!   (which moves the guard first); `L7n` without `reset`.
//!
//! `L0w` and `L5w` are `L0c` and `L5` with the pop reading the object's three words with three
//! 8-byte loads instead of the 16- and 8-byte loads that the compiler emits for `ptr::read`, as
//! the crate's `words::read_into` does: the object is read back a few instructions after the
//! previous return wrote it, and a load that spans two earlier stores cannot take its data from
//! the store buffer. The hypotheses this harness also tested (4 KiB aliasing, alignment of the
//! hot line, a private slot, the `reset` call path, other word-by-word moves, a stack sweep),
//! what they found and what the crate took from them are in `docs/PERFORMANCE.md`, "What a hit
//! costs".
//!
//! The process pins itself to CPU 0 (Linux); variants are interleaved round-robin, the order
//! rotated every round, and each line reports the median over the rounds.
//!
//! ```text
//! cargo bench --bench hit_layers
//! HIT_LAYERS_ITERS=20000000 HIT_LAYERS_SAMPLES=15 cargo bench --bench hit_layers
//! ```
//!
//! `HIT_LAYERS_ITERS` sets the iterations per sample (20,000,000), `HIT_LAYERS_SAMPLES` the
//! samples per variant (15), `HIT_LAYERS_CPU` the CPU to pin to. Without `--bench` (as
//! `cargo test --benches` runs it) every variant runs a few thousand times, as a check that each
//! one works.

use crossbeam_deque::Worker;
use crossbeam_utils::CachePadded;
use reuse_pool::Pool;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::hint::black_box;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::ptr;
use std::sync::atomic::{compiler_fence, AtomicBool, AtomicPtr, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Capacity of every buffer.
const CAP: usize = 4096;
/// Objects per magazine (the crate's default bound of 128 is four magazines of 32).
const BATCH: usize = 32;
/// Entries in the flat part of a table, as in `Locals`.
const DIRECT: usize = 64;

/// A loop over `n` iterations.
type LoopFn = fn(u64);

#[cold]
#[inline(never)]
fn fresh() -> Vec<u8> {
    Vec::with_capacity(CAP)
}

#[cold]
#[inline(never)]
fn drop_cold(v: Vec<u8>) {
    drop(v);
}

/// The work of every variant: 64 bytes into the buffer, then `black_box` on the `Vec`.
#[inline(always)]
fn work(v: &mut Vec<u8>, i: u64) {
    v.extend_from_slice(&[i as u8; 64]);
    black_box(v);
}

/// The work alone, on one `Vec` kept by the loop: no pool.
#[inline(never)]
fn w(n: u64) {
    let mut v = fresh();
    for i in 0..n {
        work(&mut v, i);
        v.clear();
    }
}

// ---------------------------------------------------------------------------------------------
// L0, L0a, L0b, L0c, L0w: thread-local free lists.

thread_local! {
    // Lazily initialised on purpose: the free list as it is usually written.
    #[allow(clippy::missing_const_for_thread_local)]
    static L0_FREE: RefCell<Vec<Vec<u8>>> = RefCell::new(Vec::new());
    static L0A_FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    static L0B_FREE: UnsafeCell<Vec<Vec<u8>>> = const { UnsafeCell::new(Vec::new()) };
    // No destructor: the buffers of an exiting thread leak (this program has one thread).
    static L0C_FREE: ManuallyDrop<UnsafeCell<Vec<Vec<u8>>>> =
        const { ManuallyDrop::new(UnsafeCell::new(Vec::new())) };
    /// The thread's index plus one, as `thread_id::THREAD`.
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// The thread's list in `L0c`.
///
/// # Safety
///
/// No other reference to the list is alive while `f` runs.
#[inline(always)]
unsafe fn with_l0c<T>(f: impl FnOnce(&mut Vec<Vec<u8>>) -> T) -> T {
    // SAFETY: forwarded from the caller.
    L0C_FREE.with(|l| f(unsafe { &mut *l.get() }))
}

/// Moves the `Vec` at `src` out as three 8-byte loads (volatile, so that the compiler cannot merge
/// them into wider ones).
///
/// # Safety
///
/// `src` points to a `Vec<u8>` that the caller owns from now on.
#[inline(always)]
unsafe fn read_words(src: *const Vec<u8>) -> Vec<u8> {
    let p = src.cast::<u64>();
    // SAFETY: forwarded from the caller: 24 readable, aligned bytes; `Vec<u8>` is 24 bytes.
    unsafe {
        let w = [
            ptr::read_volatile(p),
            ptr::read_volatile(p.add(1)),
            ptr::read_volatile(p.add(2)),
        ];
        std::mem::transmute::<[u64; 3], Vec<u8>>(w)
    }
}

/// `Vec::pop`, reading the object with `read_words`.
#[inline(always)]
fn pop_words(l: &mut Vec<Vec<u8>>) -> Option<Vec<u8>> {
    let len = l.len();
    if len == 0 {
        return None;
    }
    // SAFETY: slot `len - 1` is initialised; shrinking first hands it over.
    unsafe {
        l.set_len(len - 1);
        Some(read_words(l.as_ptr().add(len - 1)))
    }
}

/// Declares timed loops of `n` hits: each takes a buffer (`take`, bound to `v`), does the work
/// and runs `give` (clear the buffer and give it back, where the loop does).
macro_rules! hit_loops {
    ($($(#[$doc:meta])* $name:ident(|$v:ident| $take:expr) { $($give:tt)* })*) => {$(
        $(#[$doc])*
        #[inline(never)]
        fn $name(n: u64) {
            for i in 0..n {
                let mut $v = $take;
                work(&mut $v, i);
                $($give)*
            }
        }
    )*};
}

hit_loops! {
    l0(|v| L0_FREE.with(|f| f.borrow_mut().pop()).unwrap_or_else(fresh)) {
        v.clear();
        L0_FREE.with(|f| f.borrow_mut().push(v));
    }
    l0a(|v| L0A_FREE.with(|f| f.borrow_mut().pop()).unwrap_or_else(fresh)) {
        v.clear();
        L0A_FREE.with(|f| f.borrow_mut().push(v));
    }
    // SAFETY (both): the only accesses to the thread's list, none re-entrant.
    l0b(|v| L0B_FREE.with(|f| unsafe { &mut *f.get() }.pop()).unwrap_or_else(fresh)) {
        v.clear();
        // SAFETY: as above.
        L0B_FREE.with(|f| unsafe { &mut *f.get() }.push(v));
    }
    // SAFETY (both): the only accesses to the thread's list, none re-entrant.
    l0c(|v| unsafe { with_l0c(|l| l.pop()) }.unwrap_or_else(fresh)) {
        v.clear();
        // SAFETY: as above.
        unsafe { with_l0c(|l| l.push(v)) };
    }
    // SAFETY (both): as in `l0c`.
    l0w(|v| unsafe { with_l0c(pop_words) }.unwrap_or_else(fresh)) {
        v.clear();
        // SAFETY: as above.
        unsafe { with_l0c(|l| l.push(v)) };
    }
}

// ---------------------------------------------------------------------------------------------
// L1: the thread index.

/// `thread_id::index_or_huge`.
#[inline(always)]
fn index_or_huge() -> usize {
    INDEX.with(Cell::get).wrapping_sub(1)
}

#[inline(never)]
fn l1(n: u64) {
    for i in 0..n {
        let v = if index_or_huge() < DIRECT {
            // SAFETY: as in `l0c`.
            unsafe { with_l0c(|l| l.pop()) }
        } else {
            None
        };
        let mut v = v.unwrap_or_else(fresh);
        work(&mut v, i);
        v.clear();
        if index_or_huge() < DIRECT {
            // SAFETY: as in `l0c`.
            unsafe { with_l0c(|l| l.push(v)) };
        } else {
            drop_cold(v);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// L2: a pool's table of per-thread caches.

struct Table<L> {
    direct: [AtomicPtr<L>; DIRECT],
}

/// A pool's handle on its table, as `Engine::fast` and `Tiers::locals` in the crate.
struct Engine<L> {
    fast: AtomicPtr<Table<L>>,
}

impl<L> Engine<L> {
    const fn new() -> Self {
        Engine {
            fast: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The current thread's cache: `Pool::tiers` then `Locals::get_direct`.
    #[inline(always)]
    fn local(&self) -> Option<&L> {
        let table = self.fast.load(Ordering::Acquire);
        if table.is_null() {
            return None;
        }
        // SAFETY: tables are leaked, never freed.
        let table = unsafe { &*table };
        let entry = table.direct.get(index_or_huge())?;
        // SAFETY: caches are leaked, never freed, and not moved while the table points to them.
        unsafe { entry.load(Ordering::Acquire).as_ref() }
    }

    /// Points the current thread's entry at `local` (which must stay alive and in place).
    fn install(&self, local: *mut L) {
        let mut table = self.fast.load(Ordering::Acquire);
        if table.is_null() {
            table = Box::into_raw(Box::new(Table {
                direct: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            }));
            self.fast.store(table, Ordering::Release);
        }
        // SAFETY: leaked above or earlier.
        unsafe { &*table }.direct[index_or_huge()].store(local, Ordering::Release);
    }
}

/// A leaked `CachePadded` holding `value`; returns a pointer to the value.
fn leak_padded<L: 'static>(value: L) -> *mut L {
    let padded: &'static mut CachePadded<L> = Box::leak(Box::new(CachePadded::new(value)));
    &mut **padded as *mut L
}

struct Local2 {
    mag: UnsafeCell<Vec<Vec<u8>>>,
}

static E2: Engine<Local2> = Engine::new();

#[inline(never)]
fn l2(n: u64) {
    for i in 0..n {
        // SAFETY: owner-only access to the thread's own cache, not re-entrant.
        let v = E2.local().and_then(|l| unsafe { &mut *l.mag.get() }.pop());
        let mut v = v.unwrap_or_else(fresh);
        work(&mut v, i);
        v.clear();
        match E2.local() {
            // SAFETY: as above.
            Some(l) => unsafe { &mut *l.mag.get() }.push(v),
            None => drop_cold(v),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// L3: the owner window.

struct Local3 {
    busy: AtomicBool,
    reclaim: AtomicU8,
    mag: UnsafeCell<Vec<Vec<u8>>>,
}

/// `Local::enter`: `busy`, the compiler fence, the test of `reclaim`.
#[inline(always)]
fn enter(busy: &AtomicBool, reclaim: &AtomicU8) -> bool {
    busy.store(true, Ordering::Relaxed);
    compiler_fence(Ordering::SeqCst);
    let seen = reclaim.load(Ordering::Acquire);
    if seen != 0 {
        return enter_cold(busy);
    }
    true
}

/// `Local::enter_fenced`, reduced to the bail-out (never taken here).
#[cold]
#[inline(never)]
fn enter_cold(busy: &AtomicBool) -> bool {
    busy.store(false, Ordering::Release);
    false
}

/// `Local::leave`.
#[inline(always)]
fn leave(busy: &AtomicBool) {
    busy.store(false, Ordering::Release);
}

impl Local3 {
    #[inline(always)]
    fn pop(&self) -> Option<Vec<u8>> {
        if !enter(&self.busy, &self.reclaim) {
            return None;
        }
        // SAFETY: inside the owner's window.
        let v = unsafe { &mut *self.mag.get() }.pop();
        leave(&self.busy);
        v
    }

    #[inline(always)]
    fn push(&self, v: Vec<u8>) -> Result<(), Vec<u8>> {
        if !enter(&self.busy, &self.reclaim) {
            return Err(v);
        }
        // SAFETY: inside the owner's window.
        unsafe { &mut *self.mag.get() }.push(v);
        leave(&self.busy);
        Ok(())
    }
}

static E3: Engine<Local3> = Engine::new();

#[inline(never)]
fn l3(n: u64) {
    for i in 0..n {
        let mut v = E3.local().and_then(Local3::pop).unwrap_or_else(fresh);
        work(&mut v, i);
        v.clear();
        let back = match E3.local() {
            Some(l) => l.push(v),
            None => Err(v),
        };
        if let Err(v) = back {
            drop_cold(v);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// L4, L5, L5w: the crate's `Hot`.

#[repr(C)]
struct State {
    mag: Vec<Vec<u8>>,
    worker: Worker<Vec<Vec<u8>>>,
}

/// Laid out as the crate's `Hot` (same fields, same order, same sizes).
#[repr(C)]
struct Hot {
    busy: AtomicBool,
    reclaim: AtomicU8,
    batch: usize,
    hits: AtomicU64,
    puts: AtomicU64,
    state: UnsafeCell<State>,
    spares: UnsafeCell<Vec<Vec<Vec<u8>>>>,
    max_batches: usize,
    cursor: UnsafeCell<usize>,
    slow: Mutex<()>,
    counters: [AtomicU64; 6],
}

impl Hot {
    fn new() -> Self {
        Hot {
            busy: AtomicBool::new(false),
            reclaim: AtomicU8::new(0),
            batch: BATCH,
            hits: AtomicU64::new(0),
            puts: AtomicU64::new(0),
            state: UnsafeCell::new(State {
                mag: Vec::with_capacity(BATCH),
                worker: Worker::new_lifo(),
            }),
            spares: UnsafeCell::new(Vec::new()),
            max_batches: 3,
            cursor: UnsafeCell::new(0),
            slow: Mutex::new(()),
            counters: Default::default(),
        }
    }

    /// `Local::pop_fast_into`; counts the hit if `COUNT`, reads the object's words one by one
    /// if `WORDS`.
    #[inline(always)]
    fn pop_into<const COUNT: bool, const WORDS: bool>(
        &self,
        out: &mut MaybeUninit<Vec<u8>>,
    ) -> bool {
        if !enter(&self.busy, &self.reclaim) {
            return false;
        }
        // SAFETY: inside the owner's window.
        let s = unsafe { &mut *self.state.get() };
        let len = s.mag.len();
        let found = if len == 0 {
            false
        } else {
            // SAFETY: slot `len - 1` is initialised; shrinking first hands it over.
            unsafe {
                s.mag.set_len(len - 1);
                let src = s.mag.as_ptr().add(len - 1);
                out.write(if WORDS {
                    read_words(src)
                } else {
                    ptr::read(src)
                });
            }
            true
        };
        leave(&self.busy);
        if COUNT && found {
            bump(&self.hits);
        }
        found
    }

    /// `Local::push_fast_from`; counts the return if `COUNT`.
    #[inline(always)]
    fn push_from<const COUNT: bool>(&self, slot: &mut ManuallyDrop<Vec<u8>>) -> bool {
        let batch = self.batch;
        if !enter(&self.busy, &self.reclaim) {
            return false;
        }
        // SAFETY: inside the owner's window.
        let s = unsafe { &mut *self.state.get() };
        let len = s.mag.len();
        let pushed = if len >= batch {
            false
        } else {
            // SAFETY: `len < batch <= capacity`; the caller gives `slot` up on `true`.
            unsafe {
                s.mag.as_mut_ptr().add(len).write(ptr::read(&**slot));
                s.mag.set_len(len + 1);
            }
            true
        };
        leave(&self.busy);
        if COUNT && pushed {
            bump(&self.puts);
        }
        pushed
    }
}

/// `sync::bump`: an owner-only counter, plain load and store.
#[inline(always)]
fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// A loop over a `Hot` found through `$engine`: counted hits if `$count`, the pop word by word
/// if `$words`.
macro_rules! hot_loop {
    ($name:ident, $engine:ident, $count:expr, $words:expr) => {
        static $engine: Engine<Hot> = Engine::new();

        #[inline(never)]
        fn $name(n: u64) {
            for i in 0..n {
                let mut out = MaybeUninit::uninit();
                let mut v = match $engine.local() {
                    // SAFETY: `pop_into` returned true, so it wrote `out`.
                    Some(l) if l.pop_into::<{ $count }, { $words }>(&mut out) => unsafe {
                        out.assume_init()
                    },
                    _ => fresh(),
                };
                work(&mut v, i);
                v.clear();
                let mut slot = ManuallyDrop::new(v);
                let pushed = match $engine.local() {
                    Some(l) => l.push_from::<{ $count }>(&mut slot),
                    None => false,
                };
                if !pushed {
                    // SAFETY: not pushed, so the object is still in `slot`, taken once.
                    drop_cold(unsafe { ManuallyDrop::take(&mut slot) });
                }
            }
        }
    };
}

hot_loop!(l4, E4, false, false);
hot_loop!(l5, E5, true, false);
hot_loop!(l5w, E5W, true, true);

// ---------------------------------------------------------------------------------------------
// L6, L7: the crate.

static P6: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(CAP)).reset(Vec::clear);
static P6N: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(CAP));
static P7: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(CAP)).reset(Vec::clear);
static P7D: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(CAP)).reset(Vec::clear);
static P7N: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(CAP));

hit_loops! {
    l6(|v| P6.take()) { P6.put(v); }
    l6n(|v| P6N.take()) {
        v.clear();
        P6N.put(v);
    }
    l7(|g| P7.get()) {}
    /// `l7` with the guard dropped by `drop(g)`, which moves it first.
    l7d(|g| P7D.get()) { drop(g); }
    l7n(|g| P7N.get()) { g.clear(); }
}

// ---------------------------------------------------------------------------------------------
// The driver.

/// Every variant, in the order of the table: its name, its loop, what it adds.
#[rustfmt::skip]
const VARIANTS: &[(&str, LoopFn, &str)] = &[
    ("W", w, "the work alone, one Vec kept by the loop (no pool)"),
    ("L0", l0, "thread_local RefCell<Vec<Vec<u8>>> (lazy)"),
    ("L0a", l0a, "  same, const-initialised"),
    ("L0b", l0b, "  const UnsafeCell (TLS destructor)"),
    ("L0c", l0c, "  const UnsafeCell, no destructor"),
    ("L0w", l0w, "  L0c, pop reads the Vec word by word"),
    ("L1", l1, "L0c + thread index (const TLS Cell) on take and put"),
    ("L2", l2, "+ pool table lookup (fast ptr, [AtomicPtr; 64])"),
    ("L3", l3, "+ owner window (busy, fence, reclaim) x2"),
    ("L4", l4, "+ Hot layout, set_len/ptr::read, MaybeUninit out"),
    ("L5", l5, "+ owner-only hits/puts counters"),
    ("L5w", l5w, "L5, pop reads the Vec word by word"),
    ("L6", l6, "crate take/put, reset(Vec::clear)"),
    ("L6n", l6n, "crate take/put, no reset, clear inline"),
    ("L7", l7, "crate get + guard (scope end), reset(Vec::clear)"),
    ("L7d", l7d, "crate get + drop(g), reset(Vec::clear)"),
    ("L7n", l7n, "crate get + guard (scope end), no reset, clear inline"),
];

/// One timed call, in nanoseconds.
#[inline(never)]
fn timed(f: LoopFn, n: u64) -> f64 {
    let t = Instant::now();
    f(black_box(n));
    t.elapsed().as_nanos() as f64
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let m = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[m]
    } else {
        (xs[m - 1] + xs[m]) / 2.0
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[cfg(target_os = "linux")]
fn pin(cpu: usize) -> bool {
    // SAFETY: `set` is a plain bit set, zeroed, then one CPU added; the call reads it only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn pin(_cpu: usize) -> bool {
    false
}

fn setup() {
    INDEX.with(|c| c.set(1));
    E2.install(leak_padded(Local2 {
        mag: UnsafeCell::new(Vec::with_capacity(BATCH)),
    }));
    E3.install(leak_padded(Local3 {
        busy: AtomicBool::new(false),
        reclaim: AtomicU8::new(0),
        mag: UnsafeCell::new(Vec::with_capacity(BATCH)),
    }));
    for e in [&E4, &E5, &E5W] {
        e.install(leak_padded(Hot::new()));
    }
}

/// Hit counts of the crate's pools: every call but the first of each must be a hit.
fn check_hits() {
    for (name, p) in [
        ("L6", &P6),
        ("L6n", &P6N),
        ("L7", &P7),
        ("L7d", &P7D),
        ("L7n", &P7N),
    ] {
        let s = p.stats();
        assert_eq!(s.misses, 1, "{name}: a get missed ({s:?})");
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (n, samples) = if bench {
        let samples = env_u64("HIT_LAYERS_SAMPLES", 15) as usize;
        (env_u64("HIT_LAYERS_ITERS", 20_000_000), samples)
    } else {
        (10_000, 1)
    };
    reuse_pool::set_cleanup_interval(None);
    let cpu = env_u64("HIT_LAYERS_CPU", 0) as usize;
    let pinned = pin(cpu);
    setup();
    let base = VARIANTS.iter().position(|v| v.0 == "L0").unwrap();

    for v in VARIANTS {
        timed(v.1, n.min(1_000_000)); // warm-up
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(samples); VARIANTS.len()];
    for round in 0..samples {
        for k in 0..VARIANTS.len() {
            let j = (k + round) % VARIANTS.len();
            times[j].push(timed(VARIANTS[j].1, n) / n as f64);
        }
    }
    check_hits();

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    println!(
        "\n## hit_layers: {n} iterations x {samples} samples per variant, interleaved; \
         pinned to CPU {cpu}: {pinned}; membarrier: {}; loadavg {load}\n",
        reuse_pool::uses_asymmetric_fence(),
    );
    println!("| variant | what | median ns | vs L0 | min | max |");
    println!("|---|---|---:|---:|---:|---:|");
    let medians: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    for (k, &(name, _, what)) in VARIANTS.iter().enumerate() {
        let (t, m) = (&times[k], medians[k]);
        let (min, max) = (t[0], t[t.len() - 1]);
        let vs = m / medians[base];
        println!("| {name} | {what} | {m:.2} | {vs:.2} | {min:.2} | {max:.2} |");
    }
}
