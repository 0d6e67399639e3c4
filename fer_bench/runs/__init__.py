"""Runs: a run's identity, its directory and its record, with one owner each; no torch.

* :mod:`.identity`: :class:`RunId`, the one place that names a run directory and parses a name back;
* :mod:`.config`: a run's ``config.json``: its schema, :func:`migrate` to today's, :func:`config_hash`;
* :mod:`.directory`: :class:`RunDir`, a run's files, state (new / partial / finished / older recipe /
  different config) and saved records;
* :mod:`.record`: :class:`RunRecord`, what reports, sweeps, plots and ``eval`` read, and
  :func:`collect` / :func:`to_frame` to gather them;
* :mod:`.lock`: one process at a time per run directory;
* :mod:`.errors`: :class:`RunError`, which the engine raises too.

Loading a run's trained model and exporting it belong to the engine
(:mod:`fer_bench.engine.trained`, :mod:`fer_bench.engine.export`).
"""

from .config import SCHEMA_VERSION, config_hash, migrate
from .directory import RunDir
from .errors import RunError
from .identity import RunId, parse_setting, setting_name, variant_name
from .lock import LockUnavailable, RunBusy, run_lock
from .record import RunRecord, collect, to_frame, unpredicted_classes, whole_classes_flagged

__all__ = ["LockUnavailable", "RunBusy", "RunDir", "RunError", "RunId", "RunRecord", "SCHEMA_VERSION", "collect",
           "config_hash", "migrate", "parse_setting", "run_lock", "setting_name", "to_frame", "unpredicted_classes",
           "variant_name", "whole_classes_flagged"]
