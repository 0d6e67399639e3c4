"""Training throughput through the engine's own loop, fed by either input pipeline.

:func:`measure_training` trains a resolved run's method with
:func:`~fer_bench.engine.run.train_one_epoch` on the first batches of a
dataset: an untimed warm-up epoch, then a timed one (:mod:`.timing`). The
batches come from the engine's own source
(:class:`~fer_bench.engine.run.CachedBatches`, the batched pipeline) or from
:class:`ReferenceBatches`, the peers' per-image pipeline
(:mod:`.reference_pipeline`) walking the index batches the engine would draw.

With ``trace``, one more epoch of the same steps runs under ``torch.profiler``
(after the timed one, so the throughput is not measured under the profiler's
overhead) and the operators with the most self time are recorded (device time
on a GPU, CPU time otherwise): where the time goes when a target is missed. On
the reference pipeline the main process's wait for the DataLoader shows up as
its ``__next__``.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any, Iterator, Optional

import numpy as np
import torch

from ..datasets import raf_layout
from ..datasets.base import FERDataset, Split
from ..engine.build import build_training
from ..engine.data import images_on
from ..engine.loop import CachedBatches, epoch_batches, epoch_seed, train_one_epoch
from ..engine.spec import ResolvedRun
from ..methods.base import Batch
from .probes import PeakMemory
from .reference_pipeline import prefetched_batches, reference_loader
from .timing import StepClock, measurement_row

TRACE_TOP = 15  # operators kept per traced measurement


def _top_operators(prof: Any, device: torch.device) -> dict[str, Any]:
    """The operators with the most self time in a finished ``torch.profiler`` run, with their shares."""
    gpu = device.type == "cuda"
    timed = [(e.self_device_time_total if gpu else e.self_cpu_time_total, e) for e in prof.key_averages()]
    timed = sorted(((us, e) for us, e in timed if us > 0), key=lambda t: t[0], reverse=True)
    total = sum(us for us, _ in timed)
    return {"clock": "self device time" if gpu else "self CPU time", "total_ms": total / 1e3,
            "operators": [{"name": e.key, "calls": e.count, "self_ms": us / 1e3, "share": us / total}
                          for us, e in timed[:TRACE_TOP]]}


@contextlib.contextmanager
def _profiled(device: torch.device, into: dict[str, Any]) -> Iterator[None]:
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        yield
    into.update(_top_operators(prof, device))


def _subset(dataset: FERDataset, n: int) -> FERDataset:
    """The first ``n`` training images (repeated when the set is smaller) as a dataset's train split."""
    train, take = dataset.train, np.arange(n) % len(dataset.train)
    images = train.images[:n] if n <= len(train) else train.images[take]  # a view when it can be
    sub = Split(names=[train.names[i] for i in take], images=images, labels=train.labels[take],
                landmarks=None if train.landmarks is None else train.landmarks[take])
    return replace(dataset, train=sub)


class _Clocked:
    """A training batch source whose iteration runs under a :class:`StepClock`."""

    def __init__(self, source: Any, clock: StepClock) -> None:
        self.source, self.clock = source, clock

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self) -> Iterator[Batch]:
        return self.clock(self.source, lambda b: len(b.labels))


class ReferenceBatches:
    """The peers' per-image pipeline as a batch source of the engine's loop.

    ``loader`` is a :func:`~.reference_pipeline.reference_loader` over this
    epoch's index batches; iterating starts its workers, as each epoch of the
    peers' runs does. Labels are the engine's current ones at the loader's
    indices. There are no un-augmented uint8 images or landmarks, so only
    methods that read neither (the bench feeds Baseline) can train on it.
    """

    def __init__(self, loader: Any, method: Any, gen: torch.Generator) -> None:
        self.loader, self.method, self.gen = loader, method, gen

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Batch]:
        ctx = self.method.ctx
        device = ctx.device
        for images, _, idx in self.loader:
            idx = idx.to(device, non_blocking=True)
            b = len(idx)
            yield Batch(images=images.to(device, non_blocking=True), labels=ctx.train_labels[idx], indices=idx,
                        raw=torch.empty(0, dtype=torch.uint8, device=device), gen=self.gen,
                        flipped=torch.zeros(b, dtype=torch.bool, device=device))


def measure_training(run: ResolvedRun, dataset: FERDataset, device: torch.device, steps: int, warmup: int,
                     workers: Optional[int], progress: bool, trace: bool = False,
                     drain: Optional[int] = None) -> dict[str, Any]:
    """Images/s of training through ``train_one_epoch`` in its steady state (see :class:`~.timing.Timing`).

    An epoch of ``warmup`` untimed steps, then a timed epoch of ``drain + steps``
    steps of which the last ``steps`` are the steady state; ``drain`` defaults to
    what ``workers`` DataLoader workers can prefetch (none for the engine's own
    source). ``workers=None`` feeds the engine's own batch source
    (:class:`~fer_bench.engine.run.CachedBatches`); a number feeds
    :class:`ReferenceBatches` with that many DataLoader workers. ``trace``
    profiles one more epoch like the timed one, after it.
    """
    batch = run.recipe["batch_size"]
    drain = prefetched_batches(workers or 0) if drain is None else drain
    n_sub = max(drain + steps, warmup, 1) * batch
    full_n = len(dataset.train)
    sub = _subset(dataset, n_sub)
    memory = PeakMemory(device)
    setup = build_training(run, sub, sub.train.labels)
    method, ctx = setup.method, setup.ctx
    amp = device.type == "cuda"
    all_labels = ctx.train_labels
    # Epoch 0 is the warm-up, epoch 1 the timed one: the same context over the first batches of the
    # subset (views, so a method that rewrites labels rewrites the real ones).
    timed_labels = all_labels[:(drain + steps) * batch]
    epochs = [(0, all_labels[:warmup * batch])] if warmup > 0 else []
    epochs.append((1, timed_labels))
    if trace:
        epochs.append((2, timed_labels))

    if workers is None:
        # The whole cache, as a real run holds it, whenever the subset is a prefix of it.
        images = images_on(device, dataset.train.images if n_sub <= full_n else sub.train.images)

        def source(epoch: int) -> Any:
            return CachedBatches(method, images, setup.augment, setup.seed, epoch)
    else:
        paths = [raf_layout.aligned_path(dataset.root, name) for name in sub.train.names]

        def source(epoch: int) -> Any:  # the epoch's batches, drawn as the engine draws them
            gen = torch.Generator().manual_seed(epoch_seed(setup.seed, epoch, 0))
            loader = reference_loader(paths, sub.train.labels, setup.augment.cfg, workers,
                                      batches=epoch_batches(method, ctx, epoch, gen),
                                      pin_memory=device.type == "cuda")
            return ReferenceBatches(loader, method, gen)

    profiled: dict[str, Any] = {}
    for epoch, labels in epochs:
        ctx.train_labels = labels
        try:
            batches = source(epoch)
            if epoch == 1:
                clock = StepClock(device, drain, len(batches))
                batches = _Clocked(batches, clock)
            with _profiled(device, profiled) if epoch == 2 else contextlib.nullcontext():
                row = train_one_epoch(method, batches, setup.optimizer, setup.scheduler, amp, epoch,
                                      progress=progress and epoch == 1)
        finally:
            ctx.train_labels = all_labels
        if epoch == 1:
            timed_row = row
            peak = memory.read()  # before a traced epoch, whose profiler holds memory of its own
    extra: dict[str, Any] = {"workers": workers} if workers is not None else {}
    if "torch_threads" in timed_row:  # the CPU thread policy's mean count over the timed epoch
        extra["torch_threads"] = timed_row["torch_threads"]
    if profiled:
        extra["trace"] = profiled
    result = measurement_row("training", run.spec.method.lower(), "batched" if workers is None else "reference",
                             clock.result(), batch, peak, **extra)
    del method, setup, ctx, source
    return result
