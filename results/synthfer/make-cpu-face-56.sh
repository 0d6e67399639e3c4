#!/usr/bin/env bash
# The synthfer reference benchmark under the cpu-face-56 profile, the one the profile search chose
# (results/synthfer/protocol/: CRITERIA.md, README.md): the papers' setting (the synthfer-id backbone) at
# the scale the methods' mechanisms need, with every method's mechanism diagnostics. The clean and 30%
# blocks first, seed by seed, then the 10% and 20% blocks. Run from the repository root; the runs go to
# $RUNS (default results/synthfer/cpu-face-56/runs; .gitignore keeps checkpoints and label files out). A
# finished run is skipped, an interrupted one resumes. SWEEP=0 only redraws tables and figures.
set -euo pipefail
RUNS="${RUNS:-results/synthfer/cpu-face-56/runs}"
OUT="${OUT:-results/synthfer/cpu-face-56}"
METHODS="${METHODS:-baseline,scn,rul,eac,lanet}"
PROFILE=cpu-face-56

if [ "${SWEEP:-1}" != 0 ]; then
    for rates in 0.3 0.1,0.2; do
        for seed in 0 1 2; do
            fer-bench sweep --methods "$METHODS" --datasets synthfer --noise sym,asym --rates "$rates" --clean \
                --seeds "$seed" --profile "$PROFILE" --jobs 2 --out "$RUNS" --quiet \
                || echo "some runs failed; the tables use the finished ones"
        done
    done
fi
[ -d "$RUNS/synthfer" ] || exit 0

# cpu-face-56 is not synthfer's default profile, so the runs carry it in their names.
source "$(dirname "$0")/draw-tables.sh"
TABLE_METHODS=$(echo "$METHODS" | sed "s/,/+profile=$PROFILE,/g; s/\$/+profile=$PROFILE/")
draw_tables "$RUNS/synthfer" "$OUT" "$TABLE_METHODS" last best last5 val

mkdir -p "$OUT/figures"
fer-bench plot curves --results "$RUNS/synthfer" --methods "$TABLE_METHODS" --out "$OUT/figures/accuracy-vs-noise"
fer-bench plot memorisation --results "$RUNS/synthfer" --methods "$TABLE_METHODS" --out "$OUT/figures/memorisation"
fer-bench plot mechanisms --results "$RUNS/synthfer" --methods "$TABLE_METHODS" --out "$OUT/figures/mechanisms"
