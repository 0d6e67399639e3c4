"""A method's grid search: accuracy against each hyper-parameter that varies among its runs, one line per
noise setting (LA-Net's supplementary Fig. 1); the run without the override is the default point."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ..collect import METRICS, STATS
from ..style import block_title, setting_key
from .canvas import METRIC_TEXT, STAT_TEXT, n_text, panel_grid, styled

def _palette(names: Sequence[str]) -> dict[str, Any]:
    """Colours for lines that are not methods (a grid's noise settings), in their given order."""
    colors = sns.color_palette("colorblind", max(len(names), 1))
    return {name: colors[i % len(colors)] for i, name in enumerate(names)}


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


@styled
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
    fig, axes, cols = panel_grid(len(hparams), 3.5, 2.9)
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
    labels = [f"{titles[ln]} ({n_text(ns[ln])})" for ln in handles]
    fig.legend(list(handles.values()), labels, loc="outside lower center", ncols=min(len(labels), 4),
               title=f"mean ± std over training seeds (n = seeds) · {STAT_TEXT[stat]}", frameon=False)
    fig.suptitle(f"{method + ': ' if method else ''}grid search" +
                 (f" on {data['dataset'].iloc[0]}" if not multi_dataset else ""))
    return fig
