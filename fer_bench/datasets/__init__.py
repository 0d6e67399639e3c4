"""Datasets: the common record type, the image cache, and the built-in loaders.

Importing this package registers the built-in datasets.
"""

from .base import DatasetError, FERDataset, LabelFormat, Split
from .synthfer import loader as _synthfer  # noqa: F401  (registers "synthfer")

__all__ = ["DatasetError", "FERDataset", "LabelFormat", "Split"]
