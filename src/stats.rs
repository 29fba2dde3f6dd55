//! Counters of a pool's activity.

/// Approximate counters of a pool, summed over all threads (see [`Pool::stats`]).
///
/// Each thread counts its own operations with plain stores (no atomic read-modify-write on the
/// hot path), so a snapshot taken while other threads run may lag by a few operations. Counts of
/// threads that have exited are kept.
///
/// [`Pool::stats`]: crate::Pool::stats
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Stats {
    /// Objects handed out from the current thread's own cache (its magazine or its deque).
    pub hits: u64,
    /// Calls of `create` (every tier was empty).
    pub misses: u64,
    /// Gets that stole from another thread's deque. Each steal moves a whole magazine (up to
    /// [`MAGAZINE`](crate::MAGAZINE) objects) to the stealing thread; the others are counted as
    /// `hits` when they are handed out.
    pub steals: u64,
    /// Objects taken from the victim tier (cached before the last cleanup cycle).
    pub victim_hits: u64,
    /// Gets that took a whole magazine from the pool's per-CPU depot. As with `steals`, the
    /// object handed out is counted here and the rest of the magazine as `hits`.
    pub depot_takes: u64,
    /// Objects returned to a thread's cache (after `reset` and `keep_if`). A return that finds
    /// the cache at its per-thread bound moves a full magazine to the depot (`depot_puts`); only
    /// if the depot is full too is that magazine dropped (and counted in `drops`).
    pub puts: u64,
    /// Full magazines moved from a thread's cache into the pool's depot.
    pub depot_puts: u64,
    /// Objects the pool dropped: rejected by `keep_if`, discarded, over the bounds of the
    /// thread's cache and the depot, aged out by cleanup, or cached when the pool dropped.
    pub drops: u64,
    /// Cleanup cycles run in the process so far (the global epoch).
    pub cycles: u64,
}

/// Adds the counters of another pool (or class). `cycles` counts the process's cycles, the same
/// for every pool, so it takes the larger of the two instead of the sum.
impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.hits += o.hits;
        self.misses += o.misses;
        self.steals += o.steals;
        self.victim_hits += o.victim_hits;
        self.depot_takes += o.depot_takes;
        self.puts += o.puts;
        self.depot_puts += o.depot_puts;
        self.drops += o.drops;
        self.cycles = self.cycles.max(o.cycles);
    }
}

impl std::ops::Add for Stats {
    type Output = Stats;
    fn add(mut self, o: Stats) -> Stats {
        self += o;
        self
    }
}

/// The counters of several pools together, as `+` adds them.
///
/// ```
/// let a = reuse_pool::Pool::new(String::new);
/// let b = reuse_pool::Pool::new(String::new);
/// drop((a.get(), b.get(), b.get()));
/// let both: reuse_pool::Stats = [a.stats(), b.stats()].into_iter().sum();
/// assert_eq!(both.misses, 3); // b made two: both of its objects were out at once
/// assert_eq!(both.puts, 3);
/// ```
impl std::iter::Sum for Stats {
    fn sum<I: Iterator<Item = Stats>>(iter: I) -> Stats {
        iter.fold(Stats::default(), |a, b| a + b)
    }
}

impl Stats {
    /// Objects handed out: `hits + misses + steals + victim_hits + depot_takes`.
    pub fn gets(&self) -> u64 {
        self.hits + self.misses + self.steals + self.victim_hits + self.depot_takes
    }

    /// Fraction of gets served without calling `create`, in `0.0..=1.0` (1.0 with no gets).
    pub fn reuse_ratio(&self) -> f64 {
        let gets = self.gets();
        if gets == 0 {
            1.0
        } else {
            1.0 - self.misses as f64 / gets as f64
        }
    }
}
