"""A finished (or interrupted) run's trained model, rebuilt from its record and checkpoint: for ``eval``,
``export``, the user study and the gallery."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..augment import BatchAugment
from ..datasets.base import FERDataset
from ..methods.base import Method, MethodContext
from ..registry import METHODS, create_dataset
from ..runs import RunDir, RunError, config_hash
from .build import augment_config, build_context
from .data import images_on, run_dataset
from .inference import check_checkpoint_owner, load_checkpoint, predict_logits
from .metrics import accuracy, confusion_matrix, mean_class_accuracy
from .spec import select_device


@dataclass
class TrainedRun:
    """A finished (or interrupted) run's final model, ready to predict on a dataset."""

    run_dir: Path
    config: dict[str, Any]
    dataset: FERDataset
    method: Method
    ctx: MethodContext
    epoch: int

    def logits(self, images: np.ndarray) -> torch.Tensor:
        device = self.ctx.device
        augment = BatchAugment(augment_config(self.config["recipe"]))
        return predict_logits(self.method, augment, images_on(device, images), device,
                              self.config["recipe"]["eval_batch_size"], device.type == "cuda")


def load_trained(run_dir: Path | str, dataset_name: Optional[str] = None, root: Optional[str] = None,
                 device_name: str = "auto", progress: bool = True,
                 dataset: Optional[FERDataset] = None) -> TrainedRun:
    """Rebuild a run's model from ``checkpoint.pt``, with the run's dataset, another one, or one already loaded."""
    rd = RunDir(Path(run_dir))
    for f in (rd.config_file, rd.checkpoint_file):
        if not f.is_file():
            raise RunError(f"{rd} is not a run directory: {f.name} is missing")
    config = rd.config()
    method_cls = METHODS.get(config["method"])
    device = select_device(device_name)
    if dataset is None:
        if dataset_name is None or dataset_name == config["dataset"]:
            dataset = run_dataset(config, root, progress)
        else:
            dataset = create_dataset(dataset_name, root, progress)
    # The method is built only for its model, so the clean train labels stand in for the noisy ones.
    ctx = build_context(method_cls, config["recipe"], dataset, dataset.train.labels, device, training=False)
    method = method_cls(ctx, config["hparams"])
    remedy = "the run's model is lost; train it again (its `fer-bench run` command with --force)"
    ckpt = load_checkpoint(rd.checkpoint_file, device, remedy)
    check_checkpoint_owner(ckpt, rd.checkpoint_file, {config.get("config_hash") or config_hash(config)}, remedy)
    try:
        method.model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise RunError(f"{rd.checkpoint_file} does not match the {config['method']} model for {dataset.name} "
                       f"({dataset.num_classes} classes): {' '.join(first[1:3]).strip()}") from None
    return TrainedRun(rd.path, config, dataset, method, ctx, ckpt["epoch"])


def evaluate_run(run_dir: Path | str, dataset_name: Optional[str] = None, root: Optional[str] = None,
                 device_name: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Re-evaluate a run's final model (its last checkpoint) on a dataset's test split."""
    trained = load_trained(run_dir, dataset_name, root, device_name, progress)
    test = trained.dataset.test
    pred = trained.logits(test.images).argmax(1).numpy()
    cm = confusion_matrix(np.asarray(test.labels, dtype=np.int64), pred, trained.dataset.num_classes)
    return {"run_dir": str(run_dir), "dataset": trained.dataset.name, "epoch": trained.epoch,
            "acc": accuracy(cm), "mean_class_acc": mean_class_accuracy(cm),
            "confusion": cm.tolist(), "class_names": list(trained.dataset.class_names)}
