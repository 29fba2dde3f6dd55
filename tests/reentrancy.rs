//! User code re-entering the pool: `create`, `reset`, `keep_if`, `T::drop` and closures deferred
//! on crossbeam-epoch's global collector each call `get`, `put`, `take` or `cleanup()`, on the
//! same pool and on another one, at every tier transition (hit, spill to the deque and the depot,
//! refill, steal, victim rotation, pool drop, a bound far above the default). Every run must
//! terminate, and the ledger must show every object created dropped exactly once.
//!
//! Also the regressions of the defects found where the crate ran such code while holding its own
//! locks, pins or owner windows, each named on its test.

mod common;

use common::{cycles_lock, manual_cycles};
use reuse_pool::{cleanup, Pool};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

const SCALE: usize = if cfg!(miri) { 1 } else { 8 };

// ---------------------------------------------------------------------------------------------
// The ledger: every object's drops, by id.

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);
static DROPS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// An object whose drops are recorded, and whose `Drop` is one of the hooks.
struct Obj {
    id: usize,
}

impl Obj {
    fn new() -> Obj {
        let id = NEXT_ID.fetch_add(1, Relaxed);
        let mut d = DROPS.lock().unwrap();
        if d.len() <= id {
            d.resize(id + 1, 0);
        }
        Obj { id }
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        DROPS.lock().unwrap()[self.id] += 1;
        hook(Hook::Drop);
    }
}

/// Asserts that every object made so far was dropped exactly once.
fn assert_ledger(what: &str) {
    let d = DROPS.lock().unwrap();
    let live: Vec<usize> = (0..d.len()).filter(|&i| d[i] == 0).collect();
    let twice: Vec<usize> = (0..d.len()).filter(|&i| d[i] > 1).collect();
    assert!(twice.is_empty(), "{what}: dropped twice: {twice:?}");
    assert!(
        live.is_empty(),
        "{what}: never dropped: {} objects",
        live.len()
    );
}

// ---------------------------------------------------------------------------------------------
// The hooks and what they do.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Hook {
    None,
    Create,
    Reset,
    KeepIf,
    Drop,
    Deferred,
}

#[derive(Clone, Copy, Debug)]
#[repr(u8)]
enum Action {
    Get,
    Put,
    Take,
    Cleanup,
}

#[derive(Clone, Copy, Debug)]
#[repr(u8)]
enum Target {
    Same,
    Other,
    Big,
}

static HOOK: AtomicU8 = AtomicU8::new(Hook::None as u8);
static ACTION: AtomicU8 = AtomicU8::new(Action::Get as u8);
static TARGET: AtomicU8 = AtomicU8::new(Target::Same as u8);
/// How many times a hook ran its action.
static FIRED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// A hook's action does not fire hooks of its own (that would recurse without end).
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

fn make() -> Obj {
    hook(Hook::Create);
    Obj::new()
}

fn reset(_: &mut Obj) {
    hook(Hook::Reset);
}

fn keep(_: &Obj) -> bool {
    hook(Hook::KeepIf);
    true
}

/// The pool under test: a small depot, so that spills fill it and the rest is dropped.
static SAME: Pool<Obj> = Pool::new(make)
    .reset(reset)
    .keep_if(keep)
    .max_per_thread(64)
    .max_shared(128);
/// Another pool, with no hooks.
static OTHER: Pool<Obj> = Pool::new(Obj::new);
/// A bound far above the default: the thread's deque holds its largest number of magazines.
static BIG: Pool<Obj> = Pool::new(make)
    .reset(reset)
    .keep_if(keep)
    .max_per_thread(1 << 20);

fn target() -> &'static Pool<Obj> {
    match TARGET.load(Relaxed) {
        0 => &SAME,
        1 => &OTHER,
        _ => &BIG,
    }
}

fn hook(which: Hook) {
    if HOOK.load(Relaxed) != which as u8 || IN_HOOK.with(Cell::get) {
        return;
    }
    IN_HOOK.with(|c| c.set(true));
    FIRED.fetch_add(1, Relaxed);
    let pool = target();
    match ACTION.load(Relaxed) {
        0 => drop(pool.get()),
        1 => pool.put(Obj::new()),
        2 => drop(pool.take()),
        _ => cleanup(),
    }
    IN_HOOK.with(|c| c.set(false));
}

/// Closures deferred by the tests, and how many of them have run.
static DEFERRED: AtomicUsize = AtomicUsize::new(0);
static RAN: AtomicUsize = AtomicUsize::new(0);

/// Defers `f` on crossbeam-epoch's global collector: it runs whenever some thread's pin collects
/// it (inside the pool, if the pool pins the global collector there).
fn defer_counted(guard: &crossbeam_epoch::Guard, f: impl FnOnce() + Send + 'static) {
    DEFERRED.fetch_add(1, Relaxed);
    guard.defer(move || {
        f();
        RAN.fetch_add(1, Relaxed);
    });
}

/// Defers `n` closures that run the deferred hook.
fn defer_hooks(n: usize) {
    let guard = crossbeam_epoch::pin();
    for _ in 0..n {
        defer_counted(&guard, || hook(Hook::Deferred));
    }
    guard.flush();
}

/// Every tier transition of `pool`, on this thread and one other.
fn workload(pool: &'static Pool<Obj>) {
    let n = 40 * SCALE;
    // Hits.
    for _ in 0..n {
        drop(pool.get());
    }
    // Spill past the thread's bound into the deque, the depot, and beyond it (drops).
    let held: Vec<Obj> = (0..n * 8).map(|_| pool.take()).collect();
    defer_hooks(130);
    for o in held {
        pool.put(o);
    }
    // Refill from the deque and the depot.
    let held: Vec<Obj> = (0..n * 8).map(|_| pool.take()).collect();
    for o in held {
        pool.put(o);
    }
    // Another thread steals and takes from the depot, then exits with a cache.
    std::thread::scope(|s| {
        s.spawn(move || {
            defer_hooks(130);
            let got: Vec<Obj> = (0..n * 4).map(|_| pool.take()).collect();
            for o in got {
                pool.put(o);
            }
        });
    });
    // Victim rotation: to the victim tier, some taken back, the rest dropped.
    cleanup();
    defer_hooks(130);
    let got: Vec<Obj> = (0..n).map(|_| pool.take()).collect();
    drop(got);
    cleanup();
    cleanup();
    // A pool dropped with objects in every tier.
    let local: Pool<Obj> = Pool::new(make).reset(reset).keep_if(keep).max_shared(64);
    let held: Vec<Obj> = (0..n * 4).map(|_| local.take()).collect();
    for o in held {
        local.put(o);
    }
    cleanup();
    for _ in 0..n {
        local.put(Obj::new());
    }
    drop(local);
}

/// Pins until every closure deferred so far has run, so that none of them fires after the
/// ledger is checked.
fn flush_deferred() {
    let mut pins = 0u64;
    while RAN.load(Relaxed) < DEFERRED.load(Relaxed) {
        crossbeam_epoch::pin().flush();
        pins += 1;
        assert!(pins < 10_000_000, "deferred closures never ran");
    }
}

/// Drops everything the three static pools cache.
fn drain_statics() {
    cleanup();
    cleanup();
}

/// Runs `f` on another thread and fails if it does not end within a minute: a deadlock shows
/// as a failure instead of a hung test run.
fn within_a_minute(what: &str, f: impl FnOnce() + Send + 'static) {
    if cfg!(miri) {
        // Miri runs far slower than a minute allows; a deadlock shows there as its own error.
        f();
        return;
    }
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(()) => t.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // It panicked: report its panic.
            if let Err(p) = t.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: no progress for 60 s (deadlock)"),
    }
}

#[test]
#[cfg_attr(miri, ignore = "60 runs of every tier transition: hours under Miri")]
fn reentrancy_matrix() {
    let _cycles = cycles_lock();
    manual_cycles();
    let hooks = [
        Hook::Create,
        Hook::Reset,
        Hook::KeepIf,
        Hook::Drop,
        Hook::Deferred,
    ];
    let actions = [Action::Get, Action::Put, Action::Take, Action::Cleanup];
    let targets = [Target::Same, Target::Other, Target::Big];
    for hook in hooks {
        for action in actions {
            for target in targets {
                let what = format!("{hook:?} -> {action:?} on {target:?}");
                let fired = FIRED.load(Relaxed);
                HOOK.store(hook as u8, Relaxed);
                ACTION.store(action as u8, Relaxed);
                TARGET.store(target as u8, Relaxed);
                let w = what.clone();
                within_a_minute(&w, || {
                    workload(&SAME);
                    workload(&BIG);
                });
                HOOK.store(Hook::None as u8, Relaxed);
                flush_deferred();
                assert!(FIRED.load(Relaxed) > fired, "{what}: the hook never ran");
                drain_statics();
                assert_ledger(&what);
            }
        }
    }
}

/// Regression: `cleanup()` deadlocked when a closure deferred on crossbeam-epoch's global
/// collector returned an object to a pool (cleanup pinned that collector while holding a cache's
/// lock, the pool's retired list and the cycle lock).
#[test]
fn deferred_put_during_cleanup_does_not_deadlock() {
    let _cycles = cycles_lock();
    manual_cycles();
    static P: Pool<Vec<u8>> = Pool::new(Vec::new);
    let rounds = if cfg!(miri) { 5 } else { 300 };
    within_a_minute("deferred put during cleanup", move || {
        for _ in 0..rounds {
            for _ in 0..40 {
                P.put(Vec::new());
            }
            {
                let g = crossbeam_epoch::pin();
                for _ in 0..65 {
                    defer_counted(&g, || P.put(Vec::new()));
                }
            }
            cleanup();
        }
    });
    flush_deferred();
    cleanup();
    cleanup();
    assert!(P.try_take().is_none(), "two cycles drop everything");
}

/// Regression: with a bound above 64 magazines, the thread's deque resized inside the owner's
/// window; the resize pinned crossbeam's global epoch and ran deferred closures there, and one
/// that called `cleanup()` spun forever on its own thread's busy flag (one that called `put`
/// opened a nested window: two `&mut` to the same cache).
#[test]
fn deferred_cleanup_inside_a_large_cache_does_not_hang() {
    let _cycles = cycles_lock();
    manual_cycles();
    static BIG_VEC: Pool<Vec<u8>> = Pool::new(Vec::new).max_per_thread(1 << 20);
    let n = if cfg!(miri) { 300 } else { 2240 };
    for deferred in [0u8, 1] {
        within_a_minute("deferred cleanup in a large cache", move || {
            {
                let g = crossbeam_epoch::pin();
                for _ in 0..65 {
                    if deferred == 0 {
                        defer_counted(&g, cleanup);
                    } else {
                        defer_counted(&g, || BIG_VEC.put(Vec::with_capacity(1)));
                    }
                }
            }
            for _ in 0..n {
                BIG_VEC.put(Vec::with_capacity(1));
            }
            let mut got = 0;
            while BIG_VEC.try_take().is_some() {
                got += 1;
            }
            // Everything put is found again, unless a deferred cleanup aged some of it out.
            assert!(got <= n + 65);
        });
        flush_deferred();
    }
    cleanup();
    cleanup();
    assert!(BIG_VEC.try_take().is_none());
}

/// Regression: objects aged out of the victim tier were dropped while the cycle held an epoch
/// pin (of crossbeam's global collector), so a slow `Drop` held back reclamation for the whole
/// process. Now they are dropped after every lock and pin is released.
#[test]
fn aged_out_objects_are_dropped_outside_any_pin() {
    let _cycles = cycles_lock();
    manual_cycles();
    static PINNED_DROPS: AtomicUsize = AtomicUsize::new(0);
    static DROPS_SEEN: AtomicUsize = AtomicUsize::new(0);
    struct CheckPin;
    impl Drop for CheckPin {
        fn drop(&mut self) {
            DROPS_SEEN.fetch_add(1, Relaxed);
            if crossbeam_epoch::is_pinned() {
                PINNED_DROPS.fetch_add(1, Relaxed);
            }
            // A `Drop` that uses a pool and runs a cycle: must not deadlock either.
            OTHER.put(Obj::new());
            cleanup();
        }
    }
    static P: Pool<CheckPin> = Pool::new(|| CheckPin);
    let held: Vec<CheckPin> = (0..100).map(|_| P.take()).collect();
    for c in held {
        P.put(c);
    }
    within_a_minute("drops during cleanup", || {
        cleanup();
        cleanup();
    });
    assert_eq!(DROPS_SEEN.load(Relaxed), 100, "every object aged out");
    assert_eq!(
        PINNED_DROPS.load(Relaxed),
        0,
        "no drop ran inside an epoch pin"
    );
    drain_statics();
}
