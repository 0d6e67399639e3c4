"""``python -m fer_bench.cli``: the ``fer-bench`` command, as ``python -m fer_bench`` is."""

import sys

from . import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
