"""Atomic writes: a file is either its old version or its complete new one, never half.

A file that must never be read half-written (a run's files, the synthetic
dataset's, the image cache, figures) is written to a temporary name in the
same directory and moved into place with ``os.replace``, so a process killed
at any moment (even SIGKILL) leaves no truncated ``result.json``,
``metrics.csv`` or checkpoint behind. :func:`replacing` gives a writer the
temporary path; :func:`write_atomic` and the ``write_*`` functions build on it.

Temporary names carry the writer's process id (``.NAME.tmp<pid>``, and
``images-<key>.tmp<pid>.npy`` for the image cache), so the temporaries that a
killed process left can be told from a live writer's and removed
(:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from . import disk
from .errors import exception_chain

# ".tmp<pid>" ends every temporary name, before the image cache's "c" and ".npy" suffixes.
_TEMPORARY = re.compile(r"\.tmp(\d+)c?(\.npy)?$")


def temporary_path(path: Path, keep_suffix: bool = False, tag: str = "") -> Path:
    """The name ``path`` is written under before it is moved into place: ``.NAME.tmp<pid>`` beside it.

    With ``keep_suffix`` it is ``STEM.tmp<pid><tag>SUFFIX`` instead (the image cache's
    ``images-<key>.tmp<pid>.npy``, and ``images-<key>.tmp<pid>c.npy`` with ``tag="c"``), for a file
    that keeps its type's suffix while it is written.
    """
    path = Path(path)
    if keep_suffix:
        return path.with_name(f"{path.stem}.tmp{os.getpid()}{tag}{path.suffix}")
    return path.with_name(f".{path.name}.tmp{os.getpid()}{tag}")


def _replace_from(tmp: Path, path: Path) -> None:
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def replacing(path: Path, size: Optional[int] = None, keep_suffix: bool = False,
              temporary: Optional[Path] = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (:func:`temporary_path`, or ``temporary``) to write; move it
    into place when the block completes, remove it when the block fails.

    For writers that want a file name (matplotlib's ``savefig``, numpy's memory maps). A block that
    fails (an error, Ctrl-C) leaves the old file as it was; one that finds the disk full is a
    :class:`~fer_bench.disk.DiskFullError` naming ``path`` and its ``size`` in bytes, when the
    caller knows it.
    """
    path = Path(path)
    tmp = Path(temporary) if temporary is not None else temporary_path(path, keep_suffix)
    try:
        yield tmp
        _replace_from(tmp, path)
    except BaseException as exc:
        full = disk.full_disk_cause(exc) is not None and not isinstance(exc, disk.DiskFullError)
        if full:  # measured before the temporary goes: the space as the write found it
            written, free = (tmp.stat().st_size if tmp.exists() else 0), disk.free_bytes(path)
        tmp.unlink(missing_ok=True)
        if full:
            raise disk.disk_full(path, size, free, written) from exc
        interrupt = next((e for e in exception_chain(exc) if isinstance(e, KeyboardInterrupt)), exc)
        if interrupt is not exc:  # Ctrl-C (or SIGTERM) in torch.save comes out as a RuntimeError about its archive
            raise interrupt from None
        raise


def write_atomic(path: Path, write: Callable[[Path], None], size: Optional[int] = None) -> None:
    """Write ``path`` as ``write(temporary)`` writes the temporary beside it, then move that into place
    (:func:`replacing`)."""
    with replacing(path, size) as tmp:
        write(tmp)


def write_text(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    write_atomic(path, lambda tmp: tmp.write_bytes(data), len(data))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def save_torch(path: Path, obj: Any) -> None:
    import torch  # here, so that the modules writing text need not load torch

    def write(tmp: Path) -> None:
        # Through a file object: given a name, torch.save names its archive after the file (here the
        # temporary's, with the pid), so the same tensors would give other bytes and another sha256.
        with open(tmp, "wb") as f:
            torch.save(obj, f)

    write_atomic(path, write)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(directory: Path, of: Sequence[str] = ()) -> list[Path]:
    """Delete the temporaries in ``directory`` (only those of the file names ``of``, when given)
    whose writing process no longer runs; return them.

    A temporary of a live process (this one included) is never touched. Process ids are
    this machine's: on a file system shared between machines, call this only where a lock
    keeps other machines out (a run directory) or where a half-written file is worthless.
    """
    removed = []
    try:
        entries = list(Path(directory).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for path in entries:
        match = _TEMPORARY.search(path.name)
        if of and not any(path.name.startswith(f".{name}.tmp") for name in of):
            continue
        if match and path.is_file() and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
