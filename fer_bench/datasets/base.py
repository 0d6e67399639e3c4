"""The common in-memory record every dataset loader produces.

A loader decodes its images once into uint8 arrays (the image cache) and hands
the engine a :class:`FERDataset`: a train and a test :class:`Split`, the class
names in the dataset's index order, and the label-file format of the dataset,
so that noisy labels can be exported and imported in the peers' own format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np


class DatasetError(ValueError):
    """Bad or missing dataset input; the message names the file, line or value."""


@dataclass
class Split:
    """One split of a dataset, fully in memory.

    Attributes:
        names: the sample names as written in the dataset's label file
            (e.g. ``train_00001.jpg`` for RAF-DB layouts).
        images: uint8 array ``(N, H, W, 3)``, RGB.
        labels: int64 array ``(N,)``, 0-based in the dataset's class order (clean).
        landmarks: optional float32 ``(N, 68, 2)`` in pixel coordinates of ``images``
            (x, y; iBUG 68-point order).
        votes: optional float32 ``(N, C)`` annotator vote counts (human perception).
        distributions: optional float32 ``(N, C)`` ground-truth expression
            distributions (only the synthetic dataset knows these).
    """

    names: list[str]
    images: np.ndarray
    labels: np.ndarray
    landmarks: Optional[np.ndarray] = None
    votes: Optional[np.ndarray] = None
    distributions: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class LabelFormat:
    """How a dataset writes and reads a train label file (for noise export/import).

    ``write(names, labels) -> str`` renders the file text; ``read(path) -> (names, labels)``
    parses one, raising :class:`DatasetError` naming the file and line on bad input.
    Labels are 0-based in the dataset's class order on both sides.
    """

    write: Callable[[Sequence[str], np.ndarray], str]
    read: Callable[[Path], tuple[list[str], np.ndarray]]


@dataclass
class FERDataset:
    """A loaded dataset: its classes, splits and label-file format."""

    name: str
    root: Path
    class_names: tuple[str, ...]
    train: Split
    test: Split
    label_format: LabelFormat
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


class Problems:
    """Where a scan reports bad input: raise at once (loading) or collect (checking)."""

    def __init__(self, collect: bool = False) -> None:
        self.collect = collect
        self.items: list[str] = []

    def add(self, message: str) -> None:
        """Report one problem; the message names the file, line or value."""
        if not self.collect:
            raise DatasetError(message)
        self.items.append(message)

    def __len__(self) -> int:
        return len(self.items)
