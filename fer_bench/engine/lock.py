"""One process at a time per run directory.

Two sweeps (or a sweep and a hand-typed ``fer-bench run``) on the same results
root must never train the same run twice or interleave writes to its files.
Each run holds an exclusive ``flock`` on ``<run dir>/.lock`` while it works;
the kernel drops the lock when the process dies, so a killed run never leaves
a stale lock behind. The lock is re-entrant within a process, because a sweep
worker takes it before redirecting its log into the run directory and then
calls :func:`fer_bench.engine.run.main`, which takes it again.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class RunBusy(RuntimeError):
    """Another process holds the run directory's lock."""


_held: dict[Path, int] = {}  # run dir -> file descriptor holding its lock


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the block; raise :class:`RunBusy` at once if another process has it."""
    key = Path(run_dir).resolve()
    if key in _held:  # the outer holder releases it
        yield
        return
    key.mkdir(parents=True, exist_ok=True)
    fd = os.open(key / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunBusy(f"{run_dir} is being run by another process") from None
    _held[key] = fd
    try:
        yield
    finally:
        del _held[key]
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
