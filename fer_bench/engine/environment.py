"""The environment record of a run: versions, hardware and determinism settings."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision

import fer_bench

from .. import threads


def _git(here: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state(here: Path | None = None) -> dict[str, Any]:
    """The commit of the fer-bench checkout and whether its working tree had uncommitted changes
    (to tracked files; ``git_dirty`` is None outside a checkout), since a commit alone does not
    say what code a run used."""
    here = here or Path(fer_bench.__file__).resolve().parent.parent
    commit = (_git(here, "rev-parse", "HEAD") or "").strip() or None
    status = _git(here, "status", "--porcelain", "--untracked-files=no") if commit else None
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status.strip())}


def environment_record(device: torch.device) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "fer_bench": fer_bench.__version__,
        **git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "thread_policy": threads.record(),
        "device": str(device),
    }
    if device.type == "cuda":
        rec.update(
            gpu=torch.cuda.get_device_name(device),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            cudnn_benchmark=torch.backends.cudnn.benchmark,
        )
    return rec
