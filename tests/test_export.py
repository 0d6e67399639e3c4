"""``fer-bench export``: the exported inference network gives the run's own test predictions."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import fer_bench.engine.run as engine
from fer_bench.augment import BatchAugment
from fer_bench.cli import main
from fer_bench.engine.metrics import confusion_matrix
from fer_bench.engine.build import augment_config
from fer_bench.registry import list_methods
from fer_bench.engine.trained import load_trained

from .conftest import tiny_spec


def _run(tiny_synth: Path, out: Path, method: str) -> Path:
    spec = tiny_spec(tiny_synth, out, method=method, noise="sym", rate=0.2, seed=0, overrides={"epochs": 1})
    engine.main(spec)
    return engine.resolve(spec).run_dir


def _test_inputs(run_dir: Path) -> tuple[torch.Tensor, np.ndarray, dict]:
    trained = load_trained(run_dir, device_name="cpu", progress=False)
    x = BatchAugment(augment_config(trained.config["recipe"])).eval(torch.from_numpy(trained.dataset.test.images))
    return x, trained.dataset.test.labels, json.loads((run_dir / "result.json").read_text())


@pytest.mark.parametrize("method", list_methods())
def test_exported_model_reproduces_the_runs_test_predictions(tiny_synth: Path, tmp_path: Path, method: str) -> None:
    run_dir = _run(tiny_synth, tmp_path / "runs", method)
    x, labels, result = _test_inputs(run_dir)
    names = result["class_names"]
    for fmt in ("torchscript", "state_dict"):
        out = tmp_path / f"model.{fmt}"
        res = CliRunner().invoke(main, ["export", str(run_dir), "--out", str(out), "--format", fmt])
        assert res.exit_code == 0, res.output
        meta = json.loads((tmp_path / f"model.{fmt}.json").read_text())
        assert meta["class_names"] == names and meta["input"]["shape"][1:] == [3, x.shape[2], x.shape[3]]
        if fmt == "torchscript":
            net = torch.jit.load(str(out))
        else:  # a fresh inference network of the same method, its weights only from the file
            net = load_trained(run_dir, device_name="cpu", progress=False).method.inference_network()
            for p in net.parameters():
                p.data.zero_()
            net.load_state_dict(torch.load(out, weights_only=True))
        with torch.no_grad():
            pred = net.eval()(x).argmax(1).numpy()
        cm = confusion_matrix(np.asarray(labels, dtype=np.int64), pred, len(names))
        assert cm.tolist() == result["confusion_last"], fmt


def test_training_heads_are_left_out(tiny_synth: Path, tmp_path: Path) -> None:
    run_dir = _run(tiny_synth, tmp_path / "runs", "lanet")
    out = tmp_path / "lanet.pt"
    assert CliRunner().invoke(main, ["export", str(run_dir), "--out", str(out)]).exit_code == 0
    exported = torch.load(out, weights_only=True)
    whole = torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]
    assert len(exported) < len(whole)
    assert not any(k.startswith(("lde", "heads", "key", "landmark")) for k in exported)


@pytest.mark.skipif(importlib.util.find_spec("onnx") is not None, reason="onnx is installed")
def test_onnx_without_the_package_names_the_extra(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    res = CliRunner().invoke(main, ["export", str(tmp_path), "--out", str(out), "--format", "onnx"])
    assert res.exit_code == 2 and "fer-bench[onnx]" in res.output
    assert not out.exists() and not (tmp_path / "m.onnx.json").exists()


def test_onnx_export_matches(tiny_synth: Path, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    run_dir = _run(tiny_synth, tmp_path / "runs", "baseline")
    x, labels, result = _test_inputs(run_dir)
    out = tmp_path / "m.onnx"
    res = CliRunner().invoke(main, ["export", str(run_dir), "--out", str(out), "--format", "onnx"])
    assert res.exit_code == 0, res.output
    logits = ort.InferenceSession(str(out)).run(None, {"images": x.numpy()})[0]
    cm = confusion_matrix(np.asarray(labels, dtype=np.int64), logits.argmax(1), len(result["class_names"]))
    assert cm.tolist() == result["confusion_last"]
