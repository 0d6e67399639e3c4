"""Reading and writing RAF-DB's on-disk layout.

RAF-DB basic keeps one label file, ``EmoLabel/list_patition_label.txt`` (the
misspelling is the real one; ``list_partition_label.txt`` is accepted too), with
lines ``train_00001.jpg 5``: the original image name and a 1-based label. The
aligned image of ``train_00001.jpg`` is ``Image/aligned/train_00001_aligned.jpg``.
The split is the name's prefix. EAC's noisy files (``noise01.txt``...) use the
same line format with train lines only. The synthetic dataset is written in
this layout too, so every RAF-DB tool reads it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import excerpt, shorten
from .base import DatasetError, LabelFormat, Problems
from .index import outside_root

LABEL_FILE = Path("EmoLabel/list_patition_label.txt")
LABEL_FILE_ALT = Path("EmoLabel/list_partition_label.txt")
ALIGNED_DIR = Path("Image/aligned")


def label_file(root: Path) -> Path:
    """The label file under ``root``, accepting both spellings."""
    for rel in (LABEL_FILE, LABEL_FILE_ALT):
        if (root / rel).is_file():
            return root / rel
    raise DatasetError(f"label file not found: {root / LABEL_FILE} (nor {LABEL_FILE_ALT.name})")


def aligned_path(root: Path, name: str) -> Path:
    """``train_00001.jpg`` -> ``<root>/Image/aligned/train_00001_aligned.jpg``."""
    stem = name.rsplit(".", 1)[0]
    return root / ALIGNED_DIR / f"{stem}_aligned.jpg"


def read_labels(path: Path, num_classes: int,
                problems: Optional[Problems] = None) -> tuple[list[str], np.ndarray]:
    """Parse ``name label`` lines (1-based labels) into names and 0-based labels.

    A malformed line, a label outside 1..num_classes or a duplicate name is a
    problem naming ``file:line``: an error at once, or, with a collecting
    ``problems``, reported and skipped so that every bad line is listed.
    """
    path = Path(path)
    problems = problems if problems is not None else Problems()
    if not path.is_file():
        problems.add(f"label file not found: {path}")
        return [], np.zeros(0, dtype=np.int64)
    names: list[str] = []
    labels: list[int] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if lineno == 1 and line.startswith("\ufeff"):
                problems.add(f"{path}:1: the file starts with a UTF-8 byte-order mark (BOM); save it without one")
                line = line[1:]
            text = line.strip()
            if not text:
                continue
            parts = text.split()
            if len(parts) != 2 or not re.fullmatch(r"-?[0-9]+", parts[1]):  # not isdigit(): it takes "²"
                problems.add(f"{path}:{lineno}: expected '<name> <label>', got {excerpt(text)}")
                continue
            name, label = parts[0], int(parts[1])
            if escape := outside_root(name):
                problems.add(f"{path}:{lineno}: {escape}")
                continue
            if not 1 <= label <= num_classes:
                problems.add(f"{path}:{lineno}: label {label} outside 1..{num_classes} for {shorten(name)}")
                continue
            if name in seen:
                problems.add(f"{path}:{lineno}: duplicate name {shorten(name)} (first on line {seen[name]})")
                continue
            seen[name] = lineno
            names.append(name)
            labels.append(label - 1)
    if not names and not problems.items:
        problems.add(f"{path}: no labels found")
    return names, np.asarray(labels, dtype=np.int64)


def format_labels(names: Sequence[str], labels: np.ndarray) -> str:
    """Render names and 0-based labels as RAF-DB label-file text (1-based)."""
    return "".join(f"{n} {int(y) + 1}\n" for n, y in zip(names, labels))


def split_of(name: str) -> str:
    """``train`` or ``test`` from the name's prefix."""
    for split in ("train", "test"):
        if name.startswith(split):
            return split
    raise DatasetError(f"sample name {excerpt(name)} starts with neither 'train' nor 'test'")


def raf_label_format(num_classes: int) -> LabelFormat:
    return LabelFormat(
        write=format_labels, read=lambda path: read_labels(path, num_classes)
    )
