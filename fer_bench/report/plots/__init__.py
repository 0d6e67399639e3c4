"""Figures from finished runs: accuracy curves, grid searches, galleries and matrices.

Every figure comes in two steps: a ``*_data`` function reads run directories
into plain numbers (and raises :class:`ValueError` with a one-line message
naming the path or method when there is nothing to draw), and a ``*_figure``
function turns those numbers into a :class:`matplotlib.figure.Figure`. Figures
are built on the non-interactive Agg canvas without pyplot, so nothing here
opens a window or keeps figures alive in a global registry. :func:`save` writes
a figure as PNG and PDF beside each other. One module per figure, and
:mod:`.canvas` for what they share (style, panels, legends, saving, reading
runs); their public names are all importable from here.

The figures:

* :func:`curves_figure` (:mod:`.curves`): accuracy vs noise rate per method, one panel per noise
  type (sym, asym, ...), the clean runs as rate 0 of every panel, mean line
  with a ±std band over seeds.
* :func:`memorisation_figure` (:mod:`.memorisation`): per noise setting, the
  flipped training images' memorised and corrected shares over the epochs.
* :func:`mechanisms_figure` (:mod:`.mechanisms`): per noise setting, each method's mechanism
  diagnostics (the ``mech_*`` columns: its label memory, selections, uncertainty...) over the epochs.
* :func:`grid_figure` (:mod:`.grid`): a method's grid search (LA-Net's supplementary Fig. 1):
  accuracy vs each hyper-parameter that varies among the method's runs, one
  line per noise setting; the run without the override is the default point.
* :func:`gallery_figure` (:mod:`.gallery`): training images beside their one-hot training label,
  the human votes and LA-Net's learned label distribution (supplementary Fig. 2).
* :func:`confusion_figure` and :func:`transition_figure` (:mod:`.matrices`): a
  run's final confusion matrix and its realised noise transition matrix as heatmaps.
* :func:`ambiguity_figure` (:mod:`.ambiguity`): the realised flip rate by how
  much the annotators agreed on an image.

Artists carry ``gid`` tags (panel and line names, ``votes:<image>`` ...) so
that tests and scripts can find the numbers a figure shows.
"""

from .ambiguity import ambiguity_figure
from .canvas import FIGURE_FORMATS, METRIC_TEXT, STAT_TEXT, STYLE, figure_paths, load_runs, run_title, save
from .curves import curves_data, curves_figure
from .gallery import (AMBIGUOUS_BELOW, DISTRIBUTION_FILE, GalleryData, gallery_data, gallery_figure, human_distribution,
                      select_images)
from .grid import grid_data, grid_figure
from .matrices import confusion_data, confusion_figure, transition_data, transition_figure, transition_title
from .mechanisms import mechanisms_data, mechanisms_figure
from .memorisation import MEMORISATION_LINES, memorisation_data, memorisation_figure

__all__ = [
    "AMBIGUOUS_BELOW", "DISTRIBUTION_FILE", "FIGURE_FORMATS", "METRIC_TEXT", "MEMORISATION_LINES", "STAT_TEXT",
    "STYLE", "GalleryData", "ambiguity_figure", "confusion_data", "confusion_figure", "curves_data",
    "curves_figure", "figure_paths", "gallery_data", "gallery_figure", "grid_data", "grid_figure",
    "human_distribution", "load_runs", "mechanisms_data", "mechanisms_figure", "memorisation_data", "memorisation_figure", "run_title",
    "save", "select_images", "transition_data", "transition_figure", "transition_title",
]
