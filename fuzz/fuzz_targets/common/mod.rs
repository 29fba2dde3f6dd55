//! The model shared by the `ops` and `config` targets: objects that record their life, and
//! worker threads that run the fuzzer's operations in lockstep.
//!
//! Every object has an id and a state in the [`Ledger`]: held (by exactly one holder), cached
//! (inside the pool), or dropped. The pool may only hand out a cached object, may only drop a held
//! or cached one, and each object is dropped exactly once; any other transition panics, which the
//! fuzzer reports as a crash. Holders are the worker threads' lists of guards and owned objects,
//! so "no object is held twice" and "nothing is reachable after it was dropped" are checked on
//! every hand-out.
//!
//! Operations run on real threads, one at a time (the fuzz thread sends a closure and waits for
//! it), so every input replays deterministically; the automatic cleanup driver is switched off.
#![allow(dead_code)]

use reuse_pool::{Pool, PooledOwned};
use std::cell::Cell;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

pub const NEVER: u8 = 0;
pub const HELD: u8 = 1;
pub const CACHED: u8 = 2;
pub const DROPPED: u8 = 3;

/// Life of every object of the current input.
pub struct Ledger {
    pub states: Vec<u8>,
    /// Objects the pool dropped (rejected, discarded, over the bound, aged out, pool drop), as
    /// opposed to objects their holder dropped after taking them out for good.
    pub dropped_by_pool: u64,
    /// The ids a holder is about to drop itself.
    pub user_drops: Vec<u32>,
    /// Cleanup cycles run so far in this input, and the cycle count at each object's last return.
    pub cycle: u64,
    pub returned_at: Vec<u64>,
}

pub static LEDGER: Mutex<Ledger> = Mutex::new(Ledger {
    states: Vec::new(),
    dropped_by_pool: 0,
    user_drops: Vec::new(),
    cycle: 0,
    returned_at: Vec::new(),
});

thread_local! {
    /// The object `Obj::new` created last on this thread: lets a holder tell fresh from cached.
    static FRESH: Cell<Option<u32>> = const { Cell::new(None) };
}

fn ledger() -> std::sync::MutexGuard<'static, Ledger> {
    LEDGER.lock().unwrap_or_else(|e| e.into_inner())
}

fn name(s: u8) -> &'static str {
    match s {
        NEVER => "never created",
        HELD => "held",
        CACHED => "cached",
        DROPPED => "dropped",
        _ => "?",
    }
}

/// Starts a new input: the previous one must have dropped everything.
pub fn reset_ledger() {
    let mut l = ledger();
    l.states.clear();
    l.dropped_by_pool = 0;
    l.user_drops.clear();
    l.cycle = 0;
    l.returned_at.clear();
}

/// Whether to check ageing after every cycle: on unless `REUSE_POOL_FUZZ_AGING=0`. The seed
/// `fuzz/seeds/ops/victim-batch-rescue` is the 7-operation reproduction of the "victim batch
/// rescue" engine bug this check found (tests/go_pool.rs `pool`).
fn check_ageing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("REUSE_POOL_FUZZ_AGING").is_none_or(|v| v != "0"))
}

/// Runs one cleanup cycle and checks DESIGN.md §2's ageing rule: an object returned before the
/// previous cycle and not handed out since must be gone after this one.
pub fn cleanup_cycle() {
    reuse_pool::cleanup();
    let mut l = ledger();
    l.cycle += 1;
    if !check_ageing() {
        return;
    }
    for (id, &s) in l.states.iter().enumerate() {
        let at = l.returned_at[id];
        assert!(
            !(s == CACHED && at + 2 <= l.cycle),
            "object {id}, returned after cycle {at} and unused since, survived cycle {}",
            l.cycle
        );
    }
}

/// A pooled object.
#[derive(Debug)]
pub struct Obj {
    pub id: u32,
    pub data: Vec<u8>,
}

impl Obj {
    pub fn new() -> Obj {
        let mut l = ledger();
        let id = l.states.len() as u32;
        l.states.push(HELD);
        l.returned_at.push(0);
        drop(l);
        FRESH.with(|f| f.set(Some(id)));
        Obj {
            id,
            data: Vec::new(),
        }
    }

    /// The object just came out of the pool: it must have been cached (or be fresh).
    pub fn received(&self) {
        if FRESH.with(Cell::take) == Some(self.id) {
            return;
        }
        let mut l = ledger();
        let s = l.states[self.id as usize];
        assert_eq!(
            s,
            CACHED,
            "object {} handed out while {} (held twice, or reachable after its drop)",
            self.id,
            name(s)
        );
        l.states[self.id as usize] = HELD;
    }

    /// The holder drops the object itself (it was taken out of the pool for good).
    pub fn drop_by_holder(self) {
        ledger().user_drops.push(self.id);
        drop(self);
    }
}

/// Every pool's `reset` calls this first: the object is being returned.
pub fn returned(o: &Obj) {
    let mut l = ledger();
    let s = l.states[o.id as usize];
    assert_eq!(s, HELD, "object {} returned while {}", o.id, name(s));
    l.states[o.id as usize] = CACHED;
    l.returned_at[o.id as usize] = l.cycle;
}

impl Drop for Obj {
    fn drop(&mut self) {
        let mut l = ledger();
        let s = l.states[self.id as usize];
        assert!(
            s == HELD || s == CACHED,
            "object {} dropped while {}",
            self.id,
            name(s)
        );
        l.states[self.id as usize] = DROPPED;
        if let Some(i) = l.user_drops.iter().position(|&x| x == self.id) {
            l.user_drops.swap_remove(i);
        } else {
            l.dropped_by_pool += 1;
        }
    }
}

/// Asserts the end state: every object dropped exactly once (the `Drop` impl already refuses a
/// second drop).
pub fn assert_all_dropped() {
    let l = ledger();
    for (id, &s) in l.states.iter().enumerate() {
        assert_eq!(s, DROPPED, "object {id} was never dropped (leaked or lost)");
    }
}

/// Number of objects the pool holds according to the model.
pub fn cached() -> usize {
    ledger().states.iter().filter(|&&s| s == CACHED).count()
}

pub fn dropped_by_pool() -> u64 {
    ledger().dropped_by_pool
}

/// What a worker thread holds.
#[derive(Default)]
pub struct Held {
    pub guards: Vec<PooledOwned<Obj>>,
    pub owned: Vec<Obj>,
}

type Job = Box<dyn FnOnce(&mut Held) + Send>;

/// A worker thread that runs jobs one at a time, on request.
pub struct Worker {
    jobs: mpsc::Sender<Job>,
    done: mpsc::Receiver<()>,
    handle: Option<thread::JoinHandle<Held>>,
}

impl Worker {
    pub fn spawn() -> Worker {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (tx, done) = mpsc::channel();
        let handle = thread::spawn(move || {
            let mut held = Held::default();
            for job in rx {
                job(&mut held);
                tx.send(()).unwrap();
            }
            held
        });
        Worker {
            jobs,
            done,
            handle: Some(handle),
        }
    }

    /// Runs `f` on this worker's thread and waits for it.
    pub fn run(&self, f: impl FnOnce(&mut Held) + Send + 'static) {
        self.jobs.send(Box::new(f)).unwrap();
        if self.done.recv().is_err() {
            // The worker panicked: join it to propagate the panic (a model violation).
            panic!("a worker thread panicked");
        }
    }

    /// Ends the thread and returns what it still held.
    pub fn exit(mut self) -> Held {
        let Worker { jobs, handle, .. } = &mut self;
        drop(std::mem::replace(jobs, mpsc::channel().0));
        handle.take().unwrap().join().expect("worker panicked")
    }
}

/// Pool settings chosen by an input; the `fn` pointers read them from here.
pub struct Behaviour {
    /// 0: keep all; 1: keep none; 2: keep even ids; 3: keep if `data.len() < 4`.
    pub keep: u8,
    /// 0: clear; 1: leave as is; 2: push a byte; 3: shrink to fit.
    pub reset: u8,
    /// Panic in `create` on every n-th call (0: never).
    pub panic_create: u32,
    /// Panic in `reset` for ids divisible by n (0: never).
    pub panic_reset: u32,
    /// Panic in `keep_if` for ids divisible by n (0: never).
    pub panic_keep: u32,
    pub creates: u32,
}

pub static BEHAVIOUR: Mutex<Behaviour> = Mutex::new(Behaviour {
    keep: 0,
    reset: 0,
    panic_create: 0,
    panic_reset: 0,
    panic_keep: 0,
    creates: 0,
});

fn behaviour() -> std::sync::MutexGuard<'static, Behaviour> {
    BEHAVIOUR.lock().unwrap_or_else(|e| e.into_inner())
}

/// The panic the `config` target provokes on purpose.
pub const INJECTED: &str = "injected panic";

pub fn create() -> Obj {
    let mut b = behaviour();
    b.creates += 1;
    if b.panic_create != 0 && b.creates.is_multiple_of(b.panic_create) {
        drop(b);
        panic!("{INJECTED}");
    }
    drop(b);
    Obj::new()
}

pub fn reset(o: &mut Obj) {
    returned(o);
    let b = behaviour();
    let (mode, p) = (b.reset, b.panic_reset);
    drop(b);
    if p != 0 && o.id.is_multiple_of(p) {
        panic!("{INJECTED}");
    }
    match mode {
        0 => o.data.clear(),
        1 => {}
        2 => o.data.push(1),
        _ => o.data.shrink_to_fit(),
    }
}

pub fn keep_if(o: &Obj) -> bool {
    let b = behaviour();
    let (mode, p) = (b.keep, b.panic_keep);
    drop(b);
    if p != 0 && o.id.is_multiple_of(p) {
        panic!("{INJECTED}");
    }
    match mode {
        0 => true,
        1 => false,
        2 => o.id.is_multiple_of(2),
        _ => o.data.len() < 4,
    }
}

/// A pool with the model's `reset` (which records returns), the given per-thread bound and the
/// depot's bound (`shared`: 0 turns it off).
pub fn pool(max_per_thread: usize, shared: usize) -> Arc<Pool<Obj>> {
    Arc::new(
        Pool::new(create)
            .reset(reset)
            .keep_if(keep_if)
            .max_per_thread(max_per_thread)
            .max_shared(shared),
    )
}

/// Depot bounds for the scripts to pick from: off, one magazine's worth, a few, the default.
pub const SHARED: [usize; 4] = [0, 4, 64, reuse_pool::DEFAULT_MAX_SHARED];
