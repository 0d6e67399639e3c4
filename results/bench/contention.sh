#!/usr/bin/env bash
# Issue 17, part 1: CPU training throughput on an idle machine and beside busy competing processes,
# before (FER_BENCH_THREADS=off: torch's and OpenMP's own defaults, as before the thread policy)
# and after (the default policy, fer_bench/threads.py). Each bench measures idle and contended
# side by side in one process, alternating, REPEAT rounds, and reports the medians.
#
# Run from the repository root on an otherwise idle machine (check with `uptime` first):
#     bash results/bench/contention.sh
# About 8 minutes on 2 idle cores, most of it the collapsed "off" runs beside a competitor (the
# first call also renders a 1,536-image synthfer set once, in seconds).
# OUT, REPEAT and STEPS may be overridden from the environment.
set -euo pipefail
unset OMP_NUM_THREADS MKL_NUM_THREADS OMP_WAIT_POLICY GOMP_SPINCOUNT FER_BENCH_THREADS FER_BENCH_OMP_SET
OUT=${OUT:-results/bench}
ARGS=(--profile cpu --size 48 --batch 64 --device cpu --methods baseline --n-train 1536
      --steps "${STEPS:-24}" --warmup 5 --repeat "${REPEAT:-3}" --quiet)
uptime

bench() {  # NAME [ENV=VALUE...] -- [bench options...]
    local name=$1; shift
    local env=()
    while [ "$1" != "--" ]; do env+=("$1"); shift; done; shift
    echo; echo "=== $name: ${env[*]:-default policy} fer-bench bench $*"
    env "${env[@]}" fer-bench bench "${ARGS[@]}" "$@" --out "$OUT/contention-cpu-48-$name.json"
}

# One competitor that keeps a core busy with a pure-Python loop: before, after.
bench off-spin FER_BENCH_THREADS=off -- --contention 1 --competitor spin
bench auto-spin -- --contention 1 --competitor spin
# A realistic competitor: a 1-thread torch matmul loop (another training job): before, after.
bench off-torch FER_BENCH_THREADS=off -- --contention 1 --competitor torch
bench auto-torch -- --contention 1 --competitor torch
# The one-variable alternative the issue measured, for reference: passive OpenMP waiting, 2 threads.
bench passive-spin FER_BENCH_THREADS=off OMP_WAIT_POLICY=PASSIVE -- --contention 1 --competitor spin
# A `fer-bench sweep --jobs 2` child on 2 cores (FER_BENCH_THREADS=auto:1, what the sweep gives it),
# with its sibling run as the competitor, and with the sibling plus one more busy process.
bench sweep-jobs2 FER_BENCH_THREADS=auto:1 -- --contention 1 --competitor torch
bench sweep-jobs2-plus1 FER_BENCH_THREADS=auto:1 -- --contention 2 --competitor torch
uptime

echo; echo "=== summary (medians over the rounds; threads: torch's mean thread count per measurement)"
python - "$OUT" off-spin auto-spin passive-spin off-torch auto-torch sweep-jobs2 sweep-jobs2-plus1 <<'PY'
import json, sys
from pathlib import Path
for name in sys.argv[2:]:
    r = json.loads((Path(sys.argv[1]) / f"contention-cpu-48-{name}.json").read_text())
    s, k = r["summary"]["baseline"], r["settings"]["competitor"]
    threads = "/".join(f"{row['torch_threads']:.1f}" for row in r["rows"])
    load = max(row["load_avg_1min"] for row in r["rows"])
    print(f"{name:<18} idle {s['idle_images_per_s']:6.1f} images/s   {s['competitors']} x {k:<5} "
          f"{s['contended_images_per_s']:6.1f} images/s ({s['ratio']:4.0%})   threads {threads}   max load {load:.1f}")
PY
