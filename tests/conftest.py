"""Shared fixtures: a tiny synthfer dataset and an isolated results root."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

# Before torch loads OpenMP: the tests that run on two threads (determinism) would otherwise
# spin at every OpenMP barrier and crawl when other processes share the cores. The wait
# policy changes how idle threads wait, never what they compute.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Tests compare the numbers of repeated runs, so the thread count must not follow the machine's
# load: the suite runs without the adaptive thread policy (tests/test_threads.py checks it), whatever the
# shell says (a FER_BENCH_THREADS=1 exported for a sweep beside the tests would pin this process to one thread
# while the resume tests' children take the two they ask for).
os.environ["FER_BENCH_THREADS"] = "off"

import pytest  # noqa: E402
import torch  # noqa: E402

from fer_bench.datasets.synthfer.generate import generate  # noqa: E402
import fer_bench.engine.run as engine  # noqa: E402
from fer_bench.engine.run import RunSpec, resolve  # noqa: E402
from fer_bench.threads import torch_threads  # noqa: E402,F401  (the tests import it from here)

# Small enough that one epoch of any method takes about a second on two cores.
TINY = {"n_train": 96, "n_test": 40, "size": 32, "seed": 3}
TINY_RECIPE = {"epochs": 2, "image_size": 32, "batch_size": 32}
# Four batches of 64 per epoch: at batch 64 LA-Net's largest index gradient reaches torch's
# 32,768-element grain, where CPU kernels start to share work between threads.
SMALL = {"n_train": 256, "n_test": 40, "size": 32, "seed": 4}


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data") / "synthfer"
    generate(root, workers=1, progress=False, **TINY)
    return root


@pytest.fixture(scope="session")
def small_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data-small") / "synthfer"
    generate(root, workers=1, progress=False, **SMALL)
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


# Runs a spec in a fresh process and SIGKILLs it from inside, just before training step
# `step` (0-based) of epoch `epoch` (0-based), so the kill always lands at the same place.
_KILLED_RUN = """
import json, os, signal, sys
import torch
import fer_bench.engine.run as engine
spec, epoch, step, threads = engine.RunSpec(**json.loads(sys.argv[1])), *map(int, sys.argv[2:5])
torch.set_num_threads(threads)
real_epoch = engine.train_one_epoch
def train_one_epoch(method, *args, **kwargs):
    if args[4] == epoch:
        real_step, calls = method.training_step, []
        def training_step(batch):
            calls.append(1)
            if len(calls) > step:
                os.kill(os.getpid(), signal.SIGKILL)
            return real_step(batch)
        method.training_step = training_step
    return real_epoch(method, *args, **kwargs)
engine.train_one_epoch = train_one_epoch
engine.main(spec)
"""


def kill_then_resume(spec: RunSpec, epoch: int = 1, step: int = 1, threads: int = 2) -> dict[str, Any]:
    """Train ``spec`` in a child process on ``threads`` torch threads, SIGKILL it in the middle of
    ``epoch``, check that it left the previous epoch's checkpoint and no result, then run it again
    here (it resumes) and return the finished run's result."""
    child = subprocess.run([sys.executable, "-c", _KILLED_RUN, json.dumps(asdict(spec)), str(epoch), str(step),
                            str(threads)], env=dict(os.environ), capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    run_dir = resolve(spec).run_dir
    assert (run_dir / "checkpoint.pt").is_file() and not (run_dir / "result.json").exists()
    return engine.main(spec)


@pytest.fixture
def browser() -> Any:
    """A headless Chromium (tests/browser.py); the test is skipped, with the reason, where there is none."""
    from tests import browser as chromium

    reason = chromium.why_unavailable()
    if reason:
        pytest.skip(reason)
    driver = chromium.start()
    try:
        yield driver
    finally:
        driver.quit()
