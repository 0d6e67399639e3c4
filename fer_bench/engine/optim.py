"""Optimisers and learning-rate schedules from a recipe.

Every schedule is one per-iteration ``LambdaLR``: per-epoch schedules
(exponential, step, delayed_linear) are step functions of the iteration, per-iteration ones
(cosine, LA-Net's linear decay to zero) are smooth. One mechanism, one state
to checkpoint: ``delayed_linear``'s switch of Adam's beta1 (``decay_beta1``) is made by the
same scheduler and kept in the optimiser's own state.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "exponential", "step", "cosine", "linear", "delayed_linear")


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
        if schedule == "delayed_linear":
            # Co-teaching's alpha_plan: full lr before (1-based) epoch D, then (E + 1 - e) / (E + 1 - D), so
            # the last epoch keeps 1 / (E + 1 - D) of it and never trains at 0
            start, e = recipe["decay_start"], epoch + 1
            return 1.0 if e < start else (recipe["epochs"] + 1 - e) / (recipe["epochs"] + 1 - start)
        progress = min(1.0, (it - warmup) / max(1, total - warmup))
        if schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        if schedule == "linear":
            return 1.0 - progress
        return 1.0

    return factor


class _LateBeta1(torch.optim.lr_scheduler.LambdaLR):
    """A ``LambdaLR`` that also gives Adam's beta1 the value ``late`` from (1-based) epoch ``start`` on
    (Co-teaching's ``beta1_plan``). The betas live in the optimiser's param groups, so a checkpointed
    optimiser resumes with the right one."""

    def __init__(self, optimizer: torch.optim.Optimizer, factor: Callable[[int], float], steps_per_epoch: int,
                 start: int, late: float) -> None:
        self.steps_per_epoch, self.start, self.late = steps_per_epoch, start, late
        self.early = [group["betas"][0] for group in optimizer.param_groups]
        super().__init__(optimizer, factor)  # (its first step sets the betas of iteration 0)

    def step(self, epoch: Any = None) -> None:
        super().step(epoch)
        is_late = self.last_epoch // self.steps_per_epoch + 1 >= self.start
        for group, early in zip(self.optimizer.param_groups, self.early):
            group["betas"] = (self.late if is_late else early, group["betas"][1])


def build_scheduler(optimizer: torch.optim.Optimizer, recipe: dict[str, Any],
                    steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A scheduler stepped once per iteration."""
    factor = lr_factor(recipe, steps_per_epoch)
    if recipe.get("decay_beta1") is not None:
        return _LateBeta1(optimizer, factor, steps_per_epoch, recipe["decay_start"], recipe["decay_beta1"])
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
