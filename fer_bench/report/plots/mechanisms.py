"""Whether each method's mechanism did what its paper says: the ``mech_*`` columns of every noisy run's
``metrics.csv`` over the epochs (:mod:`fer_bench.engine.mechanism`), one panel per method and diagnostic."""

from __future__ import annotations

import re
from typing import Optional, Sequence

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ...engine.mechanism import PREFIX
from ..style import LINESTYLES, block_title, method_color, method_of, method_title, setting_key, variant_order
from .canvas import panel_grid, styled

# What a probe's column name ends with (fer_bench.methods.probes), and how a legend says it.
_SUFFIXES = {"_clean_among_": "clean, among {}", "_clean": "clean (flipped)", "_noisy": "noisy (flipped)",
             "_agree": "agrees with clean (all)", "_auroc": "AUROC flipped vs not", "_share": "share of samples",
             "_precision": "precision vs flipped", "_recall": "recall of flipped"}
_MARKERS = [None, "o", "s", "^", "D"]


def split_column(column: str) -> tuple[str, str]:
    """``(family, what)`` of a ``mech_*`` column: ``mech_memory_clean_among_neighbours`` is the ``memory``
    family's "clean, among neighbours"; a plain number is its own family."""
    name = column[len(PREFIX):]
    for suffix, text in _SUFFIXES.items():
        m = re.match(rf"^(.+?){suffix}(.*)$", name)
        if m and (suffix.endswith("_") or not m[2]):
            return m[1], text.format(m[2])
    return name, name.replace("_", " ")


def mechanisms_data(runs: pd.DataFrame, dataset: Optional[str] = None,
                    methods: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Per (dataset, setting, variant, column, epoch): the mean over seeds of each ``mech_*`` column of the
    noisy runs' ``metrics.csv`` that changes over some run's training (one constant in every run, such as a
    map's side, is a setting and is left out). Runs recorded before the diagnostics existed have none; no run with any is an error."""
    runs = runs[runs["noise"] != "none"]
    if dataset:
        runs = runs[runs["dataset"] == dataset]
    if methods:
        runs = runs[runs["method"].isin(methods) | runs["variant"].isin(methods)]
    frames = []
    for r in runs.itertuples(index=False):
        path = r.record.dir.metrics_file
        metrics = pd.read_csv(path) if path.is_file() else pd.DataFrame()
        columns = [c for c in metrics.columns if c.startswith(PREFIX)]
        if not columns:
            continue
        long = metrics.melt(id_vars=["epoch"], value_vars=columns, var_name="column", value_name="value")
        frames.append(long.assign(dataset=r.dataset, setting=r.setting, noise=r.noise, rate=r.rate,
                                  variant=r.variant, seed=r.seed))
    if not frames:
        raise ValueError("no noisy run with mechanism diagnostics (mech_* columns) in its metrics.csv: runs "
                         "recorded before they existed, and methods without a mechanism to report, have none")
    data = pd.concat(frames, ignore_index=True)
    within = data.groupby(["dataset", "setting", "variant", "seed", "column"])["value"].nunique(dropna=True) > 1
    varies = within.groupby(level="column").any()
    data = data[data["column"].isin(varies[varies].index)]
    if data.empty:
        raise ValueError("the mechanism diagnostics found are all constant over training: nothing to draw")
    keys = ["dataset", "setting", "noise", "rate", "variant", "column", "epoch"]
    grouped = data.groupby(keys, sort=False)
    out = grouped["value"].mean().reset_index()
    out["n"] = grouped["seed"].nunique().values
    families = out["column"].map(split_column)
    out["family"], out["what"] = families.str[0], families.str[1]
    out["method"] = out["variant"].map(method_of)
    return out


@styled
def mechanisms_figure(data: pd.DataFrame) -> Figure:
    """One row of panels per (noise setting, method), one panel per diagnostic family of the method; in a
    panel, one line per column of the family (its own dashes) and variant (its own marker), in the method's
    colour. Each panel's ``gid`` is ``<dataset>/<setting>/<method>/<family>``, each line's ``<variant>/<column>``."""
    settings = sorted(data[["dataset", "setting", "noise", "rate"]].drop_duplicates().itertuples(index=False, name=None),
                      key=lambda s: (s[0], setting_key(s[2], s[3], s[1])))
    methods = variant_order(list(data["method"].unique()))
    families = {m: list(dict.fromkeys(data.loc[data["method"] == m, "family"])) for m in methods}
    cols = max(len(f) for f in families.values())
    rows = [(s, m) for s in settings for m in methods]
    fig, axes, _ = panel_grid(len(rows) * cols, 3.0, 2.5, cols=cols)
    variants = variant_order(list(data["variant"].unique()))
    marker = {v: _MARKERS[i % len(_MARKERS)] for i, v in enumerate(variants)}
    for r, ((ds, setting, noise, rate), method) in enumerate(rows):
        for c in range(cols):
            ax = axes[r * cols + c]
            if c >= len(families[method]):
                ax.set_visible(False)
                continue
            family = families[method][c]
            ax.set_gid(f"{ds}/{setting}/{method}/{family}")
            part = data[(data["dataset"] == ds) & (data["setting"] == setting) & (data["method"] == method)
                        & (data["family"] == family)]
            columns = list(dict.fromkeys(part["column"]))
            here = variant_order(list(part["variant"].unique()))
            for variant in here:
                for k, column in enumerate(columns):
                    d = part[(part["variant"] == variant) & (part["column"] == column)].sort_values("epoch")
                    ax.plot(d["epoch"], d["value"], color=method_color(variant), linestyle=LINESTYLES[k % len(LINESTYLES)],
                            marker=marker[variant], markersize=3, gid=f"{variant}/{column}",
                            label=d["what"].iloc[0] if variant == here[0] and len(d) else None)
            ax.set_title(f"{method_title(method)} · {family.replace('_', ' ')} · {block_title(noise, rate, setting)}",
                         fontsize="small")
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel("epoch")
            if any(line.get_label() and not line.get_label().startswith("_") for line in ax.get_lines()):
                ax.legend(fontsize="x-small", frameon=False)
    if len(variants) > 1:
        handles = [Line2D([], [], color="0.3", marker=marker[v], markersize=4) for v in variants]
        fig.legend(handles, [method_title(v) for v in variants], loc="outside lower center", frameon=False,
                   ncols=min(len(variants), 3), fontsize="small", title="markers: runs")
    fig.suptitle("Mechanism diagnostics, scored against the flipped labels (mean over seeds)")
    return fig
