"""Runs: a run's identity, its directory and its record, with one owner each.

* :mod:`.identity`: :class:`RunId`, the one place that names a run directory and parses a name back;
* :mod:`.directory`: :class:`RunDir`, a run's files, state (new / partial / finished / different config),
  lock and saved records;
* :mod:`.record`: :class:`RunRecord`, what reports, sweeps, plots and ``eval`` read, and
  :func:`collect` / :func:`to_frame` to gather them;
* :mod:`.model`: loading a run's trained model (:func:`load_trained`) and re-evaluating it;
* :mod:`.export`: writing its inference network out (``fer-bench export``).
"""

from .directory import RunDir, RunError, config_hash
from .identity import RunId, parse_setting, setting_name, variant_name
from .lock import LockUnavailable, RunBusy, run_lock
from .record import RunRecord, collect, to_frame

__all__ = ["LockUnavailable", "RunBusy", "RunDir", "RunError", "RunId", "RunRecord", "collect",
           "config_hash", "parse_setting", "run_lock", "setting_name", "to_frame", "variant_name"]
