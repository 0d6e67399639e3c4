"""Tests of the real-dataset loaders (RAF-DB, FERPlus, AffectNet) and ``data check``,
on tiny generated trees in the exact real formats (see :mod:`tests.fixtures_real`)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fer_bench.classes import CANONICAL, RAFDB_ORDER
from fer_bench.cli import main
from fer_bench.datasets.affectnet import AffectNet, landmarks_to_crop
from fer_bench.datasets.base import DatasetError, FERDataset
from fer_bench.datasets.check import check_dataset
from fer_bench.datasets.ferplus import FERPlus, process_votes
from fer_bench.datasets.rafdb import RAFDB
from fer_bench.registry import DATASETS

from .fixtures_real import (
    AFFECT_TRAIN_CODES, FERPLUS_ROWS, affect_box, label_colour, make_affectnet_csv,
    make_affectnet_npy, make_ferplus_csv, make_ferplus_folders, make_rafdb,
)

RAF_TRAIN = (2, 1, 1, 3, 2, 1, 2)
RAF_TEST = (1, 1, 1, 2, 1, 1, 1)
FERPLUS_ORDER = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")


def counts(labels: np.ndarray, n: int) -> list[int]:
    return np.bincount(labels, minlength=n).tolist()


def roundtrip(ds: FERDataset, tmp: Path) -> None:
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, ds.num_classes, len(ds.train))
    path = tmp / f"{ds.name}-labels.txt"
    path.write_text(ds.label_format.write(ds.train.names, noisy))
    names, labels = ds.label_format.read(path)
    assert names == ds.train.names
    assert labels.tolist() == noisy.tolist()


# --- registry -------------------------------------------------------------------------

def test_data_list_shows_the_real_datasets() -> None:
    out = CliRunner().invoke(main, ["data", "list"])
    assert out.exit_code == 0
    for name in ("rafdb", "ferplus", "affectnet", "synthfer"):
        line = next((line for line in out.output.splitlines() if line.startswith(name + " ")), "")
        # the profile a run without --profile gets, as the dataset declares it
        assert f"Default profile: {DATASETS.get(name).default_profile}." in line, out.output
    for name in ("rafdb", "ferplus", "affectnet"):
        cls = DATASETS.get(name)
        assert cls.default_profile == "paper"
        assert cls.default_root().name == name


# --- RAF-DB ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def raf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], np.ndarray]:
    root = tmp_path_factory.mktemp("raf") / "raf-basic"
    names, labels = make_rafdb(root, RAF_TRAIN, RAF_TEST, original=True, size=32)
    return root, names, labels


@pytest.mark.parametrize("spelling", ["patition", "partition"])
def test_rafdb_counts_classes_and_both_spellings(tmp_path: Path, spelling: str) -> None:
    make_rafdb(tmp_path, RAF_TRAIN, RAF_TEST, spelling=spelling, size=16)
    ds = RAFDB.load(tmp_path, progress=False)
    assert ds.class_names == RAFDB_ORDER
    assert counts(ds.train.labels, 7) == list(RAF_TRAIN)
    assert counts(ds.test.labels, 7) == list(RAF_TEST)
    assert all(n.startswith("train_") for n in ds.train.names)
    assert all(n.startswith("test_") for n in ds.test.names)
    assert ds.train.images.shape == (sum(RAF_TRAIN), 16, 16, 3) and ds.train.images.dtype == np.uint8
    # label 1 of the file is surprise: each image's colour codes its file label
    for img, y in zip(ds.test.images, ds.test.labels):
        assert np.abs(img.reshape(-1, 3).mean(0) - label_colour(int(y))).max() < 6
    roundtrip(ds, tmp_path)


def test_rafdb_original_images_are_cropped_to_their_box(raf: tuple) -> None:
    root, names, labels = raf
    ds = RAFDB.load(root, progress=False, images="original", size=24)
    assert ds.info["images"] == "original"
    assert ds.train.images.shape == (sum(RAF_TRAIN), 24, 24, 3)
    assert counts(ds.train.labels, 7) == list(RAF_TRAIN)
    # the crop is exactly the box, so the whole crop has the label colour, no grey frame
    for img, y in zip(ds.train.images, ds.train.labels):
        assert np.abs(img.reshape(-1, 3).astype(float) - label_colour(int(y))).mean() < 8
    aligned = RAFDB.load(root, progress=False)
    assert aligned.train.images.shape[1:] == (32, 32, 3) and aligned.train.names == ds.train.names


def test_rafdb_bad_lines_and_box_files_name_file_and_line(tmp_path: Path) -> None:
    make_rafdb(tmp_path, RAF_TRAIN, RAF_TEST, aligned=False, original=True)
    label_file = tmp_path / "EmoLabel/list_patition_label.txt"
    box = tmp_path / "Annotation/boundingbox/train_00002_boundingbox.txt"
    box.write_text("1 2 three 4\n")
    with pytest.raises(DatasetError, match=r"train_00002_boundingbox\.txt:1: expected"):
        RAFDB.load(tmp_path, progress=False, images="original")
    box.unlink()
    with pytest.raises(DatasetError, match="bounding box file not found: .*train_00002_boundingbox.txt"):
        RAFDB.load(tmp_path, progress=False, images="original")
    lines = label_file.read_text().splitlines()
    lines[3] = "train_00004.jpg 8"
    label_file.write_text("\n".join(lines))
    with pytest.raises(DatasetError, match=r"list_patition_label\.txt:4: label 8 outside 1\.\.7"):
        RAFDB.load(tmp_path, progress=False, images="original")
    with pytest.raises(ValueError, match="images='cropped'"):
        RAFDB.load(tmp_path, progress=False, images="cropped")


# --- FERPlus --------------------------------------------------------------------------

# Expected (name, label) per mode on FERPLUS_ROWS, Training split, 8 classes.
MAJORITY = [("fer0000000.png", 0), ("fer0000001.png", 1), ("fer0000003.png", 1), ("fer0000006.png", 7),
            ("fer0000011.png", 6), ("fer0000013.png", 4), ("fer0000014.png", 5)]
PROBABILITY = sorted(MAJORITY + [("fer0000004.png", 0), ("fer0000009.png", 2)])
MULTI = sorted(PROBABILITY + [("fer0000008.png", 1)])
TEST = [("fer0000017.png", 2), ("fer0000019.png", 7), ("fer0000020.png", 3)]
VALID = [("fer0000015.png", 1), ("fer0000016.png", 0)]


@pytest.fixture(scope="module")
def ferplus_trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("ferplus")
    make_ferplus_csv(base / "csv")
    make_ferplus_csv(base / "csv-subdir", old_subdir=True)
    make_ferplus_folders(base / "folders")
    make_ferplus_folders(base / "folders-nobox" / "data", box_column=False)
    return {"csv": base / "csv", "csv-subdir": base / "csv-subdir", "folders": base / "folders",
            "folders-nobox": base / "folders-nobox"}


def pairs(split) -> list[tuple[str, int]]:
    return sorted(zip(split.names, split.labels.tolist()))


@pytest.mark.parametrize("tree", ["csv", "csv-subdir", "folders", "folders-nobox"])
def test_ferplus_majority_both_layouts(ferplus_trees: dict[str, Path], tree: str) -> None:
    ds = FERPlus.load(ferplus_trees[tree], progress=False)
    assert ds.info["layout"] == ("csv" if tree.startswith("csv") else "folders")
    assert ds.class_names == FERPLUS_ORDER and set(ds.class_names) <= set(CANONICAL)
    assert pairs(ds.train) == sorted(MAJORITY)
    assert pairs(ds.test) == TEST
    assert counts(ds.train.labels, 8) == [1, 2, 0, 0, 1, 1, 1, 1]
    assert counts(ds.test.labels, 8) == [0, 0, 1, 1, 0, 0, 0, 1]
    assert ds.train.images.shape == (7, 48, 48, 3) and ds.train.images.dtype == np.uint8
    # grey -> RGB, and each image is its FER2013 *row's* (the row-order join; names drift)
    rows = {name: i for i, (_, name, _) in enumerate(FERPLUS_ROWS) if name}  # later duplicate wins
    for name, img in zip(ds.train.names + ds.test.names, np.concatenate([ds.train.images, ds.test.images])):
        assert (img == (rows[name] * 10) % 256).all(), name
    # the human votes are kept, raw, in class order
    for name, v in zip(ds.train.names, ds.train.votes):
        assert v.tolist() == FERPLUS_ROWS[rows[name]][2][:8]
    assert ds.info["raw_votes"]["train"].shape == (7, 10)
    roundtrip(ds, ferplus_trees[tree].parent)


def test_ferplus_csv_counts_empty_and_duplicate_names(ferplus_trees: dict[str, Path]) -> None:
    ds = FERPlus.load(ferplus_trees["csv"], progress=False)
    assert ds.info["empty_names"] == 3 and ds.info["duplicate_names"] == 2
    # fer0000012.png: the later copy (NF=10) overwrote the sadness one, as in Microsoft's folders
    assert "fer0000012.png" not in ds.train.names


@pytest.mark.parametrize("mode,expected", [
    ("majority", MAJORITY), ("probability", PROBABILITY), ("crossentropy", PROBABILITY),
    ("multi_target", MULTI),
])
def test_ferplus_label_modes(ferplus_trees: dict[str, Path], mode: str, expected: list) -> None:
    for tree in ("csv", "folders"):
        ds = FERPlus.load(ferplus_trees[tree], progress=False, label_mode=mode)
        assert pairs(ds.train) == sorted(expected)
        assert pairs(ds.test) == TEST  # the test split is always read in majority mode
    targets = dict(zip(ds.train.names, ds.info["targets"]["train"]))
    if mode == "crossentropy":
        assert np.allclose(targets["fer0000001.png"], [0, .6, .4, 0, 0, 0, 0, 0])
        assert np.allclose(targets["fer0000004.png"], [.5, .5, 0, 0, 0, 0, 0, 0])  # tie taken together
        assert np.allclose(targets["fer0000009.png"], [0, 0, 1 / 3, 1 / 3, 1 / 3, 0, 0, 0])


def test_ferplus_vote_rules() -> None:
    # single votes are outliers: 5 of the remaining 7 is a majority, 5 of 10 would not be
    assert process_votes([1, 5, 0, 0, 0, 0, 0, 1, 1, 2], "majority").argmax() == 1
    assert process_votes([5, 5, 0, 0, 0, 0, 0, 0, 0, 0], "majority") is None  # half is no majority
    # the 9-vote row: shares of 9, not of 10
    assert process_votes([0, 0, 0, 0, 0, 0, 5, 0, 4, 0], "majority").argmax() == 6
    # unknown / NF results are discarded
    for mode in ("majority", "probability", "crossentropy", "multi_target"):
        assert process_votes([0, 0, 0, 0, 0, 0, 0, 0, 6, 4], mode) is None
        assert process_votes([0, 0, 0, 0, 0, 0, 0, 0, 0, 10], mode) is None
        assert process_votes([0] * 10, mode) is None
    # probability: an emotion reached before unknown keeps, unknown is dropped, then 5/10 is too little
    assert process_votes([0, 5, 0, 0, 0, 0, 0, 0, 5, 0], "probability") is None
    assert process_votes([0, 5, 0, 0, 0, 0, 0, 0, 5, 0], "multi_target").argmax() == 1
    # more than 3 tied categories is discarded
    assert process_votes([2, 2, 2, 2, 2, 0, 0, 0, 0, 0], "crossentropy") is None
    with pytest.raises(ValueError, match="label_mode='soft'"):
        process_votes([10] + [0] * 9, "soft")


def test_ferplus_seven_classes_and_valid_split(ferplus_trees: dict[str, Path]) -> None:
    ds8 = FERPlus.load(ferplus_trees["folders"], progress=False)
    ds7 = FERPlus.load(ferplus_trees["folders"], progress=False, classes=7)
    assert ds7.class_names == FERPLUS_ORDER[:7]
    assert pairs(ds7.train) == [p for p in pairs(ds8.train) if p[1] != 7]
    assert pairs(ds7.test) == [p for p in TEST if p[1] != 7]
    assert ds7.train.votes.shape == (6, 7)
    valid = FERPlus.load(ferplus_trees["csv"], progress=False, test_split="valid")
    assert pairs(valid.test) == VALID and pairs(valid.train) == sorted(MAJORITY)
    roundtrip(ds7, ferplus_trees["folders"].parent)


def test_ferplus_join_and_line_errors(tmp_path: Path) -> None:
    make_ferplus_csv(tmp_path)
    old = tmp_path / "fer2013.csv"
    lines = old.read_text().splitlines()
    old.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DatasetError, match="25 data rows but .*fer2013.csv has 24"):
        FERPlus.load(tmp_path, progress=False)
    lines[5] = lines[5].replace("Training", "PublicTest")
    old.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"fer2013new\.csv:6: Usage Training but .*fer2013\.csv:6 says PublicTest"):
        FERPlus.load(tmp_path, progress=False)
    make_ferplus_folders(tmp_path / "f")
    label_csv = tmp_path / "f/FER2013Test/label.csv"
    rows = label_csv.read_text().splitlines()
    rows[1] = rows[1].replace(",4,", ",x,", 1)
    label_csv.write_text("\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match=r"FER2013Test/label\.csv:2: votes must be"):
        FERPlus.load(tmp_path / "f", progress=False)
    with pytest.raises(DatasetError, match="no FERPlus layout found"):
        FERPlus.load(tmp_path / "empty", progress=False)


# --- AffectNet ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def affect_trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    base = tmp_path_factory.mktemp("affectnet")
    return {"csv": base / "csv", "csv_rows": make_affectnet_csv(base / "csv"),
            "npy": base / "npy", "npy_rows": make_affectnet_npy(base / "npy")}


def expected_codes(codes: list[int], classes: int) -> list[int]:
    return np.bincount([c for c in codes if c < classes], minlength=classes).tolist()


@pytest.mark.parametrize("classes", [7, 8])
def test_affectnet_csv_release(affect_trees: dict, classes: int) -> None:
    ds = AffectNet.load(affect_trees["csv"], progress=False, classes=classes, size=20)
    assert ds.info["layout"] == "csv"
    assert ds.class_names == ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger",
                              "contempt")[:classes]
    assert counts(ds.train.labels, classes) == expected_codes(AFFECT_TRAIN_CODES, classes)
    assert counts(ds.test.labels, classes) == [1] * classes  # validation is the test split
    assert ds.info["dropped_codes"] == ({8: 2, 9: 2, 10: 2} if classes == 8 else {7: 3, 8: 2, 9: 2, 10: 2})
    assert ds.train.images.shape == (len(ds.train), 20, 20, 3)
    # names are the path column; landmarks are the CSV's (x;y interleaved) moved into the crop
    rows = {r["path"]: r for r in affect_trees["csv_rows"]["train"]}
    for name, y, lm, img in zip(ds.train.names, ds.train.labels, ds.train.landmarks, ds.train.images):
        r = rows[name]
        assert r["code"] == y
        x, yy, w, h = r["box"]
        want = (r["landmarks"] - [x, yy] + 0.5) * [20 / w, 20 / h] - 0.5
        assert np.allclose(lm, want, atol=1e-3)
        assert (lm >= -0.5).all() and (lm <= 19.5).all()
        assert np.abs(img.reshape(-1, 3).astype(float).mean(0) - label_colour(int(y))).max() < 8
    roundtrip(ds, affect_trees["csv"])


def test_affectnet_landmarks_follow_the_pixels(tmp_path: Path) -> None:
    make_affectnet_csv(tmp_path, train_codes=[1], val_codes=[2])
    first = next((tmp_path / "Manually_Annotated/Manually_Annotated_Images").rglob("*.jpg"))
    x, y, w, h = affect_box(0)
    img = np.zeros((60, 80, 3), np.uint8)
    img[20:24, 30:34] = 255  # a white square whose centre is pixel (31.5, 21.5)
    Image.fromarray(img).save(first, quality=100)
    ds = AffectNet.load(tmp_path, progress=False, size=20)
    out = ds.train.images[0].astype(float).mean(2)
    out[out < 64] = 0
    ys, xs = np.indices(out.shape)
    centroid = np.array([(xs * out).sum(), (ys * out).sum()]) / out.sum()
    want = landmarks_to_crop(np.array([[[31.5, 21.5]]]), np.array([[x, y, x + w, y + h]]), 20)[0, 0]
    assert np.allclose(centroid, want, atol=0.25), (centroid, want)


@pytest.mark.parametrize("classes", [7, 8])
def test_affectnet_npy_release(affect_trees: dict, classes: int) -> None:
    ds = AffectNet.load(affect_trees["npy"], progress=False, classes=classes, size=20)
    assert ds.info["layout"] == "npy"
    train_codes = [c for c in AFFECT_TRAIN_CODES[:12] if c < classes]
    assert counts(ds.train.labels, classes) == np.bincount(train_codes, minlength=classes).tolist()
    assert counts(ds.test.labels, classes) == [1] * classes
    rows = {r["name"]: r for r in affect_trees["npy_rows"]["train"]}
    for name, y, lm in zip(ds.train.names, ds.train.labels, ds.train.landmarks):
        assert rows[name]["code"] == y
        assert np.allclose(lm, (rows[name]["landmarks"] + 0.5) * 0.5 - 0.5, atol=1e-4)  # 40 px -> 20 px
    roundtrip(ds, affect_trees["npy"])


def test_affectnet_bad_lines(tmp_path: Path) -> None:
    make_affectnet_csv(tmp_path, train_codes=[0, 1, 2], val_codes=[3])
    path = tmp_path / "Manually_Annotated_file_lists/training.csv"
    original = path.read_text().splitlines()
    lines = list(original)
    lines[2] = lines[2].rsplit(",", 3)[0] + ",11,0.1,0.1"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"training\.csv:3: expression '11' is not a code 0\.\.10"):
        AffectNet.load(tmp_path, progress=False, size=16)
    fields = original[2].split(",")
    fields[5] = fields[5].rsplit(";", 1)[0]  # 135 numbers
    lines[2] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"training\.csv:3: facial_landmarks must be 136"):
        AffectNet.load(tmp_path, progress=False, size=16)


# --- data check -----------------------------------------------------------------------

def test_data_check_clean_tree_prints_counts_and_mapping(raf: tuple) -> None:
    root, _, _ = raf
    res = CliRunner().invoke(main, ["data", "check", "--dataset", "rafdb", "--root", str(root)])
    assert res.exit_code == 0, res.output
    assert "1 -> surprise" in res.output and "7 -> neutral" in res.output
    assert re.search(r"happiness +3 +2\n", res.output)
    assert re.search(r"total +12 +8\n", res.output)
    assert "no problems found" in res.output
    res = CliRunner().invoke(main, ["data", "check", "--dataset", "rafdb", "--root", str(root),
                                    "--data", "images=original", "--data", "size=64"])
    assert res.exit_code == 0, res.output


def test_data_check_reports_every_problem(tmp_path: Path) -> None:
    make_rafdb(tmp_path, RAF_TRAIN, RAF_TEST, size=16)
    label_file = tmp_path / "EmoLabel/list_patition_label.txt"
    lines = label_file.read_text().splitlines()
    lines[2] = "train_00003.jpg"                 # line 3: malformed
    lines[4] = "train_00005.jpg 9"               # line 5: label out of range
    lines[6] = lines[0]                          # line 7: duplicate of line 1
    label_file.write_text("\n".join(lines))
    (tmp_path / "Image/aligned/train_00002_aligned.jpg").unlink()
    (tmp_path / "Image/aligned/test_0001_aligned.jpg").write_bytes(b"not a jpeg")
    Image.new("RGB", (20, 16)).save(tmp_path / "Image/aligned/test_0002_aligned.jpg")
    res = CliRunner().invoke(main, ["data", "check", "--dataset", "rafdb", "--root", str(tmp_path)])
    assert res.exit_code == 2, res.output
    out = res.output
    assert "6 problem(s)" in out
    assert "list_patition_label.txt:3: expected '<name> <label>'" in out
    assert "list_patition_label.txt:5: label 9 outside 1..7" in out
    assert "list_patition_label.txt:7: duplicate name train_00001.jpg (first on line 1)" in out
    assert "image not found: " in out and "train_00002_aligned.jpg" in out
    assert "cannot read image " in out and "test_0001_aligned.jpg" in out
    assert "test_0002_aligned.jpg is 20x16, expected 16x16 like most images" in out
    assert re.search(r"total +9 +8\n", out)  # the counts of what would load


def test_data_check_ferplus_and_affectnet_problems(tmp_path: Path) -> None:
    make_ferplus_folders(tmp_path / "fp")
    label_csv = tmp_path / "fp/FER2013Train/label.csv"
    rows = label_csv.read_text().splitlines()
    rows[0] = rows[0].rsplit(",", 1)[0]
    label_csv.write_text("\n".join(rows) + "\n")
    (tmp_path / "fp/FER2013Test/fer0000017.png").unlink()
    report = check_dataset("ferplus", tmp_path / "fp")
    assert not report.ok and len(report.problems) == 2
    assert "FER2013Train/label.csv:1: expected name, box and 10 votes (12 fields), got 11" in report.problems[0]
    assert "image not found" in report.problems[1] and "fer0000017.png" in report.problems[1]

    make_affectnet_csv(tmp_path / "an", train_codes=[0, 1, 2, 3], val_codes=[4, 5])
    path = tmp_path / "an/Manually_Annotated_file_lists/training.csv"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace(",0,0.25,0.25", ",x,0.25,0.25")
    lines[2] = lines[2].replace(",40,44,", ",0,44,", 1)
    path.write_text("\n".join(lines) + "\n")
    next((tmp_path / "an/Manually_Annotated/Manually_Annotated_Images").rglob("*.jpg")).unlink()
    report = check_dataset("affectnet", tmp_path / "an", classes=8)
    text = report.format()
    assert "training.csv:2: expression 'x' is not a code 0..10" in text
    assert "training.csv:3: empty face box (face_width 0.0" in text
    assert "image not found" in text
    assert report.counts["train"]["sadness"] == 1 and report.counts["test"]["fear"] == 1
    res = CliRunner().invoke(main, ["data", "check", "--dataset", "affectnet", "--root",
                                    str(tmp_path / "an"), "--data", "colour=red"])
    assert res.exit_code == 2 and "unknown option(s) colour" in res.output


# --- skip_bad -------------------------------------------------------------------------

def test_skip_bad(tmp_path: Path) -> None:
    make_rafdb(tmp_path, RAF_TRAIN, RAF_TEST, size=16)
    missing = tmp_path / "Image/aligned/train_00004_aligned.jpg"
    corrupt = tmp_path / "Image/aligned/train_00007_aligned.jpg"
    missing.unlink()
    corrupt.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DatasetError, match="image not found: .*train_00004_aligned.jpg"):
        RAFDB.load(tmp_path, progress=False)
    for _ in range(2):  # the second load reads the cache and its record of what was skipped
        with pytest.warns(UserWarning, match="skipped 2 unreadable or missing") as rec:
            ds = RAFDB.load(tmp_path, progress=False, skip_bad=True)
        message = str(rec[0].message)
        assert "train_00004_aligned.jpg" in message and "train_00007_aligned.jpg" in message
        assert ds.info["skipped"] == 2 and len(ds.train) == sum(RAF_TRAIN) - 2
        assert "train_00004.jpg" not in ds.train.names and "train_00007.jpg" not in ds.train.names
        assert len(ds.train.images) == len(ds.train.labels) == len(ds.train.names)
    with pytest.raises(DatasetError, match="image not found: .*train_00004_aligned.jpg"):
        RAFDB.load(tmp_path, progress=False)
    shutil.copy(tmp_path / "Image/aligned/train_00001_aligned.jpg", missing)
    with pytest.raises(DatasetError, match="cannot read image .*train_00007_aligned.jpg"):
        RAFDB.load(tmp_path, progress=False, cache=tmp_path / "other-cache")
    assert not list((tmp_path / "other-cache").glob("images-*"))  # a failed decode leaves no cache
