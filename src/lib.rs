//! Go's `sync.Pool` for Rust: a per-thread, lock-free pool of reusable objects that balances
//! them between threads and gives idle memory back by itself.
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
//! * [`Pool::get`] returns a [`Pooled`] guard; dropping it returns the object. [`Pool::take`] and
//!   [`Pool::put`] are the Go-style pair. [`Pool::get_owned`] gives a `'static` guard for a pool
//!   in an `Arc`.
//! * `reset` runs on every return; `keep_if` decides whether a returned object is cached at all.
//! * [`Pool::max_per_thread`] bounds what each thread caches (default
//!   [`DEFAULT_MAX_PER_THREAD`]).
//! * [`cleanup`] runs one cycle; a background thread runs one every
//!   [`DEFAULT_CLEANUP_INTERVAL`] unless [`set_cleanup_interval`] says otherwise. An object
//!   unused for two cycles is dropped.
//!
//! * [`BufPool`] serves byte buffers from power-of-two size classes, each an engine pool, with
//!   optional calibration of the typical and the largest size worth keeping.
//!
//! # Examples
//!
//! * `examples/quickstart.rs`: hits, creates, stealing from an exited thread, a cleanup cycle.
//! * `examples/echo_server.rs`: a tokio TCP echo server whose per-connection buffers come from
//!   pools (guards held across `.await`), with a built-in load generator.
//! * `examples/json_encode.rs`: `serde_json` on rayon into pooled buffers, with allocation counts.
//!
//! # Semantics
//!
//! As in Go: `get` returns either an object returned earlier (after `reset`) or a fresh one;
//! which one is not promised, nor that any object survives. Never the same object to two holders.
//! Every object is dropped exactly once: when discarded, rejected, over the bound, aged out, or
//! when the pool drops. A return happens-before the `get` that hands the object out again.
//! An object returned on one thread can be handed out on another, also when the first is blocked
//! or has exited. A panic in `create`, `reset`, `keep_if` or `T::drop` leaves the pool usable.
//!
//! # Comparison with Go's `sync.Pool`
//!
//! | Go | reuse-pool |
//! |---|---|
//! | `New` | `Pool::new(create)` / `Pool::from_fn` |
//! | `Get` / `Put` | `take` / `put`, or `get` with a guard |
//! | per-P `private` + `shared` chain | per-thread magazine + `crossbeam-deque` |
//! | `victim` cache, cleared at each GC | victim tier, rotated by each cleanup cycle |
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
//! touches one cache line of the thread's own cache: on the 2-core machine of the benches,
//! 13–17 ns with `take`/`put` or a guard (64 bytes written into a 4 KiB buffer included),
//! against 13–15 ns for a hand-rolled `thread_local!` free list and 19–32 ns for glibc
//! `malloc`+`free` of the same buffer. Objects move between threads a magazine (up to
//! [`MAGAZINE`] objects) at a time. See `docs/BENCHMARKS.md`.

#![warn(
    missing_docs,
    missing_debug_implementations,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

mod barrier;
pub mod buf;
mod cleanup;
mod deque;
mod guard;
pub mod implementation;
mod local;
mod locals;
#[cfg(all(test, reuse_pool_loom))]
mod loom;
mod pool;
mod registry;
mod stats;
mod sync;
mod thread_id;
mod tiers;
mod victim;

/// Whether this process uses the asymmetric fence (`membarrier`) rather than the fallback full
/// fence on every hit. A diagnostic for the crate's own tests and hot-path check, not part of the
/// API; the mode is described under [Performance](crate#performance).
#[doc(hidden)]
pub use barrier::asymmetric as uses_asymmetric_fence;
#[doc(inline)]
pub use buf::{BufPool, PooledBuf, PooledBufOwned};
pub use cleanup::{
    cleanup, cleanup_interval, cycles, set_cleanup_interval, DEFAULT_CLEANUP_INTERVAL,
};
pub use guard::{Pooled, PooledOwned};
pub use local::MAGAZINE;
pub use pool::{Pool, DEFAULT_MAX_PER_THREAD};
pub use stats::Stats;
