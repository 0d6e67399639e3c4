# Sourced by make.sh and make-pretrained.sh: one benchmark's tables and user study, so both benchmarks
# are drawn by the same commands.
# draw_tables RUNS OUT METHODS STAT...: `fer-bench table` per statistic and `fer-bench userstudy`, each
# in Markdown, LaTeX and CSV, into OUT/table-<stat>.* and OUT/userstudy.*.
draw_tables() {
    local runs=$1 out=$2 methods=$3 stat fmt
    shift 3
    for stat in "$@"; do
        for fmt in markdown:md latex:tex csv:csv; do
            fer-bench table --results "$runs" --methods "$methods" --stat "$stat" \
                --format "${fmt%%:*}" --out "$out/table-$stat.${fmt##*:}"
        done
    done
    for fmt in markdown:md latex:tex csv:csv; do
        fer-bench userstudy --results "$runs" --methods "$methods" --format "${fmt%%:*}" --out "$out/userstudy.${fmt##*:}"
    done
}
