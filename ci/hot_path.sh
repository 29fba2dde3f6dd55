#!/usr/bin/env bash
# Checks that a get+put hitting the thread's magazine performs no atomic read-modify-write and
# no fence instruction on x86-64 Linux: builds examples/hot_path.rs, disassembles the two
# out-of-line hot functions together with the guard's drop, and fails on any `lock`-prefixed
# instruction, `xchg`, `cmpxchg`, `mfence`, `lfence` or `sfence` in them. Calls into cold paths
# (the slow path, `create`, the no-membarrier fallback fence) are allowed: they are not taken on
# a hit, which the example itself asserts by counting hits.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname -m)" != x86_64 ] || [ "$(uname -s)" != Linux ]; then
    echo "hot_path: skipped (x86-64 Linux only)"
    exit 0
fi
command -v objdump >/dev/null || { echo "hot_path: objdump not found (binutils)"; exit 1; }
cargo build --release --example hot_path
bin=target/release/examples/hot_path
"$bin"
asm=$(objdump -d --no-show-raw-insn -C "$bin")
fail=0
checked=0
for f in 'hot_path::get_put_hit' 'hot_path::take_put_hit' \
    'core::ptr::drop_in_place<reuse_pool::guard::Pooled<alloc::vec::Vec<u8>>>'; do
    body=$(awk -v name="<$f>:" 'index($0, name) { on = 1; next } on && /^$/ { exit } on' <<<"$asm")
    if [ -z "$body" ]; then
        # The guard's drop may be inlined into its caller; the callers are checked anyway.
        echo "hot_path: $f not found out of line (inlined)"
        continue
    fi
    checked=$((checked + 1))
    n=$(wc -l <<<"$body")
    bad=$(grep -E '\block\b|xchg|cmpxchg|mfence|lfence|sfence' <<<"$body" || true)
    if [ -n "$bad" ]; then
        echo "hot_path: $f ($n instructions) has atomic RMW or fence instructions:"
        echo "$bad"
        fail=1
    else
        echo "hot_path: $f: $n instructions, no lock/xchg/fence"
    fi
done
[ "$checked" -ge 2 ] || { echo "hot_path: FAILED: hot functions not found"; exit 1; }
if [ "$fail" -ne 0 ]; then
    echo "hot_path: FAILED"
    exit 1
fi
echo "hot_path: ok: $checked functions checked, no atomic read-modify-write or fence on a hit"
