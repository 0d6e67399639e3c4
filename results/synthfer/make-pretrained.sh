#!/usr/bin/env bash
# The synthfer reference benchmark in the papers' protocol: every method fine-tuned from the backbone
# pretrained on synthfer identities (--profile cpu-face: the cpu profile plus --pretrained synthfer-id,
# the checkpoint shipped in fer_bench/models/weights/, which `fer-bench pretrain` reproduces), then every
# table and figure, in results/synthfer/pretrained/ beside the from-scratch benchmark (make.sh).
# Run from the repository root. The runs go to $RUNS (default results/synthfer/pretrained/runs; .gitignore
# keeps checkpoints and label files out). A finished run is skipped. SWEEP=0 only redraws tables and figures.
set -euo pipefail
RUNS="${RUNS:-results/synthfer/pretrained/runs}"
OUT="${OUT:-results/synthfer/pretrained}"
METHODS="${METHODS:-baseline,scn,rul,eac,lanet}"
PROFILE=cpu-face

# The MS-Celeb step, once, on the shipped record's thread count (the bytes depend on it): its sha256
# matches the shipped file's (PRETRAIN=0 skips it; the runs use the shipped file).
if [ "${PRETRAIN:-1}" != 0 ]; then
    mkdir -p "$OUT"
    read -r THREADS SHIPPED_SHA < <(python -c "from fer_bench.models.pretrained import SYNTHFER_ID_FILE as f, \
checkpoint_record; r = checkpoint_record(f); print(r['torch_threads'], r['sha256'][:16])")
    OMP_NUM_THREADS="$THREADS" fer-bench pretrain --seed 0 --out "$OUT/synthfer-id-seed0.pth" --quiet | tee "$OUT/pretrain.txt"
    echo "shipped sha256 $SHIPPED_SHA..."
fi

if [ "${SWEEP:-1}" != 0 ]; then
    fer-bench sweep --methods "$METHODS" --datasets synthfer --noise sym,asym --rates 0.1,0.2,0.3 \
        --seeds 0,1,2 --clean --profile "$PROFILE" --jobs 2 --out "$RUNS" --quiet \
        || echo "some runs failed; the tables use the finished ones"
fi

# cpu-face was synthfer's default profile when these runs were made, so they carry the plain method names
# (and `--profile cpu-face` finds them under those names).
source "$(dirname "$0")/draw-tables.sh"
draw_tables "$RUNS/synthfer" "$OUT" "$METHODS" last best last5 val

mkdir -p "$OUT/figures"
fer-bench plot curves --results "$RUNS/synthfer" --methods "$METHODS" --out "$OUT/figures/accuracy-vs-noise"
fer-bench plot curves --results "$RUNS/synthfer" --methods "$METHODS" --stat val --out "$OUT/figures/accuracy-vs-noise-val"
fer-bench plot memorisation --results "$RUNS/synthfer" --methods "$METHODS" --out "$OUT/figures/memorisation"
GALLERY_RUN="$RUNS/synthfer/sym-0.3/lanet/seed0"
if [ -f "$GALLERY_RUN/label_distributions.csv" ]; then
    fer-bench plot gallery "$GALLERY_RUN" --ambiguous --out "$OUT/figures/gallery-lanet-sym-0.3"
fi
fer-bench plot confusion "$RUNS/synthfer/sym-0.3/lanet/seed0" --normalise --out "$OUT/figures/confusion-lanet-sym-0.3"
fer-bench plot transition "$RUNS/synthfer/asym-0.3/lanet/seed0" --out "$OUT/figures/transition-asym-0.3"
