"""Building what a run trains with: the method's context and model, its pretrained weights, the
optimiser and schedule, the batched augmentation, and the training step that several processes share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from ..augment import AugmentConfig, BatchAugment
from ..datasets.base import FERDataset
from ..methods.base import Method, MethodContext
from ..models.pretrained import NORMALISATIONS, load_pretrained
from ..runs import RunError
from . import distributed
from .distributed import SINGLE, World
from .loop import TrainingStep, steps_per_epoch
from .optim import build_optimizer, build_scheduler
from .spec import ResolvedRun, select_device


def augment_config(recipe: dict[str, Any]) -> AugmentConfig:
    """The batched augmentation a recipe asks for (and the normalisation evaluation shares)."""
    mean, std = NORMALISATIONS[recipe["normalize"]]
    return AugmentConfig(
        image_size=recipe["image_size"], flip=recipe["aug_flip"],
        crop_scale=tuple(recipe["aug_crop_scale"]), crop_ratio=tuple(recipe["aug_crop_ratio"]),
        brightness=recipe["aug_brightness"], contrast=recipe["aug_contrast"],
        saturation=recipe["aug_saturation"], erase=recipe["aug_erase"],
        erase_scale=tuple(recipe["aug_erase_scale"]), noise=recipe["aug_noise"],
        noise_var=recipe["aug_noise_var"], flip_or_noise=recipe["aug_flip_or_noise"], mean=mean, std=std,
    )


def build_context(method_cls: type[Method], recipe: dict[str, Any], dataset: FERDataset,
                  train_labels: np.ndarray, device: torch.device, training: bool = True,
                  world: World = SINGLE) -> MethodContext:
    """The method's view of the run; ``training=False`` (evaluation) never needs landmarks."""
    landmarks = None
    if method_cls.needs_landmarks and training:
        if dataset.train.landmarks is None:
            raise RunError(
                f"method {method_cls.name or method_cls.__name__} needs landmarks, and dataset "
                f"{dataset.name} has none; run `fer-bench landmarks extract --dataset {dataset.name}` first"
            )
        landmarks = torch.from_numpy(np.asarray(dataset.train.landmarks, dtype=np.float32)).to(device)
    return MethodContext(
        num_classes=dataset.num_classes, class_names=dataset.class_names,
        train_labels=torch.as_tensor(train_labels, dtype=torch.long, device=device).clone(),
        device=device, recipe=recipe, epochs=recipe["epochs"], train_landmarks=landmarks,
        train_names=list(dataset.train.names), world=world,
    )


def load_backbone_weights(method: Method, recipe: dict[str, Any], trust_pickle: bool) -> list[dict[str, Any]]:
    """Load the recipe's pretrained weights into the method's backbones; their records."""
    if recipe["pretrained"] in (None, "", "none"):
        return []
    backbones = method.backbones()
    if not backbones:
        raise RunError(f"method {type(method).__name__} declares no backbone for --set pretrained=...")
    return [load_pretrained(b, recipe["pretrained"], recipe["arch"], trust_pickle) for b in backbones]


@dataclass
class Training:
    """What a run trains with, built before anything is written."""

    device: torch.device
    ctx: MethodContext
    method: Method
    optimizer: Any
    scheduler: Any
    pretrained: list[dict[str, Any]]
    augment: BatchAugment
    seed: int
    step: Optional[nn.Module] = None  # the training step in DistributedDataParallel (several processes)


def build_training(run: ResolvedRun, dataset: FERDataset, train_labels: np.ndarray,
                   world: World = SINGLE) -> Training:
    """The method (its model initialised from the run's seed, then its pretrained weights) and its optimiser,
    schedule and augmentation, for ``dataset``'s training images with ``train_labels``."""
    spec, recipe = run.spec, run.recipe
    device = select_device(spec.device)
    if world.distributed and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
    torch.manual_seed(spec.seed)
    ctx = build_context(run.method_cls, recipe, dataset, train_labels, device, world=world)
    method = run.method_cls(ctx, run.hparams)
    if world.distributed and spec.sync_bn:
        method.model = nn.SyncBatchNorm.convert_sync_batchnorm(method.model)
    pretrained = load_backbone_weights(method, recipe, spec.trust_pickle)
    if device.type == "cuda":
        method.model.to(memory_format=torch.channels_last)
    if spec.compile:
        # The backbones hold nearly all the FLOPs; compiling them in place keeps the state_dict's
        # names, so checkpoints of compiled and plain runs are interchangeable.
        for backbone in method.backbones() or [method.model]:
            backbone.compile()
    optimizer = build_optimizer(method.param_groups(), recipe)
    scheduler = build_scheduler(optimizer, recipe, steps_per_epoch(len(train_labels), recipe))
    # DDP copies rank 0's parameters and buffers to the others (pretrained weights are alike already).
    step = distributed.wrap(TrainingStep(method), world) if world.distributed else None
    return Training(device, ctx, method, optimizer, scheduler, pretrained, BatchAugment(augment_config(recipe)),
                    spec.seed, step)
