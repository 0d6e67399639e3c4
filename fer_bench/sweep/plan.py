"""Expanding a sweep's axes into run specs, and telling which runs are already finished."""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterable, Optional

from ..engine.recipe import RecipeError, parse_value
from ..engine.spec import RunSpec, config_record, resolve
from ..runs import RunDir


@dataclass(frozen=True)
class Axes:
    """What a sweep varies. ``grid`` maps a recipe key or hyper-parameter to the values to try; ``imbalances``
    the ratios RHO of long-tailed training subsets (None: the full training split)."""

    methods: tuple[str, ...]
    datasets: tuple[str, ...] = ("synthfer",)
    noises: tuple[str, ...] = ("sym",)
    rates: tuple[float, ...] = (0.1, 0.2, 0.3)
    seeds: tuple[int, ...] = (0, 1, 2)
    clean: bool = False
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    imbalances: tuple[Optional[float], ...] = (None,)


def split_list(text: str) -> list[str]:
    """Split ``a,b,[c,d]`` on the commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "[("
        depth -= ch in "])"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_grid(items: Iterable[str]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """``["alpha=0.5,1", "tau=0.1"]`` -> ``(("alpha", (0.5, 1)), ("tau", (0.1,)))``."""
    grid = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not split_list(values):
            raise RecipeError(f"--grid expects key=v1,v2,..., got {item!r}")
        grid.append((key.strip(), tuple(parse_value(v) for v in split_list(values))))
    return tuple(grid)


def expand(axes: Axes, base: RunSpec) -> list[RunSpec]:
    """Every run of the sweep, checked (names, rates, keys) before anything starts.

    Seeds vary slowest, so a sweep stopped half-way leaves whole seeds finished.
    The noise model ``none`` means the clean labels, like ``clean=True``; a run
    reached twice (a repeated grid value) appears once. Every noise setting is
    crossed with every imbalance ratio; the base spec's ``imbalance_seed`` applies
    to the long-tailed ones.
    """
    clean = axes.clean or "none" in axes.noises
    settings = [("none", 0.0)] if clean else []
    settings += [(n, r) for n in axes.noises if n != "none" for r in axes.rates]
    keys = [k for k, _ in axes.grid]
    combos = list(itertools.product(*[v for _, v in axes.grid]))
    specs, seen = [], set()
    for seed, dataset, (noise, rate), imbalance, method, combo in itertools.product(
            axes.seeds, axes.datasets, settings, axes.imbalances, axes.methods, combos):
        spec = replace(base, method=method, dataset=dataset, noise=noise, rate=rate, seed=seed,
                       overrides={**base.overrides, **dict(zip(keys, combo))}, imbalance=imbalance,
                       imbalance_seed=base.imbalance_seed if imbalance is not None else None)
        run_dir = resolve(spec).run_dir
        if run_dir not in seen:
            seen.add(run_dir)
            specs.append(spec)
    return specs


def spec_to_json(spec: RunSpec) -> str:
    return json.dumps(asdict(spec))


def spec_from_json(text: str) -> RunSpec:
    return RunSpec(**json.loads(text))


def run_state(spec: RunSpec) -> str:
    """``finished``, ``partial (epoch k)``, ``new`` or ``different config`` without loading any data.

    A run counts as finished when its ``result.json`` is a valid record (:meth:`RunDir.finished`, as everywhere)
    and its saved config matches this spec's in everything but the noisy labels' hash and the data's
    fingerprint, which only the run itself computes (it needs the dataset).
    """
    run = resolve(spec)
    return RunDir(run.run_dir).state(config_record(run, None))
