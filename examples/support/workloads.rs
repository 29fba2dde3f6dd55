//! What the benchmark suite measures, in words: `benches/pool.rs` names its workloads and
//! alternatives after this table (and checks that each one it runs is here) and
//! `examples/bench_report.rs` writes their descriptions from it; both include this file with
//! `#[path]`.

/// A workload: its criterion group, what one "op" is, and what its ratios are measured against.
pub struct Group {
    /// The criterion group id (without a round suffix).
    pub id: &'static str,
    pub title: &'static str,
    pub unit: &'static str,
    /// The row every ratio of the group is taken against, if any.
    pub floor: Option<&'static str>,
}

pub const GROUPS: &[Group] = &[
    Group {
        id: "get_put",
        title: "get_put — Go's BenchmarkPool",
        unit: "per-thread ns per get + write 64 bytes + put (Vec<u8>, capacity 4096)",
        floor: Some("tls-floor"),
    },
    Group {
        id: "overflow",
        title: "overflow — Go's BenchmarkPoolOverflow",
        unit: "per-thread ns per object; a round is 100 gets then 100 puts (Go's ns/op = 100 × this)",
        floor: Some("tls-floor"),
    },
    Group {
        id: "starvation",
        title: "starvation — Go's BenchmarkPoolStarvation",
        unit: "per-thread ns per get; a round is 100 gets, 67 puts, 33 dropped, so at least 0.33 creates/get unless stolen (Go's ns/op = 100 × this)",
        floor: Some("tls-floor"),
    },
    Group {
        id: "expensive_new",
        title: "expensive_new — Go's BenchmarkPoolExpensiveNew",
        unit: "per-thread ns per object; overflow's rounds with a create that spins 1 µs",
        floor: Some("tls-floor"),
    },
    Group {
        id: "pipeline",
        title: "pipeline — get on a producer, bounded crossbeam channel (64), put on a consumer",
        unit: "ns per object through the pipe (1 producer + 1 consumer thread)",
        floor: Some("channel-only"),
    },
    Group {
        id: "churn",
        title: "churn — waves of 2 short-lived threads, 1,000 get/put each",
        unit: "per-thread ns per get/put, thread spawn and exit amortised over the 1,000",
        floor: Some("tls-floor"),
    },
    Group {
        id: "cleanup",
        title: "cleanup — one cleanup cycle with every thread's cache full (Go's BenchmarkPoolSTW)",
        unit: "ns per reuse_pool::cleanup() call that moves all caches to an empty victim tier",
        floor: None,
    },
];

/// Every alternative of the suite by its name in benchmark ids, with what it is.
#[rustfmt::skip]
pub const IMPLS: &[(&str, &str)] = &[
    ("reuse-pool", "this crate, `Pool::take` / `Pool::put`"),
    ("reuse-pool-guard", "this crate, `Pool::get` guard returned on drop"),
    ("tls-floor", "hand-rolled `thread_local!` `RefCell<Vec<Vec<u8>>>` free list: the floor (per-thread only, unbounded, never shrinks)"),
    ("ThreadLocal-list", "`thread_local::ThreadLocal<RefCell<Vec<Vec<u8>>>>` free list, unpadded"),
    ("mutex-vec", "`std::sync::Mutex<Vec<Vec<u8>>>`"),
    ("arrayqueue", "`crossbeam_queue::ArrayQueue<Vec<u8>>` of 4096 slots"),
    ("object-pool", "`object_pool::Pool` 0.6 (`pull` with a fallback)"),
    ("lockfree-linear", "`lockfree_object_pool::LinearObjectPool` 0.1"),
    ("lockfree-spinlock", "`lockfree_object_pool::SpinLockObjectPool` 0.1"),
    ("opool", "`opool::Pool` 0.2 (an `ArrayQueue` of 4096)"),
    ("sharded-slab", "`sharded_slab::Pool<Vec<u8>>` 0.1 (`create` / `clear(key)`)"),
    ("regex-automata (owner thread)", "`regex_automata::util::pool::Pool` 0.4 on its owner thread (the first to get from it), its fast path: each thread gets from a pool of its own, found through one thread-local read; the owner's fast path holds one object, any further ones come from the mutex stacks"),
    ("regex-automata (other threads)", "`regex_automata::util::pool::Pool` 0.4 on threads that do not own it: its mutex stacks (the pool's owner is the thread that built it, which does not run the workload)"),
    ("alloc-system", "no pool: glibc malloc/free through `GlobalAlloc` for `System`"),
    ("alloc-mimalloc", "no pool: `GlobalAlloc` of `mimalloc::MiMalloc` called directly"),
    ("alloc-jemalloc", "no pool: `GlobalAlloc` of `tikv_jemallocator::Jemalloc` called directly"),
];

/// The workload `id`.
pub fn group(id: &str) -> &'static Group {
    GROUPS
        .iter()
        .find(|g| g.id == id)
        .unwrap_or_else(|| panic!("no workload {id:?}"))
}
