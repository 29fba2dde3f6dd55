//! Guards that return their object to the pool when dropped.
//!
//! The structs have no trait bounds, so that code generic over `T` can name them with only the
//! bounds it needs (`fn f<T: AsRef<[u8]>>(g: &Pooled<'_, T>)`). A `Drop` impl must have exactly the
//! struct's bounds, so it cannot call the pool's return path, which needs `T: Send + 'static`
//! and the pool's closures: the pool's storage instead keeps that path as a function pointer,
//! taken when the pool creates its storage, where the bounds are known (`Pool::init`), and a
//! guard reads it from there (its pool has storage: the guard came from it).
//!
//! The hit needs no bounds: the guard's `Drop` moves the object straight back into its home
//! cache's magazine, inline, as `put` does. The function pointer is called only for what needs
//! the pool's types: `reset` and `keep_if` (one call; `put` inlines them instead), and a return
//! that misses (magazine full, another thread, a cache being reclaimed). No lock and no atomic
//! read-modify-write on a hit either way (`ci/hot_path.sh`).

use crate::pool::Pool;
use crate::tiers::{Home, Stage};
use crate::words;
use std::borrow::{Borrow, BorrowMut};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::num::NonZeroUsize;
use std::ops::{Deref, DerefMut};
use std::ptr;
use std::sync::Arc;

/// An object borrowed from a [`Pool`]; returns itself on drop.
///
/// Dereferences to `T`, and forwards `Display`, `Debug`, [`io::Read`], [`io::Write`],
/// [`fmt::Write`], `AsRef`/`AsMut` (of whatever `T` converts to) and `Borrow<T>`/`BorrowMut<T>`
/// where `T` has them, so a guard can be passed wherever `T` could, e.g. to `io::copy` or a
/// `fn emit(w: impl Write)`. Dropping it on another thread returns the object to that thread's
/// cache.
///
/// # Threads
///
/// A guard holds the object and a reference to its pool, so it is `Send` when `T: Send` and the
/// pool is `Sync` (`F`, `R` and `K` are `Sync`), and `Sync` when moreover `T: Sync`. With the
/// default `fn` pointer types that is exactly: `Send` when `T: Send`, `Sync` when `T: Send +
/// Sync`. So it can cross `.await` points and channels:
///
/// ```
/// fn is_send<X: Send>(_: &X) {}
/// fn is_sync<X: Sync>(_: &X) {}
/// let pool = reuse_pool::Pool::new(Vec::<u8>::new);
/// let g = pool.get();
/// is_send(&g);
/// is_sync(&g);
/// // `Cell` is `Send` but not `Sync`: the guard is `Send`, not `Sync`.
/// let cells = reuse_pool::Pool::new(|| std::cell::Cell::new(0u8));
/// is_send(&cells.get());
/// ```
///
/// ```compile_fail
/// fn is_sync<X: Sync>(_: &X) {}
/// let cells = reuse_pool::Pool::new(|| std::cell::Cell::new(0u8));
/// is_sync(&cells.get()); // `Cell` is not `Sync`
/// ```
///
/// ```compile_fail
/// // A `create` closure that is not `Sync` (it captures a `Cell`): the pool is not `Sync`, so a
/// // guard, which lets its holder reach the pool, is not `Send`.
/// fn is_send<X: Send>(_: &X) {}
/// let calls = std::cell::Cell::new(0);
/// let pool = reuse_pool::Pool::from_fn(move || { calls.set(calls.get() + 1); 0u8 });
/// is_send(&pool.get());
/// ```
///
/// The associated functions [`detach`](Pooled::detach) and [`discard`](Pooled::discard) are not
/// methods, so they never shadow a method of `T`.
///
/// # Layout
///
/// A guard is often moved soon after it was made and its object changed (`drop(g)`, a guard
/// returned from a function), and the compiler copies it in 16-byte pieces. A 16-byte load that
/// spans two recent 8-byte stores cannot take its data from the store buffer and waits for them
/// (about 4 ns a move on the machines this crate is measured on). So the guard is `repr(C)`:
/// its own two words first, written together with one 16-byte store, then the object. Of a
/// 24-byte object the third word is then copied alone; with today's compiler that is the
/// length of a `Vec` or `String`, the word that user code changes most.
#[repr(C)]
pub struct Pooled<'a, T, F = fn() -> T, R = fn(&mut T), K = fn(&T) -> bool> {
    head: Head<'a, T, F, R, K>,
    value: ManuallyDrop<T>,
}

/// A guard's own two words: its pool, and the cache the object came from (to return to without
/// a lookup when the guard drops on the same thread), kept as addresses so that both can be
/// written with one store. The `PhantomData`s give the guard the auto traits and variance that
/// the two references would.
///
/// The addresses are exposed (`as usize`) and turned back with `as` casts, which Rust's exposed
/// provenance allows; tools that check provenance strictly (Miri with
/// `-Zmiri-strict-provenance`) cannot follow them, and `ci/miri.sh` runs with permissive
/// provenance (which crossbeam-epoch's tagged pointers need anyway).
#[repr(C)]
struct Head<'a, T, F, R, K> {
    /// `&'a Pool<T, F, R, K>`, as an exposed address (never zero: a niche for `Option`).
    pool: NonZeroUsize,
    /// `Home<'a, T>`, as an exposed address (`Home::addr`).
    home: usize,
    _pool: PhantomData<&'a Pool<T, F, R, K>>,
    _home: PhantomData<Home<'a, T>>,
}

impl<'a, T, F, R, K> Head<'a, T, F, R, K> {
    #[inline(always)]
    fn pool(&self) -> &'a Pool<T, F, R, K> {
        // SAFETY: `pool` is the address of a `&'a Pool<T, F, R, K>`, exposed when the guard was
        // made (`with_home`); the `PhantomData` holds that borrow for `'a`, so the pool is alive
        // and not mutably borrowed.
        unsafe { &*(self.pool.get() as *const Pool<T, F, R, K>) }
    }

    #[inline(always)]
    fn home(&self) -> Home<'a, T> {
        // SAFETY: `home` was made by `Home::addr` from a `Home<'a, T>`, held for `'a` by the
        // `PhantomData`.
        unsafe { Home::from_addr(self.home) }
    }
}

/// [`PutFrom`](crate::tiers::PutFrom) for a pool of type `Pool<T, F, R, K>`, stored in the pool's tiers when they are
/// made (`Pool::init`).
///
/// # Safety
///
/// As for [`PutFrom`](crate::tiers::PutFrom).
pub(crate) unsafe fn put_from<T: Send + 'static, F: Fn() -> T, R: Fn(&mut T), K: Fn(&T) -> bool>(
    pool: *const (),
    slot: &mut ManuallyDrop<T>,
    stage: Stage,
) -> bool {
    // SAFETY: forwarded from the caller: `pool` points to a live pool of exactly this type.
    let pool = unsafe { &*pool.cast::<Pool<T, F, R, K>>() };
    match stage {
        // SAFETY: forwarded from the caller: `slot` holds an object; on `false` the filter took
        // it over.
        Stage::Filter => unsafe { pool.filter_in_place(slot) },
        Stage::Put => {
            // SAFETY: forwarded from the caller: `slot` holds an object, taken over here; the
            // filter has run (the guard's `Drop` ran `Stage::Filter` first where needed).
            unsafe { pool.put_unfiltered(slot) };
            true
        }
    }
}

impl<'a, T: Send + 'static, F: Fn() -> T, R: Fn(&mut T), K: Fn(&T) -> bool> Pooled<'a, T, F, R, K> {
    #[inline(always)]
    pub(crate) fn new(pool: &'a Pool<T, F, R, K>, value: T) -> Self {
        Self::with_home(pool, value, Home::NONE)
    }

    #[inline(always)]
    pub(crate) fn with_home(pool: &'a Pool<T, F, R, K>, value: T, home: Home<'a, T>) -> Self {
        let mut guard = MaybeUninit::<Self>::uninit();
        let p = guard.as_mut_ptr();
        // SAFETY: `p` points to a guard's worth of writable memory, aligned for it, whose two
        // parts are written here, each once: `Head` is `repr(C)`, a `NonZeroUsize` and a `usize`
        // (the `PhantomData`s have no size), so it is a `[usize; 2]`, and the first word is not
        // zero (the address of a reference); `write_pair` stores the addresses, exposed by the
        // `as usize` casts (`Head::pool` and `Home::from_addr` turn them back).
        unsafe {
            let pair = ptr::addr_of_mut!((*p).head).cast::<[usize; 2]>();
            words::write_pair(pair, pool as *const Pool<T, F, R, K> as usize, home.addr());
            ptr::addr_of_mut!((*p).value).write(ManuallyDrop::new(value));
            guard.assume_init()
        }
    }

    /// Drops the object instead of returning it (for an object left in a broken state).
    ///
    /// ```
    /// let pool = reuse_pool::Pool::new(Vec::<u8>::new);
    /// reuse_pool::Pooled::discard(pool.get());
    /// assert_eq!(pool.stats().drops, 1);
    /// ```
    #[inline]
    pub fn discard(this: Self) {
        let pool = this.head.pool();
        pool.discard_value(Self::detach(this));
    }
}

impl<'a, T, F, R, K> Pooled<'a, T, F, R, K> {
    /// Keeps the object: it will not return to the pool.
    ///
    /// ```
    /// let pool = reuse_pool::Pool::new(Vec::<u8>::new);
    /// let owned: Vec<u8> = reuse_pool::Pooled::detach(pool.get());
    /// # drop(owned);
    /// ```
    #[inline]
    pub fn detach(this: Self) -> T {
        let mut this = ManuallyDrop::new(this);
        // SAFETY: `this` is never dropped, so `value` is taken exactly once, here.
        unsafe { ManuallyDrop::take(&mut this.value) }
    }

    /// The pool this object returns to.
    pub fn pool(this: &Self) -> &'a Pool<T, F, R, K> {
        this.head.pool()
    }
}

impl<T, F, R, K> Drop for Pooled<'_, T, F, R, K> {
    #[inline(always)]
    fn drop(&mut self) {
        let pool_ref = self.head.pool();
        let pool: *const Pool<T, F, R, K> = pool_ref;
        // Both `guard_put` calls: the guard was made by a method that created the
        // pool's storage first (`get`, `try_get`), and the pool outlives `'a`. The function was
        // made for `Pool<T, F, R, K>` (`Pool::init`): a pool whose types change (`reset_with`,
        // `keep_if_with`) starts with new storage.
        if pool_ref.is_filtered() {
            // SAFETY: as above.
            let put_from = unsafe { pool_ref.guard_put() };
            // SAFETY:
            // - `put_from` is for `Pool<T, F, R, K>` (above) and `pool` is that pool, alive for
            //   `'a`;
            // - `drop` runs once and `value` holds the object; on `false` the filter took it
            //   over and `value` is not used again. `detach` never lets `drop` run.
            let keep = unsafe { put_from(pool.cast(), &mut self.value, Stage::Filter) };
            if !keep {
                return;
            }
        }
        if let Some(local) = self.head.home().current() {
            if local.push_fast_from(&mut self.value) {
                return;
            }
        }
        // SAFETY: as above.
        let put_from = unsafe { pool_ref.guard_put() };
        // SAFETY: as above; the object is still in `value` (the filter kept it and the hit did
        // not take it), and the call takes it over.
        unsafe { put_from(pool.cast(), &mut self.value, Stage::Put) };
    }
}

/// An object borrowed from a [`Pool`] in an [`Arc`]; returns itself on drop.
///
/// Like [`Pooled`], but owns a reference to the pool, so it is `'static` and can move into
/// spawned threads and tasks. It is `Send` when `T: Send` and the pool is `Send + Sync` (`F`, `R`
/// and `K` are `Send + Sync`); with the default `fn` pointer types, exactly when `T: Send`.
///
/// ```
/// use std::sync::Arc;
/// let pool = Arc::new(reuse_pool::Pool::new(String::new).reset(String::clear));
/// let mut s = pool.get_owned();
/// let t = std::thread::spawn(move || {
///     s.push_str("from another thread");
///     s.len()
/// });
/// assert_eq!(t.join().unwrap(), 19);
/// ```
///
/// ```compile_fail
/// // A `create` closure that is `Sync` but not `Send` (it holds a `MutexGuard`): `Arc<Pool>` is
/// // not `Send`, and neither is the guard that holds it.
/// fn is_send<X: Send>(_: &X) {}
/// static M: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// let held = M.lock().unwrap();
/// let pool = std::sync::Arc::new(reuse_pool::Pool::from_fn(move || { let _ = &held; 0u8 }));
/// is_send(&pool.get_owned());
/// ```
pub struct PooledOwned<T, F = fn() -> T, R = fn(&mut T), K = fn(&T) -> bool> {
    pool: ManuallyDrop<Arc<Pool<T, F, R, K>>>,
    value: ManuallyDrop<T>,
    /// `Pool::<T, F, R, K>::put`, for the bound-free `Drop`, which cannot call it by name (see
    /// the module docs).
    put: fn(&Pool<T, F, R, K>, T),
}

impl<T: Send + 'static, F: Fn() -> T, R: Fn(&mut T), K: Fn(&T) -> bool> PooledOwned<T, F, R, K> {
    #[inline(always)]
    pub(crate) fn new(pool: Arc<Pool<T, F, R, K>>, value: T) -> Self {
        PooledOwned {
            pool: ManuallyDrop::new(pool),
            value: ManuallyDrop::new(value),
            put: Pool::put,
        }
    }

    /// Drops the object instead of returning it.
    pub fn discard(this: Self) {
        let (pool, value) = Self::into_parts(this);
        pool.discard_value(value);
    }
}

impl<T, F, R, K> PooledOwned<T, F, R, K> {
    /// Keeps the object: it will not return to the pool.
    pub fn detach(this: Self) -> T {
        Self::into_parts(this).1
    }

    /// The pool this object returns to.
    pub fn pool(this: &Self) -> &Arc<Pool<T, F, R, K>> {
        &this.pool
    }

    fn into_parts(this: Self) -> (Arc<Pool<T, F, R, K>>, T) {
        let this = ManuallyDrop::new(this);
        // SAFETY: `this` is never dropped, so each field is read exactly once, here, and the
        // `ManuallyDrop` wrappers make the reads moves.
        unsafe {
            (
                ManuallyDrop::into_inner(ptr::read(&this.pool)),
                ManuallyDrop::into_inner(ptr::read(&this.value)),
            )
        }
    }
}

impl<T, F, R, K> Drop for PooledOwned<T, F, R, K> {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once; neither field is used afterwards.
        let (pool, value) = unsafe {
            (
                ManuallyDrop::take(&mut self.pool),
                ManuallyDrop::take(&mut self.value),
            )
        };
        (self.put)(&pool, value);
    }
}

/// The trait impls that make a guard usable where its `T` is: each forwards to the object.
macro_rules! forward_impls {
    ($($ty:ty),*) => {$(
        impl<T, F, R, K> Deref for $ty {
            type Target = T;
            #[inline(always)]
            fn deref(&self) -> &T {
                &self.value
            }
        }

        impl<T, F, R, K> DerefMut for $ty {
            #[inline(always)]
            fn deref_mut(&mut self) -> &mut T {
                &mut self.value
            }
        }

        impl<T, F, R, K> Borrow<T> for $ty {
            fn borrow(&self) -> &T {
                &self.value
            }
        }

        impl<T, F, R, K> BorrowMut<T> for $ty {
            fn borrow_mut(&mut self) -> &mut T {
                &mut self.value
            }
        }

        impl<U: ?Sized, T: AsRef<U>, F, R, K> AsRef<U> for $ty {
            fn as_ref(&self) -> &U {
                (*self.value).as_ref()
            }
        }

        impl<U: ?Sized, T: AsMut<U>, F, R, K> AsMut<U> for $ty {
            fn as_mut(&mut self) -> &mut U {
                (*self.value).as_mut()
            }
        }

        impl<T: fmt::Debug, F, R, K> fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.value, f)
            }
        }

        impl<T: fmt::Display, F, R, K> fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&*self.value, f)
            }
        }

        impl<T: fmt::Write, F, R, K> fmt::Write for $ty {
            #[inline]
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.value.write_str(s)
            }

            #[inline]
            fn write_char(&mut self, c: char) -> fmt::Result {
                self.value.write_char(c)
            }

            fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> fmt::Result {
                self.value.write_fmt(args)
            }
        }

        impl<T: io::Write, F, R, K> io::Write for $ty {
            #[inline]
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.value.write(buf)
            }

            fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
                self.value.write_vectored(bufs)
            }

            #[inline]
            fn flush(&mut self) -> io::Result<()> {
                self.value.flush()
            }

            #[inline]
            fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
                self.value.write_all(buf)
            }

            fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
                self.value.write_fmt(args)
            }
        }

        impl<T: io::Read, F, R, K> io::Read for $ty {
            #[inline]
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.value.read(buf)
            }

            fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
                self.value.read_vectored(bufs)
            }

            fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
                self.value.read_to_end(buf)
            }

            fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
                self.value.read_to_string(buf)
            }

            #[inline]
            fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
                self.value.read_exact(buf)
            }
        }

        impl<T: io::BufRead, F, R, K> io::BufRead for $ty {
            fn fill_buf(&mut self) -> io::Result<&[u8]> {
                self.value.fill_buf()
            }

            fn consume(&mut self, amt: usize) {
                self.value.consume(amt)
            }
        }
    )*};
}

forward_impls!(Pooled<'_, T, F, R, K>, PooledOwned<T, F, R, K>);

// `bytes::BufMut` for guards whose object is a `BufMut` (such as `Vec<u8>`).
#[cfg(feature = "bytes")]
macro_rules! buf_mut_impls {
    ($($ty:ty),*) => {$(
        // SAFETY: every method forwards to `T`'s implementation, which upholds the trait's
        // contract; the guard adds no state of its own between the calls.
        unsafe impl<T: bytes::BufMut, F, R, K> bytes::BufMut for $ty {
            #[inline]
            fn remaining_mut(&self) -> usize {
                self.value.remaining_mut()
            }

            #[inline]
            unsafe fn advance_mut(&mut self, cnt: usize) {
                // SAFETY: forwarded from the caller (the first `cnt` bytes of `chunk_mut()`,
                // which is `T`'s, are initialised).
                unsafe { self.value.advance_mut(cnt) }
            }

            #[inline]
            fn chunk_mut(&mut self) -> &mut bytes::buf::UninitSlice {
                self.value.chunk_mut()
            }

            #[inline]
            fn put_slice(&mut self, src: &[u8]) {
                self.value.put_slice(src)
            }
        }
    )*};
}

#[cfg(feature = "bytes")]
buf_mut_impls!(Pooled<'_, T, F, R, K>, PooledOwned<T, F, R, K>);
