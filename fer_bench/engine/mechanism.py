"""Scoring a method's mechanism against the truth, every epoch (the ``mech_*`` columns of metrics.csv).

The engine knows which training labels the noise flipped; a method does not. What a method reports
about its mechanism (:mod:`fer_bench.methods.probes`) is scored here against the flipped set, after
the epoch's training steps, so that nothing of the truth reaches training. At the end of a run the
method reads its last row (:meth:`fer_bench.methods.base.Method.mechanism_off`) and says which parts
of its mechanism stayed off; the run's summary, its ``result.json`` and the tables say so.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch
from scipy.stats import rankdata

from ..methods.probes import LabelGuess, NoiseFlag, NoiseScore

PREFIX = "mech_"


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` separating ``positive`` from the rest (ties count one half);
    NaN when either group is empty (Mann-Whitney U over the two group sizes)."""
    positive = positive.astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _share(hit: np.ndarray, group: np.ndarray) -> float:
    return float(hit[group].mean()) if group.any() else float("nan")


def _numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def score(found: Mapping[str, Any], noisy: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    """The ``mech_*`` columns of what a method reported (``found``), for training samples whose noisy and
    clean labels are ``noisy`` and ``clean`` (in the order of ``ctx.train_labels``)."""
    flipped = noisy != clean
    n = len(noisy)
    row: dict[str, float] = {}
    guesses: dict[str, np.ndarray] = {}
    for name, probe in found.items():
        if isinstance(probe, (LabelGuess, NoiseScore, NoiseFlag)):
            valid = np.ones(n, dtype=bool) if probe.valid is None else _numpy(probe.valid).astype(bool)
        if isinstance(probe, LabelGuess):
            guess = _numpy(probe.labels)
            guesses[name] = np.where(valid, guess, -1)
            row[f"{PREFIX}{name}_clean"] = _share(guess == clean, flipped & valid)
            row[f"{PREFIX}{name}_noisy"] = _share(guess == noisy, flipped & valid)
            row[f"{PREFIX}{name}_agree"] = _share(guess == clean, valid)
        elif isinstance(probe, NoiseScore):
            s = _numpy(probe.scores).astype(np.float64)
            row[f"{PREFIX}{name}_auroc"] = auroc(s[valid], flipped[valid])
        elif isinstance(probe, NoiseFlag):
            mask = _numpy(probe.mask).astype(bool) & valid
            row[f"{PREFIX}{name}_share"] = _share(mask, valid)
            row[f"{PREFIX}{name}_precision"] = _share(flipped, mask)
            row[f"{PREFIX}{name}_recall"] = _share(mask, flipped & valid)
        elif isinstance(probe, (int, float)) and not isinstance(probe, bool):
            row[f"{PREFIX}{name}"] = float(probe)
        else:
            raise TypeError(f"mechanism value {name!r} is a {type(probe).__name__}: expected a number, "
                            f"LabelGuess, NoiseScore or NoiseFlag (fer_bench.methods.probes)")
    for name, probe in found.items():
        if isinstance(probe, LabelGuess) and probe.among is not None:
            if probe.among not in guesses:
                raise KeyError(f"mechanism value {name!r} is conditioned on {probe.among!r}, which is no LabelGuess")
            agreed = flipped & (guesses[probe.among] == clean)
            row[f"{PREFIX}{name}_clean_among_{probe.among}"] = _share(guesses[name] == clean, agreed)
    return row


def flags_by_class(found: Mapping[str, Any], noisy: np.ndarray, class_names: list[str]) -> dict[str, dict[str, float]]:
    """For each :class:`~fer_bench.methods.probes.NoiseFlag` a method reports: the share of the training
    images of each (noisy) label that it flags, among those it has seen; a class with none seen is left out.
    The flipped set plays no part: this is what the method does to each class it is given
    (:func:`fer_bench.runs.whole_classes_flagged` reads it back)."""
    out: dict[str, dict[str, float]] = {}
    for name, probe in found.items():
        if not isinstance(probe, NoiseFlag):
            continue
        valid = np.ones(len(noisy), dtype=bool) if probe.valid is None else _numpy(probe.valid).astype(bool)
        mask = _numpy(probe.mask).astype(bool)
        out[name] = {c: round(_share(mask, valid & (noisy == k)), 4) for k, c in enumerate(class_names)
                     if (valid & (noisy == k)).any()}
    return out


def last_values(rows: list[Mapping[str, Any]]) -> dict[str, float]:
    """The last epoch's ``mech_*`` values, by name without the prefix (what ``mechanism_off`` reads)."""
    if not rows:
        return {}
    return {k[len(PREFIX):]: float(v) for k, v in rows[-1].items()
            if k.startswith(PREFIX) and isinstance(v, (int, float)) and not math.isnan(float(v))}
