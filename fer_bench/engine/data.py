"""The data a run reads: its dataset, its noisy training labels (and the config that records them),
its noisy validation split, and the image cache as tensors.

:func:`train_labels` is the one place that makes a run's noisy labels from its noise settings
(the ``noise`` entry of its config), for the engine (:func:`load_data`) and for everything that
reads a finished run again (:func:`run_train_labels`). A run on a long-tailed training subset
(``--imbalance``, :mod:`fer_bench.datasets.imbalance`) reads that subset as its dataset, in the engine
and in :func:`run_dataset` alike: the subset is drawn from the clean labels first, then the noise in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..datasets.base import FERDataset
from ..datasets.imbalance import Imbalance, LongTailed, long_tailed
from ..datasets.split import ValidationSplit
from ..noise.files import generate_train_labels, import_train_labels
from ..noise.record import NoiseRecord, noise_record
from ..registry import create_dataset
from ..runs import RunDir, RunError, config_hash
from . import distributed
from .distributed import World
from .spec import ResolvedRun, config_record, noise_settings


def train_labels(dataset: FERDataset, noise: dict[str, Any], subset: Optional[LongTailed] = None
                 ) -> tuple[np.ndarray, NoiseRecord]:
    """The noisy training labels that ``noise`` (a config's ``noise`` entry) describes, and their record:
    a label file's, or the dataset's clean labels flipped by the noise model at its rate from its seed.
    ``subset``: the long-tailed subset ``dataset`` is; a label file names its full training split."""
    if noise["model"] == "file":
        if subset is not None:
            return subset_file_labels(subset, Path(noise["file"]))
        return import_train_labels(dataset, Path(noise["file"]))
    confusion = Path(noise["confusion"]) if noise.get("confusion") else None
    return generate_train_labels(dataset, noise["model"], noise["rate"], noise["noise_seed"],
                                 exact=noise.get("exact", False), confusion_csv=confusion)


def subset_file_labels(subset: LongTailed, path: Path) -> tuple[np.ndarray, NoiseRecord]:
    """A label file's labels of a long-tailed subset's images (the file names the full training split, as the
    peers' files do), and their record on the subset; its sha256 is the file's."""
    labels, record = import_train_labels(subset.full, path)
    noisy, train = labels[subset.keep], subset.dataset.train
    clean = np.asarray(train.labels, dtype=np.int64)
    realised = float(np.mean(noisy != clean))
    sub = noise_record(clean, noisy, subset.dataset.class_names, model="file", rate=round(realised, 4), mode="file",
                       noise_seed=None, source=str(path), votes=train.votes)
    sub.label_file_sha256 = record.label_file_sha256
    return noisy, sub


def training_subset(dataset: FERDataset, imbalance: Optional[Imbalance]) -> Optional[LongTailed]:
    """The long-tailed training subset of ``dataset`` a run trains on (None: the full training split)."""
    if imbalance is None:
        return None
    try:
        return long_tailed(dataset, imbalance)
    except ValueError as exc:  # a RHO the data cannot give: the message names it
        raise RunError(str(exc)) from None


@dataclass
class RunData:
    """The data a run reads: the dataset (a long-tailed subset's, with ``--imbalance``), its noisy training
    labels, their record and the run's config; ``imbalance``: what ``result.json`` records of the subset."""

    dataset: FERDataset
    train_labels: np.ndarray
    noise: NoiseRecord
    config: dict[str, Any]
    imbalance: Optional[dict[str, Any]] = None


def load_data(run: ResolvedRun, world: World) -> RunData:
    """The dataset, the noisy training labels, their record and the config that records the run."""
    spec = run.spec
    if not world.is_main:  # rank 0 fills any cache the dataset writes, then the others read it
        distributed.barrier(world)
    dataset = create_dataset(spec.dataset, spec.root, spec.progress, **spec.data_options)
    fingerprint = dataset.fingerprint()  # the data as it lies (a subset's choice of images is in the config)
    subset = training_subset(dataset, run.imbalance)
    if subset is not None:
        dataset = subset.dataset  # the subset first, from the clean labels; then the noise in it
    labels, noise = train_labels(dataset, noise_settings(run), subset)
    config = config_record(run, noise.label_file_sha256, fingerprint)
    config["config_hash"] = config_hash(config)
    if world.is_main:
        distributed.barrier(world)
    return RunData(dataset, labels, noise, config, subset.summary() if subset is not None else None)


def draw_split(run: ResolvedRun, labels: np.ndarray) -> ValidationSplit:
    """The run's noisy validation split, from the noise seed (the same on every resume)."""
    try:
        return ValidationSplit.draw(labels, run.recipe["val_split"], run.noise_seed)
    except ValueError as exc:
        raise RunError(f"--set {exc}") from None


def run_dataset(config: dict[str, Any], root: Optional[str] = None, progress: bool = True) -> FERDataset:
    """The dataset a run was trained on: at ``root`` if given, else where the run recorded it, else
    the dataset's default place under the data root (generated there once if it is synthfer); its
    long-tailed training subset, where the run trained on one (the test split is the dataset's)."""
    where = root or config.get("root")
    if where is not None and not Path(where).is_dir():
        raise RunError(f"the {config['dataset']} data of this run is not at {where}; pass --root DIR")
    dataset = create_dataset(config["dataset"], where, progress, **config.get("data_options", {}))
    subset = training_subset(dataset, Imbalance.from_record(config["imbalance"]) if config.get("imbalance") else None)
    return dataset if subset is None else subset.dataset


def run_train_labels(run_dir: Path | str, dataset: FERDataset) -> np.ndarray:
    """The noisy labels a run trained on: its ``train_labels.txt``, or, where that was not kept
    (the committed reference records), made again from its noise settings and checked against
    the sha256 it recorded."""
    rd = RunDir(Path(run_dir))
    config = rd.config()
    if config.get("imbalance") != dataset.info.get("imbalance"):
        def said(subset: Optional[dict[str, Any]]) -> str:
            return (f"the long-tailed subset rho {subset['rho']:g}, seed {subset['seed']}," if subset
                    else "the full training split")

        raise RunError(f"{rd} was trained on {said(config.get('imbalance'))} of {config['dataset']}, and the "
                       f"dataset given holds {said(dataset.info.get('imbalance'))}: runs read with one dataset "
                       f"must share their training set")
    if rd.labels_file.is_file():
        return import_train_labels(dataset, rd.labels_file)[0]
    noise = config["noise"]
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
