"""The built-in methods; importing this package registers them."""

from . import baseline, coteaching, dividemix, eac, elr, lanet, nla, rul, scn  # noqa: F401  (each registers itself)
from .base import Batch, Method, MethodContext, StepOutput
from .hparams import HParam

__all__ = ["Batch", "HParam", "Method", "MethodContext", "StepOutput"]
