//! A lock-free stack of full magazines: one shard of the per-CPU depot.
//!
//! A Treiber stack: `push` and `pop` are one compare-and-swap on `head` each, whatever the size of
//! the magazine, so objects cross between threads at one atomic read-modify-write per batch.
//! [`take_all`](MagStack::take_all) empties the stack in one swap, which is how a cleanup cycle
//! moves a whole shard to the victim tier in O(1).
//!
//! # Memory reclamation
//!
//! A popper reads `(*head).next` before its compare-and-swap, so an unlinked node may still be
//! read by another popper that loaded it earlier. Nodes are therefore freed through the crate's
//! private epoch collector ([`crate::epoch`]), only after every thread that could have loaded
//! them has unpinned. The same makes the compare-and-swap ABA-free: a node is never pushed twice,
//! and it cannot be freed and reallocated while a popper that loaded it is pinned, so `head`
//! equal to the loaded pointer means the node is still linked, with the same successor.
//!
//! The magazine of an unlinked node is moved out by the thread that unlinked it before the node
//! is deferred; a deferred free drops no object of the user's (the field is `ManuallyDrop`).
//!
//! Each node records its depth (the number of nodes from it to the bottom), fixed when it is
//! pushed: the nodes below a node never change while it is linked (only the top is popped), so
//! the head's depth is the stack's length, and `push` can refuse beyond a bound without a
//! counter of its own.
//!
//! Under loom the stack is a linearizable model behind a loom `Mutex` (loom cannot see inside
//! crossbeam-epoch), so the models check the pool's hand-offs around it.

use crate::epoch::Guard;

#[cfg(not(reuse_pool_loom))]
mod imp {
    use super::Guard;
    use crate::sync::{AtomicPtr, Ordering};
    use std::marker::PhantomData;
    use std::mem::ManuallyDrop;
    use std::ptr;

    struct Node<T> {
        /// Moved out exactly once, by the thread that unlinked the node (or owns its chain).
        mag: ManuallyDrop<Vec<T>>,
        /// Immutable once the node is published.
        next: *mut Node<T>,
        /// Nodes from this one to the bottom; immutable once published.
        depth: usize,
    }

    /// A lock-free stack of magazines.
    pub(crate) struct MagStack<T> {
        /// Top node, or null. Nodes reachable from it are owned by the stack.
        head: AtomicPtr<Node<T>>,
        /// Auto traits as for a `Mutex<Vec<Vec<T>>>`: `Send + Sync` exactly when `T: Send`
        /// (objects move between threads, they are never shared).
        _owns: PhantomData<std::sync::Mutex<Vec<Vec<T>>>>,
    }

    impl<T> MagStack<T> {
        pub(crate) fn new() -> Self {
            MagStack {
                head: AtomicPtr::new(ptr::null_mut()),
                _owns: PhantomData,
            }
        }

        /// Whether the stack looked empty (a hint: no pin, no ordering).
        #[inline]
        pub(crate) fn is_empty(&self) -> bool {
            self.head.load(Ordering::Relaxed).is_null()
        }

        /// Pushes `mag` unless the stack already holds `bound` magazines; then hands it back.
        pub(crate) fn push(&self, mag: Vec<T>, bound: usize, _guard: &Guard) -> Result<(), Vec<T>> {
            let node = Box::into_raw(Box::new(Node {
                mag: ManuallyDrop::new(mag),
                next: ptr::null_mut(),
                depth: 0,
            }));
            // load-acquire: pairs with the compare-and-swap that published `head`, so its `depth`
            // is visible.
            let mut head = self.head.load(Ordering::Acquire);
            loop {
                let depth = if head.is_null() {
                    0
                } else {
                    // SAFETY: `head` was loaded while `_guard` pins the collector; a node is freed
                    // only through the collector after it was unlinked, so it is still allocated.
                    unsafe { (*head).depth }
                };
                if depth >= bound {
                    // SAFETY: `node` came from `Box::into_raw` above and was never published.
                    let node = unsafe { Box::from_raw(node) };
                    return Err(ManuallyDrop::into_inner(node.mag));
                }
                // SAFETY: `node` is ours alone until the compare-and-swap below publishes it.
                unsafe {
                    (*node).next = head;
                    (*node).depth = depth + 1;
                }
                // Release: publishes the node's fields (and the magazine's objects) to the
                // acquire loads of poppers. Acquire on failure: as for the first load.
                match self.head.compare_exchange_weak(
                    head,
                    node,
                    Ordering::Release,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return Ok(()),
                    Err(h) => head = h,
                }
            }
        }

        /// Pops the top magazine.
        pub(crate) fn pop(&self, guard: &Guard) -> Option<Vec<T>> {
            // load-acquire: pairs with the compare-and-swap in `push`, so `next` and the
            // magazine are visible.
            let mut head = self.head.load(Ordering::Acquire);
            loop {
                if head.is_null() {
                    return None;
                }
                // SAFETY: loaded while `guard` pins the collector, so still allocated (as in
                // `push`); `next` is immutable once published.
                let next = unsafe { (*head).next };
                // Acquire on success: the magazine's contents, published by the pusher's
                // release, are ours to read. Acquire on failure: as for the first load.
                match self.head.compare_exchange_weak(
                    head,
                    next,
                    Ordering::Acquire,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        // SAFETY: our compare-and-swap unlinked `head`, so no other thread moves
                        // its magazine out; others may still read its `next` only.
                        let mag = unsafe { ptr::read(&(*head).mag) };
                        // SAFETY: the node is unlinked and freed once every thread pinned now has
                        // unpinned; its magazine was moved out above and is `ManuallyDrop`.
                        unsafe { free_later(head, guard) };
                        return Some(ManuallyDrop::into_inner(mag));
                    }
                    Err(h) => head = h,
                }
            }
        }

        /// Empties the stack in one swap.
        pub(crate) fn take_all(&self) -> Chain<T> {
            // Acquire: every node of the chain was published by a release compare-and-swap.
            Chain {
                head: self.head.swap(ptr::null_mut(), Ordering::Acquire),
                _owns: PhantomData,
            }
        }
    }

    impl<T> Drop for MagStack<T> {
        fn drop(&mut self) {
            drop(self.take_all());
        }
    }

    /// Defers freeing `node` to the crate's collector.
    ///
    /// # Safety
    ///
    /// `node` came from `Box::into_raw`, is unlinked from every stack and chain, is freed by no
    /// one else, and its magazine was moved out.
    unsafe fn free_later<T>(node: *mut Node<T>, guard: &Guard) {
        let node = SendPtr(node);
        // SAFETY: forwarded from the caller. The closure only frees the node's memory: the
        // magazine is `ManuallyDrop` and was moved out, so no object of the user's is dropped.
        unsafe {
            guard.defer_unchecked(move || {
                let node = node;
                drop(Box::from_raw(node.0));
            });
        }
    }

    /// A node pointer handed to the collector, which may free it on another thread.
    struct SendPtr<T>(*mut Node<T>);
    // SAFETY: the node is unlinked and its magazine moved out: freeing its memory on another
    // thread touches no object of type `T`.
    unsafe impl<T> Send for SendPtr<T> {}

    /// The magazines of a whole stack, taken by [`MagStack::take_all`]. Owned: no other thread
    /// moves a magazine out of it; stale poppers may still read a node's `next`, so nodes are
    /// freed through the collector.
    pub(crate) struct Chain<T> {
        head: *mut Node<T>,
        _owns: PhantomData<std::sync::Mutex<Vec<Vec<T>>>>,
    }

    // SAFETY: a chain owns its nodes exclusively (no other thread moves their magazines), so it
    // moves between threads like the `Vec<Vec<T>>` it stands for; `T: Send` is required.
    unsafe impl<T: Send> Send for Chain<T> {}
    // SAFETY: `&Chain` allows nothing but `is_empty`, which reads the pointer only.
    unsafe impl<T: Send> Sync for Chain<T> {}

    impl<T> Chain<T> {
        pub(crate) fn is_empty(&self) -> bool {
            self.head.is_null()
        }

        /// Moves the top magazine out.
        pub(crate) fn pop(&mut self, guard: &Guard) -> Option<Vec<T>> {
            let head = self.head;
            if head.is_null() {
                return None;
            }
            // SAFETY: the chain owns `head` (taken by `take_all`, not yet popped), so it is
            // allocated and no one else moves its magazine out.
            let (mag, next) = unsafe { (ptr::read(&(*head).mag), (*head).next) };
            self.head = next;
            // SAFETY: unlinked from the chain just above; magazine moved out.
            unsafe { free_later(head, guard) };
            Some(ManuallyDrop::into_inner(mag))
        }

        /// Moves every magazine out, into `out`.
        pub(crate) fn drain_into(&mut self, out: &mut Vec<Vec<T>>) {
            if self.head.is_null() {
                return;
            }
            let guard = crate::epoch::pin();
            while let Some(m) = self.pop(&guard) {
                out.push(m);
            }
        }
    }

    impl<T> Drop for Chain<T> {
        /// Drops the objects after the pin is released, never inside it.
        fn drop(&mut self) {
            let mut mags = Vec::new();
            self.drain_into(&mut mags);
            drop(mags);
        }
    }

    impl<T> std::fmt::Debug for MagStack<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("MagStack")
                .field("empty", &self.is_empty())
                .finish()
        }
    }

    impl<T> std::fmt::Debug for Chain<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Chain")
                .field("empty", &self.is_empty())
                .finish()
        }
    }
}

#[cfg(reuse_pool_loom)]
mod imp {
    //! A linearizable model of the stack: a `Vec` behind a loom `Mutex`.
    use super::Guard;
    use crate::sync::{lock, Mutex};

    #[derive(Debug)]
    pub(crate) struct MagStack<T> {
        mags: Mutex<Vec<Vec<T>>>,
    }

    impl<T> MagStack<T> {
        pub(crate) fn new() -> Self {
            MagStack {
                mags: Mutex::new(Vec::new()),
            }
        }
        pub(crate) fn is_empty(&self) -> bool {
            lock(&self.mags).is_empty()
        }
        pub(crate) fn push(&self, mag: Vec<T>, bound: usize, _guard: &Guard) -> Result<(), Vec<T>> {
            let mut m = lock(&self.mags);
            if m.len() >= bound {
                return Err(mag);
            }
            m.push(mag);
            Ok(())
        }
        pub(crate) fn pop(&self, _guard: &Guard) -> Option<Vec<T>> {
            lock(&self.mags).pop()
        }
        pub(crate) fn take_all(&self) -> Chain<T> {
            Chain {
                mags: std::mem::take(&mut *lock(&self.mags)),
            }
        }
    }

    #[derive(Debug)]
    pub(crate) struct Chain<T> {
        mags: Vec<Vec<T>>,
    }

    impl<T> Chain<T> {
        pub(crate) fn is_empty(&self) -> bool {
            self.mags.is_empty()
        }
        pub(crate) fn pop(&mut self, _guard: &Guard) -> Option<Vec<T>> {
            self.mags.pop()
        }
        pub(crate) fn drain_into(&mut self, out: &mut Vec<Vec<T>>) {
            out.append(&mut self.mags);
        }
    }
}

pub(crate) use imp::*;

#[cfg(all(test, not(reuse_pool_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    const ROUNDS: usize = if cfg!(miri) { 200 } else { 100_000 };

    #[test]
    fn push_pop_bound_and_take_all() {
        let s = MagStack::new();
        let g = crate::epoch::pin();
        assert!(s.is_empty());
        assert!(s.push(vec![1, 2], 2, &g).is_ok());
        assert!(s.push(vec![3], 2, &g).is_ok());
        assert_eq!(
            s.push(vec![4], 2, &g),
            Err(vec![4]),
            "the bound is 2 magazines"
        );
        assert_eq!(s.pop(&g), Some(vec![3]));
        assert!(s.push(vec![5], 2, &g).is_ok(), "a pop makes room");
        let mut all = s.take_all();
        assert!(s.is_empty());
        let mut out = Vec::new();
        all.drain_into(&mut out);
        assert_eq!(out, vec![vec![5], vec![1, 2]]);
    }

    /// Counts drops, to prove every object dropped exactly once.
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Dropping the stack and a chain drops every object they hold, once.
    #[test]
    fn drops_what_it_holds_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let g = crate::epoch::pin();
        let s = MagStack::new();
        for _ in 0..3 {
            let m = (0..4).map(|_| Counted(drops.clone())).collect();
            assert!(s.push(m, 10, &g).is_ok());
        }
        drop(g);
        let chain = s.take_all();
        let g = crate::epoch::pin();
        assert!(s.push(vec![Counted(drops.clone())], 10, &g).is_ok());
        drop(g);
        drop(chain);
        assert_eq!(drops.load(Ordering::Relaxed), 12);
        drop(s);
        assert_eq!(drops.load(Ordering::Relaxed), 13);
    }

    /// Two pushers, two poppers and a thread taking everything: every magazine leaves the stack
    /// exactly once.
    #[test]
    fn concurrent_push_pop_take_all_exactly_once() {
        let s = Arc::new(MagStack::new());
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        std::thread::scope(|sc| {
            for t in 0..2usize {
                let s = &s;
                sc.spawn(move || {
                    for i in 0..ROUNDS {
                        let g = crate::epoch::pin();
                        let v = t * ROUNDS + i;
                        assert!(s.push(vec![v], usize::MAX, &g).is_ok());
                    }
                });
            }
            for _ in 0..2 {
                let (s, seen) = (&s, &seen);
                sc.spawn(move || {
                    let mut mine = Vec::new();
                    for _ in 0..ROUNDS {
                        let g = crate::epoch::pin();
                        if let Some(m) = s.pop(&g) {
                            mine.extend(m);
                        }
                    }
                    seen.lock().unwrap().extend(mine);
                });
            }
            let (s, seen) = (&s, &seen);
            sc.spawn(move || {
                let mut mine = Vec::new();
                for _ in 0..ROUNDS / 64 {
                    let mut out = Vec::new();
                    s.take_all().drain_into(&mut out);
                    mine.extend(out.into_iter().flatten());
                }
                seen.lock().unwrap().extend(mine);
            });
        });
        let mut rest = Vec::new();
        s.take_all().drain_into(&mut rest);
        let mut all = seen.lock().unwrap().clone();
        all.extend(rest.into_iter().flatten());
        all.sort_unstable();
        assert_eq!(all, (0..2 * ROUNDS).collect::<Vec<_>>());
    }
}
