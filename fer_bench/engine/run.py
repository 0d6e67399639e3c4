"""One run, start to finish: ``main(spec)`` -> train_one_epoch / evaluate -> result.json.

The loop knows no method by name: a :class:`~fer_bench.methods.Method` supplies
the model, the loss and optional hooks; this module supplies data, noise, the
noisy validation split (:mod:`fer_bench.datasets.split`), augmentation,
optimisation, evaluation on the clean test set, checkpoints and the run record,
in the run's directory (:class:`fer_bench.runs.RunDir`, named by
:class:`fer_bench.runs.RunId`).

Re-running the same command resumes from ``checkpoint.pt`` and, on CPU, ends
with the same numbers as an uninterrupted run: every epoch's shuffling,
augmentation and in-model randomness come from generators seeded by
(seed, epoch), never from state carried across epochs.
"""

from __future__ import annotations

import json
import math
import pickle
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sized

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .. import threads
from . import distributed
from ..atomic import remove_stale_temporaries, save_torch, write_csv, write_json, write_text
from ..datasets.base import FERDataset
from ..datasets.protocol import default_val_split
from ..datasets.split import ValidationSplit, split_file_text, training_view
from ..methods.base import Batch, Method, MethodContext, StepOutput
from .distributed import SINGLE, World
from ..models.pretrained import NORMALISATIONS, load_pretrained
from ..noise.models import required_rate
from ..noise.files import generate_train_labels, import_train_labels, label_file_text
from ..paths import results_root
from ..registry import DATASETS, METHODS, NOISE_MODELS, create_dataset
from ..runs import RunDir, RunId, config_hash
from ..runs.directory import DATA_FINGERPRINT
from ..tracking import check_tracker, open_tracker
from . import recipe as recipes
from ..augment import AugmentConfig, BatchAugment
from .checks import RunError, check_noise_rate, check_seeds
from .environment import environment_record
from .metrics import (accuracy, confusion_matrix, mean_class_accuracy, memorisation_shares, memorisation_subset,
                      relabel_restored, summarise_epochs)
from .optim import build_optimizer, build_scheduler
from .samplers import SAMPLERS, epoch_order


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says how far the saved progress goes."""


def load_checkpoint(path: Path, device: torch.device, remedy: str) -> dict[str, Any]:
    """``torch.load`` a run's checkpoint; a truncated or foreign file is a :class:`RunError`
    that names it and says what to do (``remedy``)."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message advises weights_only=False, which would run whatever a planted file holds.
        raise RunError(f"{path} cannot be read (damaged, or holding objects other than tensors and plain data, "
                       f"which are not unpickled since that could run code); {remedy}") from None
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, ImportError) as exc:
        # torch reports a cut-off zip as "PytorchStreamReader failed reading zip archive ..."
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RunError(f"{path} cannot be read (truncated or damaged: {reason}); {remedy}") from None


@dataclass
class RunSpec:
    """Everything a user chooses for one run (what ``fer-bench run`` takes)."""

    method: str = "baseline"
    dataset: str = "synthfer"
    root: Optional[str] = None
    data_options: dict[str, Any] = field(default_factory=dict)
    noise: str = "none"
    rate: Optional[float] = None  # required by every noise model but none (and a label file)
    exact: bool = False
    confusion: Optional[str] = None
    noise_file: Optional[str] = None
    noise_seed: Optional[int] = None
    seed: int = 0
    protocol: str = "official"
    profile: Optional[str] = None
    overrides: dict[str, Any] = field(default_factory=dict)
    trust_pickle: bool = False
    device: str = "auto"
    compile: bool = False  # torch.compile the backbones; a speed choice, not part of the run's identity
    sync_bn: bool = False  # SyncBatchNorm across the ranks of a multi-process run (no effect in one process)
    processes: int = 1  # the ranks that train it (torchrun's world size); more than one names the run apart
    log: Optional[str] = None  # tensorboard | wandb: a copy of the metrics, not part of the run's identity
    out: Optional[str] = None
    force: bool = False
    progress: bool = True


@dataclass
class ResolvedRun:
    spec: RunSpec
    method_cls: type[Method]
    dataset_cls: Any
    profile: str
    recipe: dict[str, Any]
    hparams: dict[str, Any]
    noise_seed: int

    @property
    def id(self) -> RunId:
        s = self.spec
        return RunId.build(
            method=s.method, dataset=s.dataset, data_options=s.data_options, noise=s.noise, rate=s.rate,
            exact=s.exact, noise_file=s.noise_file, protocol=s.protocol, profile=self.profile,
            default_profile=self.default_profile, overrides=s.overrides, seed=s.seed, noise_seed=self.noise_seed,
            processes=s.processes, sync_bn=s.sync_bn)

    @property
    def default_profile(self) -> str:
        return getattr(self.dataset_cls, "default_profile", "paper")

    @property
    def run_dir(self) -> Path:
        root = Path(self.spec.out) if self.spec.out else results_root() / "runs"
        return root / self.id.name()


def resolve(spec: RunSpec) -> ResolvedRun:
    """Check every name and number of a spec before anything is loaded or written."""
    # Names are case-insensitive; the registered spelling is the one recorded and in the run directory.
    spec = replace(spec, method=METHODS.canonical(spec.method), dataset=DATASETS.canonical(spec.dataset),
                   noise=spec.noise if spec.noise_file else NOISE_MODELS.canonical(spec.noise))
    method_cls = METHODS.get(spec.method)
    dataset_cls = DATASETS.get(spec.dataset)
    if not spec.noise_file:
        NOISE_MODELS.get(spec.noise)
    if spec.rate is None:
        try:
            spec = replace(spec, rate=0.0 if spec.noise_file else required_rate(spec.noise, spec.rate))
        except ValueError as exc:
            raise RunError(str(exc)) from None
    check_seeds(spec.seed, spec.noise_seed)
    check_noise_rate(spec.rate)
    if spec.noise == "none" and spec.rate > 0 and not spec.noise_file:
        raise RunError(f"--noise none with --rate {spec.rate}: choose a noise model (sym, asym, ...)")
    if spec.noise_file and not Path(spec.noise_file).is_file():
        raise RunError(f"noise file not found: {spec.noise_file}")
    if spec.confusion and not Path(spec.confusion).is_file():
        raise RunError(f"confusion matrix file not found: {spec.confusion}")
    if spec.rate == 0 and not spec.noise_file:
        spec = replace(spec, noise="none", exact=False)  # every rate-0 model yields the clean labels
    profile = spec.profile or getattr(dataset_cls, "default_profile", "paper")
    recipe, hparams = recipes.resolve(method_cls.recipe, method_cls.hparams, spec.protocol, profile, spec.overrides,
                                      {"val_split": default_val_split(dataset_cls)})
    # The checked values, so that `--set alpha=0` and `--grid alpha=0.0` name one run directory and one config.
    spec = replace(spec, overrides={k: recipe[k] if k in recipe else hparams[k] for k in spec.overrides})
    try:
        check_tracker(spec.log)
    except ValueError as exc:
        raise RunError(str(exc)) from None
    if recipe["sampler"] not in SAMPLERS:
        raise RunError(f"unknown sampler {recipe['sampler']!r}; known: {', '.join(SAMPLERS)}")
    noise_seed = spec.seed if spec.noise_seed is None else spec.noise_seed
    return ResolvedRun(spec, method_cls, dataset_cls, profile, recipe, hparams, noise_seed)


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RunError(f"--device {name}: no CUDA device is available")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise RunError(f"unknown device {name!r}; use auto, cpu or cuda[:N]")
    return torch.device(name)


def epoch_seed(seed: int, epoch: int, stream: int, rank: Optional[int] = None) -> int:
    """A seed per (run seed, epoch, purpose), and per rank in a multi-process run, so a resumed epoch replays
    exactly."""
    key = [seed, epoch, stream] if rank is None else [seed, epoch, stream, rank]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def augment_config(recipe: dict[str, Any]) -> AugmentConfig:
    # A run recorded before a key existed ran with its default (no noise op) and ImageNet statistics.
    recipe = {**recipes.DEFAULTS, "normalize": "imagenet", **recipe}
    mean, std = NORMALISATIONS[recipe["normalize"]]
    return AugmentConfig(
        image_size=recipe["image_size"], flip=recipe["aug_flip"],
        crop_scale=tuple(recipe["aug_crop_scale"]), crop_ratio=tuple(recipe["aug_crop_ratio"]),
        brightness=recipe["aug_brightness"], contrast=recipe["aug_contrast"],
        saturation=recipe["aug_saturation"], erase=recipe["aug_erase"],
        erase_scale=tuple(recipe["aug_erase_scale"]), noise=recipe["aug_noise"],
        noise_var=recipe["aug_noise_var"], flip_or_noise=recipe["aug_flip_or_noise"], mean=mean, std=std,
    )


def config_record(run: ResolvedRun, noise_sha: Optional[str], data_fingerprint: Optional[str] = None
                  ) -> dict[str, Any]:
    """The run's config.json. ``root`` is absolute, so that reports find the data from any directory;
    None means the dataset's default place under the data root (:func:`fer_bench.paths.data_root`).
    ``data_fingerprint`` (:meth:`FERDataset.fingerprint`, known once the data is loaded) says what the
    images were; it is not part of the config's hash (see :data:`fer_bench.runs.directory.DATA_FINGERPRINT`)."""
    s = run.spec
    return {
        "method": s.method.lower(), "dataset": s.dataset.lower(),
        "root": str(Path(s.root).resolve()) if s.root else None,
        "default_profile": run.default_profile,
        "data_options": s.data_options, "seed": s.seed,
        "noise": {"model": "file" if s.noise_file else s.noise, "rate": s.rate, "exact": s.exact,
                  "noise_seed": None if s.noise_file else run.noise_seed, "confusion": s.confusion,
                  "file": s.noise_file, "label_file_sha256": noise_sha},
        "protocol": s.protocol, "profile": run.profile, "overrides": s.overrides,
        "recipe": run.recipe, "hparams": run.hparams,
        # only when several processes train it, so a single-process config is unchanged
        **({"processes": s.processes, "sync_bn": s.sync_bn} if s.processes > 1 else {}),
        **({DATA_FINGERPRINT: data_fingerprint} if data_fingerprint else {}),
    }


def make_train_labels(run: ResolvedRun, dataset: FERDataset):
    s = run.spec
    if s.noise_file:
        return import_train_labels(dataset, Path(s.noise_file))
    return generate_train_labels(
        dataset, s.noise, s.rate, run.noise_seed, exact=s.exact,
        confusion_csv=Path(s.confusion) if s.confusion else None,
    )


def build_context(method_cls: type[Method], recipe: dict[str, Any], dataset: FERDataset,
                  train_labels: np.ndarray, device: torch.device, training: bool = True,
                  world: World = SINGLE) -> MethodContext:
    """The method's view of the run; ``training=False`` (evaluation) never needs landmarks."""
    landmarks = None
    if method_cls.needs_landmarks and training:
        if dataset.train.landmarks is None:
            raise RunError(
                f"method {method_cls.name or method_cls.__name__} needs landmarks, and dataset "
                f"{dataset.name} has none; run `fer-bench landmarks extract --dataset {dataset.name}` first"
            )
        landmarks = torch.from_numpy(np.asarray(dataset.train.landmarks, dtype=np.float32)).to(device)
    return MethodContext(
        num_classes=dataset.num_classes, class_names=dataset.class_names,
        train_labels=torch.as_tensor(train_labels, dtype=torch.long, device=device).clone(),
        device=device, recipe=recipe, epochs=recipe["epochs"], train_landmarks=landmarks,
        train_names=list(dataset.train.names), world=world,
    )


def steps_per_epoch(n: int, recipe: dict[str, Any]) -> int:
    """Optimiser steps in an epoch of ``n`` samples (a final partial batch is dropped, see epoch_batches)."""
    return max(1, n // recipe["batch_size"])


def load_backbone_weights(method: Method, recipe: dict[str, Any], trust_pickle: bool) -> list[dict[str, Any]]:
    """Load the recipe's pretrained weights into the method's backbones; their records."""
    if recipe["pretrained"] in (None, "", "none"):
        return []
    backbones = method.backbones()
    if not backbones:
        raise RunError(f"method {type(method).__name__} declares no backbone for --set pretrained=...")
    return [load_pretrained(b, recipe["pretrained"], recipe["arch"], trust_pickle) for b in backbones]


def images_on(device: torch.device, images: np.ndarray) -> torch.Tensor:
    """The uint8 cache as a tensor; on a GPU the whole cache moves once when it fits."""
    t = torch.from_numpy(np.ascontiguousarray(images))
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return t.to(device) if t.numel() < free // 4 else t.pin_memory()
    return t


def epoch_batches(method: Method, ctx: MethodContext, epoch: int, gen: torch.Generator) -> list[torch.Tensor]:
    """The epoch's (global) index batches; a final partial batch is dropped unless it is the only one
    (a batch of one breaks batch normalisation, and LA-Net's official loader drops it too)."""
    order = method.epoch_indices(epoch, gen)
    if order is None:
        order = epoch_order(ctx.recipe["sampler"], ctx.train_labels.cpu(), epoch, ctx.epochs, gen)
    bs = ctx.recipe["batch_size"]
    batches = list(order.split(bs))
    if len(batches) > 1 and len(batches[-1]) < bs:
        batches.pop()
    return batches


class CachedBatches:
    """The engine's batch source: an epoch's index batches gathered from the uint8 image cache and
    augmented on the device.

    Iterating it seeds the epoch (torch's global generator for in-model randomness, and the
    generator of the order and the augmentation) from ``(seed, epoch)``, so a resumed epoch
    replays exactly; it is lazy, so the method's ``on_epoch_start`` runs before any of that.

    In a multi-process run every rank cuts the same global batches and trains its shard of each
    (:mod:`.distributed`); in-model randomness and augmentation are seeded from (seed, epoch, rank).

    ``rows`` (on ``images``' device) maps a training index to its row of ``images`` when the method trains
    on some of the cache's rows (a noisy validation split holds the others out), so that no copy of the
    cache is made; without it, training index i is row i.
    """

    def __init__(self, method: Method, images: torch.Tensor, augment: BatchAugment, seed: int, epoch: int,
                 rows: Optional[torch.Tensor] = None) -> None:
        self.method, self.images, self.augment, self.seed, self.epoch = method, images, augment, seed, epoch
        self.rows = rows

    def __len__(self) -> int:
        ctx = self.method.ctx
        return steps_per_epoch(ctx.num_train, ctx.recipe)

    def __iter__(self) -> Iterator[Batch]:
        ctx, device, images = self.method.ctx, self.method.ctx.device, self.images
        world = ctx.world
        rank = world.rank if world.distributed else None
        torch.manual_seed(epoch_seed(self.seed, self.epoch, 1, rank))
        gen = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch, 0))
        batches = epoch_batches(self.method, ctx, self.epoch, gen)
        if world.distributed:
            # equal shards (the collectives need equal shapes), then this rank's own augmentation stream
            batches = [b[:len(b) - len(b) % world.size][world.rank::world.size] for b in batches]
            gen = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch, 2, world.rank))
        for idx in batches:
            # A pinned source is copied by DMA while the host goes on; a pageable one is staged by the host first.
            idx_dev = idx.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else idx
            src = idx_dev if images.device == device else idx
            raw = images[src if self.rows is None else self.rows[src]].to(device, non_blocking=True)
            landmarks = ctx.train_landmarks[idx_dev] if ctx.train_landmarks is not None else None
            aug = self.augment(raw, gen, landmarks=landmarks, noiseless=self.method.needs_noiseless)
            yield Batch(images=aug.images, labels=ctx.train_labels[idx_dev], indices=idx_dev, raw=raw,
                        gen=gen, flipped=aug.flipped, landmarks=aug.landmarks, noiseless=aug.noiseless)


class TrainingStep(nn.Module):
    """``method.training_step`` as a module whose parameters are the method's model, so that
    DistributedDataParallel can wrap the whole step (its gradient hooks see every parameter the
    step uses, through whichever sub-modules the method calls)."""

    def __init__(self, method: Method) -> None:
        super().__init__()
        self.model = method.model
        self.method = [method]  # a list: not a sub-module

    def forward(self, batch: Batch) -> tuple[torch.Tensor, StepOutput]:
        out = self.method[0].training_step(batch)
        return out.loss, out


def train_one_epoch(method: Method, batches: Iterable[Batch], optimizer: Any, scheduler: Any, amp: bool,
                    epoch: int, progress: bool = False, step: Optional[nn.Module] = None) -> dict[str, float]:
    """One epoch of ``method`` over ``batches`` (any iterable of :class:`Batch`, e.g. :class:`CachedBatches`);
    ``step``: the method's step wrapped for several processes (:func:`.distributed.wrap`)."""
    device, world = method.ctx.device, method.ctx.world
    method.model.train()
    method.on_epoch_start(epoch)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen_logits = n_seen = 0
    log_sums: dict[str, torch.Tensor] = {}
    governor = threads.governor() if device.type == "cpu" else None
    start = time.perf_counter()
    total = len(batches) if isinstance(batches, Sized) else None
    for batch in tqdm(batches, total=total, desc=f"epoch {epoch + 1}/{method.ctx.epochs}", leave=False,
                      disable=not progress):
        if governor is not None:
            governor.tick()
        if device.type == "cuda":
            batch.images = batch.images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = step(batch)[1] if step is not None else method.training_step(batch)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        scheduler.step()
        distributed.sync_rows(world, method.shared_rows(), batch.indices)
        b = len(batch.labels)
        n_seen += b
        loss_sum += out.loss.detach().float() * b
        if out.logits is not None:
            correct += (out.logits.detach().argmax(1) == batch.labels).sum()
            seen_logits += b
        for key, value in out.logs.items():
            log_sums[key] = log_sums.get(key, 0) + value.detach().float() * b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    if world.distributed:  # the epoch's numbers over every rank's samples
        n_seen, seen_logits = world.size * n_seen, world.size * seen_logits
        loss_sum, correct, log_sums = distributed.sum_over_ranks(world, loss_sum, correct, log_sums)
    loss = float(loss_sum) / n_seen
    if not math.isfinite(loss):
        raise RunError(f"training loss became {loss} in epoch {epoch + 1}; lower the lr (--set lr=...)")
    row = {"train_loss": loss, "train_acc_noisy": float(correct) / seen_logits if seen_logits else float("nan"),
           "train_seconds": seconds, "images_per_s": n_seen / seconds}
    if governor is not None:
        row["torch_threads"] = governor.take_mean()
    row.update({key: float(total) / n_seen for key, total in log_sums.items()})
    row.update(method.on_epoch_end(epoch))
    return row


@torch.no_grad()
def predict_logits(method: Method, augment: BatchAugment, images: torch.Tensor, device: torch.device,
                   batch_size: int, amp: bool) -> torch.Tensor:
    """The method's logits (float32, on the CPU) for un-augmented images."""
    method.model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = augment.eval(images[start:start + batch_size].to(device, non_blocking=True))
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out.append(method.predict(x).float().cpu())
    return torch.cat(out)


def evaluate(method: Method, augment: BatchAugment, images: torch.Tensor, labels: np.ndarray,
             num_classes: int, device: torch.device, batch_size: int, amp: bool) -> np.ndarray:
    """Confusion matrix of the method's predictions on a (clean) test split."""
    pred = predict_logits(method, augment, images, device, batch_size, amp).argmax(1).numpy()
    return confusion_matrix(np.asarray(labels, dtype=np.int64), pred, num_classes)


def memorisation(method: Method, augment: BatchAugment, probe_images: torch.Tensor, probe: np.ndarray,
                 noisy: np.ndarray, clean: np.ndarray, current: np.ndarray, device: torch.device,
                 batch_size: int, amp: bool) -> dict[str, float]:
    """The epoch's memorisation diagnostics (:data:`~fer_bench.engine.metrics.MEMORISATION_COLUMNS`).

    Predictions on the fixed ``probe`` training images (``probe_images``, in the order of ``probe``);
    ``current`` is the method's label set now (``ctx.train_labels``), which a relabelling method
    rewrites, so the engine needs to know none.
    """
    pred = predict_logits(method, augment, probe_images, device, batch_size, amp)
    out = memorisation_shares(pred.argmax(1).numpy(), noisy[probe], clean[probe])
    out["relabel_restored"] = relabel_restored(noisy, current, clean)
    return out


def _relabel_summary(initial: np.ndarray, final: np.ndarray, clean: np.ndarray) -> dict[str, int]:
    changed = final != initial
    return {
        "changed": int(changed.sum()),
        "corrected_to_clean": int((changed & (final == clean) & (initial != clean)).sum()),
        "broke_clean": int((changed & (initial == clean)).sum()),
    }


def format_summary(result: dict[str, Any]) -> str:
    noise = result["noise_record"]
    n = result["epochs"]  # acc_last5 is over fewer epochs in a shorter run
    last5 = "mean of last 5" if n >= 5 else ("mean of its 1 epoch" if n == 1 else f"mean of all {n} epochs")
    lines = [
        f"{result['method']} on {result['dataset']}, noise {noise['model']} {noise['rate']:g} "
        f"(realised {noise['realised_rate']:.4f}), seed {result['seed']}",
        f"  clean-test accuracy: last {result['acc_last']:.2%}   best {result['acc_best']:.2%} "
        f"(epoch {result['best_epoch']}, optimistic)   {last5} {result['acc_last5']:.2%}",
        "  " + _val_summary(result),
        f"  mean class accuracy (last epoch): {result['mean_class_acc_last']:.2%}",
        f"  {result['epochs']} epochs in {result['train_seconds']:.0f} s "
        f"({result['images_per_second']:.0f} images/s on {result['device']})",
        f"  run directory: {result['run_dir']}",
    ]
    return "\n".join(lines)


def _val_summary(result: dict[str, Any]) -> str:
    split = result.get("val_split") or {}
    if result.get("acc_val") is None:
        return "val: unavailable (no noisy validation split; --val-split F holds one out)"
    return (f"val {result['acc_val']:.2%} (clean-test accuracy at epoch {result['val_epoch']}, the best on "
            f"{split.get('held_out')} held-out noisy labels: {result['val_acc_best']:.2%})")


def prepare(run: ResolvedRun, progress: bool) -> tuple[FERDataset, np.ndarray, Any, dict[str, Any]]:
    dataset = create_dataset(run.spec.dataset, run.spec.root, progress, **run.spec.data_options)
    labels, record = make_train_labels(run, dataset)
    config = config_record(run, record.label_file_sha256, dataset.fingerprint())
    config["config_hash"] = config_hash(config)
    return dataset, labels, record, config


def draw_split(run: ResolvedRun, train_labels: np.ndarray) -> ValidationSplit:
    """The run's noisy validation split, from the noise seed (the same on every resume)."""
    try:
        return ValidationSplit.draw(train_labels, run.recipe["val_split"], run.noise_seed)
    except ValueError as exc:
        raise RunError(f"--set {exc}") from None


def main(spec: RunSpec) -> dict[str, Any]:
    """Run (or resume, or skip if finished) one training run and return its result record.

    Everything that can be checked is checked before the run directory is
    touched; the directory's lock is taken just before the first write.
    Raises :class:`~fer_bench.runs.RunBusy` if another process is running it.

    Under torchrun every rank calls this; rank 0 alone checks, locks and writes the run
    directory, and tells the others what it found (:mod:`.distributed`).
    """
    run = resolve(spec)
    device_type = select_device(spec.device).type
    if spec.sync_bn and device_type != "cuda":
        raise RunError("--sync-bn needs CUDA devices: torch's SyncBatchNorm does not run on the CPU")
    world = distributed.init(device_type)
    check_world(run.recipe, world)
    if world.distributed:
        spec = replace(spec, progress=spec.progress and world.is_main, processes=world.size)
        run = replace(run, spec=spec)
    return _main(run, world)


def check_world(recipe: dict[str, Any], world: World) -> None:
    """The global batch must split into equal per-rank batches."""
    if recipe["batch_size"] % world.size:
        raise RunError(f"batch_size {recipe['batch_size']} does not divide among {world.size} processes: "
                       f"each rank trains batch_size / {world.size}; choose a multiple of {world.size} "
                       f"(--set batch_size=...) or another process count")


def _main(run: ResolvedRun, world: World) -> dict[str, Any]:
    spec = run.spec
    if not world.is_main:  # rank 0 fills any cache the dataset writes, then the others read it
        distributed.barrier(world)
    dataset, train_labels, record, config = prepare(run, spec.progress)
    if world.is_main:
        distributed.barrier(world)
    run_dir = RunDir(run.run_dir)
    # Read before any rank can write config.json (rank 0 writes it only after the collective below): the
    # hash an earlier version recorded for this same run, which its checkpoint carries.
    owners = {config["config_hash"], run_dir.recorded_hash() or config["config_hash"]}
    done = distributed.on_main(world, lambda: run_dir.check(config, spec.force))
    if done:
        return done
    split = draw_split(run, train_labels)
    # the method sees only the images it trains on: its memories are sized to them
    setup = build_training(run, training_view(dataset, split.keep), train_labels[split.keep], world)
    if not world.distributed:
        with run_dir.lock():
            # another process may have finished it while this one was getting ready
            return run_dir.check(config, spec.force) or _train(run, dataset, train_labels, record, config, setup,
                                                               split, owners)
    with ExitStack() as held:  # rank 0 holds the lock for all ranks; RunBusy is raised on every rank
        def lock_and_check() -> Any:
            held.enter_context(run_dir.lock())
            return run_dir.check(config, spec.force) or "train"

        state = distributed.on_main(world, lock_and_check)
        if state != "train":
            return state
        return _train(run, dataset, train_labels, record, config, setup, split, owners)


@dataclass
class Training:
    """What a run trains with, built before anything is written."""

    device: torch.device
    ctx: MethodContext
    method: Method
    optimizer: Any
    scheduler: Any
    pretrained: list[dict[str, Any]]
    augment: BatchAugment
    seed: int
    step: Optional[nn.Module] = None  # the training step in DistributedDataParallel (several processes)


def build_training(run: ResolvedRun, dataset: FERDataset, train_labels: np.ndarray,
                   world: World = SINGLE) -> Training:
    spec, recipe = run.spec, run.recipe
    device = select_device(spec.device)
    if world.distributed and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
    torch.manual_seed(spec.seed)
    ctx = build_context(run.method_cls, recipe, dataset, train_labels, device, world=world)
    method = run.method_cls(ctx, run.hparams)
    if world.distributed and spec.sync_bn:
        method.model = nn.SyncBatchNorm.convert_sync_batchnorm(method.model)
    pretrained = load_backbone_weights(method, recipe, spec.trust_pickle)
    if device.type == "cuda":
        method.model.to(memory_format=torch.channels_last)
    if spec.compile:
        # The backbones hold nearly all the FLOPs; compiling them in place keeps the state_dict's
        # names, so checkpoints of compiled and plain runs are interchangeable.
        for backbone in method.backbones() or [method.model]:
            backbone.compile()
    optimizer = build_optimizer(method.param_groups(), recipe)
    scheduler = build_scheduler(optimizer, recipe, steps_per_epoch(len(train_labels), recipe))
    # DDP copies rank 0's parameters and buffers to the others (pretrained weights are alike already).
    step = distributed.wrap(TrainingStep(method), world) if world.distributed else None
    return Training(device, ctx, method, optimizer, scheduler, pretrained, BatchAugment(augment_config(recipe)),
                    spec.seed, step)


def _check_split_record(rd: RunDir, text: str) -> None:
    """A resumed run must hold out the images it held out before (the split is drawn again, not read)."""
    if rd.checkpoint_file.is_file() and rd.val_split_file.is_file() and rd.val_split_file.read_text() != text:
        raise RunError(f"{rd.val_split_file} records another validation split than this run draws; "
                       f"the same command with --force trains this run again from scratch")


def check_checkpoint_owner(ckpt: dict[str, Any], path: Path, owners: Iterable[str], remedy: str) -> None:
    """A checkpoint belongs to the run whose config hash it carries: one copied from another run (or too old to
    say whose it is) is a RunError naming the file, never a model to resume or evaluate."""
    owner = ckpt.get("config_hash")
    if owner is None:
        raise RunError(f"{path} does not say which run wrote it (no config_hash): it may be another run's; {remedy}")
    if owner not in set(owners):
        raise RunError(f"{path} was written by another run (its config hash is {owner}, this run's "
                       f"{' or '.join(sorted(set(owners)))}: copied here?); {remedy}")


def _train(run: ResolvedRun, dataset: FERDataset, train_labels: np.ndarray, record: Any,
           config: dict[str, Any], setup: Training, split: ValidationSplit,
           owners: Iterable[str] = ()) -> dict[str, Any]:
    spec, recipe, rd = run.spec, run.recipe, RunDir(run.run_dir)
    run_dir = rd.path
    device, ctx, method, optimizer, scheduler = setup.device, setup.ctx, setup.method, setup.optimizer, setup.scheduler
    amp = device.type == "cuda"
    chash = config["config_hash"]
    result_file, ckpt_file = rd.result_file, rd.checkpoint_file
    world = ctx.world
    main_rank = world.is_main  # only rank 0 writes the run directory

    if main_rank:
        if spec.force:
            rd.clear()  # the old run's files and everything derived from its model (user study, a method's files)
        elif result_file.is_file():  # an unreadable or invalid record is no finished run: build it again
            how = "from its last checkpoint" if ckpt_file.is_file() else "by training the run"
            print(f"{rd.result_problem()}; writing it again {how}", file=sys.stderr, flush=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(run_dir)  # left by a killed process; this one holds the lock
        split_text = split_file_text([dataset.train.names[i] for i in split.held_out]) if split else None
        if split_text is not None:
            _check_split_record(rd, split_text)
        write_json(rd.config_file, config)
        write_json(rd.noise_file, record.to_dict())
        write_text(rd.labels_file, label_file_text(dataset, train_labels))
        if split_text is not None:
            write_text(rd.val_split_file, split_text)
        env = environment_record(device)
        if world.distributed:
            env["distributed"] = {"world_size": world.size, "backend": torch.distributed.get_backend(),
                                  "sync_bn": spec.sync_bn}
        write_json(rd.env_file, env)
    distributed.barrier(world)

    rows: list[dict[str, Any]] = []
    start_epoch, elapsed = 0, 0.0
    if ckpt_file.is_file():
        remedy = "the same command with --force trains this run again from scratch"
        ckpt = load_checkpoint(ckpt_file, device, remedy)
        check_checkpoint_owner(ckpt, ckpt_file, {config["config_hash"], *owners}, remedy)
        if ckpt.get("world_size", 1) != world.size:
            raise RunError(f"{ckpt_file} was trained by {ckpt.get('world_size', 1)} process(es) and this run has "
                           f"{world.size}: resume it with the same count, or --force to train it again")
        method.model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        method.load_extra_state(ckpt["method"])
        ctx.train_labels.copy_(ckpt["train_labels"].to(device))
        rows, start_epoch, elapsed = ckpt["metrics"], ckpt["epoch"], ckpt["elapsed"]
        if main_rank:
            print(f"resuming from epoch {start_epoch} of {ctx.epochs} ({run_dir})", file=sys.stderr, flush=True)

    train_set, noisy = training_view(dataset, split.keep), train_labels[split.keep]
    # The whole training cache (on a CPU a view of the memory-mapped file): a split run gathers the rows it
    # trains on by index, so an AffectNet-sized cache is never copied.
    train_images = images_on(device, dataset.train.images)
    train_rows = torch.as_tensor(split.keep, device=train_images.device) if split else None
    test_images = images_on(device, dataset.test.images)
    val_images = images_on(device, dataset.train.images[split.held_out]) if split else None
    clean_labels = np.asarray(train_set.train.labels, dtype=np.int64)
    probe = memorisation_subset(noisy, clean_labels, setup.seed)
    probe_images = train_images.index_select(0, torch.as_tensor(split.keep[probe], device=train_images.device))
    # flushed every epoch, so an interrupted run loses nothing it logged
    tracker = open_tracker(spec.log if main_rank else None, run_dir, config, record.to_dict())
    saved = start_epoch
    try:
        for epoch in range(start_epoch, ctx.epochs):
            t0 = time.perf_counter()
            row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
            batches = CachedBatches(method, train_images, setup.augment, setup.seed, epoch, train_rows)
            row.update(train_one_epoch(method, batches, optimizer, scheduler, amp, epoch, spec.progress, setup.step))
            if not main_rank:  # rank 0 evaluates and writes; the others wait for its checkpoint
                distributed.barrier(world)
                saved = epoch + 1
                continue
            cm = evaluate(method, setup.augment, test_images, dataset.test.labels, dataset.num_classes,
                          device, recipe["eval_batch_size"], amp)
            row.update(test_acc=accuracy(cm), test_mean_class_acc=mean_class_accuracy(cm))
            if val_images is not None:  # against the noisy labels: all a real user has
                row["val_acc"] = accuracy(evaluate(method, setup.augment, val_images, train_labels[split.held_out],
                                                   dataset.num_classes, device, recipe["eval_batch_size"], amp))
            row["confusion"] = cm.tolist()
            row.update(memorisation(method, setup.augment, probe_images, probe, noisy, clean_labels,
                                    ctx.train_labels.cpu().numpy(), device, recipe["eval_batch_size"], amp))
            rows.append(row)
            elapsed += time.perf_counter() - t0
            save_torch(ckpt_file, {
                "epoch": epoch + 1, "model": method.model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "method": method.extra_state(),
                "train_labels": ctx.train_labels.cpu(), "metrics": rows, "elapsed": elapsed, "config_hash": chash,
                **({"world_size": world.size} if world.distributed else {}),
            })
            saved = epoch + 1
            write_csv(rd.metrics_file, [{k: v for k, v in r.items() if k != "confusion"} for r in rows])
            if spec.progress:
                tqdm.write(f"epoch {epoch + 1}/{ctx.epochs}: loss {row['train_loss']:.3f}  "
                           f"test acc {row['test_acc']:.2%}  ({row['images_per_s']:.0f} img/s)")
            tracker.log_epoch(row)
            distributed.barrier(world)
    except KeyboardInterrupt:
        progress = f"progress saved at epoch {saved} of {ctx.epochs}" if saved else "no epoch had finished yet"
        raise RunInterrupted(f"interrupted: {progress} ({run_dir}); the same command resumes") from None
    finally:
        tracker.close()

    if not main_rank:
        distributed.barrier(world)  # rank 0 writes result.json
        return json.loads(result_file.read_text())
    result: dict[str, Any] = {
        "method": config["method"], "dataset": config["dataset"], "seed": spec.seed,
        "noise": config["noise"], "protocol": spec.protocol, "profile": run.profile,
        "config_hash": chash, "class_names": list(dataset.class_names),
    }
    result.update(summarise_epochs([r["test_acc"] for r in rows], [r["test_mean_class_acc"] for r in rows],
                                   [r["val_acc"] for r in rows] if split else None))
    result["val_split"] = split.sizes(recipe["val_split"])
    train_time = sum(r["train_seconds"] for r in rows)
    result.update(
        confusion_last=rows[-1]["confusion"], epochs=len(rows), train_seconds=train_time,
        wall_seconds=elapsed, images_per_second=sum(r["images_per_s"] * r["train_seconds"] for r in rows) / train_time,
        device=str(device), pretrained=setup.pretrained, noise_record=record.to_dict(), run_dir=str(run_dir),
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    final_labels = ctx.train_labels.cpu().numpy()
    if not np.array_equal(final_labels, noisy):
        result["relabel"] = _relabel_summary(noisy, final_labels, clean_labels)
        write_text(run_dir / "final_train_labels.txt", label_file_text(train_set, final_labels))
    result["method_info"] = method.on_train_end(run_dir)
    write_json(result_file, result)
    distributed.barrier(world)
    return result
