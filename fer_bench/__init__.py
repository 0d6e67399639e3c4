"""fer-bench: a benchmark suite for facial expression recognition under label noise."""

__version__ = "0.1.0"

from . import threads as _threads

# OpenMP reads its settings once, when torch loads it: the thread policy goes first (and imports no torch).
try:
    _threads.apply_environment()
except _threads.ThreadPolicyError:  # reported with exit code 2 when a command or run starts
    pass
