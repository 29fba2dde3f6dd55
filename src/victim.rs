//! The victim tier: what the last cleanup cycle moved aside (Go's `victim`/`victimSize`).
//!
//! A cycle installs, in one pointer swap, the deques it retired from every thread's cache, and
//! drops what the previous cycle had installed. Getters take from the victim tier before calling
//! `create`, so an object used within the last cycle is still found; one unused for two cycles is
//! gone. Readers pin the epoch; the swapped-out set is drained and dropped by the cycle at once
//! (so drop counts are exact when `cleanup()` returns) and only its empty shell is freed later.

use crate::deque::{drain, EpochCell, Steal, Stealer};
use crate::sync::{AtomicBool, Ordering};

/// The deques (of magazines) retired by one cycle.
pub(crate) struct Victims<T> {
    stealers: Vec<Stealer<Vec<T>>>,
}

#[derive(Debug)]
pub(crate) struct VictimTier<T> {
    current: EpochCell<Victims<T>>,
    /// Hint: whether the current set had any deque when installed. Lets a miss skip the epoch
    /// pin when the tier is empty; a stale value costs one useless look, never a lost object.
    nonempty: AtomicBool,
}

impl<T: Send + 'static> VictimTier<T> {
    pub(crate) fn new() -> Self {
        VictimTier {
            current: EpochCell::new(Victims {
                stealers: Vec::new(),
            }),
            nonempty: AtomicBool::new(false),
        }
    }

    /// Takes one magazine, starting at deque `start`.
    pub(crate) fn take(&self, start: usize) -> Option<Vec<T>> {
        // Relaxed: a hint only (see the field).
        if !self.nonempty.load(Ordering::Relaxed) {
            return None;
        }
        self.current.with(|v| {
            let n = v.stealers.len();
            for k in 0..n {
                let s = &v.stealers[(start + k) % n];
                loop {
                    match s.steal() {
                        Steal::Success(x) => return Some(x),
                        Steal::Empty => break,
                        Steal::Retry => continue,
                    }
                }
            }
            None
        })
    }

    /// Installs `retired` as the new victim set and hands every object of the old set to
    /// `drop_one`. Returns how many objects the old set still held.
    pub(crate) fn rotate(
        &self,
        retired: Vec<Stealer<Vec<T>>>,
        mut drop_one: impl FnMut(T),
    ) -> usize {
        let nonempty = !retired.is_empty();
        let mut dropped = 0;
        self.current.replace(Victims { stealers: retired }, |old| {
            for s in &old.stealers {
                // The workers of retired deques are gone, so `Empty` is final.
                drain(s, |magazine| {
                    for x in magazine {
                        dropped += 1;
                        drop_one(x);
                    }
                });
            }
        });
        self.nonempty.store(nonempty, Ordering::Relaxed);
        dropped
    }

    /// Pool drop: everything still in the victim tier.
    pub(crate) fn drain_all(&self, out: &mut Vec<T>) {
        self.current.with(|v| {
            for s in &v.stealers {
                drain(s, |mut magazine| out.append(&mut magazine));
            }
        });
    }
}
