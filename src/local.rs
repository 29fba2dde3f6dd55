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
//! * `stealer`: any thread, lock-free (epoch-protected); replaced by cleanup under `slow`.
//! * `stocked` (beside the stealer): read by any thread, written inside `state` accesses only.
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
//! Nothing inside a `busy` window runs user code, blocks or panics: `Vec::pop`, a `Vec::push`
//! below the capacity reserved at creation, swapping two `Vec`s, or a `Worker` push/pop.
//! HACK: a `Worker` push that grows the deque's buffer allocates inside the window; with the
//! default bounds (at most 3 magazines per deque, the buffer starts at 64) it never grows.

use crate::barrier;
use crate::deque::{steal_one, EpochCell, Stealer, Worker};
use crate::sync::{
    bump, compiler_fence, lock, spin_wait, AtomicBool, AtomicU64, AtomicU8, Mutex, Ordering,
    UnsafeCell,
};
use crossbeam_utils::CachePadded;
use std::mem::{self, ManuallyDrop, MaybeUninit};
use std::ptr;

/// Most objects per magazine: the private batch of each thread and the unit of every transfer
/// between threads. A cache's magazines all have the same size, the bound divided into the fewest
/// magazines of at most this many (a bound of 128 is four magazines of 32, 48 is two of 24).
///
/// A thread's private magazine is reachable by other threads only after a cleanup cycle, so this
/// is also the most that a blocked or exited thread keeps away from the others between cycles.
pub const MAGAZINE: usize = 32;

/// `Local::raw_index` of a cache that belongs to no thread index (never a thread's raw value).
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
/// two counters and the magazine's pointer and length) lies in the first 64 bytes: one cache line
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
    state: UnsafeCell<State<T>>,
    /// Empty magazines (capacity `batch`) for the owner to reuse. Owner thread only.
    spares: UnsafeCell<Vec<Vec<T>>>,
    /// Most magazines in the deque.
    max_batches: usize,
    /// Serialises access to `state` while `reclaim` is set.
    slow: Mutex<()>,
    /// Owner-written counters of the slow paths.
    counters: Counters,
}

/// One thread's cache for one pool.
#[derive(Debug)]
pub(crate) struct Local<T> {
    hot: CachePadded<Hot<T>>,
    /// `thread_id::raw()` of every thread that holds this cache's index: the index plus one.
    /// [`NO_INDEX`] for a cache made outside a table (the models). Immutable.
    raw_index: usize,
    /// What other threads read to steal, on its own cache line, away from the owner's stores.
    shared: CachePadded<Shared<T>>,
}

/// The part of a cache that other threads read when they look for a magazine to steal.
#[derive(Debug)]
struct Shared<T> {
    /// Stealer of the current worker.
    stealer: EpochCell<Stealer<Vec<T>>>,
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

// SAFETY: `state` and `spares` are the only fields that are not `Sync` by themselves.
// - `state` is accessed by the owner inside a `busy` window, or by a thread holding `slow`'s
//   lock, and the reclaim protocol (module docs) proves that these never overlap.
// - `spares` is accessed only by the thread that holds this cache's index (the owner); indices
//   pass between threads through the id allocator's mutex, which orders the accesses.
// Every other field is `Sync` when `T: Send`, and objects only move between threads, which
// `T: Send` allows.
unsafe impl<T: Send> Sync for Local<T> {}

/// What a `get` that missed its own tiers found elsewhere.
#[derive(Debug)]
pub(crate) enum Found<T> {
    /// A whole magazine stolen from another thread's deque (never empty).
    Stolen(Vec<T>),
    /// One object from the victim tier.
    Victim(T),
}

impl<T: Send + 'static> Local<T> {
    /// A cache holding at most `per_thread` objects (at least 1).
    pub(crate) fn new(per_thread: usize) -> Self {
        barrier::init();
        let per_thread = per_thread.max(1);
        // The fewest magazines that hold the bound, all of the same size: a bound of 48 is two
        // magazines of 24, not one of 32 that would leave 16 places unused.
        let magazines = per_thread.div_ceil(MAGAZINE);
        let batch = per_thread / magazines;
        let worker = Worker::new_lifo();
        let stealer = worker.stealer();
        Local {
            hot: CachePadded::new(Hot {
                busy: AtomicBool::new(false),
                reclaim: AtomicU8::new(if barrier::asymmetric() { 0 } else { FENCE }),
                state: UnsafeCell::new(State {
                    mag: Vec::with_capacity(batch),
                    worker,
                }),
                spares: UnsafeCell::new(Vec::new()),
                batch,
                max_batches: magazines - 1,
                slow: Mutex::new(()),
                hits: AtomicU64::new(0),
                puts: AtomicU64::new(0),
                counters: Counters::default(),
            }),
            shared: CachePadded::new(Shared {
                stealer: EpochCell::new(stealer),
                stocked: AtomicBool::new(false),
            }),
            raw_index: NO_INDEX,
        }
    }

    /// The cache of thread index `id` (see `raw_index`).
    pub(crate) fn for_index(mut self, id: usize) -> Self {
        self.raw_index = id + 1;
        self
    }

    /// Whether the calling thread holds this cache's index, i.e. owns it.
    #[inline(always)]
    pub(crate) fn is_current(&self) -> bool {
        crate::thread_id::raw() == self.raw_index
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

    /// Owner only: enters a lock-free window. Returns false if cleanup is reclaiming, in which
    /// case the window is already closed again and the caller must take the lock.
    #[inline(always)]
    fn enter(&self) -> bool {
        let h = &*self.hot;
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
                out.write(ptr::read(s.mag.as_ptr().add(len - 1)));
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
                s.mag.as_mut_ptr().add(len).write(ptr::read(&**slot));
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

    /// Owner only: `get` when the magazine is empty.
    ///
    /// Refills the magazine from the thread's own deque; failing that, calls `steal_other` (other
    /// threads' deques, then the victim tier), which returns a non-empty magazine. Returns `None`
    /// when every tier is empty.
    #[cold]
    pub(crate) fn pop_slow(&self, steal_other: impl FnOnce() -> Option<Found<T>>) -> Option<T> {
        let (value, empty) = self.owner_access(|s| {
            if let Some(v) = s.mag.pop() {
                return (Some(v), None);
            }
            let popped = s.worker.pop();
            self.set_stocked(s);
            match popped {
                Some(full) => {
                    let empty = mem::replace(&mut s.mag, full);
                    (s.mag.pop(), Some(empty))
                }
                None => (None, None),
            }
        });
        if let Some(e) = empty {
            self.give_spare(e);
        }
        if let Some(v) = value {
            bump(&self.hot.hits, 1);
            return Some(v);
        }
        // Steal outside any window: stealing pins the epoch, which may run deferred functions.
        let c = &self.hot.counters;
        let mut full = match steal_other()? {
            Found::Victim(v) => {
                bump(&c.victim_hits, 1);
                return Some(v);
            }
            Found::Stolen(full) => full,
        };
        let value = full.pop();
        debug_assert!(value.is_some(), "deques never hold empty magazines");
        bump(&c.steals, 1);
        if !full.is_empty() {
            let max_batches = self.hot.max_batches;
            let (empty, dropped) = self.owner_access(|s| {
                if s.mag.is_empty() {
                    // Nothing ran since the miss above except, possibly, cleanup emptying the
                    // magazine: install the stolen one.
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
            if let Some(d) = dropped {
                bump(&c.drops, d.len() as u64);
                drop(d);
            }
        }
        value
    }

    /// Owner only: `put` when the magazine is full (or cleanup is reclaiming this cache).
    ///
    /// Moves the full magazine to the deque and starts a new one with `value`. If the deque
    /// already holds its bound, the cache is full: `value` is handed back, to be dropped by the
    /// caller outside any window (counted as a drop).
    #[cold]
    pub(crate) fn push_slow(&self, value: T) -> Option<T> {
        let batch = self.hot.batch;
        let max_batches = self.hot.max_batches;
        let spare = (max_batches > 0).then(|| self.take_spare());
        let (unused, rejected) = self.owner_access(|s| {
            if s.mag.len() < batch {
                s.mag.push(value);
                return (spare, None);
            }
            match spare {
                Some(spare) if s.worker.len() < max_batches => {
                    let full = mem::replace(&mut s.mag, spare);
                    s.mag.push(value);
                    s.worker.push(full);
                    self.set_stocked(s);
                    (None, None)
                }
                spare => (spare, Some(value)),
            }
        });
        if let Some(spare) = unused {
            self.give_spare(spare);
        }
        let c = &self.hot.counters;
        bump(&self.hot.puts, 1);
        if rejected.is_some() {
            bump(&c.drops, 1);
        }
        rejected
    }

    /// Any thread: steals one magazine from this cache's deque.
    pub(crate) fn steal(&self) -> Option<Vec<T>> {
        self.shared.stealer.with(steal_one)
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

    /// Cleanup, step 2, after `barrier::heavy`: moves the magazine into the deque and retires
    /// the deque whole, in O(1). Returns the retired deque's stealer (this cache's share of the
    /// new victim tier), or `None` if the cache was empty.
    pub(crate) fn retire(&self) -> Option<Stealer<Vec<T>>> {
        let mut step = 0;
        // load-acquire: pairs with the store-release in `leave`; see the module docs for why a
        // `false` here means no lock-free window is open and none can open until we are done.
        while self.hot.busy.load(Ordering::Acquire) {
            spin_wait(&mut step);
        }
        let batch = self.hot.batch;
        let retired = self.locked(|s| {
            if !s.mag.is_empty() {
                let partial = mem::replace(&mut s.mag, Vec::with_capacity(batch));
                s.worker.push(partial);
            }
            let retired = if s.worker.is_empty() {
                None
            } else {
                let fresh = Worker::new_lifo();
                self.shared.stealer.replace(fresh.stealer(), |_| {});
                Some(mem::replace(&mut s.worker, fresh).stealer())
            };
            self.set_stocked(s);
            retired
        });
        // store-release: pairs with the load-acquire in `enter`; the owner's next access sees the
        // emptied cache.
        self.hot.reclaim.fetch_and(!RECLAIM, Ordering::Release);
        retired
    }

    /// Pool drop: everything this cache holds. The caller has exclusive use of the pool.
    pub(crate) fn drain_all(&self, out: &mut Vec<T>) {
        self.locked(|s| {
            out.append(&mut s.mag);
            while let Some(mut full) = s.worker.pop() {
                out.append(&mut full);
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
        ] {
            assert!(at < 64, "{field} at byte {at}");
        }
        assert!(align_of::<super::Local<Vec<u8>>>() >= 64);
        assert_eq!(offset_of!(super::Local<Vec<u8>>, hot) % 64, 0);
    }
}

#[cfg(all(test, not(reuse_pool_loom)))]
mod stocked_tests {
    use super::{Local, MAGAZINE};

    /// `is_stocked` follows the deque through a spill, the owner's pops, a steal and a retire.
    #[test]
    fn stocked_follows_the_deque() {
        // Three magazines of `MAGAZINE`: the private one and two in the deque.
        let l = Local::<usize>::new(3 * MAGAZINE);
        assert!(!l.is_stocked(), "a new cache has nothing to steal");
        for i in 0..MAGAZINE {
            assert!(l.push_slow(i).is_none());
        }
        assert!(!l.is_stocked(), "a full magazine alone stays private");
        assert!(l.push_slow(MAGAZINE).is_none());
        assert!(l.is_stocked(), "the spill put a magazine in the deque");
        // The object that started the new magazine, then the deque's magazine, which empties it.
        assert_eq!(l.pop_slow(|| None), Some(MAGAZINE));
        assert_eq!(l.pop_slow(|| None), Some(MAGAZINE - 1));
        assert!(!l.is_stocked(), "the owner's pop emptied the deque");

        // Refill the magazine, spill it, and let a thief take it.
        for i in 0..MAGAZINE {
            assert!(l.push_slow(100 + i).is_none());
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

        // Cleanup retires a stocked deque: the new one is empty.
        for i in 0..MAGAZINE + 1 {
            assert!(l.push_slow(200 + i).is_none());
        }
        assert!(l.is_stocked());
        l.flag();
        let retired = l.retire().expect("the cache held objects");
        assert!(!l.is_stocked(), "the fresh deque is empty");
        assert_eq!(retired.len(), 2, "the spilled magazine and the partial one");
    }
}
