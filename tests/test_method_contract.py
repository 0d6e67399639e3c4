"""The contract every registered method must meet (built-in and plugin alike).

Parametrized over the registry, so a new method is tested by registering it:
on tiny data, on CPU, it trains, evaluates on the clean test set, saves a
checkpoint, resumes after an interruption to the same numbers, and its final
model re-evaluates to the recorded accuracy.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import fer_bench.engine.run as engine
from fer_bench.registry import list_methods
from fer_bench.runs.model import evaluate_run

from .conftest import interrupt_then_resume, tiny_spec


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("method", list_methods())
def test_trains_evaluates_saves_and_resumes(method: str, tiny_synth: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    full = engine.main(tiny_spec(tiny_synth, tmp_path / "a", method=method, noise="sym", rate=0.3))
    run_dir = Path(full["run_dir"])
    for name in ("config.json", "noise.json", "train_labels.txt", "env.json", "metrics.csv",
                 "checkpoint.pt", "result.json"):
        assert (run_dir / name).is_file(), name
    assert full["epochs"] == 2 and len(_metrics(run_dir)) == 2
    for key in ("acc_last", "acc_best", "acc_last5", "mean_class_acc_last"):
        assert 0.0 <= full[key] <= 1.0
    assert json.loads((run_dir / "result.json").read_text())["acc_last"] == full["acc_last"]

    # Interrupt the same run after its first epoch, then run it again: it resumes.
    spec_b = tiny_spec(tiny_synth, tmp_path / "b", method=method, noise="sym", rate=0.3)
    resumed = interrupt_then_resume(spec_b, monkeypatch)
    run_b = Path(resumed["run_dir"])

    assert resumed["confusion_last"] == full["confusion_last"]
    assert [r["train_loss"] for r in _metrics(run_b)] == [r["train_loss"] for r in _metrics(run_dir)]

    evaluated = evaluate_run(run_dir, progress=False)
    assert evaluated["acc"] == pytest.approx(full["acc_last"])
