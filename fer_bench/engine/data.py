"""The data a run reads: its dataset, its noisy training labels (and the config that records them),
its noisy validation split, and the image cache as tensors.

:func:`train_labels` is the one place that makes a run's noisy labels from its noise settings
(the ``noise`` entry of its config), for the engine (:func:`load_data`) and for everything that
reads a finished run again (:func:`run_train_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..datasets.base import FERDataset
from ..datasets.split import ValidationSplit
from ..noise.files import generate_train_labels, import_train_labels
from ..noise.record import NoiseRecord
from ..registry import create_dataset
from ..runs import RunDir, RunError, config_hash
from . import distributed
from .distributed import World
from .spec import ResolvedRun, config_record, noise_settings


def train_labels(dataset: FERDataset, noise: dict[str, Any]) -> tuple[np.ndarray, NoiseRecord]:
    """The noisy training labels that ``noise`` (a config's ``noise`` entry) describes, and their record:
    a label file's, or the dataset's clean labels flipped by the noise model at its rate from its seed."""
    if noise["model"] == "file":
        return import_train_labels(dataset, Path(noise["file"]))
    confusion = Path(noise["confusion"]) if noise.get("confusion") else None
    return generate_train_labels(dataset, noise["model"], noise["rate"], noise["noise_seed"],
                                 exact=noise.get("exact", False), confusion_csv=confusion)


@dataclass
class RunData:
    """The data a run reads: the dataset, its noisy training labels, their record and the run's config."""

    dataset: FERDataset
    train_labels: np.ndarray
    noise: NoiseRecord
    config: dict[str, Any]


def load_data(run: ResolvedRun, world: World) -> RunData:
    """The dataset, the noisy training labels, their record and the config that records the run."""
    spec = run.spec
    if not world.is_main:  # rank 0 fills any cache the dataset writes, then the others read it
        distributed.barrier(world)
    dataset = create_dataset(spec.dataset, spec.root, spec.progress, **spec.data_options)
    labels, noise = train_labels(dataset, noise_settings(run))
    config = config_record(run, noise.label_file_sha256, dataset.fingerprint())
    config["config_hash"] = config_hash(config)
    if world.is_main:
        distributed.barrier(world)
    return RunData(dataset, labels, noise, config)


def draw_split(run: ResolvedRun, labels: np.ndarray) -> ValidationSplit:
    """The run's noisy validation split, from the noise seed (the same on every resume)."""
    try:
        return ValidationSplit.draw(labels, run.recipe["val_split"], run.noise_seed)
    except ValueError as exc:
        raise RunError(f"--set {exc}") from None


def run_dataset(config: dict[str, Any], root: Optional[str] = None, progress: bool = True) -> FERDataset:
    """The dataset a run was trained on: at ``root`` if given, else where the run recorded it, else
    the dataset's default place under the data root (generated there once if it is synthfer)."""
    where = root or config.get("root")
    if where is not None and not Path(where).is_dir():
        raise RunError(f"the {config['dataset']} data of this run is not at {where}; pass --root DIR")
    return create_dataset(config["dataset"], where, progress, **config.get("data_options", {}))


def run_train_labels(run_dir: Path | str, dataset: FERDataset) -> np.ndarray:
    """The noisy labels a run trained on: its ``train_labels.txt``, or, where that was not kept
    (the committed reference records), made again from its noise settings and checked against
    the sha256 it recorded."""
    rd = RunDir(Path(run_dir))
    if rd.labels_file.is_file():
        return import_train_labels(dataset, rd.labels_file)[0]
    noise = rd.config()["noise"]
    if noise.get("model") == "file":
        raise RunError(f"{rd} has no train_labels.txt, and its labels came from a file ({noise.get('file')})")
    labels, record = train_labels(dataset, noise)
    if record.label_file_sha256 != noise.get("label_file_sha256"):
        raise RunError(f"{rd} has no train_labels.txt, and its noise record does not give its labels again on "
                       f"{dataset.name} at {dataset.root} (sha256 differs): is that the data it was trained on?")
    return labels


def images_on(device: torch.device, images: np.ndarray) -> torch.Tensor:
    """The uint8 cache as a tensor; on a GPU the whole cache moves once when it fits."""
    t = torch.from_numpy(np.ascontiguousarray(images))
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return t.to(device) if t.numel() < free // 4 else t.pin_memory()
    return t
