"""Accuracy against the noise rate, one panel per noise type, a mean line with a ±std band per method."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ...runs.identity import imbalance_suffix, split_imbalance
from ..collect import METRICS, STATS, aggregate
from ..style import LINESTYLES, method_color, method_of, noise_title, setting_key, variant_order
from .canvas import METRIC_TEXT, STAT_TEXT, legend_labels, panel_grid, styled

def curves_data(runs: pd.DataFrame, stat: str = "last", metric: str = "acc", dataset: Optional[str] = None,
                variants: bool = False, methods: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Mean, std and seed count per (dataset, noise panel, line, rate).

    A panel is a noise type (``sym``, ``asym``, ``sym-exact`` ...); the clean
    runs of a line appear in every panel of their dataset at rate 0. Lines are
    the methods' default runs unless ``variants`` (overrides shared by all runs
    of a method, such as a sweep-wide ``--set epochs=5``, do not count); runs under
    more than one protocol or profile get them in the line name, and runs on a
    long-tailed training subset (``--imbalance``) its ratio (``baseline+imbalance=10``:
    a line of its own). Label-file runs (no rate) are left out.
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
    agg["line"] = agg["variant"] + agg["setting"].map(lambda s: imbalance_suffix(*split_imbalance(s)[1:]))
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


@styled
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
    fig, axes, cols = panel_grid(len(panels), 3.6, 3.0)
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
    labels, said = legend_labels(handles, data, "line")
    fig.legend(list(handles.values()), labels, loc="outside lower center", ncols=min(len(labels), 2 + 2 * cols),
               title=f"mean ± std over training seeds (n = seeds) · {STAT_TEXT[stat]}", frameon=False)
    if not multi_dataset:
        fig.suptitle(f"{data['dataset'].iloc[0]}: accuracy under label noise{said}")
    return fig
