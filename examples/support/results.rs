//! The result files of the benchmark suite: tab-separated, with a header line, in
//! `$CARGO_TARGET_DIR/reuse-pool-bench` (`target/reuse-pool-bench` by default). The benches
//! write them (`merge_line`) and `examples/bench_report.rs` reads them (`Tsv`); both include this
//! file with `#[path]`, so the place and the format are written down once. Standard library only,
//! as `bench_report` builds with plain `rustc` too.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// `$CARGO_TARGET_DIR/reuse-pool-bench` (or `target/reuse-pool-bench`), created.
pub fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or("target".into(), PathBuf::from);
    let dir = target.join("reuse-pool-bench");
    let _ = fs::create_dir_all(&dir);
    dir
}

static DRY_RUN: AtomicBool = AtomicBool::new(false);

/// Stops writing result files (criterion's `--test` and `--list` modes run every benchmark once
/// or not at all; their counts would overwrite a real run's).
pub fn set_dry_run(dry: bool) {
    DRY_RUN.store(dry, Ordering::Relaxed);
}

/// Replaces or appends the line of `fields` (tabs and newlines in them made spaces) in `file`
/// of [`out_dir`], keyed on its first `key_fields` fields; `header` is the file's first line.
/// Lines keep the order in which they were first written.
pub fn merge_line(file: &str, header: &str, key_fields: usize, fields: &[impl AsRef<str>]) {
    if DRY_RUN.load(Ordering::Relaxed) {
        return;
    }
    let clean = fields.iter().map(|f| f.as_ref().replace(['\t', '\n'], " "));
    let line = clean.collect::<Vec<_>>().join("\t");
    let path = out_dir().join(file);
    let old = fs::read_to_string(&path).unwrap_or_default();
    let mut lines: Vec<&str> = old.lines().skip(1).filter(|l| !l.is_empty()).collect();
    match lines
        .iter()
        .position(|l| key(l, key_fields) == key(&line, key_fields))
    {
        Some(i) => lines[i] = &line,
        None => lines.push(&line),
    }
    let out = format!("{header}\n{}\n", lines.join("\n"));
    if let Err(e) = fs::write(&path, out) {
        eprintln!("cannot write {}: {e}", path.display());
    }
}

/// The first `n` fields of a line.
fn key(line: &str, n: usize) -> Vec<&str> {
    line.split('\t').take(n).collect()
}

/// One result file read back: the field names of its header line, and its rows.
pub struct Tsv {
    pub head: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Tsv {
    /// The file at `path`; empty when there is none.
    pub fn read(path: &Path) -> Tsv {
        let text = fs::read_to_string(path).unwrap_or_default();
        let split = |l: &str| l.split('\t').map(String::from).collect::<Vec<_>>();
        let mut lines = text.lines();
        Tsv {
            head: lines.next().map(split).unwrap_or_default(),
            rows: lines.filter(|l| !l.trim().is_empty()).map(split).collect(),
        }
    }
    /// The rows that have every field of the header.
    pub fn full(&self) -> impl Iterator<Item = &[String]> {
        let n = self.head.len();
        self.rows
            .iter()
            .map(Vec::as_slice)
            .filter(move |r| r.len() >= n)
    }
    /// Field `name` of `row`.
    pub fn field<'a>(&self, row: &'a [String], name: &str) -> Option<&'a str> {
        let i = self.head.iter().position(|h| h == name)?;
        row.get(i).map(String::as_str)
    }
    /// Field `name` of the first row whose first field is `key`.
    pub fn get(&self, key: &str, name: &str) -> Option<&str> {
        self.field(self.full().find(|r| r[0] == key)?, name)
    }
    /// [`Tsv::get`] as a number.
    pub fn num(&self, key: &str, name: &str) -> Option<f64> {
        self.get(key, name)?.parse().ok()
    }
}
