"""Time the image cache on a RAF-DB-sized tree: first load (decoding) vs second (cache).

Run by hand, not by the test suite::

    python benchmarks/cache_speed.py --root /tmp/rafdb-bench

It generates 12,271 + 3,068 random-noise 100x100 JPEGs in RAF-DB's layout under
``--root`` (once; never inside the repository: the tree is large and fake), removes
the tree's image cache, loads it twice with the ``rafdb`` loader and prints both
times and their ratio. The target is a second load at least 10x faster.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.fixtures_real

from fer_bench.datasets.rafdb import RAFDB  # noqa: E402
from tests.fixtures_real import make_rafdb_full  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/rafdb-bench"))
    args = parser.parse_args()
    root: Path = args.root.resolve()
    repo = Path(__file__).resolve().parents[1]
    if root == repo or repo in root.parents:
        sys.exit(f"--root {root} is inside the repository; use a directory outside it")
    if not (root / "EmoLabel").is_dir():
        t = time.perf_counter()
        make_rafdb_full(root)
        print(f"generated {root} in {time.perf_counter() - t:.1f} s")
    shutil.rmtree(root / ".cache", ignore_errors=True)

    t = time.perf_counter()
    first = RAFDB.load(root, progress=False)
    t_first = time.perf_counter() - t
    t = time.perf_counter()
    second = RAFDB.load(root, progress=False)
    t_second = time.perf_counter() - t

    assert len(first.train) == len(second.train) == 12271 and len(first.test) == len(second.test) == 3068
    assert (first.test.images[-1] == second.test.images[-1]).all()
    print(f"first load (decoding): {t_first:.2f} s")
    print(f"second load (cache):   {t_second:.3f} s")
    print(f"ratio: {t_first / t_second:.0f}x (target: at least 10x)")


if __name__ == "__main__":
    main()
