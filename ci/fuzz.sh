#!/usr/bin/env bash
# Fuzz smoke test: runs every cargo-fuzz target of fuzz/ for a share of SECONDS.
#
#   ci/fuzz.sh [SECONDS]        default 60; CI uses 30-60 (each target gets SECONDS / targets)
#
# Targets: ops (scripts of operations across threads against an object-life model), config
# (random settings, injected panics), buf (BufPool; written by the byte-buffer pool's author).
# Seeds in fuzz/seeds/TARGET are replayed first (read-only); new inputs go to fuzz/corpus/TARGET
# (git-ignored). A crash leaves its input in fuzz/artifacts/TARGET and fails the script.
# The targets also check DESIGN.md's ageing rule after every cycle (REUSE_POOL_FUZZ_AGING=0 turns
# that off); fuzz/seeds/ops/victim-batch-rescue reproduces the engine bug that check found.
# The last line is a one-line summary (executions and coverage per target).
set -euo pipefail
cd "$(dirname "$0")/.."
on_err() {
    local rc=$?
    echo "fuzz: FAILED: the command at line ${BASH_LINENO[0]} exited with $rc"
    exit "$rc"
}
trap on_err ERR

secs="${1:-60}"
rustup toolchain install nightly --profile minimal >/dev/null 2>&1 || true
rustup component add rust-src --toolchain nightly >/dev/null
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

targets=(ops config buf)
per=$(( secs / ${#targets[@]} ))
[ "$per" -ge 1 ] || per=1
cargo +nightly fuzz build >/dev/null 2>&1 || cargo +nightly fuzz build

summary=()
failed=0
start=$SECONDS
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    dirs=("fuzz/corpus/$t")
    [ -d "fuzz/seeds/$t" ] && dirs+=("fuzz/seeds/$t")
    log="$(mktemp)"
    set +e
    trap - ERR
    cargo +nightly fuzz run "$t" "${dirs[@]}" -- -max_total_time="$per" -print_final_stats=1 >"$log" 2>&1
    status=$?
    set -e
    trap on_err ERR
    runs=$(grep -o 'Done [0-9]* runs' "$log" | awk '{print $2}' | tail -1 || true)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}' || true)
    if [ "$status" -ne 0 ]; then
        failed=1
        tail -40 "$log"
        summary+=("$t: CRASH (exit $status, input in fuzz/artifacts/$t)")
    else
        summary+=("$t: ${runs:-0} runs, cov ${cov:-?}")
    fi
    rm -f "$log"
done

line="$(IFS=';'; echo "${summary[*]}") ($per s each, $((SECONDS - start)) s)"
if [ "$failed" -ne 0 ]; then
    echo "fuzz: FAILED: $line"
    exit 1
fi
echo "fuzz: ok: $line"
