//! Dropping what the crate gives up (a cycle's aged-out objects, an object over a bound,
//! refused or discarded) without nesting without bound on the stack when those objects' `Drop`s
//! call back into the crate. The lowest layer: it knows nothing of pools, only of closures that
//! drop objects.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;

/// What a cycle leaves to drop once it has released the cycle lock: every object of a pool's
/// previous victim set. Returns the first panic of an object's `Drop`.
pub(crate) type Garbage = Box<dyn FnOnce() -> Option<Box<dyn Any + Send>> + Send>;

/// Drops `value`; if its `Drop` panics, remembers the first panic and carries on.
pub(crate) fn drop_caught<T>(value: T, panicked: &mut Option<Box<dyn Any + Send>>) {
    if let Err(p) = panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
        panicked.get_or_insert(p);
    }
}

thread_local! {
    /// While this thread drops objects for the crate (in [`drop_loop`]: a cycle's aged-out
    /// objects, or what a get or a return gave up): the queue of what is left to drop, on that
    /// call's stack. Null otherwise.
    ///
    /// Only this thread reads or writes it. A `Cell` of a raw pointer has no destructor, so it
    /// is usable from thread-local destructors too.
    static DROPPING: Cell<*const RefCell<Vec<Garbage>>> = const { Cell::new(ptr::null()) };
}

/// Drops what one cycle aged out (see [`drop_loop`]).
pub(crate) fn drop_garbage(garbage: Vec<Garbage>) {
    drop_loop(|| None, garbage);
}

/// Most drops of [`drop_flat`] nested inside one another on the stack; deeper ones are queued.
const MAX_NESTED_DROPS: usize = 8;

thread_local! {
    /// How many [`drop_flat`] drops run nested inside one another below the outermost
    /// [`drop_loop`] of this thread. No destructor, like `DROPPING`.
    static NESTED: Cell<usize> = const { Cell::new(0) };
}

/// Drops `value`, something a pool gives up on a get or a return (over a bound, refused by
/// `keep_if`, discarded), as [`drop_loop`] does.
///
/// A `Drop` that returns an object to a full pool (which drops another object, whose `Drop`
/// returns one, and so on) nests up to [`MAX_NESTED_DROPS`] drops on the stack, as a plain drop
/// would (a `Drop` that guards itself against re-entry with a flag of its own sees the nested
/// drop inside that guard); a drop deeper than that is queued for the outermost call on the
/// thread, which runs the queue as a loop. So the stack stays a few frames deep however long
/// the chain is. Every object is dropped before the outermost call returns; a panic of a queued
/// object's `Drop` is resumed there once the queue is empty.
pub(crate) fn drop_flat<V: Send + 'static>(value: V) {
    let nested = NESTED.with(Cell::get);
    if !DROPPING.with(Cell::get).is_null() && nested < MAX_NESTED_DROPS {
        /// Restores the depth, also when the drop unwinds.
        struct Back(usize);
        impl Drop for Back {
            fn drop(&mut self) {
                NESTED.with(|n| n.set(self.0));
            }
        }
        NESTED.with(|n| n.set(nested + 1));
        let back = Back(nested);
        drop(value);
        drop(back);
        return;
    }
    drop_loop(
        move || {
            let mut panicked = None;
            drop_caught(value, &mut panicked);
            panicked
        },
        Vec::new(),
    );
}

/// Runs `first`, then drops `garbage`, or, when this thread is already inside `drop_loop` (an
/// object's `Drop` called `cleanup()` or returned an object that the pool gave up), queues both
/// for that outer call: a `Drop` that calls back into the crate would otherwise nest one more
/// drop on the stack per object dropped.
///
/// The outer call runs its own work, then every batch queued meanwhile, in a loop, and
/// resumes the first panic of an object's `Drop` once the queue is empty.
fn drop_loop<F>(first: F, garbage: Vec<Garbage>)
where
    F: FnOnce() -> Option<Box<dyn std::any::Any + Send>> + Send + 'static,
{
    let outer = DROPPING.with(Cell::get);
    if !outer.is_null() {
        // SAFETY: a non-null `DROPPING` points to the `queue` of the `drop_loop` call below
        // on this same thread, which is still running (it is the caller, some frames up): it
        // resets `DROPPING` to null, also when unwinding, before `queue` goes out of scope. It
        // borrows `queue` only for a `pop`, never while a batch runs, so this borrow cannot
        // overlap another.
        let queue = unsafe { &*outer };
        let mut queue = queue.borrow_mut();
        queue.push(Box::new(first));
        queue.extend(garbage);
        return;
    }
    let queue = RefCell::new(garbage);
    /// Resets `DROPPING` when the loop ends, also when it unwinds.
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            DROPPING.with(|d| d.set(ptr::null()));
        }
    }
    DROPPING.with(|d| d.set(&queue));
    let reset = Reset;
    // Catches its own panics (`drop_caught`, or a cycle's batch).
    let mut panicked = first();
    loop {
        // FIFO order is not needed; popping from the end keeps each step O(1).
        let next = queue.borrow_mut().pop();
        let Some(g) = next else { break };
        // Runs the user's `Drop`s; a batch catches their panics itself.
        if let Some(p) = g() {
            panicked.get_or_insert(p);
        }
    }
    drop(reset);
    if let Some(p) = panicked {
        std::panic::resume_unwind(p);
    }
}
