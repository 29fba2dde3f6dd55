//! The victim tier: what the last cleanup cycle moved aside (Go's `victim`/`victimSize`).
//!
//! A cycle installs, in one pointer swap, the deques it retired from every thread's cache, and
//! drops what the previous cycle had installed. Getters take from the victim tier before calling
//! `create`, so an object used within the last cycle is still found; one unused for two cycles is
//! gone. Readers pin the epoch; the swapped-out set is drained and dropped by the cycle at once
//! (so drop counts are exact when `cleanup()` returns) and only its empty shell is freed later.
//!
//! Unlike the other tiers, a get here takes one object, not a magazine: taking a whole magazine
//! would rescue its other objects from ageing (they would count as used). The rest of a magazine
//! a getter stole goes to `rest`, tagged with the generation of the set it came from; a getter
//! that finds the generation changed (a cycle retired that set meanwhile) drops it, as the cycle
//! would have.

use crate::deque::{drain, steal_one, EpochCell, Stealer};
use crate::sync::{lock, AtomicBool, AtomicU64, Mutex, Ordering};
use std::mem;

/// The deques (of magazines) retired by one cycle.
pub(crate) struct Victims<T> {
    stealers: Vec<Stealer<Vec<T>>>,
    /// Which cycle installed this set.
    generation: u64,
}

/// Partly used magazines of the current victim set.
#[derive(Debug)]
struct Rest<T> {
    /// Generation of the victim set these magazines belong to (the current one).
    generation: u64,
    /// Never holds an empty magazine.
    magazines: Vec<Vec<T>>,
}

#[derive(Debug)]
pub(crate) struct VictimTier<T> {
    current: EpochCell<Victims<T>>,
    rest: Mutex<Rest<T>>,
    /// Hint: whether the current set had any deque when installed. Lets a miss skip the epoch
    /// pin when the tier is empty; a stale value costs one useless look, never a lost object.
    nonempty: AtomicBool,
    /// Objects dropped by getters that found their magazine's set already retired.
    late_drops: AtomicU64,
}

impl<T: Send + 'static> VictimTier<T> {
    pub(crate) fn new() -> Self {
        VictimTier {
            current: EpochCell::new(Victims {
                stealers: Vec::new(),
                generation: 0,
            }),
            rest: Mutex::new(Rest {
                generation: 0,
                magazines: Vec::new(),
            }),
            nonempty: AtomicBool::new(false),
            late_drops: AtomicU64::new(0),
        }
    }

    /// Objects dropped on the get path (see `late_drops`).
    pub(crate) fn late_drops(&self) -> u64 {
        self.late_drops.load(Ordering::Relaxed)
    }

    /// Takes one object, looking at the retired deques from deque `start` on.
    pub(crate) fn take(&self, start: usize) -> Option<T> {
        // Relaxed: a hint only (see the field).
        if !self.nonempty.load(Ordering::Relaxed) {
            return None;
        }
        {
            let mut rest = lock(&self.rest);
            if let Some(m) = rest.magazines.last_mut() {
                let v = m.pop();
                if m.is_empty() {
                    rest.magazines.pop();
                }
                if v.is_some() {
                    return v;
                }
            }
        }
        let (mut magazine, generation) = self.current.with(|v| {
            let n = v.stealers.len();
            (0..n)
                .find_map(|k| steal_one(&v.stealers[(start + k) % n]))
                .map(|m| (m, v.generation))
        })?;
        let value = magazine.pop();
        if !magazine.is_empty() {
            let mut rest = lock(&self.rest);
            if rest.generation == generation {
                rest.magazines.push(magazine);
            } else {
                drop(rest);
                // The set this magazine came from was retired while we held it: its objects
                // have aged out.
                self.late_drops
                    .fetch_add(magazine.len() as u64, Ordering::Relaxed);
                drop(magazine);
            }
        }
        value
    }

    /// Installs `retired` as the new victim set and hands every object of the old set to
    /// `drop_one`. Returns how many objects the old set still held.
    pub(crate) fn rotate(
        &self,
        retired: Vec<Stealer<Vec<T>>>,
        mut drop_one: impl FnMut(T),
    ) -> usize {
        let nonempty = !retired.is_empty();
        // Retire `rest` first: from here on a getter holding a magazine of the old set sees the
        // new generation and drops it instead of keeping it.
        let (generation, old_rest) = {
            let mut rest = lock(&self.rest);
            rest.generation += 1;
            (rest.generation, mem::take(&mut rest.magazines))
        };
        let mut dropped = 0;
        self.current.replace(
            Victims {
                stealers: retired,
                generation,
            },
            |old| {
                for s in &old.stealers {
                    // The workers of retired deques are gone, so `Empty` is final.
                    drain(s, |magazine| {
                        for x in magazine {
                            dropped += 1;
                            drop_one(x);
                        }
                    });
                }
            },
        );
        for magazine in old_rest {
            for x in magazine {
                dropped += 1;
                drop_one(x);
            }
        }
        self.nonempty.store(nonempty, Ordering::Relaxed);
        dropped
    }

    /// Pool drop: everything still in the victim tier.
    pub(crate) fn drain_all(&self, out: &mut Vec<T>) {
        for mut m in mem::take(&mut lock(&self.rest).magazines) {
            out.append(&mut m);
        }
        self.current.with(|v| {
            for s in &v.stealers {
                drain(s, |mut magazine| out.append(&mut magazine));
            }
        });
    }
}
