"""What the documentation shows that code or committed records decide: generated, never typed.

Every function here returns Markdown. The documentation site gets it at build time: a page holds a
marker ``<!-- gen: NAME ARGS -->`` and the site's hook (``docs/_scripts/hooks.py``) puts the text of
``GENERATORS[NAME](ARGS)`` in its place, so the built site always shows what today's code and today's
committed records say. README.md is read on GitHub, where no hook runs, so its generated parts are
written into it between ``<!-- gen:NAME:start -->`` and ``<!-- gen:NAME:end -->`` by

    python docs/_scripts/generate.py --write       # rewrite README.md's generated blocks
    python docs/_scripts/generate.py --check       # exit 1 if one of them is stale (the tests do this)
    python docs/_scripts/generate.py --write --slow   # also docs/_generated/: outputs on the full synthfer

Measured outputs come from committed run records (``results/synthfer/...``): the quick start's
summary is what ``fer-bench run`` prints for the committed run of that command, rendered by the
command's own :func:`fer_bench.cli.training.run_summary`. The machine those records were made on is
read from their ``env.json`` and stated once, in :func:`machine`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "results"
PRETRAINED = "results/synthfer/pretrained"
FROM_SCRATCH = "results/synthfer"
DEFAULT_PROFILE = "results/synthfer/cpu-face-56"  # the benchmark under synthfer's default profile
# The committed records of the quick start's and the tutorial's commands (synthfer's default profile).
QUICKSTART_RUN = f"{DEFAULT_PROFILE}/runs/synthfer/asym-0.2/lanet/seed0"
BASELINE_RUN = f"{DEFAULT_PROFILE}/runs/synthfer/asym-0.2/baseline/seed0"
# The order statistics' tables are shown in; any other committed table-<stat>.md follows them.
STAT_ORDER = ("last", "val", "best", "last5")
STAT_TITLES = {
    "last": "the last epoch",
    "val": "the epoch chosen on the noisy validation split (`val`)",
    "best": "the best epoch (optimistic: chosen on the test set)",
    "last5": "the mean of the last 5 epochs (EAC's statistic)",
}
SETTING_TITLES = {"none": "clean", "sym": "sym", "asym": "asym"}

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _rel(path: str | Path) -> Path:
    return REPO / path


# --- measured outputs, from committed records ------------------------------------------------------------

def run_output(record: str = QUICKSTART_RUN) -> str:
    """What ``fer-bench run`` prints at the end for a committed run, as a user running the same
    command gets it: the run directory is shown where the command puts it (``results/runs/...``)."""
    from fer_bench.cli.training import run_summary

    run_dir = _rel(record)
    result = json.loads((run_dir / "result.json").read_text())
    runs_root = next(p for p in run_dir.parents if p.name == "runs")
    result["run_dir"] = str(Path("results/runs") / run_dir.relative_to(runs_root))
    return run_summary(result)


def run_command(record: str = QUICKSTART_RUN) -> str:
    """The shortest ``fer-bench run`` command that makes the committed run ``record`` (default options
    left out), read from its ``config.json``."""
    config = json.loads((_rel(record) / "config.json").read_text())
    args = ["fer-bench", "run", "--method", config["method"]]
    noise = config.get("noise", {})
    if noise.get("model", "none") != "none":
        args += ["--noise", noise["model"], "--rate", f"{noise['rate']:g}"]
    if config.get("seed", 0):
        args += ["--seed", str(config["seed"])]
    return shlex.join(args)


def machine(records: Iterable[str] = (QUICKSTART_RUN, BASELINE_RUN)) -> str:
    """One sentence on where the measured outputs come from, read from the records' ``env.json``."""
    envs = [json.loads((_rel(r) / "env.json").read_text()) for r in records]
    torch_versions = sorted({e.get("torch", "?") for e in envs})
    threads = sorted({str(e.get("torch_threads", "?")) for e in envs})
    cores = sorted({str(e.get("cpu_count", "?")) for e in envs})
    return (f"Measured outputs on these pages are those of the committed run records of the synthfer "
            f"benchmarks (`{DEFAULT_PROFILE}/runs/`, `{PRETRAINED}/runs/`), rendered by today's code. They were trained on a "
            f"{'/'.join(cores)}-core AMD EPYC virtual machine without a GPU (torch {', '.join(torch_versions)} "
            f"on the CPU), {' or '.join(threads)} torch thread{'s' if threads != ['1'] else ''} per run and two runs at a time, so the "
            f"times in them are those of a shared machine: an idle one trains faster. On a CPU the same seed "
            f"and thread count give the same numbers; another thread count changes the last digits.")


def pretrain_output() -> str:
    """What ``fer-bench pretrain --out fer_bench/models/weights/synthfer-id.pth`` printed when it made the
    shipped backbone, rendered from the shipped record by the command's own summary."""
    from fer_bench.models.pretrained import SYNTHFER_ID_FILE, checkpoint_record
    from fer_bench.pretrain import format_summary

    record = checkpoint_record(SYNTHFER_ID_FILE)
    return f"$ fer-bench pretrain --out fer_bench/models/weights/synthfer-id.pth\n" + format_summary(
        record, Path("fer_bench/models/weights/synthfer-id.pth"))


def record_files(record: str = QUICKSTART_RUN) -> str:
    """``ls`` of a committed run directory (checkpoints and label files are not committed)."""
    return "\n".join(sorted(p.name for p in _rel(record).iterdir()))


def metrics_head(record: str = QUICKSTART_RUN, rows: int = 2, columns: int = 8) -> str:
    """The first rows and columns of a committed run's ``metrics.csv``, numbers rounded for reading."""
    with open(_rel(record) / "metrics.csv", newline="") as f:
        table = list(csv.reader(f))

    def cell(value: str) -> str:
        try:
            number = float(value)
        except ValueError:
            return value
        return value if number.is_integer() else f"{number:.4g}"

    return "\n".join(",".join(cell(v) for v in row[:columns]) for row in table[:rows + 1])


def metrics_table(record: str = QUICKSTART_RUN,
                  columns: str = "epoch,train_acc_noisy,test_acc,val_acc,flipped_memorised,flipped_corrected") -> str:
    """Some columns of a committed run's ``metrics.csv``, one row per epoch (fractions as percentages)."""
    with open(_rel(record) / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    names = columns.split(",")

    def cell(column: str, value: str) -> str:
        if column == "epoch" or value in ("", "nan"):
            return value
        return f"{float(value):.1%}"

    lines = ["| " + " | ".join(f"`{c}`" for c in names) + " |", "|" + "--:|" * len(names)]
    lines += ["| " + " | ".join(cell(c, row.get(c, "")) for c in names) + " |" for row in rows]
    return "\n".join(lines)


def _last_epochs(benchmark: str) -> dict[tuple[str, str], list[dict[str, str]]]:
    """Per (setting, method): the last ``metrics.csv`` row of each finished default run (one a seed, in seed
    order). A run still training is no run of the benchmark, and its last row is no last epoch."""
    from fer_bench.report.collect import collect_runs

    runs = collect_runs(_rel(benchmark) / "runs")
    rows: dict[tuple[str, str], list[dict[str, str]]] = {}
    if runs.empty:
        return rows
    for r in runs[runs["is_default"]].sort_values("seed").itertuples(index=False):
        with open(r.record.dir.metrics_file, newline="") as f:
            rows.setdefault((r.setting, r.method), []).append(list(csv.DictReader(f))[-1])
    return rows


def memorisation_table(benchmark: str = PRETRAINED, settings: str = "sym-0.3,asym-0.3") -> str:
    """The memorisation diagnostics at the last epoch, mean over the seeds of each committed default run
    (percent): a row per setting and method."""
    columns = ("flipped_memorised", "flipped_corrected", "unflipped_correct", "relabel_restored")
    lines = ["| setting | method | seeds | " + " | ".join(f"`{c}`" for c in columns) + " |",
             "|---|---|--:|" + "--:|" * len(columns)]
    last_epochs = _last_epochs(benchmark)
    for setting in settings.split(","):
        for method, title in _method_names().items():
            last = last_epochs.get((setting, method), [])
            if not last:
                continue

            def mean(column: str) -> str:
                values = [float(row[column]) for row in last if row.get(column) not in (None, "", "nan")]
                return f"{100 * sum(values) / len(values):.1f}" if len(values) == len(last) else "n/a"

            lines.append(f"| {setting} | {title} | {len(last)} | " + " | ".join(mean(c) for c in columns) + " |")
    return "\n".join(lines)


BENCHMARK_SWEEP = ("sweep --methods baseline,scn,rul,eac,lanet --datasets synthfer --noise sym,asym "
                   "--rates 0.1,0.2,0.3 --seeds 0,1,2 --clean --jobs 2 --profile cpu-face")


def sweep_dry_run(out: str = f"{PRETRAINED}/runs", tail: int = 4) -> str:
    """The papers' protocol benchmark's sweep with ``--out`` at its committed records and ``--dry-run``:
    the last ``tail`` lines of what today's code says about them."""
    from click.testing import CliRunner

    from fer_bench.cli import main

    args = [*shlex.split(BENCHMARK_SWEEP), "--out", out, "--dry-run"]
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        result = CliRunner().invoke(main, args, catch_exceptions=False)
    finally:
        os.chdir(cwd)
    lines = result.stdout.rstrip().splitlines()
    return "\n".join((["..."] if len(lines) > tail else []) + lines[-tail:])


# --- results tables and figures, from committed files -------------------------------------------------------

def _read_csv(path: Path) -> list[dict[str, str]]:
    """A committed CSV table's rows; a profile every row shares is left out of the method's name
    (``baseline+profile=cpu`` is ``baseline`` in a table whose caption names the profile)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    profiles = {m.group(0) for r in rows for m in [re.search(r"\+profile=[\w-]+", r.get("method", ""))] if m}
    if len(profiles) == 1:
        shared = profiles.pop()
        for row in rows:
            row["method"] = row["method"].replace(shared, "")
    return rows


def _setting(row: dict[str, str]) -> str:
    noise, rate = row["noise"], float(row["rate"])
    return "clean" if noise == "none" or rate == 0 else f"{SETTING_TITLES.get(noise, noise)} {rate:.0%}"


TABLE_1 = ("baseline", "scn", "rul", "eac", "lanet")  # the methods of LA-Net's Table 1, in its order


def _method_names() -> dict[str, str]:
    """Display names of the built-in methods: LA-Net's Table 1's first, in its order, then the others."""
    from fer_bench.registry import METHODS
    from fer_bench.report.style import method_title as display_name

    built_in = [name for name, _, source in METHODS.listing() if source == "built-in"]
    return {m: display_name(m) for m in [*TABLE_1, *(m for m in built_in if m not in TABLE_1)]}


def committed_runs(benchmark: str) -> str:
    """How many finished runs (seeds) each setting and method of a benchmark has committed: a benchmark that
    is trained across sessions shows what its tables rest on."""
    from fer_bench.report.tables import setting_order
    from fer_bench.runs import collect

    counts: dict[tuple[str, str], int] = {}
    for record in collect(_rel(benchmark) / "runs"):
        key = (record.setting, record.id.method)
        counts[key] = counts.get(key, 0) + 1
    settings = [s for s, _, _ in setting_order(s for s, _ in counts)]
    names = {m: t for m, t in _method_names().items() if any(m == method for _, method in counts)}
    lines = ["| method | " + " | ".join(settings) + " |", "|---|" + ":-:|" * len(settings)]
    lines += [f"| {title} | " + " | ".join(str(counts.get((s, m), "")) for s in settings) + " |"
              for m, title in names.items()]
    return "\n".join(lines) + f"\n\n{sum(counts.values())} runs in all."


def mechanism_table(benchmark: str, settings: str = "sym-0.3,asym-0.3") -> str:
    """Each method's mechanism diagnostics (its ``mech_*`` columns) at the last epoch, mean over the seeds
    of each committed run: a row per setting and method that reports any."""
    lines = ["| setting | method | seeds | diagnostics at the last epoch (mean over seeds) |", "|---|---|--:|---|"]
    last_epochs = _last_epochs(benchmark)
    for setting in settings.split(","):
        for method, title in _method_names().items():
            last = last_epochs.get((setting, method), [])
            columns = [c for c in (last[0] if last else {}) if c.startswith("mech_")]
            if not columns:
                continue
            values = []
            for c in columns:
                seen = [float(row[c]) for row in last if row.get(c) not in (None, "", "nan")]
                values.append(f"{c.removeprefix('mech_')} {sum(seen) / len(seen):.3g}" if seen else
                              f"{c.removeprefix('mech_')} n/a")
            lines.append(f"| {setting} | {title} | {len(last)} | " + ", ".join(values) + " |")
    return "\n".join(lines)


def headline_table(benchmark: str = PRETRAINED, stat: str = "last", settings: Optional[str] = None) -> str:
    """The benchmark in one screen: a row per method, a column per noise setting (mean ± std over
    seeds, bold where the committed table marks it: the best mean and every entry not significantly
    below it; with fewer than 2 seeds only the best mean). A cell with fewer seeds than the table's most
    says how many. ``settings`` (``clean,sym-0.3,...``) keeps those columns only."""
    from fer_bench.report.style import method_title as display_name
    from fer_bench.runs.identity import setting_name

    rows = _read_csv(_rel(benchmark) / f"table-{stat}.csv")
    if settings is not None:
        rows = [r for r in rows if setting_name(r["noise"], float(r["rate"])) in settings.split(",")]
    columns: list[str] = []
    methods: list[str] = []
    cells: dict[tuple[str, str], str] = {}
    most = max((int(row["n"]) for row in rows), default=0)
    for row in rows:
        setting, method = _setting(row), row["method"]
        columns += [setting] if setting not in columns else []
        methods += [method] if method not in methods else []
        # one seed has no std (the CSV leaves it empty)
        text = f"{float(row['mean']):.1f}" + (f" ± {float(row['std']):.1f}" if row.get("std") else "")
        text = f"**{text}**" if row.get("tied_with_best") == "True" else text
        n = int(row["n"])
        cells[(method, setting)] = text + (f" ({n} seed{'s' * (n > 1)})" if n < most else "")
    lines = ["| method | " + " | ".join(columns) + " |", "|---|" + ":-:|" * len(columns)]
    lines += [f"| {display_name(m)} | " + " | ".join(cells.get((m, c), "") for c in columns) + " |" for m in methods]
    return "\n".join(lines)


def blocks_vs_paper(benchmark: str = PRETRAINED) -> str:
    """Each noise block of a benchmark's last-epoch table: the ranking on synthfer and each method's gap
    to the Baseline, beside the same gaps in LA-Net's Table 1 (symmetric) and its supplementary
    Table 1 (asymmetric) on RAF-DB (:mod:`fer_bench.report.paper`)."""
    from fer_bench.report import paper

    names = _method_names()
    rows = _read_csv(_rel(benchmark) / "table-last.csv")
    blocks: dict[tuple[str, float], dict[str, float]] = {}
    for row in rows:
        blocks.setdefault((row["noise"], float(row["rate"])), {})[row["method"]] = float(row["mean"])
    others = TABLE_1[1:]
    lines = ["| block | ranking on synthfer | " + " / ".join(names[m] for m in others)
             + " minus Baseline: synthfer | RAF-DB (paper) |", "|---|---|:-:|:-:|"]
    for (noise, rate), means in blocks.items():
        title = "clean" if noise == "none" else f"{'symmetric' if noise == 'sym' else 'asymmetric'} {rate:.0%}"
        ranking = " > ".join(names[m] for m in sorted(means, key=lambda m: -means[m]))
        ours = " / ".join(f"{means[m] - means['baseline']:+.1f}" if m in means and "baseline" in means else "n/a"
                          for m in others)
        table = paper.SYMMETRIC if noise == "sym" else paper.ASYMMETRIC if noise == "asym" else {}
        published = [table.get((rate, m, "rafdb")) for m in ("baseline", *others)]
        theirs = ("n/a" if any(p is None for p in published)
                  else " / ".join(f"{p[0] - published[0][0]:+.1f}" for p in published[1:]))
        lines.append(f"| {title} | {ranking} | {ours} | {theirs} |")
    return "\n".join(lines)


def profile_decision() -> str:
    """The runs that decided synthfer's default profile, under ``cpu`` (from scratch) and ``cpu-face``
    (the synthfer-id start), from the two committed benchmarks' last-epoch CSV tables."""
    names = _method_names()
    pick = [("baseline", "none"), ("baseline", "sym"), ("eac", "none"), ("eac", "sym"), ("rul", "sym"),
            ("lanet", "sym")]

    def cells(benchmark: str) -> dict[tuple[str, str], str]:
        out = {}
        for row in _read_csv(_rel(benchmark) / "table-last.csv"):
            if row["noise"] == "none" or float(row["rate"]) == 0.3:
                out[(row["method"], row["noise"])] = f"{float(row['mean']):.2f} ± {float(row['std']):.2f} ({row['n']})"
        return out

    cpu, face = cells(FROM_SCRATCH), cells(PRETRAINED)
    lines = ["| run | `cpu` (from scratch) | `cpu-face` (synthfer-id start) |", "|---|:-:|:-:|"]
    for method, noise in pick:
        label = f"{names[method]}, {'clean' if noise == 'none' else 'symmetric 30%'}"
        lines.append(f"| {label} | {cpu.get((method, noise), 'n/a')} | {face.get((method, noise), 'n/a')} |")
    return "\n".join(lines)


def _table_files(folder: Path) -> list[Path]:
    tables = sorted(folder.glob("table-*.md"))
    order = {s: i for i, s in enumerate(STAT_ORDER)}
    return sorted(tables, key=lambda p: (order.get(p.stem[len("table-"):], len(order)), p.name))


def benchmark_folders() -> list[Path]:
    """Every committed benchmark: a folder under ``results/`` holding ``table-*.md`` files."""
    return sorted({p.parent for p in RESULTS.rglob("table-*.md") if "runs" not in p.relative_to(RESULTS).parts})


def report_dir(folder: Path) -> str:
    """Where a committed benchmark's ``fer-bench report`` lies in the built site (hooks.on_post_build)."""
    return "report/" + folder.relative_to(RESULTS).as_posix().replace("/", "-")


def asset_uri(path: Path) -> str:
    """Where a committed results file lies in the built site."""
    return "assets/" + path.relative_to(REPO).as_posix()


def _link(page: str, target: str) -> str:
    return os.path.relpath(target, os.path.dirname(page) or ".").replace(os.sep, "/")


def _downloads(page: str, stem: Path) -> str:
    found = [stem.with_suffix(s) for s in (".tex", ".csv") if stem.with_suffix(s).is_file()]
    labels = {".tex": "LaTeX", ".csv": "CSV"}
    return " · ".join(f"[{labels[p.suffix]}]({_link(page, asset_uri(p))})" for p in found)


FIGURE_TITLES = {
    "accuracy-vs-noise": "Accuracy against the noise rate (last epoch)",
    "accuracy-vs-noise-val": "Accuracy against the noise rate (`val`: the epoch the noisy validation split chooses)",
    "memorisation": "Memorised and corrected flipped training images, per epoch",
    "lanet-grid": "LA-Net's grid search over α and β",
    "gallery-lanet-sym-0.3": "Ambiguous training images: noisy label, votes and LA-Net's learned distribution (sym 30%)",
    "confusion-lanet-sym-0.3": "LA-Net's confusion matrix on the clean test set (sym 30%)",
    "transition-asym-0.3": "A realised noise transition matrix (asym 30%)",
}


def _figure_title(path: Path) -> str:
    return FIGURE_TITLES.get(path.stem) or path.stem.replace("-", " ").capitalize()


def benchmark(folder: str, page: str = "results/index.md", heading: str = "###",
              tables: bool = True, figures: bool = True) -> str:
    """Every committed table (``table-*.md``, ``userstudy.md``) and figure (``figures/*.png``) of one
    benchmark folder, in that order, each with where it comes from and its other formats; a table or
    figure committed later appears here without an edit."""
    root = _rel(folder)
    out: list[str] = []
    if tables:
        for table in _table_files(root):
            stat = table.stem[len("table-"):]
            out += [f"{heading} Clean-test accuracy at {STAT_TITLES.get(stat, f'`{stat}`')}", "",
                    f"`{table.relative_to(REPO).as_posix()}` ({_downloads(page, table.with_suffix(''))})", "",
                    table.read_text().strip(), ""]
        study = root / "userstudy.md"
        if study.is_file():
            out += [f"{heading} User study", "",
                    f"`{study.relative_to(REPO).as_posix()}` ({_downloads(page, study.with_suffix(''))})", "",
                    study.read_text().strip(), ""]
    if figures:
        order = list(FIGURE_TITLES)
        for png in sorted((root / "figures").glob("*.png"),
                          key=lambda p: (order.index(p.stem) if p.stem in order else len(order), p.name)):
            pdf = png.with_suffix(".pdf")
            links = f"[PNG]({_link(page, asset_uri(png))})" + (
                f" · [PDF]({_link(page, asset_uri(pdf))})" if pdf.is_file() else "")
            out += [f"{heading} {_figure_title(png)}", "",
                    f"`{png.relative_to(REPO).as_posix()}` ({links})", "",
                    f"![{_figure_title(png).replace('`', '')}]({_link(page, asset_uri(png))})", ""]
    return "\n".join(out).strip()


def results_table(path: str) -> str:
    """One committed Markdown table, as committed."""
    return _rel(path).read_text().strip()


def figure(path: str, alt: str, page: str = "index.md") -> str:
    """A committed figure, shown from the site's copy."""
    return f"![{alt.replace('_', ' ')}]({_link(page, asset_uri(_rel(path)))})"


def benchmarks(page: str = "results/index.md") -> str:
    """The committed benchmarks: one line each, with its page and its HTML report (built by the site's hook:
    a raw link, since the report is no page of the site)."""
    lines = ["| benchmark | tables | figures | runs | browse every run |", "|---|:-:|:-:|:-:|:-:|"]
    for folder in benchmark_folders():
        rel = folder.relative_to(REPO).as_posix()
        n_runs = sum(1 for _ in (folder / "runs").rglob("result.json")) if (folder / "runs").is_dir() else 0
        target = results_page(folder)
        report = (f'<a href="{_link(page, report_dir(folder) + "/index.html")}">report</a>'
                  if (folder / "runs").is_dir() else "")
        lines.append(f"| [`{rel}`]({_link(page, target)}) | {len(_table_files(folder))} "
                     f"| {len(list((folder / 'figures').glob('*.png')))} | {n_runs} | {report} |")
    return "\n".join(lines)


HAND_WRITTEN_RESULTS = {DEFAULT_PROFILE: "results/cpu-face-56.md", PRETRAINED: "results/pretrained.md",
                        FROM_SCRATCH: "results/from-scratch.md"}


def results_page(folder: Path) -> str:
    """The site page of a benchmark folder: hand-written for the known ones, generated for any other."""
    rel = folder.relative_to(REPO).as_posix()
    return HAND_WRITTEN_RESULTS.get(rel, "results/" + rel[len("results/"):].replace("/", "-") + ".md")


def generated_results_page(folder: Path) -> str:
    """The page of a benchmark folder that has no hand-written page: its README, then everything in it."""
    rel = folder.relative_to(REPO).as_posix()
    page = results_page(folder)
    readme = folder / "README.md"
    intro = readme.read_text() if readme.is_file() else f"# `{rel}`\n"
    # the folder's README links files beside it; on the site they are under assets/
    intro = re.sub(r"\]\((?!https?:|#)([^)]+)\)", lambda m: f"]({_link(page, asset_uri(folder / m.group(1)))})"
                   if (folder / m.group(1)).is_file() else m.group(0), intro)
    if not intro.lstrip().startswith("# "):
        intro = f"# `{rel}`\n\n" + intro
    return intro.rstrip() + "\n\n## Tables and figures\n\n" + benchmark(rel, page) + "\n"


# --- reference generated from the code ----------------------------------------------------------------------

def _value(value: Any) -> str:
    from fer_bench.methods.card import value_text

    return f"`{value_text(value)}`"


def profiles() -> str:
    """The profiles (``fer_bench.engine.recipe.PROFILES``): what each changes in a method's recipe, and
    which datasets default to it."""
    from fer_bench.engine.recipe import PROFILES
    from fer_bench.registry import DATASETS

    defaults: dict[str, list[str]] = {}
    for entry in DATASETS.entries():
        defaults.setdefault(getattr(entry.obj, "default_profile", "paper"), []).append(f"`{entry.name}`")
    lines = ["| profile | default of | what it sets (on top of each method's recipe) |", "|---|---|---|"]
    for name, overrides in PROFILES.items():
        changes = ", ".join(f"`{k}={_value(v)[1:-1]}`" for k, v in overrides.items()) or "nothing: the recipe as published"
        lines.append(f"| `{name}` | {', '.join(defaults.get(name, [])) or '-'} | {changes} |")
    return "\n".join(lines)


def recipe_keys() -> str:
    """Every recipe key: the engine's default, what each profile sets, and its help."""
    from fer_bench.engine.recipe import DEFAULTS, PROFILES, RECIPE_HELP, UNIFIED

    names = [p for p in PROFILES if PROFILES[p]]
    lines = ["| key | default | `unified` | " + " | ".join(f"`{p}`" for p in names) + " | meaning |",
             "|---|---|---|" + "---|" * len(names) + "---|"]
    for key, default in DEFAULTS.items():
        per = [_value(PROFILES[p][key]) if key in PROFILES[p] else "" for p in names]
        unified = _value(UNIFIED[key]) if key in UNIFIED else ""
        lines.append(f"| `{key}` | {_value(default)} | {unified} | " + " | ".join(per)
                     + f" | {RECIPE_HELP.get(key, '')} |")
    return "\n".join(lines)


def method_cards() -> str:
    """``fer-bench methods show NAME`` for every built-in method."""
    from fer_bench.methods.card import method_card
    from fer_bench.registry import METHODS

    out = []
    for entry in METHODS.entries():
        if entry.source != "built-in":
            continue
        out += [f"## `{entry.name}`", "", entry.description, "", "```text",
                f"$ fer-bench methods show {entry.name}", method_card(entry.name), "```", ""]
    return "\n".join(out).strip()


def listing(kind: str) -> str:
    """``fer-bench methods|noise|data list``, as a table of the built-in entries."""
    from fer_bench.registry import DATASETS, METHODS, NOISE_MODELS

    registry = {"methods": METHODS, "noise": NOISE_MODELS, "datasets": DATASETS}[kind]
    lines = ["| name | description |", "|---|---|"]
    lines += [f"| `{e.name}` | {e.description} |" for e in registry.entries() if e.source == "built-in"]
    return "\n".join(lines)


def loader_options() -> str:
    """Each registered dataset's loader options (``--data KEY=VALUE``): the keywords of its ``load``."""
    import inspect

    from fer_bench.registry import DATASETS

    lines = ["| dataset | options (`--data KEY=VALUE`), with their defaults |", "|---|---|"]
    for entry in DATASETS.entries():
        if entry.source != "built-in":
            continue
        params = [p for name, p in inspect.signature(entry.obj.load).parameters.items()
                  if name not in ("cls", "root", "progress") and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
        shown = ", ".join(f"`{p.name}={_value(p.default)[1:-1]}`" for p in params) or "none"
        lines.append(f"| `{entry.name}` | {shown} |")
    return "\n".join(lines)


def _literal_block(doc: str) -> list[str]:
    """The indented lines after the first ``::`` of a docstring."""
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.rstrip().endswith("::")) + 1
    block = []
    for line in lines[start:]:
        if line.strip() and not line.startswith("    "):
            break
        if line.strip():
            block.append(line.strip())
    return block


def run_files() -> str:
    """The files of a run directory, from :mod:`fer_bench.runs.directory`'s own description."""
    import fer_bench.runs.directory as directory

    lines = ["| file | content |", "|---|---|"]
    for line in _literal_block(directory.__doc__ or ""):
        name, _, what = line.partition(" ")
        lines.append(f"| `{name}` | {what.strip()} |")
    return "\n".join(lines)


# What each engine column of metrics.csv means; a method's own columns (its loss terms and counts) are
# named in its module. A column not listed here is still shown, as a method's or a diagnostic's.
METRICS_COLUMNS = {
    "epoch": "the epoch, from 1",
    "lr": "the learning rate at the epoch's end (first parameter group)",
    "train_loss": "the mean training loss",
    "train_acc_noisy": "training accuracy against the (noisy) labels trained on",
    "train_seconds": "seconds of training in the epoch",
    "images_per_s": "training throughput",
    "torch_threads": "the mean torch thread count of the epoch (the CPU thread policy)",
    "test_acc": "clean-test accuracy",
    "test_mean_class_acc": "clean-test mean class accuracy",
    "val_acc": "accuracy on the noisy validation split against its noisy labels (with a split)",
    "flipped_memorised": "share of the probed flipped training images predicted as their noisy label",
    "flipped_corrected": "share of them predicted as their clean label",
    "flipped_other": "share of them predicted as a third class",
    "unflipped_correct": "share of the probed unflipped training images predicted correctly",
    "relabel_restored": "of the labels the method rewrote so far, the share that now hold the clean label",
}
METRICS_PREFIXES = {"mech_": "a mechanism diagnostic (see *The protocol and profiles*)"}


def metrics_columns(record: str = QUICKSTART_RUN) -> str:
    """The columns of ``metrics.csv``, in the order of a committed LA-Net run's file."""
    with open(_rel(record) / "metrics.csv", newline="") as f:
        header = next(csv.reader(f))
    lines = ["| column | meaning |", "|---|---|"]
    for column in header:
        meaning = METRICS_COLUMNS.get(column) or next(
            (what for prefix, what in METRICS_PREFIXES.items() if column.startswith(prefix)),
            "the method's own per-epoch log (LA-Net: its loss terms `ce`, `kl`, `el`, `lm` and the share of "
            "`ambiguous` samples)")
        lines.append(f"| `{column}` | {meaning} |")
    return "\n".join(lines)


def result_fields(record: str = QUICKSTART_RUN) -> str:
    """The fields of ``result.json``, with their values in a committed run."""
    result = json.loads((_rel(record) / "result.json").read_text())

    def show(value: Any) -> str:
        if isinstance(value, dict):
            return "{" + ", ".join(list(value)[:6]) + (", ..." if len(value) > 6 else "") + "}"
        if isinstance(value, list):
            return f"list of {len(value)}"
        if isinstance(value, float):
            return f"{value:.4f}"
        return str(value)

    lines = ["| field | in the quick start's run |", "|---|---|"]
    lines += [f"| `{k}` | `{show(v)}` |" for k, v in result.items() if k != "run_dir"]
    return "\n".join(lines)


def _commands() -> list[tuple[str, Any]]:
    import click

    from fer_bench.cli import main

    out = []
    for name, command in sorted(main.commands.items()):
        out.append((name, command))
    return out


def commands() -> str:
    """One line per ``fer-bench`` command (a group lists its subcommands), from the click commands."""
    import click

    lines = ["| command | what it does |", "|---|---|"]
    for name, command in _commands():
        text = command.get_short_help_str(limit=200)
        if isinstance(command, click.Group):
            text += " (" + ", ".join(f"`{sub}`" for sub in command.commands) + ")"
        lines.append(f"| `fer-bench {name}` | {text} |")
    return "\n".join(lines)


def extras() -> str:
    """The optional extras of ``pyproject.toml``: ``pip install -e ".[NAME]"``."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = ["| extra | installs | for |", "|---|---|---|"]
    what = {"dlib": "`landmarks extract --backend dlib`, offline", "slurm": "`sweep --launcher slurm`",
            "tensorboard": "`--log tensorboard`", "wandb": "`--log wandb`", "onnx": "`export --format onnx`",
            "docs": "`mkdocs build` / `mkdocs serve` of this site", "test": "`pytest`"}
    for name, packages in project["optional-dependencies"].items():
        shown = ", ".join(p.split(">")[0].split("=")[0] for p in packages)
        lines.append(f"| `{name}` | {shown} | {what.get(name, '')} |")
    return "\n".join(lines)


# --- outputs that need the full synthfer: written into docs/_generated/ by --write --slow ----------------

GENERATED = REPO / "docs" / "_generated"


def _cli(args: list[str], cwd: Path) -> str:
    from click.testing import CliRunner

    from fer_bench.cli import main

    here = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, args, catch_exceptions=False)
    finally:
        os.chdir(here)
    if result.exit_code:
        raise RuntimeError(f"fer-bench {shlex.join(args)} exited {result.exit_code}: {result.output}")
    return result.stdout  # what the command prints; progress bars and notes go to stderr


def slow_outputs(workdir: Path) -> dict[str, str | bytes]:
    """Outputs of commands on the full synthfer (generated at the data root on first use, about a minute):
    ``fer-bench noise export`` of annotator and symmetric noise, and the ambiguity figure of both."""
    from fer_bench.datasets.synthfer.generate import META_FILE, generate
    from fer_bench.paths import data_root

    if not (data_root() / "synthfer" / META_FILE).is_file():  # generated first, so its messages are not shown
        generate(data_root() / "synthfer", progress=False)
    out: dict[str, str | bytes] = {}
    for model in ("annotator", "sym"):
        args = ["noise", "export", "--dataset", "synthfer", "--noise", model, "--rate", "0.2", "--noise-seed", "0",
                "--out", f"{model}.txt"]
        text = _cli(args, workdir)
        out[f"noise-export-{model}.txt"] = f"$ fer-bench {shlex.join(args)}\n{text.rstrip()}\n"
    _cli(["plot", "ambiguity", "annotator.txt.json", "sym.txt.json", "--out", "ambiguity"], workdir)
    out["ambiguity.png"] = (workdir / "ambiguity.png").read_bytes()
    return out


def write_slow_outputs() -> list[Path]:
    import tempfile

    GENERATED.mkdir(exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in slow_outputs(Path(tmp)).items():
            path = GENERATED / name
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
            written.append(path)
    return written


# --- what the hook and the command line use --------------------------------------------------------------

def code(text: str, lang: str = "text") -> str:
    return f"```{lang}\n{text}\n```"


GENERATORS: dict[str, Callable[..., str]] = {
    "run-output": lambda record=QUICKSTART_RUN, **_: code(run_output(record)),
    "run-command": lambda record=QUICKSTART_RUN, **_: code(run_command(record), "bash"),
    "machine": lambda **_: machine(),
    "pretrain-output": lambda **_: code(pretrain_output()),
    "record-files": lambda record=QUICKSTART_RUN, **_: code(record_files(record)),
    "metrics-head": lambda record=QUICKSTART_RUN, **_: code(metrics_head(record)),
    "metrics-table": lambda record=QUICKSTART_RUN, **kw: metrics_table(record, **{
        k: v for k, v in kw.items() if k == "columns"}),
    "memorisation-table": lambda benchmark=PRETRAINED, settings="sym-0.3,asym-0.3", **_: memorisation_table(
        benchmark, settings),
    "committed-runs": lambda benchmark=DEFAULT_PROFILE, **_: committed_runs(benchmark),
    "mechanism-table": lambda benchmark=DEFAULT_PROFILE, settings="sym-0.3,asym-0.3", **_: mechanism_table(
        benchmark, settings),
    "sweep-dry-run": lambda tail="4", **_: code(sweep_dry_run(tail=int(tail))),
    "headline-table": lambda benchmark=PRETRAINED, stat="last", settings=None, **_: headline_table(
        benchmark, stat, settings),
    "blocks-vs-paper": lambda benchmark=PRETRAINED, **_: blocks_vs_paper(benchmark),
    "profile-decision": lambda **_: profile_decision(),
    "benchmark": lambda folder, page="results/index.md", tables="yes", figures="yes", **_: benchmark(
        folder, page, tables=tables == "yes", figures=figures == "yes"),
    "benchmarks": lambda page="results/index.md", **_: benchmarks(page),
    "table": lambda path, **_: results_table(path),
    "figure": lambda path, alt="figure", page="index.md", **_: figure(path, alt, page),
    "profiles": lambda **_: profiles(),
    "recipe-keys": lambda **_: recipe_keys(),
    "method-cards": lambda **_: method_cards(),
    "listing": lambda kind, **_: listing(kind),
    "loader-options": lambda **_: loader_options(),
    "run-files": lambda **_: run_files(),
    "metrics-columns": lambda record=QUICKSTART_RUN, **_: metrics_columns(record),
    "result-fields": lambda record=QUICKSTART_RUN, **_: result_fields(record),
    "commands": lambda **_: commands(),
    "extras": lambda **_: extras(),
}

MARKER = re.compile(r"<!-- gen: (?P<name>[\w-]+)(?P<args>(?: [\w-]+=\S+)*) -->")


def expand(markdown: str, page: str) -> str:
    """Replace every ``<!-- gen: NAME key=value ... -->`` of a page with its generated Markdown; the
    page's own path is passed to the generators that link files (``page=``), and ``indent=N`` indents
    every line but the first by N spaces (for a marker inside an admonition or a list item)."""
    def replace(match: re.Match[str]) -> str:
        kwargs = dict(arg.split("=", 1) for arg in match.group("args").split())
        kwargs.setdefault("page", page)
        indent = " " * int(kwargs.pop("indent", "0"))
        text = GENERATORS[match.group("name")](**kwargs)
        return "\n".join(indent + line if line else line for line in text.splitlines()).lstrip(" ")

    return MARKER.sub(replace, markdown)


def markers(markdown: str) -> list[tuple[str, dict[str, str]]]:
    return [(m.group("name"), dict(a.split("=", 1) for a in m.group("args").split()))
            for m in MARKER.finditer(markdown)]


HEADLINE_SETTINGS = "clean,sym-0.3,asym-0.3"  # the blocks the default profile's benchmark has every method on

# README.md's generated blocks: name -> its text (README links point into the repository, not the site)
README_BLOCKS: dict[str, Callable[[], str]] = {
    "quickstart-output": lambda: code(run_output(QUICKSTART_RUN)),
    "headline-table": lambda: headline_table(DEFAULT_PROFILE, settings=HEADLINE_SETTINGS),
    "commands": commands,
}


def readme_block(text: str, name: str) -> str:
    start, end = f"<!-- gen:{name}:start -->", f"<!-- gen:{name}:end -->"
    if start not in text or end not in text:
        raise KeyError(f"README.md has no block {start} ... {end}")
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def write_readme_blocks(text: str) -> str:
    for name, make in README_BLOCKS.items():
        start, end = f"<!-- gen:{name}:start -->", f"<!-- gen:{name}:end -->"
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{make()}\n{end}{tail}"
    return text


def stale_readme_blocks(text: str) -> list[str]:
    return [name for name, make in README_BLOCKS.items() if readme_block(text, name) != make().strip()]


def main(argv: Optional[list[str]] = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--write", action="store_true", help="rewrite README.md's generated blocks")
    what.add_argument("--check", action="store_true", help="exit 1 if a README.md block is stale")
    what.add_argument("--show", metavar="NAME", help="print one generator's output (key=value arguments follow)")
    parser.add_argument("--slow", action="store_true",
                        help="with --write: also docs/_generated/ (needs the full synthfer; generated on first use)")
    parser.add_argument("args", nargs="*")
    opts = parser.parse_args(argv)
    readme = REPO / "README.md"
    if opts.show:
        print(GENERATORS[opts.show](**dict(a.split("=", 1) for a in opts.args)))
        return 0
    text = readme.read_text()
    if opts.write:
        if opts.slow:
            for path in write_slow_outputs():
                print(f"wrote {path.relative_to(REPO)}")
        new = write_readme_blocks(text)
        if new != text:
            readme.write_text(new)
            print("README.md: generated blocks rewritten")
        else:
            print("README.md: generated blocks are current")
        return 0
    stale = stale_readme_blocks(text)
    for name in stale:
        print(f"README.md: block {name} is stale; run python docs/_scripts/generate.py --write", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
