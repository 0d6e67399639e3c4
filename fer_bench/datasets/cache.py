"""The uint8 image cache: decode every image once, memory-map it afterwards.

Decoding thousands of JPEGs per epoch is what keeps the peers' GPUs waiting.
A dataset decodes its images once into one ``(N, H, W, 3)`` uint8 ``.npy``
file, keyed by a hash of the manifest (paths, sizes, modification times, the
crop boxes and the target size), so a changed dataset never reads a stale
cache; later runs memory-map it. A missing or unreadable image is an error that
names the file, unless the caller asks to skip bad images: then the cache holds
the readable ones and a ``.bad.json`` beside it lists the skipped files.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from .. import disk
from .. import atomic
from .base import DatasetError


def pixel_box(box: Sequence[float]) -> tuple[int, int, int, int]:
    """A crop box ``(x_min, y_min, x_max, y_max)`` rounded to whole pixels, as the cache crops it."""
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    return x0, y0, x1, y1


def manifest_hash(
    paths: Sequence[Path],
    size: Optional[int],
    boxes: Optional[np.ndarray] = None,
    allow_missing: bool = False,
) -> str:
    h = hashlib.sha256(f"size={size}\n".encode())
    if boxes is not None:
        # Only the rounded boxes matter: they are what gets cropped.
        h.update(b"boxes\n" + np.asarray([pixel_box(b) for b in boxes], dtype=np.int64).tobytes())
    for p in paths:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            if not allow_missing:
                raise DatasetError(f"image not found: {p}") from None
            h.update(f"{p}\tmissing\n".encode())
            continue
        h.update(f"{p}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def decode_image(path: Path, size: Optional[int], box: Optional[Sequence[float]] = None) -> np.ndarray:
    """RGB uint8 array of an image, cropped to ``box`` and resized to ``size``x``size`` when given.

    A box reaching outside the image is padded with black (PIL's crop semantics).
    """
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if box is not None:
                x0, y0, x1, y1 = pixel_box(box)
                if x1 <= x0 or y1 <= y0:
                    raise DatasetError(f"empty crop box {box} for image {path}")
                im = im.crop((x0, y0, x1, y1))
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.BICUBIC)
            return np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise DatasetError(f"image not found: {path}") from None
    except OSError as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from None


@dataclass
class ImageSet:
    """The readable images of a list of paths.

    Attributes:
        images: uint8 ``(K, H, W, 3)``, memory-mapped from the cache copy-on-write
            (writable, as torch wants, without ever changing the cache file).
        kept: int64 ``(K,)`` indices into the requested paths of the images in ``images``.
        bad: ``(path, reason)`` of every skipped image (empty unless ``skip_bad``).
    """

    images: np.ndarray
    kept: np.ndarray
    bad: list[tuple[str, str]] = field(default_factory=list)


def _open_cache_file(tmp: Path, cache_file: Path, shape: tuple[int, ...]) -> np.memmap:
    """A new uint8 ``.npy`` of ``shape`` at ``tmp``, memory-mapped for writing, its space checked and
    reserved first: a memory map that runs out of disk is a SIGBUS ("Bus error"), not an exception."""
    header = 4096  # an .npy header is 128 bytes here; the rest is slack
    disk.reserve(cache_file, int(np.prod(shape, dtype=np.int64)) + header)
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
    try:
        disk.allocate(tmp, cache_file)
    except BaseException:
        del out  # the caller's atomic.replacing removes the file
        raise
    return out


def load_image_set(
    paths: Sequence[Path],
    cache_dir: Path,
    size: Optional[int] = None,
    *,
    boxes: Optional[np.ndarray] = None,
    skip_bad: bool = False,
    progress: bool = True,
    desc: str = "decoding images",
) -> ImageSet:
    """Decode ``paths`` once (cropped to ``boxes`` and resized to ``size``) through the cache.

    Without ``size`` every image must have the first readable image's size.
    With ``skip_bad`` a missing, unreadable or wrongly sized image is left out
    and listed in :attr:`ImageSet.bad`; without it, the first one raises
    :class:`DatasetError` naming the file.
    """
    paths = [Path(p) for p in paths]
    n = len(paths)
    if boxes is not None:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(n, 4)
        if size is None:
            raise ValueError("cropping images to boxes needs a target size")
    if n == 0:
        side = size or 0
        return ImageSet(np.zeros((0, side, side, 3), np.uint8), np.zeros(0, np.int64))
    cache_dir = Path(cache_dir)
    atomic.remove_stale_temporaries(cache_dir)  # a decode killed half-way leaves a dataset-sized file
    key = manifest_hash(paths, size, boxes, allow_missing=skip_bad)
    cache_file = cache_dir / f"images-{key}.npy"
    bad_file = cache_dir / f"images-{key}.bad.json"
    if cache_file.is_file():
        recorded = json.loads(bad_file.read_text()) if bad_file.is_file() else []
        if recorded and not skip_bad:
            raise DatasetError(recorded[0][2])
        bad_idx = [int(i) for i, _, _ in recorded]
        kept = np.setdiff1d(np.arange(n), np.asarray(bad_idx, dtype=np.int64))
        return ImageSet(np.load(cache_file, mmap_mode="c"), kept, [(p, r) for _, p, r in recorded])

    def box(i: int) -> Optional[np.ndarray]:
        return None if boxes is None else boxes[i]

    errors: dict[int, str] = {}
    shape: Optional[tuple[int, ...]] = (size, size, 3) if size is not None else None
    i = 0
    while shape is None and i < n:  # the reference size is the first readable image's
        try:
            shape = decode_image(paths[i], size, box(i)).shape
        except DatasetError as exc:
            if not skip_bad:
                raise
            errors[i] = str(exc)
        i += 1
    if shape is None:
        raise DatasetError(f"none of the {n} images could be read; first: {errors[0]}")

    cache_dir.mkdir(parents=True, exist_ok=True)

    def work(i: int) -> Optional[str]:
        if i in errors:
            return errors[i]
        try:
            img = decode_image(paths[i], size, box(i))
            if img.shape != shape:
                raise DatasetError(
                    f"image {paths[i]} is {img.shape[1]}x{img.shape[0]}, expected "
                    f"{shape[1]}x{shape[0]} like the first image"
                )
        except DatasetError as exc:
            if not skip_bad:
                raise
            return str(exc)
        out[i] = img
        return None

    # The .npy is the completion marker, so it is moved into place last.
    with atomic.replacing(cache_file, keep_suffix=True) as tmp:  # images-<key>.tmp<pid>.npy
        # Written straight to disk: a large dataset's cache need not fit in memory.
        out = _open_cache_file(tmp, cache_file, (n,) + tuple(shape))
        try:
            pool = ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2))
            try:
                results = pool.map(work, range(n))
                for i, err in enumerate(tqdm(results, total=n, desc=desc, disable=not progress, leave=False)):
                    if err is not None:
                        errors[i] = err
            finally:
                pool.shutdown(wait=True, cancel_futures=True)  # an early error must not wait for the rest
            kept = np.asarray([i for i in range(n) if i not in errors], dtype=np.int64)
            if errors:
                # Only the readable images are kept: copied into a file of their own, which replaces the full one.
                compact = atomic.temporary_path(cache_file, keep_suffix=True, tag="c")
                with atomic.replacing(tmp, temporary=compact):
                    dense = _open_cache_file(compact, cache_file, (len(kept),) + tuple(shape))
                    for start in range(0, len(kept), 4096):
                        dense[start:start + 4096] = out[kept[start:start + 4096]]
                    dense.flush()
                    del dense
            else:
                out.flush()
        finally:
            del out  # the memory map goes before its file is moved or removed
        if errors:
            atomic.write_text(bad_file, json.dumps([[i, str(paths[i]), errors[i]] for i in sorted(errors)]))
        else:
            bad_file.unlink(missing_ok=True)  # left by an interrupted earlier run
    bad = [(str(paths[i]), errors[i]) for i in sorted(errors)]
    return ImageSet(np.load(cache_file, mmap_mode="c"), kept, bad)


def load_images(
    paths: Sequence[Path],
    cache_dir: Path,
    size: Optional[int] = None,
    progress: bool = True,
    desc: str = "decoding images",
    boxes: Optional[np.ndarray] = None,
) -> np.ndarray:
    """All images as one uint8 ``(N, H, W, 3)`` array, through the cache in ``cache_dir``.

    Without ``size`` every image must have the first image's size. ``boxes``
    (``(N, 4)`` ``x_min, y_min, x_max, y_max`` in source pixels) crops each image
    before resizing. The first missing or unreadable image raises
    :class:`DatasetError` naming it; :func:`load_image_set` can skip them instead.
    """
    return load_image_set(paths, cache_dir, size, boxes=boxes, progress=progress, desc=desc).images
