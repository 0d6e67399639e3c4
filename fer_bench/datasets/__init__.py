"""Datasets: the common record type, the image cache, and the built-in loaders.

Importing this package registers the built-in datasets.
"""

from .base import DatasetError, FERDataset, LabelFormat, Split
from .synthfer import loader as _synthfer  # noqa: F401  (registers "synthfer")
from . import affectnet as _affectnet  # noqa: F401  (registers "affectnet")
from . import ferplus as _ferplus  # noqa: F401  (registers "ferplus")
from . import rafdb as _rafdb  # noqa: F401  (registers "rafdb")

__all__ = ["DatasetError", "FERDataset", "LabelFormat", "Split"]
