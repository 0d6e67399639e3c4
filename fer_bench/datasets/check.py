"""Checking a real dataset's layout (``fer-bench data check``).

A loader's ``scan`` (see :mod:`.index`) reads the layout into a
:class:`~fer_bench.datasets.index.DatasetIndex`; here it runs with a collecting
:class:`~fer_bench.datasets.base.Problems`, then every image is opened, so that
one pass reports *every* problem of a layout along with the per-split per-class
counts and the class mapping.
"""

from __future__ import annotations

import inspect
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PIL import Image

from .base import Problems
from .cache import pixel_box
from .index import SplitIndex, class_counts

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
