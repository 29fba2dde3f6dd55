//! What the benchmark suite measures, in words: `benches/pool.rs` names its workloads and
//! alternatives after this table (and checks that each one it runs is here) and
//! `examples/bench_report.rs` writes their descriptions, the tables of the measurements that are
//! not criterion benchmarks ([`SECTIONS`]) and the verdicts on the goals ([`TARGETS`]) from it;
//! both include this file with `#[path]`.

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

/// A table of the report taken from one of the bench's own result files rather than from
/// criterion: `<id>.tsv` under `target/reuse-pool-bench/`, whose header line names its fields.
pub struct Section {
    /// The measurement, which names its file and its targets.
    pub id: &'static str,
    /// The heading; `{field}` stands for that field of the file's first row.
    pub title: &'static str,
    /// The paragraph under the heading.
    pub about: &'static str,
    /// The table's columns, one row per row of the file.
    pub columns: &'static [(&'static str, Cell)],
}

/// How a [`Section`]'s column is written from a row's fields, named as in the file's header.
pub enum Cell {
    /// The implementation the field names, in bold if it is this crate's.
    Impl(&'static str),
    /// The field as written and then a unit, right-aligned.
    Number(&'static str, &'static str),
    /// The first field less the second, signed, to 0.1 (`—` when the first is not a number),
    /// right-aligned.
    Delta(&'static str, &'static str),
    /// The field as written, left-aligned.
    Text(&'static str),
}

/// The measurements of the suite that are not criterion benchmarks, in the report's order.
#[rustfmt::skip]
pub const SECTIONS: &[Section] = &[
    Section {
        id: "memory",
        title: "memory — RSS with 100 MiB of idle buffers, then after two cleanup cycles",
        about: "16 threads each get 100 buffers of 64 KiB at once (every byte written), return \
                them and stay alive and idle; then `reuse_pool::cleanup()` runs twice. RSS from \
                `/proc/self/statm`, as MiB above the RSS before the pool was created. \
                \"+ malloc_trim\" also asks glibc to give its free memory back; the mimalloc and \
                jemalloc rows keep freed pages for their own decay periods.",
        columns: &[
            ("impl", Cell::Impl("impl")),
            ("start", Cell::Number("start_mib", " MiB")),
            ("idle (filled)", Cell::Delta("filled_mib", "start_mib")),
            ("after cycle 1", Cell::Delta("cycle1_mib", "start_mib")),
            ("after cycle 2", Cell::Delta("cycle2_mib", "start_mib")),
            ("+ malloc_trim", Cell::Delta("cycle2_trimmed_mib", "start_mib")),
            ("notes", Cell::Text("note")),
        ],
    },
    Section {
        id: "live",
        title: "live threads — the single-thread hit on each of {threads} threads",
        about: "That many threads registered with one pool (the floor: as many threads with \
                their own lists); each in turn runs `get_put`'s loop alone while the others \
                wait, unpinned, in one run of the suite (not one per round). A thread's figure \
                is the median of its turns; the spread shows costs that depend on where a \
                thread's state sits in memory, since the code is the same for all.",
        columns: &[
            ("impl", Cell::Impl("impl")),
            ("threads", Cell::Number("threads", "")),
            ("fastest", Cell::Number("fastest_ns", " ns")),
            ("median", Cell::Number("median_ns", " ns")),
            ("slowest", Cell::Number("slowest_ns", " ns")),
            ("slowest / fastest", Cell::Number("slowest_over_fastest", "")),
        ],
    },
];

/// A goal from the issue, judged by `examples/bench_report.rs`: "for each API" goals are judged
/// for `take`/`put` and for the guard separately, and the peer crates are the report's
/// `PEER_CRATES`.
pub enum Goal {
    /// At most this many times the floor's time, for each API.
    Floor(f64),
    /// At least this many times faster than the fastest peer crate, for each API.
    Peer(f64),
    /// Faster than every peer crate, for each API.
    Faster,
    /// `create` calls at most this share of the gets, for `take`/`put`.
    Creates(f64),
    /// The RSS left after two cleanup cycles at most this many MiB above the start (`memory`).
    Memory(f64),
    /// The slowest of the live threads at most this many times the fastest, for each API (`live`).
    Spread(f64),
}

/// A line of the targets (one per thread count): a workload, the thread counts it is judged at,
/// and its goals with their words. With no thread counts, `group` names a [`Section`], judged
/// from its file, and the goal's words open the line.
pub struct Target {
    pub group: &'static str,
    pub threads: &'static [&'static str],
    pub goals: &'static [(Goal, &'static str)],
}

/// The goals of the suite, in the order of the report's targets.
#[rustfmt::skip]
pub const TARGETS: &[Target] = &[
    Target { group: "get_put", threads: &["1", "2"], goals: &[(Goal::Floor(1.3), "≤ 1.3× floor"), (Goal::Peer(1.0), "no slower than any peer crate")] },
    Target { group: "overflow", threads: &["1", "2"], goals: &[(Goal::Floor(2.0), "≤ 2× floor"), (Goal::Peer(2.0), "≥ 2× faster than the fastest peer crate")] },
    Target { group: "pipeline", threads: &["2"], goals: &[(Goal::Faster, "faster than every peer crate"), (Goal::Creates(0.01), "creates ≤ 1% (take/put)")] },
    Target { group: "churn", threads: &["2"], goals: &[(Goal::Faster, "faster than every peer crate")] },
    Target { group: "memory", threads: &[], goals: &[(Goal::Memory(10.0), "memory: within 10 MiB of the start after two cycles")] },
    Target { group: "live", threads: &[], goals: &[(Goal::Spread(1.15), "64 live threads, slowest/fastest ≤ 1.15×")] },
];

/// The workload `id`.
pub fn group(id: &str) -> &'static Group {
    GROUPS
        .iter()
        .find(|g| g.id == id)
        .unwrap_or_else(|| panic!("no workload {id:?}"))
}
