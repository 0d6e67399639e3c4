"""One sweep run in a child process: ``python -m fer_bench.sweep.worker SPEC_JSON``.

The child takes the run directory's lock *before* it opens the run's log, so a
second sweep that reaches the same run while it trains exits with ``BUSY``,
and one that reaches it just after it finished exits with ``SKIPPED``; either
leaves the log alone. Its exit status tells the parent what happened.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..cli import run_summary
from ..engine.run import main
from ..engine.spec import RunSpec, resolve
from ..registry import load_env_plugins
from ..runs import RunBusy, RunDir
from ..runs.directory import SWEEP_LOG
from .plan import run_state, spec_from_json

DONE, SKIPPED, BUSY, FAILED = 0, 10, 11, 1
STATUS = {DONE: "done", SKIPPED: "skipped", BUSY: "busy"}
LOG_NAME = SWEEP_LOG


@dataclass
class Outcome:
    """What became of one run of a sweep."""

    spec: RunSpec
    run_dir: Path
    status: str  # done | skipped | busy | failed
    seconds: float = 0.0
    log: Optional[Path] = None
    error: str = ""


def _redirect_output(log: Path) -> None:
    """Point this process's stdout and stderr (file descriptors too) at the end of ``log``."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def execute(spec: RunSpec, log_to_run_dir: bool = True) -> int:
    """Run one spec under its lock; return DONE, SKIPPED or BUSY (exceptions propagate).

    One rank of a multi-process run (under torchrun, or a Slurm task with several per run): every
    rank calls the engine, whose rank 0 takes the lock and tells the others; rank 0 writes the log."""
    run_dir = resolve(spec).run_dir
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return _execute_rank(spec, run_dir, log_to_run_dir)
    try:
        with RunDir(run_dir).lock():
            if run_state(spec) == "finished":  # finished by another sweep since the parent looked
                return SKIPPED
            if log_to_run_dir:
                _redirect_output(run_dir / LOG_NAME)
                print(f"=== fer-bench sweep worker, pid {os.getpid()}: {run_dir}", flush=True)
            result = main(spec)
            print(run_summary(result), flush=True)
    except RunBusy:
        return BUSY
    return SKIPPED if result.get("already_done") else DONE


def _execute_rank(spec: RunSpec, run_dir: Path, log_to_run_dir: bool) -> int:
    main_rank = os.environ.get("RANK", "0") == "0"
    try:
        if main_rank and log_to_run_dir:
            run_dir.mkdir(parents=True, exist_ok=True)
            _redirect_output(run_dir / LOG_NAME)
            print(f"=== fer-bench sweep worker, pid {os.getpid()}, {os.environ['WORLD_SIZE']} processes: {run_dir}",
                  flush=True)
        result = main(spec)
    except RunBusy:
        return BUSY
    if main_rank:
        print(run_summary(result), flush=True)
    return SKIPPED if result.get("already_done") else DONE


def _entry() -> int:
    load_env_plugins()
    spec = spec_from_json(sys.argv[1])
    try:
        return execute(spec)
    except Exception:  # the parent reports the log's path; the traceback is in the log
        traceback.print_exc()
        return FAILED


if __name__ == "__main__":
    sys.exit(_entry())
