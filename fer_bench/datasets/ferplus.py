"""The FERPlus loader: FER2013's 48x48 faces with Microsoft's FER+ crowd votes.

Two layouts are read (``layout="auto"`` picks the first present, in this order):

* ``folders``: Microsoft's generated layout, ``FER2013Train``, ``FER2013Valid``
  and ``FER2013Test`` (directly under the root or under ``data/``), each with
  the PNGs and the committed ``label.csv`` (no header; ``name,"(x, y, w, h)",``
  then 10 vote counts; an older variant has no box column). The votes are the
  committed ``label.csv`` ones, the version behind the papers' 3,137 test images.
* ``csv``: Kaggle's ``fer2013.csv`` (``emotion,pixels,Usage``; also accepted as
  ``fer2013/fer2013.csv``) plus ``fer2013new.csv`` (``Usage,Image name,`` 10 vote
  columns). The two are joined **by row order**, as Microsoft's generator does:
  the FER+ name is not the row index. Rows with an empty name (all NF=10) are
  skipped, as the generator skips them; of a name that occurs twice in a split
  the later row wins, as the generator's later file overwrites the earlier one.
  So both layouts hold the same names. The votes are ``fer2013new.csv``'s.

Labels follow Microsoft's ``ferplus.py``: a category with at most one vote is an
outlier and set to 0; then ``label_mode`` (majority, probability,
crossentropy, multi_target) keeps or discards each image; an image whose
processed arg-max is ``unknown`` or ``NF`` is dropped. The thresholds are shares
of the remaining votes, so the one row with 9 votes (``fer0010406.png``) needs
no special case. The test split is always read in ``majority`` mode.

Class order (FERPlus's): neutral, happiness, surprise, sadness, anger, disgust,
fear, contempt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import excerpt, shorten
from ..paths import data_root
from ..registry import register_dataset
from . import raf_layout
from .base import DatasetError, FERDataset, Split, csv_rows
from .cache import manifest_hash
from .index import (
    SPLITS, DatasetIndex, Problems, SplitIndex, cache_dir_for, load_split_images, outside_root, report_skipped,
)

VOTE_COLUMNS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF",
)
FERPLUS_ORDER: tuple[str, ...] = VOTE_COLUMNS[:8]
LABEL_MODES = ("majority", "probability", "crossentropy", "multi_target")
LAYOUTS = ("auto", "folders", "csv")
# FER2013 Usage -> Microsoft's folder.
FOLDERS = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
# test_split option -> FER2013 Usage.
TEST_SPLITS = {"test": "PrivateTest", "valid": "PublicTest"}
SIDE = 48
UNKNOWN = 8  # index of "unknown"; NF is 9


def process_votes(votes: Sequence[float], mode: str) -> Optional[np.ndarray]:
    """Microsoft's rule for one image: its 8-class target, or None when it is discarded.

    Args:
        votes: the 10 vote counts in :data:`VOTE_COLUMNS` order.
        mode: one of :data:`LABEL_MODES`.

    Returns:
        float64 ``(8,)`` summing to 1, or None when the rule yields unknown/NF.
    """
    raw = np.array(votes, dtype=np.float64)
    raw[raw <= 1.0] = 0.0  # a single vote is an outlier
    total = raw.sum()
    target = np.zeros(len(VOTE_COLUMNS))
    if mode == "majority":
        top = raw.max()
        if not (total > 0 and top > 0.5 * total):
            return None
        target[int(np.argmax(raw))] = top
    elif mode in ("probability", "crossentropy"):
        left = raw.copy()
        covered, taken, stop = 0.0, 0, False
        while covered < 0.75 * total and taken < 3 and not stop:
            top = left.max()
            for i in range(len(left)):  # ties are taken together, in column order
                if left[i] != top:
                    continue
                target[i], left[i] = top, 0.0
                covered += top
                taken += 1
                if i >= UNKNOWN:
                    stop = True
                    if target.sum() > top:  # emotions came first: keep them, not unknown/NF
                        target[i] = 0.0
                        taken -= 1
                    break
        if target.sum() <= 0.5 * total or taken > 3:
            return None
    elif mode == "multi_target":
        keep = raw >= 0.3 * total
        target[keep] = raw[keep]
        if target.sum() <= 0.5 * total:
            return None
    else:
        raise ValueError(f"label_mode={mode!r}: choose one of {', '.join(LABEL_MODES)}")
    if int(np.argmax(target)) >= UNKNOWN:
        return None
    target = target[:UNKNOWN]
    return target / target.sum()


def votes_to_labels(
    raw_votes: np.ndarray, mode: str, classes: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply :func:`process_votes` to ``(N, 10)`` votes.

    Returns ``(kept row indices, labels, targets (K, classes))``. The label is the
    target's arg-max (the first on ties). With ``classes=7`` the rule runs with 8
    classes and images labelled contempt are then dropped; the others keep their
    label, and their targets lose the contempt share and are renormalised.
    """
    kept, labels, targets = [], [], []
    for i, row in enumerate(raw_votes):
        t = process_votes(row, mode)
        if t is None:
            continue
        y = int(np.argmax(t))
        if y >= classes:
            continue
        t = t[:classes]
        kept.append(i)
        labels.append(y)
        targets.append(t / t.sum())
    return (np.asarray(kept, dtype=np.int64), np.asarray(labels, dtype=np.int64),
            np.asarray(targets, dtype=np.float32).reshape(len(kept), classes))


def _parse_votes(fields: Sequence[str]) -> Optional[np.ndarray]:
    try:
        v = np.asarray([float(x) for x in fields], dtype=np.float64)
    except ValueError:
        return None
    if v.shape != (len(VOTE_COLUMNS),) or (v < 0).any() or not np.isfinite(v).all():
        return None
    return v


def folder_base(root: Path) -> Optional[Path]:
    """The directory holding ``FER2013Train/label.csv``: the root or ``root/data``."""
    for base in (root, root / "data"):
        if (base / FOLDERS["Training"] / "label.csv").is_file():
            return base
    return None


def csv_files(root: Path) -> Optional[tuple[Path, Path]]:
    """``(fer2013.csv, fer2013new.csv)`` under ``root`` when both are there."""
    new = root / "fer2013new.csv"
    for old in (root / "fer2013.csv", root / "fer2013" / "fer2013.csv"):
        if old.is_file() and new.is_file():
            return old, new
    return None


def read_folder_labels(path: Path, problems: Problems) -> tuple[list[str], np.ndarray]:
    """Names and ``(N, 10)`` votes of one of Microsoft's ``label.csv`` files."""
    names: list[str] = []
    votes: list[np.ndarray] = []
    seen: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for lineno, row in enumerate(csv_rows(f, path), 1):
            if not row or not "".join(row).strip():
                continue
            # The box column ("(0, 0, 48, 48)") is absent from the older generator's files.
            has_box = len(row) > 1 and row[1].strip().startswith("(")
            want = len(VOTE_COLUMNS) + 1 + has_box
            if len(row) != want:
                what = "name, box" if has_box else "name"
                problems.add(f"{path}:{lineno}: expected {what} and {len(VOTE_COLUMNS)} votes "
                             f"({want} fields), got {len(row)}")
                continue
            name = row[0].strip()
            v = _parse_votes(row[-len(VOTE_COLUMNS):])
            if not name:
                problems.add(f"{path}:{lineno}: empty image name")
                continue
            if escape := outside_root(name):
                problems.add(f"{path}:{lineno}: {escape}")
                continue
            if v is None:
                problems.add(f"{path}:{lineno}: votes must be {len(VOTE_COLUMNS)} non-negative numbers, "
                             f"got {excerpt(row[-len(VOTE_COLUMNS):])}")
                continue
            if name in seen:
                problems.add(f"{path}:{lineno}: duplicate name {shorten(name)} (first on line {seen[name]})")
                continue
            seen[name] = lineno
            names.append(name)
            votes.append(v)
    return names, np.asarray(votes, dtype=np.float64).reshape(-1, len(VOTE_COLUMNS))


def read_ferplus_table(path: Path, problems: Problems) -> tuple[list[str], list[str], np.ndarray]:
    """Usage, name and ``(N, 10)`` votes of every data row of ``fer2013new.csv``, in file order.

    A bad row keeps its place (usage ``""``, zero votes) so the row-order join stays aligned.
    """
    usages: list[str] = []
    names: list[str] = []
    votes: list[np.ndarray] = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv_rows(f, path)
        header = next(reader, None)
        cols = {c.strip().lower(): i for i, c in enumerate(header or [])}
        need = ["usage", "image name"] + [c.lower() for c in VOTE_COLUMNS]
        missing = [c for c in need if c not in cols]
        if missing:
            problems.add(f"{path}:1: missing column(s) {', '.join(missing)}; expected "
                         f"'Usage,Image name,{','.join(VOTE_COLUMNS)}'")
            return usages, names, np.zeros((0, len(VOTE_COLUMNS)))
        vote_cols = [cols[c.lower()] for c in VOTE_COLUMNS]
        for lineno, row in enumerate(reader, 2):
            usage, name, v = "", "", np.zeros(len(VOTE_COLUMNS))
            if len(row) != len(header):
                problems.add(f"{path}:{lineno}: expected {len(header)} fields, got {len(row)}")
            else:
                usage, name = row[cols["usage"]].strip(), row[cols["image name"]].strip()
                parsed = _parse_votes([row[c] for c in vote_cols])
                if usage not in FOLDERS:
                    problems.add(f"{path}:{lineno}: Usage {excerpt(usage)} is not one of {', '.join(FOLDERS)}")
                    usage = ""
                if parsed is None:
                    problems.add(f"{path}:{lineno}: votes must be non-negative numbers, "
                                 f"got {excerpt([row[c] for c in vote_cols])}")
                    usage = ""
                else:
                    v = parsed
            usages.append(usage)
            names.append(name)
            votes.append(v)
    return usages, names, np.asarray(votes, dtype=np.float64).reshape(-1, len(VOTE_COLUMNS))


def read_fer2013(path: Path, problems: Problems, cache_dir: Path) -> tuple[list[str], np.ndarray]:
    """Usage and ``(N, 48, 48)`` uint8 grayscale pixels of every row of ``fer2013.csv``.

    The parse is cached (keyed by the file's size and mtime) once the file was clean;
    a bad row keeps its place with zero pixels and usage ``""``.
    """
    key = manifest_hash([path], SIDE)
    pix_file = cache_dir / f"fer2013-{key}-pixels.npy"
    use_file = cache_dir / f"fer2013-{key}-usage.npy"
    usage_names = list(FOLDERS)
    if pix_file.is_file() and use_file.is_file():
        codes = np.load(use_file)
        return [usage_names[c] for c in codes], np.load(pix_file, mmap_mode="r")
    before = len(problems)
    usages: list[str] = []
    pixels: list[np.ndarray] = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv_rows(f, path)
        header = next(reader, None)
        cols = {c.strip().lower(): i for i, c in enumerate(header or [])}
        if "pixels" not in cols or "usage" not in cols:
            problems.add(f"{path}:1: expected columns 'emotion,pixels,Usage', got {excerpt(header)}")
            return usages, np.zeros((0, SIDE, SIDE), np.uint8)
        for lineno, row in enumerate(reader, 2):
            usage, img = "", np.zeros((SIDE, SIDE), np.uint8)
            if len(row) != len(header):
                problems.add(f"{path}:{lineno}: expected {len(header)} fields, got {len(row)}")
            else:
                usage = row[cols["usage"]].strip()
                try:
                    values = np.array(row[cols["pixels"]].split(), dtype=np.int64)
                except ValueError:
                    values = np.zeros(0, np.int64)
                if values.size != SIDE * SIDE or values.min() < 0 or values.max() > 255:
                    problems.add(f"{path}:{lineno}: pixels must be {SIDE * SIDE} integers in 0..255, "
                                 f"got {values.size} valid values")
                    usage = ""
                else:
                    img = values.astype(np.uint8).reshape(SIDE, SIDE)
            usages.append(usage)
            pixels.append(img)
    gray = np.stack(pixels) if pixels else np.zeros((0, SIDE, SIDE), np.uint8)
    if len(problems) == before and all(u in FOLDERS for u in usages):
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(use_file, np.asarray([usage_names.index(u) for u in usages], dtype=np.int8))
        np.save(pix_file, gray)  # written last: the pixels file marks a complete cache
    return usages, gray


@register_dataset("ferplus")
class FERPlus:
    """FERPlus: FER2013 faces with FER+ votes; 8 classes (or 7 without contempt), majority labels."""

    default_profile = "paper"
    default_val_split = 0.0  # the papers train on the whole training set; --val-split turns a split on

    @staticmethod
    def default_root() -> Path:
        return data_root() / "ferplus"

    @classmethod
    def scan(
        cls,
        root: Path,
        problems: Problems,
        label_mode: str = "majority",
        classes: int = 8,
        test_split: str = "test",
        layout: str = "auto",
        cache: Optional[Path] = None,
    ) -> DatasetIndex:
        """Index the layout under ``root`` and apply the label rules; see :meth:`load`."""
        if label_mode not in LABEL_MODES:
            raise ValueError(f"label_mode={label_mode!r}: choose one of {', '.join(LABEL_MODES)}")
        if int(classes) not in (7, 8):
            raise ValueError(f"classes={classes!r}: FERPlus has 8 classes, or 7 without contempt")
        if test_split not in TEST_SPLITS:
            raise ValueError(f"test_split={test_split!r}: choose one of {', '.join(TEST_SPLITS)}")
        if layout not in LAYOUTS:
            raise ValueError(f"layout={layout!r}: choose one of {', '.join(LAYOUTS)}")
        classes = int(classes)
        root = Path(root)
        class_names = FERPLUS_ORDER[:classes]
        mapping = [(c, c) for c in class_names] + [(c, "(dropped)") for c in VOTE_COLUMNS[classes:]]
        usage = {"train": "Training", "test": TEST_SPLITS[test_split]}
        modes = {"train": label_mode, "test": "majority"}  # Microsoft reads test in majority mode
        index = DatasetIndex(layout="none found", class_names=class_names, mapping=mapping,
                             splits={s: SplitIndex([], np.zeros(0, np.int64)) for s in SPLITS},
                             info={"label_mode": label_mode, "classes": classes,
                                   "test_split": f"{test_split} ({usage['test']}/{FOLDERS[usage['test']]})"})
        base = folder_base(root) if layout in ("auto", "folders") else None
        files = csv_files(root) if layout in ("auto", "csv") and base is None else None
        if base is not None:
            index.layout = "folders"
            index.info["votes"] = "label.csv (Microsoft's committed votes)"
            for split in SPLITS:
                folder = base / FOLDERS[usage[split]]
                label_csv = folder / "label.csv"
                if not label_csv.is_file():
                    problems.add(f"label file not found: {label_csv}")
                    continue
                names, raw = read_folder_labels(label_csv, problems)
                index.splits[split] = cls._split(names, raw, modes[split], classes,
                                                 paths=[folder / n for n in names])
        elif files is not None:
            index.layout = "csv"
            index.info["votes"] = "fer2013new.csv"
            old, new = files
            usages, names, raw = read_ferplus_table(new, problems)
            old_usages, gray = read_fer2013(old, problems, cache_dir_for(root, cache))
            if len(old_usages) != len(usages):
                problems.add(f"{new} has {len(usages)} data rows but {old} has {len(old_usages)}: "
                             "the files are joined by row order and must match")
                return index
            for i, (u_new, u_old) in enumerate(zip(usages, old_usages)):
                if u_new and u_old and u_new != u_old:
                    problems.add(f"{new}:{i + 2}: Usage {u_new} but {old}:{i + 2} says {u_old}; "
                                 "the row-order join is broken")
                    usages[i] = ""
            empty = sum(1 for u, n in zip(usages, names) if u and not n)  # all splits: 173 in fer2013new.csv
            rows_by_split: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
            duplicates = 0
            for i, (u, n) in enumerate(zip(usages, names)):
                for split in SPLITS:
                    if u == usage[split] and n:
                        duplicates += n in rows_by_split[split]
                        rows_by_split[split][n] = i  # the later row wins, as in Microsoft's folders
            index.info.update(empty_names=empty, duplicate_names=duplicates)
            for split in SPLITS:
                rows = np.asarray(sorted(rows_by_split[split].values()), dtype=np.int64)
                s = cls._split([names[i] for i in rows], raw[rows], modes[split], classes)
                s.extra["pixels"] = np.asarray(gray[rows[s.extra.pop("rows")]])
                index.splits[split] = s
        else:
            problems.add(f"{root}: no FERPlus layout found: expected FER2013Train/label.csv "
                         f"(or data/FER2013Train/label.csv), or fer2013.csv with fer2013new.csv")
        return index

    @staticmethod
    def _split(names: list[str], raw: np.ndarray, mode: str, classes: int,
               paths: Optional[list[Path]] = None) -> SplitIndex:
        rows, labels, targets = votes_to_labels(raw, mode, classes)
        return SplitIndex(
            names=[names[i] for i in rows], labels=labels,
            paths=None if paths is None else [paths[i] for i in rows],
            votes=raw[rows, :classes].astype(np.float32),
            extra={"raw_votes": raw[rows].astype(np.float32), "targets": targets, "rows": rows},
        )

    @classmethod
    def load(
        cls,
        root: Optional[Path] = None,
        progress: bool = True,
        *,
        label_mode: str = "majority",
        classes: int = 8,
        test_split: str = "test",
        layout: str = "auto",
        cache: Optional[Path] = None,
        skip_bad: bool = False,
    ) -> FERDataset:
        """Load FERPlus.

        Args:
            root: the dataset directory (default ``<data root>/ferplus``).
            progress: show a progress bar while decoding.
            label_mode: Microsoft's training-label rule: ``majority`` (default),
                ``probability``, ``crossentropy`` or ``multi_target``. ``labels``
                is the arg-max of the processed target; the targets themselves
                (what crossentropy trains on, what probability samples from, whose
                non-zero entries multi_target keeps) are in ``info["targets"]``.
            classes: 8 (default, as SCN, RUL, EAC and LA-Net report FERPlus) or 7.
                With 7, the rule still runs over the 8 emotions, and images whose
                label comes out as contempt are dropped from both splits; no other
                image changes its label.
            test_split: ``test`` (default: PrivateTest/FER2013Test, where the papers
                measure) or ``valid`` (PublicTest/FER2013Valid). Training is always
                Training/FER2013Train.
            layout: ``auto``, ``folders`` or ``csv`` (see the module docstring).
            cache: cache directory (default ``<root>/.cache``).
            skip_bad: skip missing/unreadable PNGs with a warning listing them
                (count in ``info["skipped"]``) instead of failing on the first.
                The csv layout has no image files: a bad pixel row is a bad line.

        ``Split.votes`` holds each image's raw vote counts for the dataset's
        classes; ``info["raw_votes"]`` has all 10 columns (with unknown and NF).
        Names are Microsoft's file names (``fer0000000.png``); the label file
        format is ``<name> <1-based label>`` lines, as for RAF-DB.
        """
        root = Path(root) if root is not None else cls.default_root()
        index = cls.scan(root, Problems(), label_mode=label_mode, classes=classes,
                         test_split=test_split, layout=layout, cache=cache)
        cache_dir = cache_dir_for(root, cache)
        info: dict[str, Any] = dict(index.info, layout=index.layout, targets={}, raw_votes={})
        splits: dict[str, Split] = {}
        bad: list[tuple[str, str]] = []
        for name in SPLITS:
            s = index.splits[name]
            if not s.names:
                raise DatasetError(f"{root}: FERPlus {name} split has no labelled images")
            if s.paths is None:
                gray = s.extra["pixels"]
                images = np.repeat(gray[..., None], 3, axis=3)
                kept = np.arange(len(s.names))
            else:
                got = load_split_images(s, cache_dir, None, skip_bad, progress, f"decoding ferplus {name}")
                images, kept = got.images, got.kept
                bad += got.bad
            splits[name] = Split(
                names=[s.names[i] for i in kept], images=images, labels=s.labels[kept], votes=s.votes[kept],
            )
            info["targets"][name] = s.extra["targets"][kept]
            info["raw_votes"][name] = s.extra["raw_votes"][kept]
        report_skipped("ferplus", bad, info)
        return FERDataset(
            name="ferplus", root=root, class_names=index.class_names, train=splits["train"],
            test=splits["test"], label_format=raf_layout.raf_label_format(len(index.class_names)),
            info=info,
        )
