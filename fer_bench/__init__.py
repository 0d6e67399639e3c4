"""fer-bench: a benchmark suite for facial expression recognition under label noise.

The Python API (see docs/reference/python-api.md) in one namespace::

    import fer_bench as fb
    result = fb.run(fb.RunSpec(method="lanet", noise="asym", rate=0.2))
    runs = fb.collect_runs("results/runs")         # a DataFrame, one row per finished run
    print(fb.make_table(runs, fmt="markdown"))
    model = fb.load_trained(result["run_dir"])     # .logits(images), .dataset, .method

Names are imported on first use, so ``import fer_bench`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from . import threads as _threads

# OpenMP reads its settings once, when torch loads it: the thread policy goes first (and imports no torch).
try:
    _threads.apply_environment()
except _threads.ThreadPolicyError:  # reported with exit code 2 when a command or run starts
    pass

_EXPORTS = {
    "RunSpec": "fer_bench.engine.spec",
    "run": ("fer_bench.engine.run", "main"),
    "collect_runs": "fer_bench.report.collect",
    "aggregate": "fer_bench.report.collect",
    "make_table": "fer_bench.report.tables",
    "load_trained": "fer_bench.engine.trained",
    "evaluate_run": "fer_bench.engine.trained",
    "RunId": "fer_bench.runs",
    "RunDir": "fer_bench.runs",
    "RunRecord": "fer_bench.runs",
    "create_dataset": "fer_bench.registry",
    "list_datasets": "fer_bench.registry",
    "list_methods": "fer_bench.registry",
    "list_noise_models": "fer_bench.registry",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fer_bench' has no attribute {name!r}")
    where = _EXPORTS[name]
    module, attr = where if isinstance(where, tuple) else (where, name)
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
