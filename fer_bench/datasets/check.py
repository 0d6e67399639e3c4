"""Indexing the real datasets' layouts, and checking them (``fer-bench data check``).

Each real-dataset loader (RAF-DB, FERPlus, AffectNet) first *scans* its layout
into a :class:`DatasetIndex`: per split the sample names, labels and image
files (or pixels), plus crop boxes, landmarks and votes where the dataset has
them. Problems found while scanning go to a :class:`Problems` collector. A
loader's collector raises at the first problem, so a load fails fast with a
message naming the file and line; ``data check`` uses a collecting one, then
opens every image, so that one pass reports *every* problem of a layout along
with the per-split per-class counts and the class mapping.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PIL import Image

from .base import Problems
from .cache import ImageSet, load_image_set, pixel_box

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


# --- data check -------------------------------------------------------------------------

@dataclass
class CheckReport:
    """What ``data check`` found: counts, class mapping and every problem."""

    dataset: str
    root: Path
    layout: str
    class_names: tuple[str, ...]
    mapping: list[tuple[str, str]]
    counts: dict[str, dict[str, int]]
    problems: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        lines = [f"{self.dataset} at {self.root} (layout: {self.layout})", "class mapping (dataset label -> name):"]
        lines += [f"  {raw} -> {name}" for raw, name in self.mapping]
        width = max([5] + [len(c) for c in self.class_names])
        lines.append("counts:")
        lines.append(f"  {'class':<{width}} " + " ".join(f"{s:>7}" for s in self.counts))
        for c in self.class_names:
            lines.append(f"  {c:<{width}} " + " ".join(f"{self.counts[s][c]:>7}" for s in self.counts))
        lines.append(f"  {'total':<{width}} " + " ".join(f"{sum(v.values()):>7}" for v in self.counts.values()))
        for key, value in self.info.items():
            if isinstance(value, (str, int, float, bool)):
                lines.append(f"{key}: {value}")
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"  {p}" for p in self.problems]
        else:
            lines.append("no problems found")
        return "\n".join(lines)


def _image_problem(
    path: Path, box: Optional[np.ndarray], deep: bool
) -> tuple[Optional[str], Optional[tuple[int, int]]]:
    """(problem or None, image size) for one image file."""
    if not path.is_file():
        return f"image not found: {path}", None
    if not deep:
        return None, None
    try:
        with Image.open(path) as im:
            im.load()  # a full decode: truncated files only fail here
            size = im.size
    except OSError as exc:
        return f"cannot read image {path}: {exc}", None
    if box is not None:
        x0, y0, x1, y1 = pixel_box(box)
        if x1 <= x0 or y1 <= y0:
            return f"empty crop box {tuple(box)} for image {path}", size
    return None, size


def check_images(split: SplitIndex, deep: bool = True) -> list[str]:
    """Every missing or unreadable image of a split; without boxes, every image whose
    size differs from most of the split's (the cache and the landmarks need one size)."""
    if split.paths is None:
        return []
    boxes = split.boxes

    def one(i: int) -> tuple[Optional[str], Optional[tuple[int, int]]]:
        return _image_problem(split.paths[i], None if boxes is None else boxes[i], deep)

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        results = list(pool.map(one, range(len(split.paths))))
    problems = [p for p, _ in results if p is not None]
    if deep and boxes is None:
        sizes = [(i, s) for i, (p, s) in enumerate(results) if p is None and s is not None]
        if sizes:
            ref = Counter(s for _, s in sizes).most_common(1)[0][0]
            problems += [
                f"image {split.paths[i]} is {s[0]}x{s[1]}, expected {ref[0]}x{ref[1]} like most images"
                for i, s in sizes if s != ref
            ]
    return problems


def check_dataset(name: str, root: Optional[Path] = None, deep: bool = True, **options: Any) -> CheckReport:
    """Scan a registered real dataset's layout, open its images, and report everything found.

    Args:
        name: a registered dataset whose class has a ``scan`` method.
        root: the dataset directory (default: the dataset's default root).
        deep: decode every image (False: only check that the files exist).
        **options: the loader's layout options (e.g. ``images="original"``, ``classes=8``).
    """
    from ..registry import DATASETS

    cls = DATASETS.get(name)
    if not hasattr(cls, "scan"):
        raise ValueError(f"dataset {name!r} has no layout check (its class defines no scan())")
    scan_params = set(inspect.signature(cls.scan).parameters) - {"root", "problems"}
    load_params = set(inspect.signature(cls.load).parameters) if hasattr(cls, "load") else set()
    unknown = [k for k in options if k not in scan_params and k not in load_params]
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for dataset {name}; "
                         f"layout options: {', '.join(sorted(scan_params))}")
    # Options of load() alone (size, skip_bad...) do not change the layout, so are ignored.
    options = {k: v for k, v in options.items() if k in scan_params}
    root = Path(root) if root is not None else cls.default_root()
    problems = Problems(collect=True)
    index = cls.scan(root, problems, **options)
    counts: dict[str, dict[str, int]] = {}
    for split_name in ("train", "test"):
        if split_name not in index.splits or len(index.splits[split_name]) == 0:
            problems.add(f"{root}: the {split_name} split is empty (no {split_name} images or labels found)")
    for split_name, split in index.splits.items():
        problems.items += check_images(split, deep)
        counts[split_name] = class_counts(split.labels, index.class_names)
    return CheckReport(
        dataset=name, root=root, layout=index.layout, class_names=index.class_names,
        mapping=index.mapping, counts=counts, problems=problems.items, info=index.info,
    )
