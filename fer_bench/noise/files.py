"""Noisy label sets as files: generate for a dataset, export, and import the peers' files.

A noisy label set is written in the dataset's own label-file format (for
RAF-DB-layout data, ``train_00001.jpg 5`` lines with 1-based labels, the format
of EAC's ``noise01.txt``), and its record goes beside it as ``FILE.json`` with
the file's sha256. Importing a file checks that it names exactly the dataset's
training images, so a label file from another dataset or split cannot be used
by mistake.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

import numpy as np

from ..atomic import remove_stale_temporaries, write_json, write_text
from ..datasets.base import DatasetError, FERDataset
from ..errors import shorten
from ..outputs import check_out
from ..registry import NOISE_MODELS
from .annotator import needs_votes
from .confusion import read_confusion_csv
from .inject import inject_noise
from .record import NoiseRecord, noise_record


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def label_file_text(dataset: FERDataset, labels: np.ndarray) -> str:
    return dataset.label_format.write(dataset.train.names, labels)


def generate_train_labels(
    dataset: FERDataset,
    model: str,
    rate: float,
    seed: int,
    exact: bool = False,
    confusion_csv: Optional[Path] = None,
) -> tuple[np.ndarray, NoiseRecord]:
    """Noisy copies of the dataset's clean training labels, with their record (sha256 filled)."""
    if needs_votes(NOISE_MODELS.get(model)) and dataset.train.votes is None:
        raise DatasetError(
            f"noise model {model!r} draws labels from per-image annotator votes, and dataset "
            f"{dataset.name} has none (datasets with votes: synthfer, ferplus)")
    confusion = read_confusion_csv(confusion_csv, dataset.class_names) if confusion_csv else None
    noisy, record = inject_noise(
        dataset.train.labels, dataset.class_names, model, rate, seed, exact=exact, confusion=confusion,
        votes=dataset.train.votes,
    )
    record.label_file_sha256 = sha256_text(label_file_text(dataset, noisy))
    return noisy, record


def import_train_labels(dataset: FERDataset, path: Path) -> tuple[np.ndarray, NoiseRecord]:
    """Read a label file in the dataset's format; it must cover exactly the training images."""
    path = Path(path)
    names, labels = dataset.label_format.read(path)
    index = {n: i for i, n in enumerate(dataset.train.names)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise DatasetError(
            f"{path}: {len(unknown)} name(s) are not training images of {dataset.name}, "
            f"e.g. {', '.join(map(shorten, unknown[:3]))}"
        )
    missing = len(index) - len(names)
    if missing:
        absent = [n for n in dataset.train.names if n not in set(names)]
        raise DatasetError(
            f"{path}: {missing} training image(s) of {dataset.name} have no label, "
            f"e.g. {', '.join(absent[:3])}"
        )
    noisy = np.empty(len(index), dtype=np.int64)
    noisy[[index[n] for n in names]] = labels
    clean = dataset.train.labels
    realised = float(np.mean(noisy != clean))
    record = noise_record(
        clean, noisy, dataset.class_names, model="file", rate=round(realised, 4),
        mode="file", noise_seed=None, source=str(path), votes=dataset.train.votes,
    )
    record.label_file_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    return noisy, record


def check_export_path(out: Path, dataset_root: Optional[Path] = None) -> Path:
    """``out`` as a label file to write with its record (see :func:`fer_bench.outputs.check_out`);
    never inside ``dataset_root``, where it could replace the clean labels."""
    out = Path(out)
    return check_out(out, (out, out.with_name(out.name + ".json")), [dataset_root], what="label file")


def export_train_labels(dataset: FERDataset, labels: np.ndarray, record: NoiseRecord, out: Path) -> str:
    """Write ``out`` (the label file) and ``out.json`` (its record); return the file's sha256."""
    out = check_export_path(out, dataset.root)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out.parent, of=(out.name, out.name + ".json"))  # of an export killed half-way
    text = label_file_text(dataset, labels)
    record.label_file_sha256 = sha256_text(text)
    write_text(out, text)
    write_json(out.with_name(out.name + ".json"), record.to_dict())
    return record.label_file_sha256
