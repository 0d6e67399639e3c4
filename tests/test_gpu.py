"""The CUDA path: every registered method trains, resumes and evaluates on a GPU.

CI has no GPU, so these carry the ``gpu`` marker and run only when asked for
(``pytest -m gpu``). They check what the CPU tests cannot: the image cache on
the device, bf16 autocast, channels-last, non-blocking copies, a checkpoint
written on the GPU that loads on the CPU, and a sweep packing runs onto one GPU.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

import fer_bench.engine.run as engine
from fer_bench.engine.run import resolve
from fer_bench.registry import list_methods
from fer_bench.engine.trained import evaluate_run
from fer_bench.sweep.local import run_local

from .conftest import interrupt_then_resume, tiny_spec

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _train_losses(run_dir: Path) -> list[float]:
    with open(run_dir / "metrics.csv") as f:
        return [float(r["train_loss"]) for r in csv.DictReader(f)]


@pytest.mark.parametrize("method", list_methods())
def test_trains_resumes_and_evaluates_on_cuda(method: str, tiny_synth: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    full = engine.main(tiny_spec(tiny_synth, tmp_path / "a", method=method, noise="sym", rate=0.3, device="cuda"))
    run_dir = Path(full["run_dir"])
    assert full["device"].startswith("cuda")
    assert json.loads((run_dir / "env.json").read_text())["device"].startswith("cuda")

    resumed = interrupt_then_resume(
        tiny_spec(tiny_synth, tmp_path / "b", method=method, noise="sym", rate=0.3, device="cuda"), monkeypatch)
    assert resumed["epochs"] == 2
    # GPU kernels (atomics in grid_sample's backward, cuDNN's algorithm choice) are not
    # bit-reproducible, but the seeded first epoch must be the same computation.
    assert _train_losses(Path(resumed["run_dir"]))[0] == pytest.approx(_train_losses(run_dir)[0], rel=1e-2)

    on_gpu = evaluate_run(run_dir, device_name="cuda", progress=False)
    assert on_gpu["acc"] == pytest.approx(full["acc_last"], abs=0.05)
    # A checkpoint written on the GPU is evaluated on a CPU (fp32 there, bf16 on the GPU).
    on_cpu = evaluate_run(run_dir, device_name="cpu", progress=False)
    assert on_cpu["acc"] == pytest.approx(full["acc_last"], abs=0.1)


def test_a_sweep_packs_two_runs_onto_one_gpu(tiny_synth: Path, tmp_path: Path) -> None:
    specs = [tiny_spec(tiny_synth, tmp_path, noise="sym", rate=0.2, seed=s) for s in (0, 1)]
    outcomes = run_local(specs, device="cuda:0", runs_per_gpu=2, progress=False)
    assert [o.status for o in outcomes] == ["done", "done"]
    for spec in specs:
        run_dir = resolve(spec).run_dir
        assert json.loads((run_dir / "result.json").read_text())["device"].startswith("cuda")
