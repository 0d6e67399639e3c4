"""Running a sweep's specs on this machine: a pool of child processes.

On CPU the cores are shared out: each child adapts its threads between 1 and
cores // jobs (``FER_BENCH_THREADS=auto:N``, see :mod:`fer_bench.threads`),
since oversubscribed threads make every run slower. On CUDA each child sees one GPU
through ``CUDA_VISIBLE_DEVICES``, and ``runs_per_gpu`` children share each GPU:
a ResNet-18 at batch 128 leaves most of a modern GPU idle, so packing runs is
the cheapest speed-up a sweep has. Packed runs are ordinary runs; only their
wall time changes.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from typing import Optional, Sequence

from tqdm import tqdm

from .. import threads as cpu_threads
from ..engine.spec import RunSpec, resolve
from . import worker
from .plan import run_state, spec_to_json
from .worker import STATUS, Outcome


def slots(device: str, jobs: Optional[int], runs_per_gpu: int, nproc: int = 1) -> list[Optional[str]]:
    """One entry per concurrent child: the GPUs it sees (``nproc`` of them, comma-separated), or None on CPU."""
    if device != "cpu":
        import torch

        if torch.cuda.is_available():
            if device.startswith("cuda:"):
                gpus = [device.split(":", 1)[1]]
            else:
                gpus = [str(i) for i in range(torch.cuda.device_count())]
            if nproc > 1:
                if len(gpus) < nproc:
                    raise ValueError(f"--nproc {nproc}: this machine has {len(gpus)} GPU(s) for {device}")
                gpus = [",".join(gpus[i:i + nproc]) for i in range(0, len(gpus) - nproc + 1, nproc)]
            packed = [g for g in gpus for _ in range(runs_per_gpu)]
            return packed[:jobs] if jobs else packed
        if device.startswith("cuda"):
            raise ValueError(f"--device {device}: CUDA is not available on this machine")
    return [None] * (jobs or 1)


def _child_env(gpu: Optional[str], threads: int, plugins: Sequence[str]) -> dict[str, str]:
    env = dict(cpu_threads.child_environment(os.environ, threads), PYTHONUNBUFFERED="1")
    if plugins:
        env["FER_BENCH_PLUGINS"] = ",".join(filter(None, [env.get("FER_BENCH_PLUGINS"), *plugins]))
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return env


def child_command(spec_json: str, nproc: int = 1) -> list[str]:
    """The worker's command line; with ``nproc`` > 1 under torchrun (one node, its own rendezvous)."""
    if nproc > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                "-m", "fer_bench.sweep.worker", spec_json]
    return [sys.executable, "-m", "fer_bench.sweep.worker", spec_json]


def _run_child(spec: RunSpec, gpu: Optional[str], threads: int, plugins: Sequence[str], nproc: int = 1) -> Outcome:
    run_dir = resolve(spec).run_dir
    child_spec = replace(spec, device="cuda", progress=False) if gpu is not None else replace(spec, progress=False)
    t0 = time.perf_counter()
    proc = subprocess.run(child_command(spec_to_json(child_spec), nproc),
                          env=_child_env(gpu, threads, plugins), capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode in STATUS:
        return Outcome(spec, run_dir, STATUS[proc.returncode], seconds)
    log = run_dir / worker.LOG_NAME
    tail = (proc.stderr or proc.stdout).strip().splitlines()
    return Outcome(spec, run_dir, "failed", seconds, log if log.is_file() else None,
                   tail[-1] if tail else f"exit status {proc.returncode}")


def run_local(specs: Sequence[RunSpec], device: str = "auto", jobs: Optional[int] = None,
              runs_per_gpu: int = 1, plugins: Sequence[str] = (), progress: bool = True,
              nproc: int = 1) -> list[Outcome]:
    """Run every spec in a child process, ``len(slots)`` at a time; a failure never stops the others.

    ``plugins`` are modules the children import first (the sweep's ``--plugin`` options); ``nproc``
    processes train each run (torchrun; on CUDA each gets a GPU of the child's ``nproc``).
    """
    free: queue.Queue[Optional[str]] = queue.Queue()
    pool = slots(device, jobs, runs_per_gpu, nproc)
    for gpu in pool:
        free.put(gpu)
    threads = max(1, (os.cpu_count() or 1) // (len(pool) * nproc))

    def task(spec: RunSpec) -> Outcome:
        if run_state(spec) == "finished":  # no need to start a process to learn that
            return Outcome(spec, resolve(spec).run_dir, "skipped")
        gpu = free.get()
        try:
            return _run_child(spec, gpu, threads, plugins, nproc)
        finally:
            free.put(gpu)

    outcomes: list[Outcome] = []
    counts = {"done": 0, "skipped": 0, "busy": 0, "failed": 0}
    with ThreadPoolExecutor(max_workers=len(pool)) as ex, \
            tqdm(total=len(specs), desc="sweep", unit="run", disable=not progress) as bar:
        futures = [ex.submit(task, s) for s in specs]
        try:
            for fut in as_completed(futures):
                out = fut.result()
                outcomes.append(out)
                counts[out.status] += 1
                bar.set_postfix(counts, refresh=False)
                bar.update()
                if out.status == "failed":
                    bar.write(f"failed: {out.run_dir} ({out.error}); log: {out.log or '-'}")
        except KeyboardInterrupt:  # Ctrl-C reached the running children too; start no more
            for fut in futures:
                fut.cancel()
            raise
    order = {id(s): i for i, s in enumerate(specs)}
    return sorted(outcomes, key=lambda o: order[id(o.spec)])
