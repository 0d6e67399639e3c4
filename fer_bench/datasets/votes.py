"""Per-image class tables by name: ``image,<class>,<class>,...`` CSV files.

Used for annotator vote counts and ground-truth distributions (the human
perception the user study compares label distributions with). Columns are
class names in any spelling :func:`fer_bench.classes.canonical_name` accepts
and are reordered to the dataset's class order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..classes import canonical_name
from ..errors import excerpt
from .base import DatasetError, csv_rows


def read_class_table(path: Path, class_names: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Return ``(image names, float32 (N, C) in class_names order)``."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"file not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv_rows(f, path))
    if not rows or len(rows[0]) < 2:
        raise DatasetError(f"{path}:1: expected a header 'image,<class>,...'")
    try:
        header = [canonical_name(c) for c in rows[0][1:]]
    except ValueError as exc:
        raise DatasetError(f"{path}:1: {exc}") from None
    missing = [c for c in class_names if c not in header]
    if missing:
        raise DatasetError(f"{path}:1: no column for class(es) {', '.join(missing)}")
    cols = [header.index(c) + 1 for c in class_names]
    names, values = [], []
    for lineno, row in enumerate(rows[1:], 2):
        if not row:
            continue
        if len(row) != len(rows[0]):
            raise DatasetError(f"{path}:{lineno}: expected {len(rows[0])} fields, got {len(row)}")
        try:
            values.append([float(row[c]) for c in cols])
        except ValueError:
            raise DatasetError(f"{path}:{lineno}: non-numeric value in {excerpt(row)}") from None
        names.append(row[0])
    return names, np.asarray(values, dtype=np.float32).reshape(len(names), len(class_names))


def vote_shares(votes: np.ndarray) -> np.ndarray:
    """Row-normalised vote counts as float64: each image's share of annotators per class.

    A row without votes (FERPlus images whose votes all went to unknown/not-a-face) stays all zero.
    """
    t = np.asarray(votes, dtype=np.float64)
    sums = t.sum(axis=1, keepdims=True)
    return np.divide(t, sums, out=np.zeros_like(t), where=sums > 0)
