"""The noisy validation split: a stratified fraction of the noisy training labels held out from training.

A real user has only noisy labels, so choosing an epoch without the clean test
set means holding out some of them. :func:`validation_indices` draws the held-out
images per noisy class from their own random stream of the noise seed, after the
noise is drawn: the noisy labels of the images that remain are exactly those of a
run without a split, and the same seeds always hold out the same images.
:func:`training_view` is the dataset a method trains on (the rest of the training
split); the engine evaluates the held-out images against their noisy labels.

The default fraction belongs to the dataset (:func:`fer_bench.datasets.contract.default_val_split`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .base import FERDataset

# Mixed into the noise seed, so that the split never shares a random stream with the noise itself.
_SPLIT_STREAM = 0x5A11


def validation_indices(noisy_labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of the held-out images: about ``fraction`` of each noisy class.

    The held-out count is ``round(fraction * n)`` in total, spread over the classes
    by their share (largest remainders first), and a class keeps at least one
    training image. ``fraction`` 0 holds out nothing.
    """
    labels = np.asarray(noisy_labels, dtype=np.int64)
    if not 0 <= fraction < 1:
        raise ValueError(f"val_split={fraction!r}: must lie in [0, 1)")
    if fraction == 0 or len(labels) == 0:
        return np.zeros(0, dtype=np.int64)
    classes, counts = np.unique(labels, return_counts=True)
    share = fraction * counts
    take = np.floor(share).astype(np.int64)
    # the classes with the largest remainders (ties: the smaller class index) get one more each
    extra = int(round(fraction * len(labels))) - int(take.sum())
    order = np.lexsort((classes, -(share - take)))
    take[order[:max(extra, 0)]] += 1
    take = np.minimum(take, counts - 1)
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_STREAM]))
    picked = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def training_indices(n: int, held_out: np.ndarray) -> np.ndarray:
    """The training images that remain: every index below ``n`` not in ``held_out``, in order."""
    keep = np.ones(n, dtype=bool)
    keep[held_out] = False
    return np.flatnonzero(keep)


@dataclass(frozen=True)
class ValidationSplit:
    """A run's split of its training images: ``held_out`` (the noisy validation images) and ``keep``
    (what the method trains on), both indices into the dataset's training split."""

    held_out: np.ndarray
    keep: np.ndarray

    @classmethod
    def draw(cls, noisy_labels: np.ndarray, fraction: float, seed: int) -> "ValidationSplit":
        held_out = validation_indices(noisy_labels, fraction, seed)
        if fraction > 0 and len(held_out) == 0:
            raise ValueError(f"val_split={fraction:g} holds out no image of {len(noisy_labels)}; "
                             f"choose a larger fraction or val_split=0")
        return cls(held_out, training_indices(len(noisy_labels), held_out))

    def __bool__(self) -> bool:
        return len(self.held_out) > 0

    def sizes(self, fraction: float) -> dict[str, float | int]:
        """What ``result.json`` records of the split."""
        return {"fraction": fraction, "held_out": len(self.held_out), "train": len(self.keep)}


class Rows:
    """The rows ``keep`` of an image array, read only when indexed (``view[i]``, ``view[a:b]``,
    ``view[[i, j]]``) or turned into an array. The training view of a memory-mapped cache (AffectNet's
    is tens of GB) must not copy it: the engine gathers its batches from the whole cache by row."""

    def __init__(self, base: np.ndarray, keep: np.ndarray) -> None:
        self.base, self.keep = base, np.asarray(keep, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.keep)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.keep), *self.base.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    def __getitem__(self, index: Any) -> np.ndarray:
        return self.base[self.keep[index]]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.base[self.keep], dtype=dtype)


def training_view(dataset: FERDataset, keep: np.ndarray) -> FERDataset:
    """``dataset`` whose training split holds only the images ``keep`` (the test split is unchanged);
    its images are :class:`Rows` of the original cache, not a copy."""
    if len(keep) == len(dataset.train):
        return dataset
    t = dataset.train

    def pick(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.asarray(a)[keep]

    train = replace(t, names=[t.names[i] for i in keep], images=Rows(t.images, keep), labels=np.asarray(t.labels)[keep],
                    landmarks=pick(t.landmarks), votes=pick(t.votes), distributions=pick(t.distributions))
    return replace(dataset, train=train)


def split_file_text(names: list[str]) -> str:
    """``val_split.txt``: the held-out image names, one a line."""
    return "".join(f"{n}\n" for n in names)
