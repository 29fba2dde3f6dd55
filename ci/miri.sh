#!/usr/bin/env bash
# Miri over the unit tests and the integration tests.
#
#   ci/miri.sh          full: every unit test and every tests/*.rs (about 5 minutes of Miri)
#   ci/miri.sh fast     CI:   unit tests + the integration tests in FAST_TESTS below
#   REUSE_POOL_CI_FAST=1 ci/miri.sh   same as `fast`
#
# Tests scale their loops with `cfg!(miri)`; whatever is `#[cfg_attr(miri, ignore)]` is skipped.
# Under Miri `crate::barrier` uses `fence(SeqCst)` on both sides instead of `membarrier` (Miri
# cannot run that system call), which is the textbook Dekker pair Miri's weak-memory emulation
# checks.
#
# MIRIFLAGS, and why each one:
#   -Zmiri-tree-borrows        crossbeam-epoch 0.9 breaks Stacked Borrows (`Local::element_of`
#                              retags a pointer past its borrow), a known upstream issue; its
#                              authors run Miri with Tree Borrows (crossbeam PR #996).
#   -Zmiri-permissive-provenance  crossbeam-epoch's `Atomic<T>` stores pointers as `usize`
#                              (tagged pointers), so `-Zmiri-strict-provenance` stops in every
#                              test at its first `pin()`. This crate's own code has two
#                              integer-to-pointer casts, both in a guard's head (its pool and
#                              home cache, kept as exposed addresses: src/guard.rs).
#   -Zmiri-ignore-leaks        the automatic cleanup driver is a detached thread that lives as
#                              long as the process (Miri reports it as a leak), and pointers kept
#                              in crossbeam-epoch's `usize` atomics are invisible to Miri's
#                              reachability check. Leaks are checked by LeakSanitizer in
#                              ci/san.sh instead.
# Extra flags can be appended with MIRIFLAGS_EXTRA (e.g. -Zmiri-many-seeds=0..4).
set -euo pipefail
cd "$(dirname "$0")/.."
on_err() {
    local rc=$?
    echo "miri: FAILED: the command at line ${BASH_LINENO[0]} exited with $rc"
    exit "$rc"
}
trap on_err ERR

# Integration tests run in fast mode: the core behaviours, about a minute of Miri in all.
FAST_TESTS=(go_pool cross_thread thread_exit cleanup cleanup_recursion panics downstream pools)

mode="${1:-}"
if [ "$mode" = fast ] || [ "${REUSE_POOL_CI_FAST:-0}" = 1 ]; then
    mode=fast
else
    mode=full
fi

rustup toolchain install nightly --profile minimal >/dev/null 2>&1 || true
rustup component add miri rust-src --toolchain nightly >/dev/null
cargo +nightly miri setup >/dev/null 2>&1 || cargo +nightly miri setup

. ci/shadow-crate.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_MIRI:-target/miri}"
export MIRIFLAGS="-Zmiri-tree-borrows -Zmiri-permissive-provenance -Zmiri-ignore-leaks ${MIRIFLAGS_EXTRA:-}"
unset RUSTFLAGS RUSTDOCFLAGS

manifest="$(shadow_manifest target/shadow-miri)"
if ! cargo +nightly miri test --manifest-path "$manifest" --lib --tests --no-run >/dev/null 2>&1; then
    echo "miri: the shadow build failed (a test uses a dev-dependency?); using Cargo.toml"
    manifest=Cargo.toml
fi

targets=(--lib)
if [ "$mode" = fast ]; then
    for t in "${FAST_TESTS[@]}"; do
        [ -f "tests/$t.rs" ] && targets+=(--test "$t")
    done
else
    targets+=(--tests)
fi

echo "miri ($mode): MIRIFLAGS='$MIRIFLAGS', targets: ${targets[*]}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
start=$SECONDS
set +e
trap - ERR
cargo +nightly miri test --manifest-path "$manifest" --no-fail-fast "${targets[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
trap on_err ERR

sum() { grep -o "[0-9]* $1" | awk '{s += $1} END {print s + 0}'; }
results=$(grep -c '^test result:' "$log" || true)
passed=$(grep '^test result:' "$log" | sum passed || true)
failed=$(grep '^test result:' "$log" | sum failed || true)
ignored=$(grep '^test result:' "$log" | sum ignored || true)
ub=$(grep -c 'Undefined Behavior' "$log" || true)
summary="$passed passed, $failed failed, $ignored ignored in $results test binaries; $ub UB reports ($mode, $((SECONDS - start)) s)"
if [ "$status" -ne 0 ] || [ "$results" -eq 0 ]; then
    echo "miri: FAILED: $summary"
    exit 1
fi
echo "miri: ok: $summary"
