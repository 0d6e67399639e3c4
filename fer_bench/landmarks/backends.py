"""Landmark extraction backends: dlib's 68-point predictor (offline) and face-alignment's FAN.

Both take an RGB uint8 image and the face box the dataset provides (the whole
aligned crop for RAF-DB and FERPlus), and return 68 (x, y) points in the iBUG
order. A face detector runs only as a fallback, when the caller asks for it.

* ``dlib`` needs ``dlib-bin`` and the 68-point model. The model file is found,
  in order, at ``--predictor FILE``, inside the ``face_recognition_models``
  package (located with importlib, *without importing it*: its ``__init__``
  needs ``pkg_resources``, which recent setuptools no longer ships), or at
  Debian's ``libdlib-data`` path. Install with ``pip install "fer-bench[dlib]"``.
  The model was trained on iBUG 300-W, whose licence excludes commercial use.
* ``fan`` needs face-alignment's 2D-FAN weights in the torch hub cache
  (nothing is downloaded here); the box is passed in, so no detector weights
  are needed either. ``compile=False``, because compiling costs minutes on a CPU.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Optional, Protocol

import numpy as np

DEBIAN_PREDICTOR = Path("/usr/share/dlib/shape_predictor_68_face_landmarks.dat")
FAN_WEIGHTS = "2DFAN4-11f355bf06.pth.tar"

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


class LandmarkError(ValueError):
    """A backend that cannot run here; the message says what to install or put where."""


class Backend(Protocol):
    name: str
    version: str

    def __call__(self, image: np.ndarray, box: Box) -> Optional[np.ndarray]:
        """``(68, 2)`` float32 landmarks, or None when no face could be fitted."""


def find_dlib_predictor(explicit: Optional[Path] = None) -> Path:
    if explicit is not None:
        if not Path(explicit).is_file():
            raise LandmarkError(f"dlib predictor not found: {explicit}")
        return Path(explicit)
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / "models" / "shape_predictor_68_face_landmarks.dat"
            if candidate.is_file():
                return candidate
    if DEBIAN_PREDICTOR.is_file():
        return DEBIAN_PREDICTOR
    raise LandmarkError(
        "dlib's 68-point model was not found: pip install \"fer-bench[dlib]\" (face-recognition-models), "
        f"apt-get install libdlib-data ({DEBIAN_PREDICTOR}), or pass --predictor FILE"
    )


class DlibBackend:
    """dlib's regression-tree 68-point shape predictor on a given face box."""

    name = "dlib"

    def __init__(self, predictor: Optional[Path] = None, detect: bool = False) -> None:
        try:
            import dlib
        except ImportError:
            raise LandmarkError('the dlib backend needs dlib: pip install "fer-bench[dlib]"') from None
        self._dlib = dlib
        self.predictor_path = find_dlib_predictor(predictor)
        self._predict = dlib.shape_predictor(str(self.predictor_path))
        self._detector = dlib.get_frontal_face_detector() if detect else None
        self.version = f"dlib {dlib.__version__}, {self.predictor_path.name}"

    def detect(self, image: np.ndarray) -> Optional[Box]:
        """The largest face the HOG detector finds, or None."""
        faces = self._detector(image, 1) if self._detector is not None else []
        if not len(faces):
            return None
        f = max(faces, key=lambda r: r.width() * r.height())
        return (f.left(), f.top(), f.right(), f.bottom())

    def __call__(self, image: np.ndarray, box: Box) -> Optional[np.ndarray]:
        if self._detector is not None:
            box = self.detect(image) or box
        rect = self._dlib.rectangle(*(int(round(v)) for v in box))
        shape = self._predict(np.ascontiguousarray(image), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


class FanBackend:
    """face-alignment's 2D-FAN on a given face box (weights from the torch hub cache)."""

    name = "fan"

    def __init__(self, device: str = "cpu") -> None:
        import torch

        weights = Path(torch.hub.get_dir()) / "checkpoints" / FAN_WEIGHTS
        if not weights.is_file():
            raise LandmarkError(f"face-alignment's FAN weights are not in the torch hub cache: put "
                                f"{FAN_WEIGHTS} at {weights} (nothing is downloaded), or use --backend dlib")
        import face_alignment

        self._fa = face_alignment.FaceAlignment(
            face_alignment.LandmarksType.TWO_D, device=device, face_detector="folder",
            compile=False, flip_input=False,
        )
        self.version = f"face-alignment {face_alignment.__version__}, {FAN_WEIGHTS}"

    def __call__(self, image: np.ndarray, box: Box) -> Optional[np.ndarray]:
        found = self._fa.get_landmarks_from_image(image, detected_faces=[list(box)])
        return None if not found else np.asarray(found[0][:, :2], dtype=np.float32)


def create_backend(name: str, predictor: Optional[Path] = None, device: str = "cpu",
                   detect: bool = False) -> Backend:
    if name == "dlib":
        return DlibBackend(predictor, detect=detect)
    if name == "fan":
        return FanBackend(device)
    raise LandmarkError(f"unknown landmark backend {name!r}; known: dlib, fan")
