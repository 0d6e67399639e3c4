"""What a real-dataset loader scans its layout into, and the loading helpers the loaders share.

Each real-dataset loader (RAF-DB, FERPlus, AffectNet) first *scans* its layout
into a :class:`DatasetIndex`: per split the sample names, labels and image
files (or pixels), plus crop boxes, landmarks and votes where the dataset has
them. Problems found while scanning go to a :class:`~fer_bench.datasets.base.Problems`
collector: a loader's raises at the first problem, so a load fails fast with a
message naming the file and line; ``data check`` (:mod:`.check`) uses a
collecting one, so that one pass reports every problem of a layout.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Optional

import numpy as np

from ..errors import excerpt
from .base import Problems
from .cache import ImageSet, load_image_set

__all__ = ["SPLITS", "DatasetIndex", "Problems", "SplitIndex", "cache_dir_for", "class_counts",
           "load_split_images", "outside_root", "report_skipped"]

SPLITS: tuple[str, ...] = ("train", "test")


@dataclass
class SplitIndex:
    """One split as scanned from the layout, before any image is decoded.

    Attributes:
        names: sample names (unique within the split; the names label files use).
        labels: int64 ``(N,)``, 0-based in the dataset's class order.
        paths: the image file of each sample, or None when the pixels come from
            a table (FERPlus's ``fer2013.csv``).
        boxes: optional float ``(N, 4)`` crop boxes ``x_min, y_min, x_max, y_max``
            in the source image's pixels.
        landmarks: optional float32 ``(N, 68, 2)`` in the source image's pixels.
        votes: optional float32 ``(N, C)`` annotator votes in the class order.
        extra: other per-sample arrays (first axis N) that follow the samples
            when some are skipped.
    """

    names: list[str]
    labels: np.ndarray
    paths: Optional[list[Path]] = None
    boxes: Optional[np.ndarray] = None
    landmarks: Optional[np.ndarray] = None
    votes: Optional[np.ndarray] = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class DatasetIndex:
    """A scanned dataset: its classes, how raw labels map to them, and its splits."""

    layout: str
    class_names: tuple[str, ...]
    mapping: list[tuple[str, str]]
    splits: dict[str, SplitIndex]
    info: dict[str, Any] = field(default_factory=dict)


def class_counts(labels: np.ndarray, class_names: tuple[str, ...]) -> dict[str, int]:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    return {c: int(counts[i]) for i, c in enumerate(class_names)}


# --- loading helpers shared by the loaders -------------------------------------------

def outside_root(name: str) -> Optional[str]:
    """Why the image name ``name`` read from a label file leads outside the dataset's directory, or None.

    Every loader joins the names of its label files below its root (``Image/aligned/<name>``,
    ``FER2013Train/<name>``, ``Manually_Annotated_Images/<name>``), so an absolute name or a ``..``
    would let a label file make the loader read any image on the machine.
    """
    posix = PurePosixPath(name.replace("\\", "/"))  # a backslash separates on Windows
    if posix.is_absolute() or PureWindowsPath(name).drive or ".." in posix.parts:
        return (f"image name {excerpt(name)} leads outside the dataset's directory; "
                f"names must be relative paths below it")
    return None


def cache_dir_for(root: Path, cache: Optional[Path]) -> Path:
    return Path(cache) if cache is not None else Path(root) / ".cache"


def load_split_images(
    split: SplitIndex, cache_dir: Path, size: Optional[int], skip_bad: bool, progress: bool, desc: str
) -> ImageSet:
    """Decode a split's image files (cropped to its boxes) through the image cache."""
    assert split.paths is not None
    return load_image_set(split.paths, cache_dir, size, boxes=split.boxes, skip_bad=skip_bad,
                          progress=progress, desc=desc)


def report_skipped(dataset: str, bad: list[tuple[str, str]], info: dict[str, Any]) -> None:
    """Warn with every skipped image and record the count in ``info["skipped"]``."""
    info["skipped"] = len(bad)
    info["skipped_files"] = [p for p, _ in bad]
    if bad:
        listing = "\n".join(f"  {reason}" for _, reason in bad)
        warnings.warn(f"{dataset}: skipped {len(bad)} unreadable or missing image(s):\n{listing}",
                      stacklevel=3)
