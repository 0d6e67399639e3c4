#!/usr/bin/env bash
# The cost of each candidate profile on two cores, as CRITERIA.md defines it: one thread per run, two runs
# side by side. For each candidate and method, two identical one-epoch runs train at once (on the real
# synthfer, into a scratch directory); a run's cost is its epoch's wall time (training, evaluation,
# checkpoint) times the candidate's epochs. Run it on an otherwise idle machine, from the repository root:
#   results/synthfer/protocol/cost.sh > results/synthfer/protocol/cost.json
# Uses the candidates of search.sh (CANDIDATES, same variable names) and FER_BENCH_CODE like it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export FER_BENCH_THREADS=1 FER_BENCH_DATA="${FER_BENCH_DATA:-$PWD/datasets}"
if [ -n "${FER_BENCH_CODE:-}" ]; then export PYTHONPATH="$FER_BENCH_CODE"; cd "$FER_BENCH_CODE"; fi
source <(sed -n '/^declare -A CANDIDATE=(/,/^)/p' "$here/search.sh")
METHODS="${METHODS:-baseline scn rul eac lanet}"
EPOCHS="${EPOCHS:-15}"
echo "{"
first=1
for name in "${!CANDIDATE[@]}"; do
    total=0; parts=""
    for method in $METHODS; do
        for side in a b; do
            # shellcheck disable=SC2086
            python -m fer_bench.cli run --method "$method" --noise sym --rate 0.3 --profile cpu-face \
                ${CANDIDATE[$name]} --set epochs=1 --out "$scratch/$name-$side" --quiet --force >/dev/null &
        done
        wait
        secs=$(python -c "import json,glob; print(max(json.load(open(f))['wall_seconds'] for f in \
glob.glob('$scratch/$name-*/**/$method*/seed0/result.json', recursive=True)))")
        parts="$parts\"$method\": $(python -c "print(round($secs * $EPOCHS))"), "
        total=$(python -c "print($total + $secs * $EPOCHS)")
    done
    n=$(echo $METHODS | wc -w)
    [ $first = 1 ] || echo ","
    first=0
    printf '  "%s": {%s"seconds_per_run": %s}' "$name" "$parts" "$(python -c "print(round($total / $n))")"
done
echo
echo "}"
