"""The input pipelines alone: augmented batches per second with no model.

:func:`measure_batched_pipeline` runs :class:`~fer_bench.augment.BatchAugment`
on the device over the uint8 cache (gathered as the engine gathers it), with a
given number of torch threads; :func:`measure_reference_pipeline` runs the
peers' pipeline (:mod:`.reference_pipeline`: a JPEG decode and torchvision
transforms per image in DataLoader worker processes). Both get the same index
batches (:func:`index_batches`) and are timed the same way (:mod:`.timing`);
the bench compares them with every op switched on (:data:`PIPELINE_AUGMENT`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import torch
from tqdm import tqdm

from ..augment import AugmentConfig, BatchAugment
from ..datasets import raf_layout
from ..datasets.base import FERDataset
from ..engine.data import images_on
from ..threads import torch_threads
from .probes import PeakMemory
from .reference_pipeline import prefetched_batches, reference_loader
from .timing import StepClock, measurement_row

# The pipeline-only comparison switches every op on: the engine's default flip
# and erasing, and LA-Net's official crop and colour jitter.
PIPELINE_AUGMENT: dict[str, Any] = {
    "flip": 0.5, "crop_scale": (0.75, 1.0), "crop_ratio": (3 / 4, 4 / 3),
    "brightness": 0.4, "contrast": 0.4, "saturation": 0.4,
    "erase": 0.5, "erase_scale": (0.02, 0.25), "erase_ratio": (0.3, 3.3),
}


def index_batches(n: int, batch: int, count: int, seed: int = 0) -> list[torch.Tensor]:
    """``count`` shuffled index batches over ``n`` images (several passes when needed)."""
    gen = torch.Generator().manual_seed(seed)
    passes = math.ceil(count * batch / n)
    order = torch.cat([torch.randperm(n, generator=gen) for _ in range(passes)])
    return list(order[:count * batch].split(batch))


def train_paths(dataset: FERDataset) -> list[Path]:
    """The JPEG file of every training image (synthfer is written in RAF-DB's layout)."""
    return [raf_layout.aligned_path(dataset.root, name) for name in dataset.train.names]


def _time_pipeline(name: str, epoch: Callable[[Sequence[torch.Tensor]], Iterable[Any]], device: torch.device,
                   batches: Sequence[torch.Tensor], warmup: int, drain: int, progress: bool) -> dict[str, Any]:
    """Run ``epoch`` (index batches -> the pipeline's batches) over ``warmup`` batches untimed, then
    over the rest under a :class:`StepClock` draining ``drain``; the clock's result."""
    if warmup:
        for _ in epoch(batches[:warmup]):
            pass
    timed = batches[warmup:]
    clock = StepClock(device, drain, len(timed))
    bar = tqdm(total=len(timed), desc=name, leave=False, disable=not progress)
    for _ in clock(epoch(timed), lambda b: len(b[0])):
        bar.update()
    bar.close()
    return clock.result()


def measure_batched_pipeline(dataset: FERDataset, cfg: AugmentConfig, device: torch.device,
                             batches: Sequence[torch.Tensor], warmup: int, threads: int,
                             progress: bool, drain: int = 0) -> dict[str, Any]:
    """BatchAugment over the uint8 cache, gathered and augmented on the device as the engine does.

    ``batches`` are the warm-up batches, then the timed epoch's (see :class:`~.timing.Timing`).
    """
    memory = PeakMemory(device)
    augment = BatchAugment(cfg)
    images = images_on(device, dataset.train.images)
    gen = torch.Generator().manual_seed(0)

    def epoch(index_batches: Sequence[torch.Tensor]) -> Iterator[tuple[torch.Tensor]]:
        for idx in index_batches:
            idx_dev = idx.to(device, non_blocking=True)
            raw = images[idx_dev if images.device == device else idx].to(device, non_blocking=True)
            yield (augment(raw, gen).images,)

    with torch_threads(threads):
        timed = _time_pipeline("batched pipeline", epoch, device, batches, warmup, drain, progress)
    return measurement_row("pipeline", None, "batched", timed, len(batches[0]), memory.read(),
                           torch_threads=threads)


def measure_reference_pipeline(dataset: FERDataset, cfg: AugmentConfig, device: torch.device,
                               batches: Sequence[torch.Tensor], warmup: int, workers: int,
                               progress: bool, drain: Optional[int] = None) -> dict[str, Any]:
    """The peers' pipeline: JPEG decode + torchvision per image in ``workers`` processes, to the device.

    The warm-up and the timed epoch each get a loader of their own, whose workers start with
    it; ``drain`` (default: what the workers can prefetch) batches of the timed one are not timed.
    """
    memory = PeakMemory(device)
    paths = train_paths(dataset)

    def epoch(index_batches: Sequence[torch.Tensor]) -> Iterator[tuple[torch.Tensor]]:
        for x, _, _ in reference_loader(paths, dataset.train.labels, cfg, workers, batches=index_batches,
                                        pin_memory=device.type == "cuda"):
            yield (x.to(device, non_blocking=True),)

    drain = prefetched_batches(workers) if drain is None else drain
    timed = _time_pipeline("reference pipeline", epoch, device, batches, warmup, drain, progress)
    return measurement_row("pipeline", None, "reference", timed, len(batches[0]), memory.read(),
                           workers=workers)
