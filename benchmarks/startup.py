"""Start-up time of the ``fer-bench`` commands that train nothing: help, listings, and input
refused before any work. Each command runs in fresh processes; the median wall time is printed
with whether the process imported torch.

Run by hand, not by the test suite::

    python benchmarks/startup.py --repeat 5                          # this checkout
    python benchmarks/startup.py --repeat 5 --code OLD_CHECKOUT      # another one, to compare

``--code DIR`` puts DIR first on ``PYTHONPATH``, so two versions of the package can be timed
side by side, interleaved, on the same (possibly busy) machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = [
    ["--help"],
    ["run", "--help"],
    ["methods", "list"],
    ["noise", "list"],
    ["run", "--noise", "sym", "--rate", "1.0"],
    ["run", "--seed", "-1"],
]

# Runs the command line in-process and reports on stderr whether torch was imported.
_PROBE = ("import sys\nfrom fer_bench.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
          "print('torch-imported' if 'torch' in sys.modules else 'no-torch', file=sys.stderr)")


def time_command(args: list[str], code: Path) -> tuple[float, bool]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")]))
    start = time.perf_counter()
    # Run from the file system root: `python -c` puts the working directory first on sys.path,
    # where a checkout's fer_bench would shadow the one asked for.
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], env=env, capture_output=True, text=True,
                          cwd=Path("/").anchor or None)
    seconds = time.perf_counter() - start
    return seconds, done.stderr.strip().endswith("torch-imported")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--code", action="append", type=Path,
                        help="A checkout whose fer_bench to time (repeatable; default: this one).")
    opts = parser.parse_args()
    codes = opts.code or [Path(__file__).resolve().parent.parent]
    times: dict[tuple[int, int], list[float]] = {}
    torch_seen: dict[tuple[int, int], bool] = {}
    for _ in range(opts.repeat):  # interleaved, so a busy spell hits every variant alike
        for c, code in enumerate(codes):
            for i, args in enumerate(COMMANDS):
                seconds, imported = time_command(args, code)
                times.setdefault((c, i), []).append(seconds)
                torch_seen[(c, i)] = imported
    for c, code in enumerate(codes):
        print(f"{code}:")
        for i, args in enumerate(COMMANDS):
            runs = times[(c, i)]
            print(f"  fer-bench {' '.join(args):<40} median {statistics.median(runs):6.2f} s "
                  f"(min {min(runs):.2f}, max {max(runs):.2f}, n={len(runs)})  "
                  f"{'imports torch' if torch_seen[(c, i)] else 'no torch'}")


if __name__ == "__main__":
    main()
