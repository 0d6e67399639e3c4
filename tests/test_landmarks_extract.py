"""Landmark extraction: dlib on a real face, the cache, resuming, and attaching it to a dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fer_bench.cli import main
from fer_bench.landmarks.extract import landmark_file
from fer_bench.registry import DATASETS, create_dataset

dlib = pytest.importorskip("dlib")
skimage_data = pytest.importorskip("skimage.data")

FACE_BOX = (175, 76, 265, 166)  # the astronaut's face in skimage's 512x512 image


def _backend():
    from fer_bench.landmarks.backends import DlibBackend

    return DlibBackend()


def test_dlib_on_a_real_face_puts_68_points_where_the_spec_says() -> None:
    points = _backend()(skimage_data.astronaut(), FACE_BOX)
    assert points.shape == (68, 2)
    x0, y0, x1, y1 = FACE_BOX
    margin = 15
    assert (points[:, 0] > x0 - margin).all() and (points[:, 0] < x1 + margin).all()
    assert (points[:, 1] > y0 - margin).all() and (points[:, 1] < y1 + margin).all()
    right_eye, left_eye = points[36:42].mean(0), points[42:48].mean(0)
    assert np.linalg.norm(right_eye - (203, 101)) < 6 and np.linalg.norm(left_eye - (246, 104)) < 6
    assert points[48:68, 1].mean() > points[27:36, 1].mean() > points[36:48, 1].mean()  # eyes, nose, mouth


def _raf_tree_of_astronaut_crops(root: Path, n_train: int = 6, n_test: int = 2) -> None:
    face = Image.fromarray(skimage_data.astronaut()).crop((160, 60, 280, 180)).resize((100, 100), Image.BICUBIC)
    (root / "EmoLabel").mkdir(parents=True)
    (root / "Image/aligned").mkdir(parents=True)
    lines = []
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(1, n + 1):
            name = f"{split}_{i:05d}.jpg" if split == "train" else f"{split}_{i:04d}.jpg"
            img = face.transpose(Image.FLIP_LEFT_RIGHT) if i % 2 else face
            img.save(root / "Image/aligned" / name.replace(".jpg", "_aligned.jpg"), quality=95)
            lines.append(f"{name} {1 + i % 7}")
    (root / "EmoLabel/list_patition_label.txt").write_text("\n".join(lines) + "\n")


def test_extract_command_writes_the_cache_and_training_reads_it(tmp_path: Path) -> None:
    root = tmp_path / "rafdb"
    _raf_tree_of_astronaut_crops(root)
    res = CliRunner().invoke(main, ["landmarks", "extract", "--dataset", "rafdb", "--root", str(root)])
    assert res.exit_code == 0, res.output
    assert "train: 6 faces, 0 failed" in res.output and "test: 2 faces, 0 failed" in res.output
    saved = np.load(landmark_file(root, "train", "dlib"))
    assert saved["landmarks"].shape == (6, 68, 2) and saved["ok"].all()
    # Mirrored crops give mirrored landmarks: the nose tip (30) moves to 99 - x.
    nose = saved["landmarks"][:, 30, 0]
    assert abs(nose[0] - (99 - nose[1])) < 3

    ds = create_dataset("rafdb", root, progress=False)
    assert ds.train.landmarks is not None and np.allclose(ds.train.landmarks, saved["landmarks"])
    assert ds.info["landmarks"]["train"]["backend"] == "dlib"


def test_extraction_resumes_from_its_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fer_bench.landmarks.extract as extract

    root = tmp_path / "rafdb"
    _raf_tree_of_astronaut_crops(root, n_train=5)
    ds = DATASETS.get("rafdb").load(root, progress=False)
    monkeypatch.setattr(extract, "CHUNK", 2)
    fits: list[int] = []

    class Interrupted(Exception):
        pass

    class Flaky:
        name, version = "dlib", "test"
        fail_at: int | None = 4

        def __call__(self, image, box):
            fits.append(1)
            if len(fits) == self.fail_at:
                raise Interrupted
            return _backend()(image, box)

    flaky = Flaky()
    with pytest.raises(Interrupted):
        extract.extract_split(ds, "train", flaky, progress=False)
    assert landmark_file(root, "train", "dlib").with_name("train_68_dlib.partial.npz").is_file()
    fits.clear()
    flaky.fail_at = None
    record = extract.extract_split(ds, "train", flaky, progress=False)
    assert record["n"] == 5 and record["failures"] == 0
    assert len(fits) == 3  # resumed after the 2 faces saved before the interruption
    assert not landmark_file(root, "train", "dlib").with_name("train_68_dlib.partial.npz").exists()


def test_missing_fan_weights_say_where_to_put_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from fer_bench.landmarks.backends import LandmarkError, create_backend

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(LandmarkError, match=r"put 2DFAN4-11f355bf06\.pth\.tar at .*hub/checkpoints"):
        create_backend("fan")
