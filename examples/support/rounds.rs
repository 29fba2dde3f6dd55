//! How the benchmark suite names the repeated rounds of a workload: `benches/pool.rs` runs every
//! timed group `REUSE_POOL_BENCH_ROUNDS` times and `examples/bench_report.rs` reads the rounds
//! back; both include this file with `#[path]`.

/// The criterion group id of round `round` (counted from 1) of the workload `id`: `id` itself for
/// round 1, so that a one-round run keeps the plain names, and `id-rN` for round N after it.
pub fn round_group(id: &str, round: usize) -> String {
    if round <= 1 {
        id.to_string()
    } else {
        format!("{id}-r{round}")
    }
}

/// The inverse of [`round_group`]: the workload and round of a criterion group id.
pub fn split_round(group: &str) -> (&str, usize) {
    if let Some((id, n)) = group.rsplit_once("-r") {
        if let Ok(n) = n.parse::<usize>() {
            if round_group(id, n) == group {
                return (id, n);
            }
        }
    }
    (group, 1)
}
