"""Loading the synthetic dataset (generating it on first use) and registering it.

synthfer is written in RAF-DB's layout plus votes, distributions and exact
landmarks (see :mod:`.generate`), so this loader reads it the RAF-DB way and
adds those extras. Its default location is ``<data root>/synthfer``; when that
directory has no complete dataset (``synthfer.json`` is written last), the
default-size dataset is generated there first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import numpy as np

from ...classes import RAFDB_ORDER
from ...paths import data_root
from ...registry import register_dataset
from .. import raf_layout
from ..base import DatasetError, FERDataset, Split
from ..cache import load_images
from ..votes import read_class_table
from .generate import generate

META_FILE = "synthfer.json"


@register_dataset("synthfer")
class SynthFER:
    """Built-in procedurally rendered faces with true label distributions and landmarks."""

    # Fine-tuning from the shipped face-pretrained synthfer-id backbone, as the papers do from MS-Celeb, at the
    # scale the methods' mechanisms need: the profile search (docs/explanation/protocol.md) chose it.
    default_profile = "cpu-face-56"
    default_val_split = 0.1  # model selection without the test set: 10% of the noisy labels held out

    @staticmethod
    def default_root() -> Path:
        return data_root() / "synthfer"

    @classmethod
    def load(cls, root: Optional[Path] = None, progress: bool = True) -> FERDataset:
        root = Path(root) if root is not None else cls.default_root()
        meta_file = root / META_FILE
        if not meta_file.is_file():
            if root != cls.default_root() and not root.exists():
                raise DatasetError(f"synthfer root {root} does not exist; generate synthfer there with "
                                   f"`fer-bench data synth --out {root}`, or leave out --root")
            if root != cls.default_root() and any(root.iterdir()):
                raise DatasetError(f"{root} is not a complete synthfer dataset (no {META_FILE})")
            # said even when quiet: a few hundred MB appear here, once per machine
            print(f"generating synthfer in {root.resolve()} (the data root is {data_root()}; "
                  f"set FER_BENCH_DATA to use another)", file=sys.stderr, flush=True)
            generate(root, progress=progress)
        meta = json.loads(meta_file.read_text())
        num_classes = int(meta["num_classes"])
        class_names = tuple(meta["class_names"])
        if class_names[:7] != RAFDB_ORDER:
            raise DatasetError(f"{meta_file}: unexpected class order {class_names}")

        names, labels = raf_layout.read_labels(raf_layout.label_file(root), num_classes)
        images = load_images(
            [raf_layout.aligned_path(root, n) for n in names], root / ".cache",
            progress=progress, desc="decoding synthfer",
        )
        vote_names, votes = read_class_table(root / "EmoLabel/votes.csv", class_names)
        dist_names, dists = read_class_table(root / "EmoLabel/distribution.csv", class_names)
        lm = np.load(root / "Annotation/landmarks_68.npz")
        if vote_names != names or dist_names != names or list(lm["names"]) != names:
            raise DatasetError(f"{root}: votes, distributions or landmarks are not in label-file order")
        landmarks = lm["landmarks"].astype(np.float32)

        is_train = np.array([raf_layout.split_of(n) == "train" for n in names])

        def split(mask: np.ndarray) -> Split:
            idx = np.flatnonzero(mask)
            return Split(
                names=[names[i] for i in idx], images=images[idx], labels=labels[idx],
                landmarks=landmarks[idx], votes=votes[idx], distributions=dists[idx],
            )

        return FERDataset(
            name="synthfer", root=root, class_names=class_names,
            train=split(is_train), test=split(~is_train),
            label_format=raf_layout.raf_label_format(num_classes), info=meta,
        )
