"""synthfer-id: a face-recognition set from synthfer's own generator (the MS-Celeb step).

The papers' backbones were first trained to tell people apart (MS-Celeb-1M,
VGGFace2) and only then fine-tuned on expressions. synthfer-id is that first
step's data for the synthetic faces: many identities, several pictures each, in
which every expression and every nuisance of synthfer varies (expression and
its intensity, pose, light, background, clothes, glasses, occluders, gaze,
blur, grey, noise) while the person stays: their face geometry
(:class:`~.face.Identity`) and the appearance fields that belong to a person
(:data:`~.sample.PERSON_LOOK`: skin, hair, brows, irises, lips).

Streams. Identity ``k`` is drawn from ``default_rng([seed, IDENTITY_STREAM, k, 0])``
and its picture ``j`` from ``default_rng([seed, IDENTITY_STREAM, k, 1, j])``, with
:data:`IDENTITY_STREAM` beside synthfer's split streams
(:data:`~.generate.SPLIT_IDS`), so no synthfer-id person is a person of the
expression train or test set, and the output depends on nothing but the
parameters (not on the number of worker processes).

Layout under ``root`` (identities in folders, as face-recognition sets are)::

    train/id00000/00.jpg ...   the first ``n_train_images`` pictures of each identity
    heldout/id00000/12.jpg ... the other pictures of the same identities, for identity accuracy
    synthfer-id.json           parameters and summary; written last (the completion marker)

It is not in the dataset registry (``list_datasets``, ``fer-bench data list``): every
entry there is an expression dataset that runs, noise models, tables and the user study
read by class name, and an identity set has none of that; ``fer-bench pretrain
--dataset`` is where it is named.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple, Optional

import numpy as np
from PIL import Image
from tqdm import tqdm

from ...atomic import write_json
from ...paths import data_root
from ..base import DatasetError
from ..cache import load_images
from .appearance import Appearance, sample_appearance
from .face import Identity, sample_identity
from .generate import GENERATOR_VERSION, JPEG_QUALITY, SPLIT_IDS
from .sample import SynthConfig, draw_face, streams

NAME = "synthfer-id"
META_FILE = "synthfer-id.json"
INCOMPLETE_MARKER = ".synthfer-id-incomplete"
# synthfer's expression splits draw sample i of split s from [seed, s, i]; this id is
# never one of theirs, so identity streams cannot coincide with expression streams.
IDENTITY_STREAM = 2
assert IDENTITY_STREAM not in SPLIT_IDS.values()
SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class IdentitySetConfig:
    """The size of the set. The defaults keep generation plus pretraining within minutes on two cores."""

    identities: int = 400
    images_per_identity: int = 15
    heldout_per_identity: int = 3
    size: int = 64
    seed: int = 0

    def check(self) -> None:
        if self.identities < 2:
            raise ValueError(f"synthfer-id needs at least 2 identities, got {self.identities}")
        if not 1 <= self.heldout_per_identity < self.images_per_identity:
            raise ValueError(f"heldout_per_identity must be in [1, images_per_identity), got "
                             f"{self.heldout_per_identity} of {self.images_per_identity}")
        if self.size < 16:
            raise ValueError(f"image size {self.size} is too small to draw a face (minimum 16)")
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}")

    @property
    def n_train_images(self) -> int:
        return self.images_per_identity - self.heldout_per_identity


class Person(NamedTuple):
    identity: Identity
    look: Appearance


def person(seed: int, k: int) -> Person:
    """Identity ``k`` of the set with this seed: geometry and person-fixed appearance."""
    rng = np.random.default_rng([seed, IDENTITY_STREAM, k, 0])
    return Person(sample_identity(rng), sample_appearance(rng))


def picture(cfg: IdentitySetConfig, who: Person, k: int, j: int) -> np.ndarray:
    """Picture ``j`` of identity ``k``: a synthfer face with its own expression, pose and nuisances."""
    truth, pose, look = streams(np.random.default_rng([cfg.seed, IDENTITY_STREAM, k, 1, j]))
    return draw_face(truth, pose, look, cfg.size, config=SynthConfig(), identity=who.identity,
                     person_look=who.look).image


def image_path(root: Path, cfg: IdentitySetConfig, k: int, j: int) -> Path:
    split = "train" if j < cfg.n_train_images else "heldout"
    return root / split / f"id{k:05d}" / f"{j:02d}.jpg"


def _render_identities(task: tuple[str, dict[str, Any], int, int]) -> int:
    """Render and save every picture of identities ``start..stop`` (runs in a worker)."""
    out, cfg_dict, start, stop = task
    cfg = IdentitySetConfig(**cfg_dict)
    for k in range(start, stop):
        who = person(cfg.seed, k)
        for j in range(cfg.images_per_identity):
            path = image_path(Path(out), cfg, k, j)
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(picture(cfg, who, k, j)).save(path, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return (stop - start) * cfg.images_per_identity


def _params(cfg: IdentitySetConfig) -> dict[str, Any]:
    return {"name": NAME, "version": GENERATOR_VERSION, **asdict(cfg),
            "synthfer_config": SynthConfig().to_dict()}


CHUNK = 10  # identities per worker task


def generate_identities(out: str | Path, cfg: Optional[IdentitySetConfig] = None, workers: Optional[int] = None,
                        progress: bool = True) -> dict[str, Any]:
    """Render synthfer-id into ``out``; return its summary (``skipped`` when it was already there)."""
    out, cfg = Path(out), cfg or IdentitySetConfig()
    cfg.check()
    params = _params(cfg)
    meta_file, marker = out / META_FILE, out / INCOMPLETE_MARKER
    try:
        meta = json.loads(meta_file.read_text())
        if all(meta.get(k) == v for k, v in params.items()):
            return {**meta, "skipped": True}
    except (OSError, ValueError):
        pass
    if out.is_dir() and any(out.iterdir()) and not (meta_file.is_file() or marker.is_file()):
        raise DatasetError(f"{out} holds files that synthfer-id did not write; choose an empty directory")
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    marker.touch()
    meta_file.unlink(missing_ok=True)
    for split in SPLITS:  # pictures of an earlier, different set must not linger
        for p in (out / split).glob("id*/*.jpg"):
            p.unlink()
    tasks = [(str(out), asdict(cfg), s, min(s + CHUNK, cfg.identities)) for s in range(0, cfg.identities, CHUNK)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    with tqdm(total=cfg.identities * cfg.images_per_identity, desc="rendering synthfer-id", unit="img",
              disable=not progress) as bar:
        if workers == 1:
            for n in map(_render_identities, tasks):
                bar.update(n)
        else:
            with multiprocessing.get_context().Pool(workers) as pool:
                for n in pool.imap_unordered(_render_identities, tasks):
                    bar.update(n)
    meta = {**params, "images": {"train": cfg.identities * cfg.n_train_images,
                                 "heldout": cfg.identities * cfg.heldout_per_identity},
            "seconds": round(time.perf_counter() - t0, 2)}
    write_json(meta_file, meta)
    marker.unlink(missing_ok=True)
    return {**meta, "skipped": False}


@dataclass
class IdentitySet:
    """synthfer-id in memory: uint8 images and identity labels of both splits."""

    root: Path
    config: IdentitySetConfig
    train_images: np.ndarray
    train_labels: np.ndarray
    heldout_images: np.ndarray
    heldout_labels: np.ndarray
    info: dict[str, Any]

    @property
    def num_identities(self) -> int:
        return self.config.identities


def default_root() -> Path:
    return data_root() / NAME


def load_identities(root: Optional[Path] = None, cfg: Optional[IdentitySetConfig] = None,
                    progress: bool = True) -> IdentitySet:
    """synthfer-id with these parameters at ``root`` (default ``<data root>/synthfer-id``), generated
    there first when it is absent or was generated with other parameters."""
    root, cfg = Path(root) if root is not None else default_root(), cfg or IdentitySetConfig()
    meta_file = root / META_FILE
    try:
        fresh = json.loads(meta_file.read_text()) if meta_file.is_file() else None
    except ValueError:
        fresh = None
    if fresh is None or any(fresh.get(k) != v for k, v in _params(cfg).items()):
        # said even when quiet: a few tens of MB appear here, once per machine
        print(f"generating synthfer-id in {root.resolve()} (set FER_BENCH_DATA to use another data root)",
              file=sys.stderr, flush=True)
    info = generate_identities(root, cfg, progress=progress)
    split_images: dict[str, np.ndarray] = {}
    split_labels: dict[str, np.ndarray] = {}
    for split, js in (("train", range(cfg.n_train_images)),
                      ("heldout", range(cfg.n_train_images, cfg.images_per_identity))):
        pairs = [(k, j) for k in range(cfg.identities) for j in js]
        split_images[split] = load_images([image_path(root, cfg, k, j) for k, j in pairs], root / ".cache",
                                          progress=progress, desc=f"decoding synthfer-id {split}")
        split_labels[split] = np.array([k for k, _ in pairs], dtype=np.int64)
    return IdentitySet(root, cfg, split_images["train"], split_labels["train"], split_images["heldout"],
                       split_labels["heldout"], info)
