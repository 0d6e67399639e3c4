"""``fer-bench bench``: training throughput, peak memory and input-pipeline speed, in one process.

Three measurements on a RAF-DB-shaped synthfer set (12,271 training images by
default, rendered once at the requested size into ``<data root>/synthfer-bench-<size>``
as RAF-DB-layout JPEGs, and decoded once into the uint8 cache):

1. **Methods** (``part = training``, ``pipeline = batched``): every requested
   method trains through the engine's own :func:`~fer_bench.engine.run.train_one_epoch`
   with its official recipe under the chosen profile (``paper``: ResNet-18)
   at ``--size`` and ``--batch`` (:mod:`.training`). The training set is cut
   to the timed epoch's batches; one short epoch of warm-up steps comes first.
2. **Baseline fed by the reference pipeline** (``pipeline = reference``): the
   same engine loop and Baseline step, fed by
   :class:`~.training.ReferenceBatches`, the batches of :mod:`.reference_pipeline`
   (PIL decode of every JPEG per item, torchvision transforms, a DataLoader
   with ``--workers`` processes) instead of the engine's
   :class:`~fer_bench.engine.run.CachedBatches`. The loader walks the index
   batches the engine would draw.
3. **Input pipelines alone** (``part = pipeline``, :mod:`.pipeline`): augmented
   batches per second with no model, :class:`~fer_bench.augment.BatchAugment`
   on the device from the uint8 cache (running ``max(1, workers)`` torch
   threads) against the reference pipeline with ``workers`` worker processes,
   on the same index batches and with every op switched on
   (:data:`~.pipeline.PIPELINE_AUGMENT`).

Every measurement is timed the same way (:mod:`.timing`): an untimed warm-up
epoch of ``--warmup`` steps, then one timed epoch whose steady state (after
what the reference loader's workers can have prefetched) gives images/s over
``--steps``, and the ratios come from it. Peak memory (:mod:`.probes`) is the
GPU's allocated peak, or on a CPU the main process's peak RSS above its size at
the start, labelled as RSS wherever it is shown. With ``--trace``, each
training measurement also records the operators with the most self time.

Resolved settings, every row and the environment go to a JSON file, by default
``<results root>/bench/bench-<device>-<size>.json`` (``-pipeline`` added for
``--pipeline-only``), written atomically. This module holds the bench's
settings, its run and its printed report; ``fer-bench bench --contention``
is :mod:`.contention`.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from tqdm import tqdm

from ..atomic import write_json
from ..augment import AugmentConfig
from ..datasets.base import FERDataset
from ..engine.environment import environment_record
from ..engine.recipe import PROFILES
from ..engine.build import augment_config
from ..engine.spec import RunSpec, resolve, select_device
from ..paths import data_root, results_root
from ..registry import METHODS, create_dataset, list_methods
from .pipeline import PIPELINE_AUGMENT, index_batches, measure_batched_pipeline, measure_reference_pipeline
from .probes import default_workers, device_info, device_slug
from .timing import Timing
from .training import measure_training

RAFDB_N_TRAIN = 12271   # RAF-DB's basic training split
BENCH_N_TEST = 256      # never timed; the loader wants a test split
DEFAULT_STEPS = 30
DEFAULT_WARMUP = 5
MIN_SIZE = 16
REFERENCE_METHOD = "baseline"

NOTES = [
    "reference = the peer repos' pipeline: each image decoded from its JPEG file with PIL per item, "
    "torchvision per-image transforms, DataLoader worker processes, collate (pinned memory on a GPU)",
    "batched = fer-bench's pipeline: BatchAugment on the device over the uint8 cache, which is decoded "
    "once per dataset (that one-off decode is not timed)",
    "both pipelines get the same index batches; each measurement is an untimed warm-up epoch, then a timed "
    "epoch whose loader starts with it (the reference loader's workers start at each epoch, as in the peers' "
    "runs); images/s is that epoch's steady state: its steps after the first workers x prefetch_factor ones "
    "(what the workers can have prefetched), a whole number of rounds of the workers; 'epoch images/s' is "
    "the whole timed epoch, start-up and prefetching included",
]


def bench_root(size: int, n_train: int) -> Path:
    """Where the bench dataset of this size lives (reused when complete)."""
    suffix = "" if n_train == RAFDB_N_TRAIN else f"-n{n_train}"
    return data_root() / f"synthfer-bench-{size}{suffix}"


def prepare_dataset(size: int, n_train: int, progress: bool) -> FERDataset:
    """Render (first time only) and load the RAF-DB-shaped synthfer set at ``size`` px."""
    from ..datasets.synthfer.generate import generate

    root = bench_root(size, n_train)
    generate(root, n_train=n_train, n_test=min(BENCH_N_TEST, n_train), size=size, seed=0, progress=progress)
    return create_dataset("synthfer", root, progress)


# --- the whole bench ---------------------------------------------------------------

def check_settings(methods: Sequence[str], size: int, batch: int, steps: int, warmup: int, workers: int,
                   n_train: int) -> None:
    """Refuse settings a bench cannot run with, naming the option."""
    if size < MIN_SIZE:
        raise ValueError(f"--size {size} is too small (minimum {MIN_SIZE})")
    if batch < 2:
        raise ValueError(f"--batch {batch} is too small (batch normalisation needs at least 2)")
    if steps < 1:
        raise ValueError(f"--steps must be at least 1, got {steps}")
    if warmup < 0:
        raise ValueError(f"--warmup must be >= 0, got {warmup}")
    if workers < 0:
        raise ValueError(f"--workers must be >= 0, got {workers}")
    if n_train < batch:
        raise ValueError(f"--n-train {n_train} is smaller than one batch ({batch})")
    if not methods:
        raise ValueError("no methods to measure")
    for name in methods:
        METHODS.get(name)  # an unknown name raises, listing the known ones


def _ratios(rows: list[dict[str, Any]]) -> None:
    refs = {row["part"]: row["images_per_s"] for row in rows if row["pipeline"] == "reference"}
    for row in rows:
        ref = refs.get(row["part"])
        row["ratio_to_reference"] = row["images_per_s"] / ref if ref else None


def _speedups(rows: list[dict[str, Any]]) -> dict[str, float]:
    """batched / reference images/s: of the pipelines alone, and of the Baseline's training step."""
    out = {}
    cases = (("input_pipeline", "pipeline", None), ("baseline_training", "training", REFERENCE_METHOD))
    for key, part, method in cases:
        rate = {r["pipeline"]: r["images_per_s"] for r in rows if r["part"] == part and r["method"] == method}
        if "batched" in rate and "reference" in rate:
            out[key] = rate["batched"] / rate["reference"]
    return out


def run_bench(
    methods: Optional[Sequence[str]] = None,
    size: int = 224,
    batch: int = 128,
    device: str = "auto",
    n_train: int = RAFDB_N_TRAIN,
    workers: Optional[int] = None,
    steps: int = DEFAULT_STEPS,
    warmup: int = DEFAULT_WARMUP,
    out: Optional[str | Path] = None,
    profile: str = "paper",
    pipeline_only: bool = False,
    trace: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure, print nothing, write the JSON record to ``out`` and return it (see the module docstring)."""
    methods = list(methods) if methods else list_methods()
    workers = default_workers() if workers is None else workers
    check_settings(methods, size, batch, steps, warmup, workers, n_train)
    timing = Timing.of(steps, warmup, workers)
    overrides = {"image_size": size, "batch_size": batch}
    runs = [] if pipeline_only else [
        resolve(RunSpec(method=m, profile=profile, overrides=overrides, device=device))
        for m in [REFERENCE_METHOD, *methods]]
    if profile not in PROFILES:  # resolve checks it too, but not under --pipeline-only
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    dev = select_device(device)

    dataset = prepare_dataset(size, n_train, progress)
    pipe_cfg = AugmentConfig(image_size=size, **PIPELINE_AUGMENT)
    batches = index_batches(len(dataset.train), batch, warmup + timing.epoch)
    window, drain = timing.window, timing.drain  # every measurement times the same steps
    tasks: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("pipeline: batched", lambda: measure_batched_pipeline(
            dataset, pipe_cfg, dev, batches, warmup, max(1, workers), progress, drain)),
        ("pipeline: reference", lambda: measure_reference_pipeline(
            dataset, pipe_cfg, dev, batches, warmup, workers, progress, drain)),
    ]
    if runs:
        tasks.append((f"training: {REFERENCE_METHOD} on reference", lambda: measure_training(
            runs[0], dataset, dev, window, warmup, workers, progress, trace, drain)))
        for run in runs[1:]:
            tasks.append((f"training: {run.spec.method}", lambda run=run: measure_training(
                run, dataset, dev, window, warmup, None, progress, trace, drain)))

    rows = []
    with tqdm(tasks, desc="bench", unit="measurement", disable=not progress) as bar:
        for name, task in bar:
            bar.set_postfix_str(name)
            rows.append(task())
    _ratios(rows)

    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    environment = environment_record(dev)
    result: dict[str, Any] = {
        "created": created,
        "device": device_info(environment),
        "environment": environment,
        "dataset": {"name": "synthfer (RAF-DB-shaped)", "root": str(dataset.root), "n_train": len(dataset.train),
                    "n_test": len(dataset.test), "image_size": size, "files": "RAF-DB layout JPEG"},
        "settings": {"methods": [] if pipeline_only else methods, "size": size, "batch": batch, "steps": steps,
                     "warmup": warmup, "workers": workers, "profile": profile, "pipeline_only": pipeline_only,
                     "trace": trace},
        "timing": timing.record(steps),
        "pipeline_augment": asdict(pipe_cfg),
        "training_augment_baseline": None if pipeline_only else asdict(augment_config(runs[0].recipe)),
        "notes": NOTES,
        "rows": rows,
        "speedup": _speedups(rows),
    }
    path = Path(out) if out else default_out(dev, size, pipeline_only)
    path.parent.mkdir(parents=True, exist_ok=True)
    result["out"] = str(path)
    write_json(path, result)
    return result


def default_out(device: torch.device, size: int, pipeline_only: bool) -> Path:
    name = f"bench-{device_slug(device)}-{size}{'-pipeline' if pipeline_only else ''}.json"
    return results_root() / "bench" / name


TRACE_PRINTED = 6  # operators printed per traced measurement


def format_table(result: dict[str, Any]) -> str:
    """The printed report: a header naming device and settings, then one line per measurement."""
    d, s, ds, t = result["device"], result["settings"], result["dataset"], result["timing"]
    where = f"{d['gpu']} (cuda)" if "gpu" in d else f"CPU {d['cpu']}"
    lines = [
        f"fer-bench bench on {where}, {d['cpu_count']} cores, {d['torch_threads']} torch threads, torch {d['torch']}",
        f"data: {ds['name']}, {ds['n_train']} training images at {ds['image_size']} px ({ds['files']}, {ds['root']})",
        f"batch {s['batch']}, {s['workers']} DataLoader workers" + (
            "" if s["pipeline_only"] else f", profile {s['profile']}"),
        f"timing: {t['warmup_steps']} warm-up steps, then an epoch of {t['epoch_steps']} steps: images/s over its "
        f"last {t['window_steps']} (steady state), after {t['drain_steps']} that {s['workers']} workers x "
        f"{t['prefetch_factor']} can have prefetched",
    ]
    lines += [f"  * {note}" for note in result["notes"]]
    pa = result["pipeline_augment"]
    lines.append(
        f"  * pipeline ops: flip {pa['flip']}, random-resized crop scale {tuple(pa['crop_scale'])}, colour jitter "
        f"{pa['brightness']}/{pa['contrast']}/{pa['saturation']}, erasing p {pa['erase']} scale "
        f"{tuple(pa['erase_scale'])}, output {pa['image_size']} px")
    mem_kind = result["rows"][0]["memory_kind"]
    mem_head = "peak GPU MiB" if mem_kind == "cuda_max_allocated" else "+peak RSS MiB"
    header = (f"{'part':<9} {'method':<10} {'pipeline':<10} {'images/s':>9} {'batches/s':>9} {mem_head:>14} "
              f"{'vs reference':>12} {'epoch images/s':>14}")
    lines += ["", header, "-" * len(header)]
    for row in result["rows"]:
        ratio = row["ratio_to_reference"]
        lines.append(
            f"{row['part']:<9} {row['method'] or '-':<10} {row['pipeline']:<10} {row['images_per_s']:>9.1f} "
            f"{row['batches_per_s']:>9.2f} {row['peak_memory_mib']:>14.0f} "
            f"{(f'{ratio:.2f}x' if ratio else '-'):>12} {row['epoch_images_per_s']:>14.1f}")
    speedup = result.get("speedup", {})
    if speedup:
        lines.append("speed-up of the batched pipeline over the reference: " + ", ".join(
            f"{k.replace('_', ' ')} {v:.2f}x" for k, v in speedup.items()))
    for row in result["rows"]:
        if "trace" in row:
            t = row["trace"]
            lines.append(f"where the time goes, {row['method']} on {row['pipeline']} ({t['clock']}, one profiled "
                         f"epoch, {t['total_ms']:.0f} ms): " + ", ".join(
                             f"{op['name']} {100 * op['share']:.0f}%" for op in t["operators"][:TRACE_PRINTED]))
    if mem_kind != "cuda_max_allocated":
        lines.append("(+peak RSS: how far the main process's resident set peaked above its size at the start "
                     "of the measurement (getrusage); DataLoader workers not included)")
    lines.append(f"written to {result['out']}")
    return "\n".join(lines)
