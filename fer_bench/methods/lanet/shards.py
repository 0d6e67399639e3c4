"""Which per-device batch (shard) each sample of a batch belongs to, for ``--set shards=S``.

LA-Net's published run is two GPUs x 64 images, and its batch-level logic is defined
per GPU (see :mod:`.method`). With ``S`` shards, a batch is split as the official
sampler splits the epoch among ranks (``indices[rank::world]``): shard ``s`` holds
positions ``s, s + S, s + 2S, ...``. A multi-process launch must give rank ``s`` the
same samples for the two to agree.
"""

from __future__ import annotations

import torch


def shard_ids(batch_size: int, shards: int, device: torch.device) -> torch.Tensor:
    """``(B,)`` long: the shard of each position in the batch."""
    return torch.arange(batch_size, device=device) % shards


def rank_major(batch_size: int, shards: int, device: torch.device) -> torch.Tensor:
    """The batch's positions in the order a gather across ranks lists them (shard 0's, then shard 1's, ...)."""
    return torch.cat([torch.arange(s, batch_size, shards, device=device) for s in range(shards)])
