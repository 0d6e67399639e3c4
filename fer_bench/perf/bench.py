"""``fer-bench bench``: training throughput, peak memory and input-pipeline speed, in one process.

Three measurements on a RAF-DB-shaped synthfer set (12,271 training images by
default, rendered once at the requested size into ``<data root>/synthfer-bench-<size>``
as RAF-DB-layout JPEGs, and decoded once into the uint8 cache):

1. **Methods** (``part = training``, ``pipeline = batched``): every requested
   method trains through the engine's own :func:`~fer_bench.engine.run.train_one_epoch`
   with its official recipe under the chosen profile (``paper``: ResNet-18)
   at ``--size`` and ``--batch``. The training set is cut to the timed
   epoch's batches; one short epoch of warm-up steps comes first.
2. **Baseline fed by the reference pipeline** (``pipeline = reference``): the
   same engine loop and Baseline step, fed by :class:`ReferenceBatches`, the
   batches of :mod:`.reference_pipeline` (PIL decode of every JPEG per item,
   torchvision transforms, a DataLoader with ``--workers`` processes) instead
   of the engine's :class:`~fer_bench.engine.run.CachedBatches`. The loader
   walks the index batches the engine would draw.
3. **Input pipelines alone** (``part = pipeline``): augmented batches per
   second with no model, :class:`BatchAugment` on the device from the uint8
   cache (running ``max(1, workers)`` torch threads) against the reference
   pipeline with ``workers`` worker processes, on the same index batches and
   with every op switched on (:data:`PIPELINE_AUGMENT`).

Every measurement is timed the same way (:class:`Timing`, :class:`StepClock`): an
untimed warm-up epoch of ``--warmup`` steps, then one timed epoch whose loader
starts with it (the reference loader's workers start at each epoch, as in the
peers' runs), read at its step boundaries. Its first ``workers x prefetch_factor``
steps are what the workers can have prefetched and are not timed; images/s is
the steady state over the ``--steps`` after them (rounded up to whole rounds of
the workers), and the ratios come from it. The whole timed epoch, start-up and
prefetching included, is recorded beside it (``epoch_images_per_s``). Timing a
window that starts where the warm-up stopped, as this bench once did, counts
the batches the workers made during the warm-up as the window's (with eight
workers, up to 16 of its 20 timed steps).

Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU (the uint8 cache
moved to the GPU included, as in a real run) and, on a CPU, how far the main
process's peak resident set (``getrusage``'s ``ru_maxrss``; the DataLoader
workers are not included) rose above its size at the start of the
measurement, with the high-water mark reset first where Linux allows it
(see :class:`_PeakMemory`). It is labelled as RSS wherever it is shown.

With ``--trace``, each training measurement runs one more epoch of the same
steps under ``torch.profiler`` (after the timed one, so the throughput is not
measured under the profiler's overhead) and records the operators with the
most self time (device time on a GPU, CPU time otherwise): where the time goes
when a target is missed. In the reference pipeline's rows the main process's
wait for the DataLoader shows up as its ``__next__``.

Resolved settings, every row and the environment go to a JSON file, by default
``<results root>/bench/bench-<device>-<size>.json`` (``-pipeline`` added for
``--pipeline-only``), written atomically.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import platform
import re
import resource
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, TypeVar

import numpy as np
import torch
from tqdm import tqdm

from ..atomic import write_json
from ..threads import torch_threads
from ..methods.base import Batch
from ..datasets import raf_layout
from ..datasets.base import FERDataset, Split
from ..augment import AugmentConfig, BatchAugment
from ..engine.environment import environment_record
from ..engine.recipe import PROFILES
from ..engine.run import (
    CachedBatches, ResolvedRun, RunSpec, images_on, augment_config, build_training, epoch_batches, epoch_seed,
    resolve, select_device, train_one_epoch,
)
from ..paths import data_root, results_root
from ..registry import METHODS, create_dataset, list_methods
from .reference_pipeline import PREFETCH_FACTOR, prefetched_batches, reference_loader

RAFDB_N_TRAIN = 12271   # RAF-DB's basic training split
BENCH_N_TEST = 256      # never timed; the loader wants a test split
DEFAULT_STEPS = 30
DEFAULT_WARMUP = 5
MIN_SIZE = 16
REFERENCE_METHOD = "baseline"

# The pipeline-only comparison switches every op on: the engine's default flip
# and erasing, and LA-Net's official crop and colour jitter.
PIPELINE_AUGMENT: dict[str, Any] = {
    "flip": 0.5, "crop_scale": (0.75, 1.0), "crop_ratio": (3 / 4, 4 / 3),
    "brightness": 0.4, "contrast": 0.4, "saturation": 0.4,
    "erase": 0.5, "erase_scale": (0.02, 0.25), "erase_ratio": (0.3, 3.3),
}

NOTES = [
    "reference = the peer repos' pipeline: each image decoded from its JPEG file with PIL per item, "
    "torchvision per-image transforms, DataLoader worker processes, collate (pinned memory on a GPU)",
    "batched = fer-bench's pipeline: BatchAugment on the device over the uint8 cache, which is decoded "
    "once per dataset (that one-off decode is not timed)",
    "both pipelines get the same index batches; each measurement is an untimed warm-up epoch, then a timed "
    "epoch whose loader starts with it (the reference loader's workers start at each epoch, as in the peers' "
    "runs); images/s is that epoch's steady state: its steps after the first workers x prefetch_factor ones "
    "(what the workers can have prefetched), a whole number of rounds of the workers; 'epoch images/s' is "
    "the whole timed epoch, start-up and prefetching included",
]


def default_workers() -> int:
    """DataLoader workers when none are given: the usable cores, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def bench_root(size: int, n_train: int) -> Path:
    """Where the bench dataset of this size lives (reused when complete)."""
    suffix = "" if n_train == RAFDB_N_TRAIN else f"-n{n_train}"
    return data_root() / f"synthfer-bench-{size}{suffix}"


def prepare_dataset(size: int, n_train: int, progress: bool) -> FERDataset:
    """Render (first time only) and load the RAF-DB-shaped synthfer set at ``size`` px."""
    from ..datasets.synthfer.generate import generate

    root = bench_root(size, n_train)
    generate(root, n_train=n_train, n_test=min(BENCH_N_TEST, n_train), size=size, seed=0, progress=progress)
    return create_dataset("synthfer", root, progress)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_info(device: torch.device) -> dict[str, Any]:
    info = {"device": str(device), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def device_slug(device: torch.device) -> str:
    if device.type != "cuda":
        return "cpu"
    return re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(device).lower()).strip("-") or "cuda"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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


class _PeakMemory:
    """Peak memory of one measurement.

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


def _row(part: str, method: Optional[str], pipeline: str, timed: dict[str, Any], batch: int,
         memory: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """One measurement: its steady state (``images``, ``seconds``, the rates) and its whole timed epoch."""
    images, seconds = timed["images"], timed["seconds"]
    return {"part": part, "method": method, "pipeline": pipeline, "images": images, "seconds": seconds,
            "images_per_s": images / seconds, "batches_per_s": images / batch / seconds,
            "epoch_images": timed["epoch_images"], "epoch_seconds": timed["epoch_seconds"],
            "epoch_images_per_s": timed["epoch_images"] / timed["epoch_seconds"], **memory, **extra}


# --- how a measurement is timed -------------------------------------------------------

@dataclass(frozen=True)
class Timing:
    """How every measurement of a bench is timed.

    ``warmup`` untimed steps in an epoch of their own, then one timed epoch of
    ``drain + window`` steps whose loader starts with it (the reference loader's
    workers start at the epoch's beginning, as in the peers' runs). The steady
    state is the last ``window`` steps: the first ``drain`` are what the
    reference loader's workers can have prefetched, so no batch made before the
    window began is counted in it. The window is a whole number of rounds of the
    workers, which deliver their batches in bursts (worker ``k % workers`` makes
    batch ``k``), so the window holds as many bursts as it times.
    """

    warmup: int
    drain: int
    window: int

    @classmethod
    def of(cls, steps: int, warmup: int, workers: int) -> "Timing":
        rounds = max(1, workers)
        return cls(warmup=warmup, drain=prefetched_batches(workers), window=math.ceil(steps / rounds) * rounds)

    @property
    def epoch(self) -> int:
        return self.drain + self.window

    def record(self, steps: int) -> dict[str, Any]:
        return {"method": "steady state of one timed epoch", "warmup_steps": self.warmup,
                "drain_steps": self.drain, "window_steps": self.window, "epoch_steps": self.epoch,
                "requested_steps": steps, "prefetch_factor": PREFETCH_FACTOR,
                "clock": "wall time at step boundaries (after a device synchronisation at the window's "
                         "start and end); images/s = window images / window seconds; epoch_images_per_s "
                         "= the whole timed epoch, its loader's start-up and prefetching included"}


T = TypeVar("T")


class StepClock:
    """Times one epoch at its step boundaries: the whole epoch, and its steady state after ``drain`` steps.

    It wraps the epoch's batch source and reads the clock whenever the consumer
    asks for the next batch, i.e. when the step before is done; so the window
    holds the fetching and the steps of batches ``drain`` to ``total - 1``, and
    nothing the loader did before. On a GPU the device is synchronised at those
    two readings (and at the start) only, so the steps stay asynchronous.
    """

    def __init__(self, device: torch.device, drain: int, total: int) -> None:
        if not 0 <= drain < total:
            raise ValueError(f"a timed epoch of {total} steps cannot drain {drain} first")
        self.device, self.drain, self.total = device, drain, total
        self.start = self.window_start = self.end = None
        self.images = self.epoch_images = 0

    def _now(self) -> float:
        _sync(self.device)
        return time.perf_counter()

    def __call__(self, items: Iterable[T], images: Callable[[T], int]) -> Iterator[T]:
        self.start = self._now()
        if self.drain == 0:
            self.window_start = self.start
        for k, item in enumerate(items):
            n = images(item)
            yield item  # the step runs here
            self.epoch_images += n
            self.images += n if k >= self.drain else 0
            if k + 1 == self.drain:
                self.window_start = self._now()
            if k + 1 == self.total:
                self.end = self._now()

    def result(self) -> dict[str, Any]:
        if self.end is None or self.window_start is None or self.start is None:
            raise RuntimeError(f"the timed epoch ended before its {self.total} steps")
        return {"images": self.images, "seconds": self.end - self.window_start,
                "epoch_images": self.epoch_images, "epoch_seconds": self.end - self.start}


class _Clocked:
    """A training batch source whose iteration runs under a :class:`StepClock`."""

    def __init__(self, source: Any, clock: StepClock) -> None:
        self.source, self.clock = source, clock

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self) -> Iterator[Batch]:
        return self.clock(self.source, lambda b: len(b.labels))


# --- input pipelines alone ------------------------------------------------------------

def _index_batches(n: int, batch: int, count: int, seed: int = 0) -> list[torch.Tensor]:
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

    ``batches`` are the warm-up batches, then the timed epoch's (see :class:`Timing`).
    """
    memory = _PeakMemory(device)
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
    return _row("pipeline", None, "batched", timed, len(batches[0]), memory.read(), torch_threads=threads)


def measure_reference_pipeline(dataset: FERDataset, cfg: AugmentConfig, device: torch.device,
                               batches: Sequence[torch.Tensor], warmup: int, workers: int,
                               progress: bool, drain: Optional[int] = None) -> dict[str, Any]:
    """The peers' pipeline: JPEG decode + torchvision per image in ``workers`` processes, to the device.

    The warm-up and the timed epoch each get a loader of their own, whose workers start with
    it; ``drain`` (default: what the workers can prefetch) batches of the timed one are not timed.
    """
    memory = _PeakMemory(device)
    paths = train_paths(dataset)

    def epoch(index_batches: Sequence[torch.Tensor]) -> Iterator[tuple[torch.Tensor]]:
        for x, _, _ in reference_loader(paths, dataset.train.labels, cfg, workers, batches=index_batches,
                                        pin_memory=device.type == "cuda"):
            yield (x.to(device, non_blocking=True),)

    drain = prefetched_batches(workers) if drain is None else drain
    timed = _time_pipeline("reference pipeline", epoch, device, batches, warmup, drain, progress)
    return _row("pipeline", None, "reference", timed, len(batches[0]), memory.read(), workers=workers)


# --- training -----------------------------------------------------------------------

TRACE_TOP = 15  # operators kept per traced measurement
TRACE_PRINTED = 6


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
    """Images/s of training through ``train_one_epoch`` in its steady state (see :class:`Timing`).

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
    memory = _PeakMemory(device)
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
    result = _row("training", run.spec.method.lower(), "batched" if workers is None else "reference",
                  clock.result(), batch, peak, **extra)
    del method, setup, ctx, source
    return result


# --- the whole bench --------------------------------------------------------------

def _check(methods: Sequence[str], size: int, batch: int, steps: int, warmup: int, workers: int,
           n_train: int) -> None:
    if size < MIN_SIZE:
        raise ValueError(f"--size {size} is too small (minimum {MIN_SIZE})")
    if batch < 2:
        raise ValueError(f"--batch {batch} is too small (batch normalisation needs at least 2)")
    if steps < 1:
        raise ValueError(f"--steps must be at least 1, got {steps}")
    if warmup < 0:
        raise ValueError(f"--warmup must be >= 0, got {warmup}")
    if workers < 0:
        raise ValueError(f"--workers must be >= 0, got {workers}")
    if n_train < batch:
        raise ValueError(f"--n-train {n_train} is smaller than one batch ({batch})")
    if not methods:
        raise ValueError("no methods to measure")
    for name in methods:
        METHODS.get(name)  # an unknown name raises, listing the known ones


def _ratios(rows: list[dict[str, Any]]) -> None:
    refs = {row["part"]: row["images_per_s"] for row in rows if row["pipeline"] == "reference"}
    for row in rows:
        ref = refs.get(row["part"])
        row["ratio_to_reference"] = row["images_per_s"] / ref if ref else None


def _speedups(rows: list[dict[str, Any]]) -> dict[str, float]:
    """batched / reference images/s: of the pipelines alone, and of the Baseline's training step."""
    out = {}
    cases = (("input_pipeline", "pipeline", None), ("baseline_training", "training", REFERENCE_METHOD))
    for key, part, method in cases:
        rate = {r["pipeline"]: r["images_per_s"] for r in rows if r["part"] == part and r["method"] == method}
        if "batched" in rate and "reference" in rate:
            out[key] = rate["batched"] / rate["reference"]
    return out


def run_bench(
    methods: Optional[Sequence[str]] = None,
    size: int = 224,
    batch: int = 128,
    device: str = "auto",
    n_train: int = RAFDB_N_TRAIN,
    workers: Optional[int] = None,
    steps: int = DEFAULT_STEPS,
    warmup: int = DEFAULT_WARMUP,
    out: Optional[str | Path] = None,
    profile: str = "paper",
    pipeline_only: bool = False,
    trace: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure, print nothing, write the JSON record to ``out`` and return it (see the module docstring)."""
    methods = list(methods) if methods else list_methods()
    workers = default_workers() if workers is None else workers
    _check(methods, size, batch, steps, warmup, workers, n_train)
    timing = Timing.of(steps, warmup, workers)
    overrides = {"image_size": size, "batch_size": batch}
    runs = [] if pipeline_only else [
        resolve(RunSpec(method=m, profile=profile, overrides=overrides, device=device))
        for m in [REFERENCE_METHOD, *methods]]
    if profile not in PROFILES:  # resolve checks it too, but not under --pipeline-only
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    dev = select_device(device)

    dataset = prepare_dataset(size, n_train, progress)
    pipe_cfg = AugmentConfig(image_size=size, **PIPELINE_AUGMENT)
    batches = _index_batches(len(dataset.train), batch, warmup + timing.epoch)
    window, drain = timing.window, timing.drain  # every measurement times the same steps
    tasks: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("pipeline: batched", lambda: measure_batched_pipeline(
            dataset, pipe_cfg, dev, batches, warmup, max(1, workers), progress, drain)),
        ("pipeline: reference", lambda: measure_reference_pipeline(
            dataset, pipe_cfg, dev, batches, warmup, workers, progress, drain)),
    ]
    if runs:
        tasks.append((f"training: {REFERENCE_METHOD} on reference", lambda: measure_training(
            runs[0], dataset, dev, window, warmup, workers, progress, trace, drain)))
        for run in runs[1:]:
            tasks.append((f"training: {run.spec.method}", lambda run=run: measure_training(
                run, dataset, dev, window, warmup, None, progress, trace, drain)))

    rows = []
    with tqdm(tasks, desc="bench", unit="measurement", disable=not progress) as bar:
        for name, task in bar:
            bar.set_postfix_str(name)
            rows.append(task())
    _ratios(rows)

    result: dict[str, Any] = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device_info(dev),
        "environment": environment_record(dev),
        "dataset": {"name": "synthfer (RAF-DB-shaped)", "root": str(dataset.root), "n_train": len(dataset.train),
                    "n_test": len(dataset.test), "image_size": size, "files": "RAF-DB layout JPEG"},
        "settings": {"methods": [] if pipeline_only else methods, "size": size, "batch": batch, "steps": steps,
                     "warmup": warmup, "workers": workers, "profile": profile, "pipeline_only": pipeline_only,
                     "trace": trace},
        "timing": timing.record(steps),
        "pipeline_augment": asdict(pipe_cfg),
        "training_augment_baseline": None if pipeline_only else asdict(augment_config(runs[0].recipe)),
        "notes": NOTES,
        "rows": rows,
        "speedup": _speedups(rows),
    }
    path = Path(out) if out else default_out(dev, size, pipeline_only)
    path.parent.mkdir(parents=True, exist_ok=True)
    result["out"] = str(path)
    write_json(path, result)
    return result


def default_out(device: torch.device, size: int, pipeline_only: bool) -> Path:
    name = f"bench-{device_slug(device)}-{size}{'-pipeline' if pipeline_only else ''}.json"
    return results_root() / "bench" / name


def format_table(result: dict[str, Any]) -> str:
    """The printed report: a header naming device and settings, then one line per measurement."""
    d, s, ds, t = result["device"], result["settings"], result["dataset"], result["timing"]
    where = f"{d['gpu']} (cuda)" if "gpu" in d else f"CPU {d['cpu']}"
    lines = [
        f"fer-bench bench on {where}, {d['cpu_count']} cores, {d['torch_threads']} torch threads, torch {d['torch']}",
        f"data: {ds['name']}, {ds['n_train']} training images at {ds['image_size']} px ({ds['files']}, {ds['root']})",
        f"batch {s['batch']}, {s['workers']} DataLoader workers" + (
            "" if s["pipeline_only"] else f", profile {s['profile']}"),
        f"timing: {t['warmup_steps']} warm-up steps, then an epoch of {t['epoch_steps']} steps: images/s over its "
        f"last {t['window_steps']} (steady state), after {t['drain_steps']} that {s['workers']} workers x "
        f"{t['prefetch_factor']} can have prefetched",
    ]
    lines += [f"  * {note}" for note in result["notes"]]
    pa = result["pipeline_augment"]
    lines.append(
        f"  * pipeline ops: flip {pa['flip']}, random-resized crop scale {tuple(pa['crop_scale'])}, colour jitter "
        f"{pa['brightness']}/{pa['contrast']}/{pa['saturation']}, erasing p {pa['erase']} scale "
        f"{tuple(pa['erase_scale'])}, output {pa['image_size']} px")
    mem_kind = result["rows"][0]["memory_kind"]
    mem_head = "peak GPU MiB" if mem_kind == "cuda_max_allocated" else "+peak RSS MiB"
    header = (f"{'part':<9} {'method':<10} {'pipeline':<10} {'images/s':>9} {'batches/s':>9} {mem_head:>14} "
              f"{'vs reference':>12} {'epoch images/s':>14}")
    lines += ["", header, "-" * len(header)]
    for row in result["rows"]:
        ratio = row["ratio_to_reference"]
        lines.append(
            f"{row['part']:<9} {row['method'] or '-':<10} {row['pipeline']:<10} {row['images_per_s']:>9.1f} "
            f"{row['batches_per_s']:>9.2f} {row['peak_memory_mib']:>14.0f} "
            f"{(f'{ratio:.2f}x' if ratio else '-'):>12} {row['epoch_images_per_s']:>14.1f}")
    speedup = result.get("speedup", {})
    if speedup:
        lines.append("speed-up of the batched pipeline over the reference: " + ", ".join(
            f"{k.replace('_', ' ')} {v:.2f}x" for k, v in speedup.items()))
    for row in result["rows"]:
        if "trace" in row:
            t = row["trace"]
            lines.append(f"where the time goes, {row['method']} on {row['pipeline']} ({t['clock']}, one profiled "
                         f"epoch, {t['total_ms']:.0f} ms): " + ", ".join(
                             f"{op['name']} {100 * op['share']:.0f}%" for op in t["operators"][:TRACE_PRINTED]))
    if mem_kind != "cuda_max_allocated":
        lines.append("(+peak RSS: how far the main process's resident set peaked above its size at the start "
                     "of the measurement (getrusage); DataLoader workers not included)")
    lines.append(f"written to {result['out']}")
    return "\n".join(lines)
