"""fer-bench: a benchmark suite for facial expression recognition under label noise."""

__version__ = "0.1.0"
