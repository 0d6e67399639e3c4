"""Figures from finished runs: accuracy curves, grid searches, galleries and matrices.

Every figure comes in two steps: a ``*_data`` function reads run directories
into plain numbers (and raises :class:`ValueError` with a one-line message
naming the path or method when there is nothing to draw), and a ``*_figure``
function turns those numbers into a :class:`matplotlib.figure.Figure`. Figures
are built on the non-interactive Agg canvas without pyplot, so nothing here
opens a window or keeps figures alive in a global registry. :func:`save` writes
a figure as PNG and PDF beside each other.

The figures:

* :func:`curves_figure`: accuracy vs noise rate per method, one panel per noise
  type (sym, asym, ...), the clean runs as rate 0 of every panel, mean line
  with a ±std band over seeds.
* :func:`grid_figure`: a method's grid search (LA-Net's supplementary Fig. 1):
  accuracy vs each hyper-parameter that varies among the method's runs, one
  line per noise setting; the run without the override is the default point.
* :func:`gallery_figure`: training images beside their one-hot training label,
  the human votes and LA-Net's learned label distribution (supplementary Fig. 2).
* :func:`confusion_figure` and :func:`transition_figure`: a run's final
  confusion matrix and its realised noise transition matrix as heatmaps.

Artists carry ``gid`` tags (panel and line names, ``votes:<image>`` ...) so
that tests and scripts can find the numbers a figure shows.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..atomic import write_atomic
from ..datasets.votes import vote_shares
from ..runs import RunDir, RunId
from .collect import METRICS, STATS, aggregate, collect_runs
from .style import (LINESTYLES, block_title, method_color, method_of, method_title, noise_title, setting_key,
                    profile_name, shared_profile, variant_order)

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


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _styled(fn: Any) -> Any:
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

    Each file is written under a temporary name in the target directory and moved
    into place with ``os.replace``, so a reader never sees half a figure.
    """
    written = figure_paths(out_stem)
    for path in written:
        fmt = path.suffix[1:]
        path.parent.mkdir(parents=True, exist_ok=True)
        # no creation date, so that redrawing the same data gives the same file
        metadata = {"CreationDate": None} if fmt == "pdf" else {}
        write_atomic(path, lambda tmp: fig.savefig(tmp, format=fmt, bbox_inches="tight", pad_inches=0.05,
                                                   metadata=metadata))
    return written


# --- reading runs ---------------------------------------------------------------

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


def _n_text(ns: Sequence[int]) -> str:
    lo, hi = int(min(ns)), int(max(ns))
    return f"n={lo}" if lo == hi else f"n={lo}–{hi}"


def _palette(names: Sequence[str]) -> dict[str, Any]:
    """Colours for lines that are not methods (a grid's noise settings), in their given order."""
    colors = sns.color_palette("colorblind", max(len(names), 1))
    return {name: colors[i % len(colors)] for i, name in enumerate(names)}


# --- accuracy vs noise rate ---------------------------------------------------------

def curves_data(runs: pd.DataFrame, stat: str = "last", metric: str = "acc", dataset: Optional[str] = None,
                variants: bool = False, methods: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Mean, std and seed count per (dataset, noise panel, line, rate).

    A panel is a noise type (``sym``, ``asym``, ``sym-exact`` ...); the clean
    runs of a line appear in every panel of their dataset at rate 0. Lines are
    the methods' default runs unless ``variants`` (overrides shared by all runs
    of a method, such as a sweep-wide ``--set epochs=5``, do not count); runs under
    more than one protocol or profile get them in the line name. Label-file
    runs (no rate) are left out.
    """
    if stat not in STATS or metric not in METRICS:
        raise ValueError(f"--stat must be one of {', '.join(STATS)} and --metric one of {', '.join(METRICS)}")
    if dataset:
        known = sorted(runs["dataset"].unique())
        runs = runs[runs["dataset"] == dataset]
        if runs.empty:
            raise ValueError(f"no finished runs of dataset {dataset!r} (found: {', '.join(known) or 'none'})")
    if methods:
        runs = runs[runs["method"].isin(methods) | runs["variant"].isin(methods)]
        if runs.empty:
            raise ValueError(f"no finished runs of {', '.join(methods)}")
    runs = runs[runs["noise"] != "file"]
    if runs.empty:
        raise ValueError("only label-file runs found; they have no noise rate to plot against")
    if not variants:
        runs = runs[runs["is_default"] | runs["variant"].isin(methods or ())]
    agg = aggregate(runs, stat, metric, methods=list(runs["variant"].unique()))
    if agg["mean"].isna().all():
        raise ValueError(f"--stat {stat} is unavailable for every run to plot (trained without a noisy "
                         f"validation split; --val-split F holds one out)")
    agg["line"] = agg["variant"]
    clean = agg[agg["noise"] == "none"]
    noisy = agg[agg["noise"] != "none"].copy()
    if noisy.empty:
        raise ValueError("no noisy runs to plot against the noise rate (only clean runs found)")
    noisy["panel"] = noisy["noise"]
    rows = [noisy]
    for (ds, panel), _ in noisy.groupby(["dataset", "panel"], sort=False):
        c = clean[clean["dataset"] == ds].copy()
        c["panel"] = panel
        rows.append(c)
    out = pd.concat(rows, ignore_index=True)
    out = out[["dataset", "panel", "line", "method", "variant", "setting", "rate", "mean", "std", "n", "unavailable"]]
    return out.sort_values(["dataset", "panel", "line", "rate"], kind="stable").reset_index(drop=True)


def _panel_grid(n: int, width: float, height: float) -> tuple[Figure, np.ndarray, int]:
    """Up to three panels a row, sharing the y axis; unused cells hidden. Returns the column count too."""
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = _new_figure(width * cols + 0.4, height * rows + 0.75)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=True, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes, cols


@_styled
def curves_figure(data: pd.DataFrame, stat: str = "last", metric: str = "acc") -> Figure:
    """Accuracy vs noise rate, one panel per (dataset, noise type), a mean line and ±std band per line.

    Each panel's axes has ``gid`` ``<dataset>/<panel>``, each mean line ``gid`` = its line name.
    """
    panels = sorted(data[["dataset", "panel"]].drop_duplicates().itertuples(index=False, name=None),
                    key=lambda p: (p[0], setting_key(p[1], 0.0)))
    multi_dataset = data["dataset"].nunique() > 1
    lines = variant_order(list(data["line"].unique()))
    colors = {line: method_color(line) for line in lines}
    dashes: dict[str, Any] = {}
    for line in lines:  # a method's variants share its colour; each gets its own dashes
        dashes[line] = LINESTYLES[sum(method_of(x) == method_of(line) for x in dashes) % len(LINESTYLES)]
    fig, axes, cols = _panel_grid(len(panels), 3.6, 3.0)
    handles: dict[str, Any] = {}
    for ax, (ds, panel) in zip(axes, panels):
        ax.set_gid(f"{ds}/{panel}")
        part = data[(data["dataset"] == ds) & (data["panel"] == panel)]
        for line in lines:
            d = part[part["line"] == line].sort_values("rate")
            if d.empty:
                continue
            x, y, s = d["rate"].to_numpy(float), d["mean"].to_numpy(float), d["std"].to_numpy(float)
            (h,) = ax.plot(x, y, marker="o", color=colors[line], linestyle=dashes[line], gid=line)
            band = ~np.isnan(s)
            if band.any():
                lo, hi = np.where(band, y - np.nan_to_num(s), y), np.where(band, y + np.nan_to_num(s), y)
                ax.fill_between(x, lo, hi, color=colors[line], alpha=0.18, linewidth=0)
            handles.setdefault(line, h)
        rates = sorted(part["rate"].unique())
        ax.set_xticks(rates)
        ax.set_xticklabels([f"{r:g}" for r in rates])
        pad = 0.04 * max(max(rates) - min(rates), 0.1)
        ax.set_xlim(min(rates) - pad, max(rates) + pad)
        ax.set_title(f"{ds} · {noise_title(panel)}" if multi_dataset else f"{noise_title(panel)} noise")
        ax.set_xlabel("noise rate")
    for ax in axes[::cols]:
        ax.set_ylabel(METRIC_TEXT[metric])
    labels, said = _legend_labels(handles, data, "line")
    fig.legend(list(handles.values()), labels, loc="outside lower center", ncols=min(len(labels), 2 + 2 * cols),
               title=f"mean ± std over training seeds (n = seeds) · {STAT_TEXT[stat]}", frameon=False)
    if not multi_dataset:
        fig.suptitle(f"{data['dataset'].iloc[0]}: accuracy under label noise{said}")
    return fig


def _legend_labels(lines: Iterable[str], data: pd.DataFrame, column: str) -> tuple[list[str], str]:
    """Legend entries ``LA-Net (n=3)`` and a title suffix: a profile every line shares is named once, in
    the title (`` · profile cpu-face``), and left out of each entry, as a table's caption does."""
    lines = list(lines)
    said = shared_profile(lines)
    labels = [f"{method_title(line, said)} ({_n_text(data.loc[data[column] == line, 'n'].tolist())})" for line in lines]
    return labels, f" · profile {profile_name(said)}" if said else ""


# --- memorisation ----------------------------------------------------------------------

MEMORISATION_LINES = {"flipped_memorised": ("flipped: predicted as the noisy label (memorised)", "-"),
                      "flipped_corrected": ("flipped: predicted as the clean label (corrected)", "--")}


def memorisation_data(runs: pd.DataFrame, dataset: Optional[str] = None,
                      methods: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Per (setting, method, epoch): the mean over seeds of the flipped images' memorised and corrected
    shares (in %) from each noisy default run's ``metrics.csv``. Runs recorded before the diagnostics
    existed are left out; none at all is an error."""
    runs = runs[(runs["noise"] != "none") & runs["is_default"]]
    if dataset:
        runs = runs[runs["dataset"] == dataset]
    if methods:
        runs = runs[runs["method"].isin(methods) | runs["variant"].isin(methods)]
    frames = []
    for r in runs.itertuples(index=False):
        path = r.record.dir.metrics_file
        metrics = pd.read_csv(path) if path.is_file() else pd.DataFrame()
        if not set(MEMORISATION_LINES) <= set(metrics.columns):
            continue
        part = metrics[["epoch", *MEMORISATION_LINES]].copy()
        part[list(MEMORISATION_LINES)] *= 100.0
        frames.append(part.assign(dataset=r.dataset, setting=r.setting, noise=r.noise, rate=r.rate,
                                  variant=r.variant, seed=r.seed))
    if not frames:
        raise ValueError("no noisy run with memorisation diagnostics in its metrics.csv "
                         "(runs recorded before they existed have none: train them again)")
    data = pd.concat(frames, ignore_index=True)
    keys = ["dataset", "setting", "noise", "rate", "variant", "epoch"]
    out = data.groupby(keys, sort=False)[list(MEMORISATION_LINES)].mean().reset_index()
    out["n"] = data.groupby(keys, sort=False)["seed"].nunique().values
    return out


@_styled
def memorisation_figure(data: pd.DataFrame) -> Figure:
    """Per noise setting a panel: the memorised (solid) and corrected (dashed) shares of the flipped
    training images over the epochs, one colour per method. Each panel's ``gid`` is ``<dataset>/<setting>``,
    each line's ``<variant>/<share>``."""
    panels = sorted(data[["dataset", "setting", "noise", "rate"]].drop_duplicates().itertuples(index=False, name=None),
                    key=lambda p: (p[0], setting_key(p[2], p[3], p[1])))
    multi_dataset = data["dataset"].nunique() > 1
    lines = variant_order(list(data["variant"].unique()))
    fig, axes, cols = _panel_grid(len(panels), 3.4, 2.8)
    handles: dict[str, Any] = {}
    for ax, (ds, setting, noise, rate) in zip(axes, panels):
        ax.set_gid(f"{ds}/{setting}")
        part = data[(data["dataset"] == ds) & (data["setting"] == setting)]
        for variant in lines:
            d = part[part["variant"] == variant].sort_values("epoch")
            if d.empty:
                continue
            for share, (_, style) in MEMORISATION_LINES.items():
                (h,) = ax.plot(d["epoch"], d[share], color=method_color(variant), linestyle=style,
                               gid=f"{variant}/{share}")
                handles.setdefault(variant, h)
        title = block_title(noise, rate, setting)
        ax.set_title(f"{ds} · {title}" if multi_dataset else title)
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 100)
    for ax in axes[::cols]:
        ax.set_ylabel("share of flipped training images (%)")
    labels, said = _legend_labels(handles, data, "variant")
    fig.legend(list(handles.values()), labels, loc="outside lower center", ncols=min(len(labels), 5),
               title="solid: memorised (predicts the noisy label) · dashed: corrected (predicts the clean label) "
                     "· mean over seeds (n)", frameon=False)
    if not multi_dataset:
        fig.suptitle(f"{data['dataset'].iloc[0]}: when the network memorises the flipped labels{said}")
    return fig


# --- grid search ----------------------------------------------------------------------

def _effective(config: dict[str, Any], key: str) -> Any:
    """The value a run used for an override key: its resolved hyper-parameter or recipe entry."""
    if key in config.get("hparams", {}):
        return config["hparams"][key]
    if key in config.get("recipe", {}):
        return config["recipe"][key]
    return config.get("overrides", {}).get(key)


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def grid_data(runs: pd.DataFrame, method: str, stat: str = "last", metric: str = "acc",
              dataset: Optional[str] = None) -> pd.DataFrame:
    """Mean, std and seed count per (hyper-parameter, value, dataset, setting) of one method's grid.

    A hyper-parameter is on the grid when its value (the run's resolved value, so a
    run without the override counts at the default) differs among the method's
    runs. Each hyper-parameter's points hold the others at their default (their
    value in runs without that override; the most common value if every run sets
    it). ``is_default`` marks the default value.
    """
    if stat not in STATS or metric not in METRICS:
        raise ValueError(f"--stat must be one of {', '.join(STATS)} and --metric one of {', '.join(METRICS)}")
    mine = runs[runs["method"] == method]
    if dataset:
        mine = mine[mine["dataset"] == dataset]
    if mine.empty:
        known = ", ".join(sorted(runs["method"].unique()))
        raise ValueError(f"no finished runs of method {method!r}{f' on {dataset}' if dataset else ''} "
                         f"(methods found: {known})")
    configs = [r.config for r in mine["record"]]
    keys = sorted({k for c in configs for k in c.get("overrides", {})})
    values = {k: [_effective(c, k) for c in configs] for k in keys}
    varying = [k for k in keys if len({_key(v) for v in values[k]}) > 1]
    if not varying:
        raise ValueError(f"method {method!r} has no grid variants (runs differing in a --set KEY=VALUE override)")
    reference: dict[str, Any] = {}
    has_default: dict[str, bool] = {}
    for k in varying:
        plain = [_key(v) for v, c in zip(values[k], configs) if k not in c.get("overrides", {})]
        has_default[k] = bool(plain)
        pool = plain or [_key(v) for v in values[k]]
        reference[k] = Counter(pool).most_common(1)[0][0]
    column = f"{metric}_{stat}"
    rows = []
    for k in varying:
        keep = [all(_key(values[j][i]) == reference[j] for j in varying if j != k) for i in range(len(configs))]
        sub = mine[keep].assign(_value=[_key(v) for v, ok in zip(values[k], keep) if ok])
        for (ds, noise, rate, setting, value), g in sub.groupby(["dataset", "noise", "rate", "setting", "_value"],
                                                               sort=False):
            acc = g[column].astype(float)
            rows.append({"hparam": k, "value": json.loads(value), "label": _value_label(json.loads(value)),
                         "is_default": has_default[k] and value == reference[k], "dataset": ds, "noise": noise,
                         "rate": rate, "setting": setting, "mean": acc.mean(skipna=False),
                         "std": acc.std(ddof=1, skipna=False), "n": len(acc),  # NaN: a run lacks the statistic
                         "unavailable": int(acc.isna().sum())})
    return pd.DataFrame(rows)


def _value_label(value: Any) -> str:
    return f"{value:g}" if _is_number(value) else str(value)


@_styled
def grid_figure(data: pd.DataFrame, method: str = "", stat: str = "last", metric: str = "acc") -> Figure:
    """One panel per grid hyper-parameter: accuracy vs its value, a line (mean, ±std bars) per noise setting.

    Noise settings with a single value of a hyper-parameter are left out of its
    panel unless no setting has more. The default value is marked by a dotted line.
    Each panel's axes has ``gid`` = the hyper-parameter, each line ``gid`` = its setting.
    """
    hparams = list(dict.fromkeys(data["hparam"]))
    multi_dataset = data["dataset"].nunique() > 1
    data = data.assign(line=[f"{d} · {s}" if multi_dataset else s for d, s in zip(data["dataset"], data["setting"])])
    titles = {ln: (f"{d} · " if multi_dataset else "") + block_title(n, r, st)
              for ln, d, n, r, st in zip(data["line"], data["dataset"], data["noise"], data["rate"], data["setting"])}
    order = sorted(dict.fromkeys(zip(data["noise"], data["rate"], data["line"])),
                   key=lambda t: setting_key(t[0], t[1], t[2]))
    line_names = list(dict.fromkeys(t[2] for t in order))
    colors = _palette(line_names)
    fig, axes, cols = _panel_grid(len(hparams), 3.5, 2.9)
    handles: dict[str, Any] = {}
    ns: dict[str, list[int]] = {}
    n_varies = data["n"].nunique() > 1
    for ax, k in zip(axes, hparams):
        ax.set_gid(k)
        part = data[data["hparam"] == k]
        counts = part.groupby("line")["label"].nunique()
        shown = [ln for ln in line_names if counts.get(ln, 0) > 1] or [ln for ln in line_names if ln in counts]
        numeric = all(_is_number(v) for v in part["value"])
        if numeric:
            xs_all = sorted({float(v) for v in part["value"]})
            position = {_value_label(v): float(v) for v in part["value"]}
            if min(xs_all) > 0 and max(xs_all) / min(xs_all) >= 20:
                ax.set_xscale("log")
        else:
            cats = sorted(set(part["label"]))
            position = {c: float(i) for i, c in enumerate(cats)}
        for ln in shown:
            d = part[part["line"] == ln].assign(x=lambda f: [position[lbl] for lbl in f["label"]]).sort_values("x")
            yerr = np.nan_to_num(d["std"].to_numpy(float))
            cont = ax.errorbar(d["x"], d["mean"], yerr=yerr, marker="o", capsize=3, color=colors[ln])
            cont.lines[0].set_gid(ln)
            handles.setdefault(ln, cont.lines[0])
            ns.setdefault(ln, []).extend(d["n"].tolist())
            if n_varies:
                for x, y, n in zip(d["x"], d["mean"], d["n"]):
                    ax.annotate(f"n={n}", (x, y), xytext=(4, 3), textcoords="offset points", fontsize=6.5,
                                color=colors[ln])
        ticks = sorted(set(position.values()))
        ax.set_xticks(ticks)
        ax.set_xticklabels([next(lbl for lbl, p in position.items() if p == t) for t in ticks])
        ax.minorticks_off()
        if ax.get_xscale() == "log":
            lo, hi = math.log10(min(ticks)), math.log10(max(ticks))
            ax.set_xlim(10 ** (lo - 0.12 * (hi - lo)), 10 ** (hi + 0.12 * (hi - lo)))
        else:
            span = max(ticks) - min(ticks) if len(ticks) > 1 else 1.0
            ax.set_xlim(min(ticks) - 0.12 * span, max(ticks) + 0.12 * span)
        for lbl in part[part["is_default"]]["label"].unique():
            ax.axvline(position[lbl], color="0.5", linestyle=":", linewidth=1.0, zorder=0)
            ax.annotate("default", (position[lbl], 1.0), xycoords=("data", "axes fraction"),
                        xytext=(0, 1), textcoords="offset points", ha="center", va="bottom", fontsize=7,
                        color="0.4")
        ax.set_xlabel(k)
    for ax in axes[::cols]:
        ax.set_ylabel(METRIC_TEXT[metric])
    labels = [f"{titles[ln]} ({_n_text(ns[ln])})" for ln in handles]
    fig.legend(list(handles.values()), labels, loc="outside lower center", ncols=min(len(labels), 4),
               title=f"mean ± std over training seeds (n = seeds) · {STAT_TEXT[stat]}", frameon=False)
    fig.suptitle(f"{method + ': ' if method else ''}grid search" +
                 (f" on {data['dataset'].iloc[0]}" if not multi_dataset else ""))
    return fig


# --- gallery --------------------------------------------------------------------------

@dataclass
class GalleryData:
    """The chosen training images of one run and the three label views of each.

    ``labels`` are the run's training labels (``train_labels.txt``, or generated again from its
    noise record when the file was not kept), ``clean`` the
    dataset's clean labels, ``human`` the normalised votes (or the true
    distributions when the dataset has no votes; None if neither), ``learned``
    the rows of the run's ``label_distributions.csv`` (None when the run has none).
    """

    run_dir: Path
    title: str
    class_names: list[str]
    names: list[str]
    images: np.ndarray
    labels: np.ndarray
    clean: np.ndarray
    human: Optional[np.ndarray]
    human_source: str
    learned: Optional[np.ndarray]


AMBIGUOUS_BELOW = 0.7
DISTRIBUTION_FILE = "label_distributions.csv"


def human_distribution(votes: Optional[np.ndarray], distributions: Optional[np.ndarray]
                       ) -> tuple[Optional[np.ndarray], str]:
    """Row-normalised annotator votes, else the true distributions; and which one it is."""
    for table, source in ((votes, "human votes"), (distributions, "true distribution")):
        if table is None:
            continue
        t = np.asarray(table, dtype=np.float64)
        if (t.sum(axis=1) > 0).all():
            return vote_shares(t), source
    return None, "none"


def select_images(human: Optional[np.ndarray], n: int, count: int, ambiguous: bool = False,
                  allowed: Optional[np.ndarray] = None) -> np.ndarray:
    """Indices of ``n`` images spread evenly over the ``count`` training images, in order.

    With ``ambiguous`` only images whose largest vote share is below 0.7 are candidates; with
    ``allowed`` (a mask) only those it marks.
    """
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    candidates = np.arange(count)
    if ambiguous:
        if human is None:
            raise ValueError("--ambiguous needs the dataset's votes or distributions; this dataset has neither")
        candidates = np.flatnonzero(human.max(axis=1) < AMBIGUOUS_BELOW)
        if candidates.size == 0:
            raise ValueError(f"no training image has a largest vote share below {AMBIGUOUS_BELOW}")
    if allowed is not None:
        candidates = candidates[allowed[candidates]]
    if candidates.size <= n:
        return candidates
    return candidates[np.unique(np.linspace(0, candidates.size - 1, n).round().astype(int))]


def gallery_data(run_dir: Path | str, n: int = 8, root: Optional[str] = None, ambiguous: bool = False,
                 progress: bool = False) -> GalleryData:
    """Load a run's dataset (``root``, else the run's recorded root, else the default) and pick ``n`` images."""
    from ..datasets.votes import read_class_table
    from ..runs.model import run_dataset, run_train_labels

    rd = RunDir(Path(run_dir)).require()
    run_dir, config = rd.path, rd.config()
    dataset = run_dataset(config, root, progress)
    labels = run_train_labels(run_dir, dataset)
    split = dataset.train
    human, source = human_distribution(split.votes, split.distributions)
    held_out = rd.held_out()  # the run's noisy validation images: it never trained on them
    trained_on = np.array([name not in held_out for name in split.names], dtype=bool) if held_out else None
    idx = select_images(human, n, len(split), ambiguous, trained_on)
    learned = None
    if (run_dir / DISTRIBUTION_FILE).is_file():
        dist_names, table = read_class_table(run_dir / DISTRIBUTION_FILE, dataset.class_names)
        row_of = {name: i for i, name in enumerate(dist_names)}
        missing = [split.names[i] for i in idx if split.names[i] not in row_of]
        if missing:
            raise ValueError(f"{run_dir / DISTRIBUTION_FILE} has no row for {missing[0]} "
                             f"(was the run trained on another dataset?)")
        learned = table[[row_of[split.names[i]] for i in idx]].astype(np.float64)
    return GalleryData(
        run_dir=run_dir, title=run_title(config), class_names=list(dataset.class_names),
        names=[split.names[i] for i in idx], images=split.images[idx], labels=labels[idx],
        clean=split.labels[idx], human=None if human is None else human[idx], human_source=source,
        learned=learned,
    )


@_styled
def gallery_figure(g: GalleryData) -> Figure:
    """One row per image: the image, then horizontal bars of the training label, the human votes and
    LA-Net's label distribution (columns without data are left out and the title says so).

    Bar axes have ``gid`` ``label:<image>``, ``votes:<image>`` and ``distribution:<image>``;
    a training label that differs from the clean one is drawn in red, its clean class under the image.
    """
    columns = [("label", "training label")]
    if g.human is not None:
        columns.append(("votes", g.human_source))
    if g.learned is not None:
        columns.append(("distribution", "LA-Net label distribution"))
    c = len(g.class_names)
    ticks = [name[:3] if len({n[:3] for n in g.class_names}) == c else name for name in g.class_names]
    rows = len(g.names)
    groups = min(3, math.ceil(rows / 8))  # side-by-side columns of at most ~8 images each
    per_group = math.ceil(rows / groups)
    ncols = groups * (1 + len(columns))
    fig = _new_figure(groups * (1.45 + 1.55 * len(columns)), 1.22 * per_group + 0.75)
    widths = ([1.0] + [1.25] * len(columns)) * groups
    axes = fig.subplots(per_group, ncols, squeeze=False, gridspec_kw={"width_ratios": widths})
    for i in range(per_group * groups):
        row, group = i % per_group, i // per_group
        row_axes = axes[row, group * (1 + len(columns)):(group + 1) * (1 + len(columns))]
        if i >= rows:
            for ax in row_axes:
                ax.set_visible(False)
            continue
        name = g.names[i]
        img_ax = row_axes[0]
        img_ax.imshow(g.images[i])
        img_ax.set_xticks([])
        img_ax.set_yticks([])
        img_ax.grid(False)
        for spine in img_ax.spines.values():
            spine.set_visible(False)
        noisy = int(g.labels[i]) != int(g.clean[i])
        img_ax.set_xlabel(f"{name}\nnoisy label (clean: {ticks[int(g.clean[i])]})" if noisy else name,
                          fontsize=7, labelpad=2, color="#d62728" if noisy else "black")
        for ax, (kind, header) in zip(row_axes[1:], columns):
            if kind == "label":
                values = np.eye(c)[int(g.labels[i])]
            elif kind == "votes":
                values = g.human[i]  # type: ignore[index]
            else:
                values = g.learned[i]  # type: ignore[index]
            color = ["#d62728" if kind == "label" and noisy else "#4c72b0"] * c
            ax.barh(np.arange(c), values, color=color, height=0.7)
            ax.set_gid(f"{kind}:{name}")
            ax.set_xlim(0, 1)
            ax.set_ylim(c - 0.5, -0.5)
            ax.set_yticks(np.arange(c))
            ax.set_yticklabels(ticks if ax is row_axes[1] else [], fontsize=7)
            ax.set_xticks([0, 0.5, 1])
            ax.set_xticklabels(["0", ".5", "1"] if row == per_group - 1 or i == rows - 1 else [], fontsize=7)
            ax.tick_params(length=2, pad=1)
            ax.grid(axis="y", visible=False)
            if row == 0:
                ax.set_title(header, fontsize=8.5)
    note = "" if g.learned is not None else f"\n(no {DISTRIBUTION_FILE} in this run: label distribution bars omitted)"
    fig.suptitle(f"{g.title}{note}")
    return fig


# --- matrices ----------------------------------------------------------------------------

def confusion_data(run_dir: Path | str) -> tuple[np.ndarray, list[str], str]:
    """A finished run's last-epoch confusion matrix (rows: true class), its class names and a title."""
    rd = RunDir(Path(run_dir))
    result = rd.result()
    if "confusion_last" not in result or "class_names" not in result:
        raise ValueError(f"{rd.result_file} has no confusion_last/class_names")
    title = run_title(rd.config())
    if "acc_last" in result:
        title += f"\ntest accuracy (last epoch) {100 * result['acc_last']:.1f}%"
    return np.asarray(result["confusion_last"], dtype=np.float64), list(result["class_names"]), title


def transition_data(run_dir: Path | str) -> Any:
    """A noise record (:class:`~fer_bench.noise.record.NoiseRecord`): a run's noise.json, or a
    record file itself (``FILE.json`` beside a label file written by ``fer-bench noise export``)."""
    from ..noise.record import NoiseRecord

    path = Path(run_dir)
    if path.is_file():
        source = path
    else:
        source = RunDir(path).require("noise.json").noise_file
    try:
        return NoiseRecord.from_dict(json.loads(source.read_text()))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {exc}") from None


def _heatmap(ax: Any, matrix: np.ndarray, class_names: Sequence[str], fmt: str, vmax: Optional[float],
             cmap: str) -> Any:
    c = len(class_names)
    im = ax.imshow(matrix, cmap=cmap, vmin=0, vmax=vmax if vmax is not None else max(float(matrix.max()), 1e-12),
                   aspect="equal")
    ax.grid(False)
    ax.set_xticks(np.arange(c))
    ax.set_yticks(np.arange(c))
    ax.set_xticklabels(class_names, rotation=40, ha="right", rotation_mode="anchor")
    ax.set_yticklabels(class_names)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    norm, cm = im.norm, im.cmap
    fontsize = 8 if c <= 8 else 6.5
    for i, j in np.ndindex(matrix.shape):
        r, gr, b, _ = cm(norm(matrix[i, j]))
        dark = 0.299 * r + 0.587 * gr + 0.114 * b < 0.5
        ax.text(j, i, format(matrix[i, j], fmt), ha="center", va="center", fontsize=fontsize,
                color="white" if dark else "0.15")
    return im


@_styled
def confusion_figure(matrix: np.ndarray, class_names: Sequence[str], normalise: bool = False,
                     title: str = "") -> Figure:
    """Annotated heatmap of a confusion matrix (rows: true class, columns: predicted).

    With ``normalise`` each row is divided by its total (recall per class on the diagonal).
    """
    m = np.asarray(matrix, dtype=np.float64)
    if normalise:
        sums = m.sum(axis=1, keepdims=True)
        m = np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)
    c = len(class_names)
    side = 1.2 + 0.55 * c
    fig = _new_figure(side + 1.0, side + 0.5)
    ax = fig.subplots()
    im = _heatmap(ax, m, class_names, ".2f" if normalise else ".0f", 1.0 if normalise else None, "Blues")
    fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of the true class" if normalise else "test images")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    return fig


@_styled
def transition_figure(matrix: np.ndarray, class_names: Sequence[str], title: str = "") -> Figure:
    """Annotated heatmap of a row-stochastic noise transition matrix (rows: true class, columns: noisy label)."""
    m = np.asarray(matrix, dtype=np.float64)
    c = len(class_names)
    side = 1.2 + 0.55 * c
    fig = _new_figure(side + 1.0, side + 0.5)
    ax = fig.subplots()
    im = _heatmap(ax, m, class_names, ".2f", 1.0, "magma_r")
    fig.colorbar(im, ax=ax, shrink=0.8, label="P(noisy label | true class)")
    ax.set_xlabel("noisy training label")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    return fig


def transition_title(record: Any) -> str:
    """Two lines: the noise model, mode and nominal rate; the realised rate and flip count."""
    if record.model == "none":
        return f"clean labels (no noise)\n{record.n_flipped} of {record.n} labels flipped"
    nominal = "unknown" if record.rate is None else f"{record.rate:g}"
    return (f"{record.model} noise ({record.mode}), nominal rate {nominal}\n"
            f"realised rate {record.realised_rate:.3f} ({record.n_flipped} of {record.n} labels flipped)")


# --- noise by ambiguity --------------------------------------------------------------------

def _bin_label(b: dict[str, float]) -> str:
    return "1.0" if b["lo"] == b["hi"] else f"{b['lo']:.1f}-{b['hi']:.1f}"


@_styled
def ambiguity_figure(records: Sequence[Any]) -> Figure:
    """Realised flip rate by bins of the largest vote share, one bar series per noise record.

    Left is ambiguous (annotators split), right unanimous; each bar is annotated with its
    image count. A record without ``by_ambiguity`` (a dataset without votes) is an error.
    """
    if not records:
        raise ValueError("no noise record to plot")
    for r in records:
        if not r.by_ambiguity:
            raise ValueError(f"the noise record of {r.source} has no flip rate by vote share "
                             "(the dataset has no annotator votes, or the record predates it)")
    labels = [_bin_label(b) for b in records[0].by_ambiguity]
    fig = _new_figure(1.6 + 0.75 * len(labels), 3.4)
    ax = fig.subplots()
    width = 0.8 / len(records)
    x = np.arange(len(labels))
    palette = sns.color_palette("colorblind", max(len(records), 3))
    for k, r in enumerate(records):
        rates = [b["flip_rate"] for b in r.by_ambiguity]
        pos = x - 0.4 + width * (k + 0.5)
        nominal = "" if r.rate is None else f" {r.rate:g}"
        ax.bar(pos, rates, width, color=palette[k],
               label=f"{noise_title(r.model)}{nominal} ({r.mode}): realised {r.realised_rate:.3f}")
        for px, rate, b in zip(pos, rates, r.by_ambiguity):
            ax.text(px, rate + 0.01, f"n={b['n']}", ha="center", va="bottom", fontsize=6, rotation=90)
    ax.set_xticks(x)
    ax.set_xticklabels(labels)
    ax.set_ylim(0, 1.3)  # room for the legend above the bars
    ax.set_xlabel("largest annotator vote share (left: ambiguous, right: unanimous)")
    ax.set_ylabel("realised flip rate")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("label noise by image ambiguity", fontsize=9)
    return fig
