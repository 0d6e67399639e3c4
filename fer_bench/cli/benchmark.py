"""``fer-bench bench``: time training, memory and the input pipeline (:mod:`fer_bench.perf`).

Also, with ``--contention K``, training idle and beside K busy competing processes.
"""

from __future__ import annotations

from typing import Any, Optional

import click

from .common import UserError, plugin_option


@click.command()
@plugin_option
@click.option("--methods", default=None, metavar="A,B,...", help="Methods to time (default: every registered one).")
@click.option("--size", default=224, type=int, show_default=True, help="Image and input size in pixels.")
@click.option("--batch", default=128, type=int, show_default=True, help="Batch size of every measurement.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda[:N]")
@click.option("--steps", default=30, type=int, show_default=True,
              help="Steady-state steps (batches) timed per measurement: the last ones of a timed epoch whose "
                   "first --workers x 2 (what the reference pipeline's workers can prefetch) are not timed; "
                   "rounded up to a multiple of --workers (with --contention: the whole timed epoch).")
@click.option("--warmup", default=5, type=int, show_default=True,
              help="Untimed steps, in an epoch of their own, before each measurement.")
@click.option("--workers", default=None, type=int,
              help="DataLoader workers of the reference pipeline, and torch threads of the batched one "
                   "in the pipeline comparison (default: the usable cores, at most 8).")
@click.option("--n-train", default=12271, type=int, show_default=True,
              help="Training images of the synthetic RAF-DB-shaped set (generated once, then reused).")
@click.option("--profile", default="paper", show_default=True, help="paper (ResNet-18) | cpu (reduced width).")
@click.option("--pipeline-only", is_flag=True, help="Only compare the input pipelines (no model).")
@click.option("--trace", is_flag=True,
              help="Profile one more epoch of each training measurement (torch.profiler) and report the "
                   "operators that take the most time.")
@click.option("--contention", default=None, type=int, metavar="K",
              help="Instead: time training idle and beside K busy competing processes, side by side "
                   "(JSON default: results/bench/contention-<device>-<size>-<thread policy>.json).")
@click.option("--competitor", default="spin", show_default=True, type=click.Choice(["spin", "torch"]),
              help="With --contention: a Python busy loop, or a 1-thread torch matmul loop.")
@click.option("--repeat", default=1, type=int, show_default=True,
              help="With --contention: rounds of idle + contended measurements (medians are reported).")
@click.option("--out", type=click.Path(), help="JSON file (default: results/bench/bench-<device>-<size>[-pipeline].json).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def bench(methods: Optional[str], quiet: bool, contention: Optional[int], competitor: str, repeat: int,
          **kw: Any) -> None:
    """Time training, memory and the input pipeline: batched on-device vs the peers' per-image one."""
    if kw["out"]:
        from ..outputs import check_out

        check_out(kw["out"])
    names = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    if contention is not None:
        from ..perf.contention import format_contention, run_contention

        if kw.pop("pipeline_only") or kw.pop("trace"):
            raise UserError("--contention times training only; drop --pipeline-only and --trace")
        kw.pop("workers")
        result = run_contention(names, contention, competitor, repeat, progress=not quiet, **kw)
        click.echo(format_contention(result))
        return
    from ..perf.bench import format_table, run_bench

    result = run_bench(names, progress=not quiet, **kw)
    click.echo(format_table(result))

