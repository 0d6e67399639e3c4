"""Tests of the synthfer generator: on-disk layout, ground truth, determinism, geometry."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_bench.classes import RAFDB_ORDER
from fer_bench.datasets import raf_layout
from fer_bench.datasets.base import DatasetError
from fer_bench.datasets.synthfer import generate as gen_mod
from fer_bench.datasets.synthfer.face import (
    AU_INDEX, deform, expression_aus, landmark_depth, sample_identity,
)
from fer_bench.datasets.synthfer.generate import generate
from fer_bench.datasets.synthfer.labels import (
    class_names, class_prior, js_divergence, majority_label,
)
from fer_bench.datasets.synthfer.sample import SynthConfig, render_face

N_TRAIN, N_TEST, SIZE = 60, 20, 48


def _table(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    values = np.array([[float(x) for x in r[1:]] for r in rows[1:]])
    return rows[0], [r[0] for r in rows[1:]], values


def _images(root: Path, names: list[str]) -> np.ndarray:
    return np.stack([np.asarray(Image.open(raf_layout.aligned_path(root, n))) for n in names])


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synthfer") / "a"
    summary = generate(root, N_TRAIN, N_TEST, SIZE, seed=3, workers=1, progress=False)
    return root, summary


def test_layout_and_label_file(small: tuple[Path, dict]) -> None:
    root, summary = small
    text = (root / raf_layout.LABEL_FILE).read_text()
    lines = text.splitlines()
    assert len(lines) == N_TRAIN + N_TEST
    assert lines[0].startswith("train_00001.jpg ")
    assert lines[N_TRAIN - 1].startswith("train_00060.jpg ")
    assert lines[N_TRAIN].startswith("test_0001.jpg ") and lines[-1].startswith("test_0020.jpg ")
    names, labels = raf_layout.read_labels(root / raf_layout.LABEL_FILE, 7)
    assert text == raf_layout.format_labels(names, labels)
    assert labels.min() >= 0 and labels.max() < 7
    for n in names:
        with Image.open(raf_layout.aligned_path(root, n)) as im:
            assert im.format == "JPEG" and im.mode == "RGB" and im.size == (SIZE, SIZE)
    # Nothing but our images in the image folder.
    assert len(list((root / raf_layout.ALIGNED_DIR).iterdir())) == N_TRAIN + N_TEST

    meta = json.loads((root / "synthfer.json").read_text())
    assert meta["class_names"] == list(RAFDB_ORDER)
    assert (meta["seed"], meta["n_train"], meta["n_test"], meta["size"], meta["num_classes"]) == (
        3, N_TRAIN, N_TEST, SIZE, 7)
    assert meta["version"] == gen_mod.GENERATOR_VERSION
    assert sum(meta["class_counts"]["train"].values()) == N_TRAIN
    assert summary["skipped"] is False and summary["mean_js_train"] == meta["mean_js_train"]
    assert not (root / gen_mod.INCOMPLETE_MARKER).exists()


def test_votes_distributions_landmarks(small: tuple[Path, dict]) -> None:
    root, _ = small
    names, labels = raf_layout.read_labels(root / raf_layout.LABEL_FILE, 7)
    header, vnames, votes = _table(root / gen_mod.VOTES_FILE)
    dheader, dnames, dists = _table(root / gen_mod.DISTRIBUTION_FILE)
    assert header == dheader == ["image", *RAFDB_ORDER]
    assert vnames == dnames == names
    assert (votes == votes.round()).all() and (votes.sum(1) == 10).all()
    assert np.allclose(dists.sum(1), 1.0, atol=1e-4) and (dists >= 0).all()
    for v, p, y in zip(votes, dists, labels):
        top = np.flatnonzero(v == v.max())
        assert y in top                       # the label is a majority vote...
        assert y == top[np.argmax(p[top])]    # ...with ties going to the likelier class

    lm = np.load(root / gen_mod.LANDMARK_FILE)
    assert list(lm["names"]) == names
    pts = lm["landmarks"]
    assert pts.dtype == np.float32 and pts.shape == (N_TRAIN + N_TEST, 68, 2)
    assert (pts >= 0).all() and (pts <= SIZE - 1).all()

    # The stored JS divergence is that of one-hot labels against the truth (natural log).
    meta = json.loads((root / "synthfer.json").read_text())
    js = js_divergence(np.eye(7)[labels[:N_TRAIN]], dists[:N_TRAIN]).mean()
    assert 0.0 <= meta["mean_js_train"] <= np.log(2)
    assert meta["mean_js_train"] == pytest.approx(js, abs=1e-4)


def test_rerun_is_noop(small: tuple[Path, dict]) -> None:
    root, _ = small
    files = [root / raf_layout.LABEL_FILE, root / "synthfer.json",
             raf_layout.aligned_path(root, "train_00001.jpg")]
    before = [f.stat().st_mtime_ns for f in files]
    again = generate(root, N_TRAIN, N_TEST, SIZE, seed=3, workers=1, progress=False)
    assert again["skipped"] is True
    assert [f.stat().st_mtime_ns for f in files] == before


def test_deterministic_and_worker_independent(
    small: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = small
    monkeypatch.setattr(gen_mod, "CHUNK", 16)  # several chunks per split, out of order
    other = tmp_path / "b"
    generate(other, N_TRAIN, N_TEST, SIZE, seed=3, workers=2, progress=False)
    for rel in (raf_layout.LABEL_FILE, gen_mod.VOTES_FILE, gen_mod.DISTRIBUTION_FILE):
        assert (other / rel).read_bytes() == (root / rel).read_bytes()
    names, _ = raf_layout.read_labels(root / raf_layout.LABEL_FILE, 7)
    assert np.array_equal(_images(other, names), _images(root, names))
    assert np.array_equal(np.load(other / gen_mod.LANDMARK_FILE)["landmarks"],
                          np.load(root / gen_mod.LANDMARK_FILE)["landmarks"])

    diff = tmp_path / "c"
    generate(diff, N_TRAIN, N_TEST, SIZE, seed=4, workers=1, progress=False)
    assert (diff / gen_mod.VOTES_FILE).read_bytes() != (root / gen_mod.VOTES_FILE).read_bytes()
    assert not np.array_equal(_images(diff, names[:5]), _images(root, names[:5]))


def test_names_widen_for_large_splits() -> None:
    assert gen_mod.sample_names("train", 3) == ["train_00001.jpg", "train_00002.jpg",
                                                "train_00003.jpg"]
    assert gen_mod.sample_name("test", 0, 9999) == "test_0001.jpg"
    assert gen_mod.sample_name("test", 9999, 10000) == "test_10000.jpg"
    assert gen_mod.sample_name("test", 0, 10000) == "test_00001.jpg"
    assert gen_mod.sample_name("train", 0, 100000) == "train_000001.jpg"


def test_train_and_test_streams_differ() -> None:
    a = render_face(np.random.default_rng([0, 0, 0]), SIZE)
    b = render_face(np.random.default_rng([0, 1, 0]), SIZE)
    assert not np.array_equal(a.image, b.image)


def test_regenerate_with_other_params_replaces(tmp_path: Path) -> None:
    root = tmp_path / "d"
    generate(root, 30, 10, SIZE, seed=1, workers=1, progress=False)
    summary = generate(root, 12, 4, SIZE, seed=1, workers=1, progress=False)
    assert summary["skipped"] is False
    names, _ = raf_layout.read_labels(root / raf_layout.LABEL_FILE, 7)
    assert len(names) == 16
    # Images of the larger earlier generation are gone.
    assert len(list((root / raf_layout.ALIGNED_DIR).iterdir())) == 16
    # An interrupted generation (marker left, no synthfer.json) is redone...
    (root / gen_mod.INCOMPLETE_MARKER).touch()
    (root / "synthfer.json").unlink()
    assert generate(root, 12, 4, SIZE, seed=1, workers=1, progress=False)["skipped"] is False
    assert (root / "synthfer.json").is_file()
    # ...but a directory whose label file synthfer did not write is left alone.
    (root / "synthfer.json").unlink()
    with pytest.raises(DatasetError):
        generate(root, 12, 4, SIZE, seed=1, workers=1, progress=False)


def test_refuses_foreign_dataset(tmp_path: Path) -> None:
    (tmp_path / raf_layout.LABEL_FILE).parent.mkdir(parents=True)
    (tmp_path / raf_layout.LABEL_FILE).write_text("train_00001.jpg 1\n")
    with pytest.raises(DatasetError):
        generate(tmp_path, 4, 2, SIZE, workers=1, progress=False)


def test_eight_classes_have_contempt(tmp_path: Path) -> None:
    generate(tmp_path, 120, 0, 32, seed=0, num_classes=8, workers=1, progress=False)
    names, labels = raf_layout.read_labels(tmp_path / raf_layout.LABEL_FILE, 8)
    assert (labels == 7).any()
    header, _, _ = _table(tmp_path / gen_mod.VOTES_FILE)
    assert header[-1] == "contempt" and header[1:8] == list(RAFDB_ORDER)


def test_prior_is_tempered_raf() -> None:
    prior = class_prior(7, 0.5)
    counts = np.array([1290, 281, 717, 4772, 1982, 705, 2524], float)
    assert np.allclose(prior, np.sqrt(counts) / np.sqrt(counts).sum())
    assert np.allclose(class_prior(7, 0.0), 1 / 7)
    assert 0 < class_prior(8)[7] < class_prior(8)[1]  # contempt rarer than fear
    with pytest.raises(ValueError):
        class_names(6)


def test_majority_tie_goes_to_likelier_class() -> None:
    assert majority_label(np.array([5, 5, 0]), np.array([0.3, 0.6, 0.1])) == 1
    assert majority_label(np.array([5, 5, 0]), np.array([0.6, 0.3, 0.1])) == 0


def test_js_divergence_bounds() -> None:
    assert js_divergence(np.eye(3)[[0]], np.eye(3)[[1]])[0] == pytest.approx(np.log(2))
    assert js_divergence(np.eye(3)[[0]], np.eye(3)[[0]])[0] == pytest.approx(0.0)


def _mouth_corner_lift(lm: np.ndarray) -> float:
    """How far the mouth corners sit above the lip centre line (pixels, up positive)."""
    centre = lm[[51, 57, 62, 66], 1].mean()
    return float(centre - lm[[48, 54], 1].mean())


def _eye_opening(lm: np.ndarray) -> float:
    return float((lm[[41, 40, 47, 46], 1] - lm[[37, 38, 43, 44], 1]).mean())


def test_expression_geometry() -> None:
    names = class_names(8)
    onehot = {n: np.eye(8)[i] for i, n in enumerate(names)}
    cfg = SynthConfig(yaw_max_deg=0.0, roll_std_deg=0.0)
    for seed in range(5):
        faces = {n: render_face(np.random.default_rng([seed]), 64, 8, cfg, onehot[n], 1.0)
                 for n in names}
        lm = {n: f.landmarks for n, f in faces.items()}
        assert _mouth_corner_lift(lm["happiness"]) > _mouth_corner_lift(lm["neutral"]) + 1.0
        assert _mouth_corner_lift(lm["sadness"]) < _mouth_corner_lift(lm["neutral"]) - 1.0
        assert _eye_opening(lm["surprise"]) > _eye_opening(lm["neutral"]) + 1.0
        assert _eye_opening(lm["anger"]) < _eye_opening(lm["neutral"]) - 0.5
        assert lm["surprise"][8, 1] > lm["neutral"][8, 1] + 2.0  # the jaw drops
        brows = list(range(17, 27))
        assert lm["surprise"][brows, 1].mean() < lm["neutral"][brows, 1].mean() - 1.5
        assert lm["anger"][brows, 1].mean() > lm["neutral"][brows, 1].mean() + 0.5
        # Contempt raises one corner only.
        d = [lm["contempt"][i, 1] - lm["contempt"][[51, 57], 1].mean()
             - (lm["neutral"][i, 1] - lm["neutral"][[51, 57], 1].mean()) for i in (48, 54)]
        assert min(d) < -1.0 and abs(max(d)) < 0.2
        for f in faces.values():
            assert f.image.shape == (64, 64, 3) and f.image.dtype == np.uint8


def test_blend_deformation_is_weighted_blend() -> None:
    names = class_names(7)
    idn = sample_identity(np.random.default_rng(0))
    h, s = np.eye(7)[names.index("happiness")], np.eye(7)[names.index("sadness")]
    blend = deform(idn, expression_aus(0.7 * h + 0.3 * s, names))
    assert np.allclose(blend, 0.7 * deform(idn, expression_aus(h, names))
                       + 0.3 * deform(idn, expression_aus(s, names)))
    assert expression_aus(np.eye(7)[names.index("neutral")], names).sum() == 0
    assert expression_aus(h, names)[AU_INDEX["corner_pull"]] == 1.0
    assert landmark_depth(blend)[30] > landmark_depth(blend)[36]  # the nose sticks out


def test_render_face_is_deterministic() -> None:
    a = render_face(np.random.default_rng([1, 0, 7]), SIZE)
    b = render_face(np.random.default_rng([1, 0, 7]), SIZE)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.landmarks, b.landmarks)
    assert a.distribution.sum() == pytest.approx(1.0) and a.votes.sum() == 10
