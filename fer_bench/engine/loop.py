"""The training loop: an epoch's batches and one epoch of a method over them.

:class:`CachedBatches` is the engine's batch source (index batches gathered from the uint8 image
cache and augmented on the device); :func:`train_one_epoch` trains a method over any iterable of
:class:`~fer_bench.methods.base.Batch` (:mod:`fer_bench.pretrain` feeds it too).

Every epoch's shuffling, augmentation and in-model randomness come from generators seeded by
(seed, epoch) (:func:`epoch_seed`), never from state carried across epochs, so a resumed epoch
replays exactly and a resumed run ends, on a CPU, with the numbers of an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterable, Iterator, Optional, Sized

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .. import threads
from ..augment import BatchAugment
from ..methods.base import Batch, Method, MethodContext, StepOutput
from ..runs import RunError
from . import distributed
from .samplers import epoch_order


def epoch_seed(seed: int, epoch: int, stream: int, rank: Optional[int] = None) -> int:
    """A seed per (run seed, epoch, purpose), and per rank in a multi-process run, so a resumed epoch replays
    exactly."""
    key = [seed, epoch, stream] if rank is None else [seed, epoch, stream, rank]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def steps_per_epoch(n: int, recipe: dict[str, Any]) -> int:
    """Optimiser steps in an epoch of ``n`` samples (a final partial batch is dropped, see epoch_batches)."""
    return max(1, n // recipe["batch_size"])


def epoch_batches(method: Method, ctx: MethodContext, epoch: int, gen: torch.Generator) -> list[torch.Tensor]:
    """The epoch's (global) index batches; a final partial batch is dropped unless it is the only one
    (a batch of one breaks batch normalisation, and LA-Net's official loader drops it too)."""
    order = method.epoch_indices(epoch, gen)
    if order is None:
        order = epoch_order(ctx.recipe["sampler"], ctx.train_labels.cpu(), epoch, ctx.epochs, gen)
    bs = ctx.recipe["batch_size"]
    batches = list(order.split(bs))
    if len(batches) > 1 and len(batches[-1]) < bs:
        batches.pop()
    return batches


class CachedBatches:
    """The engine's batch source: an epoch's index batches gathered from the uint8 image cache and
    augmented on the device.

    Iterating it seeds the epoch (torch's global generator for in-model randomness, and the
    generator of the order and the augmentation) from ``(seed, epoch)``, so a resumed epoch
    replays exactly; it is lazy, so the method's ``on_epoch_start`` runs before any of that.

    In a multi-process run every rank cuts the same global batches and trains its shard of each
    (:mod:`.distributed`); in-model randomness and augmentation are seeded from (seed, epoch, rank).

    ``rows`` (on ``images``' device) maps a training index to its row of ``images`` when the method trains
    on some of the cache's rows (a noisy validation split holds the others out), so that no copy of the
    cache is made; without it, training index i is row i.
    """

    def __init__(self, method: Method, images: torch.Tensor, augment: BatchAugment, seed: int, epoch: int,
                 rows: Optional[torch.Tensor] = None) -> None:
        self.method, self.images, self.augment, self.seed, self.epoch = method, images, augment, seed, epoch
        self.rows = rows

    def __len__(self) -> int:
        ctx = self.method.ctx
        return steps_per_epoch(ctx.num_train, ctx.recipe)

    def __iter__(self) -> Iterator[Batch]:
        ctx, device, images = self.method.ctx, self.method.ctx.device, self.images
        world = ctx.world
        rank = world.rank if world.distributed else None
        torch.manual_seed(epoch_seed(self.seed, self.epoch, 1, rank))
        gen = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch, 0))
        batches = epoch_batches(self.method, ctx, self.epoch, gen)
        if world.distributed:
            # equal shards (the collectives need equal shapes), then this rank's own augmentation stream
            batches = [b[:len(b) - len(b) % world.size][world.rank::world.size] for b in batches]
            gen = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch, 2, world.rank))
        for idx in batches:
            # A pinned source is copied by DMA while the host goes on; a pageable one is staged by the host first.
            idx_dev = idx.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else idx
            src = idx_dev if images.device == device else idx
            raw = images[src if self.rows is None else self.rows[src]].to(device, non_blocking=True)
            landmarks = ctx.train_landmarks[idx_dev] if ctx.train_landmarks is not None else None
            aug = self.augment(raw, gen, landmarks=landmarks, noiseless=self.method.needs_noiseless)
            yield Batch(images=aug.images, labels=ctx.train_labels[idx_dev], indices=idx_dev, raw=raw,
                        gen=gen, flipped=aug.flipped, landmarks=aug.landmarks, noiseless=aug.noiseless)


class TrainingStep(nn.Module):
    """``method.training_step`` as a module whose parameters are the method's model, so that
    DistributedDataParallel can wrap the whole step (its gradient hooks see every parameter the
    step uses, through whichever sub-modules the method calls)."""

    def __init__(self, method: Method) -> None:
        super().__init__()
        self.model = method.model
        self.method = [method]  # a list: not a sub-module

    def forward(self, batch: Batch) -> tuple[torch.Tensor, StepOutput]:
        out = self.method[0].training_step(batch)
        return out.loss, out


def train_one_epoch(method: Method, batches: Iterable[Batch], optimizer: Any, scheduler: Any, amp: bool,
                    epoch: int, progress: bool = False, step: Optional[nn.Module] = None, *,
                    adapt_threads: bool = True) -> dict[str, float]:
    """One epoch of ``method`` over ``batches`` (any iterable of :class:`Batch`, e.g. :class:`CachedBatches`);
    ``step``: the method's step wrapped for several processes (:func:`.distributed.wrap`). On a CPU the
    thread count follows the policy of :mod:`fer_bench.threads`; ``adapt_threads=False`` keeps it as it is
    (the pretraining, whose file is reproducible only at a fixed count)."""
    device, world = method.ctx.device, method.ctx.world
    method.model.train()
    method.on_epoch_start(epoch)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen_logits = n_seen = 0
    log_sums: dict[str, torch.Tensor] = {}
    governor = threads.governor() if device.type == "cpu" and adapt_threads else None
    start = time.perf_counter()
    total = len(batches) if isinstance(batches, Sized) else None
    for batch in tqdm(batches, total=total, desc=f"epoch {epoch + 1}/{method.ctx.epochs}", leave=False,
                      disable=not progress):
        if governor is not None:
            governor.tick()
        if device.type == "cuda":
            batch.images = batch.images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = step(batch)[1] if step is not None else method.training_step(batch)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        scheduler.step()
        distributed.sync_rows(world, method.shared_rows(), batch.indices)
        b = len(batch.labels)
        n_seen += b
        loss_sum += out.loss.detach().float() * b
        if out.logits is not None:
            correct += (out.logits.detach().argmax(1) == batch.labels).sum()
            seen_logits += b
        for key, value in out.logs.items():
            log_sums[key] = log_sums.get(key, 0) + value.detach().float() * b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    if world.distributed:  # the epoch's numbers over every rank's samples
        n_seen, seen_logits = world.size * n_seen, world.size * seen_logits
        loss_sum, correct, log_sums = distributed.sum_over_ranks(world, loss_sum, correct, log_sums)
    loss = float(loss_sum) / n_seen
    if not math.isfinite(loss):
        raise RunError(f"training loss became {loss} in epoch {epoch + 1}; lower the lr (--set lr=...)")
    row = {"train_loss": loss, "train_acc_noisy": float(correct) / seen_logits if seen_logits else float("nan"),
           "train_seconds": seconds, "images_per_s": n_seen / seconds}
    if governor is not None:
        row["torch_threads"] = governor.take_mean()
    row.update({key: float(total) / n_seen for key, total in log_sums.items()})
    row.update(method.on_epoch_end(epoch))
    return row
