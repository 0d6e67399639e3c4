"""Shared fixtures: a tiny synthfer dataset and an isolated results root."""

from __future__ import annotations

import os

# Tests compare the numbers of repeated runs, so the thread count must not follow the machine's
# load: the suite runs without the adaptive thread policy (tests/test_threads.py checks it).
os.environ.setdefault("FER_BENCH_THREADS", "off")

from pathlib import Path
from typing import Any

import pytest

from fer_bench.datasets.synthfer.generate import generate
import fer_bench.engine.run as engine
from fer_bench.engine.run import RunSpec, resolve

# Small enough that one epoch of any method takes about a second on two cores.
TINY = {"n_train": 96, "n_test": 40, "size": 32, "seed": 3}
TINY_RECIPE = {"epochs": 2, "image_size": 32, "batch_size": 32}


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data") / "synthfer"
    generate(root, workers=1, progress=False, **TINY)
    return root


@pytest.fixture(autouse=True)
def isolated_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing a test does may touch ./datasets or ./results of the checkout."""
    monkeypatch.setenv("FER_BENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("FER_BENCH_RESULTS", str(tmp_path / "results"))


def tiny_spec(root: Path, out: Path, **kw: Any) -> RunSpec:
    overrides = dict(TINY_RECIPE)
    overrides.update(kw.pop("overrides", {}))
    return RunSpec(dataset="synthfer", root=str(root), out=str(out), progress=False, overrides=overrides, **kw)


def interrupt_then_resume(spec: RunSpec, monkeypatch: pytest.MonkeyPatch, epoch: int = 1) -> dict[str, Any]:
    """Stop ``spec`` at the start of ``epoch`` as Ctrl-C would, check it left a checkpoint and no
    result, then run it again (it resumes) and return the finished run's result."""
    real_epoch = engine.train_one_epoch

    def crash(*args: Any, **kwargs: Any) -> dict[str, float]:
        if args[5] == epoch:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(engine, "train_one_epoch", crash)
        with pytest.raises(KeyboardInterrupt):
            engine.main(spec)
    run_dir = resolve(spec).run_dir
    assert (run_dir / "checkpoint.pt").is_file() and not (run_dir / "result.json").exists()
    return engine.main(spec)
