"""``fer-bench pretrain``: the MS-Celeb step on synthfer-id, once per machine.

Every published number this suite compares against starts from a ResNet
pretrained on face recognition (MS-Celeb-1M, VGGFace2) and fine-tunes it on
the noisy expression labels. This module is that first step for the synthetic
faces: it trains the CPU-sized backbone (:data:`~fer_bench.models.resnet.CPU_BACKBONE`,
at the cpu profile's 48 px input) to classify the identities of synthfer-id
(:mod:`fer_bench.datasets.synthfer.identities`), measures identity accuracy on
held-out pictures of the same people, and saves the backbone in the format
``--pretrained`` loads (torchvision ResNet names under ``state_dict``; the
identity classifier is dropped, as the peers' MS-Celeb files drop theirs) with a
record beside it (``FILE.json``: seed, recipe, generator version, accuracy,
sha256). ``--pretrained synthfer-id`` names the copy shipped in the package,
which this command made with the recorded seed and recipe.

The recipe (:data:`RECIPE`) is a face-recognition one: plain softmax
cross-entropy over the identities (the peers' MS-Celeb ResNet-18s, RAN/SCN's
``ijba_res18_naive`` ("naive" = plain softmax) and DACL's ``resnet18_msceleb``,
were trained that way, not with a margin loss); SGD with momentum 0.9, lr 0.1
and weight decay 5e-4 (the usual face-recognition setting) under a cosine
schedule after one warm-up epoch; random horizontal flips only, since a
person's identity must survive everything else the pictures already vary (pose,
light, occluders). Inputs are normalised with ImageNet's statistics, as SCN,
RUL and EAC's fine-tuning normalises.

It trains through the engine's loop (:class:`IdentityMethod`, fed by
:class:`~fer_bench.engine.loop.CachedBatches` to :func:`~fer_bench.engine.loop.train_one_epoch`) at a
fixed thread count, so it is deterministic from the seed on a CPU with a given count; each epoch
ends with the state saved atomically to ``FILE.partial``, so an interrupted pretraining resumes.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .atomic import save_torch, write_json
from .augment import AugmentConfig, BatchAugment
from .datasets.synthfer.identities import NAME as DATASET, IdentitySetConfig, load_identities
from .engine.inference import evaluate, load_checkpoint
from .engine.loop import CachedBatches, steps_per_epoch, train_one_epoch
from .engine.metrics import accuracy
from .engine.optim import build_optimizer, build_scheduler
from .engine.recipe import DEFAULTS, PROFILES
from .methods.base import Batch, Method, MethodContext, StepOutput
from .models.pretrained import NORMALISATIONS, SYNTHFER_ID, record_path
from .models.resnet import CPU_BACKBONE, create_backbone
from .outputs import check_out
from .paths import results_root

RECIPE: dict[str, Any] = {
    **CPU_BACKBONE, "image_size": PROFILES["cpu"]["image_size"],
    "loss": "softmax", "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4,
    "schedule": "cosine", "warmup_epochs": 1, "epochs": 15, "batch_size": 64,
    "aug_flip": 0.5, "normalize": "imagenet",
}


def default_out(seed: int) -> Path:
    return results_root() / "pretrained" / f"{DATASET}-seed{seed}.pth"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class IdentityNet(nn.Module):
    """The backbone and a linear identity classifier on its pooled features."""

    def __init__(self, num_identities: int) -> None:
        super().__init__()
        self.backbone = create_backbone(RECIPE["arch"], RECIPE["width"], RECIPE["stem"])
        self.fc = nn.Linear(self.backbone.out_channels, num_identities)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone.pool(self.backbone(x)))


class IdentityMethod(Method):
    """Face recognition as a method for the engine's loop: :class:`IdentityNet` trained with plain softmax
    cross-entropy over the identities (``ctx.num_classes`` of them)."""

    name = "synthfer-id"

    def build_model(self) -> nn.Module:
        return IdentityNet(self.ctx.num_classes)

    def training_step(self, batch: Batch) -> StepOutput:
        logits = self.model(batch.images)
        return StepOutput(nn.functional.cross_entropy(logits, batch.labels), logits)


def _augment(recipe: dict[str, Any]) -> BatchAugment:
    mean, std = NORMALISATIONS[recipe["normalize"]]
    return BatchAugment(AugmentConfig(image_size=recipe["image_size"], flip=recipe["aug_flip"],
                                      mean=mean, std=std))


def identity_accuracy(method: Method, augment: BatchAugment, images: np.ndarray, labels: np.ndarray) -> float:
    """The share of ``images`` whose identity the network names correctly."""
    return accuracy(evaluate(method, augment, torch.from_numpy(images), labels, method.ctx.num_classes,
                             method.ctx.device, 256, amp=False))


def pretrain(data: Optional[IdentitySetConfig] = None, seed: int = 0, out: Optional[Path] = None,
             epochs: Optional[int] = None, batch_size: Optional[int] = None, root: Optional[Path] = None, force: bool = False,
             progress: bool = True) -> dict[str, Any]:
    """Pretrain on synthfer-id and write ``out`` and its record; return the record.

    When ``out`` already holds the result of this exact pretraining (same seed, recipe
    and data), nothing is trained and its record is returned with ``skipped`` set.
    """
    data = data or IdentitySetConfig()
    out = Path(out) if out is not None else default_out(seed)
    if out.suffix != ".pth":
        raise ValueError(f"--out {out}: the checkpoint's name must end in .pth (its record goes beside it, "
                         f"{out.with_suffix('.json').name})")
    recipe = dict(RECIPE)
    for key, value in (("epochs", epochs), ("batch_size", batch_size)):
        if value is not None:
            if value < 1:
                raise ValueError(f"--{key.replace('_', '-')} must be at least 1, got {value}")
            recipe[key] = value
    partial = out.with_name(out.name + ".partial")
    check_out(out, (out, record_path(out), partial), [root])
    what = {"kind": SYNTHFER_ID, "seed": seed, "recipe": recipe}
    done = _finished(out, what, data)
    if done is not None and not force:
        return {**done, "skipped": True}
    # Found, not named by the user, so possibly planted: read as tensors and plain data only (a bad
    # one is an error before any work).
    state = (load_checkpoint(partial, torch.device("cpu"), "delete it, or pass --force to pretrain from the start")
             if partial.is_file() and not force else None)

    t0 = time.perf_counter()
    ids = load_identities(root, data, progress=progress)
    what["dataset"] = {k: ids.info[k] for k in ("name", "version", "synthfer_config", "images")} | asdict(data)
    opt_recipe = {**DEFAULTS, **recipe}
    torch.manual_seed(seed)
    ctx = MethodContext(num_classes=ids.num_identities, class_names=tuple(map(str, range(ids.num_identities))),
                        train_labels=torch.as_tensor(ids.train_labels, dtype=torch.long), device=torch.device("cpu"),
                        recipe=opt_recipe, epochs=recipe["epochs"])
    method = IdentityMethod(ctx, {})
    optimizer = build_optimizer([{"params": list(method.model.parameters())}], opt_recipe)
    scheduler = build_scheduler(optimizer, opt_recipe, steps_per_epoch(len(ids.train_labels), opt_recipe))
    augment = _augment(recipe)
    history: list[dict[str, Any]] = []
    if isinstance(state, dict) and state.get("what") == what:
        method.model.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = state["history"]
    out.parent.mkdir(parents=True, exist_ok=True)
    images = torch.from_numpy(ids.train_images)
    for epoch in range(len(history), recipe["epochs"]):
        batches = CachedBatches(method, images, augment, seed, epoch)
        row = train_one_epoch(method, batches, optimizer, scheduler, False, epoch, progress, adapt_threads=False)
        heldout = identity_accuracy(method, augment, ids.heldout_images, ids.heldout_labels)
        history.append({"epoch": epoch, "loss": row["train_loss"], "train_acc": row["train_acc_noisy"],
                        "heldout_acc": heldout})
        if progress:
            tqdm.write(f"pretraining epoch {epoch + 1}/{recipe['epochs']}: loss {row['train_loss']:.3f}  "
                       f"identity accuracy {row['train_acc_noisy']:.1%}, held out {heldout:.1%}")
        save_torch(partial, {"what": what, "net": method.model.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "history": history})

    save_torch(out, {"state_dict": method.model.backbone.state_dict()})
    record = {
        **what, "file": out.name, "sha256": sha256(out),
        "heldout_identity_accuracy": history[-1]["heldout_acc"], "chance": 1 / ids.num_identities,
        "history": history, "seconds": round(time.perf_counter() - t0, 1),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
    }
    write_json(record_path(out), record)  # last: the record marks the checkpoint complete
    partial.unlink(missing_ok=True)
    return {**record, "skipped": False}


def _finished(out: Path, what: dict[str, Any], data: IdentitySetConfig) -> Optional[dict[str, Any]]:
    """The record of ``out`` when it is this pretraining's finished result."""
    from .models.pretrained import checkpoint_record

    rec = checkpoint_record(out)
    same = (rec and all(rec.get(k) == v for k, v in what.items())
            and all(rec.get("dataset", {}).get(k) == v for k, v in asdict(data).items()))
    return rec if same and out.is_file() and sha256(out) == rec.get("sha256") else None


def _threads(n: int) -> str:
    # Named in the summary because the bytes depend on it (the order of float sums): the same seed
    # on another thread count is a different, equally valid checkpoint.
    return f"{n} thread" + ("" if n == 1 else "s")


def format_summary(record: dict[str, Any], out: Path) -> str:
    d = record["dataset"]
    head = "already pretrained" if record.get("skipped") else "pretrained"
    return (f"{head}: {RECIPE['arch']} width {RECIPE['width']} on {d['identities']} synthfer-id identities "
            f"({d['images']['train']} training images), seed {record['seed']}, {record['recipe']['epochs']} epochs, "
            f"{record['seconds']:.0f} s on {_threads(record['torch_threads'])}\n"
            f"held-out identity accuracy {record['heldout_identity_accuracy']:.1%} "
            f"({d['images']['heldout']} images; chance {record['chance']:.2%})\n"
            f"saved {out} (sha256 {record['sha256'][:16]}...) and its record {record_path(out).name}; "
            f"use it with --pretrained {out}")
