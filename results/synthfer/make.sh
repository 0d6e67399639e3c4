#!/usr/bin/env bash
# The synthfer reference benchmark: every run, then every table and figure in this folder.
# Run from the repository root. The runs go to $RUNS (default results/synthfer/runs, the committed
# records: config, result, metrics, noise and environment records, user-study caches; .gitignore keeps
# checkpoints and label files out). A finished run is skipped, so on the committed records this only
# redraws the tables and figures. SWEEP=0 skips the sweep (e.g. while another process is running it).
set -euo pipefail
RUNS="${RUNS:-results/synthfer/runs}"
OUT=results/synthfer
METHODS=baseline,scn,rul,eac,lanet
# From scratch: synthfer's cpu profile, not its default (cpu-face, the papers' protocol: make-pretrained.sh).
PROFILE=cpu

if [ "${SWEEP:-1}" != 0 ]; then
    fer-bench sweep --methods "$METHODS" --datasets synthfer --noise sym,asym --rates 0.1,0.2,0.3 \
        --seeds 0,1,2 --clean --profile "$PROFILE" --jobs 2 --out "$RUNS" --quiet \
        || echo "some runs failed; the tables use the finished ones"
    # LA-Net's grid search (one hyper-parameter at a time, as in its supplementary Fig. 1), sym 30%, seed 0
    for grid in alpha=0,0.5,2 beta=0,0.05,0.2; do
        fer-bench sweep --methods lanet --datasets synthfer --noise sym --rates 0.3 --seeds 0 --grid "$grid" \
            --profile "$PROFILE" --jobs 2 --out "$RUNS" --quiet || echo "some grid runs failed"
    done
fi

# The from-scratch runs predate the noisy validation split, so they have no `val` (it would be n/a).
source "$(dirname "$0")/draw-tables.sh"
TABLE_METHODS=$(echo "$METHODS" | sed "s/,/+profile=$PROFILE,/g; s/\$/+profile=$PROFILE/")
draw_tables "$RUNS/synthfer" "$OUT" "$TABLE_METHODS" last best last5

mkdir -p "$OUT/figures"
fer-bench plot curves --results "$RUNS/synthfer" --out "$OUT/figures/accuracy-vs-noise"
fer-bench plot grid --results "$RUNS/synthfer" --method lanet --out "$OUT/figures/lanet-grid"
VARIANT="lanet+profile=$PROFILE"
GALLERY_RUN="$RUNS/synthfer/sym-0.3/$VARIANT/seed0"
# The run's labels come back from its noise record, but LA-Net's label distributions only from the
# run itself (label files are not committed), so the committed gallery stays until it is trained again.
if [ -f "$GALLERY_RUN/label_distributions.csv" ]; then
    fer-bench plot gallery "$GALLERY_RUN" --ambiguous --out "$OUT/figures/gallery-lanet-sym-0.3"
else
    echo "kept figures/gallery-lanet-sym-0.3: $GALLERY_RUN has no label_distributions.csv (train it again to redraw)"
fi
fer-bench plot confusion "$RUNS/synthfer/sym-0.3/$VARIANT/seed0" --normalise --out "$OUT/figures/confusion-lanet-sym-0.3"
fer-bench plot transition "$RUNS/synthfer/asym-0.3/$VARIANT/seed0" --out "$OUT/figures/transition-asym-0.3"
