#!/usr/bin/env bash
# The profile search of CRITERIA.md: each candidate trains the five methods at symmetric and asymmetric 30%
# noise and the Baseline on clean labels, seed 0, one thread per run, two runs at a time. Resumable: run it
# again and finished runs are skipped. Run from the repository root; the runs go to $RUNS/<candidate>/
# (default results/synthfer/protocol/runs; .gitignore keeps checkpoints and label files out).
# Usage: search.sh [CANDIDATE...]   (default: every candidate below, in order)
set -euo pipefail
# FER_BENCH_CODE: run a snapshot of the code (a copy of fer_bench/ in that directory) instead of the checkout,
# so that editing the checkout while the search runs for hours cannot change what its later runs compute.
RUNS="$(realpath -m "${RUNS:-results/synthfer/protocol/runs}")"
if [ -n "${FER_BENCH_CODE:-}" ]; then
    export PYTHONPATH="$FER_BENCH_CODE${PYTHONPATH:+:$PYTHONPATH}"
    export FER_BENCH_DATA="${FER_BENCH_DATA:-$PWD/datasets}"  # the checkout's data, not the snapshot's
    cd "$FER_BENCH_CODE"  # python -m puts the working directory first on the import path
fi
fer_bench() { python -m fer_bench.cli "$@"; }
export FER_BENCH_THREADS=1

# name: the --set options that make it, on top of cpu-face (the papers' setting: the synthfer-id backbone)
declare -A CANDIDATE=(
    # today's profile as it is (its constants as declared), for the diagnostics beside the candidates
    [cpu-face]=""
    # 56 px, the last stage at stride 1 (7x7 class activation maps), heatmaps at stride 2 (28x28), constants mapped
    [face56]="--set image_size=56 --set last_stride=1 --set heatmap_stride=2 --set time_constants=mapped"
)
ORDER=(face56 cpu-face)

for name in "${@:-${ORDER[@]}}"; do
    [ -n "${CANDIDATE[$name]+x}" ] || { echo "unknown candidate $name; known: ${!CANDIDATE[*]}" >&2; exit 2; }
    # LA-Net first: its two runs are the longest, and most of the criteria are its
    for methods in lanet eac,rul,scn,baseline; do
        # shellcheck disable=SC2086
        fer_bench sweep --methods "$methods" --datasets synthfer --noise sym,asym --rates 0.3 \
            --seeds 0 --profile cpu-face ${CANDIDATE[$name]} --jobs 2 --out "$RUNS/$name" --quiet || true
    done
    # shellcheck disable=SC2086
    fer_bench sweep --methods baseline --datasets synthfer --noise sym --rates 0.3 --clean \
        --seeds 0 --profile cpu-face ${CANDIDATE[$name]} --jobs 2 --out "$RUNS/$name" --quiet || true
done
