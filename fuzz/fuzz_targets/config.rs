//! Random pool settings against the same object-life model as `ops`.
//!
//! Each input picks a per-thread bound (0 must be refused with a message naming the setting),
//! `keep_if` and `reset` behaviours, panics injected in `create`, `reset` and `keep_if`, and a
//! cleanup interval (zero must be refused; others must read back), then runs a script of
//! operations on two threads. A panic of the pool's callbacks must leave the pool usable and lose
//! or duplicate nothing: every object created is still dropped exactly once, never handed out
//! while held or after its drop, and two cleanup cycles in a row leave nothing cached.
//!
//! ```text
//! cargo +nightly fuzz run config
//! ```

#![no_main]

mod common;

use arbitrary::Arbitrary;
use common::{Held, Obj, Worker, INJECTED};
use libfuzzer_sys::fuzz_target;
use reuse_pool::{cleanup_interval, set_cleanup_interval, Pool, PooledOwned};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;
use std::time::Duration;

#[derive(Arbitrary, Debug)]
struct Config {
    bound: u16,
    keep: u8,
    reset: u8,
    panic_create: u8,
    panic_reset: u8,
    panic_keep: u8,
    interval_us: Option<u16>,
    ops: Vec<(u8, u8)>,
}

/// Panics that the target provokes on purpose; any other panic still aborts (a crash).
const EXPECTED: &[&str] = &[
    INJECTED,
    "per-thread bound must be at least 1",
    "must be non-zero",
];

fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if EXPECTED.iter().any(|e| msg.contains(e)) {
                return;
            }
            fuzzer_hook(info)
        }));
    });
}

/// Runs `f`, which may panic only with an injected panic.
fn guarded(f: impl FnOnce()) -> bool {
    catch_unwind(AssertUnwindSafe(f)).is_ok()
}

fuzz_target!(|c: Config| {
    install_hook();
    set_cleanup_interval(None);
    common::reset_ledger();
    let injected = c.panic_create | c.panic_reset | c.panic_keep != 0;
    {
        let mut b = common::BEHAVIOUR.lock().unwrap();
        b.keep = c.keep % 4;
        b.reset = c.reset % 4;
        // Rare panics: one call in 2..=9, or never.
        let rate = |x: u8| if x % 8 == 0 { 0 } else { 1 + u32::from(x % 8) };
        b.panic_create = if c.panic_create == 0 {
            0
        } else {
            rate(c.panic_create)
        };
        b.panic_reset = if c.panic_reset == 0 {
            0
        } else {
            rate(c.panic_reset)
        };
        b.panic_keep = if c.panic_keep == 0 {
            0
        } else {
            rate(c.panic_keep)
        };
        b.creates = 0;
    }

    // Settings validation.
    if let Some(us) = c.interval_us {
        let d = Duration::from_micros(u64::from(us));
        let ok = catch_unwind(|| set_cleanup_interval(Some(d))).is_ok();
        assert_eq!(
            ok,
            us != 0,
            "a zero interval is refused, any other accepted"
        );
        if ok {
            assert_eq!(cleanup_interval(), Some(d));
        }
        set_cleanup_interval(None);
        assert_eq!(cleanup_interval(), None);
    }
    let bound = usize::from(c.bound % 300);
    let built = catch_unwind(|| Pool::new(common::create).max_per_thread(bound));
    assert_eq!(
        built.is_ok(),
        bound != 0,
        "max_per_thread(0) is refused, others accepted"
    );
    if bound == 0 {
        return;
    }
    let pool = common::pool(bound, common::SHARED[usize::from(c.bound) % common::SHARED.len()]);
    let worker = Worker::spawn();
    let mut held = Held::default();

    for (kind, arg) in c.ops.into_iter().take(512) {
        match kind % 10 {
            0 => {
                guarded(|| {
                    let g = pool.get_owned();
                    g.received();
                    held.guards.push(g);
                });
            }
            1 => {
                if !held.guards.is_empty() {
                    let g = held.guards.swap_remove(arg as usize % held.guards.len());
                    guarded(move || drop(g));
                }
            }
            2 => {
                guarded(|| {
                    let o = pool.take();
                    o.received();
                    held.owned.push(o);
                });
            }
            3 => {
                if !held.owned.is_empty() {
                    let mut o = held.owned.swap_remove(arg as usize % held.owned.len());
                    o.data.extend(std::iter::repeat_n(7, usize::from(arg % 8)));
                    guarded(|| pool.put(o));
                }
            }
            4 => {
                if let Some(o) = pool.try_take() {
                    o.received();
                    held.owned.push(o);
                }
            }
            5 => {
                if !held.guards.is_empty() {
                    let g = held.guards.swap_remove(arg as usize % held.guards.len());
                    PooledOwned::discard(g);
                }
            }
            6 => {
                // Return on the other thread.
                if !held.guards.is_empty() {
                    let g = held.guards.swap_remove(arg as usize % held.guards.len());
                    worker.run(move |_| {
                        guarded(move || drop(g));
                    });
                }
            }
            7 => {
                // Get on the other thread, return here later.
                let p = pool.clone();
                let (tx, rx) = std::sync::mpsc::channel::<PooledOwned<Obj>>();
                worker.run(move |_| {
                    guarded(|| {
                        let g = p.get_owned();
                        g.received();
                        tx.send(g).unwrap();
                    });
                });
                held.guards.extend(rx.try_recv());
            }
            8 => common::cleanup_cycle(),
            _ => {
                common::cleanup_cycle();
                common::cleanup_cycle();
                assert_eq!(common::cached(), 0, "objects survived two cleanup cycles");
            }
        }
    }

    if !injected {
        let stats = pool.stats();
        assert_eq!(
            stats.drops,
            common::dropped_by_pool(),
            "Stats::drops disagrees with the drops the pool made: {stats:?}"
        );
    }
    // Everything back (callbacks may still panic), the worker gone, the pool dropped.
    for g in held.guards.drain(..) {
        guarded(move || drop(g));
    }
    held.owned.clear();
    drop(worker.exit());
    guarded(move || drop(pool));
    common::assert_all_dropped();
});
