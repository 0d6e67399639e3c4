"""``fer-bench run --nproc N``: the same command under torchrun (``python -m torch.distributed.run``).

Nothing here launches processes itself: torchrun starts and watches the ranks (one node,
``--standalone`` rendezvous); for several nodes call torchrun directly, see
docs/how-to/gpus.md. The arguments are checked here first, so that a batch that does not divide
among N processes is a clear error (exit 2) before any process starts.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from .. import interrupts
from .distributed import World
from .spec import check_world, resolve


def without_nproc(argv: list[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """The torchrun command line that runs ``fer-bench <argv>`` (``--nproc`` removed) on ``nproc`` processes."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "fer_bench", *without_nproc(argv)]


def torchrun_run(spec: Any, nproc: int, argv: list[str]) -> int:
    """Check ``spec`` for ``nproc`` processes, then run ``argv`` under torchrun; its exit status
    (an interrupted one's: 130 for Ctrl-C, 143 for SIGTERM)."""
    check_world(resolve(spec).recipe, World(0, nproc))
    with subprocess.Popen(torchrun_command(nproc, argv)) as proc:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached torchrun as well (the terminal signals the whole process group); a SIGTERM
            # was for this process alone: pass it on. Either way torchrun stops the ranks, which save and
            # say where (rank 0), so wait for it rather than kill it and leave them running.
            if interrupts.received() is not None:
                proc.terminate()
            proc.wait()
            return interrupts.exit_status()
