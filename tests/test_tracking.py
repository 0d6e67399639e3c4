"""``--log tensorboard|wandb``: the per-epoch row mirrored to a tracker, metrics.csv unchanged."""

from __future__ import annotations

import csv
import math
import importlib.util
from pathlib import Path

import pytest
from click.testing import CliRunner

import fer_bench.engine.run as engine
from fer_bench.cli import main
from fer_bench.tracking import TRACKERS, scalars

from .conftest import TINY_RECIPE, tiny_spec

TINY_SETS = [arg for k, v in TINY_RECIPE.items() for arg in ("--set", f"{k}={v}")]


def test_scalars_take_every_numeric_column_of_the_row() -> None:
    row = {"epoch": 3, "lr": 0.1, "train_loss": 1.5, "test_acc": 0.5, "confusion": [[1]], "memorised_share": 0.25,
           "flag": True, "note": "x", "nan": float("nan")}
    assert scalars(row) == {"epoch/lr": 0.1, "epoch/train_loss": 1.5, "epoch/test_acc": 0.5,
                            "epoch/memorised_share": 0.25}


@pytest.mark.parametrize("tracker", list(TRACKERS))
def test_missing_package_is_exit_2_naming_the_extra_before_the_run_directory(
        tracker: str, tiny_synth: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec(TRACKERS[tracker][0]) is not None:
        pytest.skip(f"{tracker} is installed")
    out = tmp_path / "runs"
    res = CliRunner().invoke(main, ["run", "--root", str(tiny_synth), "--out", str(out), "--quiet", "--log", tracker,
                                    *TINY_SETS])
    assert res.exit_code == 2 and f"fer-bench[{TRACKERS[tracker][1]}]" in res.output
    assert not out.exists()


TIMING = ("train_seconds", "images_per_s")


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def _numbers(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_tensorboard_event_file_holds_every_epoch_and_numbers_do_not_change(tiny_synth: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logged = tiny_spec(tiny_synth, tmp_path / "a", method="baseline", noise="annotator", rate=0.2, log="tensorboard")
    plain = tiny_spec(tiny_synth, tmp_path / "b", method="baseline", noise="annotator", rate=0.2)
    engine.main(logged)
    engine.main(plain)
    run_dir = engine.resolve(logged).run_dir
    rows = _metrics(run_dir)
    assert _numbers(rows) == _numbers(_metrics(engine.resolve(plain).run_dir))  # logging never changes a number
    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    for column in rows[0]:
        # a column that is NaN in every epoch (relabel_restored while a method rewrote no label) has no curve
        if column != "epoch" and any(math.isfinite(float(r[column])) for r in rows):
            assert f"epoch/{column}" in tags
    assert "epoch/relabel_restored" not in tags
    events = acc.Scalars("epoch/test_acc")
    assert [e.step for e in events] == [1, 2]
    assert [round(e.value, 6) for e in events] == [round(float(r["test_acc"]), 6) for r in rows]
    assert "noise/realised_rate" in tags and any(t.startswith("noise/flip_rate_by_vote_share/") for t in tags)
    assert "config/text_summary" in acc.Tags()["tensors"]


def test_wandb_offline(tiny_synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    spec = tiny_spec(tiny_synth, tmp_path / "runs", method="baseline", log="wandb")
    engine.main(spec)
    run_dir = engine.resolve(spec).run_dir
    offline = list((run_dir / "wandb").glob("offline-run-*"))
    assert offline and list(offline[0].glob("*.wandb"))
