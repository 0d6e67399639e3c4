"""Optimisers and learning-rate schedules from a recipe.

Every schedule is one per-iteration ``LambdaLR``: per-epoch schedules
(exponential, step) are step functions of the iteration, per-iteration ones
(cosine, LA-Net's linear decay to zero) are smooth. One mechanism, one state
to checkpoint.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "exponential", "step", "cosine", "linear")


def build_optimizer(groups: list[dict[str, Any]], recipe: dict[str, Any]) -> torch.optim.Optimizer:
    """``lr_scale`` in a group multiplies the recipe's lr (e.g. RUL's 10x classifier lr)."""
    lr, wd = recipe["lr"], recipe["weight_decay"]
    param_groups = []
    for g in groups:
        g = dict(g)
        g["lr"] = lr * g.pop("lr_scale", 1.0)
        param_groups.append(g)
    name = recipe["optimizer"]
    if name == "adam":
        return torch.optim.Adam(param_groups, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(param_groups, lr=lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(param_groups, lr=lr, weight_decay=wd, momentum=recipe["momentum"])
    raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")


def lr_factor(recipe: dict[str, Any], steps_per_epoch: int) -> Callable[[int], float]:
    """The lr multiplier as a function of the (0-based) iteration."""
    schedule = recipe["schedule"]
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; known: {', '.join(SCHEDULES)}")
    total = recipe["epochs"] * steps_per_epoch
    warmup = recipe["warmup_epochs"] * steps_per_epoch
    gamma, milestones = recipe["gamma"], list(recipe["milestones"])

    def factor(it: int) -> float:
        if it < warmup:
            return (it + 1) / warmup
        epoch = it // steps_per_epoch
        if schedule == "exponential":
            return gamma ** epoch
        if schedule == "step":
            return gamma ** sum(epoch >= m for m in milestones)
        progress = min(1.0, (it - warmup) / max(1, total - warmup))
        if schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        if schedule == "linear":
            return 1.0 - progress
        return 1.0

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, recipe: dict[str, Any],
                    steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A scheduler stepped once per iteration."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(recipe, steps_per_epoch))
