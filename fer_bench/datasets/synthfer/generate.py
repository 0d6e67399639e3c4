"""Writing the synthfer dataset to disk, in RAF-DB's layout plus its extra ground truth.

Layout under ``out``::

    EmoLabel/list_patition_label.txt   train lines, then test lines: "train_00001.jpg 4"
    EmoLabel/votes.csv                 image,<class>,...  simulated annotator vote counts
    EmoLabel/distribution.csv          image,<class>,...  true expression distributions
    Image/aligned/<stem>_aligned.jpg   size x size RGB JPEGs
    Annotation/landmarks_68.npz        names (str), landmarks float32 (N, 68, 2) in pixels
    synthfer.json                      parameters and summary; written last

Sample ``i`` of a split is drawn from ``np.random.default_rng([seed, split_id, i])``
alone, so the output does not depend on the number of worker processes, and
train and test are independent streams of the same distribution.
``synthfer.json`` is the completion marker: it is removed before anything is
(re)written and written last, atomically, so an interrupted generation is never
taken for a complete one.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PIL import Image
from tqdm import tqdm

from ... import atomic
from .. import raf_layout
from ..base import DatasetError
from .labels import class_names, js_divergence
from .sample import SynthConfig, render_face

GENERATOR_VERSION = "synthfer-1.0"
META_FILE = "synthfer.json"
# Present while a generation is under way; it tells a rerun that the directory
# is ours to clean up even though synthfer.json is absent.
INCOMPLETE_MARKER = ".synthfer-incomplete"
VOTES_FILE = Path("EmoLabel/votes.csv")
DISTRIBUTION_FILE = Path("EmoLabel/distribution.csv")
LANDMARK_FILE = Path("Annotation/landmarks_68.npz")
SPLIT_IDS = {"train": 0, "test": 1}
CHUNK = 250
JPEG_QUALITY = 95

_IMAGE_NAME = re.compile(r"^(train|test)_\d+_aligned\.jpg$")


def sample_name(split: str, i: int, n: int) -> str:
    """Name of sample ``i`` (0-based) of a split of ``n``: ``train_00001.jpg``,
    ``test_0001.jpg``, zero-padded wider when ``n`` needs more digits."""
    width = max(5 if split == "train" else 4, len(str(n)))
    return f"{split}_{i + 1:0{width}d}.jpg"


def sample_names(split: str, n: int) -> list[str]:
    return [sample_name(split, i, n) for i in range(n)]


def _render_chunk(task: tuple) -> tuple[str, int, dict[str, np.ndarray]]:
    """Render and save samples ``start..stop`` of one split (runs in a worker)."""
    out, split, start, stop, n_split, size, seed, num_classes, cfg_dict = task
    cfg = SynthConfig.from_dict(cfg_dict)
    n = stop - start
    res = {
        "labels": np.empty(n, np.int64),
        "votes": np.empty((n, num_classes), np.int64),
        "dists": np.empty((n, num_classes), np.float64),
        "landmarks": np.empty((n, 68, 2), np.float32),
    }
    for j, i in enumerate(range(start, stop)):
        rng = np.random.default_rng([seed, SPLIT_IDS[split], i])
        s = render_face(rng, size, num_classes, cfg)
        # 4:4:4 chroma: at 64 px, 4:2:0 subsampling would smear the 1-2 px lips and brows.
        name = sample_name(split, i, n_split)
        Image.fromarray(s.image).save(raf_layout.aligned_path(Path(out), name),
                                      format="JPEG", quality=JPEG_QUALITY, subsampling=0)
        res["labels"][j], res["votes"][j] = s.label, s.votes
        res["dists"][j], res["landmarks"][j] = s.distribution, s.landmarks
    return split, start, res


def _table(names: list[str], classes: tuple[str, ...], values: np.ndarray, fmt: str) -> str:
    lines = ["image," + ",".join(classes)]
    lines += [n + "," + ",".join(format(v, fmt) for v in row) for n, row in zip(names, values)]
    return "\n".join(lines) + "\n"


def _params(n_train: int, n_test: int, size: int, seed: int, num_classes: int,
            cfg: SynthConfig) -> dict[str, Any]:
    return {"version": GENERATOR_VERSION, "seed": seed, "n_train": n_train, "n_test": n_test,
            "size": size, "num_classes": num_classes, "config": cfg.to_dict()}


def _complete(out: Path, params: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The stored metadata when ``out`` already holds exactly this dataset."""
    try:
        meta = json.loads((out / META_FILE).read_text())
    except (OSError, ValueError):
        return None
    if any(meta.get(k) != v for k, v in params.items()):
        return None
    return meta if (out / raf_layout.LABEL_FILE).is_file() else None


# 8,000 training images keep a default CPU run within minutes while the Baseline
# still memorises noisy labels visibly (see the cpu profile in engine/recipe.py).
DEFAULT_N_TRAIN = 8000
DEFAULT_N_TEST = 3000


def generate(
    out: str | Path,
    n_train: int = DEFAULT_N_TRAIN,
    n_test: int = DEFAULT_N_TEST,
    size: int = 64,
    seed: int = 0,
    num_classes: int = 7,
    workers: int | None = None,
    progress: bool = True,
    config: Optional[SynthConfig] = None,
) -> dict[str, Any]:
    """Render the synthfer dataset into ``out`` (see the module docstring for the layout).

    Returns the summary also stored in ``synthfer.json``: parameters, class names,
    per-split class counts, the mean JS divergence (natural log) between one-hot
    majority labels and the true distributions, the share of labels that differ
    from the distribution's mode, and the seconds taken. If ``out`` already holds
    a complete dataset with the same parameters, nothing is written and its
    summary is returned with ``skipped`` set.
    """
    out = Path(out)
    cfg = config or SynthConfig()
    classes = class_names(num_classes)
    if n_train < 1 or n_test < 0:
        raise ValueError(f"need n_train >= 1 and n_test >= 0, got {n_train}, {n_test}")
    if size < 16:
        raise ValueError(f"image size {size} is too small to draw a face (minimum 16)")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    params = _params(n_train, n_test, size, seed, num_classes, cfg)
    done = _complete(out, params)
    if done is not None:
        return {**done, "skipped": True}

    t0 = time.perf_counter()
    meta_file, marker = out / META_FILE, out / INCOMPLETE_MARKER
    ours = meta_file.is_file() or marker.is_file()
    if not ours and (out / raf_layout.LABEL_FILE).is_file():
        raise DatasetError(f"{out} holds a dataset that synthfer did not write; "
                           "choose an empty directory")
    (out / raf_layout.ALIGNED_DIR).mkdir(parents=True, exist_ok=True)
    marker.touch()
    meta_file.unlink(missing_ok=True)

    counts = {"train": n_train, "test": n_test}
    tasks = [
        (str(out), split, start, min(start + CHUNK, n), n, size, seed, num_classes,
         cfg.to_dict())
        for split, n in counts.items() for start in range(0, n, CHUNK)
    ]
    results: dict[str, dict[int, dict[str, np.ndarray]]] = {"train": {}, "test": {}}
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    with tqdm(total=n_train + n_test, desc="rendering synthfer", unit="img",
              disable=not progress) as bar:
        if workers == 1:
            stream = map(_render_chunk, tasks)
            pool = None
        else:
            pool = multiprocessing.get_context().Pool(workers)
            stream = pool.imap_unordered(_render_chunk, tasks)
        try:
            for split, start, res in stream:
                results[split][start] = res
                bar.update(len(res["labels"]))
        finally:
            if pool is not None:
                # On an error or interrupt, stop the other workers instead of
                # letting them finish chunks nobody will collect.
                if bar.n < bar.total:
                    pool.terminate()
                else:
                    pool.close()
                pool.join()

    names: list[str] = []
    parts: dict[str, list[np.ndarray]] = {"labels": [], "votes": [], "dists": [], "landmarks": []}
    for split, n in counts.items():
        names += sample_names(split, n)
        for start in sorted(results[split]):
            for k in parts:
                parts[k].append(results[split][start][k])
    labels, votes, dists, landmarks = (np.concatenate(parts[k]) for k in
                                       ("labels", "votes", "dists", "landmarks"))

    for file in (VOTES_FILE, DISTRIBUTION_FILE, LANDMARK_FILE, raf_layout.LABEL_FILE):
        (out / file).parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out / VOTES_FILE, _table(names, classes, votes, "d"))
    atomic.write_text(out / DISTRIBUTION_FILE, _table(names, classes, dists, ".6f"))
    # Through a file object: given a name, numpy would add ".npz" to the temporary's.
    with atomic.replacing(out / LANDMARK_FILE) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, names=np.array(names), landmarks=landmarks)
    # The label file goes after the extras: the loader reads them all together.
    atomic.write_text(out / raf_layout.LABEL_FILE, raf_layout.format_labels(names, labels))

    keep = {raf_layout.aligned_path(out, n).name for n in names}
    if ours:  # images of an earlier, larger generation must not linger
        for p in (out / raf_layout.ALIGNED_DIR).iterdir():
            if _IMAGE_NAME.match(p.name) and p.name not in keep:
                p.unlink()

    train = slice(0, n_train)
    test = slice(n_train, n_train + n_test)
    onehot = np.eye(num_classes)[labels]
    js = js_divergence(onehot, dists)
    meta = {
        **params,
        "class_names": list(classes),
        "class_counts": {
            split: {c: int((labels[sl] == k).sum()) for k, c in enumerate(classes)}
            for split, sl in (("train", train), ("test", test))
        },
        "mean_js_train": float(js[train].mean()),
        "mean_js_test": float(js[test].mean()) if n_test else None,
        "label_not_mode_train": float((labels[train] != dists[train].argmax(1)).mean()),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    atomic.write_text(meta_file, json.dumps(meta, indent=2) + "\n")
    marker.unlink(missing_ok=True)
    return {**meta, "skipped": False}
