"""Epoch samplers: which training samples an epoch visits, and in what order.

Chosen by the recipe's ``sampler`` key (``--sampler`` on the command line), for
any method; a method's own ``epoch_indices`` hook takes precedence. All draw
from the epoch's generator only, so a resumed epoch replays exactly. Class
counts come from the current (noisy, possibly relabelled) training labels,
the only labels a method may see.

* ``random``: a uniform shuffle of every sample (instance-balanced).
* ``balanced``: N draws with replacement, each class equally likely (the
  class-balanced sampler SCN and EAC use on AffectNet).
* ``progressive``: LA-Net's progressively class-balanced sampling. At epoch e
  of E, class c gets a share ``(1 - e/E) n_c/N + (e/E)/C`` of the N draws, so
  the first epoch is instance-balanced and the last almost class-balanced;
  a class needing more draws than it has samples is repeated whole, then
  topped up without replacement.
"""

from __future__ import annotations

import math

import torch

SAMPLERS = ("random", "balanced", "progressive")


def class_balanced(labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    counts = torch.bincount(labels)
    weights = 1.0 / counts[labels].double()
    return torch.multinomial(weights, labels.numel(), replacement=True, generator=gen)


def progressive_counts(counts: torch.Tensor, epoch: int, epochs: int) -> torch.Tensor:
    """Draws per class at ``epoch`` (0-based); classes without samples get none; sums to N."""
    present = counts > 0
    n, c = int(counts.sum()), int(present.sum())
    t = epoch / max(1, epochs)
    share = (1 - t) * counts.double() / n + t * present.double() / c
    draws = torch.zeros_like(counts)
    classes = present.nonzero().flatten().tolist()
    for k in classes[:-1]:
        draws[k] = math.ceil(float(share[k]) * n)
    draws[classes[-1]] = max(0, n - int(draws.sum()))  # the last class takes the remainder
    return draws


def progressive(labels: torch.Tensor, epoch: int, epochs: int, gen: torch.Generator) -> torch.Tensor:
    counts = torch.bincount(labels)
    parts = []
    for k, want in enumerate(progressive_counts(counts, epoch, epochs).tolist()):
        members = (labels == k).nonzero().flatten()
        if want == 0 or members.numel() == 0:
            continue
        repeats, rest = divmod(want, members.numel())
        parts += [members] * repeats
        parts.append(members[torch.randperm(members.numel(), generator=gen)[:rest]])
    order = torch.cat(parts)
    return order[torch.randperm(order.numel(), generator=gen)]


def epoch_order(kind: str, labels: torch.Tensor, epoch: int, epochs: int, gen: torch.Generator) -> torch.Tensor:
    """Indices of the samples an epoch visits, in order (``labels`` on the CPU)."""
    if kind == "random":
        return torch.randperm(labels.numel(), generator=gen)
    if kind == "balanced":
        return class_balanced(labels, gen)
    if kind == "progressive":
        return progressive(labels, epoch, epochs, gen)
    raise ValueError(f"unknown sampler {kind!r}; known: {', '.join(SAMPLERS)}")
