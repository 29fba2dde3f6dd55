//! How the pool works (documentation only).
//!
//! # Tiers
//!
//! | tier | Go name | here | who touches it |
//! |---|---|---|---|
//! | 1 | `poolLocal.private` | the thread's magazine (up to [`MAGAZINE`](crate::MAGAZINE) objects) | owner, lock-free; cleanup under the reclaim protocol |
//! | 2 | `poolLocal.shared` (`poolChain`) | the thread's `crossbeam-deque` `Worker` | owner at the back, under a per-thread lock that is taken once per batch |
//! | 3 | `getSlow` | other threads' `Stealer`s, starting after our own index | any thread, lock-free |
//! | 4 | `victim` | the deques retired by the last cleanup cycle | any thread, lock-free, epoch-protected |
//! | 5 | `New` | `create()` | |
//!
//! `pin`/`runtime_procPin` becomes a lookup of the current thread's cache in the pool's table,
//! indexed by a small per-thread index that is recycled when threads exit.
//!
//! # The fast path
//!
//! `get` on a hit: read the thread index (a `const` thread-local), two loads to find the cache,
//! `busy = true`, a compiler fence, load `reclaim`, `Vec::pop`, `busy = false`, and a counter
//! increment by plain load and store. `put` is the same with `Vec::push`. No atomic
//! read-modify-write, no fence instruction on Linux.
//!
//! When the magazine is full, `put` spills its older half to the deque; when it is empty, `get`
//! refills half of it from the deque, then steals a batch (`steal_batch_and_pop`) from another
//! thread, then from the victim tier. The per-thread lock is uncontended except against cleanup.
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
