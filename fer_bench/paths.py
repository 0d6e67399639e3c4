"""Where data and results live: ``./datasets`` and ``./results`` unless the environment says otherwise."""

from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    """The data root (``FER_BENCH_DATA``, default ``./datasets``)."""
    return Path(os.environ.get("FER_BENCH_DATA", "datasets"))


def results_root() -> Path:
    """The results root (``FER_BENCH_RESULTS``, default ``./results``)."""
    return Path(os.environ.get("FER_BENCH_RESULTS", "results"))
