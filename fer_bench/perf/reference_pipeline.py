"""The peers' input pipeline, kept as the reference the batched one is measured against.

The peer FER repositories (SCN, RUL, EAC, LA-Net) feed their GPU the classic
way: a ``Dataset`` opens and decodes one image file with PIL per item and
applies torchvision's per-image transforms, and a ``DataLoader`` runs that in
N worker processes and collates the batches. This module builds that pipeline
with every parameter taken from the same
:class:`~fer_bench.augment.AugmentConfig` that configures the batched,
on-device pipeline (:class:`~fer_bench.augment.BatchAugment`), op for op:

==========================  ====================================================
AugmentConfig               torchvision transform (in this order)
==========================  ====================================================
noise, noise_var,           on the decoded image, as the peers do: Gaussian
flip_or_noise               noise (RandomApply), or with flip_or_noise one of
                            flip and noise (RandomApply of a RandomChoice)
crop_scale, crop_ratio      RandomResizedCrop(size, scale, ratio), or
                            Resize((size, size)) when crop_scale is (1, 1)
flip                        RandomHorizontalFlip(flip) (unless flip_or_noise)
brightness, contrast,       ColorJitter(brightness, contrast, saturation), on
saturation                  the PIL image as the peers do (left out when all 0)
mean, std                   ToTensor, Normalize(mean, std)
erase, erase_scale,         RandomErasing(erase, erase_scale, erase_ratio,
erase_ratio                 value=0) (left out when erase is 0)
==========================  ====================================================

What differs is detail, not work: torchvision applies the three jitter ops in
a random order where the batched pipeline always goes brightness, contrast,
saturation; PIL jitters 8-bit images where the batched pipeline jitters floats;
a RandomErasing box that does not fit is redrawn (up to 10 times) where the
batched one is clipped to the image, which only happens for area fractions
above about 0.3 at the extreme aspect ratios. ``tests/test_perf.py`` checks
that the random parameters follow the same distributions.

The evaluation transform is ``Resize((size, size))``, ``ToTensor``,
``Normalize``: :meth:`BatchAugment.eval` up to interpolation rounding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from ..augment import AugmentConfig

# Batches each DataLoader worker may hold ready ahead of the consumer (DataLoader's default).
PREFETCH_FACTOR = 2


def prefetched_batches(workers: int) -> int:
    """How many batches a :func:`reference_loader` with ``workers`` processes can have ready before
    they are asked for: what a benchmark must drain before its clock measures the pipeline."""
    return workers * PREFETCH_FACTOR


class GaussianNoise:
    """The peers' ``add_gaussian_noise`` on a PIL image: ``clip(x + N(0, var), 0, 255)`` cast to uint8."""

    def __init__(self, var: float) -> None:
        self.std = var ** 0.5

    def __call__(self, img: Image.Image) -> Image.Image:
        x = torch.from_numpy(np.asarray(img, dtype=np.float32))
        return Image.fromarray((x + torch.randn(x.shape) * self.std).clamp_(0, 255).to(torch.uint8).numpy())


def build_transform(cfg: AugmentConfig, train: bool = True) -> T.Compose:
    """The per-image torchvision transform equivalent to ``BatchAugment(cfg)`` (or its eval path)."""
    size = cfg.image_size
    ops: list = []
    either = train and cfg.flip_or_noise and cfg.noise > 0
    if either:
        ops.append(T.RandomApply([T.RandomChoice([T.RandomHorizontalFlip(1.0), GaussianNoise(cfg.noise_var)],
                                                 p=[cfg.flip, cfg.noise])], p=cfg.flip + cfg.noise))
    elif train and cfg.noise > 0:
        ops.append(T.RandomApply([GaussianNoise(cfg.noise_var)], p=cfg.noise))
    if train and tuple(cfg.crop_scale) != (1.0, 1.0):
        ops.append(T.RandomResizedCrop(size, scale=tuple(cfg.crop_scale), ratio=tuple(cfg.crop_ratio)))
    else:
        ops.append(T.Resize((size, size)))
    if train:
        if cfg.flip > 0 and not either:
            ops.append(T.RandomHorizontalFlip(cfg.flip))
        if cfg.brightness > 0 or cfg.contrast > 0 or cfg.saturation > 0:
            ops.append(T.ColorJitter(brightness=cfg.brightness, contrast=cfg.contrast, saturation=cfg.saturation))
    ops += [T.ToTensor(), T.Normalize(cfg.mean, cfg.std)]
    if train and cfg.erase > 0:
        ops.append(T.RandomErasing(p=cfg.erase, scale=tuple(cfg.erase_scale), ratio=tuple(cfg.erase_ratio), value=0))
    return T.Compose(ops)


def load_rgb(path: Path) -> Image.Image:
    """Decode one image file into an RGB PIL image (what the peers' ``__getitem__`` does)."""
    with Image.open(path) as img:
        return img.convert("RGB")


class ImageFileDataset(Dataset):
    """Image files decoded per item; yields ``(image tensor, label, index)`` as the peers' datasets do."""

    def __init__(self, paths: Sequence[Path], labels: Sequence[int], transform: T.Compose) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} image paths but {len(labels)} labels")
        self.paths = [str(p) for p in paths]
        self.labels = [int(x) for x in labels]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        return self.transform(load_rgb(Path(self.paths[i]))), self.labels[i], i


def reference_loader(
    paths: Sequence[Path],
    labels: Sequence[int],
    cfg: AugmentConfig,
    workers: int,
    batch_size: Optional[int] = None,
    batches: Optional[Iterable[Sequence[int]]] = None,
    train: bool = True,
    pin_memory: bool = False,
    seed: int = 0,
    persistent_workers: bool = False,
) -> DataLoader:
    """A DataLoader over image files with ``workers`` processes, configured from ``cfg``.

    Give either ``batch_size`` (a seeded shuffle, dropping the last partial batch
    in training as the peers do) or ``batches``, an explicit list of index
    batches (the bench passes the engine's own epoch order, so that both
    pipelines visit the same images). Each worker runs one torch thread
    (DataLoader's default), and its transforms draw from torch's generator,
    seeded per worker from ``seed``.
    """
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if (batch_size is None) == (batches is None):
        raise ValueError("give exactly one of batch_size and batches")
    dataset = ImageFileDataset(paths, labels, build_transform(cfg, train))
    gen = torch.Generator().manual_seed(seed)
    common = dict(num_workers=workers, pin_memory=pin_memory, generator=gen,
                  persistent_workers=persistent_workers and workers > 0,
                  prefetch_factor=PREFETCH_FACTOR if workers > 0 else None)
    if batches is not None:
        return DataLoader(dataset, batch_sampler=[list(map(int, b)) for b in batches], **common)
    return DataLoader(dataset, batch_size=batch_size, shuffle=train, drop_last=train, **common)
