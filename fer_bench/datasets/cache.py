"""The uint8 image cache: decode every image once, memory-map it afterwards.

Decoding thousands of JPEGs per epoch is what keeps the peers' GPUs waiting.
A dataset decodes its images once into one ``(N, H, W, 3)`` uint8 ``.npy``
file, keyed by a hash of the manifest (paths, sizes, modification times and the
target size), so a changed dataset never reads a stale cache; later runs
memory-map it. A missing or unreadable image is an error that names the file.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from .base import DatasetError


def manifest_hash(paths: Sequence[Path], size: Optional[int]) -> str:
    h = hashlib.sha256(f"size={size}\n".encode())
    for p in paths:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise DatasetError(f"image not found: {p}") from None
        h.update(f"{p}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def decode_image(path: Path, size: Optional[int]) -> np.ndarray:
    """RGB uint8 array of an image, resized to ``size``x``size`` when given."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.BICUBIC)
            return np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise DatasetError(f"image not found: {path}") from None
    except OSError as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from None


def load_images(
    paths: Sequence[Path],
    cache_dir: Path,
    size: Optional[int] = None,
    progress: bool = True,
    desc: str = "decoding images",
) -> np.ndarray:
    """All images as one uint8 ``(N, H, W, 3)`` array, through the cache in ``cache_dir``.

    Without ``size`` every image must have the first image's size.
    """
    paths = [Path(p) for p in paths]
    key = manifest_hash(paths, size)
    cache_file = Path(cache_dir) / f"images-{key}.npy"
    if cache_file.is_file():
        return np.load(cache_file, mmap_mode="r")
    first = decode_image(paths[0], size)
    out = np.empty((len(paths),) + first.shape, dtype=np.uint8)

    def work(i: int) -> None:
        img = decode_image(paths[i], size)
        if img.shape != first.shape:
            raise DatasetError(
                f"image {paths[i]} is {img.shape[1]}x{img.shape[0]}, expected "
                f"{first.shape[1]}x{first.shape[0]} like {paths[0].name}"
            )
        out[i] = img

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        for _ in tqdm(pool.map(work, range(len(paths))), total=len(paths), desc=desc,
                      disable=not progress, leave=False):
            pass
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(f".tmp{os.getpid()}.npy")
    np.save(tmp, out)
    os.replace(tmp, cache_file)
    return out
