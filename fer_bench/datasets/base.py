"""The common in-memory record every dataset loader produces.

A loader decodes its images once into uint8 arrays (the image cache) and hands
the engine a :class:`FERDataset`: a train and a test :class:`Split`, the class
names in the dataset's index order, and the label-file format of the dataset,
so that noisy labels can be exported and imported in the peers' own format.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

import numpy as np


class DatasetError(ValueError):
    """Bad or missing dataset input; the message names the file, line or value."""


def csv_rows(lines: Iterable[str], path: Path) -> Iterator[list[str]]:
    """The rows of the CSV file ``path`` (``lines``: it opened as text), as ``csv.reader`` gives them;
    a file that is no CSV text (one huge line or an unclosed quote past csv's field limit, bytes
    that are not UTF-8) is a :class:`DatasetError` naming it, not a traceback."""
    reader = csv.reader(lines)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DatasetError(f"{path}:{reader.line_num}: not readable as CSV ({exc})") from None
        except UnicodeDecodeError:
            where = f" after line {reader.line_num}" if reader.line_num else ""
            raise DatasetError(f"{path}: not UTF-8 text{where} (a binary file?)") from None
        yield row


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

    def fingerprint(self) -> str:
        """What the data is, not where it lies: a hash of the class names and of each split's image names,
        clean labels and decoded images (shape and pixels), so that the same labels on other images (another
        ``--size``, another rendering) are other data. Landmarks and votes are left out: extracting them
        later does not change what a run that did not use them trained on."""
        h = hashlib.sha256(json.dumps(list(self.class_names)).encode())
        for split in (self.train, self.test):
            images = np.ascontiguousarray(split.images)
            h.update(json.dumps([list(split.names), str(images.dtype), list(images.shape)]).encode())
            h.update(np.ascontiguousarray(split.labels, dtype=np.int64).tobytes())
            h.update(memoryview(images.reshape(-1)))  # no copy: a memory-mapped cache is read as it is
        return h.hexdigest()[:16]


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
