"""The AffectNet loader (manually annotated part), with its shipped 68 landmarks.

Two releases are read (``layout="auto"`` picks the first present, in this order):

* ``csv``, the original distribution: ``Manually_Annotated_file_lists/training.csv``
  and ``validation.csv`` (also accepted directly under the root) with the columns
  ``subDirectory_filePath, face_x, face_y, face_width, face_height,
  facial_landmarks, expression, valence, arousal``; the path is relative to
  ``Manually_Annotated/Manually_Annotated_Images/`` (or ``Manually_Annotated_Images/``
  under the root). The whole images are cropped to the face box and resized
  to ``size``; the landmarks (136 ``;``-separated floats, interleaved x;y, in
  original-image pixels) are moved into the crop's pixels the same way.
* ``npy``, the newer release: ``train_set/`` and ``val_set/``, each with
  ``images/<id>.jpg`` (faces already cropped, 224x224) and
  ``annotations/<id>_exp.npy`` (the code) and ``<id>_lnd.npy`` (136 floats in
  the crop's pixels). Images are resized to ``size`` and the landmarks scaled
  by the first image's size (the release's images all share one size; ``data
  check`` reports any that does not).

The validation set is the test split (the official test set was never
released). Codes 8-10 (None, Uncertain, Non-Face) are always dropped; code 7
(contempt) too unless ``classes=8``. Class order is AffectNet's: neutral,
happiness, sadness, surprise, fear, disgust, anger, contempt.

Within each split, contempt images are put last. An 8-class and a 7-class load
then share one image cache (the 7-class split is a prefix of the 8-class one):
at the default 224 px the 8-class training cache alone is about 43 GB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
from PIL import Image

from ..errors import excerpt, shorten
from ..paths import data_root
from ..registry import register_dataset
from . import raf_layout
from .base import DatasetError, FERDataset, Split, csv_rows
from .cache import pixel_box
from .index import (
    SPLITS, DatasetIndex, Problems, SplitIndex, cache_dir_for, load_split_images, outside_root, report_skipped,
)

AFFECTNET_ORDER: tuple[str, ...] = (
    "neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger", "contempt",
)
CODE_NAMES: tuple[str, ...] = (
    "Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust", "Anger", "Contempt",
    "None", "Uncertain", "Non-Face",
)
CONTEMPT = 7
LAYOUTS = ("auto", "csv", "npy")
LIST_FILES = {"train": "training.csv", "test": "validation.csv"}
LIST_DIRS = (Path("Manually_Annotated_file_lists"), Path("."))
IMAGE_DIRS = (Path("Manually_Annotated/Manually_Annotated_Images"), Path("Manually_Annotated_Images"))
NPY_DIRS = {"train": "train_set", "test": "val_set"}
CSV_COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
               "facial_landmarks", "expression")
DEFAULT_SIZE = 224  # the newer release's crop size and the paper profile's input size


def landmarks_to_crop(landmarks: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Move ``(N, 68, 2)`` source-pixel landmarks into ``size``x``size`` crops of ``boxes``.

    The boxes are rounded to whole pixels as the image cache crops them. A
    landmark at pixel index ``x`` (the centre of pixel ``x``) lands on the
    centre of the resized pixel it falls in: ``(x - x_min + 0.5) * scale - 0.5``.
    """
    pb = np.asarray([pixel_box(b) for b in boxes], dtype=np.float64).reshape(-1, 4)
    origin = pb[:, None, :2]
    scale = size / (pb[:, None, 2:] - pb[:, None, :2])
    return ((np.asarray(landmarks, np.float64) - origin + 0.5) * scale - 0.5).astype(np.float32)


def find_lists(root: Path) -> Optional[Path]:
    """The directory holding ``training.csv``, or None."""
    for d in LIST_DIRS:
        if (root / d / LIST_FILES["train"]).is_file():
            return root / d
    return None


def _code(text: str) -> Optional[int]:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    if not value.is_integer() or not 0 <= value <= 10:
        return None
    return int(value)


def _landmarks(values: Any) -> Optional[np.ndarray]:
    try:
        lm = np.asarray(values, dtype=np.float64).reshape(-1)
    except ValueError:
        return None
    if lm.size != 136 or not np.isfinite(lm).all():
        return None
    return lm.reshape(68, 2)


def read_list(path: Path, image_dir: Path, classes: int, problems: Problems) -> tuple[SplitIndex, dict[int, int]]:
    """One ``training.csv``/``validation.csv``: the kept rows, and the count of dropped rows per code."""
    names: list[str] = []
    codes: list[int] = []
    boxes: list[list[float]] = []
    lms: list[np.ndarray] = []
    dropped: dict[int, int] = {}
    seen: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv_rows(f, path)
        header = next(reader, None) or []
        cols = {c.strip(): i for i, c in enumerate(header)}
        missing = [c for c in CSV_COLUMNS if c not in cols]
        if missing:
            problems.add(f"{path}:1: missing column(s) {', '.join(missing)}; expected {','.join(CSV_COLUMNS)},...")
            return SplitIndex([], np.zeros(0, np.int64), paths=[]), dropped
        for lineno, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) < len(header):
                problems.add(f"{path}:{lineno}: expected {len(header)} fields, got {len(row)}")
                continue
            code = _code(row[cols["expression"]])
            if code is None:
                problems.add(f"{path}:{lineno}: expression {excerpt(row[cols['expression']])} is not a code 0..10")
                continue
            if code >= classes:  # None, Uncertain, Non-Face (and contempt for 7 classes)
                dropped[code] = dropped.get(code, 0) + 1
                continue
            name = row[cols["subDirectory_filePath"]].strip().replace("\\", "/")
            name = name.removeprefix("Manually_Annotated_Images/")
            try:
                x, y, w, h = (float(row[cols[c]]) for c in CSV_COLUMNS[1:5])
            except ValueError:
                box = excerpt([row[cols[c]] for c in CSV_COLUMNS[1:5]])
                problems.add(f"{path}:{lineno}: face box {box} is not numeric")
                continue
            if not (w > 0 and h > 0):
                problems.add(f"{path}:{lineno}: empty face box (face_width {w}, face_height {h})")
                continue
            lm = _landmarks(row[cols["facial_landmarks"]].strip().strip(";").split(";"))
            if lm is None:
                problems.add(f"{path}:{lineno}: facial_landmarks must be 136 ';'-separated numbers")
                continue
            if not name:
                problems.add(f"{path}:{lineno}: empty subDirectory_filePath")
                continue
            if escape := outside_root(name):
                problems.add(f"{path}:{lineno}: {escape}")
                continue
            if name in seen:
                problems.add(f"{path}:{lineno}: duplicate image {shorten(name)} (first on line {seen[name]})")
                continue
            seen[name] = lineno
            names.append(name)
            codes.append(code)
            boxes.append([x, y, x + w, y + h])
            lms.append(lm)
    return _ordered(SplitIndex(
        names=names, labels=np.asarray(codes, dtype=np.int64), paths=[image_dir / n for n in names],
        boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        landmarks=np.asarray(lms, dtype=np.float32).reshape(-1, 68, 2),
    )), dropped


def _read_npy(path: Path, problems: Problems) -> Optional[np.ndarray]:
    if not path.is_file():
        problems.add(f"annotation file not found: {path}")
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        problems.add(f"cannot read {path}: {exc}")
        return None


def read_npy_split(folder: Path, classes: int, problems: Problems) -> tuple[SplitIndex, dict[int, int]]:
    """One ``train_set``/``val_set`` folder of the newer release."""
    images = folder / "images"
    dropped: dict[int, int] = {}
    if not images.is_dir():
        problems.add(f"image folder not found: {images}")
        return SplitIndex([], np.zeros(0, np.int64), paths=[]), dropped
    files = [p for p in images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    files.sort(key=lambda p: (0, int(p.stem), "") if p.stem.isdigit() else (1, 0, p.stem))
    names, paths, codes, lms = [], [], [], []
    for p in files:
        exp = _read_npy(folder / "annotations" / f"{p.stem}_exp.npy", problems)
        lnd = _read_npy(folder / "annotations" / f"{p.stem}_lnd.npy", problems)
        if exp is None or lnd is None:
            continue
        code = _code(str(exp.reshape(-1)[0])) if exp.size == 1 else None
        if code is None:
            problems.add(f"{folder / 'annotations' / f'{p.stem}_exp.npy'}: expression {exp!r} is not a code 0..10")
            continue
        if code >= classes:
            dropped[code] = dropped.get(code, 0) + 1
            continue
        lm = _landmarks(lnd)
        if lm is None:
            problems.add(f"{folder / 'annotations' / f'{p.stem}_lnd.npy'}: expected 136 numbers, got {lnd.size}")
            continue
        names.append(p.name)
        paths.append(p)
        codes.append(code)
        lms.append(lm)
    return _ordered(SplitIndex(
        names=names, labels=np.asarray(codes, dtype=np.int64), paths=paths,
        landmarks=np.asarray(lms, dtype=np.float32).reshape(-1, 68, 2),
    )), dropped


def _ordered(s: SplitIndex) -> SplitIndex:
    """Contempt last (stable), so a 7-class split is a prefix of the 8-class one."""
    order = np.argsort(s.labels == CONTEMPT, kind="stable")
    return SplitIndex(
        names=[s.names[i] for i in order], labels=s.labels[order],
        paths=None if s.paths is None else [s.paths[i] for i in order],
        boxes=None if s.boxes is None else s.boxes[order],
        landmarks=None if s.landmarks is None else s.landmarks[order],
    )


def _first_image_size(paths: list[Path]) -> Optional[tuple[int, int]]:
    for p in paths:
        try:
            with Image.open(p) as im:
                return im.size
        except OSError:
            continue
    return None


@register_dataset("affectnet")
class AffectNet:
    """AffectNet (manually annotated): 7 classes (or 8 with contempt), validation as test, 68 landmarks."""

    default_profile = "paper"
    default_val_split = 0.0  # the papers train on the whole training set; --val-split turns a split on

    @staticmethod
    def default_root() -> Path:
        return data_root() / "affectnet"

    @classmethod
    def scan(cls, root: Path, problems: Problems, classes: int = 7, layout: str = "auto") -> DatasetIndex:
        """Index the layout under ``root``; see :meth:`load`."""
        if int(classes) not in (7, 8):
            raise ValueError(f"classes={classes!r}: AffectNet-7 (without contempt) or AffectNet-8")
        if layout not in LAYOUTS:
            raise ValueError(f"layout={layout!r}: choose one of {', '.join(LAYOUTS)}")
        classes = int(classes)
        root = Path(root)
        class_names = AFFECTNET_ORDER[:classes]
        mapping = [(f"{i} {CODE_NAMES[i]}", class_names[i] if i < classes else "(dropped)")
                   for i in range(len(CODE_NAMES))]
        index = DatasetIndex(layout="none found", class_names=class_names, mapping=mapping,
                             splits={s: SplitIndex([], np.zeros(0, np.int64), paths=[]) for s in SPLITS},
                             info={"classes": classes})
        lists = find_lists(root) if layout in ("auto", "csv") else None
        npy = layout == "npy" or (layout == "auto" and lists is None and (root / NPY_DIRS["train"]).is_dir())
        dropped: dict[int, int] = {}
        if lists is not None:
            index.layout = "csv"
            image_dir = next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), None)
            if image_dir is None:
                problems.add(f"image folder not found: {root / IMAGE_DIRS[0]} (nor {root / IMAGE_DIRS[1]})")
                image_dir = root / IMAGE_DIRS[0]
            for split in SPLITS:
                path = lists / LIST_FILES[split]
                if not path.is_file():
                    problems.add(f"list file not found: {path}")
                    continue
                index.splits[split], d = read_list(path, image_dir, classes, problems)
                for k, v in d.items():
                    dropped[k] = dropped.get(k, 0) + v
        elif npy:
            index.layout = "npy"
            for split in SPLITS:
                index.splits[split], d = read_npy_split(root / NPY_DIRS[split], classes, problems)
                for k, v in d.items():
                    dropped[k] = dropped.get(k, 0) + v
        else:
            problems.add(f"{root}: no AffectNet layout found: expected "
                         f"{LIST_DIRS[0] / LIST_FILES['train']} or {NPY_DIRS['train']}/images")
        index.info["dropped"] = ", ".join(f"{dropped[k]} {CODE_NAMES[k]}" for k in sorted(dropped)) or "none"
        index.info["dropped_codes"] = {k: dropped[k] for k in sorted(dropped)}
        return index

    @classmethod
    def load(
        cls,
        root: Optional[Path] = None,
        progress: bool = True,
        *,
        classes: int = 7,
        size: int = DEFAULT_SIZE,
        layout: str = "auto",
        cache: Optional[Path] = None,
        skip_bad: bool = False,
    ) -> FERDataset:
        """Load AffectNet.

        Args:
            root: the dataset directory (default ``<data root>/affectnet``).
            progress: show a progress bar while decoding.
            classes: 7 (default, codes 0-6) or 8 (codes 0-7, with contempt).
            size: output side in pixels (default 224, the newer release's crop size).
            layout: ``auto``, ``csv`` or ``npy`` (see the module docstring).
            cache: image cache directory (default ``<root>/.cache``).
            skip_bad: skip missing/unreadable images with a warning listing them
                (count in ``info["skipped"]``) instead of failing on the first.

        ``Split.landmarks`` holds the shipped 68 landmarks in pixels of the
        returned images. Names are ``subDirectory_filePath`` (csv) or the image
        file name (npy); the label file format is ``<name> <1-based label>`` in
        this class order (label = AffectNet code + 1), as for RAF-DB.
        """
        if int(classes) not in (7, 8):
            raise ValueError(f"classes={classes!r}: AffectNet-7 (without contempt) or AffectNet-8")
        classes = int(classes)
        root = Path(root) if root is not None else cls.default_root()
        # Always index 8 classes: the 7-class split is then a prefix of the same image cache.
        index = cls.scan(root, Problems(), classes=8, layout=layout)
        cache_dir = cache_dir_for(root, cache)
        dropped = dict(index.info["dropped_codes"])
        info: dict[str, Any] = {"layout": index.layout, "classes": classes, "size": size}
        splits: dict[str, Split] = {}
        bad: list[tuple[str, str]] = []
        for name in SPLITS:
            s = index.splits[name]
            if not s.names:
                raise DatasetError(f"{root}: AffectNet {name} split has no usable images")
            got = load_split_images(s, cache_dir, size, skip_bad, progress, f"decoding affectnet {name}")
            bad += got.bad
            kept = got.kept
            n = len(kept) if classes == 8 else int(np.count_nonzero(s.labels[kept] != CONTEMPT))
            if n < len(kept):
                dropped[CONTEMPT] = dropped.get(CONTEMPT, 0) + len(kept) - n
            kept = kept[:n]
            if s.boxes is not None:
                landmarks = landmarks_to_crop(s.landmarks[kept], s.boxes[kept], size)
            else:
                ref = _first_image_size([s.paths[i] for i in kept])
                if ref is None:
                    raise DatasetError(f"{root}: no readable image in the {name} split")
                frame = np.tile([0.0, 0.0, ref[0], ref[1]], (len(kept), 1))
                landmarks = landmarks_to_crop(s.landmarks[kept], frame, size)
            splits[name] = Split(
                names=[s.names[i] for i in kept], images=got.images[:n], labels=s.labels[kept],
                landmarks=landmarks,
            )
        info["dropped"] = ", ".join(f"{dropped[k]} {CODE_NAMES[k]}" for k in sorted(dropped)) or "none"
        info["dropped_codes"] = {k: dropped[k] for k in sorted(dropped)}
        report_skipped("affectnet", bad, info)
        return FERDataset(
            name="affectnet", root=root, class_names=AFFECTNET_ORDER[:classes], train=splits["train"],
            test=splits["test"], label_format=raf_layout.raf_label_format(classes), info=info,
        )
