//! The alternatives every workload of `benches/pool.rs` runs against, behind one small trait,
//! plus the thread harness and the files the report tool (`examples/bench_report.rs`) reads.
//!
//! Every implementation pools (or allocates) byte buffers of `Spec::cap` bytes. `get` hands out
//! a buffer with `n` bytes written into it (the "work"), `put` gives it back, `discard` drops
//! it for good where the implementation can. Each one counts its `create` calls in
//! `AtomicU64`s inside its create closure (sharded per thread, see `Creator`), so every group can
//! print creates per get; plain allocation creates on every get and is not counted on its path.
//! Where a workload makes no sense for an implementation, the trait says so (`CROSS_THREAD`,
//! `NO_DISCARD`) and the group records "n/a" or a note instead of a figure.

#![allow(dead_code)] // each bench binary uses a different part of this module

use std::alloc::{handle_alloc_error, GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;

// ---------------------------------------------------------------------------------------------
// What is pooled, and how it is created.
// ---------------------------------------------------------------------------------------------

/// The settings of one benchmark: buffer size, cost of `create`, bound of bounded pools.
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
    count: Box<[CachePadded<AtomicU64>]>,
}

impl Creator {
    pub fn new(spec: &Spec) -> Arc<Creator> {
        Arc::new(Creator {
            spec: *spec,
            count: (0..SHARDS)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
        })
    }

    /// A fresh `Vec<u8>` of `spec.cap` bytes of capacity (counted; spins `create_cost`).
    #[inline(never)]
    pub fn make(&self) -> Vec<u8> {
        let i = SHARD.with(|s| *s);
        self.count[i].fetch_add(1, Ordering::Relaxed);
        spin(self.spec.create_cost);
        Vec::with_capacity(self.spec.cap)
    }

    /// A fresh raw buffer from allocator `a` (spins `create_cost`; not counted: plain
    /// allocation creates on every get, see `Impl::EVERY_GET_CREATES`).
    #[inline(always)]
    pub fn make_raw<A: GlobalAlloc + Sync>(&self, a: &'static A) -> RawBuf<A> {
        spin(self.spec.create_cost);
        RawBuf::new(a, self.spec.cap)
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

fn boxed_create(c: &Arc<Creator>) -> BoxFn {
    let c = c.clone();
    Box::new(move || c.make())
}

// ---------------------------------------------------------------------------------------------
// A tiny Vec-like buffer over a `GlobalAlloc` called directly (not `#[global_allocator]`).
// ---------------------------------------------------------------------------------------------

/// `cap` bytes from allocator `A`, freed on drop: plain allocation through `A`'s `GlobalAlloc`.
pub struct RawBuf<A: GlobalAlloc + Sync + 'static> {
    ptr: NonNull<u8>,
    cap: usize,
    len: usize,
    alloc: &'static A,
}

// SAFETY: a `RawBuf` owns its allocation exclusively (like `Vec<u8>`), and the allocator it
// frees through is `Sync`, so moving it to another thread and freeing there is sound.
unsafe impl<A: GlobalAlloc + Sync + 'static> Send for RawBuf<A> {}

impl<A: GlobalAlloc + Sync + 'static> RawBuf<A> {
    fn layout(cap: usize) -> Layout {
        Layout::from_size_align(cap.max(1), 16).expect("buffer layout")
    }

    #[inline(always)]
    pub fn new(alloc: &'static A, cap: usize) -> Self {
        let layout = Self::layout(cap);
        // SAFETY: `layout` has a non-zero size (`cap.max(1)`).
        let p = unsafe { alloc.alloc(layout) };
        let ptr = NonNull::new(p).unwrap_or_else(|| handle_alloc_error(layout));
        RawBuf {
            ptr,
            cap,
            len: 0,
            alloc,
        }
    }

    #[inline]
    pub fn fill(&mut self, n: usize, byte: u8) {
        assert!(n <= self.cap);
        // SAFETY: `ptr` points to an allocation of at least `cap >= n` bytes that we own.
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr(), byte, n) };
        self.len = n;
    }

    #[inline]
    pub fn first(&self) -> u8 {
        if self.len == 0 {
            return 0;
        }
        // SAFETY: `len > 0` bytes were written by `fill`.
        unsafe { *self.ptr.as_ptr() }
    }
}

impl<A: GlobalAlloc + Sync + 'static> Drop for RawBuf<A> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: `ptr` was allocated by `alloc` with exactly this layout and is freed once.
        unsafe {
            self.alloc
                .dealloc(self.ptr.as_ptr(), Self::layout(self.cap))
        }
    }
}

static SYSTEM: System = System;
static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

// ---------------------------------------------------------------------------------------------
// The common trait.
// ---------------------------------------------------------------------------------------------

/// One way to get a buffer, use it and give it back.
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
    ///
    /// Every implementation marks `get`, `put` and `discard` `#[inline(always)]`: whether the
    /// compiler would inline them into the workload loop otherwise depends on the size of the
    /// loop's function, which would add a call to some alternatives and not to others.
    fn get(&self, n: usize, byte: u8) -> Self::H<'_>;

    /// Gives a buffer back.
    fn put<'a>(&'a self, h: Self::H<'a>);

    /// Drops a buffer instead of returning it, where possible (see `NO_DISCARD`).
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
    let mut all: Vec<fn(&mut V)> = vec![|v| v.visit::<ReusePool>()];
    if extras {
        all.push(|v| v.visit::<ReusePoolGuard>());
    }
    all.extend([
        |v: &mut V| v.visit::<TlsFloor>(),
        |v: &mut V| v.visit::<ThreadLocalList>(),
        |v: &mut V| v.visit::<MutexVec>(),
        |v: &mut V| v.visit::<QueuePool>(),
        |v: &mut V| v.visit::<ObjectPool>(),
        |v: &mut V| v.visit::<LockfreeLinear>(),
        |v: &mut V| v.visit::<LockfreeSpinLock>(),
        |v: &mut V| v.visit::<OPool>(),
        |v: &mut V| v.visit::<ShardedSlab>(),
        |v: &mut V| v.visit::<RegexAutomata>(),
        |v: &mut V| v.visit::<Alloc<SystemA>>(),
        |v: &mut V| v.visit::<Alloc<MimallocA>>(),
        |v: &mut V| v.visit::<Alloc<JemallocA>>(),
    ]);
    let n = all.len();
    all.rotate_left(part.0 * n / part.1.max(1) % n);
    for visit in all {
        visit(v);
    }
}

// ---- reuse-pool ------------------------------------------------------------------------------

/// `reuse_pool::Pool` through the Go-style `take`/`put` pair.
pub struct ReusePool {
    pub pool: reuse_pool::Pool<Vec<u8>, BoxFn>,
    creator: Arc<Creator>,
}

impl Impl for ReusePool {
    type H<'a> = Vec<u8>;
    const NAME: &'static str = "reuse-pool";

    fn new(spec: &Spec) -> Self {
        let creator = Creator::new(spec);
        ReusePool {
            pool: reuse_pool::Pool::from_fn(boxed_create(&creator)),
            creator,
        }
    }
    #[inline(always)]
    fn get(&self, n: usize, byte: u8) -> Vec<u8> {
        let mut v = self.pool.take();
        fill_vec(&mut v, n, byte);
        v
    }
    #[inline(always)]
    fn put(&self, h: Vec<u8>) {
        self.pool.put(h)
    }
    #[inline(always)]
    fn discard(&self, h: Vec<u8>) {
        drop(h)
    }
    fn peek(&self, h: &Vec<u8>) -> u8 {
        h[0]
    }
    fn creates(&self) -> u64 {
        self.creator.count()
    }
    fn stats(&self) -> Option<reuse_pool::Stats> {
        Some(self.pool.stats())
    }
}

/// `reuse_pool::Pool` through the `get` guard (returns itself on drop).
pub struct ReusePoolGuard(ReusePool);

impl Impl for ReusePoolGuard {
    type H<'a> = reuse_pool::Pooled<'a, Vec<u8>, BoxFn>;
    const NAME: &'static str = "reuse-pool-guard";

    fn new(spec: &Spec) -> Self {
        ReusePoolGuard(ReusePool::new(spec))
    }
    #[inline(always)]
    fn get(&self, n: usize, byte: u8) -> Self::H<'_> {
        let mut g = self.0.pool.get();
        fill_vec(&mut g, n, byte);
        g
    }
    #[inline(always)]
    fn put<'a>(&'a self, h: Self::H<'a>) {
        drop(h)
    }
    #[inline(always)]
    fn discard<'a>(&'a self, h: Self::H<'a>) {
        reuse_pool::Pooled::discard(h)
    }
    fn peek<'a>(&'a self, h: &Self::H<'a>) -> u8 {
        h[0]
    }
    fn creates(&self) -> u64 {
        self.0.creates()
    }
    fn stats(&self) -> Option<reuse_pool::Stats> {
        self.0.stats()
    }
}

// ---- the floor: a hand-rolled thread-local free list -----------------------------------------

thread_local! {
    /// The floor's free list. One per thread for the whole process: every workload runs on
    /// threads it spawns, so a list never outlives the benchmark that filled it.
    static FLOOR: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// `thread_local!` + `RefCell<Vec<Vec<u8>>>`: the fastest thing that can work (the floor).
/// Unbounded, never shares, never shrinks.
pub struct TlsFloor {
    creator: Arc<Creator>,
}

const PER_THREAD_ONLY: &str =
    "per-thread free list: an object returned on the consumer thread is never seen by the producer, so every get would be a create";

impl Impl for TlsFloor {
    type H<'a> = Vec<u8>;
    const NAME: &'static str = "tls-floor";
    const CROSS_THREAD: Option<&'static str> = Some(PER_THREAD_ONLY);

    fn new(spec: &Spec) -> Self {
        TlsFloor {
            creator: Creator::new(spec),
        }
    }
    #[inline(always)]
    fn get(&self, n: usize, byte: u8) -> Vec<u8> {
        let mut v = FLOOR
            .with_borrow_mut(|l| l.pop())
            .unwrap_or_else(|| self.creator.make());
        fill_vec(&mut v, n, byte);
        v
    }
    #[inline(always)]
    fn put(&self, h: Vec<u8>) {
        FLOOR.with_borrow_mut(|l| l.push(h))
    }
    #[inline(always)]
    fn discard(&self, h: Vec<u8>) {
        drop(h)
    }
    fn peek(&self, h: &Vec<u8>) -> u8 {
        h[0]
    }
    fn creates(&self) -> u64 {
        self.creator.count()
    }
}

// ---- thread_local::ThreadLocal free list -----------------------------------------------------

/// `thread_local::ThreadLocal<RefCell<Vec<Vec<u8>>>>`, one per pool, as a user would write it
/// (entries of different threads are adjacent: no padding).
pub struct ThreadLocalList {
    tl: thread_local::ThreadLocal<RefCell<Vec<Vec<u8>>>>,
    creator: Arc<Creator>,
}

impl Impl for ThreadLocalList {
    type H<'a> = Vec<u8>;
    const NAME: &'static str = "ThreadLocal-list";
    const CROSS_THREAD: Option<&'static str> = Some(PER_THREAD_ONLY);
    const NOTE: Option<&'static str> =
        Some("ThreadLocal<RefCell<Vec<_>>> without cache padding, as users write it");

    fn new(spec: &Spec) -> Self {
        ThreadLocalList {
            tl: thread_local::ThreadLocal::new(),
            creator: Creator::new(spec),
        }
    }
    #[inline(always)]
    fn get(&self, n: usize, byte: u8) -> Vec<u8> {
        let mut v = self
            .tl
            .get_or_default()
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| self.creator.make());
        fill_vec(&mut v, n, byte);
        v
    }
    #[inline(always)]
    fn put(&self, h: Vec<u8>) {
        self.tl.get_or_default().borrow_mut().push(h)
    }
    #[inline(always)]
    fn discard(&self, h: Vec<u8>) {
        drop(h)
    }
    fn peek(&self, h: &Vec<u8>) -> u8 {
        h[0]
    }
    fn creates(&self) -> u64 {
        self.creator.count()
    }
}

// ---- Mutex<Vec<T>> ---------------------------------------------------------------------------

/// `std::sync::Mutex<Vec<Vec<u8>>>`: one shared stack, unbounded.
pub struct MutexVec {
    stack: Mutex<Vec<Vec<u8>>>,
    creator: Arc<Creator>,
}

impl Impl for MutexVec {
    type H<'a> = Vec<u8>;
    const NAME: &'static str = "mutex-vec";

    fn new(spec: &Spec) -> Self {
        MutexVec {
            stack: Mutex::new(Vec::new()),
            creator: Creator::new(spec),
        }
    }
    #[inline(always)]
    fn get(&self, n: usize, byte: u8) -> Vec<u8> {
        let popped = self.stack.lock().unwrap().pop();
        let mut v = popped.unwrap_or_else(|| self.creator.make());
        fill_vec(&mut v, n, byte);
        v
    }
    #[inline(always)]
    fn put(&self, h: Vec<u8>) {
        self.stack.lock().unwrap().push(h)
    }
    #[inline(always)]
    fn discard(&self, h: Vec<u8>) {
        drop(h)
    }
    fn peek(&self, h: &Vec<u8>) -> u8 {
        h[0]
    }
    fn creates(&self) -> u64 {
        self.creator.count()
    }
}

// ---- crossbeam ArrayQueue --------------------------------------------------------------------

/// `crossbeam_queue::ArrayQueue<Vec<u8>>` of `spec.bound` slots; returns to a full queue drop.
pub struct QueuePool {
    q: ArrayQueue<Vec<u8>>,
    creator: Arc<Creator>,
}

impl Impl for QueuePool {
    type H<'a> = Vec<u8>;
    const NAME: &'static str = "arrayqueue";

    fn new(spec: &Spec) -> Self {
        QueuePool {
            q: ArrayQueue::new(spec.bound),
            creator: Creator::new(spec),
        }
    }
    #[inline(always)]
    fn get(&self, n: usize, byte: u8) -> Vec<u8> {
        let mut v = self.q.pop().unwrap_or_else(|| self.creator.make());
        fill_vec(&mut v, n, byte);
        v
    }
    #[inline(always)]
    fn put(&self, h: Vec<u8>) {
        let _ = self.q.push(h);
    }
    #[inline(always)]
    fn discard(&self, h: Vec<u8>) {
        drop(h)
    }
    fn peek(&self, h: &Vec<u8>) -> u8 {
        h[0]
    }
    fn creates(&self) -> u64 {
        self.creator.count()
    }
}

// ---- object-pool -----------------------------------------------------------------------------

/// `object_pool::Pool` (a mutex-protected stack) with `pull(create)`; discard via `detach`.
pub struct ObjectPool {
    pool: object_pool::Pool<Vec<u8>>,
    creator: Arc<Creator>,
}

impl Impl for ObjectPool {
    type H<'a> = object_pool::Reusable<'a, Vec<u8>>;
    const NAME: &'static str = "object-pool";

    fn new(spec: &Spec) -> Self {
        ObjectPool {
            pool: object_pool::Pool::new(0, Vec::new),
            creator: Creator::new(spec),
        }
    }
    #[inline(always)]
    fn get(&self, n: usize, byte: u8) -> Self::H<'_> {
        let mut r = self.pool.pull(|| self.creator.make());
        fill_vec(&mut r, n, byte);
        r
    }
    #[inline(always)]
    fn put<'a>(&'a self, h: Self::H<'a>) {
        drop(h)
    }
    #[inline(always)]
    fn discard<'a>(&'a self, h: Self::H<'a>) {
        drop(h.detach())
    }
    fn peek<'a>(&'a self, h: &Self::H<'a>) -> u8 {
        h[0]
    }
    fn creates(&self) -> u64 {
        self.creator.count()
    }
}

// ---- lockfree-object-pool --------------------------------------------------------------------

const LOCKFREE_NO_DISCARD: &str =
    "lockfree-object-pool cannot drop a pulled object (no detach): the 33 are returned, so it never starves";

/// `lockfree_object_pool::LinearObjectPool` (pages of slots with atomic flags, never shrinks).
pub struct LockfreeLinear {
    pool: lockfree_object_pool::LinearObjectPool<Vec<u8>>,
    creator: Arc<Creator>,
}

impl Impl for LockfreeLinear {
    type H<'a> = lockfree_object_pool::LinearReusable<'a, Vec<u8>>;
    const NAME: &'static str = "lockfree-linear";
    const NO_DISCARD: Option<&'static str> = Some(LOCKFREE_NO_DISCARD);

    fn new(spec: &Spec) -> Self {
        let creator = Creator::new(spec);
        let c = creator.clone();
        LockfreeLinear {
            pool: lockfree_object_pool::LinearObjectPool::new(move || c.make(), |_| {}),
            creator,
        }
    }
    #[inline(always)]
    fn get(&self, n: usize, byte: u8) -> Self::H<'_> {
        let mut r = self.pool.pull();
        fill_vec(&mut r, n, byte);
        r
    }
    #[inline(always)]
    fn put<'a>(&'a self, h: Self::H<'a>) {
        drop(h)
    }
    fn peek<'a>(&'a self, h: &Self::H<'a>) -> u8 {
        h[0]
    }
    fn creates(&self) -> u64 {
        self.creator.count()
    }
}

/// `lockfree_object_pool::SpinLockObjectPool` (a spin-locked stack).
pub struct LockfreeSpinLock {
    pool: lockfree_object_pool::SpinLockObjectPool<Vec<u8>>,
    creator: Arc<Creator>,
}

impl Impl for LockfreeSpinLock {
    type H<'a> = lockfree_object_pool::SpinLockReusable<'a, Vec<u8>>;
    const NAME: &'static str = "lockfree-spinlock";
    const NO_DISCARD: Option<&'static str> = Some(LOCKFREE_NO_DISCARD);

    fn new(spec: &Spec) -> Self {
        let creator = Creator::new(spec);
        let c = creator.clone();
        LockfreeSpinLock {
            pool: lockfree_object_pool::SpinLockObjectPool::new(move || c.make(), |_| {}),
            creator,
        }
    }
    #[inline(always)]
    fn get(&self, n: usize, byte: u8) -> Self::H<'_> {
        let mut r = self.pool.pull();
        fill_vec(&mut r, n, byte);
        r
    }
    #[inline(always)]
    fn put<'a>(&'a self, h: Self::H<'a>) {
        drop(h)
    }
    fn peek<'a>(&'a self, h: &Self::H<'a>) -> u8 {
        h[0]
    }
    fn creates(&self) -> u64 {
        self.creator.count()
    }
}

// ---- opool -----------------------------------------------------------------------------------

/// opool's allocator: our counted `create`.
pub struct OpoolAlloc(Arc<Creator>);

impl opool::PoolAllocator<Vec<u8>> for OpoolAlloc {
    #[inline]
    fn allocate(&self) -> Vec<u8> {
        self.0.make()
    }
}

/// `opool::Pool` (an `ArrayQueue` of `spec.bound` slots inside); discard via `into_inner`.
pub struct OPool {
    pool: opool::Pool<OpoolAlloc, Vec<u8>>,
    creator: Arc<Creator>,
}

impl Impl for OPool {
    type H<'a> = opool::RefGuard<'a, OpoolAlloc, Vec<u8>>;
    const NAME: &'static str = "opool";

    fn new(spec: &Spec) -> Self {
        let creator = Creator::new(spec);
        OPool {
            pool: opool::Pool::new(spec.bound, OpoolAlloc(creator.clone())),
            creator,
        }
    }
    #[inline(always)]
    fn get(&self, n: usize, byte: u8) -> Self::H<'_> {
        let mut r = self.pool.get();
        fill_vec(&mut r, n, byte);
        r
    }
    #[inline(always)]
    fn put<'a>(&'a self, h: Self::H<'a>) {
        drop(h)
    }
    #[inline(always)]
    fn discard<'a>(&'a self, h: Self::H<'a>) {
        drop(h.into_inner())
    }
    fn peek<'a>(&'a self, h: &Self::H<'a>) -> u8 {
        h[0]
    }
    fn creates(&self) -> u64 {
        self.creator.count()
    }
}

// ---- sharded-slab ----------------------------------------------------------------------------

/// `sharded_slab::Pool<Vec<u8>>`: `create()` reuses a cleared slot (its `Vec` keeps its
/// capacity); the handle is the key, returned with `clear(key)`.
pub struct ShardedSlab {
    pool: sharded_slab::Pool<Vec<u8>>,
    creator: Arc<Creator>,
}

impl Impl for ShardedSlab {
    type H<'a> = usize;
    const NAME: &'static str = "sharded-slab";
    const NO_DISCARD: Option<&'static str> = Some(
        "sharded-slab's Pool cannot drop a slot's value (clear keeps it): the 33 are returned, so it never starves",
    );

    fn new(spec: &Spec) -> Self {
        ShardedSlab {
            pool: sharded_slab::Pool::new(),
            creator: Creator::new(spec),
        }
    }
    #[inline(always)]
    fn get(&self, n: usize, byte: u8) -> usize {
        let mut r = self.pool.create().expect("sharded-slab is full");
        if r.capacity() < n.max(1) {
            // A slot that never held a buffer: this is the pool's "create".
            *r = self.creator.make();
        }
        fill_vec(&mut r, n, byte);
        r.key()
    }
    #[inline(always)]
    fn put(&self, h: usize) {
        self.pool.clear(h);
    }
    fn peek(&self, h: &usize) -> u8 {
        self.pool.get(*h).map_or(0, |r| r[0])
    }
    fn creates(&self) -> u64 {
        self.creator.count()
    }
}

// ---- regex-automata --------------------------------------------------------------------------

/// `regex_automata::util::pool::Pool` (owner-thread fast path, mutex stacks for the others).
pub struct RegexAutomata {
    pool: regex_automata::util::pool::Pool<Vec<u8>, BoxFn>,
    creator: Arc<Creator>,
}

impl Impl for RegexAutomata {
    type H<'a> = regex_automata::util::pool::PoolGuard<'a, Vec<u8>, BoxFn>;
    const NAME: &'static str = "regex-automata";
    const NO_DISCARD: Option<&'static str> = Some(
        "regex-automata's PoolGuard cannot be detached: the 33 are returned, so it never starves",
    );

    fn new(spec: &Spec) -> Self {
        let creator = Creator::new(spec);
        RegexAutomata {
            pool: regex_automata::util::pool::Pool::new(boxed_create(&creator)),
            creator,
        }
    }
    #[inline(always)]
    fn get(&self, n: usize, byte: u8) -> Self::H<'_> {
        let mut g = self.pool.get();
        fill_vec(&mut g, n, byte);
        g
    }
    #[inline(always)]
    fn put<'a>(&'a self, h: Self::H<'a>) {
        regex_automata::util::pool::PoolGuard::put(h)
    }
    fn peek<'a>(&'a self, h: &Self::H<'a>) -> u8 {
        h[0]
    }
    fn creates(&self) -> u64 {
        self.creator.count()
    }
}

// ---- plain allocation ------------------------------------------------------------------------

/// Names a `GlobalAlloc` static for [`Alloc`].
pub trait AllocKind: Sync + 'static {
    type A: GlobalAlloc + Sync + 'static;
    const NAME: &'static str;
    fn get() -> &'static Self::A;
}

pub struct SystemA;
impl AllocKind for SystemA {
    type A = System;
    const NAME: &'static str = "alloc-system";
    fn get() -> &'static System {
        &SYSTEM
    }
}

pub struct MimallocA;
impl AllocKind for MimallocA {
    type A = mimalloc::MiMalloc;
    const NAME: &'static str = "alloc-mimalloc";
    fn get() -> &'static mimalloc::MiMalloc {
        &MIMALLOC
    }
}

pub struct JemallocA;
impl AllocKind for JemallocA {
    type A = tikv_jemallocator::Jemalloc;
    const NAME: &'static str = "alloc-jemalloc";
    fn get() -> &'static tikv_jemallocator::Jemalloc {
        &JEMALLOC
    }
}

/// No pool: every get allocates `spec.cap` bytes through `K`'s `GlobalAlloc` (called directly),
/// every put frees. Every get counts as a create.
pub struct Alloc<K: AllocKind> {
    creator: Arc<Creator>,
    _k: std::marker::PhantomData<K>,
}

impl<K: AllocKind> Impl for Alloc<K> {
    type H<'a> = RawBuf<K::A>;
    const NAME: &'static str = K::NAME;
    const EVERY_GET_CREATES: bool = true;

    fn new(spec: &Spec) -> Self {
        Alloc {
            creator: Creator::new(spec),
            _k: std::marker::PhantomData,
        }
    }
    #[inline(always)]
    fn get(&self, n: usize, byte: u8) -> RawBuf<K::A> {
        let mut b = self.creator.make_raw(K::get());
        b.fill(n, byte);
        b
    }
    #[inline(always)]
    fn put(&self, h: RawBuf<K::A>) {
        drop(h)
    }
    fn peek(&self, h: &RawBuf<K::A>) -> u8 {
        h.first()
    }
    fn creates(&self) -> u64 {
        0
    }
}

// ---------------------------------------------------------------------------------------------
// Thread harness.
// ---------------------------------------------------------------------------------------------

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
    static CLOCK: std::sync::OnceLock<Clock> = std::sync::OnceLock::new();
    *CLOCK.get_or_init(
        || match std::env::var("REUSE_POOL_BENCH_CLOCK").as_deref() {
            Ok("cpu") => Clock::Cpu,
            Ok("wall") | Err(_) => Clock::Wall,
            Ok(other) => panic!("REUSE_POOL_BENCH_CLOCK must be `wall` or `cpu`, not {other:?}"),
        },
    )
}

/// CPU time of the calling thread.
pub fn thread_cpu_time() -> Duration {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable `timespec`.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        if rc == 0 {
            return Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        }
    }
    panic!("no per-thread CPU clock here: run with REUSE_POOL_BENCH_CLOCK=wall")
}

/// Pins the calling thread to CPU `cpu` (Linux; elsewhere, or with `REUSE_POOL_BENCH_PIN=0`,
/// nothing). `run_threads` pins thread `t` to CPU `t` when there are at least as many CPUs as
/// threads: two threads left to the scheduler sometimes share a CPU and sometimes not, which
/// moved the pipeline (a bounded channel between them) between 30 and 190 ns per message for
/// the channel alone from one run to the next on the 2-CPU machine of the benches.
pub fn pin_to_cpu(cpu: usize) {
    #[cfg(target_os = "linux")]
    {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        if !*ON.get_or_init(|| std::env::var("REUSE_POOL_BENCH_PIN").as_deref() != Ok("0")) {
            return;
        }
        // SAFETY: `set` is a zeroed, valid `cpu_set_t`; `CPU_SET` writes inside it (`cpu` is
        // below the number of CPUs, far below `CPU_SETSIZE`); `sched_setaffinity` reads it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cpu;
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
    let spans: Vec<(Instant, Instant, Duration)> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, prime, body) = (&barrier, &prime, &body);
                s.spawn(move || {
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
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .collect()
    });
    match clock {
        Clock::Wall => {
            let start = spans.iter().map(|s| s.0).min().expect("no threads");
            let end = spans.iter().map(|s| s.1).max().expect("no threads");
            end - start
        }
        Clock::Cpu => spans.iter().map(|s| s.2).sum::<Duration>() / threads as u32,
    }
}

// ---------------------------------------------------------------------------------------------
// Result files for the report tool.
// ---------------------------------------------------------------------------------------------

/// `$CARGO_TARGET_DIR/reuse-pool-bench` (or `target/reuse-pool-bench`), created.
pub fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("reuse-pool-bench");
    let _ = fs::create_dir_all(&dir);
    dir
}

/// One row of `results.tsv`: what a benchmark id did besides its timing.
#[derive(Debug, Clone)]
pub struct Row {
    pub group: String,
    pub name: String,
    pub threads: String,
    /// `create` calls over the whole benchmark (warm-up included); `None` where not counted.
    pub creates: Option<u64>,
    /// Objects handed out over the whole benchmark (warm-up included).
    pub gets: u64,
    pub note: String,
}

fn clean(s: &str) -> String {
    s.replace(['\t', '\n'], " ")
}

/// Prints `row` and merges it into `results.tsv` (replacing an earlier row with the same
/// group, name and threads; rows keep the order in which they were first written).
pub fn record(row: Row) {
    let per = match row.creates {
        Some(c) if row.gets > 0 => format!("{:.6}", c as f64 / row.gets as f64),
        _ => String::new(),
    };
    eprintln!(
        "  {}/{}/{}: creates {} / gets {} = {} per get{}{}",
        row.group,
        row.name,
        row.threads,
        row.creates.map_or("-".into(), |c| c.to_string()),
        row.gets,
        if per.is_empty() { "-" } else { &per },
        if row.note.is_empty() { "" } else { "; " },
        row.note
    );
    let line = format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        clean(&row.group),
        clean(&row.name),
        clean(&row.threads),
        row.creates.map_or(String::new(), |c| c.to_string()),
        row.gets,
        per,
        clean(&row.note)
    );
    merge_line(
        "results.tsv",
        "group\timpl\tthreads\tcreates\tgets\tcreates_per_get\tnote",
        3,
        line,
    );
}

static DRY_RUN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Stops writing result files (criterion's `--test` and `--list` modes run every benchmark once
/// or not at all; their counts would overwrite a real run's).
pub fn set_dry_run(dry: bool) {
    DRY_RUN.store(dry, Ordering::Relaxed);
}

/// Replaces or appends `line` in `file` (keyed on its first `key_fields` tab-separated fields).
pub fn merge_line(file: &str, header: &str, key_fields: usize, line: String) {
    if DRY_RUN.load(Ordering::Relaxed) {
        return;
    }
    let path = out_dir().join(file);
    let old = fs::read_to_string(&path).unwrap_or_default();
    let key = |l: &str| {
        l.split('\t')
            .take(key_fields)
            .collect::<Vec<_>>()
            .join("\t")
    };
    let mut lines: Vec<String> = old
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let k = key(&line);
    match lines.iter().position(|l| key(l) == k) {
        Some(i) => lines[i] = line,
        None => lines.push(line),
    }
    let mut out = String::new();
    let _ = writeln!(out, "{header}");
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    if let Err(e) = fs::write(&path, out) {
        eprintln!("cannot write {}: {e}", path.display());
    }
}

/// Resident set size of this process in bytes (`/proc/self/statm`, second field).
pub fn rss_bytes() -> u64 {
    let statm = fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * page_size()
}

fn page_size() -> u64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `sysconf` has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if p > 0 {
            return p as u64;
        }
    }
    4096
}

/// Gives the system allocator's free memory back to the OS where it can (glibc `malloc_trim`).
pub fn trim_system_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` has no preconditions.
        unsafe { libc::malloc_trim(0) };
        true
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
