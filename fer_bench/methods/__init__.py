"""The built-in methods; importing this package registers them."""

from . import baseline, eac, lanet, rul, scn  # noqa: F401  (each registers itself)
from .base import Batch, Method, MethodContext, StepOutput

__all__ = ["Batch", "Method", "MethodContext", "StepOutput"]
