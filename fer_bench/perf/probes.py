"""What a benchmark says about the machine it ran on, and how much memory a measurement took.

The machine: the bench report's summary of the device (taken from the run
environment record, :func:`~fer_bench.engine.environment.environment_record`,
plus the CPU's model name), a file-name slug for it, and how many DataLoader
workers to use when none are asked for.

Peak memory (:class:`PeakMemory`) is ``torch.cuda.max_memory_allocated`` on a
GPU (the uint8 cache moved to the GPU included, as in a real run) and, on a
CPU, how far the main process's peak resident set (``getrusage``'s
``ru_maxrss``; DataLoader workers are not included) rose above its size at the
start of the measurement, with the high-water mark reset first where Linux
allows it. It is labelled as RSS wherever it is shown.
"""

from __future__ import annotations

import gc
import os
import platform
import re
import resource
import sys
from pathlib import Path
from typing import Any, Optional

import torch

from ..threads import usable_cores


def default_workers() -> int:
    """DataLoader workers when none are given: the usable cores, at most 8."""
    return max(1, min(8, usable_cores()))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_info(environment: dict[str, Any]) -> dict[str, Any]:
    """The machine as a bench report heads it: from a run environment record (device, cores, torch
    threads and version, GPU), with the CPU's model name."""
    info = {"device": environment["device"], "cpu": cpu_model(), "cpu_count": environment["cpu_count"],
            "torch_threads": environment["torch_threads"], "torch": environment["torch"]}
    if "gpu" in environment:
        info["gpu"] = environment["gpu"]
    return info


def device_slug(device: torch.device) -> str:
    """``cpu``, or the GPU's name in lower case with dashes (``nvidia-h200``), for file names."""
    if device.type != "cuda":
        return "cpu"
    return re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(device).lower()).strip("-") or "cuda"


def _peak_rss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


def _current_rss_mib() -> Optional[float]:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_peak_rss() -> bool:
    """Reset the process's RSS high-water mark (Linux: ``5 > /proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Peak memory of one measurement, from its construction to :meth:`read`.

    On a GPU: ``torch.cuda.max_memory_allocated`` since the start. On a CPU:
    how far the main process's peak RSS (``getrusage``) rose above its RSS at
    the start; where the high-water mark can be reset (Linux) it is, so each
    measurement has its own peak; elsewhere it is the rise of the process's
    lifetime peak, 0 when a measurement stays below an earlier one.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            return
        current = _current_rss_mib()
        self.reset = current is not None and _reset_peak_rss()
        self.rss0 = current if self.reset else _peak_rss_mib()

    def read(self) -> dict[str, Any]:
        if self.device.type == "cuda":
            return {"peak_memory_mib": torch.cuda.max_memory_allocated(self.device) / 2**20,
                    "memory_kind": "cuda_max_allocated"}
        peak = _peak_rss_mib()
        kind = "cpu_peak_rss_above_start" if self.reset else "cpu_lifetime_peak_rss_increase"
        return {"peak_memory_mib": max(0.0, peak - self.rss0), "memory_kind": kind, "process_peak_rss_mib": peak}
