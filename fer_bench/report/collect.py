"""Finished runs as one data frame, and their mean ± std over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from ..runs import collect, to_frame
from ..runs.identity import split_imbalance
from ..runs.record import GROUP, METRICS, STATS

__all__ = ["GROUP", "METRICS", "STATS", "aggregate", "collect_runs", "refuse_pooling", "unavailable_message"]


def collect_runs(results: Path) -> pd.DataFrame:
    """One row per finished run under ``results`` (any depth): its identity and every accuracy statistic.

    Runs still in progress (no ``result.json``) are left out, and so, each said on stderr, are invalid records,
    copies and second directories of one run (:func:`fer_bench.runs.collect`). Accuracies are in percent; the
    ``record`` column holds each run's :class:`~fer_bench.runs.RunRecord`.
    """
    return to_frame(collect(results))


def aggregate(runs: pd.DataFrame, stat: str = "last", metric: str = "acc",
              methods: Optional[list[str]] = None) -> pd.DataFrame:
    """Mean, sample std (ddof=1; NaN for one seed), count and the per-seed values (``seed_values``, for the
    tables' significance test) per setting and variant.

    ``noise_seeds_varied`` tells whether the noisy labels differed between the
    seeds (the default: the noise seed follows the training seed); never for clean labels.
    ``mechanism_off`` counts the runs that say part of their method's mechanism stayed off, and
    ``unpredicted`` those whose last-epoch model assigns no test image to some class;
    ``shared_overrides`` the ``--set`` values every run of the method shares, which its name leaves out.
    A cell with a run that lacks the statistic (``val`` of a run without a noisy validation
    split) is unavailable: its mean is NaN and ``unavailable`` counts those runs; the
    others are never averaged on their own.

    Where a run trained on a long-tailed subset (``--imbalance``; its setting names the
    ratio, so two ratios never share a cell), ``imbalance`` is each cell's ratio (NaN: the
    full training set) and ``imbalance_seeds_varied`` whether the subsets differed between
    the seeds; and accuracy gets its companion, mean class accuracy at the same statistic
    (:func:`companion`), which the tables show beside it.
    """
    if stat not in STATS or metric not in METRICS:
        raise ValueError(f"--stat must be one of {', '.join(STATS)} and --metric one of {', '.join(METRICS)}")
    if runs.empty:
        raise ValueError("no finished runs found (none with a valid result.json)")
    # A method's default runs carry its plain name; a variant (a grid's values, one seed each) is named
    # in full and goes in only when asked for, so that it never sits among the defaults unannounced.
    runs = runs[runs["variant"].isin(methods)] if methods else runs[runs["is_default"]]
    if runs.empty:
        raise ValueError(f"no finished runs of {', '.join(methods)}" if methods else
                         "no finished default runs (only variants; choose them with --methods)")
    refuse_pooling(runs)
    column = f"{metric}_{stat}"
    grouped = runs.groupby(GROUP, sort=False)
    out = grouped[column].agg(mean="mean", std="std", n="size").reset_index()
    out["unavailable"] = grouped[column].agg(lambda v: int(v.isna().sum())).values
    out.loc[out["unavailable"] > 0, ["mean", "std"]] = float("nan")
    out["seed_values"] = [tuple(v) for v in grouped[column].agg(list).values]
    out["noise_seeds_varied"] = (grouped["noise_seed"].nunique().values > 1) & (out["noise"] != "none").values
    out["protocol"] = grouped["protocol"].first().values
    out["profile"] = grouped["profile"].first().values
    out["shared_overrides"] = grouped["shared_overrides"].first().values
    for flag in ("mechanism_off", "unpredicted"):
        out[flag] = grouped[flag].agg(lambda v: sum(1 for listed in v if listed)).values
    rho = out["setting"].map(lambda s: split_imbalance(s)[1])
    if rho.notna().any():  # only then: the aggregate of runs on full training sets is as it was
        out["imbalance"] = rho.astype(float).values
        seeds = [_imbalance_seed(r) for _, r in runs.iterrows()]
        varied = runs.assign(_imbalance_seed=seeds).groupby(GROUP, sort=False)["_imbalance_seed"].nunique().values > 1
        out["imbalance_seeds_varied"] = varied & rho.notna().values
        if metric == "acc":
            out = companion(out, grouped, stat)
    return out


COMPANION = "mean_class_acc"  # accuracy's companion in the tables of long-tailed runs


def companion(out: pd.DataFrame, grouped: "pd.core.groupby.DataFrameGroupBy", stat: str) -> pd.DataFrame:
    """``out`` with ``companion_mean``, ``companion_std``, ``companion_seed_values`` and
    ``companion_unavailable``: mean class accuracy at ``stat``, cell by cell as accuracy is. On a long-tailed
    training set a method that gives up the tail classes keeps most of its accuracy and loses mean class
    accuracy (the mean of the per-class recalls on the test set), so the two are read together."""
    column = f"{COMPANION}_{stat}"
    values = grouped[column].agg(mean="mean", std="std")
    out = out.assign(companion_mean=values["mean"].values, companion_std=values["std"].values,
                     companion_seed_values=[tuple(v) for v in grouped[column].agg(list).values],
                     companion_unavailable=grouped[column].agg(lambda v: int(v.isna().sum())).values)
    out.loc[out["companion_unavailable"] > 0, ["companion_mean", "companion_std"]] = float("nan")
    return out


def _imbalance_seed(run: pd.Series) -> object:
    """The seed of a run's long-tailed subset: the one its setting names, else its default (the noise seed; a
    label file's run: the training seed); None on the full training set."""
    _, rho, seed = split_imbalance(run["setting"])
    if rho is None:
        return None
    if seed is not None:
        return seed
    return run["seed"] if run["noise"] == "file" or pd.isna(run["noise_seed"]) else run["noise_seed"]


def refuse_pooling(runs: pd.DataFrame) -> None:
    """A ValueError when one cell would pool runs of different profiles.

    A run's name leaves out its dataset's default profile of the day it was made, so runs made before and
    after a dataset's default changed can share a variant name (plain ``lanet``) but not a profile.
    """
    for key, cell in runs.groupby(GROUP, sort=False):
        one_each = cell.fillna({"profile": "?"}).drop_duplicates("profile")
        if len(one_each) > 1:
            where = dict(zip(GROUP, key))
            found = ", ".join(f"{r['profile']} in {r['run_dir']}" for _, r in one_each.iterrows())
            raise ValueError(f"{where['variant']} on {where['setting']} holds runs of different profiles "
                             f"({found}): they are not one setting; give each its own --results root")


def unavailable_message(agg: pd.DataFrame, stat: str) -> Optional[str]:
    """What to tell the user when entries of ``agg`` (:func:`aggregate`'s, or a figure's data with its
    ``unavailable`` column) lack ``stat``; None when none does."""
    cells = agg.drop_duplicates([c for c in GROUP if c in agg]) if "unavailable" in agg else agg.iloc[:0]
    missing = cells[cells["unavailable"] > 0] if len(cells) else cells
    if missing.empty:
        return None
    runs = int(missing["unavailable"].sum())
    return (f"--stat {stat} is unavailable for {len(missing)} entr{'y' if len(missing) == 1 else 'ies'}: "
            f"{runs} run{'' if runs == 1 else 's'} trained without a noisy validation split (--val-split F holds "
            f"one out); those entries show n/a")
