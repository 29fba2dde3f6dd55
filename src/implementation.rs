//! How the pool works (documentation only).
//!
//! # Tiers
//!
//! | tier | Go name | here | who touches it |
//! |---|---|---|---|
//! | 1 | `poolLocal.private` | the thread's magazine (up to [`MAGAZINE`](crate::MAGAZINE) objects) | owner, no lock and no atomic read-modify-write; cleanup under the reclaim protocol |
//! | 2 | `poolLocal.shared` (`poolChain`) | the thread's `crossbeam-deque` `Worker` of full magazines, at most 63 | owner at the back in the same busy window (a per-thread lock only while cleanup reclaims); thieves at the front, lock-free |
//! | 3 | per-P `shared` as a whole | the pool's depot: full magazines that overflowed the threads' caches, one lock-free Treiber stack per CPU ([`max_shared`](crate::Pool::max_shared)) | any thread, lock-free: one compare-and-swap per magazine |
//! | 4 | `getSlow` | other threads' `Stealer`s, a probe of 8 caches per miss, each miss the next 8; one steal takes a whole magazine; a cache whose `stocked` hint says its deque was last seen empty is skipped without touching its deque | any thread, lock-free |
//! | 5 | `victim` | what the last cleanup cycle moved aside: the threads' magazines and the depot's shards; a get takes one object | any thread, under a short spin lock taken only when the tier is not empty |
//! | 6 | `New` | `create()` | |
//!
//! `pin`/`runtime_procPin` becomes a lookup of the current thread's cache in the pool's table,
//! indexed by a small per-thread index that is recycled when threads exit.
//!
//! A global registry lets one cleanup cycle visit every pool in O(pools + threads). What each shared structure costs on many
//! cores is in `docs/SCALING.md`.
//!
//! # Guarantees
//!
//! The same as Go's `sync.Pool`, with the differences Rust allows:
//!
//! * `get` returns an object returned earlier (after `reset`) or a fresh `create()`. Never the same
//!   object to two holders; every object is dropped exactly once (when discarded, rejected by
//!   `keep_if`, over the bounds of the thread's cache and the depot, aged out by cleanup, or when the
//!   pool drops).
//! * A return that finds the thread's cache full moves a whole magazine to the depot, where any
//!   thread finds it; only when the depot is full too (or off) is it dropped.
//! * A return happens-before the `get` that hands the object out again.
//! * A cleanup cycle drops what the previous cycle moved to the victim tier and moves everything still
//!   cached there. An object unused for two cycles is dropped; one used within the last cycle is not.
//!   This holds for objects cached by idle and exited threads too.
//! * A blocked or exited thread keeps at most one magazine (32 objects) out of other threads' reach
//!   until the next cycle; the rest of its objects are in its deque, where others steal them (a miss
//!   probes 8 other threads' deques, the next 8 on its next miss), or in the depot.
//! * A panic in `create`, `reset`, `keep_if` or `T::drop` leaves the pool usable.
//! * Not promised, as in Go: which object you get, that any object survives, order.
//! * After `fork` (Unix), the child's pools work: the crate's locks are taken around the fork, the
//!   caches of the threads that did not survive it are frozen (never aged or dropped in the child:
//!   their private magazines are leaked there, their deques can still be stolen from), and automatic
//!   cycles resume on the child's next pool operation off the fast path; one limit remains, see
//!   [`fork`](#fork).
//!
//! # What takes a lock
//!
//! | path | synchronisation |
//! |---|---|
//! | a thread's own hit and return (its private magazine) | no lock, no atomic read-modify-write; on Linux no fence instruction |
//! | spilling to and refilling from the thread's own deque | lock-free (`crossbeam-deque`) |
//! | stealing a magazine from another thread's deque | lock-free: one compare-and-swap per magazine, under an epoch pin |
//! | the per-CPU depot (overflow of a full cache, refill of an empty one) | lock-free: one compare-and-swap per magazine on the CPU's shard, under a pin of the crate's own epoch collector |
//! | the victim tier (a miss after the steals) | a spin lock per pool, taken only when the tier holds anything |
//! | a pool's first use (registration), a thread's first use of the crate and its exit | a global mutex |
//! | cleanup cycles | a global cycle lock and a per-cache lock; while a cycle reclaims a thread's cache, that thread's gets and returns take the cache's lock |
//!
//! None of these locks is held while code of the crate's users runs (see [Code the crate does not own](#code-the-crate-does-not-own)).
//!
//! # The fast path
//!
//! `get` on a hit: load the pool's storage pointer, read the thread index (a `const`
//! thread-local), find the cache (one load for the first 1,024 indices, the same on every such
//! thread; the bucket arithmetic and two loads beyond: inline for every index), `busy = true`, a
//! compiler fence, load `reclaim`,
//! move the last object of the magazine straight into the guard, `busy = false`, and a counter
//! increment by plain load and store. Objects of 8 to 64 bytes (aligned to 8) move in and out
//! of the magazine one 8-byte word at a time (`words`), so that no load spans two earlier
//! stores. A guard remembers its cache, so its return checks the thread index (kept in the
//! cache's hot line, beside the magazine) and moves the
//! object straight back (`reset` and `keep_if` run in place first: inline in `put`, in one call
//! through the function the pool's storage keeps for a guard). No atomic read-modify-write, no fence
//! instruction on Linux; `ci/hot_path.sh` checks the disassembly. Only this hit is inlined into
//! the caller: an empty or full magazine, a cache not yet installed or one being reclaimed each
//! cost one call to a `#[cold]` function, so that `get` and `put` stay small enough for the
//! compiler to inline into the caller's loop.
//!
//! The deque holds whole magazines (Bonwick's magazine/depot design): when the magazine is full,
//! `put` pushes it to the deque and starts a new one; when the deque already holds the rest of
//! the per-thread bound, the full magazine goes to the depot instead (with the depot off, or
//! full, it is dropped). When the magazine is empty, `get` pops a full one from the deque, then
//! from the depot (its CPU's shard first), then steals a whole magazine from one of the next 8
//! threads, then takes one object from the victim tier. Before it steals, it reads each probed
//! cache's `stocked` hint, which the owner (or cleanup) stores only when its deque turns empty or
//! non-empty, so a miss reads no other thread's deque indices, which the owner rewrites on every
//! transfer. Every transfer between threads moves a batch of up to
//! [`MAGAZINE`](crate::MAGAZINE) objects with one compare-and-swap. A miss costs the same
//! however many threads exist: 8 hints, the depot's shards, the victim tier's hint.
//!
//! # Code the crate does not own
//!
//! `create`, `reset`, `keep_if`, `T::drop`, and closures that other libraries deferred on
//! crossbeam-epoch's global collector (which runs them on any thread's pin) may use any pool,
//! call [`cleanup`](crate::cleanup) or drop a pool. The rule: none of them runs while the crate
//! holds a lock, an epoch pin or an owner window.
//!
//! * Owner windows hold only `Vec` moves and `Worker` pushes and pops that never resize (the
//!   deque holds at most 63 magazines, below the 64 slots it starts with); debug builds assert
//!   that no window opens inside another on the same cache.
//! * The crate's own epoch-protected structures (the depot's stacks) use a private
//!   `crossbeam_epoch::Collector`: pinning it runs only the crate's own deferred frees of empty
//!   nodes. Steals from `crossbeam-deque` pin the global collector, so they run only outside
//!   every window and lock of the crate.
//! * Objects to drop (over a bound, rejected, aged out, in a dropped pool) are collected and
//!   dropped after every lock and pin is released. A cleanup cycle drops the victim set it
//!   replaced after releasing the cycle lock.
//! * A `Drop` that calls back into the crate does not nest without bound: an object given up by
//!   a get or a return whose drop is itself inside such a drop, more than a few levels deep, and
//!   a cycle's objects aged out inside one, are queued for the thread's outermost drop, which
//!   runs the queue as a loop (`src/cleanup.rs`, `drop_flat`). A chain of `Drop`s that each
//!   return an object to a full pool therefore keeps the stack a few frames deep.
//!
//! Every other way user code can make the crate call it again is bounded by the user's own
//! recursion or data, never by the number of objects the pool holds:
//!
//! * `create` calling `get` on the same (empty) pool: `create` runs in `get`'s miss path after
//!   the slow lookup has closed every window and released every lock and pin; each nested `get`
//!   is a fresh call that adds a fixed number of frames. The depth is the number of nested
//!   `create`s the user's code makes.
//! * `reset` or `keep_if` calling `put`, `take` or `get` on the same pool: they run before the
//!   object enters any cache, with no window or lock open; the return re-reads the magazine
//!   afterwards. Each level of nesting is one user call; a refused object is dropped through
//!   `drop_flat` (above).
//! * A pool dropped inside a pooled object's `Drop`: the pool's drop takes the cycle lock only
//!   to unregister (never held while user code runs: cycles drop their objects after releasing
//!   it) and then drops its objects with no lock or pin held. The depth is how deeply the
//!   user's objects hold pools that hold objects that hold pools.
//! * `BufPool` reclassifying a buffer on its return (shrink into the class below, or discard):
//!   one step per return, and a `Vec<u8>` has no user `Drop`, so the depth is constant.
//! * Closures deferred on crossbeam-epoch's global collector: only a steal pins it, outside
//!   every window and lock, and crossbeam collects only on a thread's outermost pin, so a
//!   closure that steals again does not start another collection inside the first.
//! * `cleanup()` from a `Drop` and a `Drop` that returns an object to a full pool: queued, as
//!   above.
//!
//! `tests/reentrancy.rs` runs every hook against every action and tier transition;
//! `tests/cleanup_recursion.rs` and `tests/adversarial.rs` run the chains of thousands of
//! `Drop`s, in debug and release builds.
//!
//! # Cleanup (`poolCleanup`)
//!
//! Go runs `poolCleanup` with the world stopped. Here a cycle announces itself to every cache by
//! setting its `reclaim` flag, then runs one heavy barrier (`membarrier` on Linux) so that each
//! owner either has its `busy` flag visible or will see `reclaim` on its next operation. It then
//! retires each cache — the magazine and every magazine of the deque moved out under the cache's
//! lock, at most 64 per cache — takes each depot shard whole (one swap each), installs all of
//! it as the new victim tier, and, after releasing the cycle lock, drops the previous one. The
//! deque itself stays in place, so a thief never takes a magazine that cleanup moved to the
//! victim tier. See `src/local.rs` for the full argument, and `src/barrier.rs` for the fallback
//! (`fence(SeqCst)` on both sides) used where `membarrier` is unavailable and under loom and
//! Miri. Cycles are driven by a background thread on a timer (every
//! [`DEFAULT_CLEANUP_INTERVAL`](crate::DEFAULT_CLEANUP_INTERVAL) by default) or by calls of
//! [`cleanup`](crate::cleanup).
//!
//! # Thread exit
//!
//! A cache belongs to an index, not to a thread. When a thread exits, its cache stays in the
//! pool's table: its deque stays stealable, cleanup ages its magazine like any idle thread's, and
//! the next thread that gets the index inherits it. Nothing of a thread's own TLS is touched
//! after it is destroyed: a pool used from a TLS destructor after the index was released works
//! without a cache (gets take from the depot, steal or create; puts drop).
//!
//! # Pool drop
//!
//! The pool's storage is registered in a global list on first use. Dropping the pool waits for
//! a cycle in progress, removes it from the list and drops every cached object exactly once.
//!
//! # `fork`
//!
//! See `src/fork.rs`: handlers take the crate's locks around `fork`; in the child, the caches of
//! threads that did not survive the fork are frozen (never aged or dropped there: their private
//! magazines are leaked, their deques can still be stolen from), the epoch collector is replaced
//! and automatic cycles restart on the child's next pool operation off the fast path.
//!
//! The crate's one-time set-up (the fence mode, the fork handlers, a pool's storage) uses no
//! `Once`, which a fork during another thread's first use would leave stuck in the child. One
//! limit remains outside the crate: crossbeam-epoch's global collector (pinned when a thread steals
//! from another's deque) is created lazily behind a `Once`; a fork during the very first steal of
//! the process could leave the child waiting on it. And a `fork()` called from a TLS destructor
//! of the forking thread, once the crate's per-thread record of the locks it holds across the
//! fork is gone, takes none of them: the fork goes on unprotected (`src/fork.rs`).
