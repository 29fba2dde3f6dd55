//! Guards that return their object to the pool when dropped.

use crate::pool::Pool;
use crate::tiers::Home;
use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::ptr;
use std::sync::Arc;

/// An object borrowed from a [`Pool`]; returns itself on drop.
///
/// Dereferences to `T`. It is `Send` when `T` is, so it can cross `.await` points and channels;
/// dropping it on another thread returns the object to that thread's cache.
///
/// The associated functions [`detach`](Pooled::detach) and [`discard`](Pooled::discard) are not
/// methods, so they never shadow a method of `T`.
pub struct Pooled<'a, T: Send + 'static, F: Fn() -> T = fn() -> T> {
    pool: &'a Pool<T, F>,
    value: ManuallyDrop<T>,
    /// The cache the object came from, to return to without a lookup when the guard drops on
    /// the same thread.
    home: Home<'a, T>,
}

impl<'a, T: Send + 'static, F: Fn() -> T> Pooled<'a, T, F> {
    #[inline(always)]
    pub(crate) fn new(pool: &'a Pool<T, F>, value: T) -> Self {
        Self::with_home(pool, value, Home::NONE)
    }

    #[inline(always)]
    pub(crate) fn with_home(pool: &'a Pool<T, F>, value: T, home: Home<'a, T>) -> Self {
        Pooled {
            pool,
            value: ManuallyDrop::new(value),
            home,
        }
    }

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

    /// Drops the object instead of returning it (for an object left in a broken state).
    ///
    /// ```
    /// let pool = reuse_pool::Pool::new(Vec::<u8>::new);
    /// reuse_pool::Pooled::discard(pool.get());
    /// assert_eq!(pool.stats().drops, 1);
    /// ```
    #[inline]
    pub fn discard(this: Self) {
        let pool = this.pool;
        pool.discard_value(Self::detach(this));
    }

    /// The pool this object returns to.
    pub fn pool(this: &Self) -> &'a Pool<T, F> {
        this.pool
    }
}

impl<T: Send + 'static, F: Fn() -> T> Drop for Pooled<'_, T, F> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: `drop` runs once and `value` is not used afterwards (`put_from` takes it
        // over); `detach` never lets `drop` run.
        unsafe { self.pool.put_from(&mut self.value, self.home) };
    }
}

/// An object borrowed from a [`Pool`] in an [`Arc`]; returns itself on drop.
///
/// Like [`Pooled`], but owns a reference to the pool, so it is `'static`.
pub struct PooledOwned<T: Send + 'static, F: Fn() -> T = fn() -> T> {
    pool: ManuallyDrop<Arc<Pool<T, F>>>,
    value: ManuallyDrop<T>,
}

impl<T: Send + 'static, F: Fn() -> T> PooledOwned<T, F> {
    #[inline(always)]
    pub(crate) fn new(pool: Arc<Pool<T, F>>, value: T) -> Self {
        PooledOwned {
            pool: ManuallyDrop::new(pool),
            value: ManuallyDrop::new(value),
        }
    }

    /// Keeps the object: it will not return to the pool.
    pub fn detach(this: Self) -> T {
        Self::into_parts(this).1
    }

    /// Drops the object instead of returning it.
    pub fn discard(this: Self) {
        let (pool, value) = Self::into_parts(this);
        pool.discard_value(value);
    }

    /// The pool this object returns to.
    pub fn pool(this: &Self) -> &Arc<Pool<T, F>> {
        &this.pool
    }

    fn into_parts(this: Self) -> (Arc<Pool<T, F>>, T) {
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

impl<T: Send + 'static, F: Fn() -> T> Drop for PooledOwned<T, F> {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once; neither field is used afterwards.
        let (pool, value) = unsafe {
            (
                ManuallyDrop::take(&mut self.pool),
                ManuallyDrop::take(&mut self.value),
            )
        };
        pool.put(value);
    }
}

macro_rules! deref_impls {
    ($($ty:ty),*) => {$(
        impl<T: Send + 'static, F: Fn() -> T> Deref for $ty {
            type Target = T;
            #[inline(always)]
            fn deref(&self) -> &T {
                &self.value
            }
        }

        impl<T: Send + 'static, F: Fn() -> T> DerefMut for $ty {
            #[inline(always)]
            fn deref_mut(&mut self) -> &mut T {
                &mut self.value
            }
        }

        impl<T: Send + 'static, F: Fn() -> T> AsRef<T> for $ty {
            fn as_ref(&self) -> &T {
                &self.value
            }
        }

        impl<T: Send + 'static, F: Fn() -> T> AsMut<T> for $ty {
            fn as_mut(&mut self) -> &mut T {
                &mut self.value
            }
        }

        impl<T: Send + 'static + fmt::Debug, F: Fn() -> T> fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.value, f)
            }
        }
    )*};
}

deref_impls!(Pooled<'_, T, F>, PooledOwned<T, F>);
