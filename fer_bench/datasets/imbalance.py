"""Long-tailed training subsets (``--imbalance RHO``): class imbalance as a second axis beside label noise.

A run with ``--imbalance RHO`` trains on a subset of its dataset's training split whose class
sizes follow an exponential profile from a head class down to a tail class ``RHO`` times smaller;
the test split is the dataset's own, untouched, so accuracy and mean class accuracy of runs at
every ``RHO`` are measured on the same images.

The profile
    The convention of the long-tailed CIFAR sets (Cui et al., CVPR 2019; Cao et al., NeurIPS 2019:
    kaidic/LDAM-DRW ``imbalance_cifar.py``, ``get_img_num_per_cls``, ``imb_type='exp'``): the class
    of rank ``r`` (``0`` the head) keeps ``n_r = int(n_max * RHO ** (-r / (C - 1)))`` images, the
    product truncated to a whole number as ``int()`` does there (the exact product: one that is whole,
    such as ``98 / 49``, stays whole despite floating-point rounding). Two choices differ from CIFAR,
    whose training set is balanced, because FER training sets are long-tailed already:

    * classes are ranked by their size in the full training split, largest first (equal sizes by
      class index), not by class index, so the dataset's own head stays the head and its tail the
      tail;
    * ``n_max`` is the largest whole number of head images for which every class can supply its
      share, ``floor(min_r N_r * RHO ** (r / (C - 1)))`` with ``N_r`` the full split's count of
      the class of rank ``r`` (CIFAR's ``n_max`` is its per-class size). At a large ``RHO`` that is
      the whole head class; ``RHO = 1`` is a balanced subsample at the smallest class's size.

    ``C`` counts the classes the training split has images of; a class without any (RAF-DB's
    contempt under ``classes=8``) has none in the subset either. The largest over the smallest
    count is ``RHO`` up to the truncation (``n_0 / n_{C-1} >= RHO``); a ``RHO`` that leaves the
    tail no image is refused.

Which images
    Within each class, the first ``n_r`` of a random permutation of its images, drawn from the
    imbalance seed (one stream per class: :data:`_IMBALANCE_STREAM`), so the subset is the same on
    every machine and on every resume, and, for one seed, a class that keeps fewer images at a
    larger ``RHO`` keeps a subset of the ones it kept at a smaller one. The subset keeps the
    dataset's order of images.

The engine draws the subset first, from the clean labels, and then the noise in it (the usual
order: the noise model flips labels of the images a method trains on, and ``noise.json``, the
realised rate and ``train_labels.txt`` describe the subset); the noisy validation split
(:mod:`fer_bench.datasets.split`) is then held out of the subset. A label file (``--noise-file``)
names the full training split, as the peers' files do; the subset takes its labels from it.

The seed is its own (``--imbalance-seed``) and defaults to the noise seed (a label file's run: the
training seed), so a sweep over seeds draws a subset per seed as it draws noise per seed. The
run's config records ``{"profile", "rho", "seed"}`` (:meth:`Imbalance.record`), and its name
carries ``RHO`` in its setting part, and the seed only where it is not the default
(:mod:`fer_bench.runs.identity`); ``result.json`` records the class counts
(:meth:`LongTailed.summary`).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np

from .base import DatasetError, FERDataset
from .split import training_view

PROFILE = "exponential"
# Mixed into the imbalance seed (with the class index), so that the subset never shares a random stream
# with the noise or the validation split when the seeds are equal, as they are by default.
_IMBALANCE_STREAM = 0x1B4A
# torch.manual_seed's bound, which every seed of a run keeps (fer_bench.engine.checks.MAX_SEED).
MAX_SEED = 2**64 - 1
# Rounding slack for n_max * RHO ** (-r / (C - 1)), whose exact value may be a whole number.
_SLACK = 1e-9

RHO_MEANS = "RHO is the largest class's image count over the smallest's, a number from 1"


def check_rho(value: Any, option: str = "--imbalance") -> float:
    """``value`` as a ratio RHO (a finite number from 1); a ValueError naming it (after ``option``) otherwise."""
    said = f"{option} {value!r}".strip()
    if isinstance(value, bool):
        raise ValueError(f"{said} is not a number: {RHO_MEANS}")
    try:
        rho = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError(f"{said} is not a number: {RHO_MEANS}") from None
    if not math.isfinite(rho):
        raise ValueError(f"{said} is not a finite number: {RHO_MEANS}")
    if rho < 1:
        raise ValueError(f"{said} is below 1: {RHO_MEANS}")
    return rho


def check_seed(value: Any, option: str = "--imbalance-seed") -> int:
    """``value`` as an imbalance seed (an integer from 0 to 2**64 - 1); a ValueError naming it otherwise."""
    said = f"{option} {value!r}".strip()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value <= MAX_SEED:
        raise ValueError(f"{said}: seeds are integers from 0 to 2**64 - 1 ({MAX_SEED})")
    return int(value)


@dataclass(frozen=True)
class Imbalance:
    """A run's long-tailed training subset: the ratio ``rho`` and the seed that picks its images."""

    rho: float
    seed: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "rho", check_rho(self.rho))
        object.__setattr__(self, "seed", check_seed(self.seed))

    def record(self) -> dict[str, Any]:
        """The ``imbalance`` entry of a run's config (part of its identity)."""
        return {"profile": PROFILE, "rho": self.rho, "seed": self.seed}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "Imbalance":
        profile = record.get("profile", PROFILE)
        if profile != PROFILE:
            raise ValueError(f"imbalance profile {profile!r} is unknown to this fer-bench (it knows {PROFILE!r})")
        return cls(record["rho"], record["seed"])


def profile_counts(class_counts: Sequence[int], rho: float, class_names: Sequence[str] = ()) -> np.ndarray:
    """The images each class keeps under the exponential profile (see the module docstring), in class order.

    ``class_counts``: each class's images in the full training split. A class without images keeps none.
    """
    counts = np.asarray(class_counts, dtype=np.int64)
    rho = check_rho(rho)
    present = np.flatnonzero(counts > 0)
    if len(present) < 2:
        raise DatasetError(f"--imbalance {rho:g}: the training split has images of {len(present)} class(es); "
                           f"a long-tailed profile needs two or more")
    ranked = present[np.lexsort((present, -counts[present]))]  # largest first, equal sizes by class index
    shrink = rho ** (-np.arange(len(ranked)) / (len(ranked) - 1))  # 1 down to 1 / rho
    n_max = int(math.floor(float(np.min(counts[ranked] / shrink)) + _SLACK))
    kept = np.minimum(np.floor(n_max * shrink + _SLACK).astype(np.int64), counts[ranked])
    if kept[-1] < 1:
        tail = int(ranked[-1])
        name = class_names[tail] if tail < len(class_names) else f"class {tail}"
        raise DatasetError(f"--imbalance {rho:g} leaves {name}, the smallest class, no image ({n_max} head "
                           f"images / {rho:g} < 1); choose a RHO of at most {n_max}")
    out = np.zeros(len(counts), dtype=np.int64)
    out[ranked] = kept
    return out


def subset_indices(labels: np.ndarray, num_classes: int, imbalance: Imbalance,
                   class_names: Sequence[str] = ()) -> np.ndarray:
    """Sorted indices of the images the long-tailed subset keeps, by their clean ``labels``."""
    labels = np.asarray(labels, dtype=np.int64)
    keep_counts = profile_counts(np.bincount(labels, minlength=num_classes), imbalance.rho, class_names)
    picked = []
    for c in np.flatnonzero(keep_counts):
        rng = np.random.default_rng(np.random.SeedSequence([imbalance.seed, _IMBALANCE_STREAM, int(c)]))
        picked.append(rng.permutation(np.flatnonzero(labels == c))[:keep_counts[c]])
    return np.sort(np.concatenate(picked)).astype(np.int64)


@dataclass(frozen=True)
class LongTailed:
    """A dataset's long-tailed training subset: ``dataset`` trains on the images ``keep`` of ``full``'s
    training split (its test split is ``full``'s)."""

    full: FERDataset
    keep: np.ndarray
    dataset: FERDataset
    imbalance: Imbalance

    def summary(self) -> dict[str, Any]:
        """What ``result.json`` records of the subset: the profile, and the class counts before and after."""
        names = list(self.full.class_names)
        before = np.bincount(np.asarray(self.full.train.labels, dtype=np.int64), minlength=len(names))
        after = np.bincount(np.asarray(self.dataset.train.labels, dtype=np.int64), minlength=len(names))
        present = after[after > 0]
        return {**self.imbalance.record(), "train_images": int(after.sum()), "of": int(before.sum()),
                "realised_ratio": round(float(present.max() / present.min()), 4),
                "class_counts": {n: int(k) for n, k in zip(names, after)},
                "full_class_counts": {n: int(k) for n, k in zip(names, before)}}


def long_tailed(dataset: FERDataset, imbalance: Imbalance) -> LongTailed:
    """``dataset`` whose training split is the long-tailed subset ``imbalance`` draws; its ``info`` says
    which (``info["imbalance"]``: :meth:`Imbalance.record`). The test split is unchanged."""
    keep = subset_indices(dataset.train.labels, dataset.num_classes, imbalance, dataset.class_names)
    view = training_view(dataset, keep)
    view = replace(view, info={**dataset.info, "imbalance": imbalance.record()})  # never the full set's dict
    return LongTailed(dataset, keep, view, imbalance)
