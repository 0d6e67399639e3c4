#!/usr/bin/env bash
# The synthfer reference benchmark under cpu-face-56, synthfer's default profile, the one the profile search
# chose (results/synthfer/protocol/: CRITERIA.md, README.md): the papers' setting (the synthfer-id backbone)
# at the scale the methods' mechanisms need, with every method's mechanism diagnostics. In order of
# priority, seed by seed: the five methods of LA-Net's Table 1 on the clean and 30% blocks; the four later
# methods on the same blocks; the imbalance block (RHO 10 at 20% symmetric noise, its own runs root); the
# 10% and 20% blocks. Run from the repository root; the runs go to $RUNS (default
# results/synthfer/cpu-face-56/runs; .gitignore keeps checkpoints and label files out). A finished run is
# skipped, an interrupted one resumes. SWEEP=0 only redraws tables and figures.
set -euo pipefail
RUNS="${RUNS:-results/synthfer/cpu-face-56/runs}"
IMBALANCED="${IMBALANCED:-results/synthfer/cpu-face-56/imbalance/runs}"
OUT="${OUT:-results/synthfer/cpu-face-56}"
TABLE1=baseline,scn,rul,eac,lanet
LATER=nla,coteaching,elr
# DivideMix's warm-up mapped to this schedule (1 epoch) leaves classes unlearned, and its co-divide then
# drops whole classes; by the rule written before the diagnostic (protocol/dividemix-warmup.md) its runs
# warm up for 4 epochs (their directories say dividemix+warm_up=4; since every DivideMix run here shares
# it, the tables name them DivideMix and their captions say warm_up=4).
DIVIDEMIX="--methods dividemix --set warm_up=4"
METHODS="$TABLE1,$LATER,dividemix"
PROFILE=cpu-face-56

sweep() {
    fer-bench sweep --datasets synthfer --profile "$PROFILE" --jobs 2 --quiet "$@" \
        || echo "some runs failed; the tables use the finished ones"
}

if [ "${SWEEP:-1}" != 0 ]; then
    for methods in "--methods $TABLE1" "--methods $LATER" "$DIVIDEMIX"; do
        for seed in 0 1 2; do
            # (word-split on purpose: a method list, or DivideMix with its warm-up)
            # shellcheck disable=SC2086
            sweep $methods --noise sym,asym --rates 0.3 --clean --seeds "$seed" --out "$RUNS"
        done
    done
    sweep --methods baseline,lanet,nla --noise sym --rates 0.2 --imbalance 10 --seeds 0,1,2 --out "$IMBALANCED"
    for seed in 0 1 2; do
        sweep --methods "$TABLE1" --noise sym,asym --rates 0.1,0.2 --seeds "$seed" --out "$RUNS"
    done
fi
[ -d "$RUNS/synthfer" ] || exit 0

# cpu-face-56 is synthfer's default profile, so the runs carry the plain method names.
source "$(dirname "$0")/draw-tables.sh"
draw_tables "$RUNS/synthfer" "$OUT" "$METHODS" last best last5 val
if [ -d "$IMBALANCED/synthfer" ]; then
    # accuracy with mean class accuracy beside it (an imbalance table's companion column)
    mkdir -p "$OUT/imbalance"
    for fmt in markdown:md latex:tex csv:csv; do
        fer-bench table --results "$IMBALANCED/synthfer" --stat last --format "${fmt%%:*}" \
            --out "$OUT/imbalance/table-last.${fmt##*:}"
    done
fi

mkdir -p "$OUT/figures"
fer-bench plot curves --results "$RUNS/synthfer" --methods "$METHODS" --out "$OUT/figures/accuracy-vs-noise"
fer-bench plot memorisation --results "$RUNS/synthfer" --methods "$METHODS" --out "$OUT/figures/memorisation"
fer-bench plot mechanisms --results "$RUNS/synthfer" --methods "$METHODS" --out "$OUT/figures/mechanisms"
