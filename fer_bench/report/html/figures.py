"""The numbers behind the report's interactive figures, from :mod:`fer_bench.report.plots`' data functions.

The page draws them itself (``static/report.js``); what it draws comes from here, computed by the same
functions as ``fer-bench plot curves`` and ``fer-bench plot memorisation`` (:func:`curves_data`,
:func:`memorisation_data`), with names, colours and line styles from :mod:`fer_bench.report.style`. Each
point of the accuracy figure carries the runs behind it (their keys, seeds and values), which the page
shows on hover and links to.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import pandas as pd

from ..plots.canvas import METRIC_TEXT, STAT_TEXT
from ..plots.curves import curves_data
from ..plots.mechanisms import mechanisms_data
from ..plots.memorisation import MEMORISATION_LINES, memorisation_data
from ..style import (LINESTYLES, _PALETTE, block_title, method_color, method_of, method_title, noise_title,
                     profile_name, setting_key, shared_profile, variant_order)
from .overview import group_id
from .tree import Tree

# matplotlib's line styles as SVG dash arrays (in line widths), for the page's lines
_DASHES = {"-": "", "--": "6 3", "-.": "6 2.5 1.5 2.5", ":": "1.5 2.5"}


def hex_color(rgb: Sequence[float]) -> str:
    """``#0173b2`` for an RGB triple in [0, 1] (the style module's colours)."""
    return "#" + "".join(f"{round(255 * float(c)):02x}" for c in rgb[:3])


def palette() -> list[str]:
    """The style module's palette (seaborn's colour-blind one), for lines that are not methods."""
    return [hex_color(c) for c in _PALETTE]


def dash_array(style: Any) -> str:
    """An SVG ``stroke-dasharray`` for a matplotlib line style (``"-"``, ``"--"``, ``(0, (5, 1, 1, 1))``)."""
    if isinstance(style, tuple):
        return " ".join(f"{1.6 * float(v):g}" for v in style[1])
    return _DASHES.get(style, "")


def line_styles(lines: Sequence[str]) -> dict[str, dict[str, str]]:
    """Per line (a variant): its title, colour and dashes. A method's variants share its colour and differ in
    dashes, in :func:`~fer_bench.report.style.variant_order`, as in ``fer-bench plot curves``."""
    lines = variant_order(list(lines))
    said = shared_profile(lines)
    out: dict[str, dict[str, str]] = {}
    for line in lines:
        same = sum(method_of(x) == method_of(line) for x in out)
        out[line] = {"title": method_title(line, said), "color": hex_color(method_color(line)),
                     "dash": dash_array(LINESTYLES[same % len(LINESTYLES)])}
    return out


def _num(value: Any, digits: int = 4) -> Optional[float]:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else round(value, digits)


def accuracy_figure(tree: Tree, stat: str, metric: str, methods: Sequence[str] = ()) -> dict[str, Any]:
    """Accuracy against the noise rate (``fer-bench plot curves``' numbers): panels (dataset x noise type) of
    lines of points, each point with its runs; or ``{"message": why}`` when there is nothing to draw."""
    try:
        data = curves_data(tree.runs, stat, metric, methods=list(methods) or None)
    except ValueError as exc:
        return {"message": str(exc)}
    runs = tree.runs
    styles = line_styles(data["line"].unique())
    column = f"{metric}_{stat}"
    by_group = {k: g.sort_values("seed") for k, g in runs.groupby(["dataset", "setting", "variant"], sort=False)}
    multi = data["dataset"].nunique() > 1
    panels = []
    keys = sorted(data[["dataset", "panel"]].drop_duplicates().itertuples(index=False, name=None),
                  key=lambda p: (p[0], setting_key(p[1], 0.0)))
    for dataset, panel in keys:
        part = data[(data["dataset"] == dataset) & (data["panel"] == panel)]
        lines = []
        for line in styles:
            d = part[part["line"] == line].sort_values("rate")
            if d.empty:
                continue
            points = []
            for r in d.itertuples(index=False):
                behind = by_group.get((dataset, r.setting, r.variant), pd.DataFrame(columns=["seed", "run_dir"]))
                points.append({"x": _num(r.rate), "y": _num(r.mean), "std": _num(r.std), "n": int(r.n),
                               "setting": r.setting, "title": block_title(*_noise_rate(runs, r.setting)),
                               "group": group_id(dataset, r.setting, r.variant),
                               "runs": [{"key": tree.relative(rd), "seed": int(s), "value": _num(v, 2)}
                                        for s, rd, v in zip(behind["seed"], behind["run_dir"], behind[column])]})
            lines.append({"line": line, **styles[line], "points": points})
        title = f"{dataset} · {noise_title(panel)}" if multi else f"{noise_title(panel)} noise"
        panels.append({"dataset": dataset, "panel": panel, "title": title, "lines": lines})
    said = shared_profile(styles)
    return {"panels": panels, "y_label": METRIC_TEXT[metric], "x_label": "noise rate",
            "note": f"mean ± std over training seeds · {STAT_TEXT[stat]}"
                    + (f" · profile {profile_name(said)}" if said else "")}


def _noise_rate(runs: pd.DataFrame, setting: str) -> tuple[str, float, str]:
    row = runs[runs["setting"] == setting].iloc[0]
    return str(row["noise"]), float(row["rate"]), setting


def memorisation_figure(tree: Tree, methods: Sequence[str] = ()) -> dict[str, Any]:
    """Per noisy setting, the flipped images' memorised and corrected shares per epoch and method
    (``fer-bench plot memorisation``' numbers), or ``{"message": why}``."""
    try:
        data = memorisation_data(tree.runs, methods=list(methods) or None)
    except ValueError as exc:
        return {"message": str(exc)}
    styles = line_styles(data["variant"].unique())
    multi = data["dataset"].nunique() > 1
    panels = []
    keys = sorted(data[["dataset", "setting", "noise", "rate"]].drop_duplicates().itertuples(index=False, name=None),
                  key=lambda p: (p[0], setting_key(p[2], p[3], p[1])))
    for dataset, setting, noise, rate in keys:
        part = data[(data["dataset"] == dataset) & (data["setting"] == setting)]
        lines = []
        for variant, style in styles.items():
            d = part[part["variant"] == variant].sort_values("epoch")
            if d.empty:
                continue
            for share, (words, mpl_style) in MEMORISATION_LINES.items():
                lines.append({"line": f"{variant}/{share}", "title": f"{style['title']}: {share.split('_')[1]}",
                              "color": style["color"], "dash": dash_array(mpl_style), "words": words,
                              "n": int(d["n"].max()), "group": group_id(dataset, setting, variant),
                              "points": [{"x": int(e), "y": _num(v, 2)} for e, v in zip(d["epoch"], d[share])]})
        title = block_title(noise, rate, setting)
        panels.append({"dataset": dataset, "setting": setting, "title": f"{dataset} · {title}" if multi else title,
                       "lines": lines})
    legend = [{"title": s["title"], "color": s["color"]} for s in styles.values()]
    return {"panels": panels, "legend": legend, "y_label": "share of flipped training images (%)", "x_label": "epoch",
            "note": "solid: memorised (predicts the noisy label) · dashed: corrected (predicts the clean label) "
                    "· mean over seeds"}


def mechanisms_figure(tree: Tree, methods: Sequence[str] = ()) -> dict[str, Any]:
    """Per noisy setting and method, each diagnostic family of its mechanism per epoch (``fer-bench plot
    mechanisms``' numbers: the ``mech_*`` columns scored against the flipped labels), or ``{"message": why}``."""
    try:
        data = mechanisms_data(tree.runs, methods=list(methods) or None)
    except ValueError as exc:
        return {"message": str(exc)}
    styles = line_styles(data["variant"].unique())
    dashes = [dash_array(s) for s in LINESTYLES]
    multi = data["dataset"].nunique() > 1
    panels = []
    keys = sorted(data[["dataset", "setting", "noise", "rate"]].drop_duplicates().itertuples(index=False, name=None),
                  key=lambda p: (p[0], setting_key(p[2], p[3], p[1])))
    for dataset, setting, noise, rate in keys:
        here = data[(data["dataset"] == dataset) & (data["setting"] == setting)]
        for method in variant_order(list(here["method"].unique())):
            mine = here[here["method"] == method]
            for family in dict.fromkeys(mine["family"]):
                part = mine[mine["family"] == family]
                columns = list(dict.fromkeys(part["column"]))
                lines = []
                for variant, style in styles.items():
                    for k, column in enumerate(columns):
                        d = part[(part["variant"] == variant) & (part["column"] == column)].sort_values("epoch")
                        if d.empty:
                            continue
                        lines.append({"title": f"{style['title']}: {d['what'].iloc[0]}", "color": style["color"],
                                      "dash": dashes[k % len(dashes)],
                                      "points": [{"x": int(e), "y": _num(v)} for e, v in zip(d["epoch"], d["value"])]})
                title = f"{method_title(method)} · {family.replace('_', ' ')} · {block_title(noise, rate, setting)}"
                panels.append({"title": f"{dataset} · {title}" if multi else title, "lines": lines})
    return {"panels": panels, "x_label": "epoch",
            "note": "each line a diagnostic (its own dashes) of a method's mechanism, scored against the flipped "
                    "training labels the method never sees · mean over seeds"}

