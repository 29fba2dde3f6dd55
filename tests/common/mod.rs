//! Helpers shared by the integration tests: a drop-counting object type and the lock that
//! serialises every test that depends on the process-wide cleanup cycles.
//!
//! Each file under `tests/` is its own process, and the tests of one file run in parallel
//! threads of that process. `reuse_pool::cleanup()` visits every pool of the process, so a test
//! that calls it, or that expects cached objects to survive, holds [`cycles_lock`] for its whole
//! body and calls [`manual_cycles`] first (the automatic driver would otherwise run cycles).

// Every test file compiles this module; none of them uses all of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The process-wide lock that serialises the tests touching the global cleanup.
///
/// Poison-tolerant: a failed test does not make every later test of the file fail too.
pub fn cycles_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stops the automatic cleanup driver: from here on only `reuse_pool::cleanup()` runs cycles.
pub fn manual_cycles() {
    reuse_pool::set_cleanup_interval(None);
}

/// What the counters know about one object, shared by the object and by [`Counters`].
///
/// The object points to it through an `Arc`, so even a bitwise copy of an object (the kind of
/// bug that would hand one object to two holders) shares the same flags.
#[derive(Debug, Default)]
struct Slot {
    /// Set while a holder has the object (see [`Tracked::hold`]).
    held: AtomicBool,
    /// How many times the object was dropped; must end at 0 (still cached) or 1.
    drops: AtomicU32,
}

/// Per-test counters of the [`Tracked`] objects it creates.
#[derive(Debug, Default)]
pub struct Counters {
    created: AtomicU64,
    dropped: AtomicU64,
    /// Slot of every object ever created, indexed by id.
    slots: Mutex<Vec<Arc<Slot>>>,
}

impl Counters {
    /// Fresh counters for one test.
    pub fn new() -> Arc<Counters> {
        Arc::new(Counters::default())
    }

    /// Creates an object with the next id (ids are `0..`, in creation order).
    pub fn make(self: &Arc<Self>) -> Tracked {
        let slot = Arc::new(Slot::default());
        let id = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots.push(slot.clone());
            (slots.len() - 1) as u64
        };
        self.created.fetch_add(1, Ordering::SeqCst);
        Tracked {
            id,
            dirty: 0,
            resets: 0,
            panic_on_drop: false,
            slot,
            counters: self.clone(),
        }
    }

    /// Objects created so far.
    pub fn created(&self) -> u64 {
        self.created.load(Ordering::SeqCst)
    }

    /// Objects dropped so far (each drop counted, so a double drop counts twice).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Objects created and not yet dropped.
    pub fn live(&self) -> u64 {
        self.created() - self.dropped()
    }

    /// How many times object `id` was dropped.
    pub fn drops_of(&self, id: u64) -> u32 {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots[id as usize].drops.load(Ordering::SeqCst)
    }

    /// Ids of the objects not dropped yet.
    pub fn live_ids(&self) -> Vec<u64> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        (0..slots.len() as u64)
            .filter(|&id| slots[id as usize].drops.load(Ordering::SeqCst) == 0)
            .collect()
    }

    /// Asserts that no object was dropped more than once.
    pub fn assert_no_double_drop(&self) {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, s) in slots.iter().enumerate() {
            let n = s.drops.load(Ordering::SeqCst);
            assert!(n <= 1, "object {id} dropped {n} times");
        }
    }

    /// Asserts that every object created so far was dropped exactly once.
    pub fn assert_all_dropped_once(&self) {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, s) in slots.iter().enumerate() {
            let n = s.drops.load(Ordering::SeqCst);
            assert_eq!(n, 1, "object {id} dropped {n} times, expected exactly once");
        }
        assert_eq!(self.dropped(), self.created());
    }
}

/// A pooled object that counts its creation and its drop, and knows who holds it.
#[derive(Debug)]
pub struct Tracked {
    /// Unique per [`Counters`], in creation order.
    pub id: u64,
    /// Scratch state a test may dirty; a `reset` function clears it.
    pub dirty: u64,
    /// How many times a `reset` function ran on this object (tests' `reset` functions bump it).
    pub resets: u32,
    /// Panic in `Drop` (after counting the drop).
    pub panic_on_drop: bool,
    slot: Arc<Slot>,
    counters: Arc<Counters>,
}

impl Tracked {
    /// Marks the object as held by the caller; panics if someone else holds it already.
    /// Call it right after `get`, and [`release`](Tracked::release) right before returning it.
    pub fn hold(&self) {
        let was = self.slot.held.swap(true, Ordering::AcqRel);
        assert!(!was, "object {} handed to two holders at once", self.id);
    }

    /// Marks the object as no longer held.
    pub fn release(&self) {
        let was = self.slot.held.swap(false, Ordering::AcqRel);
        assert!(was, "object {} released without being held", self.id);
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.slot.drops.fetch_add(1, Ordering::SeqCst);
        self.counters.dropped.fetch_add(1, Ordering::SeqCst);
        if self.panic_on_drop && !std::thread::panicking() {
            panic!("Tracked {} panics in drop", self.id);
        }
    }
}

/// A `reset` function for pools of [`Tracked`]: clears `dirty` and counts the call.
pub fn reset_tracked(t: &mut Tracked) {
    t.dirty = 0;
    t.resets += 1;
}

/// Extracts the message of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// Go's `TestPoolStress`, made stricter: `threads` threads each run `rounds` rounds of taking 1
/// to 3 objects and returning them, while another thread runs cleanup cycles back to back. No
/// object is ever held by two threads at once, every returned object is reset, the pool's
/// counts match the operations, and every object is dropped exactly once in the end.
///
/// The caller holds [`cycles_lock`] and has called [`manual_cycles`].
pub fn stress_with_cycles(threads: usize, rounds: usize) {
    use reuse_pool::{cleanup, Pool};
    use std::sync::Barrier;

    let counters = Counters::new();
    let p = Pool::from_fn({
        let c = counters.clone();
        move || c.make()
    })
    .reset(reset_tracked);
    let done = AtomicBool::new(false);
    let start = Barrier::new(threads + 2);
    let mut gets = 0;
    std::thread::scope(|s| {
        let cleaner = s.spawn(|| {
            start.wait();
            let mut cycles = 0u64;
            while !done.load(Ordering::Acquire) {
                cleanup();
                cycles += 1;
                std::thread::yield_now();
            }
            cycles
        });
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (p, start) = (&p, &start);
                s.spawn(move || {
                    start.wait();
                    let mut gets = 0usize;
                    let mut held = Vec::with_capacity(3);
                    for j in 0..rounds {
                        // 1 to 3 objects at once, so that the magazine, the deque and the
                        // stealing paths all take turns.
                        for _ in 0..1 + j % 3 {
                            let v = p.get();
                            v.hold();
                            assert_eq!(v.dirty, 0, "object {} was not reset", v.id);
                            held.push(v);
                            gets += 1;
                        }
                        for mut v in held.drain(..) {
                            v.dirty = t as u64 + 1;
                            v.release();
                        }
                    }
                    gets
                })
            })
            .collect();
        // Workers and cleaner start together, so that cycles overlap with the gets and returns.
        start.wait();
        for w in workers {
            gets += w.join().unwrap();
        }
        done.store(true, Ordering::Release);
        let cycles = cleaner.join().unwrap();
        assert!(cycles > 0, "the cleaner ran no cycle");
    });
    let s = p.stats();
    assert_eq!(s.gets() as usize, gets, "{s:?}");
    assert_eq!(
        s.puts as usize, gets,
        "every return is cached or spilled: {s:?}"
    );
    assert_eq!(s.misses, counters.created(), "{s:?}");
    counters.assert_no_double_drop();
    drop(p);
    counters.assert_all_dropped_once();
}
