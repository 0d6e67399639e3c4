"""The RAF-DB (basic emotions) loader.

Reads the official package's layout (see :mod:`.raf_layout`):
``EmoLabel/list_patition_label.txt`` (or the ``list_partition_label.txt``
spelling) with ``train_00001.jpg 5`` lines, labels 1..7 = surprise, fear,
disgust, happiness, sadness, anger, neutral, split by the name's prefix.

Two image sources:

* ``images="aligned"`` (default, what SCN, RUL, EAC and LA-Net use):
  ``Image/aligned/<stem>_aligned.jpg``, 100x100, used at that size.
* ``images="original"``: ``Image/original/<name>`` cropped to the face box of
  ``Annotation/boundingbox/<stem>_boundingbox.txt`` (one line
  ``x_min y_min x_max y_max`` in original pixels) and resized to ``size``.

Labels export and import in the same ``<name> <1-based label>`` format, which is
also the format of EAC's ``noise01.txt``..``noise03.txt``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..classes import RAFDB_ORDER
from ..errors import excerpt
from ..paths import data_root
from ..registry import register_dataset
from . import raf_layout
from .base import DatasetError, FERDataset, Split
from .index import (
    SPLITS, DatasetIndex, Problems, SplitIndex, cache_dir_for, load_split_images, report_skipped,
)

ORIGINAL_DIR = Path("Image/original")
BOX_DIR = Path("Annotation/boundingbox")
ORIGINAL_SIZE = 100  # the aligned images' size, so both sources train alike by default
IMAGE_SOURCES = ("aligned", "original")


def box_path(root: Path, name: str) -> Path:
    """``train_00001.jpg`` -> ``<root>/Annotation/boundingbox/train_00001_boundingbox.txt``."""
    return Path(root) / BOX_DIR / f"{name.rsplit('.', 1)[0]}_boundingbox.txt"


def read_box(path: Path, problems: Problems) -> Optional[np.ndarray]:
    """The face box ``x_min y_min x_max y_max`` of a boundingbox file, or None (reported)."""
    if not path.is_file():
        problems.add(f"bounding box file not found: {path}")
        return None
    lines = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    if not lines:
        problems.add(f"{path}:1: empty bounding box file")
        return None
    parts = lines[0].split()
    try:
        box = np.asarray([float(v) for v in parts], dtype=np.float64)
    except ValueError:
        box = np.zeros(0)
    if box.shape != (4,):
        problems.add(f"{path}:1: expected 'x_min y_min x_max y_max', got {excerpt(lines[0])}")
        return None
    if not (box[2] > box[0] and box[3] > box[1]):
        problems.add(f"{path}:1: empty box {excerpt(lines[0])} (x_max <= x_min or y_max <= y_min)")
        return None
    return box


@register_dataset("rafdb")
class RAFDB:
    """RAF-DB basic: 7 classes, 12,271 train / 3,068 test (aligned or original+box images)."""

    default_profile = "paper"
    default_val_split = 0.0  # the papers train on the whole training set; --val-split turns a split on

    @staticmethod
    def default_root() -> Path:
        return data_root() / "rafdb"

    @classmethod
    def scan(cls, root: Path, problems: Problems, images: str = "aligned") -> DatasetIndex:
        """Index the layout under ``root``; bad lines and box files go to ``problems``."""
        if images not in IMAGE_SOURCES:
            raise ValueError(f"images={images!r}: choose one of {', '.join(IMAGE_SOURCES)}")
        root = Path(root)
        mapping = [(str(i + 1), c) for i, c in enumerate(RAFDB_ORDER)]
        index = DatasetIndex(layout=f"raf-basic ({images})", class_names=RAFDB_ORDER, mapping=mapping,
                             splits={s: SplitIndex([], np.zeros(0, np.int64), paths=[]) for s in SPLITS},
                             info={"images": images})
        try:
            path = raf_layout.label_file(root)
        except DatasetError as exc:
            problems.add(str(exc))
            return index
        index.info["label_file"] = str(path)
        names, labels = raf_layout.read_labels(path, len(RAFDB_ORDER), problems)
        for name in names:
            if not name.startswith(SPLITS):
                problems.add(f"{path}: name {excerpt(name)} starts with neither 'train' nor 'test'")
        for split in SPLITS:
            keep = [i for i, n in enumerate(names) if n.startswith(split)]
            s_names = [names[i] for i in keep]
            s_labels = [labels[i] for i in keep]
            if images == "aligned":
                paths = [raf_layout.aligned_path(root, n) for n in s_names]
                boxes = None
            else:
                paths, boxes_list, kept_names, kept_labels = [], [], [], []
                for n, y in zip(s_names, s_labels):
                    box = read_box(box_path(root, n), problems)
                    if box is None:
                        continue
                    kept_names.append(n)
                    kept_labels.append(y)
                    paths.append(root / ORIGINAL_DIR / n)
                    boxes_list.append(box)
                s_names, s_labels = kept_names, kept_labels
                boxes = np.asarray(boxes_list, dtype=np.float64).reshape(-1, 4)
            index.splits[split] = SplitIndex(
                names=s_names, labels=np.asarray(s_labels, dtype=np.int64), paths=paths, boxes=boxes,
            )
        return index

    @classmethod
    def load(
        cls,
        root: Optional[Path] = None,
        progress: bool = True,
        *,
        images: str = "aligned",
        size: Optional[int] = None,
        cache: Optional[Path] = None,
        skip_bad: bool = False,
    ) -> FERDataset:
        """Load RAF-DB basic.

        Args:
            root: the ``raf-basic`` directory (default ``<data root>/rafdb``).
            progress: show a progress bar while decoding.
            images: ``aligned`` (the 100x100 aligned images) or ``original``
                (original images cropped to their bounding box).
            size: output side in pixels (default: native 100 for aligned,
                100 for original crops).
            cache: image cache directory (default ``<root>/.cache``).
            skip_bad: skip missing/unreadable images with a warning listing them
                (count in ``info["skipped"]``) instead of failing on the first.
        """
        root = Path(root) if root is not None else cls.default_root()
        index = cls.scan(root, Problems(), images=images)
        if size is None and images == "original":
            size = ORIGINAL_SIZE
        cache_dir = cache_dir_for(root, cache)
        info: dict[str, Any] = dict(index.info, layout=index.layout, size=size)
        splits: dict[str, Split] = {}
        bad: list[tuple[str, str]] = []
        for name in SPLITS:
            s = index.splits[name]
            if not s.names:
                raise DatasetError(f"{info['label_file']}: no {name} images listed")
            got = load_split_images(s, cache_dir, size, skip_bad, progress, f"decoding rafdb {name}")
            bad += got.bad
            splits[name] = Split(
                names=[s.names[i] for i in got.kept], images=got.images, labels=s.labels[got.kept],
            )
        report_skipped("rafdb", bad, info)
        return FERDataset(
            name="rafdb", root=root, class_names=RAFDB_ORDER, train=splits["train"], test=splits["test"],
            label_format=raf_layout.raf_label_format(len(RAFDB_ORDER)), info=info,
        )
