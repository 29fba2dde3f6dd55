//! Writes `docs/BENCHMARKS.md` and `docs/benchmarks.svg` from the last `cargo bench --bench pool`.
//!
//! ```text
//! cargo bench --bench pool
//! cargo run --release --example bench_report
//! ```
//!
//! Reads criterion's `target/criterion/<group>/<impl>/<threads>/new/{benchmark,estimates}.json`
//! (the median point estimate) and the bench's own `target/reuse-pool-bench/results.tsv`
//! (creates and gets per benchmark, notes), `run.tsv`, and the files of the measurements that are
//! not criterion benchmarks (`memory.tsv`, `live.tsv`). `$CARGO_TARGET_DIR` is honoured.
//!
//! What is written comes from the tables of `support/workloads.rs`, not from code per workload:
//! the workloads (`GROUPS`), the alternatives (`IMPLS`), the sections of the measurements that
//! are not criterion benchmarks (`SECTIONS`) and the goals (`TARGETS`).
//!
//! No dependencies: the few JSON fields needed are picked out by hand, so while the library does
//! not build, `rustc --edition 2021 -O examples/bench_report.rs -o /tmp/bench_report &&
//! /tmp/bench_report` (run from the repository root) does the same.

#[path = "support/results.rs"]
#[allow(dead_code)] // the writing half is the benches'
mod results;
#[path = "support/rounds.rs"]
mod rounds;
#[path = "support/workloads.rs"]
mod workloads;

use results::Tsv;
use rounds::{round_group, split_round};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use workloads::{Cell, Goal, Group, Section, GROUPS, IMPLS, SECTIONS, TARGETS};

const OURS: &str = "reuse-pool";

/// Our guard API, reported beside `take`/`put` in the targets.
const OURS_GUARD: &str = "reuse-pool-guard";

/// `take`/`put` and the guard, the APIs the targets judge, with what the targets call them.
const APIS: [(&str, &str); 2] = [("take/put", OURS), ("guard", OURS_GUARD)];

/// The pool crates a user would pick instead, the "peer crates" of the targets.
const PEER_CRATES: &[&str] = &[
    "object-pool",
    "lockfree-linear",
    "lockfree-spinlock",
    "opool",
    "sharded-slab",
    "regex-automata (owner thread)",
    "regex-automata (other threads)",
];

/// What result files written before regex-automata's owner thread was measured call its
/// other-threads path.
const REGEX_BEFORE_OWNER: &str = "regex-automata";

fn is_peer_crate(name: &str) -> bool {
    PEER_CRATES.contains(&name) || name == REGEX_BEFORE_OWNER
}

/// Every alternative that is not this crate, the floor or the pipeline's channel baseline:
/// the peer crates, plain allocation, `Mutex<Vec>`, `ArrayQueue`, the `ThreadLocal` list.
fn is_alternative(g: &Group, name: &str) -> bool {
    !name.starts_with(OURS) && Some(name) != g.floor && name != "channel-only"
}

/// One benchmark of the suite, its rounds taken together.
struct Row {
    /// The workload (`Group::id`), without a round suffix.
    group: String,
    name: String,
    threads: String,
    /// `create` calls over gets, summed over the rounds.
    creates_per_get: Option<f64>,
    /// The note of the first round.
    note: String,
}

#[derive(Clone, Copy)]
struct Est {
    median: f64,
    lo: f64,
    hi: f64,
}

fn main() {
    let bench_dir = results::out_dir();
    let target = bench_dir.parent().unwrap_or(Path::new("target"));
    let tsv = |name: &str| Tsv::read(&bench_dir.join(format!("{name}.tsv")));
    let run = tsv("run");
    // A run records its rounds; one that does not ran one round of each group.
    let rounds = run
        .get("rounds", "value")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let rows = read_results(&tsv("results"), rounds);
    if rows.is_empty() {
        let path = bench_dir.join("results.tsv");
        eprintln!(
            "no {}: run `cargo bench --bench pool` first",
            path.display()
        );
        std::process::exit(1);
    }
    let r = Report {
        est: read_criterion(&target.join("criterion")),
        rounds,
        rows,
        run,
        files: SECTIONS.iter().map(|s| (s.id, tsv(s.id))).collect(),
    };
    fs::create_dir_all("docs").expect("create docs/");
    fs::write("docs/BENCHMARKS.md", r.markdown()).expect("write docs/BENCHMARKS.md");
    fs::write("docs/benchmarks.svg", r.svg()).expect("write docs/benchmarks.svg");
    eprintln!("wrote docs/BENCHMARKS.md and docs/benchmarks.svg");
}

// ---- input -----------------------------------------------------------------------------------

/// The rows of `results.tsv`, one per benchmark with its rounds `1..=rounds` taken together
/// (rows of later rounds left there by an earlier run with more rounds are skipped), in the order
/// in which round 1 wrote them.
fn read_results(results: &Tsv, rounds: usize) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    // (creates, gets) summed over the rounds, per row; `None` once a round did not count.
    let mut counts: Vec<Option<(u64, u64)>> = Vec::new();
    for f in results.rows.iter().filter(|f| f.len() >= 7) {
        let (id, round) = split_round(&f[0]);
        if round > rounds {
            continue;
        }
        let key = |r: &Row| r.group == id && r.name == f[1] && r.threads == f[2];
        let i = match rows.iter().position(key) {
            Some(i) => i,
            None => {
                rows.push(Row {
                    group: id.to_string(),
                    name: f[1].clone(),
                    threads: f[2].clone(),
                    creates_per_get: None,
                    note: String::new(),
                });
                counts.push(Some((0, 0)));
                rows.len() - 1
            }
        };
        if round == 1 {
            rows[i].note = f[6].clone();
        }
        let counted = f[3].parse::<u64>().ok().zip(f[4].parse::<u64>().ok());
        counts[i] = counts[i].zip(counted).map(|(a, b)| (a.0 + b.0, a.1 + b.1));
    }
    for (r, c) in rows.iter_mut().zip(counts) {
        r.creates_per_get = c.filter(|c| c.1 > 0).map(|c| c.0 as f64 / c.1 as f64);
    }
    rows
}

/// (group, function, value) -> median estimate, from every `new/benchmark.json` below `root`.
fn read_criterion(root: &Path) -> HashMap<(String, String, String), Est> {
    let mut out = HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = fs::read_dir(&dir).into_iter().flatten().flatten();
        for p in entries.map(|e| e.path()) {
            if p.is_dir() {
                stack.push(p);
            } else if p.ends_with("new/benchmark.json") {
                let read = |name| fs::read_to_string(dir.join(name)).unwrap_or_default();
                let (b, e) = (read("benchmark.json"), read("estimates.json"));
                let id = |key| json_str(&b, key);
                if let (Some(g), Some(f), Some(e)) = (id("group_id"), id("function_id"), median(&e))
                {
                    out.insert((g, f, id("value_str").unwrap_or_default()), e);
                }
            }
        }
    }
    out
}

/// The string value of `"key":"..."` in `json` (no nesting needed here).
fn json_str(json: &str, key: &str) -> Option<String> {
    let k = format!("\"{key}\":");
    let rest = json[json.find(&k)? + k.len()..].trim_start();
    let rest = rest.strip_prefix('"')?;
    let mut s = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(s),
            '\\' => match chars.next()? {
                'n' => s.push('\n'),
                't' => s.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    s.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => s.push(other),
            },
            c => s.push(c),
        }
    }
    None
}

fn json_num(json: &str, key: &str) -> Option<f64> {
    let k = format!("\"{key}\":");
    let rest = json[json.find(&k)? + k.len()..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn median(estimates: &str) -> Option<Est> {
    let m = &estimates[estimates.find("\"median\"")?..];
    Some(Est {
        median: json_num(m, "point_estimate")?,
        lo: json_num(m, "lower_bound")?,
        hi: json_num(m, "upper_bound")?,
    })
}

// ---- machine ---------------------------------------------------------------------------------

/// The rows of the "Machine and command" table: this machine, then what `run.tsv` recorded.
fn machine(run: &Tsv) -> Vec<(&'static str, String)> {
    let read = |path: &str| fs::read_to_string(path).unwrap_or_default();
    // The line of a /proc file that starts with `key`.
    let line = |path: &str, key: &str| {
        let text = read(path);
        text.lines().find(|l| l.starts_with(key)).map(String::from)
    };
    let model = line("/proc/cpuinfo", "model name")
        .and_then(|l| Some(l.split(':').nth(1)?.trim().to_string()));
    let mem = line("/proc/meminfo", "MemTotal")
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|kib| format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)));
    let nproc = std::thread::available_parallelism().map_or("?".into(), |n| n.to_string());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease");
    let kernel = kernel.map_or(std::env::consts::OS.into(), |k| k.trim().to_string());
    let rustc = Command::new("rustc").arg("-V").output().ok();
    let rustc = rustc.filter(|o| o.status.success()).map(|o| o.stdout);
    let rustc = rustc.map_or("?".into(), |o| {
        String::from_utf8_lossy(&o).trim().to_string()
    });
    let (model, mem) = (model.unwrap_or("unknown".into()), mem.unwrap_or("?".into()));
    let mut rows = vec![("CPU", model), ("nproc", nproc), ("memory", mem)];
    rows.extend([("kernel", kernel), ("rustc", rustc)]);
    let kv = |key: &str| run.get(key, "value");
    let commit = kv("commit").unwrap_or("not recorded by this run");
    rows.push(("commit benchmarked", commit.into()));
    if let Some(s) = kv("started").and_then(|s| s.parse().ok()) {
        rows.push(("last bench run", utc(s)));
    }
    if let Some(a) = kv("args") {
        rows.push(("its arguments", format!("`{a}`")));
    }
    if let Some(c) = kv("clock") {
        rows.push(("clock", if c == "cpu" { CPU_CLOCK } else { "wall" }.into()));
    }
    let loads = [
        ("loadavg_start", "loadavg at start"),
        ("loadavg_end", "loadavg at end"),
    ];
    for (k, words) in loads {
        if let Some(l) = kv(k) {
            rows.push((words, l.into()));
        }
    }
    rows
}

/// The clock row of a run with `REUSE_POOL_BENCH_CLOCK=cpu`.
const CPU_CLOCK: &str =
    "`REUSE_POOL_BENCH_CLOCK=cpu`: per-thread CPU time (pipeline and churn: wall)";

/// `YYYY-MM-DD HH:MM UTC` for Unix seconds (Howard Hinnant's civil-from-days).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

// ---- the run, read through its rounds --------------------------------------------------------

/// The run's results: criterion's estimates read through the rounds, and the bench's own files.
///
/// A benchmark's figure is the median over the rounds of criterion's median in each round; a
/// ratio between two benchmarks is the median over the rounds of their ratio within the round,
/// so that a slow spell of the machine, which lands in one round, moves both sides of that
/// round's ratio and not the result.
struct Report {
    est: HashMap<(String, String, String), Est>,
    rounds: usize,
    rows: Vec<Row>,
    run: Tsv,
    /// The file of each [`Section`], by its id.
    files: HashMap<&'static str, Tsv>,
}

/// The median of `v` (the mean of the middle two for an even count); `None` when empty.
fn median_of(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

impl Report {
    /// Criterion's estimate for round `round` (from 1) of a benchmark.
    fn round(&self, group: &str, name: &str, threads: &str, round: usize) -> Option<Est> {
        let key = (round_group(group, round), name.into(), threads.into());
        self.est.get(&key).copied()
    }
    /// `f` of every round, for the rounds where it has a value.
    fn per_round(&self, f: impl Fn(usize) -> Option<f64>) -> Vec<f64> {
        (1..=self.rounds).filter_map(f).collect()
    }
    /// The median over the rounds, with the lowest and highest round (criterion's 95% interval
    /// when the run had one round).
    fn get(&self, group: &str, name: &str, threads: &str) -> Option<Est> {
        if self.rounds == 1 {
            return self.round(group, name, threads, 1);
        }
        let v = self.per_round(|r| Some(self.round(group, name, threads, r)?.median));
        Some(Est {
            median: median_of(v.clone())?,
            lo: v.iter().copied().fold(f64::INFINITY, f64::min),
            hi: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
    /// `name`'s time divided by `to`'s within each round, for the rounds that have both.
    fn ratios(&self, group: &str, name: &str, threads: &str, to: &str) -> Vec<f64> {
        self.per_round(|r| {
            let to = self.round(group, to, threads, r)?.median;
            Some(self.round(group, name, threads, r)?.median / to)
        })
    }
    /// The median over the rounds of `name`'s time divided by `to`'s in the same round.
    fn ratio(&self, g: &Group, r: &Row, to: Option<&str>) -> Option<f64> {
        median_of(self.ratios(g.id, &r.name, &r.threads, to?))
    }
    /// The fastest benchmark at `th` threads in `g` among the names `keep` accepts, (name, ns):
    /// over the rounds' medians (`round == None`) or in one round.
    fn fastest(
        &self,
        g: &Group,
        th: &str,
        round: Option<usize>,
        keep: &dyn Fn(&str) -> bool,
    ) -> Option<(String, f64)> {
        let rows = self.rows.iter();
        rows.filter(|r| r.group == g.id && r.threads == th && keep(&r.name))
            .filter_map(|r| {
                let e = match round {
                    None => self.get(g.id, &r.name, th),
                    Some(k) => self.round(g.id, &r.name, th, k),
                };
                Some((r.name.clone(), e?.median))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }
}

// ---- markdown --------------------------------------------------------------------------------

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns >= 100.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{ns:.1} ns")
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 100.0 => format!("{r:.0}×"),
        Some(r) if r >= 10.0 => format!("{r:.1}×"),
        Some(r) => format!("{r:.2}×"),
        None => "—".into(),
    }
}

fn fmt_cpg(c: Option<f64>) -> String {
    match c {
        None => "—".into(),
        Some(0.0) => "0".into(),
        Some(c) if c >= 0.1 => format!("{c:.2}"),
        Some(c) if c >= 0.001 => format!("{c:.4}"),
        Some(c) => format!("{c:.1e}"),
    }
}

/// An implementation's name, in bold if it is this crate's.
fn bold_ours(name: &str) -> String {
    if name.starts_with(OURS) {
        format!("**{name}**")
    } else {
        name.to_string()
    }
}

/// A markdown table: the columns' heads, each right-aligned (`true`) or not, then the rows'
/// cells, then a blank line.
fn table(md: &mut String, heads: &[(&str, bool)], rows: impl Iterator<Item = Vec<String>>) {
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    md.push_str(&line(heads.iter().map(|h| h.0.to_string()).collect()));
    let align: Vec<&str> = heads
        .iter()
        .map(|h| if h.1 { "---:" } else { "---" })
        .collect();
    let _ = writeln!(md, "|{}|", align.join("|"));
    rows.for_each(|r| md.push_str(&line(r)));
    md.push('\n');
}

/// The columns of a workload's table.
#[rustfmt::skip]
const GROUP_COLUMNS: &[(&str, bool)] = &[
    ("impl", false), ("threads", true), ("median", true), ("range", true), ("× floor", true),
    ("× reuse-pool", true), ("creates/get", true), ("notes", false),
];

impl Report {
    fn markdown(&self) -> String {
        let (rounds, several) = (self.rounds, self.rounds > 1);
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Benchmarks\n\n\
             Generated by `examples/bench_report.rs` from the criterion output of \
             `benches/pool.rs`. {} On a shared or small machine timings are noisy, so read the \
             ratios as rough factors, not as precise figures.\n",
            if several {
                format!(
                    "The suite ran every timed group {rounds} times in a row \
                     (`REUSE_POOL_BENCH_ROUNDS`), each round with the alternatives in another \
                     order; a figure is the median over the rounds of criterion's median in each \
                     round, and a ratio is the median of the ratios taken within each round, so a \
                     slow spell of the machine, which lands in one round, moves both sides of a \
                     ratio together."
                )
            } else {
                "Ratios come from one round of the suite on one machine.".to_string()
            }
        );
        md.push_str("## Machine and command\n\n| | |\n|---|---|\n");
        for (k, v) in machine(&self.run) {
            let _ = writeln!(md, "| {k} | {v} |");
        }
        let cpu_clock = self.run.get("clock", "value") == Some("cpu");
        let _ = writeln!(
            md,
            "\nReproduce (all groups, {rounds} rounds, take about {} minutes; a group name as \
             filter runs one, and `REUSE_POOL_BENCH_ROUNDS=N` sets the rounds):\n\n\
             ```sh\n{}cargo bench --bench pool\ncargo run --release --example bench_report\n```\n",
            3 + 5 * rounds,
            if cpu_clock {
                "REUSE_POOL_BENCH_CLOCK=cpu "
            } else {
                ""
            }
        );
        if cpu_clock {
            let _ = writeln!(
                md,
                "This run used `REUSE_POOL_BENCH_CLOCK=cpu`: the workloads that never block \
                 report the mean of the threads' own CPU time (`CLOCK_THREAD_CPUTIME_ID`) instead \
                 of wall time, which keeps time spent descheduled on a busy machine out of the \
                 figures (and also time spent asleep on a contended lock: it flatters `mutex-vec` \
                 and `object-pool` at 2 threads). The pipeline and churn always use wall time.\n"
            );
        }
        let _ = writeln!(
            md,
            "Threads start together on a `Barrier`; each benchmark returns the wall time from \
             the first thread's start to the last one's end divided by the objects one thread \
             handled, i.e. **per-thread ns per object** (lower is better). `× floor` divides by \
             the hand-rolled `thread_local!` `RefCell<Vec<Vec<u8>>>` free list at the same thread \
             count (in the pipeline: by the channel alone); `× reuse-pool` divides by reuse-pool. \
             `creates/get` counts `create` calls over the whole benchmark, warm-up included, \
             summed over the rounds. {} Thread `t` of a benchmark is pinned to CPU `t` when there \
             are enough CPUs (`REUSE_POOL_BENCH_PIN=0` turns it off); every alternative's get and \
             put are inlined into the loop; each group first runs its workload untimed for 0.5 \
             s.\n",
            if several {
                "`median` is the median over the rounds of criterion's median in each round, and \
                 `range` the lowest and highest of those round medians."
            } else {
                "`median` is the median of criterion's samples, and `range` its 95% confidence \
                 interval."
            }
        );
        md.push_str("Implementations:\n\n");
        for (n, d) in IMPLS {
            let _ = writeln!(md, "- `{n}`: {d}");
        }
        if self.rows.iter().any(|r| r.name == REGEX_BEFORE_OWNER) {
            let _ = writeln!(
                md,
                "- `{REGEX_BEFORE_OWNER}`: this run's name for `regex-automata (other threads)` \
                 (it predates the owner-thread measurement)"
            );
        }
        let peers: Vec<String> = PEER_CRATES.iter().map(|p| format!("`{p}`")).collect();
        let _ = writeln!(
            md,
            "\n## Targets\n\n\
             Verdicts for `take`/`put` and for the guard, against the peer crates ({}); the \
             fastest of the other alternatives (plain allocation, `Mutex<Vec>`, `ArrayQueue`, the \
             `ThreadLocal` list) is given beside them.\n",
            peers.join(", ")
        );
        for line in self.targets() {
            let _ = writeln!(md, "- {line}");
        }
        md.push_str("\n![ratios](benchmarks.svg)\n\n");

        for g in GROUPS {
            let rows: Vec<&Row> = self.rows.iter().filter(|r| r.group == g.id).collect();
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(md, "## {}\n\n{}.\n", g.title, g.unit);
            let cells = rows.into_iter().map(|r| {
                let (med, range) = match self.get(g.id, &r.name, &r.threads) {
                    Some(e) => (
                        fmt_ns(e.median),
                        format!("{}–{}", fmt_ns(e.lo), fmt_ns(e.hi)),
                    ),
                    None if r.note.starts_with("n/a") => ("n/a".into(), String::new()),
                    None => ("not run".into(), String::new()),
                };
                let to_ours = self.ratio(g, r, Some(OURS)).filter(|_| g.floor.is_some());
                vec![
                    bold_ours(&r.name),
                    r.threads.clone(),
                    med,
                    range,
                    fmt_ratio(self.ratio(g, r, g.floor)),
                    fmt_ratio(to_ours),
                    fmt_cpg(r.creates_per_get),
                    r.note.replace('|', "\\|"),
                ]
            });
            table(&mut md, GROUP_COLUMNS, cells);
        }
        for sec in SECTIONS {
            section(&mut md, sec, &self.files[sec.id]);
        }
        md
    }
}

/// A [`Section`] of the report, if the run wrote its file.
fn section(md: &mut String, sec: &Section, f: &Tsv) {
    let Some(first) = f.rows.first() else {
        return;
    };
    let mut title = sec.title.to_string();
    for (name, v) in f.head.iter().zip(first) {
        title = title.replace(&format!("{{{name}}}"), v);
    }
    let _ = writeln!(md, "## {title}\n\n{}\n", sec.about);
    let right = |c: &Cell| matches!(c, Cell::Number(..) | Cell::Delta(..));
    let heads: Vec<(&str, bool)> = sec.columns.iter().map(|c| (c.0, right(&c.1))).collect();
    let cells = f.full().map(|row| {
        let field = |name| f.field(row, name).unwrap_or_default();
        let cell = |c: &Cell| match *c {
            Cell::Impl(name) => bold_ours(field(name)),
            Cell::Number(name, unit) => format!("{}{unit}", field(name)),
            Cell::Delta(name, from) => field(name).parse::<f64>().map_or("—".into(), |v| {
                format!("{:+.1}", v - field(from).parse().unwrap_or(0.0))
            }),
            Cell::Text(name) => field(name).to_string(),
        };
        sec.columns.iter().map(|c| cell(&c.1)).collect()
    });
    table(md, &heads, cells);
}

// ---- targets ---------------------------------------------------------------------------------

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "**met**",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

impl Report {
    /// The goals from the issue (`workloads::TARGETS`), each as met / missed with the numbers behind it.
    /// The verdicts judge `take`/`put` and the guard separately, against the peer crates
    /// (`PEER_CRATES`); the fastest of all the other alternatives is given beside them.
    fn targets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for tg in TARGETS {
            let id = tg.group;
            if tg.threads.is_empty() {
                for (goal, words) in tg.goals {
                    out.push(format!(
                        "{words}: {}",
                        section_target(goal, &self.files[id])
                    ));
                }
            }
            for &th in tg.threads {
                let line = self.workload_target(workloads::group(id), th, tg.goals);
                match tg.threads.len() {
                    1 => out.push(format!("{id}: {line}")),
                    _ => out.push(format!("{id}, {th} thread(s): {line}")),
                }
            }
        }
        out
    }

    /// Per round: how many times faster `name` is than that round's fastest peer crate.
    fn vs_peer(&self, g: &Group, name: &str, th: &str) -> Vec<f64> {
        self.per_round(|k| {
            let p = self.fastest(g, th, Some(k), &is_peer_crate)?;
            Some(p.1 / self.round(g.id, name, th, k)?.median)
        })
    }

    /// The verdict on the median of the per-round values `v`, and in how many rounds it held.
    fn judge(&self, v: &[f64], ok: &dyn Fn(f64) -> bool) -> String {
        let word = verdict(median_of(v.to_vec()).map(ok));
        if self.rounds > 1 && !v.is_empty() {
            let held = v.iter().filter(|x| ok(**x)).count();
            format!("{word} (held in {held} of {} rounds)", v.len())
        } else {
            word.to_string()
        }
    }

    /// A workload's goals at `th` threads: those of each API, then those of the workload.
    fn workload_target(&self, g: &Group, th: &str, goals: &[(Goal, &str)]) -> String {
        let ns = |n: &str| {
            self.get(g.id, n, th)
                .map_or("—".into(), |e| fmt_ns(e.median))
        };
        let named = |keep: &dyn Fn(&str) -> bool| {
            let f = self.fastest(g, th, None, keep);
            f.map_or("—".into(), |(name, v)| format!("{name} {}", fmt_ns(v)))
        };
        let apis = APIS
            .iter()
            .filter(|a| a.1 == OURS || self.get(g.id, a.1, th).is_some());
        let parts: Vec<String> = apis
            .map(|&api| {
                let judged = goals
                    .iter()
                    .filter_map(|(goal, w)| self.api_goal(g, th, api, goal, w));
                format!(
                    "{} {}{}",
                    api.0,
                    ns(api.1),
                    judged.collect::<Vec<_>>().join(",")
                )
            })
            .collect();
        let floor = if goals.iter().any(|g| matches!(g.0, Goal::Floor(_))) {
            format!("Floor {}, fastest", g.floor.map_or("—".into(), ns))
        } else {
            "Fastest".into()
        };
        let mut line = format!(
            "{}. {floor} peer crate {}, fastest other alternative {}",
            parts.join("; "),
            named(&is_peer_crate),
            named(&|n| is_alternative(g, n) && !is_peer_crate(n)),
        );
        for (goal, words) in goals {
            if let Goal::Creates(most) = *goal {
                let ours = |r: &&Row| r.group == g.id && r.name == OURS && r.threads == th;
                let c = self.rows.iter().find(ours).and_then(|r| r.creates_per_get);
                let share = c.map_or("—".into(), |c| format!("{:.4}% of gets", c * 100.0));
                let ok = verdict(c.map(|c| c <= most));
                let _ = write!(line, "; {words}: {ok} ({share})");
            }
        }
        line
    }

    /// The verdict of one API, (what the targets call it, its name), on a goal of a workload;
    /// `None` for a goal of the workload as a whole.
    fn api_goal(
        &self,
        g: &Group,
        th: &str,
        api: (&str, &str),
        goal: &Goal,
        words: &str,
    ) -> Option<String> {
        let (v, ok): (Vec<f64>, &dyn Fn(f64) -> bool) = match *goal {
            Goal::Floor(most) => {
                let v = g
                    .floor
                    .map_or(Vec::new(), |f| self.ratios(g.id, api.1, th, f));
                (v, &move |x| x <= most)
            }
            Goal::Peer(times) => (self.vs_peer(g, api.1, th), &move |x| x >= times),
            Goal::Faster => (self.vs_peer(g, api.1, th), &|x| x > 1.0),
            _ => return None,
        };
        let (r, ok) = (fmt_ratio(median_of(v.clone())), self.judge(&v, ok));
        Some(match goal {
            Goal::Floor(_) => format!(" ({r} floor) {words}: {ok}"),
            _ => format!(" {words}: {ok} (fastest peer crate ÷ {}: {r})", api.0),
        })
    }
}

/// A goal of a [`Section`]'s measurement, judged from its file.
fn section_target(goal: &Goal, f: &Tsv) -> String {
    match *goal {
        Goal::Memory(most) => {
            let mib = |d: Option<f64>| d.map_or("—".into(), |d| format!("{d:+.1} MiB"));
            let above = |field| Some(f.num(OURS, field)? - f.num(OURS, "start_mib")?);
            let (d, trimmed) = (above("cycle2_mib"), mib(above("cycle2_trimmed_mib")));
            let ok = verdict(d.map(|d| d <= most));
            format!("{ok} ({}; after malloc_trim {trimmed})", mib(d))
        }
        Goal::Spread(most) => {
            // The slowest over the fastest of `name`'s live threads, and their range.
            let spread = |name: &str| {
                let (fast, slow) = (f.num(name, "fastest_ns")?, f.num(name, "slowest_ns")?);
                Some((
                    slow / fast,
                    format!("{:.2}×", slow / fast),
                    format!("{fast:.2}–{slow:.2} ns"),
                ))
            };
            let parts: Vec<String> = APIS
                .iter()
                .map(|&(_, name)| match spread(name) {
                    Some((s, ratio, range)) => {
                        format!("{name} {} ({ratio}: {range})", verdict(Some(s <= most)))
                    }
                    None => format!("{name} {}", verdict(None)),
                })
                .collect();
            let floor = spread("tls-floor");
            let floor = floor.map_or("not measured".into(), |(_, ratio, range)| {
                format!("{ratio} ({range})")
            });
            format!("{}; the floor {floor}", parts.join("; "))
        }
        _ => unreachable!("a workload's goal in a section's target"),
    }
}

// ---- svg -------------------------------------------------------------------------------------

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The colour of an implementation's bar: ours, the floors, plain allocation, the others.
fn fill(name: &str) -> &'static str {
    if name.starts_with(OURS) {
        "#e8710a"
    } else if name.starts_with("tls-floor") || name == "channel-only" {
        "#888"
    } else if name.starts_with("alloc-") {
        "#9ab"
    } else {
        "#3b75af"
    }
}

impl Report {
    /// One panel per (group, threads): a horizontal bar per implementation, the ratio to the
    /// floor on a log scale, a line at 1×.
    fn svg(&self) -> String {
        // (title, bars), a bar being (implementation, ratio to the floor).
        type Panel<'a> = (String, Vec<(&'a str, Option<f64>)>);
        let mut panels: Vec<Panel> = Vec::new();
        for g in GROUPS.iter().filter(|g| g.floor.is_some()) {
            let rows = self.rows.iter().filter(|r| r.group == g.id);
            let mut threads: Vec<&str> = rows.clone().map(|r| r.threads.as_str()).collect();
            threads.sort();
            threads.dedup();
            for th in threads {
                let rows = rows.clone().filter(|r| r.threads == th);
                let bars: Vec<_> = rows
                    .map(|r| (r.name.as_str(), self.ratio(g, r, g.floor)))
                    .collect();
                if bars.iter().any(|b| b.1.is_some()) {
                    let s = if th == "1" { "" } else { "s" };
                    let title = format!("{} — {th} thread{s}, × {}", g.id, g.floor.unwrap_or(""));
                    panels.push((title, bars));
                }
            }
        }
        let max = panels.iter().flat_map(|p| p.1.iter().filter_map(|b| b.1));
        let max = max.fold(2.0f64, f64::max);
        let (lo, hi) = (0.5f64, 10f64.powf(max.log10().ceil()));
        let (label_w, plot_w, bar_h, gap) = (150.0, 300.0, 13.0, 3.0);
        let (panel_w, cols) = (label_w + plot_w + 60.0, 2);
        let panel_h = |p: &Panel| 40.0 + p.1.len() as f64 * (bar_h + gap) + 20.0;
        let row_h: Vec<f64> = panels
            .chunks(cols)
            .map(|row| row.iter().map(panel_h).fold(0.0, f64::max))
            .collect();
        let width = panel_w * cols as f64 + 20.0;
        let height = 50.0 + row_h.iter().sum::<f64>();
        let x_of = |r: f64| label_w + plot_w * ((r.clamp(lo, hi) / lo).log10() / (hi / lo).log10());

        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="10" y="22" font-size="15" font-weight="bold">Per-thread time ÷ the floor (log scale, lower is better); orange: reuse-pool</text>"#
        );
        let mut y0 = 40.0;
        for (row, h) in panels.chunks(cols).zip(row_h) {
            for (ci, (title, bars)) in row.iter().enumerate() {
                let x0 = 10.0 + ci as f64 * panel_w;
                let _ = writeln!(s, r#"<g transform="translate({x0:.1},{y0:.1})">"#);
                let _ = writeln!(
                    s,
                    r#"<text x="0" y="14" font-size="12" font-weight="bold">{}</text>"#,
                    esc(title)
                );
                let top = 24.0;
                let bottom = top + bars.len() as f64 * (bar_h + gap);
                // Grid: 1, 2, 5, 10, ...
                let mut tick = 1.0;
                while tick <= hi {
                    for m in [1.0, 2.0, 5.0] {
                        let v = tick * m;
                        if v < lo || v > hi {
                            continue;
                        }
                        let x = x_of(v);
                        let (stroke, w) = if v == 1.0 {
                            ("#333", 1.2)
                        } else {
                            ("#ddd", 0.6)
                        };
                        let _ = writeln!(
                            s,
                            r#"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="{stroke}" stroke-width="{w}"/>"#
                        );
                        if m != 5.0 || v < 100.0 {
                            let _ = writeln!(
                                s,
                                r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#666" font-size="9">{v}×</text>"##,
                                bottom + 11.0
                            );
                        }
                    }
                    tick *= 10.0;
                }
                for (i, &(name, r)) in bars.iter().enumerate() {
                    let y = top + i as f64 * (bar_h + gap);
                    let (label_x, text_y) = (label_w - 6.0, y + bar_h - 3.0);
                    let _ = writeln!(
                        s,
                        r#"<text x="{label_x:.1}" y="{text_y:.1}" text-anchor="end">{}</text>"#,
                        esc(name)
                    );
                    let Some(r) = r else {
                        let x = label_w + 3.0;
                        let _ = writeln!(
                            s,
                            r##"<text x="{x:.1}" y="{text_y:.1}" fill="#999">n/a</text>"##
                        );
                        continue;
                    };
                    let (x1, fill) = (x_of(r), fill(name));
                    let _ = writeln!(
                        s,
                        r#"<rect x="{label_w:.1}" y="{y:.1}" width="{:.1}" height="{bar_h}" fill="{fill}"/>"#,
                        (x1 - label_w).max(1.0)
                    );
                    let (x, ratio) = (x1 + 3.0, fmt_ratio(Some(r)));
                    let _ = writeln!(s, r#"<text x="{x:.1}" y="{text_y:.1}">{ratio}</text>"#);
                }
                let _ = writeln!(s, "</g>");
            }
            y0 += h;
        }
        let _ = writeln!(s, "</svg>");
        s
    }
}
