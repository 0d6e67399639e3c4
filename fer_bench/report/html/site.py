"""Writing the report: the page from its Jinja2 template, the shared assets, the data, one script per run.

The site::

    index.html          the page: overview tables (every statistic and metric), grid, figures, runs,
                        a run's panel and the compare view (one page; ``#run/<key>``, ``#compare/<a>/<b>``)
    assets/report.css   the style
    assets/report.js    the page's own script: charts, heatmaps, switching, routing (no library)
    assets/data.js      the report's data (the runs' index, the figures' numbers)
    runs/<id>.js        one run's panel data, loaded when the panel opens

Everything is loaded with ``<script>``/``<link>`` tags from relative paths, so the site opens from
``file://`` with no network and can be published as it is. Every file is written atomically
(:mod:`fer_bench.atomic`); a run script left by an earlier report of other runs is removed. A directory
that holds anything but an earlier report is refused, so that ``--out`` never overwrites other files.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Sequence

from ...atomic import write_text
from ...runs.record import METRICS, STATS
from ..plots.canvas import METRIC_TEXT, STAT_TEXT
from ..style import setting_key, variant_order
from ..tables import ALPHA, STAT_WORDS
from . import figures, overview, rundata
from .tree import BadRun, UnfinishedRun, grid, read_tree

GENERATOR = "fer-bench report"
ASSETS = ("report.css", "report.js")
_RUN_FILE = re.compile(r"^[0-9a-f]{12}\.js$")


@dataclass
class Report:
    """What :func:`build_report` wrote, and what it could not read."""

    out: Path
    runs: int
    files: list[Path] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    bad: list[BadRun] = field(default_factory=list)
    unfinished: list[UnfinishedRun] = field(default_factory=list)

    @property
    def index(self) -> Path:
        return self.out / "index.html"

    def summary(self) -> str:
        """One line: what was written, its size, where."""
        extra = "".join([f", {len(self.unfinished)} unfinished" if self.unfinished else "",
                         f", {len(self.bad)} unreadable" if self.bad else ""])
        return (f"wrote the report of {self.runs} run{'s' if self.runs != 1 else ''}{extra}: 1 page and "
                f"{self.runs} run panel{'s' if self.runs != 1 else ''}, {len(self.files)} files, "
                f"{human_size(self.bytes)}, in {self.seconds:.1f} s: {self.index}")


def human_size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _plain(value: Any) -> Any:
    """JSON-ready: numpy numbers as Python ones, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def json_text(value: Any) -> str:
    """``value`` as compact JSON that is safe inside a script (numpy numbers plain, NaN as null)."""
    text = json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("</", "<\\/")


def script(name: str, value: Any) -> str:
    """``<name>(<value as JSON>);``: data a ``<script>`` tag loads (which works from ``file://``, fetch does not)."""
    return f"{name}({json_text(value)});\n"


def run_file(key: str) -> str:
    """A run's script name: stable across reports of one tree (the same run, the same file)."""
    return hashlib.sha256(key.encode()).hexdigest()[:12] + ".js"


def check_report_out(out: Path) -> None:
    """A ValueError unless ``out`` is new, empty, or an earlier report (its index.html says so)."""
    from ...outputs import check_out

    check_out(out, [out / "index.html"], what="report")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a directory for the report")
    if out.is_dir() and any(out.iterdir()):
        index = out / "index.html"
        head = index.read_text(errors="replace")[:2000] if index.is_file() else ""
        if f'content="{GENERATOR}' not in head:
            raise ValueError(f"--out {out} holds other files (no earlier fer-bench report): give a new or empty "
                             f"directory, so that nothing else is overwritten")


def _template() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("fer_bench.report.html", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    return env.get_template("index.html.j2")


def build_report(results: Path | str, out: Path | str, stats: Sequence[str] = STATS, methods: Sequence[str] = (),
                 alpha: Optional[float] = ALPHA, userstudy: bool = True, device: str = "auto",
                 progress: bool = True, title: Optional[str] = None) -> Report:
    """Write the report of the results tree ``results`` into the directory ``out``.

    ``stats`` are the statistics the page can switch between (the first is shown first), ``methods`` the
    run variants of the tables (default: each method's default runs), ``alpha`` the significance level of
    the marks (None: the best mean only). A tree with no finished run is a ValueError naming what it holds
    instead; unreadable runs are listed in the report and in :attr:`Report.bad`, for the caller to report.
    """
    from tqdm import tqdm

    from ... import __version__

    started = time.perf_counter()
    results, out = Path(results), Path(out)
    stats = list(dict.fromkeys(stats))
    unknown = [s for s in stats if s not in STATS]
    if unknown or not stats:
        raise ValueError(f"--stat {','.join(unknown) or '(none)'}: choose from {', '.join(STATS)}")
    check_report_out(out)
    tree = read_tree(results)
    if tree.runs.empty:
        named = "; ".join(f"{b.path}: {b.problem}" for b in tree.bad)
        going = f"; {len(tree.unfinished)} unfinished run(s)" if tree.unfinished else ""
        raise ValueError(f"{results}: no finished runs to report"
                         + (f" ({len(tree.bad)} unreadable: {named}{going})" if tree.bad else going or
                            " (no directory below it holds a result.json)"))
    rows = {r.run_dir: r for r in tree.runs.itertuples(index=False)}
    rank = {v: i for i, v in enumerate(variant_order(list(tree.runs["variant"].unique())))}

    def order(record: Any) -> tuple[Any, ...]:  # as the tables: dataset, setting, method, seed
        r = rows[str(record.dir.path)]
        return r.dataset, setting_key(r.noise, r.rate, r.setting), rank[r.variant], r.seed, tree.key(record)

    records = sorted(tree.records, key=order)
    written: list[Path] = []

    def write(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, text)
        written.append(path)

    summaries = []
    for record in tqdm(records, desc="report: runs", unit="run", disable=not progress, leave=False):
        key = tree.key(record)
        name = run_file(key)
        summaries.append(rundata.run_summary(tree, record, rows[str(record.dir.path)], name))
        write(out / "runs" / name, script("ferReportRun", rundata.run_detail(tree, record)))
    keep = {run_file(tree.key(r)) for r in records}
    for stale in sorted((out / "runs").glob("*.js")):
        if _RUN_FILE.match(stale.name) and stale.name not in keep:
            stale.unlink()

    metrics = list(METRICS)
    tables = overview.accuracy_tables(tree, stats, metrics, methods, alpha)
    studies = overview.userstudy_tables(tree, methods, alpha, device, progress) if userstudy else []
    data = {
        "version": __version__, "title": title or f"{results}", "stats": stats, "metrics": metrics,
        "stat_text": {s: STAT_TEXT[s] for s in stats}, "stat_words": {s: STAT_WORDS[s] for s in stats},
        "metric_text": {m: METRIC_TEXT[m] for m in metrics}, "palette": figures.palette(),
        "runs": summaries,
        "accuracy": {f"{m}-{s}": figures.accuracy_figure(tree, s, m, methods) for m in metrics for s in stats},
        "memorisation": figures.memorisation_figure(tree, methods),
        "mechanisms": figures.mechanisms_figure(tree, methods),
        "unfinished": [vars(u) for u in tree.unfinished], "bad": [vars(b) for b in tree.bad],
    }
    write(out / "assets" / "data.js", f"window.FER_REPORT = {json_text(data)};\n")
    for asset in ASSETS:
        write(out / "assets" / asset, (resources.files(__package__) / "static" / asset).read_text())
    datasets = sorted(tree.runs["dataset"].unique())
    page = _template().render(
        generator=f"{GENERATOR} {__version__}", title=title or f"{results}", tables=tables,
        default_view=f"acc-{stats[0]}", stats=stats, stat_text=STAT_TEXT, studies=studies,
        userstudy=userstudy, grid=grid(tree, methods), bad=tree.bad, unfinished=tree.unfinished, notes=tree.notes,
        n_runs=len(records), datasets=datasets, settings=sorted(tree.runs["setting"].unique()),
        variants=sorted(tree.runs["variant"].unique()), seeds=sorted(int(s) for s in tree.runs["seed"].unique()))
    write(out / "index.html", page)
    report = Report(out, len(records), written, sum(p.stat().st_size for p in written),
                    time.perf_counter() - started, tree.bad, tree.unfinished)
    return report
