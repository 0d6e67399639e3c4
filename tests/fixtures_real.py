"""Builders of tiny RAF-DB, FERPlus and AffectNet trees in the real on-disk formats.

The real datasets are licensed and never enter the repository; the tests (and
``benchmarks/cache_speed.py``) build look-alike trees from generated images
(solid colours or noise) in exactly the formats the loaders read.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from fer_bench.datasets.raf_layout import LABEL_FILE, LABEL_FILE_ALT

# RAF-DB basic per-class counts (surprise, fear, disgust, happiness, sadness, anger, neutral).
RAF_TRAIN_COUNTS = (1290, 281, 717, 4772, 1982, 705, 2524)
RAF_TEST_COUNTS = (329, 74, 160, 1185, 478, 162, 680)

# --- RAF-DB ---------------------------------------------------------------------------

ORIGINAL_SIZE = (90, 70)  # w, h of the fixture's "original" images


def raf_box(i: int) -> tuple[float, float, float, float]:
    """The fixture's face box of sample ``i`` (fractional, as in the real files)."""
    x0, y0 = 10.5 + i % 5, 8.25 + i % 3
    return x0, y0, x0 + 50.0, y0 + 44.5


def make_rafdb(
    root: Path,
    train_counts: Sequence[int],
    test_counts: Sequence[int],
    *,
    spelling: str = "patition",
    aligned: bool = True,
    original: bool = False,
    size: int = 100,
    noise: bool = False,
    seed: int = 0,
) -> tuple[list[str], np.ndarray]:
    """Write a RAF-DB basic tree; return the names and 0-based labels in file order.

    Labels are shuffled within each split; an aligned image is a solid colour
    coding its label (or random noise with ``noise``); an original image is a
    grey frame with the face box filled with the label's colour. As in the real
    file, the label file's last line has no newline.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    names: list[str] = []
    labels: list[int] = []
    for split, counts, digits in (("train", train_counts, 5), ("test", test_counts, 4)):
        ys = np.repeat(np.arange(len(counts)), counts)
        rng.shuffle(ys)
        names += [f"{split}_{i + 1:0{digits}d}.jpg" for i in range(len(ys))]
        labels += ys.tolist()
    label_path = root / (LABEL_FILE if spelling == "patition" else LABEL_FILE_ALT)
    label_path.parent.mkdir(parents=True, exist_ok=True)
    label_path.write_text("\n".join(f"{n} {y + 1}" for n, y in zip(names, labels)))
    if aligned:
        (root / "Image/aligned").mkdir(parents=True, exist_ok=True)
    if original:
        (root / "Image/original").mkdir(parents=True, exist_ok=True)
        (root / "Annotation/boundingbox").mkdir(parents=True, exist_ok=True)
    for i, (n, y) in enumerate(zip(names, labels)):
        stem = n[:-4]
        if aligned:
            if noise:
                img = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
            else:
                img = Image.new("RGB", (size, size), label_colour(y))
            img.save(root / f"Image/aligned/{stem}_aligned.jpg", quality=95)
        if original:
            img = Image.new("RGB", ORIGINAL_SIZE, (128, 128, 128))
            box = raf_box(i)
            img.paste(label_colour(y), tuple(int(round(v)) for v in box))
            img.save(root / f"Image/original/{n}", quality=95)
            (root / f"Annotation/boundingbox/{stem}_boundingbox.txt").write_text(
                " ".join(f"{v:.2f}" for v in box) + "\n")
    return names, np.asarray(labels, dtype=np.int64)


def make_rafdb_full(root: Path, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """A RAF-DB-sized tree: 12,271 + 3,068 100x100 random-noise JPEGs with the real counts."""
    return make_rafdb(root, RAF_TRAIN_COUNTS, RAF_TEST_COUNTS, noise=True, seed=seed)


def label_colour(label: int) -> tuple[int, int, int]:
    return (30 * label + 20, 200 - 25 * label, 90)


# --- FERPlus --------------------------------------------------------------------------

# Columns: neutral happiness surprise sadness anger disgust fear contempt unknown NF.
FERPLUS_ROWS: list[tuple[str, str, list[int]]] = [
    ("Training", "fer0000000.png", [10, 0, 0, 0, 0, 0, 0, 0, 0, 0]),   # 0 neutral everywhere
    ("Training", "fer0000001.png", [0, 6, 4, 0, 0, 0, 0, 0, 0, 0]),    # 1 happiness everywhere
    ("Training", "", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]),                 # 2 empty name: skipped
    ("Training", "fer0000003.png", [1, 5, 0, 0, 0, 0, 0, 1, 1, 2]),    # 3 happiness once single votes go
    ("Training", "fer0000004.png", [4, 4, 2, 0, 0, 0, 0, 0, 0, 0]),    # 4 majority drops; tie -> neutral
    ("Training", "fer0000005.png", [0, 0, 0, 0, 0, 0, 0, 0, 6, 4]),    # 5 unknown: dropped everywhere
    ("Training", "fer0000006.png", [0, 0, 0, 0, 0, 0, 0, 7, 3, 0]),    # 6 contempt
    ("Training", "fer0000007.png", [3, 3, 0, 0, 0, 0, 0, 0, 4, 0]),    # 7 unknown wins: dropped
    ("Training", "fer0000008.png", [0, 5, 0, 0, 0, 0, 0, 0, 5, 0]),    # 8 only multi_target keeps (happiness)
    ("Training", "fer0000009.png", [0, 0, 3, 3, 3, 0, 0, 0, 0, 1]),    # 9 3-way tie: not majority; surprise
    ("Training", "fer0000010.png", [2, 2, 2, 2, 2, 0, 0, 0, 0, 0]),    # 10 5-way tie: dropped everywhere
    ("Training", "fer0000011.png", [0, 0, 0, 0, 0, 0, 5, 0, 4, 0]),    # 11 the 9-vote row: fear
    ("Training", "fer0000012.png", [0, 0, 0, 10, 0, 0, 0, 0, 0, 0]),   # 12 duplicate, overwritten by 13
    ("Training", "fer0000012.png", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]),   # 13 later copy wins: NF, dropped
    ("Training", "fer0000013.png", [0, 0, 0, 0, 8, 2, 0, 0, 0, 0]),    # 14 anger
    ("Training", "fer0000014.png", [0, 0, 0, 0, 0, 9, 1, 0, 0, 0]),    # 15 disgust
    ("PublicTest", "fer0000015.png", [0, 10, 0, 0, 0, 0, 0, 0, 0, 0]),  # 16 happiness
    ("PublicTest", "", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]),                # 17 empty name
    ("PublicTest", "fer0000016.png", [7, 3, 0, 0, 0, 0, 0, 0, 0, 0]),   # 18 neutral
    ("PrivateTest", "fer0000017.png", [0, 0, 10, 0, 0, 0, 0, 0, 0, 0]),  # 19 surprise
    ("PrivateTest", "fer0000018.png", [4, 4, 2, 0, 0, 0, 0, 0, 0, 0]),   # 20 test is majority: dropped
    ("PrivateTest", "fer0000019.png", [0, 0, 0, 0, 0, 0, 0, 8, 2, 0]),   # 21 contempt
    ("PrivateTest", "", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]),                # 22 empty name
    ("PrivateTest", "fer0000020.png", [0, 0, 0, 0, 0, 0, 10, 0, 0, 0]),  # 23 duplicate, overwritten by 24
    ("PrivateTest", "fer0000020.png", [0, 0, 0, 10, 0, 0, 0, 0, 0, 0]),  # 24 later copy wins: sadness
]


def fer_pixel_value(row: int) -> int:
    """The grey level of FER2013 row ``row``'s image: it identifies the row after the join."""
    return (row * 10) % 256


def make_ferplus_csv(root: Path, rows: Optional[list] = None, old_subdir: bool = False) -> None:
    """Write ``fer2013.csv`` (or ``fer2013/fer2013.csv``) and ``fer2013new.csv``."""
    rows = FERPLUS_ROWS if rows is None else rows
    root = Path(root)
    old = root / "fer2013" / "fer2013.csv" if old_subdir else root / "fer2013.csv"
    old.parent.mkdir(parents=True, exist_ok=True)
    with open(old, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for i, (usage, _, _) in enumerate(rows):
            w.writerow([i % 7, " ".join([str(fer_pixel_value(i))] * 48 * 48), usage])
    with open(root / "fer2013new.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger",
                    "disgust", "fear", "contempt", "unknown", "NF"])
        for usage, name, votes in rows:
            w.writerow([usage, name] + votes)


def make_ferplus_folders(root: Path, rows: Optional[list] = None, box_column: bool = True) -> None:
    """Write Microsoft's ``FER2013Train|Valid|Test`` folders as its generator does: by name,
    the later row overwriting the earlier, empty names skipped; then ``label.csv`` per folder."""
    rows = FERPLUS_ROWS if rows is None else rows
    folders = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
    labels: dict[str, dict[str, list[int]]] = {f: {} for f in folders.values()}
    for i, (usage, name, votes) in enumerate(rows):
        if not name:
            continue
        folder = Path(root) / folders[usage]
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("L", (48, 48), fer_pixel_value(i)).save(folder / name)
        labels[folders[usage]][name] = votes
    for folder, table in labels.items():
        with open(Path(root) / folder / "label.csv", "w", newline="") as f:
            w = csv.writer(f)
            for name in sorted(table):
                w.writerow([name] + (["(0, 0, 48, 48)"] if box_column else []) + table[name])


# --- AffectNet ------------------------------------------------------------------------

AFFECT_IMAGE = (80, 60)  # w, h of the fixture's whole images
AFFECT_TRAIN_CODES = [0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 7, 8, 9, 10]
AFFECT_VAL_CODES = list(range(11))


def affect_box(i: int) -> tuple[int, int, int, int]:
    """``face_x, face_y, face_width, face_height`` of sample ``i``."""
    return 12 + i % 4, 6 + i % 3, 40, 44


def affect_landmarks(i: int, w: float, h: float, x0: float = 0.0, y0: float = 0.0) -> np.ndarray:
    """68 distinct points inside the box ``(x0, y0, w, h)``; x and y differ so order errors show."""
    t = np.arange(68, dtype=np.float64)
    xs = x0 + 2.0 + (t * 0.5 + i) % (w - 4)
    ys = y0 + 3.0 + (t * 0.6 + 2 * i) % (h - 6)
    return np.stack([xs, ys], axis=1)


def make_affectnet_csv(root: Path, train_codes: Sequence[int] = AFFECT_TRAIN_CODES,
                       val_codes: Sequence[int] = AFFECT_VAL_CODES) -> dict[str, list[dict]]:
    """Write the original release: lists with the real columns, whole images in subfolders.

    Returns per split the rows written (path, box, landmarks, code).
    """
    root = Path(root)
    lists = root / "Manually_Annotated_file_lists"
    images = root / "Manually_Annotated" / "Manually_Annotated_Images"
    lists.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[dict]] = {}
    k = 0
    for fname, codes in (("training.csv", train_codes), ("validation.csv", val_codes)):
        rows = []
        for code in codes:
            sub = f"{100 + k % 3}"
            path = f"{sub}/{k:04x}abcdef{k}.jpg"
            x, y, w, h = affect_box(k)
            lm = affect_landmarks(k, w, h, x, y)
            img = Image.new("RGB", AFFECT_IMAGE, (40, 40, 40))
            img.paste(label_colour(code), (x, y, x + w, y + h))
            (images / sub).mkdir(parents=True, exist_ok=True)
            img.save(images / path, quality=95)
            rows.append({"path": path, "box": (x, y, w, h), "landmarks": lm, "code": code})
            k += 1
        with open(lists / fname, "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
                         "facial_landmarks", "expression", "valence", "arousal"])
            for r in rows:
                va = -2 if r["code"] >= 8 else 0.25
                wr.writerow([r["path"], *r["box"], ";".join(f"{v:.3f}" for v in r["landmarks"].reshape(-1)),
                             r["code"], va, va])
        written["train" if fname == "training.csv" else "test"] = rows
    return written


def make_affectnet_npy(root: Path, side: int = 40, train_codes: Sequence[int] = AFFECT_TRAIN_CODES[:12],
                       val_codes: Sequence[int] = tuple(range(8))) -> dict[str, list[dict]]:
    """Write the newer release: ``train_set|val_set/images/<id>.jpg`` + ``annotations/<id>_*.npy``.

    The expression is stored as a numpy string for even ids (as some copies do) and
    as an integer otherwise.
    """
    root = Path(root)
    written: dict[str, list[dict]] = {}
    k = 0
    for folder, codes in (("train_set", train_codes), ("val_set", val_codes)):
        (root / folder / "images").mkdir(parents=True, exist_ok=True)
        (root / folder / "annotations").mkdir(parents=True, exist_ok=True)
        rows = []
        for code in codes:
            ident = str(k)
            lm = affect_landmarks(k, side, side)
            Image.new("RGB", (side, side), label_colour(code)).save(root / folder / "images" / f"{ident}.jpg")
            exp = np.array(str(code)) if k % 2 == 0 else np.array(code)
            np.save(root / folder / "annotations" / f"{ident}_exp.npy", exp)
            np.save(root / folder / "annotations" / f"{ident}_lnd.npy", lm.reshape(-1))
            np.save(root / folder / "annotations" / f"{ident}_val.npy", np.array(0.1))
            np.save(root / folder / "annotations" / f"{ident}_aro.npy", np.array(0.2))
            rows.append({"name": f"{ident}.jpg", "landmarks": lm, "code": code})
            k += 1
        written["train" if folder == "train_set" else "test"] = rows
    return written
