"""The dataset contract: what a dataset loader provides, built-in or plugin (``register_dataset``).

A loader is a class, never instantiated, with:

* ``default_profile``: the recipe profile its runs use unless ``--profile`` says
  otherwise (``paper`` for the real datasets, ``cpu-face-56`` for synthfer);
* optionally ``default_val_split``: the fraction of the noisy training labels
  held out as a noisy validation split unless ``--val-split`` says otherwise
  (:mod:`fer_bench.datasets.split`): 0.1 on synthfer, 0 on the real datasets,
  where the papers train on the whole training set (0 when absent);
* ``default_root()``: where it looks without ``--root`` (below
  :func:`fer_bench.paths.data_root`);
* ``load(root=None, progress=True, **options)``: the :class:`~fer_bench.datasets.base.FERDataset`,
  images decoded once into the uint8 cache. Every keyword option is a loader
  option (``--data KEY=VALUE``); :func:`fer_bench.registry.create_dataset` checks
  them by name against this signature before calling it;
* optionally ``scan(root, problems, **layout_options)``: the layout read into a
  :class:`~fer_bench.datasets.index.DatasetIndex` without decoding images, which
  ``fer-bench data check`` needs (:class:`ScannableDatasetLoader`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Optional, Protocol, runtime_checkable

from .base import FERDataset, Problems
from .index import DatasetIndex


@runtime_checkable
class DatasetLoader(Protocol):
    """What every registered dataset provides."""

    default_profile: ClassVar[str]

    @staticmethod
    def default_root() -> Path: ...

    @classmethod
    def load(cls, root: Optional[Path] = None, progress: bool = True, **options: Any) -> FERDataset: ...


@runtime_checkable
class ScannableDatasetLoader(DatasetLoader, Protocol):
    """A dataset whose on-disk layout ``fer-bench data check`` can validate."""

    @classmethod
    def scan(cls, root: Path, problems: Problems, **layout_options: Any) -> DatasetIndex: ...


def default_val_split(loader: Any) -> float:
    """The dataset's default noisy-validation fraction (a loader without one: no split)."""
    return float(getattr(loader, "default_val_split", 0.0))
