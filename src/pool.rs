//! The pool front end: [`Pool`], its `const` builder, and Go-style `take`/`put`.

use crate::depot::DEFAULT_MAX_SHARED;
use crate::guard::{Pooled, PooledOwned};
use crate::registry::{self, Cycle};
use crate::stats::Stats;
use crate::tiers::{Home, Tiers};
use std::fmt;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

/// Default bound on objects cached per thread (magazine plus deque), see
/// [`Pool::max_per_thread`].
pub const DEFAULT_MAX_PER_THREAD: usize = 128;

/// A pool of reusable objects, like Go's `sync.Pool`.
///
/// `get` hands out a cached object (after `reset`) or a fresh one from `create`; returning it —
/// by dropping the [`Pooled`] guard or with [`put`](Pool::put) — caches it for the next `get`
/// on any thread. Cleanup cycles drop what stays unused (see [`cleanup`](crate::cleanup)).
///
/// `new` and the builders that take plain functions are `const`, so a pool can be a `static`:
///
/// ```
/// use reuse_pool::{Pool, Pooled};
///
/// static BUFS: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(4096))
///     .reset(Vec::clear)                       // runs on every return
///     .keep_if(|v| v.capacity() <= 64 << 10);  // false: drop instead of caching
///
/// let mut buf: Pooled<'_, Vec<u8>> = BUFS.get();
/// buf.extend_from_slice(b"hello");
/// drop(buf);                                   // back to the pool, cleared
/// assert!(BUFS.get().is_empty());
/// ```
///
/// # Without `reset`, objects come back as they were left
///
/// The pool never touches an object unless `reset` says how: a pool without it hands out the
/// previous user's contents. Clear in `reset` (or by hand after `get`):
///
/// ```
/// let pool = reuse_pool::Pool::new(String::new); // no reset
/// pool.get().push_str("left over");
/// assert_eq!(*pool.get(), "left over");         // the same String, contents and all
/// ```
///
/// # The type parameters
///
/// `Pool<T, F = fn() -> T, R = fn(&mut T), K = fn(&T) -> bool>`: `F` makes objects, `R` resets
/// them, `K` decides whether to keep them. `Pool<T>` (all plain functions) is what
/// [`new`](Pool::new), [`reset`](Pool::reset) and [`keep_if`](Pool::keep_if) build, in a
/// `const`. Closures that capture — a size known only at run time — go through
/// [`from_fn`](Pool::from_fn), [`reset_with`](Pool::reset_with) and
/// [`keep_if_with`](Pool::keep_if_with), which make the closure's type part of the pool's:
///
/// ```
/// use reuse_pool::Pool;
///
/// let limit: usize = "65536".parse().unwrap(); // from the configuration
/// let pool = Pool::new(|| Vec::<u8>::with_capacity(4096))
///     .reset(Vec::clear)
///     .keep_if_with(move |v: &Vec<u8>| v.capacity() <= limit);
/// pool.put(Vec::with_capacity(1 << 20)); // over the limit: dropped, not cached
/// assert_eq!(pool.stats().drops, 1);
/// ```
///
/// A closure's type has no name, so to keep such a pool in a struct field or a `static`
/// `OnceLock`, either box the closures (a `dyn` call on each `create`, `reset` and `keep_if`) or
/// read the run-time value from a `static` in a plain `fn`, which keeps the type `Pool<T>`:
///
/// ```
/// use reuse_pool::Pool;
/// use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
/// use std::sync::OnceLock;
///
/// type Create = Box<dyn Fn() -> Vec<u8> + Send + Sync>;
/// type Keep = Box<dyn Fn(&Vec<u8>) -> bool + Send + Sync>;
///
/// struct Server {
///     bufs: Pool<Vec<u8>, Create, fn(&mut Vec<u8>), Keep>,
/// }
///
/// fn server(size: usize) -> Server {
///     let create: Create = Box::new(move || Vec::with_capacity(size));
///     let keep: Keep = Box::new(move |v| v.capacity() <= 4 * size);
///     Server { bufs: Pool::from_fn(create).reset(Vec::clear).keep_if_with(keep) }
/// }
///
/// static BOXED: OnceLock<Pool<Vec<u8>, Create>> = OnceLock::new();
/// let pool = BOXED.get_or_init(|| Pool::from_fn(Box::new(|| Vec::with_capacity(100)) as Create));
/// assert!(pool.get().capacity() >= 100);
///
/// // Or a plain `fn` reading a setting: the type stays `Pool<Vec<u8>>`, and `static` works.
/// static LIMIT: AtomicUsize = AtomicUsize::new(64 << 10);
/// static BUFS: Pool<Vec<u8>> = Pool::new(Vec::new)
///     .reset(Vec::clear)
///     .keep_if(|v| v.capacity() <= LIMIT.load(Relaxed));
///
/// let s = server(512);
/// assert!(s.bufs.get().capacity() >= 512);
/// # let _ = BUFS.get();
/// ```
///
/// # Threads
///
/// `Pool<T, F, R, K>` is `Send` exactly when `T`, `F`, `R` and `K` are, and `Sync` exactly when
/// `T: Send` and `F`, `R` and `K` are `Sync`, through auto traits (no `unsafe impl`). Objects
/// that cannot move between threads cannot be pooled:
///
/// ```compile_fail
/// fn is_sync<T: Sync>() {}
/// is_sync::<reuse_pool::Pool<std::rc::Rc<u8>>>();
/// ```
///
/// Objects that are `Send` but not `Sync` can:
///
/// ```
/// fn is_sync<T: Sync>() {}
/// is_sync::<reuse_pool::Pool<std::cell::Cell<u8>>>();
/// ```
pub struct Pool<T, F = fn() -> T, R = fn(&mut T), K = fn(&T) -> bool> {
    create: F,
    reset: Option<R>,
    keep_if: Option<K>,
    /// `reset` or `keep_if` is set: a return must go through `filter` (one test on the hot path
    /// instead of two).
    filtered: bool,
    max_per_thread: usize,
    max_shared: usize,
    engine: Engine<T>,
}

/// The lazily created storage; unregisters and drains it when the pool drops.
///
/// No `OnceLock`: a `fork` while another thread is inside a `Once` leaves the child a `Once`
/// that stays "running" for good, and the child's first use of the pool would wait on it for
/// ever. The storage is published with one compare-and-swap instead, which a fork cannot cut in
/// half.
struct Engine<T> {
    /// The storage, null until created: one load on the hot path. A non-null value came from
    /// `Arc::into_raw` and owns that strong count. Set once (compare-and-swap from null,
    /// release), cleared only in `drop`.
    fast: AtomicPtr<Tiers<T>>,
    /// `fast` owns an `Arc<Tiers<T>>`: the pool is `Send` and `Sync` only when that is (which
    /// needs `T: Send`), as `Pool`'s docs promise.
    _owns: PhantomData<Arc<Tiers<T>>>,
}

impl<T> Engine<T> {
    const fn new() -> Self {
        Engine {
            fast: AtomicPtr::new(ptr::null_mut()),
            _owns: PhantomData,
        }
    }

    /// Whether the storage was created, read where the caller owns the pool by value (its
    /// `const` builders), so that no other thread can be storing to `fast`.
    const fn started_owned(&self) -> bool {
        // SAFETY: `as_ptr` points to the live `fast`; the caller owns the pool, so no other
        // thread accesses `fast` at the same time and a plain read does not race.
        let p = unsafe { *self.fast.as_ptr() };
        // `<*mut T>::is_null` is `const` only from Rust 1.84, so the null test goes through
        // `Option<NonNull<T>>`.
        // SAFETY: `Option<NonNull<T>>` has the size and layout of `*mut T`, with `None` for null
        // (the guaranteed null-pointer optimisation); every pointer value is a valid one.
        let p = unsafe { std::mem::transmute::<*mut Tiers<T>, Option<ptr::NonNull<Tiers<T>>>>(p) };
        p.is_some()
    }

    /// The storage, if created.
    #[inline(always)]
    fn get(&self) -> Option<&Tiers<T>> {
        // load-acquire: pairs with the compare-and-swap in `Pool::init`.
        let p = self.fast.load(Ordering::Acquire);
        // SAFETY: non-null, `p` came from `Arc::into_raw` and its count is released only in
        // `drop`, which `&self` rules out.
        unsafe { p.as_ref() }
    }
}

impl<T> Drop for Engine<T> {
    fn drop(&mut self) {
        // Dropping needs `T: Send + 'static`, which this impl cannot ask for; tiers exist only
        // if a method with those bounds created them, and that method stored the function.
        let p = std::mem::replace(self.fast.get_mut(), ptr::null_mut());
        if !p.is_null() {
            // SAFETY: `p` came from `Arc::into_raw` (`Pool::init`) and this is the one place
            // that takes its count back.
            let tiers = unsafe { Arc::from_raw(p) };
            let close = tiers.close_fn();
            close(tiers);
        }
    }
}

impl<T> Pool<T> {
    /// A pool whose objects come from `create`.
    ///
    /// Takes a plain `fn` so that a non-capturing closure coerces in a `static`; for closures
    /// that capture, use [`Pool::from_fn`].
    pub const fn new(create: fn() -> T) -> Self {
        Pool::from_fn(create)
    }
}

/// A pool of `T::default()`: `#[derive(Default)]` works on structs that hold pools.
///
/// ```
/// #[derive(Default)]
/// struct Server {
///     bufs: reuse_pool::Pool<Vec<u8>>,
/// }
/// let s = Server::default();
/// assert!(s.bufs.get().is_empty());
/// ```
impl<T: Default> Default for Pool<T> {
    fn default() -> Self {
        Pool::new(T::default)
    }
}

impl<T, F: Fn() -> T> Pool<T, F> {
    /// A pool whose objects come from `create`, a closure that may capture.
    ///
    /// The closure's type becomes the pool's `F`; see [the type parameters](Pool#the-type-parameters)
    /// for naming such a pool.
    ///
    /// ```
    /// let limit = 1 << 20;
    /// let pool = reuse_pool::Pool::from_fn(move || Vec::<u8>::with_capacity(limit));
    /// assert!(pool.get().capacity() >= limit);
    /// ```
    pub const fn from_fn(create: F) -> Self {
        Pool {
            create,
            reset: None,
            keep_if: None,
            filtered: false,
            max_per_thread: DEFAULT_MAX_PER_THREAD,
            max_shared: DEFAULT_MAX_SHARED,
            engine: Engine::new(),
        }
    }
}

impl<T, F, K> Pool<T, F, fn(&mut T), K> {
    /// Runs `reset` on every object returned to the pool, before it is cached.
    ///
    /// A plain `fn`, so that the chain stays `const` and the pool's type stays `Pool<T>`; for a
    /// closure that captures, use [`reset_with`](Pool::reset_with).
    pub const fn reset(self, reset: fn(&mut T)) -> Self {
        // SAFETY: `keep_if` is read out once and handed to `rebuild`, which forgets `self`'s
        // copy; the old `reset` is a `fn` pointer, which needs no drop.
        let keep_if = unsafe { ptr::read(&self.keep_if) };
        let max = self.max_per_thread;
        // SAFETY: as above.
        unsafe { self.rebuild(Some(reset), keep_if, max) }
    }
}

impl<T, F, R> Pool<T, F, R, fn(&T) -> bool> {
    /// Caches a returned object only if `keep_if` says so; otherwise drops it.
    ///
    /// The usual use is to drop buffers that grew too large, so that one huge request does not
    /// pin memory for good (Go issue 23199). Runs after `reset`.
    ///
    /// A plain `fn`, so that the chain stays `const` and the pool's type stays `Pool<T>`; for a
    /// closure that captures (a limit from the configuration), use
    /// [`keep_if_with`](Pool::keep_if_with).
    pub const fn keep_if(self, keep_if: fn(&T) -> bool) -> Self {
        // SAFETY: `reset` is read out once and handed to `rebuild`, which forgets `self`'s copy;
        // the old `keep_if` is a `fn` pointer, which needs no drop.
        let reset = unsafe { ptr::read(&self.reset) };
        let max = self.max_per_thread;
        // SAFETY: as above.
        unsafe { self.rebuild(reset, Some(keep_if), max) }
    }
}

impl<T, F, R, K> Pool<T, F, R, K> {
    /// Whether the pool's storage exists (it was used), for a caller that owns the pool by value
    /// (the `const` builders of `BufPool`).
    pub(crate) const fn started_owned(&self) -> bool {
        self.engine.started_owned()
    }

    /// Whether a return must run `reset` or `keep_if`.
    #[inline(always)]
    pub(crate) fn is_filtered(&self) -> bool {
        self.filtered
    }

    /// The return path of this pool's guards (`crate::guard::put_from` for its types).
    ///
    /// # Safety
    ///
    /// The pool's tiers exist: a guard of this pool has been made.
    #[inline(always)]
    pub(crate) unsafe fn guard_put(&self) -> crate::tiers::PutFrom<T> {
        // The thread that made the guard saw the storage published, and the guard reached this
        // thread by some synchronising hand-off.
        let tiers = self.engine.get();
        debug_assert!(
            tiers.is_some(),
            "reuse_pool: a guard of a pool without storage"
        );
        // SAFETY: the storage exists (caller).
        unsafe { tiers.unwrap_unchecked() }.guard_put()
    }

    /// Like [`reset`](Pool::reset), with a closure that may capture: runs `reset` on every
    /// object returned to the pool, before it is cached. The closure's type becomes the pool's
    /// `R`.
    ///
    /// ```
    /// let keep_bytes: usize = 16; // known at run time
    /// let pool = reuse_pool::Pool::new(Vec::<u8>::new)
    ///     .reset_with(move |v: &mut Vec<u8>| v.truncate(keep_bytes));
    /// pool.put(vec![7; 100]);
    /// assert_eq!(pool.take().len(), 16);
    /// ```
    ///
    /// Meant for building a pool: a pool that was used already starts again empty (the objects
    /// it cached are dropped).
    pub fn reset_with<R2: Fn(&mut T)>(self, reset: R2) -> Pool<T, F, R2, K> {
        let (create, _, keep_if, max_per_thread, max_shared) = self.into_settings();
        Pool::from_parts(
            create,
            Some(reset),
            keep_if,
            max_per_thread,
            max_shared,
            Engine::new(),
        )
    }

    /// Like [`keep_if`](Pool::keep_if), with a closure that may capture: caches a returned
    /// object only if `keep_if` says so. The closure's type becomes the pool's `K`.
    ///
    /// ```
    /// let limit: usize = std::env::var("BUF_LIMIT")
    ///     .ok()
    ///     .and_then(|s| s.parse().ok())
    ///     .unwrap_or(64 << 10);
    /// let pool = reuse_pool::Pool::new(Vec::<u8>::new)
    ///     .reset(Vec::clear)
    ///     .keep_if_with(move |v: &Vec<u8>| v.capacity() <= limit);
    /// pool.put(Vec::with_capacity(limit + 1));
    /// assert!(pool.try_take().is_none()); // dropped, not cached
    /// ```
    ///
    /// Meant for building a pool: a pool that was used already starts again empty (the objects
    /// it cached are dropped).
    pub fn keep_if_with<K2: Fn(&T) -> bool>(self, keep_if: K2) -> Pool<T, F, R, K2> {
        let (create, reset, _, max_per_thread, max_shared) = self.into_settings();
        Pool::from_parts(
            create,
            reset,
            Some(keep_if),
            max_per_thread,
            max_shared,
            Engine::new(),
        )
    }

    /// The pool's settings, for a pool of other types. Its storage is dropped with the objects
    /// in it: the storage keeps the guards' return path, which is made for the pool's exact
    /// types (`guard::put_from`), so a pool of other types must start with storage of its own.
    #[allow(clippy::type_complexity)]
    fn into_settings(self) -> (F, Option<R>, Option<K>, usize, usize) {
        let Pool {
            create,
            reset,
            keep_if,
            filtered: _,
            max_per_thread,
            max_shared,
            engine,
        } = self;
        drop(engine);
        (create, reset, keep_if, max_per_thread, max_shared)
    }

    /// Bounds the objects each thread caches (default [`DEFAULT_MAX_PER_THREAD`]); read it back
    /// with [`get_max_per_thread`](Pool::get_max_per_thread).
    ///
    /// Up to [`MAGAZINE`](crate::MAGAZINE) of them sit in the thread's private magazine, the rest
    /// in its deque, where other threads can steal them. A return that finds the thread's cache
    /// full moves a whole magazine to the pool's depot (see [`max_shared`](Pool::max_shared)),
    /// which all threads share; only when that is full too is the magazine dropped.
    /// The bound is split into the fewest magazines of equal size, so a bound that they do not
    /// divide caches a little less (33 is two magazines of 16: 32 objects). A thread caches at
    /// most 2,048 objects (64 magazines of 32) whatever the bound: a larger bound is served by
    /// the depot.
    ///
    /// # Panics
    ///
    /// If the pool was already used (its storage, built with the old bounds, exists): bounds are
    /// set before the first use. If `n` is zero; in a `static` or `const` this is a compile-time
    /// error:
    ///
    /// ```compile_fail
    /// static P: reuse_pool::Pool<Vec<u8>> = reuse_pool::Pool::new(Vec::new).max_per_thread(0);
    /// ```
    pub const fn max_per_thread(self, n: usize) -> Self {
        assert!(
            n > 0,
            "reuse_pool::Pool::max_per_thread: the per-thread bound must be at least 1"
        );
        assert!(
            !self.engine.started_owned(),
            "reuse_pool::Pool::max_per_thread: the pool was already used; set its bounds before its first use"
        );
        // SAFETY: `reset` and `keep_if` are each read out once and handed to `rebuild`, which
        // forgets `self`'s copies.
        let reset = unsafe { ptr::read(&self.reset) };
        // SAFETY: as above.
        let keep_if = unsafe { ptr::read(&self.keep_if) };
        // SAFETY: as above.
        unsafe { self.rebuild(reset, keep_if, n) }
    }

    /// The per-thread bound set by [`max_per_thread`](Pool::max_per_thread).
    ///
    /// ```
    /// static P: reuse_pool::Pool<u8> = reuse_pool::Pool::new(|| 0).max_per_thread(48);
    /// assert_eq!(P.get_max_per_thread(), 48);
    /// ```
    pub const fn get_max_per_thread(&self) -> usize {
        self.max_per_thread
    }

    /// The former name of [`get_max_per_thread`](Pool::get_max_per_thread).
    #[doc(hidden)]
    pub const fn per_thread_bound(&self) -> usize {
        self.max_per_thread
    }

    /// A pool from its settings and storage.
    const fn from_parts(
        create: F,
        reset: Option<R>,
        keep_if: Option<K>,
        max_per_thread: usize,
        max_shared: usize,
        engine: Engine<T>,
    ) -> Self {
        let filtered = reset.is_some() || keep_if.is_some();
        Pool {
            create,
            reset,
            keep_if,
            filtered,
            max_per_thread,
            max_shared,
            engine,
        }
    }

    /// Bounds the objects in the pool's depot, all CPUs' shards together (default
    /// [`DEFAULT_MAX_SHARED`]); `0` turns the depot off, so that a return that finds the thread's
    /// cache full is dropped.
    ///
    /// The depot holds the full magazines that overflow the threads' caches, one lock-free shard
    /// per CPU, until a thread whose cache is empty takes them: it is what lets a pipeline (get
    /// on one thread, return on another) keep thousands of objects in flight without creating
    /// new ones. What it holds ages like every other tier: cleanup cycles drop it after two
    /// cycles unused. The bound is rounded up to whole magazines per shard.
    ///
    /// ```
    /// // At most 1,024 buffers of 64 KiB (64 MiB) wait in the depot.
    /// static BIG: reuse_pool::Pool<Vec<u8>> =
    ///     reuse_pool::Pool::new(|| Vec::with_capacity(64 << 10)).max_shared(1024);
    /// assert_eq!(BIG.get_max_shared(), 1024);
    /// ```
    ///
    /// # Panics
    ///
    /// If the pool was already used (its storage, built with the old bound, exists): bounds are
    /// set before the first use.
    pub const fn max_shared(self, n: usize) -> Self {
        assert!(
            !self.engine.started_owned(),
            "reuse_pool::Pool::max_shared: the pool was already used; set its bounds before its first use"
        );
        let mut this = self;
        this.max_shared = n;
        this
    }

    /// The depot's bound, set by [`max_shared`](Pool::max_shared).
    pub const fn get_max_shared(&self) -> usize {
        self.max_shared
    }

    /// `self` with the three settings replaced.
    ///
    /// HACK: a `const fn` cannot move fields out of a generic value that has drop glue (that needs
    /// the unstable `const_precise_live_drops`), so the fields are read out of a `ManuallyDrop`.
    ///
    /// # Safety
    ///
    /// `self`'s `reset` and `keep_if` are forgotten, not dropped: the caller has read them out
    /// (and passes them back) or they need no drop (`fn` pointers).
    const unsafe fn rebuild(
        self,
        reset: Option<R>,
        keep_if: Option<K>,
        max_per_thread: usize,
    ) -> Self {
        let this = ManuallyDrop::new(self);
        let p = &this as *const ManuallyDrop<Self> as *const Self;
        // SAFETY:
        // - `ManuallyDrop<Self>` is `repr(transparent)`, so `p` points to a valid `Self`.
        // - `create` and `engine` are each read exactly once and `this` is never dropped, so
        //   ownership moves into the new value without a double drop or a leak.
        // - `reset` and `keep_if` are the caller's (see `# Safety`); `filtered` is recomputed.
        unsafe {
            Pool::from_parts(
                ptr::read(&(*p).create),
                reset,
                keep_if,
                max_per_thread,
                (*p).max_shared,
                ptr::read(&(*p).engine),
            )
        }
    }
}

impl<T: Send + 'static, F: Fn() -> T, R: Fn(&mut T), K: Fn(&T) -> bool> Pool<T, F, R, K> {
    #[inline(always)]
    pub(crate) fn tiers(&self) -> &Tiers<T> {
        match self.engine.get() {
            Some(tiers) => tiers,
            None => self.init(),
        }
    }

    #[cold]
    fn init(&self) -> &Tiers<T> {
        if let Some(tiers) = self.engine.get() {
            return tiers;
        }
        // Built outside any lock, registered (the registry's lock is one the `fork` handlers
        // take), then published with one compare-and-swap (see `Engine`). Registered first, so
        // that storage other threads can see is always one that cycles visit and that a forked
        // child freezes the caches of: a fork between a publication and its registration would
        // leave the child a pool whose caches of vanished threads it drops at the pool's drop.
        // The `fork` handlers first: they take the locks that registering takes.
        crate::fork::init();
        let fresh = Arc::new(
            Tiers::new(self.max_per_thread, self.max_shared)
                .with_guard_put(crate::guard::put_from::<T, F, R, K>)
                // A pool whose closures hold more than a few hundred bytes would meet every
                // block modulo 4 KiB; its first 512 bytes are the ones avoided.
                .with_pool_at(crate::placement::Span::new(
                    self as *const Self as usize,
                    std::mem::size_of::<Self>().min(512),
                )),
        );
        let cycle = fresh.clone() as Arc<dyn Cycle>;
        registry::register(cycle.clone());
        // The first pool starts the automatic driver (unless the interval was set).
        crate::driver::pool_registered();
        let raw = Arc::into_raw(fresh) as *mut Tiers<T>;
        // compare-and-swap, release on success: pairs with the load-acquire in `Engine::get`, so
        // the storage is initialised for whoever sees the pointer; acquire on failure, for the
        // same reason about the winner's storage.
        match self.engine.fast.compare_exchange(
            ptr::null_mut(),
            raw,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {}
            Err(_) => {
                // Another thread won the race: unregister and drop this thread's unused storage
                // (no thread ever saw it, so it holds no cache and no object).
                registry::unregister(&cycle);
                // SAFETY: `raw` came from `Arc::into_raw` above and was not published.
                drop(unsafe { Arc::from_raw(raw) });
            }
        }
        self.engine.get().expect("published just above")
    }

    /// Takes an object, returning it to the pool when the guard drops.
    ///
    /// The guard remembers the thread's cache the object came from, so a return on the same
    /// thread goes straight back to it; [`take`](Pool::take) and [`put`](Pool::put) do the same
    /// work without a guard, for objects whose life does not fit a scope.
    ///
    /// ```
    /// let pool = reuse_pool::Pool::new(String::new);
    /// let mut s = pool.get();
    /// s.push_str("scratch");
    /// ```
    #[inline(always)]
    pub fn get(&self) -> Pooled<'_, T, F, R, K> {
        let mut slot = MaybeUninit::uninit();
        if let Some(home) = self.tiers().take_hit_into(&mut slot) {
            // SAFETY: `take_hit_into` returned `Some`, so it wrote `slot`.
            return Pooled::with_home(self, unsafe { slot.assume_init() }, home);
        }
        // A slot of its own for the miss: `slot`'s address must not reach an out-of-line call,
        // or the hit keeps it in memory and moves the object into the guard through it (16-byte
        // loads of words just stored one by one: a store-forwarding stall, `crate::words`).
        let mut missed = MaybeUninit::uninit();
        let home = self.get_miss(&mut missed);
        // Made here rather than in `get_miss`: the guard's two words are written with one store
        // in the caller's frame, where a move of the guard reads them (`Pooled`'s layout).
        // SAFETY: `get_miss` wrote `missed`.
        Pooled::with_home(self, unsafe { missed.assume_init() }, home)
    }

    /// `get` past the hit: one call, so that the inlined part stays small. Writes the object
    /// into the caller's `slot` (a returned `T` would be one more copy of it on the stack).
    #[cold]
    #[inline(never)]
    fn get_miss(&self, slot: &mut MaybeUninit<T>) -> Home<'_, T> {
        let (found, home) = self.tiers().take_home_slow(slot);
        if !found {
            self.create_into(slot);
        }
        home
    }

    /// `create`, counted, written into `slot`.
    #[cold]
    fn create_into(&self, slot: &mut MaybeUninit<T>) {
        self.tiers().count_miss();
        slot.write((self.create)());
    }

    /// Like [`get`](Pool::get), for a pool in an [`Arc`]: the guard keeps the pool alive and is
    /// `'static`, so it can move into spawned threads and tasks.
    #[inline]
    pub fn get_owned(self: &Arc<Self>) -> PooledOwned<T, F, R, K> {
        PooledOwned::new(self.clone(), self.take())
    }

    /// Takes an object out of the pool for good (Go's `Get`); hand it back with
    /// [`put`](Pool::put) if you want it reused.
    ///
    /// Prefer [`get`](Pool::get) where the object is used within a scope: its guard cannot be
    /// forgotten. `take`/`put` suit an object kept in a struct, handed to an API that takes `T`,
    /// or returned on another path; an object that is never put back is simply not reused.
    ///
    /// ```
    /// let pool = reuse_pool::Pool::new(Vec::<u8>::new).reset(Vec::clear);
    /// let mut v = pool.take();
    /// v.push(1);
    /// pool.put(v);
    /// assert!(pool.take().is_empty());
    /// ```
    #[inline(always)]
    pub fn take(&self) -> T {
        let mut slot = MaybeUninit::uninit();
        if self.tiers().take_hit_into(&mut slot).is_some() {
            // SAFETY: `take_hit_into` returned `Some`, so it wrote `slot`.
            return unsafe { slot.assume_init() };
        }
        self.take_miss()
    }

    /// `take` past the hit: one call, so that the inlined part stays small.
    #[cold]
    #[inline(never)]
    fn take_miss(&self) -> T {
        let mut slot = MaybeUninit::uninit();
        if !self.tiers().take_home_slow(&mut slot).0 {
            self.create_into(&mut slot);
        }
        // SAFETY: written by `take_home_slow` (when it returned true) or by `create_into`.
        unsafe { slot.assume_init() }
    }

    /// A cached object, or `None` instead of calling `create`.
    #[inline(always)]
    pub fn try_take(&self) -> Option<T> {
        let mut slot = MaybeUninit::uninit();
        if self.tiers().take_into(&mut slot) {
            // SAFETY: `take_into` returned true, so it wrote `slot`.
            Some(unsafe { slot.assume_init() })
        } else {
            None
        }
    }

    /// Like [`try_take`](Pool::try_take), with a guard.
    #[inline]
    pub fn try_get(&self) -> Option<Pooled<'_, T, F, R, K>> {
        self.try_take().map(|v| Pooled::new(self, v))
    }

    /// Returns an object to the pool (Go's `Put`): runs `reset`, then `keep_if`, then caches it.
    ///
    /// The object need not have come from this pool.
    #[inline(always)]
    pub fn put(&self, value: T) {
        let mut value = ManuallyDrop::new(value);
        if crate::words::by_words::<T>() {
            // Copied word by word first, so that the compiler's own copy of `value` (16-byte
            // loads of words the caller may have just stored one by one) does not stall
            // (`crate::words`).
            let mut slot = MaybeUninit::<ManuallyDrop<T>>::uninit();
            // SAFETY: `value` holds the object, which moves to `slot`; `value` is not used or
            // dropped again.
            unsafe { crate::words::move_to::<ManuallyDrop<T>>(&value, slot.as_mut_ptr()) };
            // SAFETY: `slot` holds the object (just written) and is not used again.
            unsafe { self.put_from(slot.assume_init_mut(), Home::NONE) }
        } else {
            // SAFETY: `value` holds the object and is not used again.
            unsafe { self.put_from(&mut value, Home::NONE) }
        }
    }

    /// `put` for a guard: runs `reset` and `keep_if` in place, then returns the object to the
    /// cache it came from if the guard is dropped on the thread that took it.
    ///
    /// # Safety
    ///
    /// `slot` holds an object, which this call takes over: the caller must not use or drop it
    /// afterwards.
    #[inline(always)]
    pub(crate) unsafe fn put_from(&self, slot: &mut ManuallyDrop<T>, home: Home<'_, T>) {
        if self.filtered {
            // SAFETY: forwarded from the caller. On `false`, `filter` took the object, and
            // `slot` is not used again.
            if !unsafe { self.filter(slot) } {
                return;
            }
        }
        match home.current() {
            // SAFETY: as above; the cache is the calling thread's own.
            Some(local) => unsafe { Tiers::put_local_from(local, slot) },
            // SAFETY: as above.
            None => unsafe { self.tiers().put_from(slot) },
        }
    }

    /// `filter` for a guard's type-erased return: the same, inlined into that one out-of-line
    /// function.
    ///
    /// # Safety
    ///
    /// As for `filter`.
    pub(crate) unsafe fn filter_in_place(&self, slot: &mut ManuallyDrop<T>) -> bool {
        // SAFETY: forwarded from the caller.
        unsafe { self.filter(slot) }
    }

    /// A guard's return after `filter`, when its inline hit did not take the object: the full
    /// lookup of the current thread's cache.
    ///
    /// # Safety
    ///
    /// As for `put_from`; `reset` and `keep_if` have run.
    #[cold]
    pub(crate) unsafe fn put_unfiltered(&self, slot: &mut ManuallyDrop<T>) {
        // SAFETY: forwarded from the caller.
        unsafe { self.tiers().put_from(slot) }
    }

    /// Runs `reset`, then `keep_if`, on the object in `slot`, in place. Returns whether to keep
    /// it; on `false` the object has been dropped (counted) and `slot` must not be used again.
    /// If `reset` or `keep_if` panics, the object is dropped and the panic goes on, as when `put`
    /// unwinds.
    ///
    /// Inline, so that `reset` is called straight from the caller: `reset` behind an out-of-line
    /// `filter` made a return 3.7 ns slower (docs/PERFORMANCE.md, "What a hit costs"). Dropping a
    /// refused object stays out of line.
    ///
    /// # Safety
    ///
    /// `slot` holds an object.
    #[inline(always)]
    unsafe fn filter(&self, slot: &mut ManuallyDrop<T>) -> bool {
        /// Drops the object if `reset` or `keep_if` panics, as `put` does by unwinding.
        struct DropOnUnwind<T>(*mut ManuallyDrop<T>);
        impl<T> Drop for DropOnUnwind<T> {
            fn drop(&mut self) {
                // SAFETY: runs only while unwinding out of `reset` or `keep_if` below (the guard
                // is forgotten otherwise), when the pointer still points to the caller's slot,
                // which holds the object and is never used again.
                unsafe { ManuallyDrop::drop(&mut *self.0) }
            }
        }
        // Every access below goes through `p`, so the guard's copy stays valid (Stacked Borrows)
        // until it is forgotten.
        let p: *mut ManuallyDrop<T> = slot;
        let guard = DropOnUnwind(p);
        if let Some(reset) = &self.reset {
            // SAFETY: `p` comes from `slot`, a live exclusive reference holding the object.
            reset(unsafe { &mut *p });
        }
        let keep = match &self.keep_if {
            // SAFETY: as above.
            Some(keep_if) => keep_if(unsafe { &*p }),
            None => true,
        };
        std::mem::forget(guard);
        if !keep {
            // SAFETY: the object is in the slot; the caller gives the slot up on `false`.
            self.discard_cold(unsafe { ManuallyDrop::take(&mut *p) });
        }
        keep
    }

    /// `discard_value` for an object that `keep_if` refused, out of line.
    #[cold]
    #[inline(never)]
    fn discard_cold(&self, value: T) {
        self.discard_value(value);
    }

    /// Drops `value`, counting it as dropped by the pool. Through `cleanup::drop_flat`, so that a
    /// `Drop` that returns an object which is refused in turn does not nest on the stack.
    pub(crate) fn discard_value(&self, value: T) {
        self.tiers().count_drop(1);
        crate::drops::drop_flat(value);
    }

    /// Where the data that a hit on the calling thread touches lies in memory: the thread's
    /// index cell (in its TLS block), the pool's storage, the thread's cache (its hot line) and
    /// its magazine's buffer, in that order, then the thread's index in the pools' tables and
    /// the table entry that the hit loads. `None` until the thread has a cache that a hit finds.
    /// A diagnostic for `benches/hit_spread.rs`, not part of the API.
    #[doc(hidden)]
    pub fn hit_addresses(&self) -> Option<[usize; 6]> {
        let tiers = self.engine.get()?;
        let (hot, mag, entry) = tiers.hit_addresses()?;
        Some([
            crate::thread_id::tls_address(),
            tiers as *const Tiers<T> as usize,
            hot,
            mag,
            crate::thread_id::index_or_huge(),
            entry,
        ])
    }

    /// Approximate counters, summed over all threads.
    pub fn stats(&self) -> Stats {
        match self.engine.get() {
            Some(t) => t.stats(),
            None => Stats {
                cycles: crate::registry::cycles(),
                ..Stats::default()
            },
        }
    }
}

impl<T, F, R, K> fmt::Debug for Pool<T, F, R, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("type", &std::any::type_name::<T>())
            .field("reset", &self.reset.is_some())
            .field("keep_if", &self.keep_if.is_some())
            .field("max_per_thread", &self.max_per_thread)
            .field("initialized", &self.engine.get().is_some())
            .finish()
    }
}
