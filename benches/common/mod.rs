//! The alternatives every workload of `benches/pool.rs` runs against, behind one small trait
//! (`Impl`), and the thread harness (`harness.rs`). What each alternative is, as the report says
//! it, is `IMPLS` in `examples/support/workloads.rs`; where the result files lie and how they are
//! written and read is `examples/support/results.rs`.
//!
//! Every implementation pools (or allocates) byte buffers of `Spec::cap` bytes and counts its
//! `create` calls (sharded per thread, see `Creator`); plain allocation creates on every get and
//! is not counted on its path. Where a workload makes no sense for an implementation, the trait
//! says so (`CROSS_THREAD`, `NO_DISCARD`) and the group records "n/a" or a note instead.

#[path = "../../examples/support/cpu_time.rs"]
#[allow(dead_code)] // the process clock is the examples'
mod cpu_time;
mod harness;
#[path = "../../examples/support/results.rs"]
#[allow(dead_code)] // the reading half is the report's
mod results;
pub use harness::*;
pub use results::{merge_line, out_dir, set_dry_run};

use std::alloc::{handle_alloc_error, GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use lockfree_object_pool::{
    LinearObjectPool, LinearReusable, SpinLockObjectPool, SpinLockReusable,
};
use regex_automata::util::pool::{Pool as RegexPool, PoolGuard as RegexGuard};

/// The settings of one benchmark.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// Capacity of every buffer, in bytes.
    pub cap: usize,
    /// Extra time every `create` spins for (ExpensiveNew); zero for none.
    pub create_cost: Duration,
    /// Capacity of the pools that need one up front (`ArrayQueue`, `opool`).
    pub bound: usize,
}

impl Spec {
    /// 4 KiB buffers, free `create`, bounded pools hold 4096 objects.
    pub const DEFAULT: Spec = Spec {
        cap: 4096,
        create_cost: Duration::ZERO,
        bound: 4096,
    };
}

/// Shards of the create counter: a thread increments its own cache line, so counting does not
/// add contention between threads (a shared counter would, in starvation and plain allocation).
const SHARDS: usize = 64;

thread_local! {
    static SHARD: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS
    };
}

/// Creates buffers and counts the calls.
#[derive(Debug)]
pub struct Creator {
    spec: Spec,
    count: [CachePadded<AtomicU64>; SHARDS],
}

impl Creator {
    pub fn new(spec: &Spec) -> Arc<Creator> {
        let count = std::array::from_fn(|_| CachePadded::new(AtomicU64::new(0)));
        Arc::new(Creator { spec: *spec, count })
    }

    /// A fresh `Vec<u8>` of `spec.cap` bytes of capacity (counted; spins `create_cost`).
    #[inline(never)]
    pub fn make(&self) -> Vec<u8> {
        self.count[SHARD.with(|s| *s)].fetch_add(1, Ordering::Relaxed);
        spin(self.spec.create_cost);
        Vec::with_capacity(self.spec.cap)
    }

    pub fn count(&self) -> u64 {
        self.count.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// Busy-waits for `d` (ExpensiveNew's "create costs ~1 µs").
#[inline]
pub fn spin(d: Duration) {
    if d.is_zero() {
        return;
    }
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// The work done on every buffer handed out: clear it and write `n` bytes.
#[inline(always)]
pub fn fill_vec(v: &mut Vec<u8>, n: usize, byte: u8) {
    v.clear();
    v.resize(n, byte);
}

type BoxFn = Box<dyn Fn() -> Vec<u8> + Send + Sync>;
type Regex = RegexPool<Vec<u8>, BoxFn>;

/// The counted `create` as a closure of its own (it holds a clone of `c`).
fn counted_create(c: &Arc<Creator>) -> impl Fn() -> Vec<u8> + Clone + Send + Sync + 'static {
    let c = c.clone();
    move || c.make()
}

fn boxed_create(c: &Arc<Creator>) -> BoxFn {
    Box::new(counted_create(c))
}

/// One way to get a buffer, use it and give it back. `get`, `put` and `discard` are
/// `#[inline(always)]` everywhere: left to the compiler, inlining into the workload loop would
/// depend on the loop's size and add a call to some alternatives and not to others.
pub trait Impl: Sync + Sized {
    /// What a holder has in hand between `get` and `put` (an object, a guard or a key).
    type H<'a>: Send
    where
        Self: 'a;
    /// Name in benchmark ids and tables.
    const NAME: &'static str;
    /// `Some(reason)` when objects cannot meaningfully go from one thread to another (the
    /// pipeline workload is then reported as n/a with this reason).
    const CROSS_THREAD: Option<&'static str> = None;
    /// `Some(reason)` when `discard` cannot drop an object (it is returned instead).
    const NO_DISCARD: Option<&'static str> = None;
    /// Plain allocation: every get is a create (not counted, to keep the counter off the path).
    const EVERY_GET_CREATES: bool = false;
    /// A caveat printed beside every result of this implementation.
    const NOTE: Option<&'static str> = None;

    fn new(spec: &Spec) -> Self;
    /// Gets a buffer (cached or created) and writes `n` bytes of `byte` into it.
    fn get(&self, n: usize, byte: u8) -> Self::H<'_>;
    /// Gives a buffer back (by default the holder is a guard that returns itself on drop).
    #[inline(always)]
    fn put<'a>(&'a self, h: Self::H<'a>) {
        drop(h)
    }
    /// Drops a buffer instead of returning it, where possible (see `NO_DISCARD`).
    #[inline(always)]
    fn discard<'a>(&'a self, h: Self::H<'a>) {
        self.put(h)
    }
    /// Reads the buffer (the pipeline's consumer).
    fn peek<'a>(&'a self, h: &Self::H<'a>) -> u8;
    /// `create` calls so far.
    fn creates(&self) -> u64;
    /// The implementation's own counters, where it has any (reuse-pool's `Stats`).
    fn stats(&self) -> Option<reuse_pool::Stats> {
        None
    }
}

/// Something run once per implementation (a benchmark group, the memory measurement).
pub trait Visit {
    fn visit<I: Impl>(&mut self);
}

/// Visits every implementation. The list (reuse-pool, the floor, the other alternatives) is
/// started `part.0 / part.1` of the way down and wraps around: round `r` of `n` passes
/// `(r - 1, n)`, so that the rounds of a group start at different places and no implementation
/// always runs first. `extras` adds variants of reuse-pool that only some groups show (the
/// `get` guard API).
pub fn for_each_impl<V: Visit>(v: &mut V, extras: bool, part: (usize, usize)) {
    macro_rules! visits { ($($ty:ty),*) => { vec![$(|v: &mut V| v.visit::<$ty>()),*] } }
    let mut all: Vec<fn(&mut V)> = visits! {
        ReusePool, ReusePoolGuard, TlsFloor, ThreadLocalList, MutexVec, QueuePool, ObjectPool,
        LockfreeLinear, LockfreeSpinLock, OPool, ShardedSlab, RegexAutomataOwner, RegexAutomata,
        Alloc<System>, Alloc<mimalloc::MiMalloc>, Alloc<tikv_jemallocator::Jemalloc>
    };
    if !extras {
        all.remove(1); // ReusePoolGuard
    }
    let n = all.len();
    all.rotate_left(part.0 * n / part.1.max(1) % n);
    for visit in all {
        visit(v);
    }
}

/// Declares alternatives: a struct with the pool and the create counter, and its `Impl`.
/// `new: |spec, creator|` builds the pool; `get: |pool, creator|` takes a buffer, into which the
/// macro writes the work; `put` and `discard` are given where they differ from dropping the
/// holder; `peek` reads `h[0]`; constants and items (`stats`) go in the braces.
macro_rules! alternative {
    ($($(#[$doc:meta])* $ty:ident($name:literal): $pool:ty, H<$a:lifetime> = $h:ty;
     new: |$ns:pat_param, $nc:pat_param| $new:expr;
     get: |$gp:pat_param, $gc:pat_param| $get:expr;
     $(put: |$pp:pat_param, $ph:ident| $put:expr;)?
     $(discard: |$dp:pat_param, $dh:ident| $discard:expr;)?
     { $($item:item)* })*) => {$(
        $(#[$doc])*
        pub struct $ty {
            pool: $pool,
            creator: Arc<Creator>,
        }
        impl Impl for $ty {
            type H<$a> = $h;
            const NAME: &'static str = $name;
            $($item)*
            fn new(spec: &Spec) -> Self {
                let creator = Creator::new(spec);
                let ($ns, $nc) = (spec, &creator);
                $ty { pool: $new, creator }
            }
            #[inline(always)]
            fn get(&self, n: usize, byte: u8) -> Self::H<'_> {
                let ($gp, $gc) = (&self.pool, &self.creator);
                let mut h = $get;
                fill_vec(&mut h, n, byte);
                h
            }
            $(#[inline(always)]
            fn put<'a>(&'a self, $ph: Self::H<'a>) {
                let $pp = &self.pool;
                $put
            })?
            $(#[inline(always)]
            fn discard<'a>(&'a self, $dh: Self::H<'a>) {
                let $dp = &self.pool;
                $discard
            })?
            fn peek<'a>(&'a self, h: &Self::H<'a>) -> u8 {
                h[0]
            }
            fn creates(&self) -> u64 {
                self.creator.count()
            }
        }
    )*};
}

type ReuseInner = reuse_pool::Pool<Vec<u8>, BoxFn>;

thread_local! {
    /// The floor's free list. One per thread for the whole process: every workload runs on
    /// threads it spawns, so a list never outlives the benchmark that filled it.
    static FLOOR: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

const PER_THREAD_ONLY: &str =
    "per-thread free list: an object returned on the consumer thread is never seen by the producer, so every get would be a create";
const LOCKFREE_NO_DISCARD: Option<&str> =
    Some("lockfree-object-pool cannot drop a pulled object (no detach): the 33 are returned, so it never starves");
const REGEX_NO_DISCARD: Option<&str> =
    Some("regex-automata's PoolGuard cannot be detached: the 33 are returned, so it never starves");

/// opool's allocator: our counted `create`.
pub struct OpoolAlloc(Arc<Creator>);

impl opool::PoolAllocator<Vec<u8>> for OpoolAlloc {
    #[inline]
    fn allocate(&self) -> Vec<u8> {
        self.0.make()
    }
}

thread_local! {
    /// The pool this thread owns, for [`RegexAutomataOwner`]: (its `OwnedPools::id`, pool).
    static REGEX_OWNED: Cell<(usize, *const Regex)> = const { Cell::new((0, std::ptr::null())) };
}

/// One regex-automata pool per thread, each built on its thread's first get.
pub struct OwnedPools {
    /// Unique in the process (0 is never used), so a thread's entry of an earlier one is stale.
    id: usize,
    #[allow(clippy::vec_box)] // each pool's address must not move when the `Vec` grows
    pools: Mutex<Vec<Box<Regex>>>,
}

impl OwnedPools {
    /// The calling thread's pool, found through one thread-local read.
    #[inline(always)]
    fn mine(&self, c: &Arc<Creator>) -> &Regex {
        let (id, p) = REGEX_OWNED.get();
        let p = if id == self.id { p } else { self.build(c) };
        // SAFETY: an entry with `self.id` was stored by `self.build` on this thread (ids are
        // never reused), so `p` points into a `Box` in `self.pools`, which is only pushed to and
        // drops with `self`: the pool lives, unmoved, as long as the borrow of `self`.
        unsafe { &*p }
    }

    #[cold]
    fn build(&self, c: &Arc<Creator>) -> *const Regex {
        let pool = Box::new(RegexPool::new(boxed_create(c)));
        let p: *const _ = &*pool;
        self.pools.lock().unwrap().push(pool);
        REGEX_OWNED.set((self.id, p));
        p
    }
}

alternative! {
    /// `reuse_pool::Pool` through `take`/`put`.
    ReusePool("reuse-pool"): ReuseInner, H<'a> = Vec<u8>;
    new: |_, c| reuse_pool::Pool::from_fn(boxed_create(c));
    get: |p, _| p.take();
    put: |p, h| p.put(h);
    discard: |_, h| drop(h);
    { fn stats(&self) -> Option<reuse_pool::Stats> { Some(self.pool.stats()) } }

    /// `reuse_pool::Pool` through the `get` guard.
    ReusePoolGuard("reuse-pool-guard"): ReuseInner, H<'a> = reuse_pool::Pooled<'a, Vec<u8>, BoxFn>;
    new: |_, c| reuse_pool::Pool::from_fn(boxed_create(c));
    get: |p, _| p.get();
    discard: |_, h| reuse_pool::Pooled::discard(h);
    { fn stats(&self) -> Option<reuse_pool::Stats> { Some(self.pool.stats()) } }

    /// The floor: a `thread_local!` free list (`FLOOR`).
    TlsFloor("tls-floor"): (), H<'a> = Vec<u8>;
    new: |_, _| ();
    get: |_, c| FLOOR.with_borrow_mut(|l| l.pop()).unwrap_or_else(|| c.make());
    put: |_, h| FLOOR.with_borrow_mut(|l| l.push(h));
    discard: |_, h| drop(h);
    { const CROSS_THREAD: Option<&'static str> = Some(PER_THREAD_ONLY); }

    /// `thread_local::ThreadLocal` of free lists, one per pool, unpadded.
    ThreadLocalList("ThreadLocal-list"): thread_local::ThreadLocal<RefCell<Vec<Vec<u8>>>>, H<'a> = Vec<u8>;
    new: |_, _| thread_local::ThreadLocal::new();
    get: |p, c| p.get_or_default().borrow_mut().pop().unwrap_or_else(|| c.make());
    put: |p, h| p.get_or_default().borrow_mut().push(h);
    discard: |_, h| drop(h);
    {
        const CROSS_THREAD: Option<&'static str> = Some(PER_THREAD_ONLY);
        const NOTE: Option<&'static str> =
            Some("ThreadLocal<RefCell<Vec<_>>> without cache padding, as users write it");
    }

    /// One shared stack behind a `Mutex`.
    MutexVec("mutex-vec"): Mutex<Vec<Vec<u8>>>, H<'a> = Vec<u8>;
    new: |_, _| Mutex::new(Vec::new());
    get: |p, c| {
        let popped = p.lock().unwrap().pop();
        popped.unwrap_or_else(|| c.make())
    };
    put: |p, h| p.lock().unwrap().push(h);
    discard: |_, h| drop(h);
    {}

    /// An `ArrayQueue` of `spec.bound` slots; returns to a full queue drop.
    QueuePool("arrayqueue"): ArrayQueue<Vec<u8>>, H<'a> = Vec<u8>;
    new: |spec, _| ArrayQueue::new(spec.bound);
    get: |p, c| p.pop().unwrap_or_else(|| c.make());
    put: |p, h| drop(p.push(h));
    discard: |_, h| drop(h);
    {}

    /// `object_pool::Pool` with `pull(create)`; discard via `detach`.
    ObjectPool("object-pool"): object_pool::Pool<Vec<u8>>, H<'a> = object_pool::Reusable<'a, Vec<u8>>;
    new: |_, _| object_pool::Pool::new(0, Vec::new);
    get: |p, c| p.pull(|| c.make());
    discard: |_, h| drop(h.detach());
    {}

    /// `lockfree_object_pool::LinearObjectPool`.
    LockfreeLinear("lockfree-linear"): LinearObjectPool<Vec<u8>>, H<'a> = LinearReusable<'a, Vec<u8>>;
    new: |_, c| LinearObjectPool::new(counted_create(c), |_| {});
    get: |p, _| p.pull();
    { const NO_DISCARD: Option<&'static str> = LOCKFREE_NO_DISCARD; }

    /// `lockfree_object_pool::SpinLockObjectPool`.
    LockfreeSpinLock("lockfree-spinlock"): SpinLockObjectPool<Vec<u8>>, H<'a> = SpinLockReusable<'a, Vec<u8>>;
    new: |_, c| SpinLockObjectPool::new(counted_create(c), |_| {});
    get: |p, _| p.pull();
    { const NO_DISCARD: Option<&'static str> = LOCKFREE_NO_DISCARD; }

    /// `opool::Pool` (`spec.bound` slots); discard via `into_inner`.
    OPool("opool"): opool::Pool<OpoolAlloc, Vec<u8>>, H<'a> = opool::RefGuard<'a, OpoolAlloc, Vec<u8>>;
    new: |spec, c| opool::Pool::new(spec.bound, OpoolAlloc(c.clone()));
    get: |p, _| p.get();
    discard: |_, h| drop(h.into_inner());
    {}

    /// regex-automata's pool on threads that do not own it: the thread that builds it owns it.
    RegexAutomata("regex-automata (other threads)"): Regex, H<'a> = RegexGuard<'a, Vec<u8>, BoxFn>;
    new: |_, c| {
        let pool = RegexPool::new(boxed_create(c));
        drop(pool.get()); // this thread becomes the owner
        pool
    };
    get: |p, _| p.get();
    put: |_, h| RegexGuard::put(h);
    { const NO_DISCARD: Option<&'static str> = REGEX_NO_DISCARD; }

    /// regex-automata's pool on its owner thread: a pool of its own per thread (`OwnedPools`).
    RegexAutomataOwner("regex-automata (owner thread)"): OwnedPools,
        H<'a> = RegexGuard<'a, Vec<u8>, BoxFn>;
    new: |_, _| {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        OwnedPools { id: NEXT.fetch_add(1, Ordering::Relaxed), pools: Mutex::new(Vec::new()) }
    };
    get: |p, c| p.mine(c).get();
    put: |_, h| RegexGuard::put(h);
    {
        const NO_DISCARD: Option<&'static str> = REGEX_NO_DISCARD;
        const NOTE: Option<&'static str> = Some("each thread gets from a pool of its own, which it owns");
    }
}

/// `sharded_slab::Pool<Vec<u8>>`: `create()` reuses a cleared slot (its `Vec` keeps its
/// capacity); the holder is the slot's key, returned with `clear(key)`.
pub struct ShardedSlab(sharded_slab::Pool<Vec<u8>>, Arc<Creator>);

impl Impl for ShardedSlab {
    type H<'a> = usize;
    const NAME: &'static str = "sharded-slab";
    const NO_DISCARD: Option<&'static str> = Some(
        "sharded-slab's Pool cannot drop a slot's value (clear keeps it): the 33 are returned, so it never starves",
    );

    fn new(spec: &Spec) -> Self {
        ShardedSlab(sharded_slab::Pool::new(), Creator::new(spec))
    }
    #[inline(always)]
    fn get(&self, n: usize, byte: u8) -> usize {
        let mut r = self.0.create().expect("sharded-slab is full");
        if r.capacity() < n.max(1) {
            *r = self.1.make(); // a slot that never held a buffer: this is the pool's "create"
        }
        fill_vec(&mut r, n, byte);
        r.key()
    }
    #[inline(always)]
    fn put(&self, h: usize) {
        self.0.clear(h);
    }
    fn peek(&self, h: &usize) -> u8 {
        self.0.get(*h).map_or(0, |r| r[0])
    }
    fn creates(&self) -> u64 {
        self.1.count()
    }
}

/// A `GlobalAlloc` for [`Alloc`] (a unit struct, `A` its value) and its name.
pub trait AllocKind: GlobalAlloc + Sync + Sized + 'static {
    const NAME: &'static str;
    const A: Self;
}

macro_rules! alloc_kind {
    ($($ty:ty = $e:expr, $name:literal;)*) => {$(
        impl AllocKind for $ty { const NAME: &'static str = $name; const A: Self = $e; }
    )*};
}

alloc_kind! {
    System = System, "alloc-system";
    mimalloc::MiMalloc = mimalloc::MiMalloc, "alloc-mimalloc";
    tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc, "alloc-jemalloc";
}

/// `cap` bytes from allocator `K`, the first `len` written, freed on drop.
pub struct RawBuf<K: AllocKind> {
    ptr: NonNull<u8>,
    cap: usize,
    len: usize,
    _k: PhantomData<K>,
}

// SAFETY: a `RawBuf` owns its allocation exclusively (like `Vec<u8>`), and the allocator it
// frees through (`K::A`) is `Sync`, so moving it to another thread and freeing there is sound.
unsafe impl<K: AllocKind> Send for RawBuf<K> {}

fn raw_layout(cap: usize) -> Layout {
    Layout::from_size_align(cap.max(1), 16).expect("buffer layout")
}

impl<K: AllocKind> Drop for RawBuf<K> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: `ptr` was allocated by `K::A` with exactly this layout and is freed once.
        unsafe { K::A.dealloc(self.ptr.as_ptr(), raw_layout(self.cap)) }
    }
}

/// No pool: every get allocates `spec.cap` bytes through `K`'s `GlobalAlloc`, called directly
/// (not as `#[global_allocator]`), and every put frees them.
pub struct Alloc<K: AllocKind>(Spec, PhantomData<K>);

impl<K: AllocKind> Impl for Alloc<K> {
    type H<'a> = RawBuf<K>;
    const NAME: &'static str = K::NAME;
    const EVERY_GET_CREATES: bool = true;

    fn new(spec: &Spec) -> Self {
        Alloc(*spec, PhantomData)
    }
    #[inline(always)]
    fn get(&self, n: usize, byte: u8) -> RawBuf<K> {
        spin(self.0.create_cost);
        let (cap, layout) = (self.0.cap, raw_layout(self.0.cap));
        // SAFETY: `layout` has a non-zero size (`cap.max(1)`).
        let p = unsafe { K::A.alloc(layout) };
        let ptr = NonNull::new(p).unwrap_or_else(|| handle_alloc_error(layout));
        assert!(n <= cap);
        // SAFETY: `ptr` points to a fresh allocation of at least `cap >= n` bytes.
        unsafe { std::ptr::write_bytes(ptr.as_ptr(), byte, n) };
        let (len, _k) = (n, PhantomData);
        RawBuf { ptr, cap, len, _k }
    }
    fn peek(&self, h: &RawBuf<K>) -> u8 {
        if h.len == 0 {
            return 0;
        }
        // SAFETY: the first `len` bytes were written by `get`.
        unsafe { *h.ptr.as_ptr() }
    }
    fn creates(&self) -> u64 {
        0
    }
}
