"""Label noise as data: noise models, flip sampling, noise records and confusion files.

* :mod:`.models` - the registered noise models (``sym``, ``asym``, ``confusion``,
  ``none``), each returning a flip-target matrix F (rows = true class, zero
  diagonal, rows summing to 1);
* :mod:`.annotator` - the ``annotator`` model, which has no such matrix: it draws
  each flipped label from the image's own annotator votes;
* :mod:`.inject` - :func:`inject_noise`, which samples flips (Bernoulli or exact
  count) from a noise seed of its own into a copy of the clean labels;
* :mod:`.record` - :class:`NoiseRecord`, the realised statistics saved with every
  noisy label set, also computable for imported label files via :func:`noise_record`;
* :mod:`.confusion` - class-named confusion-matrix CSV files.

Importing this package registers the built-in noise models.
"""

from . import annotator, models  # noqa: F401  (register the built-in noise models)
from .confusion import read_confusion_csv, write_confusion_csv
from .inject import inject_noise, largest_remainder
from .models import ASYM_MAP, asym_map, check_flip_targets, flip_targets
from .record import NoiseRecord, noise_record

__all__ = [
    "ASYM_MAP",
    "NoiseRecord",
    "asym_map",
    "check_flip_targets",
    "flip_targets",
    "inject_noise",
    "largest_remainder",
    "noise_record",
    "read_confusion_csv",
    "write_confusion_csv",
]
