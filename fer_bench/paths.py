"""Where data and results live.

The data root is one place per machine, whatever directory a command runs in,
so that the synthetic dataset is generated once and every run finds its data:
``FER_BENCH_DATA`` when set; else, when fer-bench runs from a source checkout,
that checkout's ``datasets/`` folder; else ``~/.cache/fer-bench/datasets``
(``$XDG_CACHE_HOME/fer-bench/datasets``). Results go to ``./results``
(``FER_BENCH_RESULTS``), next to the work that produced them, and runs below it to
``./results/runs`` unless ``--out`` names another runs root.
"""

from __future__ import annotations

import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """The data root (see the module docstring); always absolute."""
    env = os.environ.get("FER_BENCH_DATA")
    if env:
        return Path(env).resolve()
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "datasets").is_dir():
        return _CHECKOUT / "datasets"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).resolve() / "fer-bench" / "datasets"


def results_root() -> Path:
    """The results root (``FER_BENCH_RESULTS``, default ``./results``)."""
    return Path(os.environ.get("FER_BENCH_RESULTS", "results"))


def runs_root() -> Path:
    """Where runs go and reports look unless ``--out`` / ``--results`` say otherwise: ``<results root>/runs``."""
    return results_root() / "runs"
