"""What every figure shares: the style, a figure without pyplot, panels, legends, saving, and reading runs.

Figures are built on the non-interactive Agg canvas without pyplot
(:func:`new_figure`), so nothing opens a window or keeps figures alive in a
global registry; :func:`styled` builds a figure under :data:`STYLE`, a light,
paper-like style. :func:`save` writes a figure as PNG and PDF beside each other,
each atomically (:func:`fer_bench.atomic.replacing`), so a reader never
sees half a figure.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ...atomic import replacing
from ...runs import RunId
from ..collect import collect_runs
from ..style import method_title, profile_name, shared_profile

STAT_TEXT = {"last": "last epoch", "best": "best epoch (optimistic)", "last5": "mean of last 5 epochs",
             "val": "epoch chosen on noisy validation"}
METRIC_TEXT = {"acc": "test accuracy (%)", "mean_class_acc": "mean class accuracy (%)"}

# A light, paper-like style applied while a figure is built (rcParams are read at artist creation).
STYLE: dict[str, Any] = {
    "font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
    "legend.fontsize": 8, "legend.title_fontsize": 8, "figure.titlesize": 10.5,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
    "grid.linewidth": 0.6, "lines.linewidth": 1.6, "lines.markersize": 5, "savefig.dpi": 200,
    "pdf.fonttype": 42,
}


def new_figure(width: float, height: float) -> Figure:
    """An empty figure of ``width`` x ``height`` inches with constrained layout, on the Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def styled(fn: Any) -> Any:
    """Decorate a figure function to run under :data:`STYLE` (rcParams are read at artist creation)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)
    return wrapper


FIGURE_FORMATS = ("png", "pdf")


def figure_paths(out_stem: Path | str) -> list[Path]:
    """``<out_stem>.png`` and ``<out_stem>.pdf``; a stem ending in ``.png`` or ``.pdf`` loses that suffix."""
    stem = Path(out_stem)
    if stem.suffix.lower().lstrip(".") in FIGURE_FORMATS:
        stem = stem.with_suffix("")
    if not stem.name:
        raise ValueError(f"--out {out_stem!s}: expected a file name stem, e.g. figures/curves")
    return [stem.parent / f"{stem.name}.{fmt}" for fmt in FIGURE_FORMATS]


def save(fig: Figure, out_stem: Path | str) -> list[Path]:
    """Write the :func:`figure_paths` of ``out_stem``; return them.

    Each file is written atomically (:func:`fer_bench.atomic.replacing`): a reader never sees half a figure.
    """
    written = figure_paths(out_stem)
    for path in written:
        fmt = path.suffix[1:]
        path.parent.mkdir(parents=True, exist_ok=True)
        # no creation date, so that redrawing the same data gives the same file
        metadata = {"CreationDate": None} if fmt == "pdf" else {}
        with replacing(path) as tmp:
            fig.savefig(tmp, format=fmt, bbox_inches="tight", pad_inches=0.05, metadata=metadata)
    return written


def load_runs(results: Path | str) -> pd.DataFrame:
    """:func:`~fer_bench.report.collect.collect_runs`, but an empty result is an error naming ``results``."""
    results = Path(results)
    if not results.is_dir():
        raise ValueError(f"{results}: no such results directory")
    runs = collect_runs(results)
    if runs.empty:
        raise ValueError(f"{results}: no finished runs (none with a valid result.json below it)")
    return runs


def run_title(config: dict[str, Any]) -> str:
    """``lanet+alpha=0.5 · synthfer · sym-0.3 · seed 0`` for a run's config.json."""
    return RunId.from_config(config).title()


def n_text(ns: Sequence[int]) -> str:
    """``n=3``, or ``n=2–3`` when the seed counts differ."""
    lo, hi = int(min(ns)), int(max(ns))
    return f"n={lo}" if lo == hi else f"n={lo}–{hi}"


def panel_grid(n: int, width: float, height: float, cols: int = 3) -> tuple[Figure, np.ndarray, int]:
    """Up to ``cols`` panels a row, sharing the y axis; unused cells hidden. Returns the column count too."""
    cols = min(n, cols)
    rows = math.ceil(n / cols)
    fig = new_figure(width * cols + 0.4, height * rows + 0.75)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=True, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes, cols


def legend_labels(lines: Iterable[str], data: pd.DataFrame, column: str) -> tuple[list[str], str]:
    """Legend entries ``LA-Net (n=3)`` and a title suffix: a profile every line shares is named once, in
    the title (`` · profile cpu-face``), and left out of each entry, as a table's caption does."""
    lines = list(lines)
    said = shared_profile(lines)
    labels = [f"{method_title(line, said)} ({n_text(data.loc[data[column] == line, 'n'].tolist())})" for line in lines]
    return labels, f" · profile {profile_name(said)}" if said else ""
