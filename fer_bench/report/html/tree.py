"""The results tree a report shows, read once: finished, unfinished and unreadable runs, and the grid's holes.

Finished runs are what every other report reads (:func:`fer_bench.runs.collect`, then
:func:`fer_bench.runs.to_frame`), so a report shows exactly the runs ``fer-bench table`` counts. What
``collect`` leaves out with a warning (an unreadable or invalid ``result.json``, a copy, a second directory
of one run) is a :class:`BadRun`, named by its directory and the warning; a directory with a
``config.json`` and no ``result.json`` is a run still training or interrupted (:class:`UnfinishedRun`).
:func:`grid` lays the runs out as settings x methods x seeds and says which seeds are missing or unfinished.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from ...runs import RunDir, RunError, RunId, RunRecord, collect, to_frame

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class BadRun:
    """A run directory the report could not read: where (relative to the results root), why, and who it
    is when its config says so (to place it in the grid)."""

    path: str
    problem: str
    dataset: Optional[str] = None
    setting: Optional[str] = None
    variant: Optional[str] = None
    seed: Optional[int] = None


@dataclass(frozen=True)
class UnfinishedRun:
    """A run directory with a config and no result (training, or interrupted): who it is and how far it got."""

    path: str
    dataset: str
    setting: str
    variant: str
    seed: int
    epochs_done: int
    epochs: Optional[int]


@dataclass
class Tree:
    """Everything below one results root that a report shows."""

    root: Path
    records: list[RunRecord]
    runs: "pd.DataFrame"
    unfinished: list[UnfinishedRun] = field(default_factory=list)
    bad: list[BadRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # collect's other words (label files under several names)

    def relative(self, path: Path | str) -> str:
        """``path`` relative to the results root, with ``/`` (how the report names a run)."""
        path = Path(path)
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.as_posix()

    def key(self, record: RunRecord) -> str:
        """A run's key in the report: its directory relative to the results root (unique, readable)."""
        return self.relative(record.dir.path)


def _names(warning: str, where: Path) -> bool:
    """Whether ``warning`` names the directory ``where`` (or a file in it), not merely one that starts alike."""
    return re.search(re.escape(str(where)) + r"(?=[/:;,)\s]|$)", warning) is not None


def read_tree(root: Path | str) -> Tree:
    """Read the results tree below ``root`` (any depth). A missing directory is a ValueError naming it."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"results directory not found: {root}")
    said: list[str] = []
    records = collect(root, warn=said.append)
    tree = Tree(root, records, to_frame(records))
    kept = {r.dir.path.resolve() for r in records}
    for result in sorted(root.rglob("result.json")):
        where = result.parent
        if where.resolve() in kept:
            continue
        words = [w for w in said if _names(w, where)]
        tree.bad.append(_bad(tree, where, words[0] if words else "left out (no valid record)"))
    shown = {b.problem for b in tree.bad}
    tree.notes = [_short(tree, w) for w in said if _short(tree, w) not in shown]
    for config in sorted(root.rglob("config.json")):
        where = config.parent
        if (where / "result.json").exists():
            continue
        run_dir = RunDir(where)
        try:
            saved = run_dir.config()
            run_id = RunId.from_config(saved)
        except (RunError, KeyError, TypeError, ValueError, AttributeError) as exc:
            tree.bad.append(_bad(tree, where, f"{config}: not a run's config ({exc})"))
            continue
        epochs = (saved.get("recipe") or {}).get("epochs")
        tree.unfinished.append(UnfinishedRun(tree.relative(where), run_id.dataset, run_id.setting, run_id.variant,
                                             run_id.seed, run_dir.epochs_done(),
                                             epochs if isinstance(epochs, int) else None))
    return tree


def _short(tree: Tree, words: str) -> str:
    """``words`` with the results root left out of the paths they name (a published report names no local paths)."""
    return words.replace(str(tree.root).rstrip("/") + "/", "")


def _bad(tree: Tree, where: Path, problem: str) -> BadRun:
    """A :class:`BadRun`, placed by its config when that can be read."""
    try:
        run_id = RunId.from_config(RunDir(where).config())
    except (RunError, KeyError, TypeError, ValueError, AttributeError):
        return BadRun(tree.relative(where), _short(tree, problem))
    return BadRun(tree.relative(where), _short(tree, problem), run_id.dataset, run_id.setting, run_id.variant,
                  run_id.seed)


def chosen_runs(runs: "pd.DataFrame", methods: Sequence[str] = ()) -> "pd.DataFrame":
    """The runs the tables show: the chosen variants, else each method's default runs (as
    :func:`fer_bench.report.collect.aggregate` chooses them)."""
    return runs[runs["variant"].isin(methods)] if methods else runs[runs["is_default"]]


def grid(tree: Tree, methods: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Per dataset, settings x variants: the seeds finished, unfinished (with their epoch) and missing.

    The seeds a cell should have are every seed found in its dataset (finished or not); the variants are
    those the tables show (:func:`chosen_runs`), and the unfinished runs' own.
    """
    from ..style import block_title, method_title, shared_profile, variant_order
    from ..tables import setting_order

    runs = chosen_runs(tree.runs, methods)
    shown = dict(zip(runs["run_variant"], runs["variant"]))  # a directory's variant -> the tables' name
    finished: dict[tuple[str, str, str], set[int]] = {}
    for r in runs.itertuples(index=False):
        finished.setdefault((r.dataset, r.setting, r.variant), set()).add(int(r.seed))
    unfinished: dict[tuple[str, str, str], list[UnfinishedRun]] = {}
    for u in tree.unfinished:
        variant = shown.get(u.variant, u.variant)
        if methods and variant not in methods:
            continue
        unfinished.setdefault((u.dataset, u.setting, variant), []).append(u)
    bad: dict[tuple[str, str, str], list[BadRun]] = {}
    for b in tree.bad:
        variant = shown.get(str(b.variant), b.variant)
        if b.dataset is not None and b.setting is not None and variant is not None and b.seed is not None \
                and not (methods and variant not in methods):
            bad.setdefault((b.dataset, b.setting, variant), []).append(b)
    rates = dict(zip(tree.runs["setting"], tree.runs["rate"]))
    out = []
    for dataset in sorted({k[0] for k in [*finished, *unfinished, *bad]}):
        keys = [k for k in [*finished, *unfinished, *bad] if k[0] == dataset]
        seeds = sorted({s for k in keys for s in finished.get(k, ())} | {u.seed for k in keys for u in unfinished.get(k, ())}
                       | {int(b.seed) for k in keys for b in bad.get(k, ()) if b.seed is not None})
        variants = variant_order(sorted({k[2] for k in keys}))
        said = shared_profile(variants)
        rows = []
        for setting, noise, rate in setting_order({k[1] for k in keys}, rates):
            cells = []
            for variant in variants:
                done = finished.get((dataset, setting, variant), set())
                going = sorted(unfinished.get((dataset, setting, variant), []), key=lambda u: u.seed)
                broken = sorted(bad.get((dataset, setting, variant), []), key=lambda b: int(b.seed or 0))
                other = {u.seed for u in going} | {b.seed for b in broken}
                cells.append({"done": sorted(done), "unfinished": [{"seed": u.seed, "epochs_done": u.epochs_done,
                                                                    "epochs": u.epochs, "path": u.path} for u in going],
                              "bad": [{"seed": b.seed, "path": b.path} for b in broken],
                              "missing": [s for s in seeds if s not in done and s not in other]})
            rows.append({"setting": setting, "title": block_title(noise, rate, setting), "cells": cells})
        out.append({"dataset": dataset, "seeds": seeds, "variants": [method_title(v, said) for v in variants],
                    "rows": rows})
    return out
