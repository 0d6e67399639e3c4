"""The ``fer-bench`` command line.

Every command that resolves a method, dataset or noise model takes
``--plugin module.path`` (repeatable) to register out-of-tree code first. Bad
input (an unknown name, a rate outside [0, 1), a malformed label file, a
missing image...) ends with exit code 2 and one line naming the culprit; set
``FER_BENCH_DEBUG=1`` to see the traceback instead.

:data:`main` is the ``fer-bench`` group (the console script, ``python -m fer_bench`` and
``python -m fer_bench.cli``). Its commands, by the module that defines them:

* :mod:`.training`: ``run``, ``pretrain``, ``sweep``, ``eval``, ``export`` (and :func:`run_summary`,
  what ``run`` says about a finished run).
* :mod:`.report`: ``table``, ``userstudy``, ``plot ...``, ``report``.
* :mod:`.inputs`: ``methods ...``, ``data ...``, ``noise ...``, ``landmarks ...``.
* :mod:`.benchmark`: ``bench``.

:mod:`.common` holds what they share: the error-answering :class:`Group`, :class:`UserError`,
:data:`USER_ERRORS`, ``--plugin`` and ``--config``. The command modules import no torch (nor
pandas) at import time, so ``fer-bench --help`` and the listings stay quick; each command
imports what it needs when it runs.
"""

from __future__ import annotations

import click

from .. import threads
from .common import USER_ERRORS, Group, UserError, config_option, plugin_option
from .benchmark import bench
from .inputs import data, landmarks, methods, noise
from .report import plot, report, table, userstudy
from .training import eval_, export, pretrain, run, run_summary, sweep, training_options

__all__ = ["main", "run_summary", "Group", "UserError", "USER_ERRORS", "plugin_option", "config_option",
           "training_options"]


@click.group(cls=Group)
@click.version_option(package_name="fer-bench")
def main() -> None:
    """fer-bench: facial expression recognition under label noise."""
    threads.apply_environment()  # a malformed FER_BENCH_THREADS is a user error (exit 2), before any command


for _command in (run, pretrain, sweep, eval_, export, table, userstudy, report, methods, data, noise, plot, landmarks,
                 bench):
    main.add_command(_command)
del _command
