//! The victim tier: what the last cleanup cycle moved aside (Go's `victim`/`victimSize`).
//!
//! A cycle installs what it retired from every thread's cache (their magazines) and from the
//! depot (its shards, whole), and hands back the set the previous cycle had installed, for the
//! cycle to drop once every lock is released. Getters take from the victim tier before calling
//! `create`, so an object used within the last cycle is still found; one unused for two cycles is
//! gone.
//!
//! A get here takes one object, not a magazine: taking a whole magazine would rescue its other
//! objects from ageing (they would count as used). The set sits behind a short spin lock, taken
//! by a get only when the `nonempty` hint says there is something to take, and by the cycle for
//! one swap. No user code runs while it is held: objects leave the set one at a time through
//! [`take`](VictimTier::take), or as a whole set that the caller drops after unlocking.

use crate::epoch;
use crate::stack::Chain;
use crate::sync::{AtomicBool, Ordering, SpinLock};
use std::mem::MaybeUninit;

/// The objects one cycle retired.
#[derive(Debug)]
pub(crate) struct Set<T> {
    /// Magazines from the threads' caches, and those already taken out of `chains`. Never holds
    /// an empty magazine.
    loose: Vec<Vec<T>>,
    /// The depot's shards, taken whole.
    chains: Vec<Chain<T>>,
}

impl<T> Set<T> {
    const fn new() -> Self {
        Set {
            loose: Vec::new(),
            chains: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.loose.is_empty() && self.chains.is_empty()
    }

    /// One object written into `out`, if any; returns whether there was one. Straight from its
    /// magazine into `out`, with no copy of `T` in between (see `Local::pop_slow_into`).
    fn take_one_into(&mut self, out: &mut MaybeUninit<T>) -> bool {
        loop {
            if let Some(m) = self.loose.last_mut() {
                let found = crate::local::pop_into(m, out);
                if m.is_empty() {
                    // Frees an empty buffer only: no object is dropped here.
                    self.loose.pop();
                }
                if found {
                    return true;
                }
                continue;
            }
            let Some(chain) = self.chains.last_mut() else {
                return false;
            };
            // Pins the crate's private collector only (its deferred closures free nodes).
            match chain.pop(&epoch::pin()) {
                Some(m) => {
                    if !m.is_empty() {
                        self.loose.push(m);
                    }
                }
                None => {
                    // An empty chain: dropping it drops nothing.
                    self.chains.pop();
                }
            }
        }
    }

    /// Every magazine of the set, for dropping (the caller holds no lock).
    pub(crate) fn into_magazines(mut self) -> Vec<Vec<T>> {
        let mut out = std::mem::take(&mut self.loose);
        for mut c in std::mem::take(&mut self.chains) {
            c.drain_into(&mut out);
        }
        out
    }
}

#[derive(Debug)]
pub(crate) struct VictimTier<T> {
    set: SpinLock<Set<T>>,
    /// Hint: whether the set held anything at the end of the last access. Written under the
    /// lock; read without it (relaxed) to skip the lock when the tier is empty. A stale `false`
    /// costs a `create` where an object was available, which the semantics allow; never a lost
    /// object.
    nonempty: AtomicBool,
}

impl<T: Send> VictimTier<T> {
    pub(crate) fn new() -> Self {
        VictimTier {
            set: SpinLock::new(Set::new()),
            nonempty: AtomicBool::new(false),
        }
    }

    /// Takes one object (the models).
    #[allow(dead_code)] // the models (`src/loom.rs`)
    pub(crate) fn take(&self) -> Option<T> {
        let mut out = MaybeUninit::uninit();
        // SAFETY: `take_into` returned true, so it wrote `out`.
        self.take_into(&mut out)
            .then(|| unsafe { out.assume_init() })
    }

    /// Takes one object into `out`; returns whether there was one (`out` is untouched
    /// otherwise).
    pub(crate) fn take_into(&self, out: &mut MaybeUninit<T>) -> bool {
        // Relaxed: a hint only (see the field).
        if !self.nonempty.load(Ordering::Relaxed) {
            return false;
        }
        self.set.with(|s| {
            let found = s.take_one_into(out);
            if s.is_empty() {
                // Relaxed: a hint, written under the lock.
                self.nonempty.store(false, Ordering::Relaxed);
            }
            found
        })
    }

    /// Installs what this cycle retired and returns the previous set, which the caller drops
    /// after releasing every lock.
    pub(crate) fn rotate(&self, loose: Vec<Vec<T>>, chains: Vec<Chain<T>>) -> Set<T> {
        let mut fresh = Set { loose, chains };
        fresh.loose.retain(|m| !m.is_empty());
        let nonempty = !fresh.is_empty();
        self.set.with(|s| {
            // Relaxed: a hint, written under the lock.
            self.nonempty.store(nonempty, Ordering::Relaxed);
            std::mem::replace(s, fresh)
        })
    }

    #[cfg_attr(any(miri, reuse_pool_loom, not(unix)), allow(dead_code))]
    /// Pool drop, and the `fork` handlers: the lock itself.
    pub(crate) fn lock(&self) -> &SpinLock<Set<T>> {
        &self.set
    }

    /// Pool drop: everything still in the victim tier (the caller drops it after unlocking).
    pub(crate) fn take_all(&self) -> Set<T> {
        self.rotate(Vec::new(), Vec::new())
    }
}
