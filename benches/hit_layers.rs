//! The single-thread hit, rebuilt bottom-up one layer at a time.
//!
//! Every variant runs the same work `N` times in its own `#[inline(never)]` loop: take a
//! `Vec<u8>` of capacity 4096, write 64 bytes into it, clear it, give it back. `W` is the work
//! alone, on one `Vec` that the loop keeps. The layers, each adding one thing to the one before:
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
//! * `L4`  the magazine as the crate keeps it: a `#[repr(C)]` struct laid out like `Hot` inside
//!   `CachePadded`, `set_len` and `ptr::read`/`write`, the object written into a `MaybeUninit`
//!   (`Local::pop_fast_into`/`push_fast_from` as they were; the crate now moves objects word by
//!   word through `words::read_into`/`move_to`, which `L5w` and `e-both` model).
//! * `L5`  plus the owner-only `hits`/`puts` counters (plain load and store).
//! * `L6`  the crate: `take`/`put` on a `static Pool` with `reset(Vec::clear)`; `L6n` without
//!   `reset` (the loop clears, inline).
//! * `L7`  the crate with the guard, dropped at the end of its scope; `L7d` dropped by `drop(g)`
//!   (which moves the guard first); `L7n` without `reset`.
//!
//! `L0w` and `L5w` are `L0c` and `L5` with the pop reading the object's three words with three
//! 8-byte loads instead of the 16- and 8-byte loads that the compiler emits for `ptr::read` (see
//! `Elem`): the object is read back a few instructions after the previous return wrote it, and a
//! load that spans two earlier stores cannot take its data from the store buffer. Variants ending
//! in `-r` hand `black_box` the buffer's address instead of the `Vec`, so that the `Vec` need not
//! live in a stack slot.
//!
//! Then one hypothesis at a time:
//!
//! * `a…`  (on `L5w`) 4 KiB aliasing: the hot struct at an address whose low 12 bits equal those
//!   of the stack slot of the loop's `Vec` (which `black_box` makes the loop store and reload
//!   every iteration), shifted by -32 (the magazine over the slot), +64, +128 and +2048 bytes.
//! * `b…`  (on `L5w`) the hot line 128-byte aligned against 64-byte aligned only.
//! * `c`   (on `L5`) a one-object private slot in front of the magazine, Go-style.
//! * `d…`  (on `L5`, `dw…` on `L5w`) `reset` called through an `Option<fn(&mut T)>` from an
//!   out-of-line `filter` (as the guard's return still does; `Pool::put` now inlines `filter`
//!   and calls `reset` directly), or out of line with the clear inlined into the called function.
//! * `e…`  (on `L5`) the push copying the object's bytes from the caller's slot, or both the push
//!   and the pop moving it one word at a time.
//!
//! Then a stack sweep: `L0`, `L5`, `L5w`, `L6` and `L7` called below 0 to 4032 extra bytes of
//! stack (steps of 64), which moves the loop's stack slots against every heap address the hit
//! touches; the stack's start is randomised per process (16-byte steps within 8 KiB), so a
//! placement that is slow here shows up as a process that is slow throughout.
//!
//! The process pins itself to CPU 0 (Linux); variants are interleaved round-robin, the order
//! rotated every round, and each line reports the median over the rounds.
//!
//! ```text
//! cargo bench --bench hit_layers
//! HIT_LAYERS_ITERS=20000000 HIT_LAYERS_SAMPLES=15 HIT_LAYERS_SWEEP=1 cargo bench --bench hit_layers
//! ```
//!
//! `HIT_LAYERS_SWEEP=0` skips the sweep, `HIT_LAYERS_SWEEP_ITERS` sets its iterations per sample
//! (2,000,000); `HIT_LAYERS_CPU` picks the CPU to pin to. Without `--bench` (as
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

/// A loop over `n` iterations; returns the address of the stack slot that held the loop's `Vec`
/// in the last iteration.
type LoopFn = fn(u64) -> usize;

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

/// The work of every variant: 64 bytes into the buffer.
///
/// With `R` false (the variants without `-r`, as `examples/hot_path.rs` does it) `black_box`
/// takes the `Vec` itself, which makes it live in a stack slot that the loop stores and reloads
/// every iteration; the slot's address is returned. With `R` true it takes only the buffer's
/// address (returned), so the `Vec` may stay in registers.
#[inline(always)]
fn work<const R: bool>(v: &mut Vec<u8>, i: u64) -> usize {
    v.extend_from_slice(&[i as u8; 64]);
    if R {
        black_box(v.as_mut_ptr()) as usize
    } else {
        black_box(v) as *mut Vec<u8> as usize
    }
}

/// The work alone, on one `Vec` kept by the loop: no pool.
#[inline(never)]
fn w<const R: bool>(n: u64) -> usize {
    let mut at = 0;
    let mut v = fresh();
    for i in 0..n {
        at = work::<R>(&mut v, i);
        v.clear();
    }
    at
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
        fn $name<const R: bool>(n: u64) -> usize {
            let mut at = 0;
            for i in 0..n {
                let mut $v = $take;
                at = work::<R>(&mut $v, i);
                $($give)*
            }
            at
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
fn l1<const R: bool>(n: u64) -> usize {
    let mut at = 0;
    for i in 0..n {
        let v = if index_or_huge() < DIRECT {
            // SAFETY: as in `l0c`.
            unsafe { with_l0c(|l| l.pop()) }
        } else {
            None
        };
        let mut v = v.unwrap_or_else(fresh);
        at = work::<R>(&mut v, i);
        v.clear();
        if index_or_huge() < DIRECT {
            // SAFETY: as in `l0c`.
            unsafe { with_l0c(|l| l.push(v)) };
        } else {
            drop_cold(v);
        }
    }
    at
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
fn l2<const R: bool>(n: u64) -> usize {
    let mut at = 0;
    for i in 0..n {
        // SAFETY: owner-only access to the thread's own cache, not re-entrant.
        let v = E2.local().and_then(|l| unsafe { &mut *l.mag.get() }.pop());
        let mut v = v.unwrap_or_else(fresh);
        at = work::<R>(&mut v, i);
        v.clear();
        match E2.local() {
            // SAFETY: as above.
            Some(l) => unsafe { &mut *l.mag.get() }.push(v),
            None => drop_cold(v),
        }
    }
    at
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
fn l3<const R: bool>(n: u64) -> usize {
    let mut at = 0;
    for i in 0..n {
        let mut v = E3.local().and_then(Local3::pop).unwrap_or_else(fresh);
        at = work::<R>(&mut v, i);
        v.clear();
        let back = match E3.local() {
            Some(l) => l.push(v),
            None => Err(v),
        };
        if let Err(v) = back {
            drop_cold(v);
        }
    }
    at
}

// ---------------------------------------------------------------------------------------------
// L4, L5 and the layout variants: the crate's `Hot`.

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

    /// `Local::pop_fast_into`; counts the hit if `COUNT`.
    #[inline(always)]
    fn pop_into<const COUNT: bool, const E: u8>(&self, out: &mut MaybeUninit<Vec<u8>>) -> bool {
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
                if E == Elem::WORDS || E == Elem::WORDS_BOTH {
                    out.write(read_words(src));
                } else {
                    out.write(ptr::read(src));
                }
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
    fn push_from<const COUNT: bool, const E: u8>(&self, slot: &mut ManuallyDrop<Vec<u8>>) -> bool {
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
                let dst = s.mag.as_mut_ptr().add(len);
                let src: *const Vec<u8> = &**slot;
                if E == Elem::COPY {
                    ptr::copy_nonoverlapping(
                        src.cast::<u8>(),
                        dst.cast::<u8>(),
                        std::mem::size_of::<Vec<u8>>(),
                    );
                } else if E == Elem::WORDS_BOTH {
                    let (p, q) = (src.cast::<u64>(), dst.cast::<u64>());
                    for k in 0..3 {
                        ptr::write_volatile(q.add(k), ptr::read(p.add(k)));
                    }
                } else {
                    dst.write(ptr::read(src));
                }
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

/// How `Hot` moves an object in and out of its magazine.
struct Elem;

impl Elem {
    /// `ptr::read` and `ptr::write`, as the crate does.
    const READ: u8 = 0;
    /// The pop reads the three words of the `Vec` one by one (volatile loads).
    const WORDS: u8 = 1;
    /// The push copies the `Vec`'s 24 bytes from the caller's slot (`copy_nonoverlapping`).
    const COPY: u8 = 2;
    /// Both one word at a time (volatile stores and loads).
    const WORDS_BOTH: u8 = 3;
}

/// `sync::bump`: an owner-only counter, plain load and store.
#[inline(always)]
fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// How a return resets the object in a `hot_loop!`.
#[derive(Clone, Copy)]
enum Reset {
    /// `clear`, inline in the loop.
    Inline,
    /// Through `Cfg::reset` in an out-of-line `filter`, as a guard's return does.
    FnPtr,
    /// An out-of-line function that clears, inlined into it.
    Call,
}

/// A pool's settings: `reset` as the crate keeps it. The atomic makes the static writable, so
/// that the compiler cannot fold `reset` into a direct call (the crate's pools hold atomics too).
struct Cfg {
    reset: Option<fn(&mut Vec<u8>)>,
    filtered: bool,
    written: AtomicBool,
}

static CFG: Cfg = Cfg {
    reset: Some(Vec::<u8>::clear as fn(&mut Vec<u8>)),
    filtered: true,
    written: AtomicBool::new(false),
};

/// `Pool::filter` for `Reset::FnPtr`.
#[inline(never)]
fn filter_fn_ptr(cfg: &Cfg, slot: &mut ManuallyDrop<Vec<u8>>) -> bool {
    if let Some(reset) = &cfg.reset {
        reset(slot);
    }
    true
}

/// `Reset::Call`.
#[inline(never)]
fn filter_call(slot: &mut ManuallyDrop<Vec<u8>>) -> bool {
    slot.clear();
    true
}

/// A loop over a `Hot` found through `$engine`.
macro_rules! hot_loop {
    ($name:ident, $engine:ident, $count:expr, $reset:expr) => {
        hot_loop!($name, $engine, $count, $reset, Elem::READ);
    };
    ($name:ident, $engine:ident, $count:expr, $reset:expr, $elem:expr) => {
        static $engine: Engine<Hot> = Engine::new();

        #[inline(never)]
        fn $name<const R: bool>(n: u64) -> usize {
            let mut at = 0;
            for i in 0..n {
                let mut out = MaybeUninit::uninit();
                let mut v = match $engine.local() {
                    // SAFETY: `pop_into` returned true, so it wrote `out`.
                    Some(l) if l.pop_into::<{ $count }, { $elem }>(&mut out) => unsafe {
                        out.assume_init()
                    },
                    _ => fresh(),
                };
                at = work::<R>(&mut v, i);
                if let Reset::Inline = $reset {
                    v.clear();
                }
                let mut slot = ManuallyDrop::new(v);
                match $reset {
                    Reset::Inline => {}
                    Reset::FnPtr => {
                        if CFG.filtered && !filter_fn_ptr(&CFG, &mut slot) {
                            continue;
                        }
                    }
                    Reset::Call => {
                        if !filter_call(&mut slot) {
                            continue;
                        }
                    }
                }
                let pushed = match $engine.local() {
                    Some(l) => l.push_from::<{ $count }, { $elem }>(&mut slot),
                    None => false,
                };
                if !pushed {
                    // SAFETY: not pushed, so the object is still in `slot`, taken once.
                    drop_cold(unsafe { ManuallyDrop::take(&mut slot) });
                }
            }
            at
        }
    };
}

hot_loop!(l4, E4, false, Reset::Inline);
hot_loop!(l5, E5, true, Reset::Inline);
hot_loop!(d_fn_ptr, ED_FN, true, Reset::FnPtr);
hot_loop!(d_call, ED_CALL, true, Reset::Call);
hot_loop!(dw_fn_ptr, EDW_FN, true, Reset::FnPtr, Elem::WORDS);
hot_loop!(dw_call, EDW_CALL, true, Reset::Call, Elem::WORDS);
// (a) and (b), on `L5w`: placed in `Arena` relative to the loop's stack slot, or at a 128-byte or
// only a 64-byte boundary.
hot_loop!(a_same, EA_SAME, true, Reset::Inline, Elem::WORDS);
hot_loop!(a_mag, EA_MAG, true, Reset::Inline, Elem::WORDS);
hot_loop!(a_64, EA_64, true, Reset::Inline, Elem::WORDS);
hot_loop!(a_128, EA_128, true, Reset::Inline, Elem::WORDS);
hot_loop!(a_2048, EA_2048, true, Reset::Inline, Elem::WORDS);
hot_loop!(b_128, EB_128, true, Reset::Inline, Elem::WORDS);
hot_loop!(b_64, EB_64, true, Reset::Inline, Elem::WORDS);
// (e): how the object moves through the magazine slot that the last return wrote. `l5w` is
// `L5` with the pop reading word by word.
hot_loop!(l5w, E5W, true, Reset::Inline, Elem::WORDS);
hot_loop!(e_copy, EE_COPY, true, Reset::Inline, Elem::COPY);
hot_loop!(e_words_both, EE_BOTH, true, Reset::Inline, Elem::WORDS_BOTH);

// ---------------------------------------------------------------------------------------------
// (c): a Go-style private slot in front of the magazine.

#[repr(C)]
struct HotPrivate {
    busy: AtomicBool,
    reclaim: AtomicU8,
    batch: usize,
    hits: AtomicU64,
    puts: AtomicU64,
    private: UnsafeCell<Option<Vec<u8>>>,
    state: UnsafeCell<State>,
    spares: UnsafeCell<Vec<Vec<Vec<u8>>>>,
    max_batches: usize,
    cursor: UnsafeCell<usize>,
    slow: Mutex<()>,
    counters: [AtomicU64; 6],
}

impl HotPrivate {
    fn new() -> Self {
        let h = Hot::new();
        HotPrivate {
            busy: h.busy,
            reclaim: h.reclaim,
            batch: h.batch,
            hits: h.hits,
            puts: h.puts,
            private: UnsafeCell::new(None),
            state: h.state,
            spares: h.spares,
            max_batches: h.max_batches,
            cursor: h.cursor,
            slow: h.slow,
            counters: h.counters,
        }
    }

    #[inline(always)]
    fn pop_into(&self, out: &mut MaybeUninit<Vec<u8>>) -> bool {
        if !enter(&self.busy, &self.reclaim) {
            return false;
        }
        // SAFETY: inside the owner's window.
        let found = match unsafe { &mut *self.private.get() }.take() {
            Some(v) => {
                out.write(v);
                true
            }
            None => {
                // SAFETY: inside the owner's window.
                let s = unsafe { &mut *self.state.get() };
                let len = s.mag.len();
                if len == 0 {
                    false
                } else {
                    // SAFETY: as in `Hot::pop_into`.
                    unsafe {
                        s.mag.set_len(len - 1);
                        out.write(ptr::read(s.mag.as_ptr().add(len - 1)));
                    }
                    true
                }
            }
        };
        leave(&self.busy);
        if found {
            bump(&self.hits);
        }
        found
    }

    #[inline(always)]
    fn push_from(&self, slot: &mut ManuallyDrop<Vec<u8>>) -> bool {
        let batch = self.batch;
        if !enter(&self.busy, &self.reclaim) {
            return false;
        }
        // SAFETY: inside the owner's window.
        let private = unsafe { &mut *self.private.get() };
        let pushed = if private.is_none() {
            // SAFETY: the caller gives `slot` up on `true`.
            *private = Some(unsafe { ptr::read(&**slot) });
            true
        } else {
            // SAFETY: inside the owner's window.
            let s = unsafe { &mut *self.state.get() };
            let len = s.mag.len();
            if len >= batch {
                false
            } else {
                // SAFETY: as in `Hot::push_from`.
                unsafe {
                    s.mag.as_mut_ptr().add(len).write(ptr::read(&**slot));
                    s.mag.set_len(len + 1);
                }
                true
            }
        };
        leave(&self.busy);
        if pushed {
            bump(&self.puts);
        }
        pushed
    }
}

static EC: Engine<HotPrivate> = Engine::new();

#[inline(never)]
fn c_private<const R: bool>(n: u64) -> usize {
    let mut at = 0;
    for i in 0..n {
        let mut out = MaybeUninit::uninit();
        let mut v = match EC.local() {
            // SAFETY: `pop_into` returned true, so it wrote `out`.
            Some(l) if l.pop_into(&mut out) => unsafe { out.assume_init() },
            _ => fresh(),
        };
        at = work::<R>(&mut v, i);
        v.clear();
        let mut slot = ManuallyDrop::new(v);
        let pushed = match EC.local() {
            Some(l) => l.push_from(&mut slot),
            None => false,
        };
        if !pushed {
            // SAFETY: not pushed, so the object is still in `slot`, taken once.
            drop_cold(unsafe { ManuallyDrop::take(&mut slot) });
        }
    }
    at
}

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
// Placement of `Hot`s at chosen addresses.

/// Page-aligned memory for the placed `Hot`s: two pages each, so that one placed anywhere in the
/// first page fits.
struct Arena {
    base: *mut u8,
    slots: usize,
}

impl Arena {
    const SLOT: usize = 8192;

    fn new(slots: usize) -> Self {
        let layout = std::alloc::Layout::from_size_align(slots * Self::SLOT, 4096).unwrap();
        // SAFETY: the layout has a non-zero size; the memory is leaked.
        let base = unsafe { std::alloc::alloc(layout) };
        assert!(!base.is_null());
        Arena { base, slots }
    }

    /// Moves the `Hot` that `engine` points to (if any) to offset `at` (mod 4096) of slot `k`,
    /// or places a new one there.
    fn place(&self, engine: &Engine<Hot>, k: usize, at: usize) {
        assert!(k < self.slots);
        let at = at % 4096;
        assert_eq!(at % std::mem::align_of::<Hot>(), 0);
        // SAFETY: inside the allocation: `at + size_of::<Hot>() < 8192`.
        let to = unsafe { self.base.add(k * Self::SLOT + at) }.cast::<Hot>();
        let from = engine.local().map(|h| h as *const Hot as *mut Hot);
        match from {
            Some(from) if from == to => {}
            // SAFETY: `from` holds a `Hot` that nothing else uses; after the move the table
            // points to the new place only, and the old bytes are never read as a `Hot` again.
            Some(from) => unsafe { ptr::copy(from, to, 1) },
            // SAFETY: `to` is aligned, in the arena, and unused.
            None => unsafe { to.write(Hot::new()) },
        }
        engine.install(to);
    }
}

// ---------------------------------------------------------------------------------------------
// The stack sweep.

type PadFn = fn(LoopFn, u64) -> usize;

/// Calls `f` below `K` more bytes of stack.
#[inline(never)]
fn padded<const K: usize>(f: LoopFn, n: u64) -> usize {
    let mut pad = MaybeUninit::<[u8; K]>::uninit();
    black_box(&mut pad);
    let at = f(n);
    black_box(&mut pad);
    at
}

macro_rules! pads {
    ($($k:literal)*) => { [$(padded::<{ $k * 64 }> as PadFn),*] };
}

const PADS: [PadFn; 64] = pads!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
    32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63
);

// ---------------------------------------------------------------------------------------------
// The driver.

struct Variant {
    name: &'static str,
    what: &'static str,
    f: LoopFn,
}

/// One timed call: (nanoseconds, the loop's stack slot).
#[inline(never)]
fn timed(f: LoopFn, n: u64) -> (f64, usize) {
    let t = Instant::now();
    let at = f(black_box(n));
    (t.elapsed().as_nanos() as f64, black_box(at))
}

/// One timed call below `pad`.
#[inline(never)]
fn timed_padded(pad: PadFn, f: LoopFn, n: u64) -> (f64, usize) {
    let t = Instant::now();
    let at = pad(f, black_box(n));
    (t.elapsed().as_nanos() as f64, black_box(at))
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
    CFG.written.store(true, Ordering::Relaxed);
    E2.install(leak_padded(Local2 {
        mag: UnsafeCell::new(Vec::with_capacity(BATCH)),
    }));
    E3.install(leak_padded(Local3 {
        busy: AtomicBool::new(false),
        reclaim: AtomicU8::new(0),
        mag: UnsafeCell::new(Vec::with_capacity(BATCH)),
    }));
    for e in [
        &E4, &E5, &ED_FN, &ED_CALL, &EDW_FN, &EDW_CALL, &E5W, &EE_COPY, &EE_BOTH,
    ] {
        e.install(leak_padded(Hot::new()));
    }
    EC.install(leak_padded(HotPrivate::new()));
}

/// Places the `Hot`s of the layout variants: (a) relative to the loop's stack slot `slot`, found
/// by a first call through `timed` (the same call as the measurements, so the same stack depth);
/// (b) at a 128- or a 64-byte boundary, 2 KiB away from the slot.
fn place_layout_variants(arena: &Arena) {
    let a: [(&Engine<Hot>, LoopFn, isize); 5] = [
        (&EA_SAME, a_same::<false>, 0),
        (&EA_MAG, a_mag::<false>, -32),
        (&EA_64, a_64::<false>, 64),
        (&EA_128, a_128::<false>, 128),
        (&EA_2048, a_2048::<false>, 2048),
    ];
    for (k, &(engine, f, shift)) in a.iter().enumerate() {
        arena.place(engine, k, 0);
        let (_, slot) = timed(f, 1);
        let at = (slot as isize + shift).rem_euclid(4096) as usize;
        arena.place(engine, k, at);
        let (_, again) = timed(f, 1);
        assert_eq!(slot, again, "the loop's stack slot moved between calls");
    }
    let b: [(&Engine<Hot>, LoopFn, usize); 2] =
        [(&EB_128, b_128::<false>, 0), (&EB_64, b_64::<false>, 64)];
    for (k, &(engine, f, shift)) in b.iter().enumerate() {
        let k = a.len() + k;
        arena.place(engine, k, 0);
        let (_, slot) = timed(f, 1);
        let at = ((slot + 2048) % 4096) & !127;
        arena.place(engine, k, at + shift);
    }
}

/// Every variant, in the order of the table: its name, its loop, what it adds.
#[rustfmt::skip]
const VARIANTS: &[(&str, LoopFn, &str)] = &[
    ("W", w::<false>, "the work alone, one Vec kept by the loop (no pool)"),
    ("L0", l0::<false>, "thread_local RefCell<Vec<Vec<u8>>> (lazy)"),
    ("L0a", l0a::<false>, "  same, const-initialised"),
    ("L0b", l0b::<false>, "  const UnsafeCell (TLS destructor)"),
    ("L0c", l0c::<false>, "  const UnsafeCell, no destructor"),
    ("L0w", l0w::<false>, "  L0c, pop reads the Vec word by word"),
    ("L1", l1::<false>, "L0c + thread index (const TLS Cell) on take and put"),
    ("L2", l2::<false>, "+ pool table lookup (fast ptr, [AtomicPtr; 64])"),
    ("L3", l3::<false>, "+ owner window (busy, fence, reclaim) x2"),
    ("L4", l4::<false>, "+ Hot layout, set_len/ptr::read, MaybeUninit out"),
    ("L5", l5::<false>, "+ owner-only hits/puts counters"),
    ("L5w", l5w::<false>, "L5, pop reads the Vec word by word"),
    ("L6", l6::<false>, "crate take/put, reset(Vec::clear)"),
    ("L6n", l6n::<false>, "crate take/put, no reset, clear inline"),
    ("L7", l7::<false>, "crate get + guard (scope end), reset(Vec::clear)"),
    ("L7d", l7d::<false>, "crate get + drop(g), reset(Vec::clear)"),
    ("L7n", l7n::<false>, "crate get + guard (scope end), no reset, clear inline"),
    ("W-r", w::<true>, "W, black_box on the buffer only"),
    ("L0-r", l0::<true>, "L0, black_box on the buffer only"),
    ("L0c-r", l0c::<true>, "L0c, black_box on the buffer only"),
    ("L5-r", l5::<true>, "L5, black_box on the buffer only"),
    ("L6-r", l6::<true>, "L6, black_box on the buffer only"),
    ("L7-r", l7::<true>, "L7, black_box on the buffer only"),
    ("a0", a_same::<false>, "L5w, Hot low 12 bits == stack slot"),
    ("a-32", a_mag::<false>, "L5w, Hot.mag over the stack slot (Hot = slot - 32)"),
    ("a+64", a_64::<false>, "L5w, Hot = slot + 64 (mod 4 KiB)"),
    ("a+128", a_128::<false>, "L5w, Hot = slot + 128"),
    ("a+2048", a_2048::<false>, "L5w, Hot = slot + 2048"),
    ("b128", b_128::<false>, "L5w, Hot 128-byte aligned"),
    ("b64", b_64::<false>, "L5w, Hot 64-byte aligned, not 128"),
    ("c", c_private::<false>, "L5 + private one-object slot before the magazine"),
    ("d-fnptr", d_fn_ptr::<false>, "L5, reset via Option<fn> in out-of-line filter"),
    ("d-call", d_call::<false>, "L5, reset in out-of-line fn, clear inlined"),
    ("dw-fnptr", dw_fn_ptr::<false>, "L5w, reset via Option<fn> in out-of-line filter"),
    ("dw-call", dw_call::<false>, "L5w, reset in out-of-line fn, clear inlined"),
    ("e-copy", e_copy::<false>, "L5, push copies the Vec's 24 bytes from the slot"),
    ("e-both", e_words_both::<false>, "L5, push and pop word by word"),
];

fn variants() -> Vec<Variant> {
    VARIANTS
        .iter()
        .map(|&(name, f, what)| Variant { name, what, f })
        .collect()
}

/// The low 12 bits of the buffer that each of the swept loops cycles, and of the synthetic
/// loops' `Hot`s: what the stack slots could alias with.
fn addresses() -> String {
    let low = |p: usize| format!("{:#05x}", p & 0xfff);
    let from_pool = |p: &Pool<Vec<u8>>| {
        let v = p.take();
        let at = v.as_ptr() as usize;
        p.put(v);
        low(at)
    };
    let from_hot = |e: &Engine<Hot>| match e.local() {
        Some(h) => {
            // SAFETY: owner-only access to the thread's own cache, outside any loop.
            let top = unsafe { &*h.state.get() }
                .mag
                .last()
                .map(|v| v.as_ptr() as usize);
            format!(
                "{} (Hot {})",
                top.map_or("-".to_string(), low),
                low(h as *const Hot as usize)
            )
        }
        None => "-".to_string(),
    };
    let l0 = L0_FREE.with(|f| f.borrow().last().map(|v| v.as_ptr() as usize));
    format!(
        "buffers: L0 {}, L5 {}, L5w {}, L6 {}, L7 {}",
        l0.map_or("-".to_string(), low),
        from_hot(&E5),
        from_hot(&E5W),
        from_pool(&P6),
        from_pool(&P7)
    )
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
    let (n, samples, sweep) = if bench {
        (
            env_u64("HIT_LAYERS_ITERS", 20_000_000),
            env_u64("HIT_LAYERS_SAMPLES", 15) as usize,
            env_u64("HIT_LAYERS_SWEEP", 1) != 0,
        )
    } else {
        (10_000, 1, true)
    };
    reuse_pool::set_cleanup_interval(None);
    let cpu = env_u64("HIT_LAYERS_CPU", 0) as usize;
    let pinned = pin(cpu);
    setup();
    let arena = Arena::new(8);
    place_layout_variants(&arena);
    let vs = variants();
    let base = vs.iter().position(|v| v.name == "L0").unwrap();
    let l6_at = vs.iter().position(|v| v.name == "L6").unwrap();

    // Warm-up, and each variant's stack slot.
    let slots: Vec<usize> = vs.iter().map(|v| timed(v.f, n.min(1_000_000)).1).collect();
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(samples); vs.len()];
    for round in 0..samples {
        for k in 0..vs.len() {
            let j = (k + round) % vs.len();
            let (ns, _) = timed(vs[j].f, n);
            times[j].push(ns / n as f64);
        }
    }
    check_hits();

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\n## hit_layers: {n} iterations x {samples} samples per variant, interleaved; \
         pinned to CPU {cpu}: {pinned}; membarrier: {}; loadavg {}",
        reuse_pool::uses_asymmetric_fence(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "low 12 bits: the loop's Vec on the stack (column `slot`) {:#05x} (L6); {}\n",
        slots[l6_at] & 0xfff,
        addresses()
    );
    println!("| variant | what | median ns | vs L0 | min | max | slot |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let medians: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    for (k, v) in vs.iter().enumerate() {
        let t = &times[k];
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:#05x} |",
            v.name,
            v.what,
            medians[k],
            medians[k] / medians[base],
            t.first().copied().unwrap_or(f64::NAN),
            t.last().copied().unwrap_or(f64::NAN),
            slots[k] & 0xfff
        );
    }

    if sweep {
        let m = if bench {
            env_u64("HIT_LAYERS_SWEEP_ITERS", 2_000_000)
        } else {
            1_000
        };
        let rounds = if bench { 5 } else { 1 };
        let fs: [(&str, LoopFn); 5] = [
            ("L0", l0::<false>),
            ("L5", l5::<false>),
            ("L5w", l5w::<false>),
            ("L6", l6::<false>),
            ("L7", l7::<false>),
        ];
        let cells = PADS.len() * fs.len();
        let mut t: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); cells];
        let mut at = vec![0usize; cells];
        for round in 0..rounds {
            for k in 0..cells {
                let j = (k * 7 + round) % cells; // a spread-out order, rotated every round
                let (p, f) = (j / fs.len(), j % fs.len());
                let (ns, slot) = timed_padded(PADS[p], fs[f].1, m);
                t[j].push(ns / m as f64);
                at[j] = slot;
            }
        }
        check_hits();
        println!("\n{}", addresses());
        println!(
            "\n### Stack sweep: median ns of {rounds} x {m} iterations, the loop called below \
             `pad` more bytes of stack (slot: the loop's Vec, low 12 bits)\n"
        );
        print!("| pad |");
        for (name, _) in fs {
            print!(" slot {name} | {name} |");
        }
        println!();
        println!("|---:|{}", "---:|---:|".repeat(fs.len()));
        let mut cols: Vec<Vec<f64>> = vec![Vec::new(); fs.len()];
        for p in 0..PADS.len() {
            print!("| {} |", p * 64);
            for (f, col) in cols.iter_mut().enumerate() {
                let j = p * fs.len() + f;
                let med = median(&mut t[j]);
                col.push(med);
                print!(" {:#05x} | {med:.2} |", at[j] & 0xfff);
            }
            println!();
        }
        for (f, (name, _)) in fs.iter().enumerate() {
            let c = &mut cols[f];
            c.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!(
                "{name}: min {:.2}, median {:.2}, max {:.2} ns over the {} stack placements",
                c[0],
                median(&mut c.clone()),
                c[c.len() - 1],
                c.len()
            );
        }
    }
}
