"""``fer-bench bench --contention K``: training throughput on an idle machine and beside K busy processes.

The same training measurement as ``fer-bench bench`` (:func:`.training.measure_training`,
the engine's own loop) runs twice per method and round: once with the machine
as it is, and once while K competing processes each keep one core busy, so the
two figures come from one run, side by side. The competitors are either pure
Python busy loops (``spin``) or single-threaded torch matmul loops (``torch``,
a competitor that also fights for memory bandwidth and caches, as another
training run does). They are started, and given a moment to be seen by this
process's thread governor (:mod:`fer_bench.threads`), before the warm-up
steps; they are stopped before the next idle measurement.

What the thread policy does is decided when the process starts, from
``FER_BENCH_THREADS``; running the bench under ``FER_BENCH_THREADS=off``
(torch's own defaults) and under the default gives the before/after
comparison (``results/bench/contention.sh``). The JSON goes to
``<results root>/bench/contention-<device>-<size>-<policy>.json`` unless ``out``
is given, written atomically.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from .. import threads
from ..atomic import write_json
from ..engine.environment import environment_record
from ..engine.spec import RunSpec, resolve, select_device
from ..paths import results_root
from ..registry import list_methods
from .bench import DEFAULT_STEPS, DEFAULT_WARMUP, RAFDB_N_TRAIN, check_settings, prepare_dataset
from .probes import device_info, device_slug
from .timing import Timing
from .training import measure_training

# Each competitor keeps one core busy until it is stopped; it says "ready" once it is looping.
COMPETITORS = {
    "spin": "print('ready', flush=True)\nwhile True:\n    pass\n",
    "torch": ("import torch\ntorch.set_num_threads(1)\na = torch.randn(256, 256)\nprint('ready', flush=True)\n"
              "while True:\n    a @ a\n"),
}
# After the competitors start (or stop), the bench waits this long before it trains, so that the
# governor's first load reading sees the machine as it now is: a run's steady state, not a transition.
SETTLE_S = threads.INTERVAL_S * 1.5


@contextlib.contextmanager
def competing(k: int, kind: str) -> Iterator[list[subprocess.Popen]]:
    """``k`` running competitor processes of ``kind`` for the duration of the block."""
    if kind not in COMPETITORS:
        raise ValueError(f"unknown competitor {kind!r}; known: {', '.join(COMPETITORS)}")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # one busy core each
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(k):
            procs.append(subprocess.Popen([sys.executable, "-c", COMPETITORS[kind]], env=env,
                                          stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True))
        for proc in procs:
            if proc.stdout is None or proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a {kind} competitor did not start (exit status {proc.wait()})")
        time.sleep(SETTLE_S if procs else 0)
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()
        time.sleep(SETTLE_S if procs else 0)


def policy_slug(record: dict[str, Any]) -> str:
    """``auto``, ``auto1`` (auto with a cap below the cores), ``fixed2``, ``off``: for file names."""
    mode, cap = record["mode"], record["max_threads"]
    return mode if mode == "off" or (mode == "auto" and cap >= record["usable_cores"]) else f"{mode}{cap}"


def run_contention(
    methods: Optional[Sequence[str]] = None,
    contention: int = 1,
    competitor: str = "spin",
    repeat: int = 1,
    size: int = 48,
    batch: int = 64,
    device: str = "cpu",
    n_train: int = RAFDB_N_TRAIN,
    steps: int = DEFAULT_STEPS,
    warmup: int = DEFAULT_WARMUP,
    profile: str = "cpu",
    out: Optional[str | Path] = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure every method idle and beside ``contention`` competitors, ``repeat`` rounds; write the JSON."""
    methods = list(methods) if methods else list_methods()
    check_settings(methods, size, batch, steps, warmup, 0, n_train)
    if contention < 1:
        raise ValueError(f"--contention must be at least 1 competing process, got {contention}")
    if repeat < 1:
        raise ValueError(f"--repeat must be at least 1, got {repeat}")
    if competitor not in COMPETITORS:
        raise ValueError(f"unknown competitor {competitor!r}; known: {', '.join(COMPETITORS)}")
    overrides = {"image_size": size, "batch_size": batch}
    runs = [resolve(RunSpec(method=m, profile=profile, overrides=overrides)) for m in methods]
    dev = select_device(device)
    dataset = prepare_dataset(size, n_train, progress)

    rows = []
    for round_ in range(repeat):
        for run in runs:
            for k in (0, contention):
                with competing(k, competitor):
                    row = measure_training(run, dataset, dev, steps, warmup, None, progress=False)
                row.update(round=round_, competitors=k, load_avg_1min=_load_avg())
                rows.append(row)
                if progress:
                    print(f"round {round_ + 1}/{repeat} {row['method']:<9} {k} competitors: "
                          f"{row['images_per_s']:.1f} images/s", file=sys.stderr, flush=True)

    policy = threads.record()
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    environment = environment_record(dev)
    result: dict[str, Any] = {
        "created": created,
        "device": device_info(environment),
        "environment": environment,
        "thread_policy": policy,
        "settings": {"methods": methods, "contention": contention, "competitor": competitor, "repeat": repeat,
                     "size": size, "batch": batch, "steps": steps, "warmup": warmup, "profile": profile,
                     "n_train": len(dataset.train)},
        "timing": Timing(warmup=warmup, drain=0, window=steps).record(steps),  # no prefetching loader to drain
        "rows": rows,
        "summary": summarise(rows, contention),
    }
    path = Path(out) if out else results_root() / "bench" / (
        f"contention-{device_slug(dev)}-{size}-{policy_slug(policy)}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    result["out"] = str(path)
    write_json(path, result)
    return result


def _load_avg() -> Optional[float]:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def summarise(rows: Sequence[dict[str, Any]], contention: int) -> dict[str, dict[str, Any]]:
    """Per method: the median images/s idle and contended over the rounds, and their ratio."""
    out: dict[str, dict[str, Any]] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        idle = statistics.median(r["images_per_s"] for r in rows if r["method"] == method and not r["competitors"])
        busy = statistics.median(r["images_per_s"] for r in rows if r["method"] == method and r["competitors"])
        out[method] = {"idle_images_per_s": idle, "contended_images_per_s": busy, "ratio": busy / idle,
                       "competitors": contention}
    return out


def format_contention(result: dict[str, Any]) -> str:
    """The printed report: device, policy and settings, one line per measurement, then the medians."""
    d, s, p = result["device"], result["settings"], result["thread_policy"]
    lines = [
        f"fer-bench bench --contention {s['contention']} on CPU {d['cpu']}, {d['cpu_count']} cores, "
        f"torch {d['torch']} ({p['openmp_runtime'] or 'OpenMP runtime unknown'})",
        f"thread policy: {p['mode']} (from {p['source']}), up to {p['max_threads'] or 'torch default'} threads; "
        f"OMP_WAIT_POLICY={p['environment']['OMP_WAIT_POLICY'] or '-'}, "
        f"GOMP_SPINCOUNT={p['environment']['GOMP_SPINCOUNT'] or '-'}",
        f"training: {', '.join(s['methods'])}, profile {s['profile']}, {s['size']} px, batch {s['batch']}, "
        f"{s['steps']} timed steps after {s['warmup']} warm-up; competitors: {s['contention']} x {s['competitor']}, "
        f"{s['repeat']} round(s)",
        "",
        f"{'round':>5} {'method':<10} {'competitors':>11} {'images/s':>9} {'threads':>8} {'load 1min':>9}",
    ]
    for row in result["rows"]:
        t = row.get("torch_threads")
        lines.append(f"{row['round'] + 1:>5} {row['method']:<10} {row['competitors']:>11} "
                     f"{row['images_per_s']:>9.1f} {(f'{t:.2f}' if t is not None else '-'):>8} "
                     f"{(row['load_avg_1min'] if row['load_avg_1min'] is not None else float('nan')):>9.2f}")
    lines.append("")
    for method, m in result["summary"].items():
        lines.append(f"{method}: idle {m['idle_images_per_s']:.1f} images/s, with {m['competitors']} busy "
                     f"competitor(s) {m['contended_images_per_s']:.1f} images/s ({m['ratio']:.0%} of idle; median "
                     f"over rounds)")
    lines.append(f"written to {result['out']}")
    return "\n".join(lines)
