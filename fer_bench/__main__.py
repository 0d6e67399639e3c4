"""``python -m fer_bench``: the ``fer-bench`` command, for launchers that start a module
(``torchrun --nproc-per-node N -m fer_bench run ...``)."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="fer-bench")
