#!/usr/bin/env bash
# loom model checking of the pool's lock-free hand-offs (src/loom.rs).
#
#   ci/loom.sh          full: LOOM_MAX_PREEMPTIONS=3 (about a minute of models on 2 cores)
#   ci/loom.sh fast     CI:   LOOM_MAX_PREEMPTIONS=2 (a few seconds of models)
#   REUSE_POOL_CI_FAST=1 ci/loom.sh   same as `fast`
#
# LOOM_MAX_PREEMPTIONS set in the environment wins over both. Builds with `--cfg reuse_pool_loom`
# in its own target directory (target/loom) so the main target directory is not rebuilt, and
# without the dev-dependencies (ci/shadow-crate.sh). Exits non-zero if any model fails; the last
# line is a one-line summary.
set -euo pipefail
cd "$(dirname "$0")/.."
on_err() {
    local rc=$?
    echo "loom: FAILED: the command at line ${BASH_LINENO[0]} exited with $rc"
    exit "$rc"
}
trap on_err ERR

mode="${1:-}"
if [ "$mode" = fast ] || [ "${REUSE_POOL_CI_FAST:-0}" = 1 ]; then
    mode=fast
    default_preemptions=2
else
    mode=full
    default_preemptions=3
fi
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-$default_preemptions}"

. ci/shadow-crate.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_LOOM:-target/loom}"
export RUSTFLAGS="--cfg reuse_pool_loom"
unset RUSTDOCFLAGS
# Dependencies unoptimised (fast to build), loom and the crate optimised (fast to explore).
profile=(
    --config 'profile.dev.package.loom.opt-level=3'
    --config 'profile.dev.package.generator.opt-level=3'
    --config 'profile.dev.package.reuse-pool.opt-level=2'
)

manifest="$(shadow_manifest target/shadow-loom)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

run() {
    # Only the loom:: tests: under `--cfg reuse_pool_loom` the other unit tests would use loom
    # types outside a loom model. Two test threads: each model is single-threaded.
    cargo test --manifest-path "$1" --lib "${profile[@]}" -- loom:: --nocapture --test-threads=2
}

echo "loom ($mode): LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS, target dir $CARGO_TARGET_DIR"
start=$SECONDS
if ! cargo test --manifest-path "$manifest" --lib --no-run "${profile[@]}" >/dev/null 2>&1; then
    echo "loom: the shadow build failed (a unit test uses a dev-dependency?); using Cargo.toml"
    manifest=Cargo.toml
fi
set +e
trap - ERR
run "$manifest" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
trap on_err ERR

models=$(grep -o 'loom model [a-z_0-9]*: [0-9]* executions' "$log" | wc -l || true)
executions=$(grep -o 'loom model [a-z_0-9]*: [0-9]* executions' "$log" | awk '{s += $4} END {print s + 0}' || true)
passed=$(grep -o 'test result: [a-zA-Z]*\. [0-9]* passed; [0-9]* failed' "$log" | tail -1 || true)
if [ "$status" -ne 0 ] || [ "$models" -eq 0 ]; then
    echo "loom: FAILED ($passed; $models models finished, exit $status, $((SECONDS - start)) s)"
    exit 1
fi
echo "loom: ${passed#test result: }: $models models, $executions executions explored (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS, $mode) in $((SECONDS - start)) s"
