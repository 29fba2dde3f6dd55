//! loom models of every lock-free hand-off of the pool.
//!
//! Run with `ci/loom.sh`, or by hand:
//!
//! ```text
//! RUSTFLAGS="--cfg reuse_pool_loom" CARGO_TARGET_DIR=target/loom \
//!     LOOM_MAX_PREEMPTIONS=2 cargo test --lib -- --nocapture --test-threads=1
//! ```
//!
//! Each model drives the crate-internal pieces directly ([`Local`], [`VictimTier`], [`Tiers`]),
//! with 2–3 loom threads, and checks, in every interleaving loom explores:
//!
//! * **nothing lost, nothing duplicated, nothing dropped twice**: every [`Obj`] records its drops
//!   in a [`Ledger`]; at the end of each execution everything still cached is drained, everything
//!   held is dropped, and each object created must have been dropped exactly once;
//! * **never the same object to two holders**: an object handed out is marked held, and handing
//!   out a held object fails the model;
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
//!   [`crate::deque`] replaces them by linearizable, mutex-based models with the same interface
//!   (the crates are checked by their authors, with Miri and sanitizers among others). The deque
//!   model answers `Steal::Retry` to a steal that runs into a concurrent operation, as crossbeam's
//!   does when it loses a race, so the pool's retry loops are explored too.
//! * The process-wide statics: the registry of pools, the cycle lock, the automatic driver and
//!   the thread-index allocator ([`crate::thread_id`]) use `std` types in every configuration.
//!   loom runs all its threads on one OS thread, so `std` thread-locals are shared by every loom
//!   thread: only a model's main thread calls [`Tiers::take_into`] and
//!   [`Tiers::put_from`] (which look up the current thread's index); the other threads use
//!   [`Local`]s directly, as `Tiers` does. The hand-over of an exited thread's index to the next
//!   thread is a `std` mutex in the crate; the models stand in for it with a `join`, which gives
//!   the same happens-before edge.
//!
//! The bookkeeping of the [`Ledger`] uses `std` atomics on purpose: loom runs one thread at a
//! time on one OS thread, so they are exact, and they add no interleavings to explore. Work done
//! while only one loom thread runs (filling caches before the threads start, draining them after
//! the joins) adds no interleavings either, so the models fill whole magazines of
//! [`MAGAZINE`](crate::MAGAZINE) objects there and keep the concurrent parts to a few calls.

use crate::barrier;
use crate::deque::{drain, Stealer, Worker};
use crate::local::{Found, Local};
use crate::registry::Cycle;
use crate::sync::Arc;
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

/// What `Tiers::put_from` does with the current thread's cache.
fn put(local: &Local<Obj>, obj: Obj) {
    let mut slot = std::mem::ManuallyDrop::new(obj.given_back());
    if !local.push_fast_from(&mut slot) {
        // SAFETY: `push_fast_from` returned false, so the object is still in `slot`, which is
        // not used again.
        let obj = unsafe { std::mem::ManuallyDrop::take(&mut slot) };
        // An object beyond the per-thread bound comes back and is dropped.
        drop(local.push_slow(obj));
    }
}

/// What `Tiers::take_into` does with the current thread's cache; `others` stands for the steal
/// from other threads' deques and the victim tier.
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

/// Takes a magazine from the victim tier, as `Tiers::take_slow` does.
fn from_victims(tier: &VictimTier<Obj>) -> Option<Found<Obj>> {
    tier.take(0).map(Found::Victim)
}

/// A deque retired by a cleanup cycle (its worker gone), holding `magazines`.
fn retired_deque(magazines: Vec<Vec<Obj>>) -> Stealer<Vec<Obj>> {
    let w = Worker::new_lifo();
    for m in magazines {
        w.push(m.into_iter().map(Obj::given_back).collect());
    }
    w.stealer()
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

/// One cleanup cycle's steps for one cache: flag, heavy barrier, retire.
fn cycle(local: &Local<Obj>) -> Option<Stealer<Vec<Obj>>> {
    local.flag();
    barrier::heavy();
    local.retire()
}

/// Everything `local` caches (pool drop's `drain_all`).
fn drain_local(local: &Local<Obj>) -> Vec<Obj> {
    let mut out = Vec::new();
    local.drain_all(&mut out);
    out
}

/// Every object of a retired deque.
fn drain_stealer(s: Option<Stealer<Vec<Obj>>>) -> Vec<Obj> {
    let mut out = Vec::new();
    if let Some(s) = s {
        drain(&s, |mut m| out.append(&mut m));
    }
    out
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
/// (`pop_slow` + `steal`), keeps the rest in its own magazine and returns the object on its own
/// thread. A put must happen-before the steal that hands the object out.
#[test]
fn owner_spill_vs_steal() {
    let seen = Seen::default();
    let s = seen.clone();
    run_model("owner_spill_vs_steal", move || {
        let ledger = Ledger::new(MAGAZINE + 2);
        // Room for one magazine in the deque.
        let a = Arc::new(Local::<Obj>::new(2 * MAGAZINE));
        let b = Arc::new(Local::<Obj>::new(2 * MAGAZINE));
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
        // Two magazines in the deque, one object in the magazine.
        let a = Arc::new(Local::<Obj>::new(3 * MAGAZINE));
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
                let a = a.clone();
                thread::spawn(move || {
                    let mine = Local::<Obj>::new(2 * MAGAZINE);
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
/// afterwards, and that every object ends up exactly once with the owner, in the retired deque
/// or still cached.
#[test]
fn owner_fast_path_vs_cleanup() {
    let seen = Seen::default();
    let s = seen.clone();
    run_model("owner_fast_path_vs_cleanup", move || {
        let ledger = Ledger::new(2);
        // A magazine of two and no deque.
        let l = Arc::new(Local::<Obj>::new(2));
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
            thread::spawn(move || drain_stealer(cycle(&l)))
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
/// from it, both inside the owner's lock-free window, while cleanup retires the magazine and
/// swaps the deque for a fresh one.
#[test]
fn owner_spill_and_refill_vs_cleanup() {
    run_model("owner_spill_and_refill_vs_cleanup", || {
        let ledger = Ledger::new(MAGAZINE + 1);
        let l = Arc::new(Local::<Obj>::new(2 * MAGAZINE));
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
            thread::spawn(move || drain_stealer(cycle(&l)))
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
        let l = Arc::new(Local::<Obj>::new(2));
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
                let mut out = drain_stealer(cycle(&l));
                out.extend(drain_stealer(cycle(&l)));
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

/// Cleanup rotation (`VictimTier::rotate`: install the deques just retired, drop every object of
/// the previous set) vs. a getter whose cache is empty taking a magazine from the victim tier.
/// Every object of the old set is taken or dropped, exactly once.
#[test]
fn victim_rotate_vs_take() {
    run_model("victim_rotate_vs_take", || {
        let ledger = Ledger::new(2 * MAGAZINE + 1);
        let tier = Arc::new(VictimTier::<Obj>::new());
        let old = retired_deque(vec![
            Obj::many(&ledger, MAGAZINE),
            Obj::many(&ledger, MAGAZINE),
        ]);
        let n = tier.rotate(vec![old], |_| unreachable!("the tier was empty"));
        assert_eq!(n, 0);
        let fresh = retired_deque(vec![Obj::many(&ledger, 1)]);

        let getter = {
            let tier = tier.clone();
            thread::spawn(move || {
                let mine = Local::<Obj>::new(2 * MAGAZINE);
                let mut got: Vec<Obj> = get(&mine, || from_victims(&tier)).into_iter().collect();
                got.extend(drain_local(&mine));
                got
            })
        };
        let cleanup = {
            let tier = tier.clone();
            thread::spawn(move || {
                let mut aged = Vec::new();
                let n = tier.rotate(vec![fresh], |x| aged.push(x));
                assert_eq!(n, aged.len(), "rotate counts what it hands out");
                aged
            })
        };
        let mut found: Vec<Obj> = Vec::new();
        found.extend(getter.join().unwrap());
        found.extend(cleanup.join().unwrap());
        tier.drain_all(&mut found);
        finish(&ledger, found);
    });
}

/// A whole cleanup cycle of one cache (flag, heavy, retire, rotate) against the cache's owner and
/// a getter on another thread that takes from the victim tier: three threads.
#[test]
fn cleanup_cycle_vs_owner_and_victim_getter() {
    run_model("cleanup_cycle_vs_owner_and_victim_getter", || {
        let ledger = Ledger::new(2);
        let tier = Arc::new(VictimTier::<Obj>::new());
        let l = Arc::new(Local::<Obj>::new(1));
        // The previous cycle left one object in the victim tier; the owner caches one.
        tier.rotate(
            vec![retired_deque(vec![Obj::many(&ledger, 1)])],
            |_| unreachable!(),
        );
        put(&l, Obj::new(&ledger));

        let owner = {
            let l = l.clone();
            thread::spawn(move || get(&l, nobody))
        };
        let getter = {
            let tier = tier.clone();
            thread::spawn(move || {
                let mine = Local::<Obj>::new(1);
                let mut got: Vec<Obj> = get(&mine, || from_victims(&tier)).into_iter().collect();
                got.extend(drain_local(&mine));
                got
            })
        };
        let cleanup = {
            let (l, tier) = (l.clone(), tier.clone());
            thread::spawn(move || {
                let mut aged = Vec::new();
                let retired: Vec<Stealer<Vec<Obj>>> = cycle(&l).into_iter().collect();
                tier.rotate(retired, |x| aged.push(x));
                aged
            })
        };
        let mut found: Vec<Obj> = Vec::new();
        found.extend(owner.join().unwrap());
        found.extend(getter.join().unwrap());
        found.extend(cleanup.join().unwrap());
        found.extend(drain_local(&l));
        tier.drain_all(&mut found);
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
        let l = Arc::new(Local::<Obj>::new(2 * MAGAZINE));
        for o in Obj::many(&ledger, MAGAZINE) {
            put(&l, o);
        }
        let last = Obj::new(&ledger);

        let first_owner = {
            let l = l.clone();
            thread::spawn(move || put(&l, last))
        };
        let thief = {
            let l = l.clone();
            thread::spawn(move || {
                let mine = Local::<Obj>::new(2 * MAGAZINE);
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
/// `Cycle::rotate`) against the pool's owner thread in `Tiers::take_into` and
/// `Tiers::put_from`, then a second cycle, then pool drop with nothing else alive:
/// `Tiers::shutdown` must drop everything still cached (magazine, deque, victim tier) exactly
/// once, and the cycles only what aged out.
#[test]
fn tiers_cycle_vs_owner_then_shutdown() {
    run_model("tiers_cycle_vs_owner_then_shutdown", || {
        // The thread index is a `std` thread-local that outlives the execution: take it before
        // any loom operation, so that every execution follows the same path up to the threads.
        crate::thread_id::register().expect("the test thread gets an index");
        let ledger = Ledger::new(MAGAZINE + 1);
        // One magazine and room for one in the deque.
        let tiers = Arc::new(Tiers::<Obj>::new(2 * MAGAZINE));
        // A full magazine spilled to the deque and one object in the magazine.
        for o in Obj::many(&ledger, MAGAZINE + 1) {
            tiers_put(&tiers, o);
        }
        let run_cycle = |tiers: &Tiers<Obj>| {
            let mut panicked = None;
            if tiers.flag() {
                barrier::heavy();
            }
            tiers.retire();
            tiers.rotate(&mut panicked);
            assert!(panicked.is_none());
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
