//! Byte-driven scripts of pool operations across up to 4 threads, checked against a model.
//!
//! Operations: `get` (a guard held by a thread), `take`, `try_take`, `put`, guard return on the
//! holding thread or after moving the guard to another thread, `discard`, `detach`, a holder
//! dropping an object it took for good, one or two cleanup cycles, thread spawn and thread exit
//! (with or without returning what the thread holds first), and finally pool drop.
//!
//! Checked (see `common`): every object created is dropped exactly once; the pool never hands out
//! an object that is held or was dropped; two cleanup cycles in a row with nothing in between
//! leave nothing cached; the pool's `drops` counter equals the drops the model saw it make.
//!
//! ```text
//! cargo +nightly fuzz run ops
//! ```

#![no_main]

mod common;

use arbitrary::Arbitrary;
use common::{Held, Obj, Worker};
use libfuzzer_sys::fuzz_target;
use reuse_pool::{set_cleanup_interval, PooledOwned};

#[derive(Arbitrary, Debug)]
enum Op {
    Get(u8),
    Take(u8),
    TryTake(u8),
    /// Put back an object the thread owns.
    Put(u8, u8),
    /// Drop a guard on the thread holding it (returns the object).
    Return(u8, u8),
    /// Move a guard to another thread (it returns there later).
    Send(u8, u8, u8),
    Discard(u8, u8),
    Detach(u8, u8),
    /// The holder drops an owned object itself.
    DropOwned(u8, u8),
    Cleanup,
    CleanupTwice,
    Spawn,
    /// The thread returns everything it holds, then exits.
    Exit(u8),
    /// The thread exits holding guards: they return from its thread-exit path.
    ExitHolding(u8),
}

#[derive(Arbitrary, Debug)]
struct Script {
    /// Per-thread bound, 1..=64 (small, so that spills, steals and drops happen).
    bound: u8,
    /// The depot's bound, from `common::SHARED` (small, so that caches overflow it).
    shared: u8,
    ops: Vec<Op>,
}

fn pick<T>(v: &mut Vec<T>, i: u8) -> Option<T> {
    if v.is_empty() {
        None
    } else {
        let n = v.len();
        Some(v.swap_remove(i as usize % n))
    }
}

fuzz_target!(|script: Script| {
    set_cleanup_interval(None);
    common::reset_ledger();
    {
        let mut b = common::BEHAVIOUR.lock().unwrap();
        b.keep = 0;
        b.reset = 0;
        b.panic_create = 0;
        b.panic_reset = 0;
        b.panic_keep = 0;
    }
    let pool = common::pool(
        1 + script.bound as usize % 64,
        common::SHARED[script.shared as usize % common::SHARED.len()],
    );
    let mut workers: Vec<Worker> = vec![Worker::spawn()];
    let mut orphans: Vec<Held> = Vec::new();

    for op in script.ops.into_iter().take(512) {
        let n = workers.len();
        let w = |t: u8| t as usize % n;
        match op {
            Op::Get(t) => {
                let p = pool.clone();
                workers[w(t)].run(move |h| {
                    let g = p.get_owned();
                    g.received();
                    h.guards.push(g);
                });
            }
            Op::Take(t) => {
                let p = pool.clone();
                workers[w(t)].run(move |h| {
                    let o = p.take();
                    o.received();
                    h.owned.push(o);
                });
            }
            Op::TryTake(t) => {
                let p = pool.clone();
                workers[w(t)].run(move |h| {
                    if let Some(o) = p.try_take() {
                        o.received();
                        h.owned.push(o);
                    }
                });
            }
            Op::Put(t, i) => {
                let p = pool.clone();
                workers[w(t)].run(move |h| {
                    if let Some(o) = pick(&mut h.owned, i) {
                        p.put(o);
                    }
                });
            }
            Op::Return(t, i) => workers[w(t)].run(move |h| drop(pick(&mut h.guards, i))),
            Op::Send(from, to, i) => {
                let (tx, rx) = std::sync::mpsc::channel::<PooledOwned<Obj>>();
                workers[w(from)].run(move |h| {
                    if let Some(g) = pick(&mut h.guards, i) {
                        tx.send(g).unwrap();
                    }
                });
                if let Ok(g) = rx.try_recv() {
                    workers[w(to)].run(move |h| h.guards.push(g));
                }
            }
            Op::Discard(t, i) => workers[w(t)].run(move |h| {
                if let Some(g) = pick(&mut h.guards, i) {
                    PooledOwned::discard(g);
                }
            }),
            Op::Detach(t, i) => workers[w(t)].run(move |h| {
                if let Some(g) = pick(&mut h.guards, i) {
                    h.owned.push(PooledOwned::detach(g));
                }
            }),
            Op::DropOwned(t, i) => workers[w(t)].run(move |h| {
                if let Some(o) = pick(&mut h.owned, i) {
                    o.drop_by_holder();
                }
            }),
            Op::Cleanup => common::cleanup_cycle(),
            Op::CleanupTwice => {
                common::cleanup_cycle();
                common::cleanup_cycle();
                // DESIGN.md §2: an object unused for two cycles is dropped.
                assert_eq!(common::cached(), 0, "objects survived two cleanup cycles");
            }
            Op::Spawn => {
                if workers.len() < 4 {
                    workers.push(Worker::spawn());
                }
            }
            Op::Exit(t) => {
                if workers.len() > 1 {
                    let worker = workers.swap_remove(w(t));
                    let p = pool.clone();
                    worker.run(move |h| {
                        h.guards.clear();
                        for o in h.owned.drain(..) {
                            p.put(o);
                        }
                    });
                    drop(worker.exit());
                }
            }
            Op::ExitHolding(t) => {
                if workers.len() > 1 {
                    let worker = workers.swap_remove(w(t));
                    let p = pool.clone();
                    // The guards drop in the thread's own TLS teardown order; owned objects are
                    // handed back to the fuzz thread.
                    worker.run(move |h| {
                        let guards = std::mem::take(&mut h.guards);
                        thread_local! {
                            static KEEP: std::cell::RefCell<Vec<PooledOwned<Obj>>> =
                                const { std::cell::RefCell::new(Vec::new()) };
                        }
                        KEEP.with(|k| k.borrow_mut().extend(guards));
                        drop(p);
                    });
                    orphans.push(worker.exit());
                }
            }
        }
    }

    // The pool's own count of its drops must match what the model saw.
    let stats = pool.stats();
    assert_eq!(
        stats.drops,
        common::dropped_by_pool(),
        "Stats::drops disagrees with the drops the pool made: {stats:?}"
    );

    // Return everything, end every thread, drop the pool: nothing may be left.
    for w in workers {
        w.run(|h| {
            h.guards.clear();
            h.owned.clear();
        });
        drop(w.exit());
    }
    drop(orphans);
    drop(pool);
    common::assert_all_dropped();
});
