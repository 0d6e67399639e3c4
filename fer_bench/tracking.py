"""Experiment tracking: mirror a run's per-epoch numbers into TensorBoard or Weights & Biases.

``metrics.csv`` stays the record; a tracker only copies what the engine already computed,
so logging never changes a number. Whatever numeric columns the per-epoch row holds are
logged (losses, accuracies, learning rate, throughput, and any column a method or a later
change adds), each under ``epoch/<column>`` at step = epoch. At the start a tracker also
gets the resolved config and the noise record's numbers (realised rate, per-class rates,
flip rate by vote share).

Both packages are optional extras. :func:`check_tracker` names the extra to install and is
called while a run is resolved, before its directory exists.
"""

from __future__ import annotations

import importlib.util
import json
import math
import numbers
from pathlib import Path
from typing import Any, Optional

# tracker -> (module to import, the extra that installs it)
TRACKERS: dict[str, tuple[str, str]] = {
    "tensorboard": ("tensorboard", "tensorboard"),
    "wandb": ("wandb", "wandb"),
}
SKIPPED_COLUMNS = ("epoch", "confusion")


def check_tracker(name: Optional[str]) -> None:
    """An unknown tracker, or one whose package is missing, is a ValueError naming the extra."""
    if name is None:
        return
    if name not in TRACKERS:
        raise ValueError(f"unknown --log {name!r}; known: {', '.join(TRACKERS)}")
    module, extra = TRACKERS[name]
    if importlib.util.find_spec(module) is None:
        raise ValueError(f"--log {name} needs the {module} package, which is not installed: "
                         f"pip install 'fer-bench[{extra}]'")


def scalars(row: dict[str, Any]) -> dict[str, float]:
    """The numeric, finite columns of a per-epoch row, as ``epoch/<column>``."""
    out = {}
    for k, v in row.items():
        if k in SKIPPED_COLUMNS or isinstance(v, bool) or not isinstance(v, numbers.Real):
            continue
        if math.isfinite(float(v)):
            out[f"epoch/{k}"] = float(v)
    return out


def noise_scalars(record: dict[str, Any]) -> dict[str, float]:
    """The noise record's numbers: realised rate, per-class flip rates, flip rate by vote share."""
    out = {"noise/realised_rate": float(record["realised_rate"])}
    out.update({f"noise/per_class_rate/{k}": float(v) for k, v in record["per_class_rate"].items()})
    for b in record.get("by_ambiguity") or []:
        span = "1.0" if b["lo"] == b["hi"] else f"{b['lo']:.1f}-{b['hi']:.1f}"
        out[f"noise/flip_rate_by_vote_share/{span}"] = float(b["flip_rate"])
    return out


class Tracker:
    """No tracking: the interface the engine calls."""

    def log_epoch(self, row: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoardTracker(Tracker):
    """Event files under ``<run_dir>/tensorboard`` (``tensorboard --logdir results/runs``)."""

    def __init__(self, run_dir: Path, config: dict[str, Any], record: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", 0)
        for k, v in noise_scalars(record).items():
            self.writer.add_scalar(k, v, 0)

    def log_epoch(self, row: dict[str, Any]) -> None:
        for k, v in scalars(row).items():
            self.writer.add_scalar(k, v, int(row["epoch"]))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbTracker(Tracker):
    """A wandb run named after the run directory; ``WANDB_MODE=offline`` keeps it on disk."""

    def __init__(self, run_dir: Path, config: dict[str, Any], record: dict[str, Any]) -> None:
        import wandb

        self.wandb = wandb
        self.run = wandb.init(project="fer-bench", name=str(run_dir), dir=str(run_dir), config=config,
                              reinit=True)
        self.run.summary.update(noise_scalars(record))

    def log_epoch(self, row: dict[str, Any]) -> None:
        self.run.log(scalars(row), step=int(row["epoch"]))

    def close(self) -> None:
        self.run.finish()


def open_tracker(name: Optional[str], run_dir: Path, config: dict[str, Any], record: dict[str, Any]) -> Tracker:
    """The tracker for ``--log name`` (None: one that does nothing)."""
    check_tracker(name)
    if name is None:
        return Tracker()
    return {"tensorboard": TensorBoardTracker, "wandb": WandbTracker}[name](run_dir, config, record)
