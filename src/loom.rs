//! loom models of every lock-free hand-off of the pool.
//!
//! Run with `ci/loom.sh`, or by hand:
//!
//! ```text
//! RUSTFLAGS="--cfg reuse_pool_loom" CARGO_TARGET_DIR=target/loom \
//!     LOOM_MAX_PREEMPTIONS=3 cargo test --lib -- --nocapture --test-threads=1
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
//! * **the magazine is never touched by two threads at once**: the magazine is a loom
//!   `UnsafeCell`, so loom checks the busy/reclaim protocol of [`Local`] itself (under loom
//!   [`barrier::light`] and [`barrier::heavy`] are both `fence(SeqCst)`);
//! * no deadlock (loom reports one when every thread is blocked).
//!
//! What is *not* modeled:
//!
//! * `crossbeam-deque` and `crossbeam-epoch`: loom cannot see inside them, so under loom
//!   [`crate::deque`] replaces them by linearizable, mutex-based models with the same interface
//!   (the crates are checked by their own authors, including with loom-like tools and Miri).
//!   The models also inject `Steal::Retry` on a contended steal, so that the retry loops run.
//! * The process-wide statics: the registry of pools, the cycle lock, the automatic driver and
//!   the thread-index allocator ([`crate::thread_id`]) use `std` types in every configuration.
//!   loom runs all its threads on one OS thread, so `std` thread-locals are shared by every loom
//!   thread: only the model's main thread may call [`Tiers::put`] / [`Tiers::try_take`] (which
//!   look up the current thread's index); the other threads use [`Local`]s directly. The
//!   hand-over of an exited thread's index to the next thread is a `std` mutex in the crate; the
//!   models stand in for it with a `join` (which gives the same happens-before edge).
//!
//! The bookkeeping of the [`Ledger`] uses `std` atomics on purpose: loom runs one thread at a
//! time on one OS thread, so they are exact, and they add no interleavings to explore.

use crate::barrier;
use crate::deque::{drain, Stealer, Worker};
use crate::local::Local;
use crate::registry::Cycle;
use crate::sync::Arc;
use crate::tiers::Tiers;
use crate::victim::VictimTier;
use loom::thread;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

/// Preemption bound when `LOOM_MAX_PREEMPTIONS` is not set. Most concurrency bugs need at most
/// two or three preemptions (Musuvathi & Qadeer, "Iterative context bounding", PLDI 2007).
const DEFAULT_PREEMPTIONS: usize = 3;

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

/// Largest number of objects one model creates.
const MAX_OBJS: usize = 16;

/// Life records of the objects of one execution.
struct Ledger {
    created: AtomicUsize,
    drops: [AtomicUsize; MAX_OBJS],
    held: [AtomicBool; MAX_OBJS],
}

impl Ledger {
    fn new() -> std::sync::Arc<Ledger> {
        std::sync::Arc::new(Ledger {
            created: AtomicUsize::new(0),
            drops: std::array::from_fn(|_| AtomicUsize::new(0)),
            held: std::array::from_fn(|_| AtomicBool::new(false)),
        })
    }

    /// Asserts that every object created so far has been dropped exactly once.
    fn assert_all_dropped_once(&self) {
        let n = self.created.load(Relaxed);
        for id in 0..n {
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

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ledger")
    }
}

impl Obj {
    /// A fresh object, held by its creator.
    fn new(ledger: &std::sync::Arc<Ledger>) -> Obj {
        let id = ledger.created.fetch_add(1, Relaxed);
        assert!(id < MAX_OBJS, "model creates too many objects");
        ledger.held[id].store(true, Relaxed);
        Obj {
            id,
            payload: loom::cell::UnsafeCell::new(0),
            ledger: ledger.clone(),
        }
    }

    /// Uses the object; loom checks that the previous holder's use happens-before this one.
    fn touch(&self) {
        // SAFETY: `Obj` is owned by value by its holder; the model's claim under test is that no
        // other thread can reach it, which loom checks through this very access.
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
        self.ledger.held[self.id].store(false, Relaxed);
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

/// `Tiers::put` for one `Local`: magazine, else spill to the deque; over the bound is dropped.
fn put(local: &Local<Obj>, obj: Obj, deque_cap: usize) {
    let obj = obj.given_back();
    if let Err(obj) = local.push_fast(obj) {
        drop(local.push_slow(obj, deque_cap));
    }
}

/// `Tiers::try_take` for one `Local`: magazine, own deque, then `others`.
fn get(local: &Local<Obj>, others: impl FnOnce(&Worker<Obj>) -> Option<Obj>) -> Option<Obj> {
    let got = match local.pop_fast() {
        Some(x) => Some(x),
        None => local.pop_slow(others),
    };
    got.map(Obj::handed_out)
}

fn nobody(_: &Worker<Obj>) -> Option<Obj> {
    None
}

/// A deque retired by a cleanup cycle (its worker gone), holding `objs`.
fn retired_deque(objs: impl IntoIterator<Item = Obj>) -> Stealer<Obj> {
    let w = Worker::new_lifo();
    for o in objs {
        w.push(o.given_back());
    }
    w.stealer()
}

/// One cleanup cycle's steps for one `Local`: flag, heavy barrier, retire.
fn cycle(local: &Local<Obj>) -> Option<Stealer<Obj>> {
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

/// Takes ownership of a retired deque's objects.
fn drain_stealer(s: Option<Stealer<Obj>>) -> Vec<Obj> {
    let mut out = Vec::new();
    if let Some(s) = s {
        drain(&s, |x| out.push(x));
    }
    out
}

/// Drops `objs` (found in the pool or held at the end), then checks every object's life.
fn finish(ledger: &Ledger, objs: Vec<Obj>) {
    drop(objs);
    ledger.assert_all_dropped_once();
}

/// Owner put vs. stealer: `Local::push_slow` spills the magazine's older half to the deque while
/// another thread steals a batch from it into its own cache (`pop_slow` + `steal`), then returns
/// the stolen object on its own thread. A put must happen-before the steal that returns it.
#[test]
fn owner_spill_vs_steal() {
    run_model("owner_spill_vs_steal", || {
        let ledger = Ledger::new();
        let a = Arc::new(Local::<Obj>::new(2));
        let b = Arc::new(Local::<Obj>::new(2));
        // A's magazine is full: its next put spills to A's deque.
        put(&a, Obj::new(&ledger), 4);
        put(&a, Obj::new(&ledger), 4);

        let owner = {
            let (a, ledger) = (a.clone(), ledger.clone());
            thread::spawn(move || {
                put(&a, Obj::new(&ledger), 4);
                put(&a, Obj::new(&ledger), 4);
                get(&a, nobody)
            })
        };
        let thief = {
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || {
                let x = get(&b, |w| a.steal(Some(w)));
                if let Some(x) = x {
                    // Return it on the thief's thread: it lands in the thief's cache.
                    put(&b, x, 4);
                }
                get(&b, |w| a.steal(Some(w)))
            })
        };
        let mut all: Vec<Obj> = Vec::new();
        all.extend(owner.join().unwrap());
        all.extend(thief.join().unwrap());
        all.extend(drain_local(&a));
        all.extend(drain_local(&b));
        assert_eq!(all.len(), 4, "every object is held or cached");
        finish(&ledger, all);
    });
}

/// Two owners stealing from each other while both hold their own cache's lock: no deadlock,
/// nothing lost or duplicated.
#[test]
fn mutual_steal() {
    run_model("mutual_steal", || {
        let ledger = Ledger::new();
        let a = Arc::new(Local::<Obj>::new(1));
        let b = Arc::new(Local::<Obj>::new(1));
        // One object in each magazine and one in each deque.
        for l in [&a, &b] {
            put(l, Obj::new(&ledger), 2);
            put(l, Obj::new(&ledger), 2);
        }
        let spawn = |me: Arc<Local<Obj>>, other: Arc<Local<Obj>>| {
            thread::spawn(move || {
                // Empty our own cache first so that the next get must steal.
                let mine: Vec<Obj> = (0..2).filter_map(|_| get(&me, nobody)).collect();
                let stolen = get(&me, |w| other.steal(Some(w)));
                (mine, stolen)
            })
        };
        let t1 = spawn(a.clone(), b.clone());
        let t2 = spawn(b.clone(), a.clone());
        let mut all: Vec<Obj> = Vec::new();
        for t in [t1, t2] {
            let (mine, stolen) = t.join().unwrap();
            all.extend(mine);
            all.extend(stolen);
        }
        all.extend(drain_local(&a));
        all.extend(drain_local(&b));
        assert_eq!(all.len(), 4);
        finish(&ledger, all);
    });
}

/// Owner get/put vs. cleanup reclaiming the private magazine: the busy/reclaim Dekker protocol.
///
/// The owner runs `pop_fast`/`push_fast` (plain accesses to the magazine inside a `busy` window)
/// while cleanup runs `flag`, `barrier::heavy`, `retire`. loom checks that the two never touch the
/// magazine concurrently, that cleanup's changes are visible to the owner afterwards, and that
/// every object ends up exactly once with the owner, in the retired deque or still cached.
#[test]
fn owner_fast_path_vs_cleanup() {
    run_model("owner_fast_path_vs_cleanup", || {
        let ledger = Ledger::new();
        let l = Arc::new(Local::<Obj>::new(2));
        put(&l, Obj::new(&ledger), 0);
        put(&l, Obj::new(&ledger), 0);

        let owner = {
            let l = l.clone();
            thread::spawn(move || {
                let x = get(&l, nobody);
                if let Some(x) = x {
                    put(&l, x, 0);
                }
                get(&l, nobody)
            })
        };
        let cleanup = {
            let l = l.clone();
            thread::spawn(move || drain_stealer(cycle(&l)))
        };
        let mut all: Vec<Obj> = Vec::new();
        all.extend(owner.join().unwrap());
        all.extend(cleanup.join().unwrap());
        all.extend(drain_local(&l));
        assert_eq!(all.len(), 2, "cleanup takes what the owner does not hold");
        finish(&ledger, all);
    });
}

/// As [`owner_fast_path_vs_cleanup`], with two cleanup cycles in a row against an owner that
/// returns an object: the second cycle must see the return (or the owner's slow path must have
/// moved it under the lock), and the owner must see the first cycle's emptied magazine.
#[test]
fn owner_put_vs_two_cycles() {
    run_model("owner_put_vs_two_cycles", || {
        let ledger = Ledger::new();
        let l = Arc::new(Local::<Obj>::new(2));
        let x = Obj::new(&ledger);

        let owner = {
            let l = l.clone();
            thread::spawn(move || {
                put(&l, x, 0);
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
        let mut all: Vec<Obj> = Vec::new();
        all.extend(owner.join().unwrap());
        all.extend(cleanup.join().unwrap());
        all.extend(drain_local(&l));
        assert_eq!(all.len(), 1);
        finish(&ledger, all);
    });
}

/// Cleanup rotation (`VictimTier::rotate`, dropping the previous victim set and installing the
/// deques just retired) vs. a getter taking from the victim tier in its slow path, with a batch
/// moved into its own deque. Every object of the old set is taken or dropped, exactly once.
#[test]
fn victim_rotate_vs_take() {
    run_model("victim_rotate_vs_take", || {
        let ledger = Ledger::new();
        let tier = Arc::new(VictimTier::<Obj>::new());
        let old = retired_deque([Obj::new(&ledger), Obj::new(&ledger), Obj::new(&ledger)]);
        let dropped = tier.rotate(vec![old], |_| unreachable!("the tier was empty"));
        assert_eq!(dropped, 0);
        let fresh = retired_deque([Obj::new(&ledger)]);

        let getter = {
            let tier = tier.clone();
            thread::spawn(move || {
                let b = Local::<Obj>::new(2);
                let mut got: Vec<Obj> = get(&b, |w| tier.take(Some(w), 0)).into_iter().collect();
                got.extend(tier.take(None, 1).map(Obj::handed_out));
                got.extend(drain_local(&b));
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
        let mut all: Vec<Obj> = Vec::new();
        all.extend(getter.join().unwrap());
        all.extend(cleanup.join().unwrap());
        tier.drain_all(&mut all);
        assert_eq!(all.len(), 4);
        finish(&ledger, all);
    });
}

/// A whole cleanup cycle (flag, heavy, retire, rotate) against the owner of the cache it
/// retires and a getter on another thread that takes from the victim tier: three threads.
#[test]
fn cleanup_cycle_vs_owner_and_victim_getter() {
    run_model("cleanup_cycle_vs_owner_and_victim_getter", || {
        let ledger = Ledger::new();
        let tier = Arc::new(VictimTier::<Obj>::new());
        let l = Arc::new(Local::<Obj>::new(1));
        // The previous cycle left one object in the victim tier; the owner caches one.
        tier.rotate(vec![retired_deque([Obj::new(&ledger)])], |_| unreachable!());
        put(&l, Obj::new(&ledger), 0);

        let owner = {
            let l = l.clone();
            thread::spawn(move || get(&l, nobody))
        };
        let getter = {
            let tier = tier.clone();
            thread::spawn(move || tier.take(None, 0).map(Obj::handed_out))
        };
        let cleanup = {
            let (l, tier) = (l.clone(), tier.clone());
            thread::spawn(move || {
                let mut aged = Vec::new();
                let retired: Vec<Stealer<Obj>> = cycle(&l).into_iter().collect();
                tier.rotate(retired, |x| aged.push(x));
                aged
            })
        };
        let mut all: Vec<Obj> = Vec::new();
        all.extend(owner.join().unwrap());
        all.extend(getter.join().unwrap());
        all.extend(cleanup.join().unwrap());
        all.extend(drain_local(&l));
        tier.drain_all(&mut all);
        assert_eq!(all.len(), 2);
        finish(&ledger, all);
    });
}

/// Thread exit vs. steal: the owner of a cache fills it (spilling to its deque) and exits; a
/// thief steals from the deque meanwhile; a new thread, given the exited thread's index, adopts
/// the cache and uses it. The index hand-over (a `std` mutex in `thread_id`) is modeled by
/// `join`, which gives the same happens-before edge.
#[test]
fn exited_owner_stolen_then_adopted() {
    run_model("exited_owner_stolen_then_adopted", || {
        let ledger = Ledger::new();
        let l = Arc::new(Local::<Obj>::new(2));
        let objs: Vec<Obj> = (0..3).map(|_| Obj::new(&ledger)).collect();

        let first_owner = {
            let l = l.clone();
            thread::spawn(move || {
                for o in objs {
                    put(&l, o, 2);
                }
            })
        };
        let thief = {
            let l = l.clone();
            thread::spawn(move || {
                let mine = Local::<Obj>::new(2);
                let mut got: Vec<Obj> = get(&mine, |w| l.steal(Some(w))).into_iter().collect();
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
                    put(&l, x, 2);
                }
                y
            })
        };
        let mut all: Vec<Obj> = Vec::new();
        all.extend(thief.join().unwrap());
        all.extend(next_owner.join().unwrap());
        all.extend(drain_local(&l));
        assert_eq!(all.len(), 3);
        finish(&ledger, all);
    });
}

/// A cleanup cycle of a whole pool (`Cycle::flag`, `barrier::heavy`, `Cycle::rotate`) against
/// the pool's owner thread using `Tiers::try_take`/`Tiers::put`, then a second cycle, then pool
/// drop with nothing else alive: `Tiers::shutdown` must drop everything still cached (magazine,
/// deque, victim tier) exactly once, and the two cycles must have dropped only what aged out.
#[test]
fn tiers_cycle_vs_owner_then_shutdown() {
    run_model("tiers_cycle_vs_owner_then_shutdown", || {
        let ledger = Ledger::new();
        // Magazine of 8 and a deque of 2.
        let tiers = Arc::new(Tiers::<Obj>::new(crate::MAGAZINE + 2));
        // Fill the magazine and spill half of it to the deque.
        for _ in 0..=crate::MAGAZINE {
            tiers.put(Obj::new(&ledger).given_back());
        }
        let cleanup = {
            let tiers = tiers.clone();
            thread::spawn(move || {
                let mut panicked = None;
                if tiers.flag() {
                    barrier::heavy();
                }
                tiers.rotate(&mut panicked);
                assert!(panicked.is_none());
            })
        };
        // The owner, concurrently: a get and a return.
        let x = tiers.try_take().map(Obj::handed_out);
        if let Some(x) = x {
            tiers.put(x.given_back());
        }
        let held = tiers.try_take().map(Obj::handed_out);
        cleanup.join().unwrap();

        // A second cycle: what the first one moved aside and nobody took is dropped now.
        let mut panicked = None;
        if tiers.flag() {
            barrier::heavy();
        }
        tiers.rotate(&mut panicked);
        assert!(panicked.is_none());
        let created = ledger.created.load(Relaxed);

        // Pool drop: nothing else is alive.
        assert!(tiers.shutdown().is_none());
        let in_use = usize::from(held.is_some());
        let dropped: usize = ledger.drops.iter().map(|d| d.load(Relaxed)).sum();
        assert_eq!(dropped + in_use, created, "shutdown drops everything not in use");
        drop(held);
        drop(tiers);
        ledger.assert_all_dropped_once();
    });
}
