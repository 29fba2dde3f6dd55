//! Go's `sync.Pool` for Rust: per-thread caches of reusable objects whose hits take no lock and
//! no atomic read-modify-write, lock-free stealing between threads, and cleanup cycles, run by a
//! background timer, that give idle memory back.
//!
//! ```
//! use reuse_pool::{Pool, Pooled};
//!
//! static BUFS: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(4096))
//!     .reset(Vec::clear)                       // runs on every return
//!     .keep_if(|v| v.capacity() <= 64 << 10);  // false: drop instead of caching (Go issue 23199)
//!
//! let mut buf: Pooled<'_, Vec<u8>> = BUFS.get();   // Deref/DerefMut; returns itself on drop
//! buf.extend_from_slice(b"hello");
//! let owned: Vec<u8> = Pooled::detach(buf);          // keep it; it never returns
//! BUFS.put(owned);                                   // Go-style explicit return
//! let v: Vec<u8> = BUFS.take();                      // Go-style Get
//! Pooled::discard(BUFS.get());                       // broken object: drop it, do not cache
//! # drop(v);
//!
//! let limit = 1 << 20;                               // closures that capture: `from_fn`
//! let local = Pool::from_fn(move || Vec::<u8>::with_capacity(limit));
//! # drop(local);
//!
//! // No `reset` here: a `get` may hand back the text the previous user left in the String.
//! let shared = std::sync::Arc::new(Pool::new(String::new));
//! let g = shared.get_owned();                        // 'static guard holding the Arc
//! # drop(g);
//!
//! let s: reuse_pool::Stats = BUFS.stats();           // approximate counters
//! reuse_pool::cleanup();                             // one global cleanup cycle
//! reuse_pool::set_cleanup_interval(None);            // stop automatic cycles (Some(d) sets the period)
//! # let _ = s;
//! ```
//!
//! # Usage
//!
//! * [`Pool::get`] returns a [`Pooled`] guard; dropping it returns the object. [`Pool::get_owned`]
//!   gives a `'static` guard ([`PooledOwned`]) for a pool in an `Arc`, to move into spawned
//!   threads and tasks. Guards dereference to `T` and forward `Display`, `io::Read`,
//!   `io::Write`, `fmt::Write`, `AsRef`/`AsMut` and `Borrow`/`BorrowMut` where `T` has them, so
//!   a guard goes wherever a `T` would (`io::copy(&mut src, &mut guard)`).
//! * [`Pool::take`] and [`Pool::put`] are Go's `Get` and `Put`: the object is yours, with no
//!   guard, until you put it back, if ever. Use them when the object's life does not fit a
//!   scope (kept in a struct, handed to another API, returned to another pool) or to give the
//!   pool an object it did not make. Both APIs do the same work; the guard also remembers the
//!   cache the object came from, so that its return on the same thread skips the lookup.
//! * Without `reset`, a pool hands back objects as their last user left them (the `String` of
//!   the `get_owned` line above may hold old text): set [`reset`](Pool::reset) to clear them.
//!   [`keep_if`](Pool::keep_if) decides whether a returned object is cached at all. Both take
//!   plain functions, so the chain stays `const` and the type `Pool<T>`; closures that capture a
//!   value known only at run time go to [`reset_with`](Pool::reset_with) and
//!   [`keep_if_with`](Pool::keep_if_with) (see [the type parameters](Pool#the-type-parameters)
//!   for naming such a pool in a struct or a `static`). `Pool<T>` is `Default` when `T` is.
//! * [`Pool::max_per_thread`] bounds what each thread caches (default
//!   [`DEFAULT_MAX_PER_THREAD`]); [`Pool::get_max_per_thread`] reads it back. Every setter `x(..)`
//!   of [`Pool`] and [`BufPool`] is read back by `get_x()`.
//! * [`BufPool`] serves byte buffers from power-of-two size classes, each an engine pool, with
//!   optional calibration of the typical and the largest size worth keeping; its settings and
//!   counters are in the [`buf`] module.
//! * Feature `bytes`: `bytes::BufMut` for the guards, so tokio's `read_buf` reads into a
//!   [`PooledBuf`] or a `Pooled<Vec<u8>>`.
//!
//! # Cleanup
//!
//! A cleanup cycle moves every cached object to the victim tier and drops what the previous cycle
//! moved there, so an object unused for two cycles is dropped. Cycles are run by a background
//! timer thread, started on the first use of any pool, every [`DEFAULT_CLEANUP_INTERVAL`] (5 s)
//! unless [`set_cleanup_interval`] sets another period or stops it; [`cleanup`] runs one cycle
//! by hand. [`cycles`] counts the cycles run so far, to see that they run or to wait for the
//! next one.
//!
//! # What takes a lock
//!
//! | path | synchronisation |
//! |---|---|
//! | a thread's own hit and return (its private magazine) | no lock, no atomic read-modify-write; on Linux no fence instruction either (see [Performance](#performance)) |
//! | spilling to and refilling from the thread's own deque | lock-free (`crossbeam-deque`) |
//! | stealing a magazine from another thread's deque | lock-free: one compare-and-swap per magazine, under an epoch pin |
//! | the per-CPU depot (overflow of a full cache, refill of an empty one) | lock-free: one compare-and-swap per magazine on the CPU's shard, under a pin of the crate's own epoch collector |
//! | the victim tier (a miss after the steals) | a spin lock per pool, taken only when the tier holds anything |
//! | a pool's first use (registration), a thread's first use of the crate and its exit | a global mutex |
//! | cleanup cycles | a global cycle lock and a per-cache lock; while a cycle reclaims a thread's cache, that thread's gets and returns take the cache's lock |
//!
//! # Examples
//!
//! * `examples/quickstart.rs`: hits, creates, stealing from an exited thread, a cleanup cycle.
//! * `examples/echo_server.rs`: a tokio TCP echo server whose per-connection buffers come from
//!   pools (guards held across `.await`), with a built-in load generator.
//! * `examples/json_encode.rs`: `serde_json` on rayon into pooled buffers, with allocation counts.
//! * `examples/fence_cost.rs`: the cost of the fence mode on a hit (see below).
//!
//! # Semantics
//!
//! As in Go: `get` returns either an object returned earlier (after `reset`) or a fresh one;
//! which one is not promised, nor that any object survives. Never the same object to two holders.
//! Every object is dropped exactly once: when discarded, rejected, over the bound, aged out, or
//! when the pool drops. A return happens-before the `get` that hands the object out again.
//! An object returned on one thread can be handed out on another, also when the first is blocked
//! or has exited; a blocked or exited thread keeps at most [`MAGAZINE`] objects (its private
//! magazine) out of the others' reach until the next cycle. A panic in `create`, `reset`,
//! `keep_if` or `T::drop` leaves the pool usable.
//!
//! # Comparison with Go's `sync.Pool`
//!
//! | Go | reuse-pool |
//! |---|---|
//! | `New` | `Pool::new(create)` / `Pool::from_fn` |
//! | `Get` / `Put` | `take` / `put`, or `get` with a guard |
//! | per-P `private` + `shared` chain | per-thread magazine + `crossbeam-deque` |
//! | `victim` cache, cleared at each GC | victim tier, rotated by each cleanup cycle (a timer) |
//! | unbounded | bounded per thread |
//! | caller resets | `reset` built in; `keep_if` for oversize objects |
//!
//! # Safety and correctness
//!
//! The hand-offs between a thread's cache, stealers and cleanup are model-checked with `loom`
//! (`--cfg reuse_pool_loom`); the tests also run under Miri and the sanitizers. See
//! [`implementation`] for the protocol and the invariants.
//!
//! # Performance
//!
//! A get+put that hits the current thread's magazine performs no atomic read-modify-write and
//! touches one cache line of the thread's own cache. In `docs/BENCHMARKS.md` (a 2-core VM, 64
//! bytes written into a 4 KiB buffer on every get) it takes 0.8× the time of a hand-rolled
//! `thread_local!` free list with `take`/`put` and 1.0× with a guard, and a fifth of glibc
//! `malloc`+`free` of the same buffer. Objects move between threads a magazine (up to
//! [`MAGAZINE`] objects) at a time.
//!
//! The fence mode: on Linux the owner's half of the handshake with cleanup is a compiler fence,
//! and each cleanup cycle pays one `membarrier` system call instead. Without `membarrier` (other
//! systems, old kernels) every get and every return runs a full fence. Measured on the 2-core
//! development machine with `examples/fence_cost.rs` (a get, a one-byte push and the drop, median
//! of 5 runs of 10 million): 6.4 ns with `membarrier`, 15.6 ns with the fallback, which the
//! variable `REUSE_POOL_NO_MEMBARRIER=1` forces.

#![warn(
    missing_docs,
    missing_debug_implementations,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

mod barrier;
pub mod buf;
mod cleanup;
mod depot;
mod deque;
mod driver;
mod drops;
mod epoch;
mod fork;
mod guard;
pub mod implementation;
mod local;
mod locals;
#[cfg(all(test, reuse_pool_loom))]
mod loom;
mod placement;
mod pool;
mod registry;
mod stack;
mod stats;
mod sync;
mod thread_id;
mod tiers;
mod victim;
mod words;

/// Whether this process uses the asymmetric fence (`membarrier`) rather than the fallback full
/// fence on every hit. A diagnostic for the crate's own tests and hot-path check, not part of the
/// API; the mode is described under [Performance](crate#performance).
#[doc(hidden)]
pub use barrier::asymmetric as uses_asymmetric_fence;
#[doc(inline)]
pub use buf::{BufPool, PooledBuf, PooledBufOwned};
pub use cleanup::{cleanup, cleanup_interval, set_cleanup_interval, DEFAULT_CLEANUP_INTERVAL};
// Public on purpose: the number of cycles run is how a program sees that cleanup runs (the same
// value as `Stats::cycles`, without a pool at hand).
pub use cleanup::cycles;
pub use depot::DEFAULT_MAX_SHARED;
pub use guard::{Pooled, PooledOwned};
// Public on purpose: the documented bound on what a blocked or exited thread keeps out of the
// other threads' reach, and the unit in which objects move between threads.
pub use local::MAGAZINE;
pub use pool::{Pool, DEFAULT_MAX_PER_THREAD};
pub use stats::Stats;
