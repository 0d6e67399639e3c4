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


def git_commit() -> str | None:
    """The commit of the fer-bench checkout, when it is one."""
    here = Path(fer_bench.__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment_record(device: torch.device) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "fer_bench": fer_bench.__version__,
        "git_commit": git_commit(),
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
