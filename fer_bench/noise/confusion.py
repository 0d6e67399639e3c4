"""Reading and writing class-named confusion-matrix CSV files.

A confusion file is how real annotator confusion (e.g. FERPlus votes against the
majority label) is brought to another dataset. Layout::

    true/predicted,neutral,happiness,surprise,...
    neutral,812,14,9,...
    happiness,20,901,3,...

The header row names the columns (predicted / confused class) after a corner
cell whose text is ignored; the first column names the rows (true / annotated
class). Any spelling :func:`fer_bench.classes.canonical_name` accepts is fine, in
any order. Entries are counts or probabilities; they are returned as read (the
noise models normalise rows themselves), reordered to the dataset's class order.
Classes of the file that the dataset lacks are dropped.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from ..classes import canonical_name
from ..datasets.base import csv_rows
from ..errors import excerpt

PathLike = Union[str, Path]


def _names(path: Path, line: int, cells: list[str], what: str) -> list[str]:
    out = []
    for col, cell in enumerate(cells, start=2 if what == "column" else 1):
        try:
            out.append(canonical_name(cell))
        except ValueError as exc:
            raise ValueError(f"{path}: line {line}, column {col}: {exc}") from None
    dup = sorted({n for n in out if out.count(n) > 1})
    if dup:
        raise ValueError(f"{path}: {what} class names repeat: {', '.join(dup)}")
    return out


def read_confusion_csv(path: PathLike, class_names: Sequence[str]) -> np.ndarray:
    """Read a class-named confusion CSV into a C x C float64 array in ``class_names`` order.

    Rows are the true (annotated) class, columns the predicted (confused) class.
    Raises ValueError naming the dataset classes the file lacks, the file,
    line and column of a malformed, negative or non-finite entry, or the file and
    line of a row too large to normalise.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: spreadsheet exports carry a BOM
        rows = [(i, r) for i, r in enumerate(csv_rows(fh, path), start=1) if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{path}: empty confusion file")

    header_line, header = rows[0]
    col_names = _names(path, header_line, [c.strip() for c in header[1:]], "column")
    row_names: list[str] = []
    values: list[list[float]] = []
    for line, cells in rows[1:]:
        if len(cells) != len(header):
            raise ValueError(
                f"{path}: line {line} has {len(cells)} fields; the header has {len(header)}"
            )
        row_names.extend(_names(path, line, [cells[0].strip()], "row"))
        row = []
        for col, cell in enumerate(cells[1:], start=2):
            try:
                v = float(cell)
            except ValueError:
                raise ValueError(
                    f"{path}: line {line}, column {col} ({col_names[col - 2]}): "
                    f"cannot read {excerpt(cell.strip())} as a number"
                ) from None
            if not math.isfinite(v) or v < 0:
                raise ValueError(
                    f"{path}: line {line}, column {col} ({col_names[col - 2]}): "
                    f"entry {v!r} must be finite and non-negative"
                )
            row.append(v)
        if not math.isfinite(sum(row)):  # finite entries whose sum overflows: normalised, the row would be 0
            raise ValueError(f"{path}: line {line} ({row_names[-1]}): the entries sum to more than a float "
                             f"can hold, so the row cannot be normalised; scale it down")
        values.append(row)
    dup = sorted({n for n in row_names if row_names.count(n) > 1})
    if dup:
        raise ValueError(f"{path}: row class names repeat: {', '.join(dup)}")

    wanted = [canonical_name(c) for c in class_names]
    missing_rows = [c for c in wanted if c not in row_names]
    missing_cols = [c for c in wanted if c not in col_names]
    if missing_rows or missing_cols:
        parts = []
        if missing_rows:
            parts.append(f"rows for {', '.join(missing_rows)}")
        if missing_cols:
            parts.append(f"columns for {', '.join(missing_cols)}")
        raise ValueError(
            f"{path}: the confusion matrix lacks {' and '.join(parts)} "
            f"(dataset classes: {', '.join(class_names)})"
        )
    m = np.asarray(values, dtype=np.float64).reshape(len(row_names), len(col_names))
    ri = [row_names.index(c) for c in wanted]
    ci = [col_names.index(c) for c in wanted]
    return m[np.ix_(ri, ci)]


def write_confusion_csv(path: PathLike, matrix: np.ndarray, class_names: Sequence[str]) -> None:
    """Write ``matrix`` (rows = true class, columns = predicted) with class-named header and rows."""
    m = np.asarray(matrix, dtype=np.float64)
    names = list(class_names)
    if m.shape != (len(names), len(names)):
        raise ValueError(f"matrix has shape {m.shape}; expected ({len(names)}, {len(names)})")
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["true/predicted", *names])
        for name, row in zip(names, m):
            # .17g round-trips a float64 exactly and writes whole counts as integers.
            w.writerow([name, *(format(float(v), ".17g") for v in row)])
