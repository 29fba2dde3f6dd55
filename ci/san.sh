#!/usr/bin/env bash
# ThreadSanitizer and AddressSanitizer (with LeakSanitizer) over the unit tests, the integration
# tests and the multi-threaded stress binary (examples/stress.rs).
#
#   ci/san.sh                full: both sanitizers, every test, stress for 10 s
#   ci/san.sh fast           CI:   both sanitizers, every test, stress for 3 s
#   ci/san.sh [fast] thread  only ThreadSanitizer (or `address`)
#   REUSE_POOL_CI_FAST=1 ci/san.sh   same as `fast`
#
# ThreadSanitizer:
# * std is rebuilt with the sanitizer (-Zbuild-std), or TSan would not see std's own atomics
#   (Mutex, Condvar, channels, Arc) and would report races that are not there.
# * REUSE_POOL_NO_MEMBARRIER=1: TSan does not know that `membarrier` is a fence on every thread;
#   with it set, crate::barrier uses `fence(SeqCst)` on both sides. TSan does not model standalone
#   fences either, but it needs none here: in every execution that can happen, the owner's touches
#   of its magazine and cleanup's are ordered by release/acquire pairs (`busy` store-release /
#   load-acquire, `reclaim` store-release / load-acquire, the per-cache mutex); the fences only
#   rule out executions in which both sides would read stale flags, and TSan never sees those.
#   So no suppression covers this crate's code.
# * ci/tsan.supp suppresses reports inside crossbeam-epoch and crossbeam-deque only, the same
#   suppressions crossbeam's own CI uses: epoch's pin/unpin synchronise through fences, and a
#   steal reads a slot speculatively (racing with the owner's write) and discards the value if
#   its compare-and-swap fails.
# * --cfg reuse_pool_sanitize tells the tests they run under a sanitizer (stack depths measured
#   from addresses mean nothing on AddressSanitizer's fake stack).
# * --cfg crossbeam_sanitize makes crossbeam-epoch collect garbage eagerly, so a use-after-free
#   of deferred memory shows up at once (crossbeam's CI does the same).
#
# AddressSanitizer: heap/stack misuse, use-after-free, double free, and leaks at exit
# (LeakSanitizer scans memory conservatively, so it also sees the pointers crossbeam-epoch keeps in
# integers, which Miri cannot: leaks are checked here rather than under Miri).
#
# Tests that measure the process's RSS are skipped under AddressSanitizer (ASAN_SKIP below): ASan
# keeps freed memory in quarantine, so RSS cannot fall there. They run under ThreadSanitizer.
#
# Separate target directories (target/san-thread, target/san-address) keep the main one intact.
# The last line is a one-line summary; the exit status is non-zero on any report or failure.
set -euo pipefail
cd "$(dirname "$0")/.."
on_err() {
    local rc=$?
    echo "san: FAILED: the command at line ${BASH_LINENO[0]} exited with $rc"
    exit "$rc"
}
trap on_err ERR

# Substrings of test names skipped under AddressSanitizer (they assert that RSS falls).
ASAN_SKIP=(rss_falls go_back_to_the_os)
# Skipped under ThreadSanitizer: the `fork` tests. TSan does not support a child forked from a
# multi-threaded process that starts a thread (the cleanup driver restarting: "starting new
# threads after multi-threaded fork is not supported. Dying"), and a child forked while other
# threads are inside TSan's runtime can hang on the runtime's own locks (seen: over 10 minutes in
# `fork_during_concurrent_use_leaves_a_usable_child`, which passed in the run before). They run
# in the plain test suite and under AddressSanitizer.
TSAN_SKIP=(automatic_cycles_resume_in_the_child fork_during_concurrent_use_leaves_a_usable_child)

mode=full
stress_secs=10
sanitizers=()
for arg in "$@"; do
    case "$arg" in
        fast) mode=fast ;;
        thread | address) sanitizers+=("$arg") ;;
        *) echo "usage: ci/san.sh [fast] [thread] [address]" >&2; exit 2 ;;
    esac
done
if [ "${REUSE_POOL_CI_FAST:-0}" = 1 ]; then mode=fast; fi
if [ "$mode" = fast ]; then stress_secs=3; fi
if [ "${#sanitizers[@]}" -eq 0 ]; then sanitizers=(thread address); fi

rustup toolchain install nightly --profile minimal >/dev/null 2>&1 || true
rustup component add rust-src --toolchain nightly >/dev/null

. ci/shadow-crate.sh
host="$(rustc +nightly -vV | sed -n 's/^host: //p')"
manifest="$(shadow_manifest target/shadow-san)"
unset RUSTDOCFLAGS
summary=()
failed=0

for san in "${sanitizers[@]}"; do
    export CARGO_TARGET_DIR="target/san-$san"
    export RUSTFLAGS="-Zsanitizer=$san --cfg crossbeam_sanitize --cfg reuse_pool_sanitize"
    build_std=()
    skip=()
    if [ "$san" = thread ]; then
        build_std=(-Zbuild-std)
        export TSAN_OPTIONS="suppressions=$(pwd)/ci/tsan.supp halt_on_error=0 second_deadlock_stack=1 report_signal_unsafe=0"
        export REUSE_POOL_NO_MEMBARRIER=1
        for s in "${TSAN_SKIP[@]}"; do skip+=(--skip "$s"); done
    else
        unset TSAN_OPTIONS REUSE_POOL_NO_MEMBARRIER
        export ASAN_OPTIONS="detect_leaks=1 detect_stack_use_after_return=1"
        for s in "${ASAN_SKIP[@]}"; do skip+=(--skip "$s"); done
    fi
    common=(--target "$host" "${build_std[@]}" --release
        --config 'profile.release.debug="line-tables-only"')
    m="$manifest"
    if ! cargo +nightly test "${common[@]}" --manifest-path "$m" --lib --tests --no-run >/dev/null 2>&1; then
        echo "san: the shadow build failed; using Cargo.toml"
        m=Cargo.toml
    fi

    echo "=== san ($san, $mode): tests"
    log="$(mktemp)"
    start=$SECONDS
    set +e
    trap - ERR
    cargo +nightly test "${common[@]}" --manifest-path "$m" --lib --tests --no-fail-fast -- "${skip[@]}" 2>&1 | tee "$log"
    test_status=${PIPESTATUS[0]}
    set -e
    trap on_err ERR
    passed=$(grep '^test result:' "$log" | grep -o '[0-9]* passed' | awk '{s += $1} END {print s + 0}' || true)
    tfailed=$(grep '^test result:' "$log" | grep -o '[0-9]* failed' | awk '{s += $1} END {print s + 0}' || true)
    reports=$(grep -c '^WARNING: ThreadSanitizer\|^==[0-9]*==ERROR: \(AddressSanitizer\|LeakSanitizer\)' "$log" || true)

    echo "=== san ($san, $mode): stress ${stress_secs}s"
    set +e
    trap - ERR
    cargo +nightly run "${common[@]}" --manifest-path "$m" --example stress -- "$stress_secs" 4 2>&1 | tee -a "$log"
    stress_status=${PIPESTATUS[0]}
    set -e
    trap on_err ERR
    stress_line=$(grep -o 'stress: [0-9]* threads.*errors' "$log" | tail -1 || true)
    reports=$(grep -c '^WARNING: ThreadSanitizer\|^==[0-9]*==ERROR: \(AddressSanitizer\|LeakSanitizer\)' "$log" || true)
    rm -f "$log"

    line="$san: tests $passed passed, $tfailed failed (exit $test_status); ${stress_line:-stress: no summary} (exit $stress_status); $reports sanitizer reports; $((SECONDS - start)) s"
    echo "=== san: $line"
    summary+=("$line")
    if [ "$test_status" -ne 0 ] || [ "$stress_status" -ne 0 ] || [ "$reports" -ne 0 ]; then
        failed=1
    fi
done

if [ "$failed" -ne 0 ]; then
    echo "san: FAILED: $(IFS=';'; echo "${summary[*]}")"
    exit 1
fi
echo "san: ok: $(IFS='|'; echo "${summary[*]}")"
