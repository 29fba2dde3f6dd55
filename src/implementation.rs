//! How the pool works (documentation only).
//!
//! # Tiers
//!
//! | tier | Go name | here | who touches it |
//! |---|---|---|---|
//! | 1 | `poolLocal.private` | the thread's magazine (up to [`MAGAZINE`](crate::MAGAZINE) objects) | owner, lock-free; cleanup under the reclaim protocol |
//! | 2 | `poolLocal.shared` (`poolChain`) | the thread's `crossbeam-deque` `Worker` of full magazines | owner at the back, lock-free in the same busy window (a per-thread lock only while cleanup reclaims) |
//! | 3 | `getSlow` | other threads' `Stealer`s, starting after our own index; one steal takes a whole magazine; a cache whose `stocked` hint says its deque was last seen empty is skipped without pinning the epoch | any thread, lock-free |
//! | 4 | `victim` | the deques retired by the last cleanup cycle; a get takes one object, the rest of its magazine waits in a generation-tagged list | any thread; epoch-protected, a mutex for the partly used magazines |
//! | 5 | `New` | `create()` | |
//!
//! `pin`/`runtime_procPin` becomes a lookup of the current thread's cache in the pool's table,
//! indexed by a small per-thread index that is recycled when threads exit.
//!
//! # The fast path
//!
//! `get` on a hit: load the pool's storage pointer, read the thread index (a `const`
//! thread-local), one load to find the cache (below 64 threads), `busy = true`, a compiler fence,
//! load `reclaim`, move the last object of the magazine straight into the guard, `busy = false`,
//! and a counter increment by plain load and store. A guard remembers its cache, so its return
//! checks the thread index and moves the object straight back (`reset` and `keep_if` run in place
//! first, in one out-of-line call when the pool has them); a guard reaches that return through a
//! function pointer it carries (one indirect call, see `src/guard.rs`), `put` directly. No atomic
//! read-modify-write, no fence instruction on Linux; `ci/hot_path.sh` checks the disassembly.
//! Only this hit is inlined into the caller: an empty or full magazine, a thread index of 64 or
//! more, a cache not yet installed or one being reclaimed each cost one call to a `#[cold]`
//! function, so that `get` and `put` stay small enough for the compiler to inline into the
//! caller's loop.
//!
//! The deque holds whole magazines (Bonwick's magazine/depot design): when the magazine is full,
//! `put` pushes it to the deque and starts a new one (if the deque already holds the rest of the
//! per-thread bound, the returned object is dropped instead); when it is empty, `get` pops a full one
//! from the deque, then steals a whole magazine from another thread, then takes one object from
//! the victim tier. Before it steals, it reads each other cache's `stocked` hint, which the owner
//! (or cleanup) stores only when its deque turns empty or non-empty: when no hint is set, the
//! miss goes on to the victim tier without pinning the epoch or reading another thread's deque
//! indices, which the owner rewrites on every transfer. Every transfer between threads moves a
//! batch of up to [`MAGAZINE`](crate::MAGAZINE) objects with one compare-and-swap.
//!
//! # Cleanup (`poolCleanup`)
//!
//! Go runs `poolCleanup` with the world stopped. Here a cycle announces itself to every cache by
//! setting its `reclaim` flag, then runs one heavy barrier (`membarrier` on Linux) so that each
//! owner either has its `busy` flag visible or will see `reclaim` on its next operation. It then
//! retires each cache — magazine pushed into the deque, deque swapped for a fresh one in O(1) —
//! and installs the retired deques as the new victim tier, dropping the previous one. See
//! `src/local.rs` for the full argument, and `src/barrier.rs` for the fallback (`fence(SeqCst)` on
//! both sides) used where `membarrier` is unavailable and under loom and Miri.
//!
//! # Thread exit
//!
//! A cache belongs to an index, not to a thread. When a thread exits, its cache stays in the
//! pool's table: its deque stays stealable, cleanup ages its magazine like any idle thread's, and
//! the next thread that gets the index inherits it. Nothing of a thread's own TLS is touched
//! after it is destroyed: a pool used from a TLS destructor after the index was released works
//! without a cache (gets steal or create, puts drop).
//!
//! # Pool drop
//!
//! The pool's storage is registered in a global list on first use. Dropping the pool waits for
//! a cycle in progress, removes it from the list and drops every cached object exactly once.
