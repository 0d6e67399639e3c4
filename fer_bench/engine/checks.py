"""Checks of a run's numbers that need no torch, so that the command line can refuse bad
values at once, before the engine (and with it torch) is imported; the engine runs the same
checks for every spec it resolves."""

from __future__ import annotations

from typing import Optional

from ..runs.errors import RunError


def check_noise_rate(rate: float) -> None:
    if not 0.0 <= rate < 1.0:  # also false for NaN
        raise RunError(f"noise rate {rate} is outside [0, 1)")


# torch.manual_seed takes at most 2**64 - 1 (numpy any non-negative integer).
MAX_SEED = 2**64 - 1


def check_seeds(seed: int, noise_seed: Optional[int]) -> None:
    for option, value in (("--seed", seed), ("--noise-seed", noise_seed)):
        if value is not None and value < 0:
            raise RunError(f"{option} {value}: seeds are integers from 0")
        if value is not None and value > MAX_SEED:
            raise RunError(f"{option} {value}: seeds are at most 2**64 - 1 ({MAX_SEED})")
