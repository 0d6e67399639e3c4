"""Landmark extraction as a cached preprocessing step, and attaching the cache to a dataset.

``fer-bench landmarks extract`` runs a backend over every image of a split
once and writes ``<root>/landmarks/<split>_68_<backend>.npz`` (names,
landmarks ``(N, 68, 2)`` in pixels of the dataset's cached images, and an
``ok`` mask) plus a ``.json`` record (backend, version, failures, timing).
Progress is saved every few hundred images, so an interrupted extraction
resumes. Small crops (FERPlus's 48 px) are upscaled before fitting, since the
predictors were trained on larger faces, and the points scaled back.

Training never runs a backend: :func:`attach_cached_landmarks` fills a loaded
dataset's missing landmarks from the cache. Faces a backend could not fit get
the mean shape of the fitted ones (recorded in ``dataset.info``), so a method
that needs landmarks still gets a plausible layout for every image.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..atomic import replacing, write_json
from ..datasets.base import DatasetError, FERDataset
from .backends import Backend

CHUNK = 250
PREFERENCE = ("fan", "dlib")  # the more accurate backend first


def landmark_file(root: Path, split: str, backend: str) -> Path:
    return Path(root) / "landmarks" / f"{split}_68_{backend}.npz"


def upscale_factor(side: int, target: int = 150) -> int:
    return max(1, math.ceil(target / side))


def _save(path: Path, names: list[str], landmarks: np.ndarray, ok: np.ndarray, done: int) -> None:
    # Through a file object: given a name, numpy would add ".npz" to the temporary's.
    with replacing(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, names=np.asarray(names), landmarks=landmarks, ok=ok, done=done)


def extract_split(dataset: FERDataset, split: str, backend: Backend, progress: bool = True) -> dict[str, Any]:
    """Fit landmarks to every image of ``split``; resumes a partial run; returns the record."""
    data = getattr(dataset, split)
    names, n = list(data.names), len(data)
    out = landmark_file(dataset.root, split, backend.name)
    partial = out.with_name(out.stem + ".partial.npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    landmarks = np.full((n, 68, 2), np.nan, dtype=np.float32)
    ok = np.zeros(n, dtype=bool)
    start = 0
    if partial.is_file():
        saved = np.load(partial)
        if list(saved["names"]) == names:
            landmarks, ok, start = saved["landmarks"], saved["ok"], int(saved["done"])
    h, w = data.images.shape[1:3]
    factor = upscale_factor(min(h, w))
    box = (0.0, 0.0, w * factor - 1.0, h * factor - 1.0)
    t0 = time.perf_counter()
    for i in tqdm(range(start, n), initial=start, total=n, desc=f"landmarks {split} ({backend.name})",
                  disable=not progress):
        image = np.asarray(data.images[i])
        if factor > 1:
            image = np.asarray(Image.fromarray(image).resize((w * factor, h * factor), Image.BICUBIC))
        points = backend(image, box)
        if points is not None and np.isfinite(points).all():
            landmarks[i] = (points + 0.5) / factor - 0.5  # pixel centres of the upscaled image -> original
            ok[i] = True
        if (i + 1) % CHUNK == 0:
            _save(partial, names, landmarks, ok, i + 1)
    seconds = time.perf_counter() - t0
    _save(out, names, landmarks, ok, n)
    partial.unlink(missing_ok=True)
    failed = [names[i] for i in np.flatnonzero(~ok)]
    record = {
        "dataset": dataset.name, "split": split, "backend": backend.name, "version": backend.version,
        "n": n, "failures": len(failed), "failed": failed[:100], "image_size": [int(h), int(w)],
        "upscale": factor, "seconds": seconds, "ms_per_face": 1000 * seconds / max(1, n - start),
    }
    write_json(out.with_suffix(".json"), record)
    return record


def attach_cached_landmarks(dataset: FERDataset) -> None:
    """Fill splits without landmarks from ``<root>/landmarks/`` when an extraction exists."""
    for split in ("train", "test"):
        data = getattr(dataset, split)
        if data.landmarks is not None:
            continue
        for backend in PREFERENCE:
            path = landmark_file(dataset.root, split, backend)
            if not path.is_file():
                continue
            saved = np.load(path)
            if list(saved["names"]) != list(data.names):
                raise DatasetError(f"{path} was extracted for other images than {dataset.name}'s {split} split; "
                                   f"run `fer-bench landmarks extract` again")
            landmarks, ok = saved["landmarks"].copy(), saved["ok"]
            if ok.any() and not ok.all():
                landmarks[~ok] = landmarks[ok].mean(axis=0)
            data.landmarks = landmarks
            dataset.info.setdefault("landmarks", {})[split] = {
                "file": str(path), "backend": backend, "mean_shape_for": int((~ok).sum())}
            break


def extraction_records(root: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((Path(root) / "landmarks").glob("*.json"))]
