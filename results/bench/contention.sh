#!/usr/bin/env bash
# Issue 17, part 1: CPU training throughput on an idle machine and beside one busy competing
# process, before (FER_BENCH_THREADS=off: torch's and OpenMP's own defaults, as before the thread
# policy) and after (the default policy, fer_bench/threads.py), with a static alternative for
# reference (2 fixed threads, libgomp spinning only 10,000 rounds before it sleeps), and a
# `sweep --jobs 2` child (FER_BENCH_THREADS=auto:1) beside its sibling and beside one more process.
# Each bench measures idle and contended side by side in one process, alternating, REPEAT rounds.
#
# Run from the repository root on an otherwise idle machine (check with `uptime` first):
#     bash results/bench/contention.sh
# About 8 minutes on 2 idle cores (the first call also renders a 1,536-image synthfer set once).
set -euo pipefail
unset OMP_NUM_THREADS MKL_NUM_THREADS OMP_WAIT_POLICY GOMP_SPINCOUNT FER_BENCH_THREADS FER_BENCH_OMP_SET
OUT=${OUT:-results/bench}
ARGS=(--profile cpu --size 48 --batch 64 --device cpu --methods baseline --n-train 1536
      --steps 24 --warmup 5 --repeat "${REPEAT:-2}" --quiet)
uptime

bench() {  # NAME [ENV=VALUE...] -- [bench options...]
    local name=$1; shift
    local env=()
    while [ "$1" != "--" ]; do env+=("$1"); shift; done; shift
    echo "=== $name: ${env[*]:-default policy} fer-bench bench $*"
    env "${env[@]}" fer-bench bench "${ARGS[@]}" "$@" --out "$OUT/contention-cpu-48-$name.json" | tail -2
}

for competitor in torch spin; do
    bench off-$competitor FER_BENCH_THREADS=off -- --contention 1 --competitor $competitor
    bench auto-$competitor -- --contention 1 --competitor $competitor
    bench spin10k-$competitor FER_BENCH_THREADS=2 GOMP_SPINCOUNT=10000 -- --contention 1 --competitor $competitor
done
bench sweep-jobs2-plus0 FER_BENCH_THREADS=auto:1 -- --contention 1 --competitor torch
bench sweep-jobs2-plus1 FER_BENCH_THREADS=auto:1 -- --contention 2 --competitor torch
uptime
