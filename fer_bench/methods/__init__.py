"""The built-in methods; importing this package registers them."""

from . import baseline  # noqa: F401  (registers "baseline")
from .base import Batch, Method, MethodContext, StepOutput

__all__ = ["Batch", "Method", "MethodContext", "StepOutput"]
