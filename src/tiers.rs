//! A pool's storage: every tier, and the order in which `get` searches them.
//!
//! 1. the current thread's magazine ([`Local::pop_fast_into`], no atomic read-modify-write);
//! 2. the current thread's deque ([`Local::pop_slow`]);
//! 3. the pool's per-CPU depot ([`crate::depot`]): the current CPU's shard, then the others;
//! 4. a bounded probe of other threads' deques ([`PROBE`] of them, Go's `getSlow`);
//! 5. the victim tier;
//! 6. `None`: the caller runs `create`.
//!
//! `Tiers` is created lazily on a pool's first use, registered with [`crate::registry`] so that
//! cleanup cycles visit it, and drained when the pool drops.

use crate::barrier;
use crate::depot::{self, Depot};
use crate::drops::drop_caught;
use crate::local::{self, Local, Other};
use crate::locals::Locals;
use crate::placement::Span;
use crate::registry::{self, Cycle};
use crate::stats::Stats;
use crate::sync::{bump, AtomicBool, AtomicU64, Ordering};
use crate::thread_id::{self, ThreadId};
use crate::victim::VictimTier;
use std::any::Any;
use std::mem;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::panic;
use std::sync::Arc;

/// Most other threads' caches a miss looks at before it goes on to the victim tier, so that a
/// miss costs the same however many threads exist. Successive misses of a thread look at
/// successive groups (`Local::next_probe`), so every cache is probed in turn.
pub(crate) const PROBE: usize = 8;

#[derive(Debug)]
pub(crate) struct Tiers<T> {
    locals: Locals<T>,
    /// Full magazines that overflowed the threads' caches, one lock-free shard per CPU.
    depot: Arc<Depot<T>>,
    victims: VictimTier<T>,
    /// Bound on the objects each thread caches (magazine plus deque).
    per_thread: usize,
    /// Magazines retired by the current cycle, between `Cycle::retire` and `Cycle::rotate`.
    /// Only the thread running the cycle touches it (under the cycle lock); no user code runs
    /// while it is locked.
    retired: crate::sync::Mutex<Vec<Vec<T>>>,
    /// Set once, under the cycle lock, when the pool drops; cycles skip a dead pool.
    dead: AtomicBool,
    /// Counts for work done off the owners' paths (cleanup, pool drop, threads without a cache).
    /// Read-modify-writes here are fine: none of these is on a hit path.
    cold_drops: AtomicU64,
    cold_misses: AtomicU64,
    cold_steals: AtomicU64,
    cold_victim_hits: AtomicU64,
    /// `Tiers::<T>::close`, stored where `T: Send + 'static` is known, for the pool's `Drop`.
    close: fn(Arc<Tiers<T>>),
    /// The pool's return path for its guards, whose `Drop` cannot name the pool's bounds (see
    /// `crate::guard`); set by the pool that owns these tiers, before they are shared. Kept here
    /// rather than in every guard, so that a guard is its pool, its home and its object.
    guard_put: PutFrom<T>,
    /// The owning pool's own bytes at its first use (`with_pool_at`); empty where unknown.
    pool_span: Span,
}

impl<T> Tiers<T> {
    /// The function that unregisters and drains these tiers when their pool drops.
    pub(crate) fn close_fn(&self) -> fn(Arc<Tiers<T>>) {
        self.close
    }

    /// The return path for the guards of the pool that owns these tiers.
    #[inline(always)]
    pub(crate) fn guard_put(&self) -> PutFrom<T> {
        self.guard_put
    }
}

/// The parts of a [`Pooled`](crate::Pooled)'s return that need the pool's types, with the pool passed as an
/// untyped pointer: the pool's storage keeps this function, and `Tiers<T>` cannot name
/// `Pool<T, F, R, K>`. With [`Stage::Filter`] it runs `reset` and `keep_if` and returns whether to
/// keep the object (on `false` it was dropped); with [`Stage::Put`] it returns the object through
/// the full lookup (and returns `true`).
///
/// # Safety (of calling it)
///
/// `pool` points to a live `Pool<T, F, R, K>` of the types the pointer was made for, and `slot`
/// holds an object, which the call takes over except when `Stage::Filter` returns `true`.
pub(crate) type PutFrom<T> = unsafe fn(*const (), &mut ManuallyDrop<T>, Stage) -> bool;

/// What a [`PutFrom`] call does.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stage {
    /// `reset`, then `keep_if`.
    Filter,
    /// The return after the filter, when the inline hit did not take the object.
    Put,
}

/// [`PutFrom`] for tiers made outside a pool (the models and unit tests), which hand out no
/// guards.
///
/// # Safety
///
/// Never to be called.
pub(crate) unsafe fn no_pool<T>(_: *const (), _: &mut ManuallyDrop<T>, _: Stage) -> bool {
    unreachable!("reuse_pool: a guard of storage that belongs to no pool")
}

/// The cache a guard's object came from.
///
/// Valid as long as the pool: caches live until the pool drops. It is used only by a thread that
/// holds the cache's index (`Local::is_current`), so the cache is that thread's own.
///
/// `local` is `None` when the object was taken on a thread without a cache (exiting).
#[derive(Debug)]
pub(crate) struct Home<'a, T> {
    local: Option<&'a Local<T>>,
}

impl<T> Home<'_, T> {
    /// No home: the guard returns through the full lookup.
    pub(crate) const NONE: Self = Home { local: None };
}

impl<'a, T> Home<'a, T> {
    /// The cache's address, exposed (0 for none), for a guard to keep (`crate::guard`).
    #[inline(always)]
    pub(crate) fn addr(self) -> usize {
        self.local.map_or(0, |l| l as *const Local<T> as usize)
    }

    /// The home whose address `addr` gave.
    ///
    /// # Safety
    ///
    /// `addr` came from `addr` on a `Home<'a, T>`, and the cache is still borrowed for `'a`.
    #[inline(always)]
    pub(crate) unsafe fn from_addr(addr: usize) -> Self {
        let local = addr as *const Local<T>;
        // SAFETY: forwarded from the caller: 0 or the exposed address of a live `&'a Local<T>`.
        let local = unsafe { local.as_ref() };
        Home { local }
    }

    /// The cache, if the calling thread still owns it.
    #[inline(always)]
    pub(crate) fn current(self) -> Option<&'a Local<T>> {
        self.local.filter(|l| l.is_current())
    }
}

impl<T> Clone for Home<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Home<'_, T> {}

impl<T: Send + 'static> Tiers<T> {
    /// Storage for a pool caching up to `max_per_thread` objects per thread and `max_shared` in
    /// its depot.
    pub(crate) fn new(max_per_thread: usize, max_shared: usize) -> Self {
        Self::with_shards(max_per_thread, max_shared, depot::shard_count())
    }

    /// As `new`, with `shards` depot shards.
    pub(crate) fn with_shards(max_per_thread: usize, max_shared: usize, shards: usize) -> Self {
        assert!(max_per_thread > 0, "max_per_thread must be at least 1");
        barrier::init();
        let (batch, _) = local::shape(max_per_thread);
        Tiers {
            locals: Locals::new(),
            depot: Arc::new(Depot::new(max_shared, batch, shards)),
            victims: VictimTier::new(),
            per_thread: max_per_thread,
            retired: crate::sync::Mutex::new(Vec::new()),
            dead: AtomicBool::new(false),
            cold_drops: AtomicU64::new(0),
            cold_misses: AtomicU64::new(0),
            cold_steals: AtomicU64::new(0),
            cold_victim_hits: AtomicU64::new(0),
            close: Self::close,
            guard_put: no_pool::<T>,
            pool_span: Span::new(0, 0),
        }
    }

    /// These tiers for a pool whose fields (which a hit loads) lie at `pool`: the span that
    /// installs place the threads' caches away from (`crate::placement`).
    pub(crate) fn with_pool_at(mut self, pool: Span) -> Self {
        self.pool_span = pool;
        self
    }

    /// These tiers with `put` as their guards' return path (`crate::guard::put_from` for the
    /// owning pool's types).
    pub(crate) fn with_guard_put(mut self, put: PutFrom<T>) -> Self {
        self.guard_put = put;
        self
    }

    /// Pool drop: unregisters (waiting for a cycle in progress on another thread), then drops
    /// every cached object. A panic from an object's `Drop` is resumed after all are dropped.
    fn close(tiers: Arc<Tiers<T>>) {
        let cycle: Arc<dyn Cycle> = tiers.clone();
        registry::unregister(&cycle);
        drop(cycle);
        let panicked = tiers.shutdown();
        drop(tiers);
        if let Some(p) = panicked {
            if !std::thread::panicking() {
                panic::resume_unwind(p);
            }
        }
    }

    /// The current thread's cache, installing it on first use. `None` while the thread exits.
    #[inline(always)]
    fn local(&self) -> Option<(&Local<T>, ThreadId)> {
        let me = thread_id::current()?;
        Some((self.locals.get(me)?, me))
    }

    #[cold]
    fn local_or_install(&self) -> Option<(&Local<T>, ThreadId)> {
        let me = thread_id::register()?;
        let local = match self.locals.get(me) {
            Some(l) => l,
            None => {
                // What a hit on this thread loads besides the cache (`crate::placement`).
                let entry = self.locals.entry_address(me.id).unwrap_or(0);
                let avoid = [
                    Span::new(thread_id::tls_address(), mem::size_of::<usize>()),
                    Span::new(entry, mem::size_of::<usize>()),
                    self.pool_span,
                ];
                self.locals.install(me, &avoid, |hot| {
                    let [a, b, c] = avoid;
                    Local::placed(self.per_thread, self.depot.clone(), &[a, b, c, hot])
                        .for_index(me.id)
                })
            }
        };
        Some((local, me))
    }

    /// The current thread's cache if installed; `None` sends the caller to the slow path,
    /// which installs it (or finds that the thread has no index).
    ///
    /// One load from the flat part of the table for the first 1,024 indices (`locals`), so that
    /// the hit costs the same on every thread of a process with up to that many at once.
    #[inline(always)]
    fn local_fast(&self) -> Option<&Local<T>> {
        self.locals.get_direct(thread_id::index_or_huge())
    }

    /// The calling thread's cache's hot line and magazine buffer, and the table entry that
    /// points to the cache, if the cache is installed where a hit finds it; see
    /// `Pool::hit_addresses`.
    pub(crate) fn hit_addresses(&self) -> Option<(usize, usize, usize)> {
        let id = thread_id::index_or_huge();
        let (hot, mag) = self.local_fast()?.hot_addresses()?;
        Some((hot, mag, self.locals.entry_address(id)?))
    }

    /// The hit in the current thread's own magazine, the only part of `get` that is inlined: the
    /// object is written into `out` and the thread's cache is returned, for a guard to return to.
    /// `None` (with `out` untouched) sends the caller to [`take_home_slow`](Self::take_home_slow).
    #[inline(always)]
    pub(crate) fn take_hit_into(&self, out: &mut MaybeUninit<T>) -> Option<Home<'_, T>> {
        let local = self.local_fast()?;
        if local.pop_fast_into(out) {
            return Some(Home { local: Some(local) });
        }
        None
    }

    /// A cached object written into `out` (returns whether one was found), and the current
    /// thread's cache for a guard to return to.
    #[inline(always)]
    pub(crate) fn take_home_into(&self, out: &mut MaybeUninit<T>) -> (bool, Home<'_, T>) {
        match self.take_hit_into(out) {
            Some(home) => (true, home),
            None => self.take_home_slow(out),
        }
    }

    /// `get` past [`take_hit_into`](Self::take_hit_into): the magazine is empty or being
    /// reclaimed, or the thread's cache is not in the flat part of the table or not installed.
    /// Writes the object into `out` and returns whether it found one, with the thread's cache.
    #[cold]
    #[inline(never)]
    pub(crate) fn take_home_slow(&self, out: &mut MaybeUninit<T>) -> (bool, Home<'_, T>) {
        if let Some((local, me)) = self.local() {
            // `take_slow` looks in the magazine first (a thread beyond the flat part of the
            // table comes here with its magazine untried).
            let found = self.take_slow_into(local, me.id, out);
            return (found, Home { local: Some(local) });
        }
        (self.take_cold_into(out), Home::NONE)
    }

    /// Moves the object in `slot` to the current thread's cache.
    ///
    /// # Safety
    ///
    /// `slot` holds an object, which this call takes over: the caller must not use or drop it
    /// afterwards.
    #[inline(always)]
    pub(crate) unsafe fn put_from(&self, slot: &mut ManuallyDrop<T>) {
        match self.local_fast() {
            // SAFETY: forwarded from the caller.
            Some(local) => unsafe { Self::put_local_from(local, slot) },
            // SAFETY: forwarded from the caller.
            None => unsafe { self.put_slow_from(slot) },
        }
    }

    /// Moves the object in `slot` to `local`, the current thread's cache.
    ///
    /// # Safety
    ///
    /// As for `put_from`; `local` belongs to the calling thread.
    #[inline(always)]
    pub(crate) unsafe fn put_local_from(local: &Local<T>, slot: &mut ManuallyDrop<T>) {
        if !local.push_fast_from(slot) {
            // SAFETY: `push_fast_from` returned false, so the object is still in `slot`;
            // forwarded from the caller.
            unsafe { Self::put_own_slow(local, slot) }
        }
    }

    /// `put` with the thread's cache in hand and its magazine full (or being reclaimed):
    /// `push_slow` spills the magazine, under the lock if need be.
    ///
    /// # Safety
    ///
    /// As for `put_from`.
    #[cold]
    #[inline(never)]
    unsafe fn put_own_slow(local: &Local<T>, slot: &mut ManuallyDrop<T>) {
        // SAFETY: forwarded from the caller.
        unsafe { local.push_slow_from(slot) };
    }

    /// `put` when the thread's cache is not in the flat part of the table or not installed.
    ///
    /// # Safety
    ///
    /// As for `put_from`.
    #[cold]
    #[inline(never)]
    unsafe fn put_slow_from(&self, slot: &mut ManuallyDrop<T>) {
        match self.local() {
            // A thread beyond the flat part of the table: the same as the fast path's caller.
            // SAFETY: forwarded from the caller; the cache is the calling thread's own.
            Some((local, _)) => unsafe { Self::put_local_from(local, slot) },
            // SAFETY: forwarded from the caller.
            None => unsafe { self.put_cold_from(slot) },
        }
    }

    /// A cached object written into `out`; returns whether one was found.
    #[inline(always)]
    pub(crate) fn take_into(&self, out: &mut MaybeUninit<T>) -> bool {
        self.take_home_into(out).0
    }

    /// Writes an object into `out` and returns whether one was found. Every slow path writes
    /// straight into the caller's `out` rather than returning an `Option<T>`: each such value is
    /// a copy of `T` on the stack, and a large `T` needed many times its size of stack on a miss.
    #[cold]
    fn take_cold_into(&self, out: &mut MaybeUninit<T>) -> bool {
        match self.local_or_install() {
            Some((local, me)) => self.take_slow_into(local, me.id, out),
            None => self.take_without_local_into(out),
        }
    }

    /// `get` with the thread's cache in hand: its magazine, its deque, the depot
    /// (`Local::pop_slow`), then other threads' deques and the victim tier; `me` is the thread's
    /// index.
    #[cold]
    fn take_slow_into(&self, local: &Local<T>, me: usize, out: &mut MaybeUninit<T>) -> bool {
        crate::driver::after_fork_check();
        local.pop_slow_into(out, |out| {
            let start = me.wrapping_add(1).wrapping_add(local.next_probe(PROBE));
            match self.steal_probe(start) {
                Some(full) => Other::Stolen(full),
                None if self.victims.take_into(out) => Other::Victim,
                None => Other::Nothing,
            }
        })
    }

    /// Steals a magazine from one of the [`PROBE`] caches from index `start` on (modulo the
    /// table's length), reading their `stocked` hints first: a cache whose deque was last seen
    /// empty costs one load, no pin and no touch of its deque's indices, which its owner rewrites
    /// on every transfer. Runs outside every window and lock of the crate: a steal pins
    /// crossbeam's global epoch, which may run closures deferred by other libraries.
    fn steal_probe(&self, start: usize) -> Option<Vec<T>> {
        let n = self.locals.len();
        if n == 0 {
            return None;
        }
        (0..PROBE.min(n))
            .filter_map(|k| self.locals.at(start.wrapping_add(k) % n))
            .filter(|l| l.is_stocked())
            .find_map(Local::steal)
    }

    /// A thread that is exiting has no cache: take a magazine from the depot or another thread,
    /// hand out one object and give the rest back to the depot (dropping them, counted, only if
    /// it is full); else one object from the victim tier.
    #[cold]
    fn take_without_local_into(&self, out: &mut MaybeUninit<T>) -> bool {
        let full = match self.depot.pop() {
            Some(full) => Some(full),
            None => {
                let found = self.steal_probe(0);
                if found.is_some() {
                    self.cold_steals.fetch_add(1, Ordering::Relaxed);
                }
                found
            }
        };
        let Some(mut full) = full else {
            let found = self.victims.take_into(out);
            if found {
                self.cold_victim_hits.fetch_add(1, Ordering::Relaxed);
            }
            return found;
        };
        let found = local::pop_into(&mut full, out);
        debug_assert!(found, "the shared tiers never hold empty magazines");
        if !full.is_empty() {
            if let Err(rejected) = self.depot.push(full) {
                self.cold_drops
                    .fetch_add(rejected.len() as u64, Ordering::Relaxed);
                // SAFETY: `full` was not empty before `pop_into`, so `found` and `out` holds the object,
                // which the caller reads only on `true`.
                unsafe { local::drop_out_on_unwind(out, || crate::drops::drop_flat(rejected)) };
            }
        }
        found
    }

    /// Records a `create` call.
    #[inline]
    pub(crate) fn count_miss(&self) {
        match self.local() {
            Some((l, _)) => bump(&l.counters().misses, 1),
            None => {
                self.cold_misses.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Records objects dropped by the pool (rejected, discarded).
    #[inline]
    pub(crate) fn count_drop(&self, n: u64) {
        match self.local() {
            Some((l, _)) => bump(&l.counters().drops, n),
            None => {
                self.cold_drops.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// `put` on a thread whose cache is not installed: installs it, or drops the object.
    ///
    /// # Safety
    ///
    /// As for `put_from`.
    #[cold]
    unsafe fn put_cold_from(&self, slot: &mut ManuallyDrop<T>) {
        match self.local_or_install() {
            // SAFETY: forwarded from the caller.
            Some((local, _)) => unsafe { local.push_slow_from(slot) },
            None => {
                // A thread in its TLS destructors has no cache to return to; the object is
                // dropped, as Go drops what a dead P held.
                self.cold_drops.fetch_add(1, Ordering::Relaxed);
                // SAFETY: the caller gives `slot` up; the object is taken out of it exactly once.
                crate::drops::drop_flat(unsafe { ManuallyDrop::take(slot) });
            }
        }
    }

    /// Sums the counters of every cache and the cold counters.
    pub(crate) fn stats(&self) -> Stats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut s = Stats {
            misses: r(&self.cold_misses),
            steals: r(&self.cold_steals),
            victim_hits: r(&self.cold_victim_hits),
            drops: r(&self.cold_drops),
            ..Stats::default()
        };
        self.locals.for_each(|l| {
            let c = l.counters();
            let (hits, puts) = l.hits_and_puts();
            s.hits += hits;
            s.puts += puts;
            s.misses += r(&c.misses);
            s.steals += r(&c.steals);
            s.victim_hits += r(&c.victim_hits);
            s.drops += r(&c.drops);
            s.depot_puts += r(&c.depot_puts);
            s.depot_takes += r(&c.depot_takes);
        });
        s.cycles = crate::registry::cycles();
        s
    }

    /// Pool drop: marks the pool dead and drops everything it caches, after every lock and pin
    /// is released. The caller has exclusive use of the pool and has removed it from the
    /// registry under the cycle lock.
    pub(crate) fn shutdown(&self) -> Option<Box<dyn Any + Send>> {
        self.dead.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        self.locals.for_each(|l| {
            // A cache frozen by a fork may be locked by a thread that is gone: leaked.
            if !l.is_frozen() {
                l.drain_all(&mut all);
            }
        });
        all.extend(self.victims.take_all().into_magazines());
        let mut chains = Vec::new();
        self.depot.take_all(&mut chains);
        for mut c in chains {
            c.drain_into(&mut all);
        }
        all.append(&mut crate::sync::lock(&self.retired));
        drop_magazines(all, &self.cold_drops)
    }

    #[cfg_attr(any(miri, reuse_pool_loom, not(unix)), allow(dead_code))]
    /// Whether any thread of this pool holds index `id` (for the `fork` handlers).
    fn freeze_where(&self, owned_elsewhere: &dyn Fn(usize) -> bool) {
        for id in 0..self.locals.len() {
            if owned_elsewhere(id) {
                if let Some(l) = self.locals.at(id) {
                    l.freeze();
                }
            }
        }
    }
}

/// Drops every object of `mags`, counting each in `drops` before its drop (a panicking `Drop`
/// still ended the object's life); returns the first panic. The caller holds no lock or pin.
fn drop_magazines<T>(mags: Vec<Vec<T>>, drops: &AtomicU64) -> Option<Box<dyn Any + Send>> {
    let mut panicked = None;
    for m in mags {
        drops.fetch_add(m.len() as u64, Ordering::Relaxed);
        for v in m {
            drop_caught(v, &mut panicked);
        }
    }
    panicked
}

impl<T: Send + 'static> Cycle for Tiers<T> {
    fn flag(&self) -> bool {
        if self.dead.load(Ordering::Relaxed) {
            return false;
        }
        let mut any = false;
        self.locals.for_each(|l| {
            if !l.is_frozen() {
                l.flag();
                any = true;
            }
        });
        any
    }

    fn retire(&self) {
        if self.dead.load(Ordering::Relaxed) {
            return;
        }
        let mut retired = crate::sync::lock(&self.retired);
        self.locals.for_each(|l| {
            // A cache installed after `flag` was not announced to; it waits for the next cycle.
            if l.is_flagged() {
                l.retire(&mut retired);
            }
        });
    }

    fn rotate(self: Arc<Self>) -> Option<crate::registry::Garbage> {
        if self.dead.load(Ordering::Relaxed) {
            return None;
        }
        let retired = mem::take(&mut *crate::sync::lock(&self.retired));
        let mut chains = Vec::new();
        self.depot.take_all(&mut chains);
        let old = self.victims.rotate(retired, chains);
        Some(Box::new(move || {
            let mags = old.into_magazines();
            drop_magazines(mags, &self.cold_drops)
        }))
    }

    fn mark_dead(&self) {
        self.dead.store(true, Ordering::Relaxed);
    }

    fn fork_lock(&self) {
        self.victims.lock().raw_lock();
    }

    unsafe fn fork_unlock(&self) {
        // SAFETY: forwarded from the caller: `fork_lock` ran on this thread (or on the thread
        // that forked, in the child).
        unsafe { self.victims.lock().raw_unlock() }
    }

    fn freeze_owned_elsewhere(&self, owned_elsewhere: &dyn Fn(usize) -> bool) {
        self.freeze_where(owned_elsewhere);
    }
}
