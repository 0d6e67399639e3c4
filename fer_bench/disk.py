"""Running out of disk space: refused before the large writes, reported in one line anywhere else.

The image cache is written through a memory map, where a full disk is no exception but a
SIGBUS ("Bus error") that kills the process; so its space is checked and reserved before a
byte is decoded (:func:`reserve`). Any other write that meets a full disk (or a full quota)
ends in a :class:`DiskFullError` naming the file, the space it needs where that is known and
the space free; the command line prints that one line (:func:`full_disk_message`).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Optional

from .errors import exception_chain

# EDQUOT is a full quota rather than a full disk; the remedy is the same.
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskFullError(OSError):
    """No room to write a file; the message names it, what it needs (where known) and what is free."""

    def __str__(self) -> str:  # OSError would prefix "[Errno 28]"
        return str(self.strerror)


def format_bytes(n: float) -> str:
    """``n`` bytes in the binary units ``df -h`` counts in."""
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    while n >= 1024 and len(units) > 1:
        n, units = n / 1024, units[1:]
    return f"{n:.0f} B" if units[0] == "B" else f"{n:.1f} {units[0]}"


def free_bytes(path: Path) -> Optional[int]:
    """Free space for an unprivileged user on the file system that holds (or would hold) ``path``."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def disk_full(path: Path, needed: Optional[int] = None, free: Optional[int] = None,
              written: Optional[int] = None) -> DiskFullError:
    """The error for ``path`` not fitting: ``needed`` bytes in all, or more than the ``written`` ones."""
    free = free_bytes(path) if free is None else free
    parts = []
    if needed is not None:
        parts.append(f"needs {format_bytes(needed)}")
    elif written:
        parts.append(f"needs more than the {format_bytes(written)} written when the disk filled")
    if free is not None:
        parts.append(f"{format_bytes(free)} free")
    detail = f" ({', '.join(parts)})" if parts else ""
    return DiskFullError(errno.ENOSPC, f"no space left on the device for {path}{detail}; free some space "
                                       f"or choose another directory, then run the same command again")


def full_disk_cause(exc: BaseException) -> Optional[OSError]:
    """The full-disk ``OSError`` behind ``exc``, if any; torch, for one, reports it as the context of
    a ``RuntimeError`` about its zip archive."""
    return next((e for e in exception_chain(exc) if isinstance(e, OSError) and e.errno in _FULL), None)


def full_disk_message(exc: BaseException) -> Optional[str]:
    """One line for a full disk behind ``exc`` (naming the file where the error does), else None."""
    cause = full_disk_cause(exc)
    if cause is None:
        return None
    if isinstance(cause, DiskFullError):
        return str(cause)
    return str(disk_full(Path(cause.filename))) if cause.filename else f"no space left on the device: {cause}"


def reserve(path: Path, nbytes: int) -> None:
    """Refuse, naming ``path``, when its file system has less than ``nbytes`` free (a file to be
    written through a memory map, where running out of space would be a SIGBUS)."""
    free = free_bytes(path)
    if free is not None and free < nbytes:
        raise disk_full(path, nbytes, free)


def allocate(path: Path, target: Optional[Path] = None) -> None:
    """Give the blocks of the whole of ``path`` (a sparse file, as a fresh memory map is) to it now,
    so that a disk filled meanwhile by someone else is a :class:`DiskFullError` (naming ``target``,
    the file ``path`` will become) here, not a SIGBUS half-way through writing the map. File
    systems that cannot allocate ahead are left as they are."""
    if not hasattr(os, "posix_fallocate"):
        return
    with open(path, "rb+") as f:
        size = os.fstat(f.fileno()).st_size
        try:
            os.posix_fallocate(f.fileno(), 0, size)
        except OSError as exc:
            if exc.errno in _FULL:
                raise disk_full(target or path, size) from None
            # EOPNOTSUPP, EINVAL...: the file system does not allocate ahead; the check of free space stands
