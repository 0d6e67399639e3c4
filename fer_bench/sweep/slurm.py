"""Submitting a sweep to Slurm through submitit (the optional ``fer-bench[slurm]`` extra).

Each run becomes one task of a job array. A task that hits its time limit or
is preempted is requeued by submitit (``Checkpointable``) with the same spec,
and :func:`fer_bench.engine.run.main` resumes it from ``checkpoint.pt``; the
per-run lock and ``result.json`` make a requeue of a finished run a no-op.
``--slurm cluster=local`` runs the same tasks as local processes (submitit's
local executor), which is how the tests exercise this path.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from ..engine.spec import RunSpec, resolve
from ..paths import runs_root
from ..registry import load_plugin
from .plan import spec_from_json, spec_to_json
from .worker import LOG_NAME, STATUS, Outcome, execute

DEFAULTS: dict[str, Any] = {"timeout_min": 240, "gpus_per_node": 1, "cpus_per_task": 8, "mem_gb": 32}


def _submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise ImportError("--launcher slurm needs submitit: pip install 'fer-bench[slurm]'") from None
    return submitit


class RunTask:
    """One run as a submitit job, resubmitted unchanged on timeout or preemption; with ``nproc`` > 1,
    one of the job's ``nproc`` tasks (a rank: submitit exports torch.distributed's environment)."""

    def __init__(self, plugins: Sequence[str] = (), nproc: int = 1) -> None:
        self.plugins = tuple(plugins)
        self.nproc = nproc

    def __call__(self, spec_json: str) -> Outcome:
        for module in self.plugins:
            load_plugin(module)
        if self.nproc > 1:
            _submitit().helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        spec = spec_from_json(spec_json)
        run_dir = resolve(spec).run_dir
        t0 = time.perf_counter()
        try:
            status = STATUS[execute(spec)]
        except Exception as exc:  # reported in the sweep's summary; the traceback is in the log
            import traceback

            traceback.print_exc()
            return Outcome(spec, run_dir, "failed", time.perf_counter() - t0, run_dir / LOG_NAME, str(exc))
        return Outcome(spec, run_dir, status, time.perf_counter() - t0)

    def checkpoint(self, spec_json: str) -> Any:
        return _submitit().helpers.DelayedSubmission(self, spec_json)


def submit(specs: Sequence[RunSpec], params: dict[str, Any], plugins: Sequence[str] = (), nproc: int = 1) -> list[Any]:
    """Submit every spec as one job array; returns submitit's jobs (``job.results()[0]`` is an :class:`Outcome`,
    rank 0's). ``nproc`` > 1: each run is a job of that many tasks and GPUs per node (``--slurm nodes=M``
    spreads it over M nodes, ``nproc`` each); ``--slurm`` keys still win."""
    submitit = _submitit()
    if not specs:
        return []
    root = Path(specs[0].out) if specs[0].out else runs_root()
    params = {**DEFAULTS, **({"tasks_per_node": nproc, "gpus_per_node": nproc} if nproc > 1 else {}), **params}
    cluster = params.pop("cluster", None)
    executor = submitit.AutoExecutor(folder=root / ".submitit" / "%j", cluster=cluster)
    # AutoExecutor passes the generic keys on and drops another cluster's prefixed ones (slurm_* when local).
    executor.update_parameters(name="fer-bench", slurm_array_parallelism=len(specs), **params)
    return executor.map_array(RunTask(plugins, nproc), [spec_to_json(s) for s in specs])
