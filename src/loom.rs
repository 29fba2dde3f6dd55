//! loom models of every lock-free hand-off of the pool.
//!
//! Run with `ci/loom.sh`, or by hand:
//!
//! ```text
//! RUSTFLAGS="--cfg reuse_pool_loom" CARGO_TARGET_DIR=target/loom \
//!     LOOM_MAX_PREEMPTIONS=2 cargo test --lib -- loom:: --nocapture --test-threads=1
//! ```
//!
//! Each model drives the crate-internal pieces directly ([`Local`], [`Depot`], [`VictimTier`],
//! [`Tiers`]), with 2–3 loom threads, and checks, in every interleaving loom explores:
//!
//! * **nothing lost, nothing duplicated, nothing dropped twice**: every [`Obj`] records its drops
//!   in a [`Ledger`]; at the end of each execution everything still cached is drained, everything
//!   held is dropped, and each object created must have been dropped exactly once;
//! * **never the same object to two holders**: an object handed out is marked held, and handing
//!   out a held object fails the model; where an object may end in one of several places (a
//!   thread's cache, the depot, the victim tier, a thief), [`assert_in_one_place`] names the two
//!   places that both hold it;
//! * **a return happens-before the `get` that hands the object out again**: each holder writes
//!   the object's payload through a loom `UnsafeCell`, so loom reports a causality violation if a
//!   hand-off lacks a happens-before edge;
//! * **the owner-only state is never touched by two threads at once**: a cache's magazine and
//!   deque handle are a loom `UnsafeCell`, so loom checks the busy/reclaim protocol of [`Local`]
//!   itself (under loom [`barrier::light`] and [`barrier::heavy`] are both `fence(SeqCst)`);
//! * no deadlock (loom reports one when every thread is blocked) and no leak of a loom `Arc`.
//!
//! What is *not* modeled:
//!
//! * `crossbeam-deque` and `crossbeam-epoch`: loom cannot see inside them, so under loom
//!   [`crate::deque`] replaces the deque by a linearizable, mutex-based model with the same
//!   interface, and [`crate::stack`] replaces the depot's lock-free stacks (whose nodes
//!   crossbeam-epoch reclaims) by a `Vec` behind a loom `Mutex` (the crates are checked by their
//!   authors, with Miri and sanitizers among others; the stacks by the crate's own tests under
//!   Miri and the sanitizers). The deque model answers `Steal::Retry` to a steal that runs into a
//!   concurrent operation, as crossbeam's does when it loses a race, so the pool's retry loops
//!   are explored too.
//! * The process-wide statics: the registry of pools, the cycle lock, the automatic driver and
//!   the thread-index allocator ([`crate::thread_id`]) use `std` types in every configuration.
//!   loom runs all its threads on one OS thread, so `std` thread-locals are shared by every loom
//!   thread: only a model's main thread calls [`Tiers::take_into`] and
//!   [`Tiers::put_from`] (which look up the current thread's index); the other threads use
//!   [`Local`]s directly, as `Tiers` does. The hand-over of an exited thread's index to the next
//!   thread is a `std` mutex in the crate; the models stand in for it with a `join`, which gives
//!   the same happens-before edge. The depot's shard hint (the CPU) is the thread's index under
//!   loom, the same for every loom thread; the models use depots of one shard.
//!
//! The bookkeeping of the [`Ledger`] uses `std` atomics on purpose: loom runs one thread at a
//! time on one OS thread, so they are exact, and they add no interleavings to explore. Work done
//! while only one loom thread runs (filling caches before the threads start, draining them after
//! the joins) adds no interleavings either, so the models fill whole magazines of
//! [`MAGAZINE`](crate::MAGAZINE) objects there and keep the concurrent parts to a few calls.

use crate::barrier;
use crate::depot::Depot;
use crate::local::{shape, Found, Local};
use crate::registry::Cycle;
use crate::stack::Chain;
use crate::sync::{Arc, AtomicBool as LoomBool, Ordering};
use crate::tiers::Tiers;
use crate::victim::VictimTier;
use crate::MAGAZINE;
use loom::thread;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

/// Preemption bound when `LOOM_MAX_PREEMPTIONS` is not set. Most concurrency bugs need at most
/// two or three preemptions (Musuvathi & Qadeer, "Iterative context bounding", PLDI 2007).
const DEFAULT_PREEMPTIONS: usize = 2;

/// Runs `f` under loom with a bounded number of preemptions and prints how many executions were
/// explored (`ci/loom.sh` adds these lines up).
fn run_model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(DEFAULT_PREEMPTIONS);
    }
    let bound = builder.preemption_bound;
    let iterations = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = iterations.clone();
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Relaxed);
        f();
    });
    eprintln!(
        "loom model {name}: {} executions explored (preemption bound {}) in {:.2?}",
        iterations.load(Relaxed),
        bound.map_or("none".to_string(), |b| b.to_string()),
        start.elapsed()
    );
}

/// Outcomes observed across the executions of one model, to show that the model is not vacuous
/// (for example, that the steal it races really succeeds in some interleaving and fails in
/// another).
#[derive(Clone, Default)]
struct Seen(std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<&'static str>>>);

impl Seen {
    fn note(&self, outcome: &'static str) {
        self.0.lock().unwrap().insert(outcome);
    }

    /// Asserts that every one of `outcomes` happened in some execution.
    fn assert_all(&self, outcomes: &[&'static str]) {
        let seen = self.0.lock().unwrap();
        for o in outcomes {
            assert!(
                seen.contains(o),
                "no execution had outcome {o:?}; seen: {seen:?}"
            );
        }
    }
}

/// Life records of the objects of one execution.
struct Ledger {
    created: AtomicUsize,
    drops: Vec<AtomicUsize>,
    held: Vec<AtomicBool>,
}

impl Ledger {
    /// Room for `n` objects.
    fn new(n: usize) -> std::sync::Arc<Ledger> {
        std::sync::Arc::new(Ledger {
            created: AtomicUsize::new(0),
            drops: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            held: (0..n).map(|_| AtomicBool::new(false)).collect(),
        })
    }

    fn created(&self) -> usize {
        self.created.load(Relaxed)
    }

    /// Total number of drops so far.
    fn dropped(&self) -> usize {
        self.drops.iter().map(|d| d.load(Relaxed)).sum()
    }

    /// Asserts that every object created has been dropped exactly once.
    fn assert_all_dropped_once(&self) {
        for id in 0..self.created() {
            let d = self.drops[id].load(Relaxed);
            assert!(d != 0, "object {id} was lost: never dropped");
            assert!(d == 1, "object {id} was dropped {d} times");
        }
    }
}

/// A pooled object that records its life in a [`Ledger`].
struct Obj {
    id: usize,
    /// Written by every holder and by `drop`: loom checks that each write happens-before the next.
    payload: loom::cell::UnsafeCell<usize>,
    ledger: std::sync::Arc<Ledger>,
}

impl Obj {
    /// A fresh object, held by its creator.
    fn new(ledger: &std::sync::Arc<Ledger>) -> Obj {
        let id = ledger.created.fetch_add(1, Relaxed);
        assert!(
            id < ledger.drops.len(),
            "the model creates more objects than its ledger holds"
        );
        ledger.held[id].store(true, Relaxed);
        Obj {
            id,
            payload: loom::cell::UnsafeCell::new(0),
            ledger: ledger.clone(),
        }
    }

    /// `n` fresh objects.
    fn many(ledger: &std::sync::Arc<Ledger>, n: usize) -> Vec<Obj> {
        (0..n).map(|_| Obj::new(ledger)).collect()
    }

    /// `n` fresh objects, already given back: a magazine to place in a tier directly.
    fn magazine(ledger: &std::sync::Arc<Ledger>, n: usize) -> Vec<Obj> {
        (0..n).map(|_| Obj::new(ledger).given_back()).collect()
    }

    /// Uses the object; loom checks that the previous holder's use happens-before this one.
    fn touch(&self) {
        // SAFETY: the holder owns the `Obj` by value. That no other thread can reach it is the
        // claim under test, and loom checks it through this very access.
        self.payload.with_mut(|p| unsafe { *p += 1 });
    }

    /// The pool handed this object out: it must not be held by anyone else.
    fn handed_out(self) -> Obj {
        let was = self.ledger.held[self.id].swap(true, Relaxed);
        assert!(!was, "object {} handed to two holders at once", self.id);
        self.touch();
        self
    }

    /// The holder gives the object back to the pool.
    fn given_back(self) -> Obj {
        self.touch();
        let was = self.ledger.held[self.id].swap(false, Relaxed);
        assert!(
            was,
            "object {} returned by a thread that did not hold it",
            self.id
        );
        self
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        // The drop is the object's last use: it too must come after every holder's use.
        self.touch();
        self.ledger.drops[self.id].fetch_add(1, Relaxed);
    }
}

/// The ids of `objs`.
fn ids(objs: &[Obj]) -> Vec<usize> {
    objs.iter().map(|o| o.id).collect()
}

/// Asserts that no object is in two of `places` (named, for the message) at once.
fn assert_in_one_place(places: &[(&str, &[Obj])]) {
    let mut at = std::collections::BTreeMap::new();
    for (name, objs) in places {
        for o in objs.iter() {
            if let Some(before) = at.insert(o.id, *name) {
                panic!("object {} is both in {before} and in {name}", o.id);
            }
        }
    }
}

/// A depot that holds nothing (its bound is zero): a cache that is full refuses a return, as
/// with `Pool::max_shared(0)`.
fn no_depot() -> std::sync::Arc<Depot<Obj>> {
    std::sync::Arc::new(Depot::new(0, 1, 1))
}

/// A depot of one shard with room for `magazines` magazines of a cache bounded by `per_thread`.
fn depot(per_thread: usize, magazines: usize) -> std::sync::Arc<Depot<Obj>> {
    let (batch, _) = shape(per_thread);
    let depot = Depot::new(magazines * batch, batch, 1);
    assert_eq!(depot.capacity(), magazines);
    std::sync::Arc::new(depot)
}

/// A cache bounded by `per_thread` whose overflow goes to `depot`, shared between loom threads.
fn cache(per_thread: usize, depot: &std::sync::Arc<Depot<Obj>>) -> Arc<Local<Obj>> {
    Arc::new(Local::new(per_thread, depot.clone()))
}

/// What `Tiers::put_from` does with the current thread's cache.
fn put(local: &Local<Obj>, obj: Obj) {
    let mut slot = std::mem::ManuallyDrop::new(obj.given_back());
    if !local.push_fast_from(&mut slot) {
        // SAFETY: `push_fast_from` returned false, so the object is still in `slot`, which is
        // not used again.
        let obj = unsafe { std::mem::ManuallyDrop::take(&mut slot) };
        // A full magazine moves to the deque, or to the depot when the deque is full; with no
        // room in either, the pool drops what it cannot keep.
        local.push_slow(obj);
    }
}

/// What `Tiers::take_into` does with the current thread's cache (the depot is searched by
/// `pop_slow`); `others` stands for the steal from other threads' deques and the victim tier.
fn get(local: &Local<Obj>, others: impl FnOnce() -> Option<Found<Obj>>) -> Option<Obj> {
    let mut out = std::mem::MaybeUninit::uninit();
    let got = if local.pop_fast_into(&mut out) {
        // SAFETY: `pop_fast_into` returned true, so it wrote `out`.
        Some(unsafe { out.assume_init() })
    } else {
        local.pop_slow(others)
    };
    got.map(Obj::handed_out)
}

/// No other thread has anything.
fn nobody() -> Option<Found<Obj>> {
    None
}

/// Steals a magazine from `victim`'s deque, as `Tiers::take_slow` does.
fn steal_from(victim: &Local<Obj>) -> Option<Found<Obj>> {
    victim.steal().map(Found::Stolen)
}

/// Takes one object from the victim tier, as `Tiers::take_slow` does.
fn from_victims(tier: &VictimTier<Obj>) -> Option<Found<Obj>> {
    tier.take().map(Found::Victim)
}

/// `Pool::try_take` on `tiers`: the current thread's cache first, then the other tiers.
fn tiers_take(tiers: &Tiers<Obj>) -> Option<Obj> {
    let mut out = std::mem::MaybeUninit::uninit();
    // SAFETY: `take_into` returned true, so it wrote `out`.
    tiers
        .take_into(&mut out)
        .then(|| unsafe { out.assume_init() })
}

/// `Pool::put` on `tiers` (a return through the full lookup, as from a thread without a home).
fn tiers_put(tiers: &Tiers<Obj>, obj: Obj) {
    let mut slot = std::mem::ManuallyDrop::new(obj.given_back());
    // SAFETY: `slot` holds the object and is never used again.
    unsafe { tiers.put_from(&mut slot) }
}

/// One cleanup cycle's steps for one cache: flag, heavy barrier, retire. Returns the magazines
/// that cleanup moved out of the cache (its share of the next victim set).
fn cycle(local: &Local<Obj>) -> Vec<Vec<Obj>> {
    local.flag();
    barrier::heavy();
    let mut retired = Vec::new();
    local.retire(&mut retired);
    retired
}

/// The objects of `mags`.
fn flat(mags: Vec<Vec<Obj>>) -> Vec<Obj> {
    mags.into_iter().flatten().collect()
}

/// Everything `local` caches (pool drop's `drain_all`).
fn drain_local(local: &Local<Obj>) -> Vec<Obj> {
    let mut mags = Vec::new();
    local.drain_all(&mut mags);
    flat(mags)
}

/// The depot's shards, taken whole, as a cycle does.
fn depot_chains(depot: &Depot<Obj>) -> Vec<Chain<Obj>> {
    let mut chains = Vec::new();
    depot.take_all(&mut chains);
    chains
}

/// Everything the depot holds.
fn drain_depot(depot: &Depot<Obj>) -> Vec<Obj> {
    let mut mags = Vec::new();
    for mut c in depot_chains(depot) {
        c.drain_into(&mut mags);
    }
    flat(mags)
}

/// Everything the victim tier holds.
fn drain_victims(tier: &VictimTier<Obj>) -> Vec<Obj> {
    flat(tier.take_all().into_magazines())
}

/// Drops `found` (everything held or still cached at the end) and checks that this accounts for
/// every object created, each dropped exactly once.
fn finish(ledger: &Ledger, found: Vec<Obj>) {
    let created = ledger.created();
    let dropped_before = ledger.dropped();
    assert_eq!(
        found.len() + dropped_before,
        created,
        "every object is held, cached, or was dropped by the pool"
    );
    drop(found);
    ledger.assert_all_dropped_once();
}

/// Owner put vs. stealer: the owner's `push_slow` moves its full magazine to its deque (inside
/// its lock-free window) while another thread, whose own cache is empty, steals that magazine
/// (`pop_slow`, past the empty depot, + `steal`), keeps the rest in its own magazine and returns
/// the object on its own thread. A put must happen-before the steal that hands the object out.
#[test]
fn owner_spill_vs_steal() {
    let seen = Seen::default();
    let s = seen.clone();
    run_model("owner_spill_vs_steal", move || {
        let ledger = Ledger::new(MAGAZINE + 2);
        let depot = no_depot();
        // Room for one magazine in the deque.
        let a = cache(2 * MAGAZINE, &depot);
        let b = cache(2 * MAGAZINE, &depot);
        for o in Obj::many(&ledger, MAGAZINE) {
            put(&a, o);
        }
        let last = Obj::new(&ledger);

        let owner = {
            let a = a.clone();
            thread::spawn(move || {
                put(&a, last); // the magazine is full: it moves to the deque
                get(&a, nobody)
            })
        };
        let thief = {
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || {
                let x = get(&b, || steal_from(&a));
                let stole = x.is_some();
                if let Some(x) = x {
                    put(&b, x);
                }
                (stole, get(&b, || steal_from(&a)))
            })
        };
        let mut found: Vec<Obj> = Vec::new();
        found.extend(owner.join().unwrap());
        let (stole, y) = thief.join().unwrap();
        s.note(if stole {
            "stolen"
        } else {
            "nothing to steal yet"
        });
        found.extend(y);
        found.extend(drain_local(&a));
        found.extend(drain_local(&b));
        finish(&ledger, found);
    });
    seen.assert_all(&["stolen", "nothing to steal yet"]);
}

/// The owner refilling its magazine from its own deque (a `Worker::pop` inside its lock-free
/// window) vs. two thieves stealing from that deque: each magazine goes to exactly one of them.
#[test]
fn owner_refill_vs_two_thieves() {
    run_model("owner_refill_vs_two_thieves", || {
        let ledger = Ledger::new(2 * MAGAZINE + 1);
        let depot = no_depot();
        // Two magazines in the deque, one object in the magazine.
        let a = cache(3 * MAGAZINE, &depot);
        for o in Obj::many(&ledger, 2 * MAGAZINE + 1) {
            put(&a, o);
        }
        let owner = {
            let a = a.clone();
            thread::spawn(move || {
                let x = get(&a, nobody); // the magazine's last object
                let y = get(&a, nobody); // refills from the deque, if a thief left anything
                (x, y)
            })
        };
        let thieves: Vec<_> = (0..2)
            .map(|_| {
                let (a, depot) = (a.clone(), depot.clone());
                thread::spawn(move || {
                    let mine = Local::<Obj>::new(2 * MAGAZINE, depot);
                    let mut got: Vec<Obj> = get(&mine, || steal_from(&a)).into_iter().collect();
                    got.extend(drain_local(&mine));
                    got
                })
            })
            .collect();
        let mut found: Vec<Obj> = Vec::new();
        let (x, y) = owner.join().unwrap();
        found.extend(x);
        found.extend(y);
        for t in thieves {
            found.extend(t.join().unwrap());
        }
        found.extend(drain_local(&a));
        finish(&ledger, found);
    });
}

/// Owner get/put vs. cleanup reclaiming the private magazine: the busy/reclaim Dekker protocol.
///
/// The owner runs `pop_fast_into`/`push_fast_from` (plain accesses to the magazine inside a
/// `busy` window) while cleanup runs `flag`, `barrier::heavy`, `retire`. loom checks that the
/// two never touch the magazine concurrently, that cleanup's changes are visible to the owner
/// afterwards, and that every object ends up exactly once with the owner, in the magazines
/// cleanup moved out of the cache, or still cached.
#[test]
fn owner_fast_path_vs_cleanup() {
    let seen = Seen::default();
    let s = seen.clone();
    run_model("owner_fast_path_vs_cleanup", move || {
        let ledger = Ledger::new(2);
        // A magazine of two and no deque.
        let l = cache(2, &no_depot());
        for o in Obj::many(&ledger, 2) {
            put(&l, o);
        }
        let owner = {
            let l = l.clone();
            thread::spawn(move || {
                let x = get(&l, nobody);
                if let Some(x) = x {
                    put(&l, x);
                }
                get(&l, nobody)
            })
        };
        let cleanup = {
            let l = l.clone();
            thread::spawn(move || flat(cycle(&l)))
        };
        let mut found: Vec<Obj> = Vec::new();
        found.extend(owner.join().unwrap());
        let retired = cleanup.join().unwrap();
        s.note(match retired.len() {
            0 => "cleanup ran after the owner emptied the magazine",
            1 => "cleanup retired what the owner left",
            _ => "cleanup retired the whole magazine",
        });
        found.extend(retired);
        found.extend(drain_local(&l));
        finish(&ledger, found);
    });
    seen.assert_all(&[
        "cleanup retired what the owner left",
        "cleanup retired the whole magazine",
    ]);
}

/// The owner's batch moves vs. cleanup: a spill of the full magazine to the deque and a refill
/// from it, both inside the owner's lock-free window, while cleanup moves the magazine and every
/// magazine of the deque out of the cache (the deque itself stays).
#[test]
fn owner_spill_and_refill_vs_cleanup() {
    run_model("owner_spill_and_refill_vs_cleanup", || {
        let ledger = Ledger::new(MAGAZINE + 1);
        let l = cache(2 * MAGAZINE, &no_depot());
        for o in Obj::many(&ledger, MAGAZINE) {
            put(&l, o);
        }
        let last = Obj::new(&ledger);
        let owner = {
            let l = l.clone();
            thread::spawn(move || {
                put(&l, last); // spill: the full magazine moves to the deque
                let x = get(&l, nobody); // `last`, or nothing if cleanup took it
                let y = get(&l, nobody); // refill from the deque, if cleanup left it
                (x, y)
            })
        };
        let cleanup = {
            let l = l.clone();
            thread::spawn(move || flat(cycle(&l)))
        };
        let mut found: Vec<Obj> = Vec::new();
        let (x, y) = owner.join().unwrap();
        found.extend(x);
        found.extend(y);
        found.extend(cleanup.join().unwrap());
        found.extend(drain_local(&l));
        finish(&ledger, found);
    });
}

/// An owner that returns an object vs. two cleanup cycles in a row: the second cycle must see
/// the return (or the owner's locked path must have made it), and the owner must see the first
/// cycle's emptied cache.
#[test]
fn owner_put_vs_two_cycles() {
    run_model("owner_put_vs_two_cycles", || {
        let ledger = Ledger::new(1);
        let l = cache(2, &no_depot());
        let x = Obj::new(&ledger);
        let owner = {
            let l = l.clone();
            thread::spawn(move || {
                put(&l, x);
                get(&l, nobody)
            })
        };
        let cleanup = {
            let l = l.clone();
            thread::spawn(move || {
                let mut out = flat(cycle(&l));
                out.extend(flat(cycle(&l)));
                out
            })
        };
        let mut found: Vec<Obj> = Vec::new();
        found.extend(owner.join().unwrap());
        found.extend(cleanup.join().unwrap());
        found.extend(drain_local(&l));
        finish(&ledger, found);
    });
}

/// Cleanup rotation (`VictimTier::rotate`: install what this cycle retired, hand back the
/// previous set, which the cycle then drops) vs. a getter whose cache is empty taking one object
/// from the victim tier. The previous set holds a depot shard taken whole (a chain of two
/// magazines), so the getter unpacks a chain under the tier's lock. Every object of the old set
/// is taken or dropped, exactly once, and the getter never gets an object of the set that the
/// cycle dropped.
#[test]
fn victim_rotate_vs_take() {
    run_model("victim_rotate_vs_take", || {
        let ledger = Ledger::new(2 * MAGAZINE + 1);
        let tier = Arc::new(VictimTier::<Obj>::new());
        let shelf = depot(MAGAZINE, 2);
        for _ in 0..2 {
            assert!(shelf.push(Obj::magazine(&ledger, MAGAZINE)).is_ok());
        }
        let before = tier.rotate(Vec::new(), depot_chains(&shelf));
        assert!(before.into_magazines().is_empty(), "the tier was empty");
        let fresh = vec![Obj::magazine(&ledger, 1)];

        let getter = {
            let (tier, depot) = (tier.clone(), no_depot());
            thread::spawn(move || {
                let mine = Local::<Obj>::new(2 * MAGAZINE, depot);
                let got: Vec<Obj> = get(&mine, || from_victims(&tier)).into_iter().collect();
                assert!(
                    drain_local(&mine).is_empty(),
                    "a victim get takes one object, never a magazine"
                );
                got
            })
        };
        let cleanup = {
            let tier = tier.clone();
            thread::spawn(move || flat(tier.rotate(fresh, Vec::new()).into_magazines()))
        };
        let got = getter.join().unwrap();
        let aged = cleanup.join().unwrap();
        let left = drain_victims(&tier);
        assert_in_one_place(&[
            ("the getter's hands", &got),
            ("the set the cycle dropped", &aged),
            ("the victim tier", &left),
        ]);
        let mut found = got;
        found.extend(aged);
        found.extend(left);
        finish(&ledger, found);
    });
}

/// A whole cleanup cycle of one cache (flag, heavy, retire, rotate with the depot's shards)
/// against the cache's owner and a getter on another thread that takes from the victim tier:
/// three threads.
#[test]
fn cleanup_cycle_vs_owner_and_victim_getter() {
    run_model("cleanup_cycle_vs_owner_and_victim_getter", || {
        let ledger = Ledger::new(2);
        let depot = no_depot();
        let tier = Arc::new(VictimTier::<Obj>::new());
        let l = cache(1, &depot);
        // The previous cycle left one object in the victim tier; the owner caches one.
        let before = tier.rotate(vec![Obj::magazine(&ledger, 1)], Vec::new());
        assert!(before.into_magazines().is_empty());
        put(&l, Obj::new(&ledger));

        let owner = {
            let l = l.clone();
            thread::spawn(move || get(&l, nobody))
        };
        let getter = {
            let (tier, depot) = (tier.clone(), depot.clone());
            thread::spawn(move || {
                let mine = Local::<Obj>::new(1, depot);
                let mut got: Vec<Obj> = get(&mine, || from_victims(&tier)).into_iter().collect();
                got.extend(drain_local(&mine));
                got
            })
        };
        let cleanup = {
            let (l, tier, depot) = (l.clone(), tier.clone(), depot.clone());
            thread::spawn(move || {
                let retired = cycle(&l);
                flat(tier.rotate(retired, depot_chains(&depot)).into_magazines())
            })
        };
        let mut found: Vec<Obj> = Vec::new();
        found.extend(owner.join().unwrap());
        found.extend(getter.join().unwrap());
        found.extend(cleanup.join().unwrap());
        found.extend(drain_local(&l));
        found.extend(drain_victims(&tier));
        finish(&ledger, found);
    });
}

/// Thread exit vs. steal: the owner of a cache fills it (spilling a magazine to its deque) and
/// exits; a thief steals from the deque meanwhile; a new thread, given the exited thread's index,
/// adopts the cache and uses it (magazine, deque, spare magazines). The index hand-over (a `std`
/// mutex in `thread_id`) is modeled by `join`, which gives the same happens-before edge.
#[test]
fn exited_owner_stolen_then_adopted() {
    run_model("exited_owner_stolen_then_adopted", || {
        let ledger = Ledger::new(MAGAZINE + 1);
        let depot = no_depot();
        let l = cache(2 * MAGAZINE, &depot);
        for o in Obj::many(&ledger, MAGAZINE) {
            put(&l, o);
        }
        let last = Obj::new(&ledger);

        let first_owner = {
            let l = l.clone();
            thread::spawn(move || put(&l, last))
        };
        let thief = {
            let (l, depot) = (l.clone(), depot.clone());
            thread::spawn(move || {
                let mine = Local::<Obj>::new(2 * MAGAZINE, depot);
                let mut got: Vec<Obj> = get(&mine, || steal_from(&l)).into_iter().collect();
                got.extend(drain_local(&mine));
                got
            })
        };
        first_owner.join().unwrap();
        let next_owner = {
            let l = l.clone();
            thread::spawn(move || {
                let x = get(&l, nobody);
                let y = get(&l, nobody);
                if let Some(x) = x {
                    put(&l, x);
                }
                y
            })
        };
        let mut found: Vec<Obj> = Vec::new();
        found.extend(thief.join().unwrap());
        found.extend(next_owner.join().unwrap());
        found.extend(drain_local(&l));
        finish(&ledger, found);
    });
}

/// A cleanup cycle of a whole pool (`Cycle::flag`, `barrier::heavy`, `Cycle::retire`,
/// `Cycle::rotate` and the garbage it returns) against the pool's owner thread in
/// `Tiers::take_into` and `Tiers::put_from`, then a second cycle, then pool drop with nothing
/// else alive: `Tiers::shutdown` must drop everything still cached (magazine, deque, depot,
/// victim tier) exactly once, and the cycles only what aged out.
#[test]
fn tiers_cycle_vs_owner_then_shutdown() {
    run_model("tiers_cycle_vs_owner_then_shutdown", || {
        // The thread index is a `std` thread-local that outlives the execution: take it before
        // any loom operation, so that every execution follows the same path up to the threads.
        crate::thread_id::register().expect("the test thread gets an index");
        // Two magazines of 16 (the private one and room for one in the deque), so that filling
        // every tier stays within loom's bound on the length of an execution; a depot of one
        // shard with room for one magazine.
        let per_thread = MAGAZINE + 1;
        let (batch, _) = shape(per_thread);
        let ledger = Ledger::new(2 * batch + 1);
        let tiers = std::sync::Arc::new(Tiers::<Obj>::with_shards(per_thread, batch, 1));
        // A full magazine in the depot, one in the deque, and one object in the magazine.
        for o in Obj::many(&ledger, 2 * batch + 1) {
            tiers_put(&tiers, o);
        }
        assert_eq!(
            tiers.stats().depot_puts,
            1,
            "one magazine went to the depot"
        );
        let run_cycle = |tiers: &std::sync::Arc<Tiers<Obj>>| {
            if tiers.flag() {
                barrier::heavy();
            }
            tiers.retire();
            // The cycle drops the old victim set after its locks are released.
            let garbage = tiers.clone().rotate().expect("the pool is alive");
            assert!(garbage().is_none());
        };
        let cleanup = {
            let tiers = tiers.clone();
            thread::spawn(move || run_cycle(&tiers))
        };
        // The owner, concurrently (only this loom thread may use `Tiers`' per-thread paths).
        let x = tiers_take(&tiers).map(Obj::handed_out);
        if let Some(x) = x {
            tiers_put(&tiers, x);
        }
        let held = tiers_take(&tiers).map(Obj::handed_out);
        cleanup.join().unwrap();

        // A second cycle: what the first one moved aside and nobody took is dropped now.
        run_cycle(&tiers);

        // Pool drop: nothing else is alive.
        assert!(tiers.shutdown().is_none());
        let in_use = usize::from(held.is_some());
        assert_eq!(
            ledger.dropped() + in_use,
            ledger.created(),
            "shutdown drops everything not in use"
        );
        assert_eq!(
            tiers.stats().drops as usize,
            ledger.dropped(),
            "every drop by the pool is counted in its stats"
        );
        drop(tiers);
        finish(&ledger, held.into_iter().collect());
    });
}

/// A spill to the depot vs. a cleanup cycle: an owner whose cache is full (one magazine of two,
/// no room in the deque) returns an object, which moves the full magazine to the depot outside
/// its window (`push_slow` then `spill`), then takes an object back (`pop_slow` looks in the
/// depot once the magazine is empty); meanwhile a cycle runs `flag`, `barrier::heavy`, `retire`,
/// moves the depot's shards to the victim tier with the retired magazines (`Depot::take_all`,
/// `VictimTier::rotate`) and drops the previous victim set. Every object ends exactly once in
/// the owner's hands or cache, in the depot, or in the victim set; the cycle drops only the
/// previous set.
#[test]
fn spill_to_depot_vs_cycle() {
    let seen = Seen::default();
    let s = seen.clone();
    run_model("spill_to_depot_vs_cycle", move || {
        let ledger = Ledger::new(4);
        let tier = Arc::new(VictimTier::<Obj>::new());
        // The previous cycle's set: object 0.
        let before = tier.rotate(vec![Obj::magazine(&ledger, 1)], Vec::new());
        assert!(before.into_magazines().is_empty());
        // Room for two magazines of two in the depot.
        let depot = depot(2, 2);
        let l = cache(2, &depot);
        // A full magazine: objects 1 and 2.
        for o in Obj::many(&ledger, 2) {
            put(&l, o);
        }
        let last = Obj::new(&ledger);

        let owner = {
            let l = l.clone();
            thread::spawn(move || {
                put(&l, last); // the magazine is full and the deque has no room: to the depot
                get(&l, nobody)
            })
        };
        let cleanup = {
            let (l, tier, depot) = (l.clone(), tier.clone(), depot.clone());
            thread::spawn(move || {
                let retired = cycle(&l);
                let chains = depot_chains(&depot);
                let from_depot = !chains.is_empty();
                let aged = flat(tier.rotate(retired, chains).into_magazines());
                (from_depot, aged)
            })
        };
        let held: Vec<Obj> = owner.join().unwrap().into_iter().collect();
        let (from_depot, aged) = cleanup.join().unwrap();
        assert_eq!(
            ids(&aged),
            [0],
            "the cycle drops the previous set, nothing else"
        );
        let cached = drain_local(&l);
        let in_depot = drain_depot(&depot);
        let victims = drain_victims(&tier);
        assert_in_one_place(&[
            ("the owner's hands", &held),
            ("the owner's cache", &cached),
            ("the depot", &in_depot),
            ("the victim set", &victims),
            ("the set the cycle dropped", &aged),
        ]);
        if from_depot {
            s.note("the cycle took the spilled magazine from the depot");
        }
        let spilled_in = |objs: &[Obj]| objs.iter().any(|o| o.id == 1 || o.id == 2);
        if spilled_in(&victims) && !from_depot {
            s.note("the cycle took the full magazine from the cache before the spill");
        }
        if spilled_in(&in_depot) || spilled_in(&held) || spilled_in(&cached) {
            s.note("the spill came after the cycle");
        }
        let mut found = held;
        found.extend(aged);
        found.extend(cached);
        found.extend(in_depot);
        found.extend(victims);
        finish(&ledger, found);
    });
    seen.assert_all(&[
        "the cycle took the spilled magazine from the depot",
        "the cycle took the full magazine from the cache before the spill",
        "the spill came after the cycle",
    ]);
}

/// A getter taking from the depot vs. the cycle that ages the depot: a getter whose cache is
/// empty runs `pop_slow` (the depot first, then the victim tier; a magazine from the depot is
/// installed in its cache outside any window), while a cycle retires the getter's cache
/// (`flag`, `barrier::heavy`, `retire`), moves the depot's shards to the victim tier
/// (`Depot::take_all`, `VictimTier::rotate`) and drops the previous victim set. Each object of
/// the depot's magazine is either with the getter (handed out, or kept in its cache) or in the
/// new victim set, never both, never lost; the object of the previous set is either with the
/// getter or dropped by the cycle, and the cycle drops nothing else.
#[test]
fn depot_take_vs_rotation() {
    let seen = Seen::default();
    let s = seen.clone();
    run_model("depot_take_vs_rotation", move || {
        let ledger = Ledger::new(3);
        let tier = Arc::new(VictimTier::<Obj>::new());
        // The previous cycle's set: object 0.
        let before = tier.rotate(vec![Obj::magazine(&ledger, 1)], Vec::new());
        assert!(before.into_magazines().is_empty());
        // One magazine of two in the depot: objects 1 and 2.
        let depot = depot(2, 1);
        assert!(depot.push(Obj::magazine(&ledger, 2)).is_ok());
        // The getter's cache, empty: one magazine of two.
        let mine = cache(2, &depot);

        let getter = {
            let (mine, tier) = (mine.clone(), tier.clone());
            thread::spawn(move || get(&mine, || from_victims(&tier)))
        };
        let cycle = {
            let (mine, tier, depot) = (mine.clone(), tier.clone(), depot.clone());
            thread::spawn(move || {
                let retired = cycle(&mine);
                let chains = depot_chains(&depot);
                flat(tier.rotate(retired, chains).into_magazines())
            })
        };
        let held: Vec<Obj> = getter.join().unwrap().into_iter().collect();
        let aged = cycle.join().unwrap();
        assert!(depot.is_empty(), "the cycle emptied the depot");
        let kept = drain_local(&mine);
        let victims = drain_victims(&tier);
        assert_in_one_place(&[
            ("the getter's hands", &held),
            ("the getter's cache", &kept),
            ("the new victim set", &victims),
            ("the set the cycle dropped", &aged),
        ]);
        assert!(
            aged.iter().all(|o| o.id == 0),
            "the cycle drops only the previous set"
        );
        let c = mine.counters();
        let from_depot = c.depot_takes.load(Relaxed) == 1;
        let from_victims = c.victim_hits.load(Relaxed) == 1;
        s.note(match ids(&held).first() {
            Some(1 | 2) if from_depot && kept.is_empty() => {
                "the getter took the depot's magazine; the cycle retired the rest"
            }
            Some(1 | 2) if from_depot => "the getter took the depot's magazine",
            Some(1 | 2) if from_victims => "the getter took one object of the new victim set",
            Some(0) if from_victims => {
                "the getter took the previous set's object before the rotation"
            }
            Some(id) => panic!("object {id} reached the getter by no tier"),
            None => "the getter found nothing",
        });
        let mut found = held;
        found.extend(kept);
        found.extend(aged);
        found.extend(victims);
        finish(&ledger, found);
    });
    seen.assert_all(&[
        "the getter took the depot's magazine",
        "the getter took the depot's magazine; the cycle retired the rest",
        "the getter took one object of the new victim set",
        "the getter took the previous set's object before the rotation",
    ]);
}

/// A thief vs. cleanup retiring the cache it steals from, with the cache's owner spilling a
/// magazine to its deque meanwhile (three threads). Cleanup runs `flag`, `barrier::heavy`,
/// `retire`, then steals from the cache itself and announces (release) that `retire` returned;
/// the thief steals once, after reading (acquire) whether `retire` had returned.
///
/// * A magazine the thief gets was never also moved out by cleanup (which would put it in the
///   victim tier as well).
/// * After `retire` returns, a steal from the same cache (by cleanup, or by a thief that saw it
///   return) finds nothing that was in the cache before the cycle: the deque stays in place and
///   its stealer reaches only what the owner puts there after the cycle, so no thief rescues the
///   retired magazines from ageing.
#[test]
fn thief_vs_retire() {
    let seen = Seen::default();
    let s = seen.clone();
    run_model("thief_vs_retire", move || {
        let ledger = Ledger::new(2 * MAGAZINE + 1);
        // Room for two magazines in the deque; one there, and a full magazine.
        let l = cache(3 * MAGAZINE, &no_depot());
        for o in Obj::many(&ledger, 2 * MAGAZINE) {
            put(&l, o);
        }
        let before_cycle = ledger.created();
        let is_old = move |objs: &[Obj]| objs.iter().any(|o| o.id < before_cycle);
        let last = Obj::new(&ledger);
        let done = Arc::new(LoomBool::new(false));

        let owner = {
            let l = l.clone();
            // The magazine is full: it moves to the deque, unless cleanup emptied the cache.
            thread::spawn(move || put(&l, last))
        };
        let thief = {
            let (l, done) = (l.clone(), done.clone());
            thread::spawn(move || {
                // load-acquire: pairs with cleanup's store-release after `retire`.
                let after = done.load(Ordering::Acquire);
                let stolen = l.steal().unwrap_or_default();
                if after {
                    assert!(
                        !is_old(&stolen),
                        "a steal after `retire` returned found a retired object"
                    );
                }
                (after, stolen)
            })
        };
        let cleanup = {
            let (l, done) = (l.clone(), done.clone());
            thread::spawn(move || {
                let retired = flat(cycle(&l));
                let stolen = l.steal().unwrap_or_default();
                assert!(
                    !is_old(&stolen),
                    "a steal after `retire` returned found a retired object"
                );
                // store-release: pairs with the thief's load-acquire.
                done.store(true, Ordering::Release);
                (retired, stolen)
            })
        };
        owner.join().unwrap();
        let (after, stolen) = thief.join().unwrap();
        let (retired, stolen_by_cleanup) = cleanup.join().unwrap();
        let cached = drain_local(&l);
        assert_in_one_place(&[
            ("the thief's magazine", &stolen),
            ("the magazines retired for the victim tier", &retired),
            (
                "the magazine cleanup stole after retiring",
                &stolen_by_cleanup,
            ),
            ("the cache", &cached),
        ]);
        s.note(match (after, stolen.is_empty()) {
            (false, false) => "the thief stole before retire",
            (false, true) => "the thief found the deque empty",
            (true, false) => "the thief stole after retire",
            (true, true) => "the thief saw retire return and found nothing",
        });
        let mut found = stolen;
        found.extend(retired);
        found.extend(stolen_by_cleanup);
        found.extend(cached);
        finish(&ledger, found);
    });
    seen.assert_all(&[
        "the thief stole before retire",
        "the thief found the deque empty",
        "the thief saw retire return and found nothing",
    ]);
}
