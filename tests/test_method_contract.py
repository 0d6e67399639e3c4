"""The contract every registered method must meet (built-in and plugin alike).

Parametrized over the registry, so a new method is tested by registering it:
on small data, on CPU with two torch threads, it trains, evaluates on the clean
test set and saves a checkpoint; the same run in another process, killed
(SIGKILL) half-way and run again, resumes and ends with the same numbers to the
last bit; and its final model re-evaluates to the recorded accuracy.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import fer_bench.engine.run as engine
from fer_bench.registry import list_methods
from fer_bench.engine.trained import evaluate_run

from .conftest import kill_then_resume, tiny_spec, torch_threads


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def _numbers(result: dict) -> dict:
    """Everything a run computed: per-epoch metrics (not its timing), the result's statistics."""
    timing = ("train_seconds", "images_per_s")
    rows = [{k: v for k, v in r.items() if k not in timing} for r in _metrics(Path(result["run_dir"]))]
    kept = ("acc_last", "acc_best", "best_epoch", "acc_last5", "mean_class_acc_last", "confusion_last",
            "relabel", "method_info")
    return {"metrics": rows, **{k: result.get(k) for k in kept}}


@pytest.mark.parametrize("method", list_methods())
def test_trains_evaluates_saves_and_resumes(method: str, small_synth: Path, tmp_path: Path) -> None:
    def spec(out: str):
        return tiny_spec(small_synth, tmp_path / out, method=method, noise="sym", rate=0.3,
                         overrides={"batch_size": 64})

    with torch_threads(2):
        full = engine.main(spec("a"))
    run_dir = Path(full["run_dir"])
    for name in ("config.json", "noise.json", "train_labels.txt", "env.json", "metrics.csv",
                 "checkpoint.pt", "result.json"):
        assert (run_dir / name).is_file(), name
    assert full["epochs"] == 2 and len(_metrics(run_dir)) == 2
    for key in ("acc_last", "acc_best", "acc_last5", "mean_class_acc_last"):
        assert 0.0 <= full[key] <= 1.0
    assert json.loads((run_dir / "result.json").read_text())["acc_last"] == full["acc_last"]

    # The same command in a new process on two threads, SIGKILLed in the middle of its second
    # epoch, then run again: its first epoch and, resumed, its second are the same to the last bit.
    with torch_threads(2):
        resumed = kill_then_resume(spec("b"))
    assert _numbers(resumed) == _numbers(full)

    evaluated = evaluate_run(run_dir, progress=False)
    assert evaluated["acc"] == pytest.approx(full["acc_last"])
