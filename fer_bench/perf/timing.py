"""How every benchmark measurement is timed, and the row it becomes.

Every measurement (training or an input pipeline alone) is timed the same way
(:class:`Timing`, :class:`StepClock`): an untimed warm-up epoch of ``warmup``
steps, then one timed epoch whose loader starts with it (the reference
loader's workers start at each epoch, as in the peers' runs), read at its step
boundaries. Its first ``workers x prefetch_factor`` steps are what the workers
can have prefetched and are not timed; images/s is the steady state over the
steps after them (rounded up to whole rounds of the workers). The whole timed
epoch, start-up and prefetching included, is recorded beside it
(``epoch_images_per_s``). A window that started where the warm-up stopped
would count the batches the workers made during the warm-up as its own (with
eight workers, up to 16 of 20 timed steps).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional, TypeVar

import torch

from .reference_pipeline import PREFETCH_FACTOR, prefetched_batches


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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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


def measurement_row(part: str, method: Optional[str], pipeline: str, timed: dict[str, Any], batch: int,
                    memory: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """One measurement: its steady state (``images``, ``seconds``, the rates) and its whole timed epoch
    (``timed``, a :meth:`StepClock.result`), its ``memory`` and any ``extra`` columns."""
    images, seconds = timed["images"], timed["seconds"]
    return {"part": part, "method": method, "pipeline": pipeline, "images": images, "seconds": seconds,
            "images_per_s": images / seconds, "batches_per_s": images / batch / seconds,
            "epoch_images": timed["epoch_images"], "epoch_seconds": timed["epoch_seconds"],
            "epoch_images_per_s": timed["epoch_images"] / timed["epoch_seconds"], **memory, **extra}
