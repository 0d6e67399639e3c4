"""``fer-bench report``: one static HTML site of a results tree, to browse offline or publish as it is.

The site is ``index.html`` and its assets (one stylesheet, one script of our own, the report's data as a
script, and one small script per run that its panel loads when opened): no CDN and no server, so it
opens from ``file://`` with the network off. Its parts, one topic per module:

* :mod:`.tree`: the results tree read once: the finished runs (:func:`fer_bench.runs.collect`), the
  unfinished ones, the unreadable ones (named), and the grid of settings x methods x seeds with its holes;
* :mod:`.overview`: the accuracy tables of :mod:`fer_bench.report.tables` (every statistic and metric,
  the same cells as ``fer-bench table``) and the user study's, as HTML;
* :mod:`.figures`: the numbers behind the figures (accuracy against noise rate, memorisation),
  from :mod:`fer_bench.report.plots`' ``*_data`` functions, with the runs behind each point;
* :mod:`.rundata`: one run's panel: configuration against its method's default recipe
  (:mod:`.defaults`), environment, noise record, per-epoch curves (every ``metrics.csv`` column),
  confusion matrix and the command that reproduces it (:mod:`.reproduce`);
* :mod:`.site`: the templates and assets written out atomically, with progress; :func:`build_report`.

Names and colours come from :mod:`fer_bench.report.style`, as in every figure.
"""

from .site import Report, build_report

__all__ = ["Report", "build_report"]
