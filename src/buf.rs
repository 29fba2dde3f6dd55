//! [`BufPool`]: byte buffers in power-of-two size classes, on the same engine as [`Pool`].
//!
//! `BufPool` and its guards are used from the crate root (`reuse_pool::BufPool`, like
//! `reuse_pool::Pool`); this module holds its settings, counters and constants.
//!
//! A single `Pool<Vec<u8>>` mixes 100-byte and 1-MiB buffers: every buffer it caches ends up as
//! large as the largest request it ever served, and memory stays pinned (Go issue 23199).
//! `BufPool` keeps one [`Pool`] per power-of-two class, as vitess' `bucketpool` does with one
//! `sync.Pool` per bucket, so each class gets the engine's per-thread magazines, stealing and
//! cleanup cycles unchanged. An optional calibration learns the typical size and the largest size
//! worth keeping from the buffers that come back, as valyala's `bytebufferpool` does.
//!
//! ```
//! use reuse_pool::BufPool;
//!
//! static BUFS: BufPool = BufPool::new(); // classes 64 B ..= 1 MiB
//!
//! let mut buf = BUFS.get(1000); // an empty Vec<u8> with capacity in 1000..2000
//! assert!(buf.is_empty() && buf.capacity() == 1024);
//! buf.extend_from_slice(b"hello");
//! drop(buf); // cleared and cached in the 1 KiB class
//!
//! let again = BUFS.get(600); // 513..=1024 is served by the same class
//! assert_eq!(again.capacity(), 1024);
//! ```
//!
//! # Routing
//!
//! * `get(n)` serves class `2^k`, the smallest class `>= n` (the smallest class for tiny `n`):
//!   every buffer it returns is empty, with capacity `>= n` and, for `n` at least the smallest
//!   class, `< 2 * n`. A request above the largest class is a plain `Vec::with_capacity(n)`.
//! * A returned buffer is cleared and goes to the class its capacity fills, the largest class
//!   `<= capacity`. A capacity between two classes (a buffer that grew by `reserve`) is first
//!   shrunk to the class size, so every cached buffer has exactly a class's capacity.
//! * A buffer below the smallest class or above the largest is dropped, never cached; with
//!   calibration, so is one whose class is above the learned limit.
//!
//! # Costs
//!
//! A `get` and a `put` that hit the current thread's cache cost what the engine's do, plus a
//! `leading_zeros` and two compares. With calibration on, a `put` also decrements a counter in a
//! `const` thread-local `Cell` and loads the learned limit (a relaxed load, a plain `mov`, of a
//! word that changes once per round); only every `sample_every`-th return on a thread records its
//! length, with relaxed read-modify-writes, into the shared histogram.
//!
//! # Compared with
//!
//! * vitess `bucketpool`: the same power-of-two classes over `sync.Pool`; here each class is a
//!   [`Pool`], so it is bounded per thread and aged by [`cleanup`](crate::cleanup) cycles.
//! * valyala `bytebufferpool`: the same calibration idea (most common size, percentile limit),
//!   but sampled, so the hit path has no atomic counter per call.
//! * `zeropool`: fixed classes 4 KiB..64 MiB four apart, a shared queue per class and no ageing;
//!   `BufPool`'s classes are configurable and its buffers are handed out empty, not zeroed.

use crate::pool::{Pool, DEFAULT_MAX_PER_THREAD};
use crate::stats::Stats;
use crossbeam_utils::CachePadded;
use std::borrow::{Borrow, BorrowMut};
use std::cell::Cell;
use std::fmt;
use std::io;
use std::mem::{self, ManuallyDrop, MaybeUninit};
use std::ops::{Deref, DerefMut};
use std::ptr;
use std::sync::Arc;
// `std` atomics, not `crate::sync`: `BufPool::new` is a `const fn` and loom's atomics are not
// `const`. These atomics hand nothing off between threads (statistics and a learned limit, all
// `Relaxed`); the buffers themselves move only through the engine, which the loom models check.
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Default smallest class: 64 bytes.
pub const DEFAULT_SMALLEST_CLASS: usize = 64;

/// Default largest class: 1 MiB.
pub const DEFAULT_LARGEST_CLASS: usize = 1 << 20;

/// Default per-thread byte budget of each class, see [`BufPool::max_bytes_per_thread`]: 16 MiB.
pub const DEFAULT_MAX_BYTES_PER_THREAD: usize = 16 << 20;

/// Default bound on the bytes in each class's depot (see [`BufPool::max_shared_bytes`]): 64 MiB,
/// so 8,192 buffers (the engine's [`DEFAULT_MAX_SHARED`](crate::DEFAULT_MAX_SHARED)) up to
/// 8 KiB, 64 of 1 MiB.
pub const DEFAULT_MAX_SHARED_BYTES: usize = 64 << 20;

/// `log2` of [`MAX_CLASS_SIZE`].
const MAX_SHIFT: u32 = if usize::BITS >= 64 {
    40
} else {
    usize::BITS - 2
};

/// The largest class a [`BufPool`] can have: 1 TiB on 64-bit targets, 1 GiB on 32-bit ones.
pub const MAX_CLASS_SIZE: usize = 1 << MAX_SHIFT;

/// Entries of the class array, indexed by `log2` of the class size. Entries outside the configured
/// range are never used; an unused [`Pool`] costs its size only (its storage is created lazily).
const SLOTS: usize = 41;

/// Buckets of the calibration histogram, indexed by `ceil(log2(len))`.
const BUCKETS: usize = usize::BITS as usize;

/// `ceil(log2(n))`, with `0` for `n <= 1`.
const fn ceil_log2(n: usize) -> u32 {
    if n <= 1 {
        0
    } else {
        usize::BITS - (n - 1).leading_zeros()
    }
}

/// `floor(log2(n))` for `n >= 1`.
const fn floor_log2(n: usize) -> u32 {
    usize::BITS - 1 - n.leading_zeros()
}

/// The `create` function of class `2^K`: every miss allocates exactly the class size.
fn create<const K: u32>() -> Vec<u8> {
    // `wrapping_shl` only so that the unused slots above `MAX_SHIFT` on 32-bit targets compile;
    // they are never called.
    Vec::with_capacity(1usize.wrapping_shl(K))
}

macro_rules! class_pools {
    ($($k:literal)*) => {
        [$(Pool::new(create::<$k>)),*]
    };
}

/// How [`BufPool`] learns from returned buffers (see [`BufPool::calibration`]).
///
/// Every thread counts its own returns in a `const` thread-local; one return in `sample_every`
/// records its length (before clearing) into a shared histogram of power-of-two buckets. After
/// `samples_per_round` samples the pool recalibrates, as `bytebufferpool`'s `calibrate` does, and
/// starts a fresh histogram:
///
/// * the **default size** ([`BufPool::get_default`]) becomes the most frequent bucket;
/// * the **largest size kept** ([`BufPool::max_kept`]) becomes the smallest class that holds
///   `percentile` per cent of the sampled lengths (never below the default size). Returned
///   buffers of a larger class are dropped.
///
/// Both are clamped into the pool's classes. Zero-length returns are not recorded.
///
/// ```
/// use reuse_pool::{buf::Calibration, BufPool};
///
/// static BUFS: BufPool = BufPool::new().calibration(Calibration {
///     percentile: 99,
///     ..Calibration::DEFAULT
/// });
/// # let _ = BUFS.get_default();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Calibration {
    /// Record one return in this many, per thread (default 64). At least 1.
    pub sample_every: u32,
    /// Recalibrate after this many samples, summed over threads (default 512). At least 1.
    pub samples_per_round: u32,
    /// The share of sampled lengths, in per cent, that the largest kept size covers
    /// (default 95). In `1..=100`.
    pub percentile: u8,
}

impl Calibration {
    /// Sample one return in 64, recalibrate every 512 samples, keep up to the 95th percentile.
    pub const DEFAULT: Calibration = Calibration {
        sample_every: 64,
        samples_per_round: 512,
        percentile: 95,
    };
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration::DEFAULT
    }
}

/// The settings of a [`BufPool`]. Plain fields, read on every operation, never written after
/// construction.
#[derive(Clone, Copy, Debug)]
struct Config {
    /// `log2` of the smallest class.
    min_shift: u32,
    /// `log2` of the largest class; `min_shift <= max_shift <= MAX_SHIFT`.
    max_shift: u32,
    /// Most buffers cached per thread in one class.
    max_per_thread: usize,
    /// Most bytes cached per thread in one class.
    max_bytes_per_thread: usize,
    /// Most bytes in one class's depot.
    max_shared_bytes: usize,
    calibration: Option<Calibration>,
}

impl Config {
    const DEFAULT: Config = Config {
        min_shift: DEFAULT_SMALLEST_CLASS.trailing_zeros(),
        max_shift: DEFAULT_LARGEST_CLASS.trailing_zeros(),
        max_per_thread: DEFAULT_MAX_PER_THREAD,
        max_bytes_per_thread: DEFAULT_MAX_BYTES_PER_THREAD,
        max_shared_bytes: DEFAULT_MAX_SHARED_BYTES,
        calibration: None,
    };

    /// Depot bound of class `2^shift`: `max_shared_bytes / 2^shift` buffers, at most the engine's
    /// default (zero turns the class's depot off).
    const fn shared_bound(&self, shift: u32) -> usize {
        let by_bytes = self.max_shared_bytes >> shift;
        if by_bytes < crate::DEFAULT_MAX_SHARED {
            by_bytes
        } else {
            crate::DEFAULT_MAX_SHARED
        }
    }

    /// Per-thread bound of class `2^shift`: `max_bytes_per_thread / 2^shift` buffers, at most
    /// `max_per_thread`, at least 1.
    const fn bound(&self, shift: u32) -> usize {
        let by_bytes = self.max_bytes_per_thread >> shift;
        let b = if by_bytes < self.max_per_thread {
            by_bytes
        } else {
            self.max_per_thread
        };
        if b == 0 {
            1
        } else {
            b
        }
    }
}

/// Calibration state written by sampled returns only, on its own cache lines so that the
/// read-mostly fields of [`BufPool`] do not share a line with it.
struct Sampler {
    /// Sampled lengths by `ceil(log2(len))` (lengths below the smallest class count in its
    /// bucket). Relaxed increments; swapped to zero by the thread that recalibrates.
    hist: [AtomicU32; BUCKETS],
    /// Samples so far. Each sample gets a distinct value from `fetch_add`, so exactly one thread
    /// sees each multiple of `samples_per_round` and recalibrates; nothing is ever subtracted,
    /// so a round that races with other samples cannot skip its threshold. 64 bits: it never
    /// wraps.
    samples: AtomicU64,
    /// Completed rounds.
    rounds: AtomicU64,
}

/// Counts of what happens off the classes' paths. Each one is on a path that allocates or frees
/// anyway, so a relaxed read-modify-write is fine there.
struct Counters {
    unpooled: AtomicU64,
    undersize: AtomicU64,
    oversize: AtomicU64,
    shrunk: AtomicU64,
    over_limit: AtomicU64,
}

thread_local! {
    /// Returns left before the current thread samples one, shared by every calibrated pool.
    /// `const`-initialised and without `Drop`: a plain TLS access, never destroyed.
    static COUNTDOWN: Cell<u32> = const { Cell::new(0) };
}

/// Whether this return is sampled: counts down per thread, no atomics.
#[inline(always)]
fn sample_due(every: u32) -> bool {
    COUNTDOWN.with(|c| {
        let n = c.get();
        if n > 1 {
            c.set(n - 1);
            false
        } else {
            c.set(every);
            true
        }
    })
}

/// A pool of byte buffers in power-of-two size classes (see the [module docs](self)).
///
/// | setting | default | setter | getter |
/// |---|---|---|---|
/// | classes | 64 B ..= 1 MiB ([`DEFAULT_SMALLEST_CLASS`], [`DEFAULT_LARGEST_CLASS`]) | [`classes`](BufPool::classes) | [`smallest_class`](BufPool::smallest_class), [`largest_class`](BufPool::largest_class) |
/// | buffers per thread and class | [`DEFAULT_MAX_PER_THREAD`] (128) | [`max_per_thread`](BufPool::max_per_thread) | [`get_max_per_thread`](BufPool::get_max_per_thread) |
/// | bytes per thread and class | [`DEFAULT_MAX_BYTES_PER_THREAD`] (16 MiB) | [`max_bytes_per_thread`](BufPool::max_bytes_per_thread) | [`get_max_bytes_per_thread`](BufPool::get_max_bytes_per_thread) |
/// | bytes in each class's depot | [`DEFAULT_MAX_SHARED_BYTES`] (64 MiB) | [`max_shared_bytes`](BufPool::max_shared_bytes) | [`get_max_shared_bytes`](BufPool::get_max_shared_bytes) |
/// | calibration | off | [`calibrate`](BufPool::calibrate), [`calibration`](BufPool::calibration) | [`get_calibration`](BufPool::get_calibration) |
///
/// A setter `x(..)` is read back by `get_x()`, as `std::process::Command`'s builders are;
/// [`class_bound`](BufPool::class_bound) gives the bound that the two per-thread settings
/// make for one class.
///
/// With the defaults a thread caches up to 128 buffers of each class up to 128 KiB, 64 of
/// 256 KiB, 32 of 512 KiB and 16 of 1 MiB; cleanup cycles drop what stays unused for two cycles.
///
/// `new` and every setter are `const`, so a pool can be a `static`; invalid settings in a
/// `static` are compile errors:
///
/// ```compile_fail
/// static BUFS: reuse_pool::BufPool = reuse_pool::BufPool::new().classes(4096, 64);
/// ```
///
/// Setters are for construction: on a pool already in use each setter panics ("the pool was
/// already used"), so that a getter never reports a setting the pool does not apply.
pub struct BufPool {
    /// One engine pool per class, indexed by `log2` of the class size; only
    /// `cfg.min_shift..=cfg.max_shift` are used. Every buffer cached in `classes[k]` has
    /// capacity exactly `2^k` (established in `put`; `create::<k>` allocates exactly that).
    classes: [Pool<Vec<u8>>; SLOTS],
    cfg: Config,
    /// What `get_default` serves: the smallest class until calibration learns better.
    /// Written by the recalibrating thread only (relaxed); a stale read is harmless.
    default_size: AtomicUsize,
    /// Largest class whose returns are cached: the largest class until calibration learns
    /// better. Read (relaxed) by every calibrated `put`; written once per round.
    max_kept: AtomicUsize,
    sampler: CachePadded<Sampler>,
    counters: CachePadded<Counters>,
}

impl BufPool {
    /// A pool with classes 64 B ..= 1 MiB and no calibration.
    ///
    /// ```
    /// static BUFS: reuse_pool::BufPool = reuse_pool::BufPool::new();
    /// assert_eq!(BUFS.get(100).capacity(), 128);
    /// ```
    pub const fn new() -> Self {
        let fresh = BufPool {
            classes: class_pools!(
                0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20
                21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40
            ),
            cfg: Config::DEFAULT,
            default_size: AtomicUsize::new(0),
            max_kept: AtomicUsize::new(0),
            sampler: CachePadded::new(Sampler {
                hist: [const { AtomicU32::new(0) }; BUCKETS],
                samples: AtomicU64::new(0),
                rounds: AtomicU64::new(0),
            }),
            counters: CachePadded::new(Counters {
                unpooled: AtomicU64::new(0),
                undersize: AtomicU64::new(0),
                oversize: AtomicU64::new(0),
                shrunk: AtomicU64::new(0),
                over_limit: AtomicU64::new(0),
            }),
        };
        fresh.with_config(Config::DEFAULT)
    }

    /// Sets the smallest and the largest class (defaults [`DEFAULT_SMALLEST_CLASS`] and
    /// [`DEFAULT_LARGEST_CLASS`]).
    ///
    /// # Panics
    ///
    /// If either is zero or not a power of two, if `smallest > largest`, or if `largest` is
    /// above [`MAX_CLASS_SIZE`]. In a `static` or `const` these are compile errors.
    ///
    /// ```
    /// use reuse_pool::BufPool;
    /// static FRAMES: BufPool = BufPool::new().classes(4096, 16 << 20);
    /// assert_eq!(FRAMES.smallest_class(), 4096);
    /// assert_eq!(FRAMES.get(1).capacity(), 4096);
    /// ```
    ///
    /// ```compile_fail
    /// // the smallest class must be a power of two
    /// static B: reuse_pool::BufPool = reuse_pool::BufPool::new().classes(100, 4096);
    /// ```
    pub const fn classes(self, smallest: usize, largest: usize) -> Self {
        assert!(
            smallest != 0,
            "reuse_pool::BufPool::classes: the smallest class must be non-zero"
        );
        assert!(
            largest != 0,
            "reuse_pool::BufPool::classes: the largest class must be non-zero"
        );
        assert!(
            smallest.is_power_of_two(),
            "reuse_pool::BufPool::classes: the smallest class must be a power of two"
        );
        assert!(
            largest.is_power_of_two(),
            "reuse_pool::BufPool::classes: the largest class must be a power of two"
        );
        assert!(
            smallest <= largest,
            "reuse_pool::BufPool::classes: the smallest class must not be above the largest class"
        );
        assert!(
            largest <= MAX_CLASS_SIZE,
            "reuse_pool::BufPool::classes: the largest class must be at most MAX_CLASS_SIZE"
        );
        let mut cfg = self.cfg;
        cfg.min_shift = smallest.trailing_zeros();
        cfg.max_shift = largest.trailing_zeros();
        self.with_config(cfg)
    }

    /// Bounds the buffers each thread caches in each class (default
    /// [`DEFAULT_MAX_PER_THREAD`]); see also
    /// [`max_bytes_per_thread`](BufPool::max_bytes_per_thread). Returns beyond the bound are
    /// dropped.
    ///
    /// # Panics
    ///
    /// If `n` is zero (a compile error in a `static`).
    pub const fn max_per_thread(self, n: usize) -> Self {
        assert!(
            n > 0,
            "reuse_pool::BufPool::max_per_thread: the per-thread bound must be at least 1"
        );
        let mut cfg = self.cfg;
        cfg.max_per_thread = n;
        self.with_config(cfg)
    }

    /// Bounds the bytes each thread caches in each class (default
    /// [`DEFAULT_MAX_BYTES_PER_THREAD`]): class `size` keeps at most
    /// `max(1, min(bytes / size, max_per_thread))` buffers per thread.
    ///
    /// # Panics
    ///
    /// If `bytes` is zero (a compile error in a `static`).
    ///
    /// ```
    /// use reuse_pool::BufPool;
    /// // at most 4 MiB per thread in each class: 4 buffers of 1 MiB, 128 of 4 KiB
    /// static BUFS: BufPool = BufPool::new().max_bytes_per_thread(4 << 20);
    /// assert_eq!(BUFS.class_bound(1 << 20), Some(4));
    /// assert_eq!(BUFS.class_bound(4096), Some(128));
    /// ```
    pub const fn max_bytes_per_thread(self, bytes: usize) -> Self {
        assert!(
            bytes > 0,
            "reuse_pool::BufPool::max_bytes_per_thread: the per-thread byte budget must be non-zero"
        );
        let mut cfg = self.cfg;
        cfg.max_bytes_per_thread = bytes;
        self.with_config(cfg)
    }

    /// Bounds the bytes of each class's depot, where buffers that overflow the threads' caches
    /// wait for a thread whose cache is empty (default [`DEFAULT_MAX_SHARED_BYTES`]): class `size`
    /// keeps at most `min(bytes / size, DEFAULT_MAX_SHARED)` buffers there. `0` turns the depots
    /// off: a return that finds the thread's cache full is dropped.
    ///
    /// ```
    /// use reuse_pool::BufPool;
    /// // at most 8 MiB in each class's depot: 8 buffers of 1 MiB, 2,048 of 4 KiB
    /// static BUFS: BufPool = BufPool::new().max_shared_bytes(8 << 20);
    /// assert_eq!(BUFS.class_shared_bound(1 << 20), Some(8));
    /// assert_eq!(BUFS.class_shared_bound(4096), Some(2048));
    /// ```
    pub const fn max_shared_bytes(self, bytes: usize) -> Self {
        let mut cfg = self.cfg;
        cfg.max_shared_bytes = bytes;
        self.with_config(cfg)
    }

    /// The depots' byte bound, set by [`max_shared_bytes`](BufPool::max_shared_bytes).
    pub const fn get_max_shared_bytes(&self) -> usize {
        self.cfg.max_shared_bytes
    }

    /// The depot bound of class `size` (in buffers), or `None` if `size` is not a class.
    pub const fn class_shared_bound(&self, size: usize) -> Option<usize> {
        match self.class_for_capacity(size) {
            Some(c) if c == size => Some(self.cfg.shared_bound(size.trailing_zeros())),
            _ => None,
        }
    }

    /// Turns calibration on with [`Calibration::DEFAULT`] (off by default).
    ///
    /// ```
    /// use reuse_pool::BufPool;
    /// static BUFS: BufPool = BufPool::new().calibrate();
    /// let mut buf = BUFS.get_default(); // the smallest class until the first round completes
    /// buf.extend_from_slice(b"request");
    /// ```
    pub const fn calibrate(self) -> Self {
        self.calibration(Calibration::DEFAULT)
    }

    /// Turns calibration on with the given settings (see [`Calibration`]).
    ///
    /// # Panics
    ///
    /// If `sample_every` or `samples_per_round` is zero, or `percentile` is not in `1..=100`
    /// (compile errors in a `static`).
    ///
    /// ```compile_fail
    /// use reuse_pool::{buf::Calibration, BufPool};
    /// static B: BufPool = BufPool::new().calibration(Calibration { percentile: 0, ..Calibration::DEFAULT });
    /// ```
    pub const fn calibration(self, calibration: Calibration) -> Self {
        assert!(
            calibration.sample_every > 0,
            "reuse_pool::BufPool::calibration: Calibration::sample_every must be at least 1"
        );
        assert!(
            calibration.samples_per_round > 0,
            "reuse_pool::BufPool::calibration: Calibration::samples_per_round must be at least 1"
        );
        assert!(
            calibration.percentile >= 1 && calibration.percentile <= 100,
            "reuse_pool::BufPool::calibration: Calibration::percentile must be in 1..=100"
        );
        let mut cfg = self.cfg;
        cfg.calibration = Some(calibration);
        self.with_config(cfg)
    }

    /// `self` with `cfg` installed: the per-thread bound of every class recomputed, the learned
    /// sizes reset to their uncalibrated values, everything else moved over.
    ///
    /// HACK: as in `Pool::rebuild`, a `const fn` cannot move fields out of a value with drop
    /// glue, so the fields are read out of a `ManuallyDrop`.
    const fn with_config(self, cfg: Config) -> Self {
        let mut i = 0;
        while i < SLOTS {
            assert!(
                !self.classes[i].started_owned(),
                "reuse_pool::BufPool: the pool was already used; set its classes, bounds and calibration before its first use"
            );
            i += 1;
        }
        let this = ManuallyDrop::new(self);
        let p = &this as *const ManuallyDrop<Self> as *const Self;
        let mut classes: [MaybeUninit<Pool<Vec<u8>>>; SLOTS] =
            [const { MaybeUninit::uninit() }; SLOTS];
        let mut i = 0;
        while i < SLOTS {
            // SAFETY: `ManuallyDrop<Self>` is `repr(transparent)`, so `p` points to a valid
            // `Self`; each class is read exactly once (this loop) and `this` is never dropped, so
            // ownership moves into `classes` without a double drop.
            let pool = unsafe { ptr::read(&(*p).classes[i]) };
            classes[i] = MaybeUninit::new(
                pool.max_per_thread(cfg.bound(i as u32))
                    .max_shared(cfg.shared_bound(i as u32)),
            );
            i += 1;
        }
        // SAFETY:
        // - the loop above initialised every element of `classes`, and
        //   `[MaybeUninit<T>; N]` has the layout of `[T; N]`;
        // - `sampler` and `counters` are read exactly once from the never-dropped `this` (see
        //   the loop above), so they move without a double drop; the other fields are replaced.
        unsafe {
            BufPool {
                classes: ptr::read(
                    &classes as *const [MaybeUninit<Pool<Vec<u8>>>; SLOTS]
                        as *const [Pool<Vec<u8>>; SLOTS],
                ),
                cfg,
                default_size: AtomicUsize::new(1 << cfg.min_shift),
                max_kept: AtomicUsize::new(1 << cfg.max_shift),
                sampler: ptr::read(&(*p).sampler),
                counters: ptr::read(&(*p).counters),
            }
        }
    }

    /// The smallest class size.
    pub const fn smallest_class(&self) -> usize {
        1 << self.cfg.min_shift
    }

    /// The largest class size.
    pub const fn largest_class(&self) -> usize {
        1 << self.cfg.max_shift
    }

    /// Every class size, smallest first.
    ///
    /// ```
    /// let p = reuse_pool::BufPool::new().classes(64, 512);
    /// assert_eq!(p.class_sizes().collect::<Vec<_>>(), [64, 128, 256, 512]);
    /// ```
    pub fn class_sizes(&self) -> impl Iterator<Item = usize> + '_ {
        (self.cfg.min_shift..=self.cfg.max_shift).map(|s| 1usize << s)
    }

    /// The calibration settings set by [`calibration`](BufPool::calibration) or
    /// [`calibrate`](BufPool::calibrate), `None` when calibration is off.
    pub const fn get_calibration(&self) -> Option<Calibration> {
        self.cfg.calibration
    }

    /// The per-class bound on buffers set by [`max_per_thread`](BufPool::max_per_thread).
    pub const fn get_max_per_thread(&self) -> usize {
        self.cfg.max_per_thread
    }

    /// The per-class byte budget set by
    /// [`max_bytes_per_thread`](BufPool::max_bytes_per_thread).
    pub const fn get_max_bytes_per_thread(&self) -> usize {
        self.cfg.max_bytes_per_thread
    }

    /// How many buffers a thread caches at most in class `size`, from both bounds above; `None`
    /// if `size` is not a class.
    ///
    /// ```
    /// let p = reuse_pool::BufPool::new().max_per_thread(8).max_bytes_per_thread(1 << 20);
    /// assert_eq!((p.get_max_per_thread(), p.get_max_bytes_per_thread()), (8, 1 << 20));
    /// assert_eq!(p.class_bound(4096), Some(8));
    /// assert_eq!(p.class_bound(256 << 10), Some(4));
    /// ```
    pub const fn class_bound(&self, size: usize) -> Option<usize> {
        match self.class_for_capacity(size) {
            Some(c) if c == size => Some(self.cfg.bound(size.trailing_zeros())),
            _ => None,
        }
    }

    /// The class that serves `get(min_capacity)`: the capacity of the buffers it returns, or
    /// `None` above the largest class (served by a plain allocation).
    ///
    /// ```
    /// let p = reuse_pool::BufPool::new(); // 64 ..= 1 MiB
    /// assert_eq!(p.class_for_request(0), Some(64));
    /// assert_eq!(p.class_for_request(1024), Some(1024));
    /// assert_eq!(p.class_for_request(1025), Some(2048));
    /// assert_eq!(p.class_for_request((1 << 20) + 1), None);
    /// ```
    pub const fn class_for_request(&self, min_capacity: usize) -> Option<usize> {
        let shift = self.request_shift(min_capacity);
        if shift <= self.cfg.max_shift {
            Some(1 << shift)
        } else {
            None
        }
    }

    /// The class a returned buffer of this capacity goes to (the largest class `<= capacity`),
    /// or `None` if it is below the smallest or above the largest class and would be dropped.
    /// Calibration may drop buffers of a class above [`max_kept`](BufPool::max_kept) as well.
    ///
    /// ```
    /// let p = reuse_pool::BufPool::new(); // 64 ..= 1 MiB
    /// assert_eq!(p.class_for_capacity(63), None);
    /// assert_eq!(p.class_for_capacity(64), Some(64));
    /// assert_eq!(p.class_for_capacity(5000), Some(4096));
    /// assert_eq!(p.class_for_capacity((1 << 20) + 1), None);
    /// ```
    pub const fn class_for_capacity(&self, capacity: usize) -> Option<usize> {
        if capacity < self.smallest_class() || capacity > self.largest_class() {
            None
        } else {
            Some(1 << floor_log2(capacity))
        }
    }

    #[inline(always)]
    const fn request_shift(&self, min_capacity: usize) -> u32 {
        let s = ceil_log2(min_capacity);
        if s < self.cfg.min_shift {
            self.cfg.min_shift
        } else {
            s
        }
    }

    /// An empty buffer with capacity `>= min_capacity` that returns itself to the pool when the
    /// guard drops.
    ///
    /// For `min_capacity` inside the classes the capacity is also `< 2 * min_capacity` (it is
    /// exactly the class size); below the smallest class it is the smallest class; above the
    /// largest it is exactly `min_capacity`, freshly allocated (and dropped on return).
    ///
    /// ```
    /// static BUFS: reuse_pool::BufPool = reuse_pool::BufPool::new();
    /// let buf = BUFS.get(3000);
    /// assert!(buf.is_empty());
    /// assert_eq!(buf.capacity(), 4096);
    /// ```
    #[inline]
    pub fn get(&self, min_capacity: usize) -> PooledBuf<'_> {
        PooledBuf {
            pool: self,
            buf: self.take(min_capacity),
        }
    }

    /// Like [`get`](BufPool::get), for a pool in an [`Arc`]: the guard keeps the pool alive and
    /// is `'static`, so it can move into spawned threads and tasks.
    ///
    /// ```
    /// use std::io::Write;
    /// use std::sync::Arc;
    ///
    /// let bufs = Arc::new(reuse_pool::BufPool::new());
    /// let mut buf = bufs.get_owned(1000);
    /// let t = std::thread::spawn(move || {
    ///     buf.write_all(b"built on another thread").unwrap();
    ///     buf.len()
    /// }); // `buf` returns to `bufs` when the thread drops it
    /// assert_eq!(t.join().unwrap(), 23);
    /// assert_eq!(bufs.class_stats(1024).unwrap().puts, 1);
    /// ```
    #[inline]
    pub fn get_owned(self: &Arc<Self>, min_capacity: usize) -> PooledBufOwned {
        PooledBufOwned {
            buf: self.take(min_capacity),
            pool: self.clone(),
        }
    }

    /// Like [`get`](BufPool::get), without a guard (Go's `Get`); give it back with
    /// [`put`](BufPool::put) if you want it reused.
    #[inline]
    pub fn take(&self, min_capacity: usize) -> Vec<u8> {
        let shift = self.request_shift(min_capacity);
        if shift <= self.cfg.max_shift {
            self.classes[shift as usize].take()
        } else {
            self.take_unpooled(min_capacity)
        }
    }

    #[cold]
    fn take_unpooled(&self, min_capacity: usize) -> Vec<u8> {
        self.counters.unpooled.fetch_add(1, Relaxed);
        Vec::with_capacity(min_capacity)
    }

    /// A cached buffer of the class that serves `min_capacity`, or `None` instead of
    /// allocating (always `None` above the largest class).
    ///
    /// ```
    /// let p = reuse_pool::BufPool::new();
    /// assert!(p.try_take(100).is_none());
    /// p.put(Vec::with_capacity(128));
    /// assert_eq!(p.try_take(100).map(|b| b.capacity()), Some(128));
    /// ```
    #[inline]
    pub fn try_take(&self, min_capacity: usize) -> Option<Vec<u8>> {
        let shift = self.request_shift(min_capacity);
        if shift <= self.cfg.max_shift {
            self.classes[shift as usize].try_take()
        } else {
            None
        }
    }

    /// A buffer of the [default size](BufPool::default_size): the smallest class, or with
    /// calibration the most common size of returned buffers.
    #[inline]
    pub fn get_default(&self) -> PooledBuf<'_> {
        self.get(self.default_size())
    }

    /// Like [`get_default`](BufPool::get_default), without a guard.
    #[inline]
    pub fn take_default(&self) -> Vec<u8> {
        self.take(self.default_size())
    }

    /// The size [`get_default`](BufPool::get_default) asks for: the smallest class until a
    /// calibration round completes, then the most common size of returned buffers.
    #[inline]
    pub fn default_size(&self) -> usize {
        self.default_size.load(Relaxed)
    }

    /// The largest class whose returned buffers are cached: the largest class, or with
    /// calibration the learned limit (see [`Calibration::percentile`]).
    pub fn max_kept(&self) -> usize {
        self.max_kept.load(Relaxed)
    }

    /// Returns a buffer (Go's `Put`): clears it and caches it in the class its capacity fills,
    /// or drops it (see the [module docs](self)). The buffer need not have come from this pool.
    ///
    /// ```
    /// let p = reuse_pool::BufPool::new(); // 64 ..= 1 MiB
    /// p.put(Vec::with_capacity(5000));          // shrunk to 4096, cached
    /// p.put(Vec::with_capacity(10));            // below the smallest class: dropped
    /// let s = p.stats();
    /// assert_eq!(s.class(4096).unwrap().puts, 1);
    /// assert_eq!((s.shrunk, s.undersize_drops), (1, 1));
    /// ```
    #[inline]
    pub fn put(&self, mut buf: Vec<u8>) {
        if let Some(c) = self.cfg.calibration {
            if sample_due(c.sample_every) {
                self.sample(buf.len(), c);
            }
        }
        buf.clear();
        let cap = buf.capacity();
        if cap < self.smallest_class() || cap > self.largest_class() {
            return self.drop_outside(buf);
        }
        let shift = floor_log2(cap);
        let class = 1usize << shift;
        if self.cfg.calibration.is_some() && class > self.max_kept.load(Relaxed) {
            return self.drop_over_limit(shift, buf);
        }
        if cap != class {
            return self.put_reshaped(shift, buf);
        }
        self.classes[shift as usize].put(buf);
    }

    /// A buffer outside the classes: dropped and counted.
    #[cold]
    fn drop_outside(&self, buf: Vec<u8>) {
        let counter = if buf.capacity() < self.smallest_class() {
            &self.counters.undersize
        } else {
            &self.counters.oversize
        };
        counter.fetch_add(1, Relaxed);
        drop(buf);
    }

    /// A buffer above the calibrated limit: dropped, counted here and in its class.
    #[cold]
    fn drop_over_limit(&self, shift: u32, buf: Vec<u8>) {
        self.counters.over_limit.fetch_add(1, Relaxed);
        self.classes[shift as usize].discard_value(buf);
    }

    /// A capacity between two classes: shrunk to the class below, so that every cached buffer
    /// has exactly its class's capacity (what makes `get`'s `< 2 * min_capacity` bound hold).
    #[cold]
    fn put_reshaped(&self, shift: u32, mut buf: Vec<u8>) {
        let class = 1usize << shift;
        self.counters.shrunk.fetch_add(1, Relaxed);
        buf.shrink_to(class);
        let pool = &self.classes[shift as usize];
        if buf.capacity() == class {
            pool.put(buf);
        } else {
            // `shrink_to` only promises `capacity >= class`; never cache a buffer off its class.
            pool.discard_value(buf);
        }
    }

    /// Drops a buffer, counting it in its class (or as under/oversize).
    fn discard(&self, buf: Vec<u8>) {
        match self.class_for_capacity(buf.capacity()) {
            Some(class) => self.classes[class.trailing_zeros() as usize].discard_value(buf),
            None => self.drop_outside(buf),
        }
    }

    /// Records one sampled length; recalibrates when the round is complete.
    #[cold]
    #[inline(never)]
    fn sample(&self, len: usize, c: Calibration) {
        if len == 0 {
            return;
        }
        let bucket = ceil_log2(len).max(self.cfg.min_shift) as usize;
        let s = &self.sampler;
        s.hist[bucket].fetch_add(1, Relaxed);
        let n = s.samples.fetch_add(1, Relaxed) + 1;
        if n % u64::from(c.samples_per_round) == 0 {
            self.recalibrate(c);
        }
    }

    /// One calibration round (`bytebufferpool`'s `calibrate`): reads and clears the histogram,
    /// then publishes the new default size and limit. Samples that race with it land in this
    /// round or the next; the result is a statistic, so either is fine.
    #[cold]
    fn recalibrate(&self, c: Calibration) {
        let s = &self.sampler;
        let mut counts = [0u64; BUCKETS];
        let mut total = 0u64;
        for (count, h) in counts.iter_mut().zip(s.hist.iter()) {
            *count = u64::from(h.swap(0, Relaxed));
            total += *count;
        }
        s.rounds.fetch_add(1, Relaxed);
        if total == 0 {
            // Samples of this round were taken by a round that raced with it.
            return;
        }
        // Most frequent bucket; ties go to the smaller size.
        let mut mode = 0;
        for (b, &count) in counts.iter().enumerate() {
            if count > counts[mode] {
                mode = b;
            }
        }
        // Smallest bucket holding `percentile` per cent of the samples.
        let target = (total * u64::from(c.percentile)).div_ceil(100);
        let mut cumulative = 0;
        let mut keep = BUCKETS - 1;
        for (b, &count) in counts.iter().enumerate() {
            cumulative += count;
            if cumulative >= target {
                keep = b;
                break;
            }
        }
        let clamp = |b: usize| (b as u32).clamp(self.cfg.min_shift, self.cfg.max_shift);
        let default_shift = clamp(mode);
        let keep_shift = clamp(keep).max(default_shift);
        self.default_size.store(1 << default_shift, Relaxed);
        self.max_kept.store(1 << keep_shift, Relaxed);
    }

    /// The engine's counters of class `size`, or `None` if `size` is not a class.
    ///
    /// ```
    /// let p = reuse_pool::BufPool::new();
    /// drop(p.get(1000));
    /// let s = p.class_stats(1024).unwrap();
    /// assert_eq!((s.misses, s.puts), (1, 1));
    /// ```
    pub fn class_stats(&self, size: usize) -> Option<Stats> {
        match self.class_for_capacity(size) {
            Some(c) if c == size => Some(self.classes[size.trailing_zeros() as usize].stats()),
            _ => None,
        }
    }

    /// Approximate counters: per class (the engine's [`Stats`]), and for what bypasses the
    /// classes.
    pub fn stats(&self) -> BufStats {
        let c = &self.counters;
        BufStats {
            classes: (self.cfg.min_shift..=self.cfg.max_shift)
                .map(|s| ClassStats {
                    size: 1 << s,
                    stats: self.classes[s as usize].stats(),
                })
                .collect(),
            unpooled_gets: c.unpooled.load(Relaxed),
            undersize_drops: c.undersize.load(Relaxed),
            oversize_drops: c.oversize.load(Relaxed),
            over_limit_drops: c.over_limit.load(Relaxed),
            shrunk: c.shrunk.load(Relaxed),
            calibrations: self.sampler.rounds.load(Relaxed),
            default_size: self.default_size(),
            max_kept: self.max_kept(),
        }
    }
}

impl Default for BufPool {
    fn default() -> Self {
        BufPool::new()
    }
}

impl fmt::Debug for BufPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufPool")
            .field("smallest_class", &self.smallest_class())
            .field("largest_class", &self.largest_class())
            .field("max_per_thread", &self.cfg.max_per_thread)
            .field("max_bytes_per_thread", &self.cfg.max_bytes_per_thread)
            .field("calibration", &self.cfg.calibration)
            .field("default_size", &self.default_size())
            .field("max_kept", &self.max_kept())
            .finish()
    }
}

/// Counters of one class of a [`BufPool`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ClassStats {
    /// The class size: the capacity of every buffer the class caches.
    pub size: usize,
    /// The engine's counters for this class. `misses` are fresh allocations of `size` bytes;
    /// `drops` include buffers over the per-thread bound, over the calibrated limit, discarded,
    /// or aged out by cleanup.
    pub stats: Stats,
}

/// Approximate counters of a [`BufPool`] (see [`BufPool::stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct BufStats {
    /// One entry per class, smallest first.
    pub classes: Vec<ClassStats>,
    /// Requests above the largest class, served by a plain allocation.
    pub unpooled_gets: u64,
    /// Returned buffers dropped because their capacity was below the smallest class.
    pub undersize_drops: u64,
    /// Returned buffers dropped because their capacity was above the largest class.
    pub oversize_drops: u64,
    /// Returned buffers dropped because their class was above the calibrated limit (also
    /// counted in their class's `drops`).
    pub over_limit_drops: u64,
    /// Returned buffers whose capacity lay between two classes and was shrunk to the lower one.
    pub shrunk: u64,
    /// Completed calibration rounds.
    pub calibrations: u64,
    /// The size [`BufPool::get_default`] asks for now.
    pub default_size: usize,
    /// The largest class cached now ([`BufPool::max_kept`]).
    pub max_kept: usize,
}

impl BufStats {
    /// The counters of class `size`, if it is a class.
    pub fn class(&self, size: usize) -> Option<&Stats> {
        self.classes
            .iter()
            .find(|c| c.size == size)
            .map(|c| &c.stats)
    }

    /// The counters of every class summed (`cycles` is the global epoch, not summed).
    pub fn total(&self) -> Stats {
        self.classes.iter().map(|c| c.stats).sum()
    }
}

/// A buffer borrowed from a [`BufPool`]; returns itself (to the class its capacity then fills)
/// when dropped.
///
/// Dereferences to `Vec<u8>`; implements [`io::Write`], `AsRef`/`AsMut`/`Borrow`/`BorrowMut` of
/// `[u8]` and `Vec<u8>`, and with the `bytes` feature `bytes::BufMut` (tokio's `read_buf`). It
/// is `Send` and `Sync`, so it can cross `.await` points and channels. For a buffer that must
/// outlive the pool's borrow (a spawned thread or task), see [`BufPool::get_owned`].
/// [`detach`](PooledBuf::detach) and [`discard`](PooledBuf::discard) are associated functions,
/// so they never shadow a method of `Vec`.
///
/// ```
/// use std::io::Write;
/// static BUFS: reuse_pool::BufPool = reuse_pool::BufPool::new();
/// let mut buf = BUFS.get(100);
/// write!(buf, "{} + {} = {}", 1, 2, 1 + 2).unwrap();
/// assert_eq!(&buf[..], b"1 + 2 = 3");
/// ```
pub struct PooledBuf<'a> {
    pool: &'a BufPool,
    buf: Vec<u8>,
}

impl<'a> PooledBuf<'a> {
    /// Keeps the buffer: it will not return to the pool.
    ///
    /// ```
    /// let p = reuse_pool::BufPool::new();
    /// let owned: Vec<u8> = reuse_pool::PooledBuf::detach(p.get(10));
    /// assert_eq!(owned.capacity(), 64);
    /// ```
    #[inline]
    pub fn detach(this: Self) -> Vec<u8> {
        // The guard is never dropped; it holds nothing else that needs dropping.
        let mut this = ManuallyDrop::new(this);
        mem::take(&mut this.buf)
    }

    /// Drops the buffer instead of returning it, counted in its class's `drops`.
    ///
    /// ```
    /// let p = reuse_pool::BufPool::new();
    /// reuse_pool::PooledBuf::discard(p.get(100));
    /// assert_eq!(p.class_stats(128).unwrap().drops, 1);
    /// ```
    pub fn discard(this: Self) {
        let pool = this.pool;
        pool.discard(Self::detach(this));
    }

    /// The pool this buffer returns to.
    pub fn pool(this: &Self) -> &'a BufPool {
        this.pool
    }
}

impl Drop for PooledBuf<'_> {
    #[inline]
    fn drop(&mut self) {
        self.pool.put(mem::take(&mut self.buf));
    }
}

/// A buffer borrowed from a [`BufPool`] in an [`Arc`] ([`BufPool::get_owned`]); returns itself
/// when dropped.
///
/// Like [`PooledBuf`], but owns a reference to the pool, so it is `'static` and can move into
/// spawned threads and tasks.
pub struct PooledBufOwned {
    pool: Arc<BufPool>,
    buf: Vec<u8>,
}

impl PooledBufOwned {
    /// Keeps the buffer: it will not return to the pool.
    ///
    /// ```
    /// let p = std::sync::Arc::new(reuse_pool::BufPool::new());
    /// let owned: Vec<u8> = reuse_pool::PooledBufOwned::detach(p.get_owned(10));
    /// assert_eq!(owned.capacity(), 64);
    /// ```
    pub fn detach(this: Self) -> Vec<u8> {
        Self::into_parts(this).1
    }

    /// Drops the buffer instead of returning it, counted in its class's `drops`.
    pub fn discard(this: Self) {
        let (pool, buf) = Self::into_parts(this);
        pool.discard(buf);
    }

    /// The pool this buffer returns to.
    pub fn pool(this: &Self) -> &Arc<BufPool> {
        &this.pool
    }

    fn into_parts(this: Self) -> (Arc<BufPool>, Vec<u8>) {
        let mut this = ManuallyDrop::new(this);
        let buf = mem::take(&mut this.buf);
        // SAFETY: `this` is never dropped, so `pool` is read (moved out) exactly once, here.
        let pool = unsafe { ptr::read(&this.pool) };
        (pool, buf)
    }
}

impl Drop for PooledBufOwned {
    #[inline]
    fn drop(&mut self) {
        self.pool.put(mem::take(&mut self.buf));
    }
}

/// The trait impls the two buffer guards share: each forwards to the `Vec<u8>`.
macro_rules! buf_guard_impls {
    ($($ty:ty => $name:literal),*) => {$(
        impl Deref for $ty {
            type Target = Vec<u8>;
            #[inline(always)]
            fn deref(&self) -> &Vec<u8> {
                &self.buf
            }
        }

        impl DerefMut for $ty {
            #[inline(always)]
            fn deref_mut(&mut self) -> &mut Vec<u8> {
                &mut self.buf
            }
        }

        impl AsRef<[u8]> for $ty {
            fn as_ref(&self) -> &[u8] {
                &self.buf
            }
        }

        impl AsMut<[u8]> for $ty {
            fn as_mut(&mut self) -> &mut [u8] {
                &mut self.buf
            }
        }

        impl AsRef<Vec<u8>> for $ty {
            fn as_ref(&self) -> &Vec<u8> {
                &self.buf
            }
        }

        impl AsMut<Vec<u8>> for $ty {
            fn as_mut(&mut self) -> &mut Vec<u8> {
                &mut self.buf
            }
        }

        impl Borrow<[u8]> for $ty {
            fn borrow(&self) -> &[u8] {
                &self.buf
            }
        }

        impl BorrowMut<[u8]> for $ty {
            fn borrow_mut(&mut self) -> &mut [u8] {
                &mut self.buf
            }
        }

        impl Borrow<Vec<u8>> for $ty {
            fn borrow(&self) -> &Vec<u8> {
                &self.buf
            }
        }

        impl BorrowMut<Vec<u8>> for $ty {
            fn borrow_mut(&mut self) -> &mut Vec<u8> {
                &mut self.buf
            }
        }

        impl io::Write for $ty {
            #[inline]
            fn write(&mut self, data: &[u8]) -> io::Result<usize> {
                self.buf.extend_from_slice(data);
                Ok(data.len())
            }

            fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
                self.buf.write_vectored(bufs)
            }

            #[inline]
            fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
                self.buf.extend_from_slice(data);
                Ok(())
            }

            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct($name)
                    .field("len", &self.buf.len())
                    .field("capacity", &self.buf.capacity())
                    .finish()
            }
        }

        /// With the `bytes` feature: writes append to the buffer, growing it as `Vec<u8>` does.
        #[cfg(feature = "bytes")]
        // SAFETY: every method forwards to `Vec<u8>`'s implementation, which upholds the
        // trait's contract; the guard adds no state of its own between the calls.
        unsafe impl bytes::BufMut for $ty {
            #[inline]
            fn remaining_mut(&self) -> usize {
                self.buf.remaining_mut()
            }

            #[inline]
            unsafe fn advance_mut(&mut self, cnt: usize) {
                // SAFETY: forwarded from the caller (the first `cnt` bytes of `chunk_mut()`,
                // which is the `Vec`'s, are initialised).
                unsafe { self.buf.advance_mut(cnt) }
            }

            #[inline]
            fn chunk_mut(&mut self) -> &mut bytes::buf::UninitSlice {
                self.buf.chunk_mut()
            }

            #[inline]
            fn put_slice(&mut self, src: &[u8]) {
                self.buf.extend_from_slice(src)
            }
        }
    )*};
}

buf_guard_impls!(PooledBuf<'_> => "PooledBuf", PooledBufOwned => "PooledBufOwned");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_helpers() {
        assert_eq!(ceil_log2(0), 0);
        assert_eq!(ceil_log2(1), 0);
        assert_eq!(ceil_log2(2), 1);
        assert_eq!(ceil_log2(3), 2);
        assert_eq!(ceil_log2(1024), 10);
        assert_eq!(ceil_log2(1025), 11);
        assert_eq!(ceil_log2(usize::MAX), usize::BITS);
        assert_eq!(floor_log2(1), 0);
        assert_eq!(floor_log2(1023), 9);
        assert_eq!(floor_log2(1024), 10);
        assert_eq!(floor_log2(usize::MAX), usize::BITS - 1);
    }

    #[test]
    fn bounds_follow_the_byte_budget() {
        let p = BufPool::new();
        assert_eq!(p.class_bound(64), Some(DEFAULT_MAX_PER_THREAD));
        assert_eq!(p.class_bound(128 << 10), Some(128));
        assert_eq!(p.class_bound(256 << 10), Some(64));
        assert_eq!(p.class_bound(1 << 20), Some(16));
        assert_eq!(p.class_bound(100), None);
        assert_eq!(p.class_bound(2 << 20), None);
        let small = BufPool::new().max_bytes_per_thread(1).max_per_thread(3);
        assert_eq!(small.class_bound(64), Some(1));
        assert_eq!(small.classes[6].get_max_per_thread(), 1);
        let few = BufPool::new().max_per_thread(3);
        assert_eq!(few.classes[6].get_max_per_thread(), 3);
        assert_eq!(few.classes[20].get_max_per_thread(), 3);
    }

    #[test]
    fn setters_keep_each_other() {
        let p = BufPool::new()
            .calibrate()
            .classes(128, 4096)
            .max_per_thread(7);
        assert_eq!(p.get_calibration(), Some(Calibration::DEFAULT));
        assert_eq!((p.smallest_class(), p.largest_class()), (128, 4096));
        assert_eq!(p.default_size(), 128);
        assert_eq!(p.max_kept(), 4096);
        assert_eq!(p.class_bound(4096), Some(7));
    }

    #[test]
    fn countdown_samples_every_nth() {
        let hits = (0..64 * 3).filter(|_| sample_due(64)).count();
        assert!((3..=4).contains(&hits), "{hits}");
        let all = (0..10).filter(|_| sample_due(1)).count();
        assert_eq!(all, 10);
    }
}
