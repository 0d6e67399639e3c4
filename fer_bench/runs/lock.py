"""One process at a time per run directory.

Two sweeps (or a sweep and a hand-typed ``fer-bench run``) on the same results
root must never train the same run twice or interleave writes to its files.
Each run holds an exclusive lock on ``<run dir>/.lock`` while it works, taken
through the ``filelock`` package (``fcntl.flock`` on POSIX, ``msvcrt`` on
Windows); the operating system drops it when the process dies, so a killed run
never leaves a stale lock behind. The lock is re-entrant within a process,
because a sweep worker takes it before redirecting its log into the run
directory and then calls :func:`fer_bench.engine.run.main`, which takes it again.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import filelock


class RunBusy(RuntimeError):
    """Another process holds the run directory's lock."""


class LockUnavailable(ValueError):
    """The run directory's file system cannot hold a lock (some NFS/Lustre mounts)."""


_held: dict[Path, filelock.BaseFileLock] = {}  # run dir -> the lock this process holds on it


@contextmanager
def run_lock(run_dir: Path | str) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the block; raise :class:`RunBusy` at once if another process has it."""
    key = Path(run_dir).resolve()
    if key in _held:  # the outer holder releases it
        yield
        return
    key.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(key / ".lock")
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise RunBusy(f"{run_dir} is being run by another process") from None
    except (NotImplementedError, OSError) as exc:
        raise LockUnavailable(
            f"cannot lock {key / '.lock'} ({exc}): its file system does not support file locks; put the "
            f"runs root (--out or FER_BENCH_RESULTS) on a local or lock-capable file system") from None
    _held[key] = lock
    try:
        yield
    finally:
        del _held[key]
        lock.release()
