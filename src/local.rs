//! One thread's cache for one pool: the private magazine and the thread's own deque of
//! magazines.
//!
//! Go's `poolLocal` holds one `private` object and a `shared` chain of objects; here the private
//! slot is a magazine of up to [`MAGAZINE`] objects, and the shared part is a `crossbeam-deque`
//! [`Worker`] whose elements are whole magazines (Bonwick's magazine/depot design): a full
//! magazine moves to the deque in one push, an empty one is refilled by one pop, and a stealer
//! takes a whole magazine with one compare-and-swap. Every transfer therefore moves a batch.
//!
//! # Who touches what
//!
//! * `state` (the magazine and the worker): the owner thread, lock-free, inside a `busy` window
//!   (below); or a thread holding `slow`: the owner while cleanup is reclaiming, cleanup when it
//!   retires the cache, the pool's drop.
//! * `spares` (empty magazines kept for reuse): the owner thread only, never another thread.
//! * `stealer`: any thread, lock-free; never replaced (cleanup empties the deque instead).
//! * `stocked` (beside the stealer): read by any thread, written inside `state` accesses only.
//! * `frozen`: set once, in a forked child, for a cache whose owner did not survive the fork.
//! * counters: written by the owner only (plain load + store), read by anyone.
//!
//! # The reclaim protocol
//!
//! Every owner access to `state` is `busy = true; light fence; if reclaim { take the lock
//! instead } access; busy = false (release)`. The light fence is [`barrier::light`]: a compiler
//! fence when `membarrier` is in use, a full fence otherwise. The mode is kept in the `reclaim`
//! byte itself ([`FENCE`]), so that the common case tests one byte: a nonzero byte sends the
//! owner out of line, where it bails out on [`RECLAIM`] or runs the full fence and loads the byte
//! again. Cleanup sets `reclaim` on every cache of every
//! pool, executes one heavy fence ([`crate::barrier`]), then for each cache waits until `busy` is
//! false, takes the lock, retires the magazine and the deque, and clears `reclaim` (release).
//! The Dekker argument: an owner access that read `reclaim == false` had its `busy = true` visible
//! to cleanup, so cleanup waits for it to end (and synchronises with its release store); every
//! later access reads `reclaim == true` and goes through the lock until cleanup clears the flag,
//! and reading the cleared flag (acquire) makes cleanup's changes visible.
//!
//! Nothing inside a `busy` window or under `slow` runs code the crate does not own or blocks:
//! `Vec::pop`, a `Vec::push` below the capacity reserved at creation, swapping two `Vec`s, a
//! `Worker` push/pop, and (cleanup only, under `slow`) allocating an empty magazine. A `Worker` would pin crossbeam's global epoch
//! (which runs closures deferred by any library) if it resized its buffer; the deque therefore
//! never holds more than [`MAX_DEQUE`] magazines, below the 64 slots it starts with, so it never
//! resizes. Magazines beyond that go to the pool's depot, outside the window; objects to drop are
//! handed back and dropped after the window closes. Debug builds check that no window is nested
//! in another on the same cache.

use crate::barrier;
use crate::depot::Depot;
use crate::deque::{steal_one, Stealer, Worker};
use crate::placement::{self, Span};
use crate::sync::{
    bump, compiler_fence, lock, spin_wait, AtomicBool, AtomicU64, AtomicU8, Mutex, Ordering,
    UnsafeCell,
};
use crate::words;
use crossbeam_utils::CachePadded;
use std::mem::{self, ManuallyDrop, MaybeUninit};
use std::sync::Arc;

/// Most objects per magazine: the private batch of each thread and the unit of every transfer
/// between threads. A cache's magazines all have the same size, the bound divided into the fewest
/// magazines of at most this many (a bound of 128 is four magazines of 32, 48 is two of 24).
///
/// A thread's private magazine is reachable by other threads only after a cleanup cycle, so this
/// is also the most that a blocked or exited thread keeps away from the others between cycles.
pub const MAGAZINE: usize = 32;

/// Most magazines in a thread's deque: crossbeam's `Worker` starts with 64 slots and grows (which
/// pins crossbeam's global epoch) only when a push finds all 64 in use.
pub(crate) const MAX_DEQUE: usize = 63;

/// Most objects one thread caches, whatever the bound: a private magazine and [`MAX_DEQUE`] full
/// ones. Returns beyond it go to the pool's depot.
#[cfg_attr(any(not(test), reuse_pool_loom), allow(dead_code))]
pub(crate) const MAX_PER_THREAD_CAP: usize = (MAX_DEQUE + 1) * MAGAZINE;

/// How a per-thread bound is split: `(batch, max_batches)`, the objects per magazine and the most
/// magazines in the deque. The fewest magazines that hold the bound, all of the same size (a
/// bound of 48 is two magazines of 24, not one of 32 that would leave 16 places unused), at most
/// `MAX_DEQUE + 1` of them.
pub(crate) const fn shape(per_thread: usize) -> (usize, usize) {
    let per_thread = if per_thread == 0 { 1 } else { per_thread };
    let magazines = per_thread.div_ceil(MAGAZINE);
    if magazines > MAX_DEQUE + 1 {
        (MAGAZINE, MAX_DEQUE)
    } else {
        (per_thread / magazines, magazines - 1)
    }
}
/// `Hot::raw_index` of a cache that belongs to no thread index (never a thread's raw value).
const NO_INDEX: usize = usize::MAX - 1;

/// Most empty magazines a thread keeps for reuse.
const MAX_SPARES: usize = 16;

/// `Hot::reclaim` bit: cleanup is reclaiming this cache; the owner takes the lock.
const RECLAIM: u8 = 1;
/// `Hot::reclaim` bit, fixed at creation: the owner's half of the fence pair is a full fence
/// (`membarrier` is not in use), which the owner runs out of line before it trusts the byte.
const FENCE: u8 = 2;

/// Per-cache counters of the slow paths (`hits` and `puts` live in the hit's cache line, in
/// `Hot`). Written by the owner with plain stores, so counts are exact per thread and
/// approximate when summed while threads are running.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) misses: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) victim_hits: AtomicU64,
    pub(crate) drops: AtomicU64,
    /// Magazines moved into the pool's depot.
    pub(crate) depot_puts: AtomicU64,
    /// Magazines taken from the pool's depot.
    pub(crate) depot_takes: AtomicU64,
}

/// What the protocol protects. `repr(C)`: the magazine comes first, so that it ends inside the
/// first cache line of `Hot` (see there).
#[derive(Debug)]
#[repr(C)]
struct State<T> {
    /// The private magazine. Its capacity is always at least `Hot::batch`, so a push below that
    /// length never allocates.
    mag: Vec<T>,
    /// The thread's deque of full magazines. The owner pushes and pops at the back; other threads
    /// steal from the front through `Local::stealer`. Never holds an empty magazine.
    worker: Worker<Vec<T>>,
}

impl<T> State<T> {
    /// Moves a full magazine into the deque if it holds fewer than `max_batches`; otherwise gives
    /// it back, to be dropped outside the window.
    fn push_or_return(&mut self, full: Vec<T>, max_batches: usize) -> Option<Vec<T>> {
        if self.worker.len() < max_batches {
            self.worker.push(full);
            None
        } else {
            Some(full)
        }
    }
}

/// The part of the cache that the owner touches on every operation.
///
/// `repr(C)`, in this order, so that everything a hit reads or writes (the flags, `batch`, the
/// two counters, the owner's index and the magazine's pointer and length) lies in the first 64
/// bytes (8 + 8 + 16 + 8 + 24 on 64-bit targets): one cache line
/// per get or put (where `CachePadded` aligns `Hot` to a line, as on x86-64 and aarch64) instead
/// of the three that the compiler's own field order spread it over.
#[derive(Debug)]
#[repr(C)]
struct Hot<T> {
    /// True while the owner is inside a lock-free access to `state`.
    /// Written by the owner only; read by cleanup.
    busy: AtomicBool,
    /// [`RECLAIM`], set by cleanup for the duration of a cycle: while it is set the owner takes
    /// `slow`'s lock for every access to `state`; and [`FENCE`], set at creation when
    /// `barrier::asymmetric()` is false (the mode never changes once chosen, and it is chosen
    /// before any cache exists). Written by cleanup only (the `RECLAIM` bit); read by the owner.
    reclaim: AtomicU8,
    /// Objects per magazine, `1..=MAGAZINE`; `batch * (max_batches + 1)` is at most the bound.
    batch: usize,
    /// Objects handed out from this cache (magazine or deque). Owner-written, like `Counters`.
    hits: AtomicU64,
    /// Objects returned to this cache. Owner-written, like `Counters`.
    puts: AtomicU64,
    /// `thread_id::raw()` of every thread that holds this cache's index: the index plus one.
    /// [`NO_INDEX`] for a cache made outside a table (the models). Immutable once the cache is
    /// installed. Here, in the hot line, because a guard's return reads it to tell whether it
    /// runs on the thread the object came from.
    raw_index: usize,
    state: UnsafeCell<State<T>>,
    /// Empty magazines (capacity `batch`) for the owner to reuse. Owner thread only.
    spares: UnsafeCell<Vec<Vec<T>>>,
    /// Most magazines in the deque, at most [`MAX_DEQUE`].
    max_batches: usize,
    /// Where the steal probe starts, as an offset from the thread's own index. Owner only.
    cursor: UnsafeCell<usize>,
    /// Serialises access to `state` while `reclaim` is set.
    slow: Mutex<()>,
    /// Owner-written counters of the slow paths.
    counters: Counters,
}

/// One thread's cache for one pool.
#[derive(Debug)]
pub(crate) struct Local<T> {
    hot: CachePadded<Hot<T>>,
    /// What other threads read to steal, on its own cache line, away from the owner's stores.
    shared: CachePadded<Shared<T>>,
    /// The pool's depot, where full magazines go when the deque is full.
    depot: Arc<Depot<T>>,
    /// Set in a forked child, before it runs any other thread, when the thread owning this cache
    /// at the fork does not exist there: its last access may have been cut off halfway, so
    /// cleanup and the pool's drop leave the cache alone (its objects are leaked in the child).
    frozen: AtomicBool,
}

/// The part of a cache that other threads read when they look for a magazine to steal.
#[derive(Debug)]
struct Shared<T> {
    /// Stealer of the worker (the deque lives as long as the cache).
    stealer: Stealer<Vec<T>>,
    /// Whether the deque held a magazine after the last change that the owner or cleanup made to
    /// it; stores happen inside `state` accesses, and only when the value changes, so the line
    /// stays shared while the deque's state does not change. A thief skips a cache that reads
    /// `false` without pinning the epoch or touching the deque, whose indices the owner writes
    /// on every transfer. Thieves do not clear it: after a steal empties the deque it stays
    /// `true` until the owner's next pop finds the deque empty, which costs one failed steal.
    /// A stale `false` only makes a thief create instead of stealing, which the pool's
    /// semantics allow; any happens-before edge from the owner (a join, a channel) makes the
    /// current value visible.
    stocked: AtomicBool,
}

// SAFETY: `state`, `spares` and `cursor` are the only fields that are not `Sync` by themselves.
// - `state` is accessed by the owner inside a `busy` window, or by a thread holding `slow`'s
//   lock, and the reclaim protocol (module docs) proves that these never overlap.
// - `spares` and `cursor` are accessed only by the thread that holds this cache's index (the
//   owner); indices pass between threads through the id allocator's mutex, which orders the
//   accesses.
// Every other field is `Sync` when `T: Send`, and objects only move between threads, which
// `T: Send` allows.
unsafe impl<T: Send> Sync for Local<T> {}

/// What a `get` that missed its own tiers and the depot found elsewhere (the models' and unit
/// tests' [`Local::pop_slow`]).
#[derive(Debug)]
#[allow(dead_code)] // the models (`src/loom.rs`) and unit tests
pub(crate) enum Found<T> {
    /// A whole magazine stolen from another thread's deque (never empty).
    Stolen(Vec<T>),
    /// One object from the victim tier.
    Victim(T),
}

/// Runs `f`; if it unwinds (a `Drop` of an object it gave up panicked), drops the object in
/// `out` first, which the caller then never reads.
///
/// # Safety
///
/// `out` holds an object, which the caller reads only if `f` returns.
pub(crate) unsafe fn drop_out_on_unwind<T, R>(
    out: &mut MaybeUninit<T>,
    f: impl FnOnce() -> R,
) -> R {
    struct DropOut<'a, T>(&'a mut MaybeUninit<T>);
    impl<T> Drop for DropOut<'_, T> {
        fn drop(&mut self) {
            // SAFETY: runs only while `f` unwinds (forgotten otherwise), when `out` holds the
            // object (caller), which the caller will not read.
            unsafe { self.0.assume_init_drop() }
        }
    }
    let guard = DropOut(out);
    let r = f();
    mem::forget(guard);
    r
}

/// Moves the object in `slot` to the end of `v`, growing `v` only if it is full (a magazine never
/// is: its capacity is at least its batch). No copy of `T` on the way.
///
/// # Safety
///
/// `slot` holds an object, which this call takes over: the caller must not use or drop it
/// afterwards.
#[inline]
unsafe fn push_from<T>(v: &mut Vec<T>, slot: &mut ManuallyDrop<T>) {
    v.reserve(1);
    let len = v.len();
    // SAFETY: `reserve` made slot `len` allocated and unused; the object is copied out of
    // `slot` once (the caller gives `slot` up), and the two places do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(&**slot as *const T, v.as_mut_ptr().add(len), 1);
        v.set_len(len + 1);
    }
}

/// Drops the object in `slot`, refused by a full cache, out of line (the one copy of `T` on this
/// path lives in this frame only).
///
/// # Safety
///
/// As for [`push_from`].
#[cold]
#[inline(never)]
unsafe fn reject<T: Send + 'static>(slot: &mut ManuallyDrop<T>) {
    // SAFETY: forwarded from the caller: the object is taken out of `slot` exactly once.
    crate::drops::drop_flat(unsafe { ManuallyDrop::take(slot) });
}

/// What [`Local::pop_slow_into`]'s `steal_other` found.
#[derive(Debug)]
pub(crate) enum Other<T> {
    /// Nothing: the caller creates.
    Nothing,
    /// A whole magazine stolen from another thread's deque (never empty).
    Stolen(Vec<T>),
    /// One object from the victim tier, written into the caller's `out`.
    Victim,
}

/// Moves the last object of `v` into `out`; returns whether there was one (`out` is untouched
/// otherwise). No `Option<T>` on the way: the object is copied once, straight into `out`.
#[inline]
pub(crate) fn pop_into<T>(v: &mut Vec<T>, out: &mut MaybeUninit<T>) -> bool {
    let Some(last) = v.len().checked_sub(1) else {
        return false;
    };
    // SAFETY: slot `last` is initialised; shrinking the length first hands its ownership to
    // us, and it is copied out exactly once, into `out`, which does not overlap the vector's
    // buffer (it is the caller's own place).
    unsafe {
        v.set_len(last);
        std::ptr::copy_nonoverlapping(v.as_ptr().add(last), out.as_mut_ptr(), 1);
    }
    true
}

/// The owner's fast paths need no bounds on `T`: a guard, whose `Drop` cannot have any, returns
/// its object through them.
impl<T> Local<T> {
    /// Whether cleanup and the pool's drop must leave this cache alone (see `frozen`).
    pub(crate) fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Relaxed)
    }
    /// Whether the calling thread holds this cache's index, i.e. owns it.
    #[inline(always)]
    pub(crate) fn is_current(&self) -> bool {
        crate::thread_id::raw() == self.hot.raw_index
    }

    /// Owner only: enters a lock-free window. Returns false if cleanup is reclaiming, in which
    /// case the window is already closed again and the caller must take the lock.
    #[inline(always)]
    fn enter(&self) -> bool {
        let h = &*self.hot;
        // A window opened inside another window on the same cache would give two `&mut` to
        // `state` (code that the crate does not own must never run inside one).
        debug_assert!(
            !h.busy.load(Ordering::Relaxed),
            "reuse_pool: nested access to a thread's cache"
        );
        h.busy.store(true, Ordering::Relaxed);
        // Orders the store above before the load below in the compiled code. With `membarrier`
        // that is the owner's whole half of the fence pair (`crate::barrier`); without it the
        // byte has `FENCE` set, and `enter_fenced` runs the full fence and loads it again.
        compiler_fence(Ordering::SeqCst);
        // load-acquire: pairs with the store-release that clears `RECLAIM` at the end of
        // `retire`, so that cleanup's changes to `state` happen-before our use of it.
        let seen = h.reclaim.load(Ordering::Acquire);
        if seen != 0 {
            return self.enter_fenced(seen);
        }
        true
    }

    /// `enter` when the byte was not zero: bails out if cleanup is reclaiming, otherwise (the
    /// `FENCE` mode) runs the owner's half of the fence pair and decides on a second load, which
    /// is the one the Dekker argument is about. Out of line, so that the fast path's code holds
    /// no fence instruction (`ci/hot_path.sh`).
    #[cold]
    #[inline(never)]
    fn enter_fenced(&self, seen: u8) -> bool {
        let h = &*self.hot;
        if seen & RECLAIM == 0 {
            // `seen` is `FENCE`: order the `busy` store before the load below.
            barrier::light();
            // load-acquire: as in `enter`.
            if h.reclaim.load(Ordering::Acquire) & RECLAIM == 0 {
                return true;
            }
        }
        h.busy.store(false, Ordering::Release);
        false
    }

    /// Owner only: leaves a lock-free window.
    #[inline(always)]
    fn leave(&self) {
        // store-release: pairs with the load-acquire in `retire`'s wait, so our access to `state`
        // happens-before cleanup's.
        self.hot.busy.store(false, Ordering::Release);
    }

    /// Owner only: the addresses of the cache's hot line and of its magazine's buffer, for the
    /// layout diagnostic [`Pool::hit_addresses`](crate::Pool::hit_addresses). `None` while
    /// cleanup is reclaiming this cache.
    pub(crate) fn hot_addresses(&self) -> Option<(usize, usize)> {
        if !self.enter() {
            return None;
        }
        let mag = self.hot.state.with_mut(|s| {
            // SAFETY: as in `pop_fast_into`; only the buffer's address is read.
            unsafe { (*s).mag.as_ptr() as usize }
        });
        self.leave();
        Some((&*self.hot as *const Hot<T> as usize, mag))
    }

    /// Owner only: the fast path of `get`, writing the object straight into `out` (no moves
    /// through temporaries). `false` means "take the slow path": the magazine is empty or cleanup
    /// is reclaiming this cache; `out` is then untouched.
    #[inline(always)]
    pub(crate) fn pop_fast_into(&self, out: &mut MaybeUninit<T>) -> bool {
        if !self.enter() {
            return false;
        }
        let found = self.hot.state.with_mut(|s| {
            // SAFETY: we are the owner and inside a `busy` window that saw `reclaim == false`:
            // no other thread touches `state` until we leave (module docs), and the owner itself
            // has no other access open.
            let s = unsafe { &mut *s };
            let len = s.mag.len();
            if len == 0 {
                return false;
            }
            // SAFETY: `len > 0`, so slot `len - 1` is initialised; shrinking the length first
            // hands its ownership to us, and it is moved out exactly once, into `out`.
            unsafe {
                s.mag.set_len(len - 1);
                words::read_into(s.mag.as_ptr().add(len - 1), out);
            }
            true
        });
        self.leave();
        if found {
            bump(&self.hot.hits, 1);
        }
        found
    }

    /// Owner only: the fast path of `put`, moving the object straight out of `slot` into the
    /// magazine. On `true` the object has moved and `slot` must not be used again; on `false`
    /// (the magazine is full or cleanup is reclaiming this cache) nothing happened.
    #[inline(always)]
    pub(crate) fn push_fast_from(&self, slot: &mut ManuallyDrop<T>) -> bool {
        let batch = self.hot.batch;
        if !self.enter() {
            return false;
        }
        let pushed = self.hot.state.with_mut(|s| {
            // SAFETY: as in `pop_fast_into`.
            let s = unsafe { &mut *s };
            let len = s.mag.len();
            if len >= batch {
                return false;
            }
            // SAFETY: `len < batch <= capacity` (field docs), so slot `len` is allocated and
            // unused; the object is read out of `slot` once and the caller gives `slot` up.
            unsafe {
                words::move_to::<T>(&**slot, s.mag.as_mut_ptr().add(len));
                s.mag.set_len(len + 1);
            }
            true
        });
        self.leave();
        if pushed {
            bump(&self.hot.puts, 1);
        }
        pushed
    }
}

impl<T: Send + 'static> Local<T> {
    /// A cache holding at most `per_thread` objects (at least 1, at most
    /// [`MAX_PER_THREAD_CAP`]), whose overflow goes to `depot`.
    #[allow(dead_code)] // the models (`src/loom.rs`) and unit tests; the pool uses `placed`
    pub(crate) fn new(per_thread: usize, depot: Arc<Depot<T>>) -> Self {
        Self::placed(per_thread, depot, &[])
    }

    /// As `new`, with the magazine's buffer placed so that its first two slots (where a thread
    /// that gets and puts one object at a time works) are clear of `avoid` modulo 4 KiB
    /// (`crate::placement`).
    pub(crate) fn placed(per_thread: usize, depot: Arc<Depot<T>>, avoid: &[Span]) -> Self {
        barrier::init();
        let (batch, max_batches) = shape(per_thread);
        let worker = Worker::new_lifo();
        let stealer = worker.stealer();
        Local {
            hot: CachePadded::new(Hot {
                busy: AtomicBool::new(false),
                reclaim: AtomicU8::new(if barrier::asymmetric() { 0 } else { FENCE }),
                state: UnsafeCell::new(State {
                    mag: placement::vec_clear_of(batch, batch.min(2), avoid),
                    worker,
                }),
                spares: UnsafeCell::new(Vec::new()),
                batch,
                max_batches,
                cursor: UnsafeCell::new(0),
                slow: Mutex::new(()),
                hits: AtomicU64::new(0),
                puts: AtomicU64::new(0),
                raw_index: NO_INDEX,
                counters: Counters::default(),
            }),
            shared: CachePadded::new(Shared {
                stealer,
                stocked: AtomicBool::new(false),
            }),
            depot,
            frozen: AtomicBool::new(false),
        }
    }

    /// Owner only: where the next steal probe starts (an offset from the thread's index), and
    /// moves it on by `by`, so that successive misses look at different threads.
    pub(crate) fn next_probe(&self, by: usize) -> usize {
        self.hot.cursor.with_mut(|c| {
            // SAFETY: `cursor` is touched only by the owner (field docs), and not re-entrantly.
            let c = unsafe { &mut *c };
            let start = *c;
            *c = start.wrapping_add(by);
            start
        })
    }

    #[cfg_attr(any(miri, reuse_pool_loom, not(unix)), allow(dead_code))]
    /// In a forked child: this cache's owner did not survive the fork (see `frozen`).
    pub(crate) fn freeze(&self) {
        // Relaxed: written before the child runs any other thread; threads it starts later are
        // ordered after it by their spawn.
        self.frozen.store(true, Ordering::Relaxed);
    }

    /// The bytes of the hot line (`Hot`'s first 64 bytes: everything a hit reads or writes in
    /// the cache) of a cache at address `at`.
    pub(crate) fn hot_span(at: usize) -> Span {
        let len = mem::size_of::<Hot<T>>().min(64);
        Span::new(at + mem::offset_of!(Local<T>, hot), len)
    }

    /// The cache of thread index `id` (see `Hot::raw_index`).
    pub(crate) fn for_index(mut self, id: usize) -> Self {
        self.hot.raw_index = id + 1;
        self
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.hot.counters
    }

    /// `(hits, puts)` so far.
    pub(crate) fn hits_and_puts(&self) -> (u64, u64) {
        let h = &*self.hot;
        (
            h.hits.load(Ordering::Relaxed),
            h.puts.load(Ordering::Relaxed),
        )
    }

    /// Owner only: runs `f` on `state`, in a lock-free window or, while cleanup is reclaiming,
    /// under the lock. `f` must not run user code, block or panic (module docs).
    #[inline(always)]
    fn owner_access<R>(&self, f: impl FnOnce(&mut State<T>) -> R) -> R {
        if self.enter() {
            let r = self.hot.state.with_mut(|s| {
                // SAFETY: we are the owner and inside a `busy` window that saw
                // `reclaim == false`: no other thread touches `state` until we leave (module
                // docs), and the owner itself has no other access open.
                f(unsafe { &mut *s })
            });
            self.leave();
            r
        } else {
            self.locked(f)
        }
    }

    /// Runs `f` on `state` with the lock held.
    #[cold]
    fn locked<R>(&self, f: impl FnOnce(&mut State<T>) -> R) -> R {
        let _guard = lock(&self.hot.slow);
        self.hot.state.with_mut(|s| {
            // SAFETY: we hold `slow`'s lock. The owner touches `state` without the lock only inside
            // a window that saw `reclaim == false`. A caller on another thread (cleanup, pool
            // drop) has either set `reclaim` and waited for `busy == false` after the heavy fence,
            // or has exclusive use of the pool; the owner calls this only with no window open.
            f(unsafe { &mut *s })
        })
    }

    /// Owner only: an empty magazine of capacity `batch`, reused if possible.
    fn take_spare(&self) -> Vec<T> {
        let reused = self.hot.spares.with_mut(|s| {
            // SAFETY: `spares` is touched only by the owner (field docs), and not re-entrantly.
            unsafe { (*s).pop() }
        });
        reused.unwrap_or_else(|| Vec::with_capacity(self.hot.batch))
    }

    /// Owner only: keeps an empty magazine for reuse.
    fn give_spare(&self, empty: Vec<T>) {
        debug_assert!(empty.is_empty());
        if empty.capacity() < self.hot.batch {
            return;
        }
        self.hot.spares.with_mut(|s| {
            // SAFETY: as in `take_spare`.
            let s = unsafe { &mut *s };
            if s.len() < MAX_SPARES {
                s.push(empty);
            }
        });
    }

    /// Owner only: `get` when the magazine is empty, returning the object (the models and unit
    /// tests; the pool uses [`pop_slow_into`](Self::pop_slow_into)).
    #[allow(dead_code)] // the models (`src/loom.rs`) and unit tests
    pub(crate) fn pop_slow(&self, steal_other: impl FnOnce() -> Option<Found<T>>) -> Option<T> {
        let mut out = MaybeUninit::uninit();
        let found = self.pop_slow_into(&mut out, |out| match steal_other() {
            None => Other::Nothing,
            Some(Found::Stolen(full)) => Other::Stolen(full),
            Some(Found::Victim(v)) => {
                out.write(v);
                Other::Victim
            }
        });
        // SAFETY: `pop_slow_into` returned true, so it wrote `out`.
        found.then(|| unsafe { out.assume_init() })
    }

    /// Owner only: `get` when the magazine is empty.
    ///
    /// Refills the magazine from the thread's own deque; failing that, from the pool's depot;
    /// failing that, calls `steal_other` (other threads' deques, then the victim tier). Writes
    /// the object into `out` and returns true, or returns false (with `out` untouched) when
    /// every tier is empty.
    ///
    /// The object moves straight from its magazine (or `steal_other`'s write) into `out`, never
    /// through an `Option<T>` of this frame: each such value is a copy of `T` on the stack, and
    /// a large `T` (a 64 KiB array) made a miss need many times its size of stack.
    #[cold]
    pub(crate) fn pop_slow_into(
        &self,
        out: &mut MaybeUninit<T>,
        steal_other: impl FnOnce(&mut MaybeUninit<T>) -> Other<T>,
    ) -> bool {
        let (found, empty) = self.owner_access(|s| {
            if pop_into(&mut s.mag, out) {
                return (true, None);
            }
            let popped = s.worker.pop();
            self.set_stocked(s);
            match popped {
                Some(full) => {
                    let empty = mem::replace(&mut s.mag, full);
                    (pop_into(&mut s.mag, out), Some(empty))
                }
                None => (false, None),
            }
        });
        if let Some(e) = empty {
            self.give_spare(e);
        }
        if found {
            bump(&self.hot.hits, 1);
            return true;
        }
        // Everything below runs outside any window and lock: stealing pins crossbeam's global
        // epoch, which may run closures deferred by other libraries, and those may use the pool.
        let c = &self.hot.counters;
        let mut full = match self.depot.pop() {
            Some(full) => {
                bump(&c.depot_takes, 1);
                full
            }
            None => match steal_other(out) {
                Other::Nothing => return false,
                Other::Victim => {
                    bump(&c.victim_hits, 1);
                    return true;
                }
                Other::Stolen(full) => {
                    bump(&c.steals, 1);
                    full
                }
            },
        };
        let found = pop_into(&mut full, out);
        debug_assert!(found, "the shared tiers never hold empty magazines");
        if !full.is_empty() {
            // SAFETY: `full` was not empty before `pop_into`, so `found` and `out` holds the
            // object, which the caller reads only on `true`.
            unsafe { drop_out_on_unwind(out, || self.install(full)) };
        }
        found
    }

    /// Owner only, outside any window: keeps a magazine taken from another tier, as the private
    /// magazine if that is empty, else in the deque, else in the depot; drops it (counted) only
    /// when all three are full.
    fn install(&self, full: Vec<T>) {
        let max_batches = self.hot.max_batches;
        let (empty, overflow) = self.owner_access(|s| {
            if s.mag.is_empty() {
                // Nothing ran since the miss except, possibly, cleanup emptying the magazine or
                // code that other libraries deferred taking from it: install the new one.
                (Some(mem::replace(&mut s.mag, full)), None)
            } else {
                let returned = s.push_or_return(full, max_batches);
                self.set_stocked(s);
                (None, returned)
            }
        });
        if let Some(e) = empty {
            self.give_spare(e);
        }
        if let Some(full) = overflow {
            self.spill(full);
        }
    }

    /// Owner only, outside any window: moves a full magazine to the depot, or drops it (counted)
    /// when the depot is full.
    fn spill(&self, full: Vec<T>) {
        crate::driver::after_fork_check();
        let c = &self.hot.counters;
        match self.depot.push(full) {
            Ok(()) => bump(&c.depot_puts, 1),
            Err(rejected) => {
                bump(&c.drops, rejected.len() as u64);
                // Flat: an object's `Drop` that returns an object here must not nest.
                crate::drops::drop_flat(rejected);
            }
        }
    }

    /// Owner only: `put` when the magazine is full (or cleanup is reclaiming this cache).
    ///
    /// Starts a new magazine with `value` and moves the full one to the deque; if the deque
    /// already holds its bound, the full magazine goes to the pool's depot instead (outside the
    /// window), and is dropped only when the depot is full too. With the depot off, a full cache
    /// drops `value` instead (outside the window).
    #[cold]
    #[allow(dead_code)] // the models (`src/loom.rs`) and unit tests
    pub(crate) fn push_slow(&self, value: T) {
        let mut value = ManuallyDrop::new(value);
        // SAFETY: `value` holds the object and is not used again.
        unsafe { self.push_slow_from(&mut value) }
    }

    /// [`push_slow`](Self::push_slow) with the object in `slot`, from which it moves straight
    /// into the magazine: no copy of `T` in this frame (a large `T` needed many times its size
    /// of stack on a return).
    ///
    /// # Safety
    ///
    /// `slot` holds an object, which this call takes over: the caller must not use or drop it
    /// afterwards.
    #[cold]
    pub(crate) unsafe fn push_slow_from(&self, slot: &mut ManuallyDrop<T>) {
        let batch = self.hot.batch;
        let max_batches = self.hot.max_batches;
        // With the depot off, a full cache keeps its magazines and refuses the object instead.
        let spill = self.depot.is_enabled();
        let spare = self.take_spare();
        let (unused, overflow, rejected) = self.owner_access(|s| {
            if s.mag.len() < batch {
                // SAFETY: `slot` holds the object (caller), taken over here once.
                unsafe { push_from(&mut s.mag, slot) };
                return (Some(spare), None, false);
            }
            if !spill && s.worker.len() >= max_batches {
                return (Some(spare), None, true);
            }
            let full = mem::replace(&mut s.mag, spare);
            // SAFETY: as above.
            unsafe { push_from(&mut s.mag, slot) };
            let overflow = s.push_or_return(full, max_batches);
            self.set_stocked(s);
            (None, overflow, false)
        });
        if let Some(spare) = unused {
            self.give_spare(spare);
        }
        bump(&self.hot.puts, 1);
        if let Some(full) = overflow {
            self.spill(full);
        }
        if rejected {
            bump(&self.hot.counters.drops, 1);
            // SAFETY: the object is still in `slot` (refused above), which the caller gives up.
            unsafe { reject(slot) };
        }
    }

    /// Any thread: steals one magazine from this cache's deque.
    pub(crate) fn steal(&self) -> Option<Vec<T>> {
        steal_one(&self.shared.stealer)
    }

    /// Any thread: whether a steal from this cache may find a magazine (`Shared::stocked`).
    /// `false` means that the owner's or cleanup's last look found the deque empty.
    #[inline]
    pub(crate) fn is_stocked(&self) -> bool {
        // Relaxed: a hint only (see the field); the steal that follows a `true` synchronises on
        // its own.
        self.shared.stocked.load(Ordering::Relaxed)
    }

    /// Inside a `state` access (owner window or lock): records whether the deque holds a
    /// magazine now, storing only when that changed.
    fn set_stocked(&self, s: &State<T>) {
        let stocked = !s.worker.is_empty();
        // Relaxed: a hint only. Only `state` accesses, which never overlap, store it, so the
        // load reads the latest store.
        if self.shared.stocked.load(Ordering::Relaxed) != stocked {
            self.shared.stocked.store(stocked, Ordering::Relaxed);
        }
    }

    /// Cleanup, step 1: announce the reclaim.
    pub(crate) fn flag(&self) {
        // Relaxed: ordered before the `busy` loads by `barrier::heavy`. Only cleanup changes the
        // byte after creation, so the read-modify-write races with nothing.
        self.hot.reclaim.fetch_or(RECLAIM, Ordering::Relaxed);
    }

    /// Whether `flag` was called in the current cycle (only cleanup writes the flag).
    pub(crate) fn is_flagged(&self) -> bool {
        self.hot.reclaim.load(Ordering::Relaxed) & RECLAIM != 0
    }

    /// Cleanup, step 2, after `barrier::heavy`: moves the magazine and every magazine of the
    /// deque into `out` (this cache's share of the new victim tier). At most [`MAX_DEQUE`] + 1
    /// magazines, each moved whole.
    pub(crate) fn retire(&self, out: &mut Vec<Vec<T>>) {
        let mut step = 0;
        // load-acquire: pairs with the store-release in `leave`; see the module docs for why a
        // `false` here means no lock-free window is open and none can open until we are done.
        while self.hot.busy.load(Ordering::Acquire) {
            spin_wait(&mut step);
        }
        let batch = self.hot.batch;
        self.locked(|s| {
            if !s.mag.is_empty() {
                out.push(mem::replace(&mut s.mag, Vec::with_capacity(batch)));
            }
            // The deque stays in place: a thief holding its stealer only ever finds what the
            // owner put there after this cycle. Never resizes (it only shrinks beyond 64 slots).
            while let Some(full) = s.worker.pop() {
                out.push(full);
            }
            self.set_stocked(s);
        });
        // store-release: pairs with the load-acquire in `enter`; the owner's next access sees the
        // emptied cache.
        self.hot.reclaim.fetch_and(!RECLAIM, Ordering::Release);
    }

    /// Pool drop: everything this cache holds. The caller has exclusive use of the pool.
    pub(crate) fn drain_all(&self, out: &mut Vec<Vec<T>>) {
        self.locked(|s| {
            if !s.mag.is_empty() {
                // The pool is being dropped: the magazine is never used again.
                out.push(mem::take(&mut s.mag));
            }
            while let Some(full) = s.worker.pop() {
                out.push(full);
            }
            self.set_stocked(s);
        });
    }
}

// `CachePadded` aligns to at least 64 bytes on these; on some others it aligns to 32, and `Hot`
// may then start in the middle of a line.
#[cfg(all(
    test,
    not(reuse_pool_loom),
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod tests {
    use super::{Hot, State};
    use std::mem::{align_of, offset_of, size_of};

    /// A hit reads and writes only the first 64 bytes of `Hot`, which starts a cache line.
    #[test]
    fn a_hit_touches_one_cache_line() {
        type H = Hot<Vec<u8>>;
        let mag_end =
            offset_of!(H, state) + offset_of!(State<Vec<u8>>, mag) + size_of::<Vec<Vec<u8>>>();
        assert!(mag_end <= 64, "the magazine ends at byte {mag_end}");
        for (field, at) in [
            ("busy", offset_of!(H, busy)),
            ("reclaim", offset_of!(H, reclaim)),
            ("batch", offset_of!(H, batch)),
            ("hits", offset_of!(H, hits)),
            ("puts", offset_of!(H, puts)),
            ("raw_index", offset_of!(H, raw_index)),
        ] {
            assert!(at < 64, "{field} at byte {at}");
        }
        assert!(align_of::<super::Local<Vec<u8>>>() >= 64);
        assert_eq!(offset_of!(super::Local<Vec<u8>>, hot) % 64, 0);
    }
}

#[cfg(all(test, not(reuse_pool_loom)))]
mod stocked_tests {
    use super::{shape, Local, MAGAZINE, MAX_DEQUE, MAX_PER_THREAD_CAP};
    use crate::depot::Depot;
    use std::sync::Arc;

    fn local(per_thread: usize, depot_objects: usize) -> Local<usize> {
        let (batch, _) = shape(per_thread);
        Local::new(per_thread, Arc::new(Depot::new(depot_objects, batch, 1)))
    }

    /// The deque never needs more than crossbeam's initial 64 slots, so it never resizes (which
    /// would pin crossbeam's global epoch inside the owner's window).
    #[test]
    fn shape_caps_the_deque() {
        assert_eq!(shape(128), (32, 3));
        assert_eq!(shape(48), (24, 1));
        assert_eq!(shape(1), (1, 0));
        assert_eq!(shape(MAX_PER_THREAD_CAP), (MAGAZINE, MAX_DEQUE));
        assert_eq!(shape(1 << 20), (MAGAZINE, MAX_DEQUE));
        const { assert!(MAX_DEQUE < 64) };
    }

    /// `is_stocked` follows the deque through a spill, the owner's pops, a steal and a retire.
    #[test]
    fn stocked_follows_the_deque() {
        // Three magazines of `MAGAZINE`: the private one and two in the deque.
        let l = local(3 * MAGAZINE, 0);
        assert!(!l.is_stocked(), "a new cache has nothing to steal");
        for i in 0..MAGAZINE {
            l.push_slow(i);
        }
        assert!(!l.is_stocked(), "a full magazine alone stays private");
        l.push_slow(MAGAZINE);
        assert!(l.is_stocked(), "the spill put a magazine in the deque");
        // The object that started the new magazine, then the deque's magazine, which empties it.
        assert_eq!(l.pop_slow(|| None), Some(MAGAZINE));
        assert_eq!(l.pop_slow(|| None), Some(MAGAZINE - 1));
        assert!(!l.is_stocked(), "the owner's pop emptied the deque");

        // Refill the magazine, spill it, and let a thief take it.
        for i in 0..MAGAZINE {
            l.push_slow(100 + i);
        }
        assert!(l.is_stocked());
        let stolen = l.steal().expect("a magazine to steal");
        assert_eq!(stolen.len(), MAGAZINE);
        assert!(l.is_stocked(), "thieves leave the hint to the owner");
        // The owner's next miss finds the deque empty and clears it.
        for _ in 0..MAGAZINE - 1 {
            assert!(l.pop_slow(|| None).is_some());
        }
        assert_eq!(l.pop_slow(|| None), None);
        assert!(!l.is_stocked());

        // Cleanup retires a stocked deque: it is left empty.
        for i in 0..MAGAZINE + 1 {
            l.push_slow(200 + i);
        }
        assert!(l.is_stocked());
        l.flag();
        let mut retired = Vec::new();
        l.retire(&mut retired);
        assert!(!l.is_stocked(), "the deque was emptied");
        assert_eq!(retired.len(), 2, "the spilled magazine and the partial one");
        assert!(
            l.steal().is_none(),
            "a thief finds nothing of what was retired"
        );
    }

    /// A full cache sends whole magazines to the depot, and takes them back from it on a miss;
    /// only when the depot is full too is a magazine dropped.
    #[test]
    fn overflow_goes_to_the_depot_and_back() {
        // One magazine of 4 per thread, a depot of two magazines.
        let l = local(4, 8);
        for i in 0..12 {
            l.push_slow(i);
        }
        let c = l.counters();
        let r = |a: &crate::sync::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(r(&c.depot_puts), 2, "two full magazines went to the depot");
        assert_eq!(r(&c.drops), 0);
        l.push_slow(12);
        assert_eq!(r(&c.drops), 4, "the depot was full: one magazine dropped");
        for i in 13..=16 {
            l.push_slow(i);
        }
        assert_eq!(r(&c.drops), 8);
        let mut got = Vec::new();
        while let Some(v) = l.pop_slow(|| None) {
            got.push(v);
        }
        assert_eq!(r(&c.depot_takes), 2);
        got.sort_unstable();
        // The depot's two magazines and the private one.
        assert_eq!(got, vec![0, 1, 2, 3, 4, 5, 6, 7, 16]);
    }

    /// A cache with the largest bound fills its deque to `MAX_DEQUE` magazines and then uses the
    /// depot; the deque's buffer never resizes.
    #[test]
    fn largest_bound_fills_the_deque_then_the_depot() {
        let l = local(1 << 20, 1 << 20);
        let n = MAX_PER_THREAD_CAP + 5 * MAGAZINE;
        for i in 0..n {
            l.push_slow(i);
        }
        let c = l.counters();
        let r = |a: &crate::sync::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(r(&c.depot_puts), 5);
        let mut all = Vec::new();
        while let Some(v) = l.pop_slow(|| None) {
            all.push(v);
        }
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
    }
}
