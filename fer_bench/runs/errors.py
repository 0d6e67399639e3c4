"""The error of a run that cannot start, continue or be read: one class for the engine, the record and the CLI."""

from __future__ import annotations


class RunError(ValueError):
    """A run that cannot start, continue or be read; the message says why and what to do."""
