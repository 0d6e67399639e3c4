"""One run over several processes: torchrun's ranks, DistributedDataParallel and the few collectives
the engine and methods need.

The launcher is torchrun (``torchrun --nproc-per-node N -m fer_bench run ...``, or ``fer-bench run
--nproc N``, which starts it); the process group is initialised from the environment torchrun sets
(``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...), with NCCL on CUDA and gloo on the CPU. A plain
``fer-bench run`` (no torchrun) is world size 1 and never touches ``torch.distributed``, so its
numbers are those of the single-process engine. The gradient all-reduce is DDP's; the helpers here
only gather rows without gradient (per-sample memories, LA-Net's keys) and synchronise.

How a global batch is split: the recipe's ``batch_size`` is the global batch; every rank computes
the same epoch order from the (seed, epoch) generator, cuts the same global batches, and rank ``r``
trains positions ``r, r + N, r + 2N, ...`` of each (the official samplers' ``indices[rank::world]``,
and what LA-Net's one-device ``shards`` emulation assumes). ``batch_size`` must be a multiple of N.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place in the run: ``rank`` of ``size`` processes (size 1: a plain run)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


SINGLE = World()


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def init(device_type: str) -> World:
    """Join the process group torchrun describes (once per process); a plain run is :data:`SINGLE`."""
    if not launched_by_torchrun():
        return SINGLE
    world = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if world.size > 1 and not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(world.local_rank)
        # Rank 0 evaluates and writes alone while the others wait at a barrier: allow a long evaluation.
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo", timeout=timedelta(hours=2))
        # Once per process: a worker may train several runs, and the group cannot be made twice.
        atexit.register(shutdown)
    return world


def current() -> World:
    """The world this process is part of (:data:`SINGLE` outside torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return SINGLE


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def broadcast(world: World, value: Any) -> Any:
    """Rank 0's ``value`` on every rank (any picklable object)."""
    if not world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_main(world: World, fn: Callable[[], Any]) -> Any:
    """``fn()`` run on rank 0 alone, its value returned (or its exception raised) on every rank, so that no
    rank waits on a collective that rank 0 will never reach."""
    value: Any = None
    if world.is_main:
        try:
            value = fn()
        except Exception as exc:  # the others raise it too
            value = exc
    value = broadcast(world, value)
    if isinstance(value, Exception):
        raise value
    return value


@torch.no_grad()
def gather_rows(world: World, x: torch.Tensor) -> torch.Tensor:
    """Every rank's ``x`` (same shape on all ranks) concatenated along dim 0 in rank order, without gradient."""
    if not world.distributed:
        return x.detach()
    parts = [torch.empty_like(x) for _ in range(world.size)]
    dist.all_gather(parts, x.detach().contiguous())
    return torch.cat(parts)


@torch.no_grad()
def sync_rows(world: World, memories: list[torch.Tensor], indices: torch.Tensor) -> None:
    """Make the per-sample ``memories`` (indexed by sample along dim 0) equal on every rank after a step:
    each rank's rows at its ``indices`` are gathered and written on all ranks, in rank order (a sample
    two ranks both drew keeps the higher rank's row, the same on every rank)."""
    if not world.distributed or not memories:
        return
    every = gather_rows(world, indices)
    for memory in memories:
        memory[every] = gather_rows(world, memory[indices])


def wrap(module: torch.nn.Module, world: World) -> torch.nn.Module:
    """``module`` in DistributedDataParallel (gradients averaged over the ranks), as is when alone."""
    if not world.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=None)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def sum_over_ranks(world: World, *values: Any) -> tuple[Any, ...]:
    """Each tensor (or dict of tensors, keys alike on every rank) summed over the ranks, for the epoch's logs."""
    out = []
    for v in values:
        if isinstance(v, dict):
            out.append(dict(zip(sorted(v), sum_over_ranks(world, *(v[k] for k in sorted(v))))))
        else:
            v = v.clone() if isinstance(v, torch.Tensor) else torch.as_tensor(v)
            if world.distributed:
                dist.all_reduce(v)
            out.append(v)
    return tuple(out)
