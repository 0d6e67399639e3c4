"""Atomic writes: a file is either its old version or its complete new one, never half.

Every run file is written to a temporary name in the same directory and moved
into place with ``os.replace``, so a run killed at any moment (even SIGKILL)
leaves no truncated ``result.json``, ``metrics.csv`` or checkpoint behind.
Temporary names carry the writer's process id (``.NAME.tmp<pid>``, and
``images-<key>.tmp<pid>.npy`` for the image cache), so the temporaries that a
killed process left can be told from a live writer's and removed
(:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Sequence

# ".tmp<pid>" ends every temporary name, before the image cache's "c" and ".npy" suffixes.
_TEMPORARY = re.compile(r"\.tmp(\d+)c?(\.npy)?$")


def _replace_from(tmp: Path, path: Path) -> None:
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    _replace_from(tmp, path)


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

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    # Through a file object: given a name, torch.save names its archive after the file (here the
    # temporary's, with the pid), so the same tensors would give other bytes and another sha256.
    with open(tmp, "wb") as f:
        torch.save(obj, f)
    _replace_from(tmp, path)


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
