"""Inference: a method's predictions on un-augmented images, the evaluation of a run's epoch on them,
a method's own pass over its training images as evaluation sees them (:class:`TrainPass`), and reading
a run's checkpoint back (only as tensors and plain data, and only the run's own).

A finished run's model is rebuilt from its checkpoint by :mod:`.trained`.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import numpy as np
import torch

from ..augment import BatchAugment
from ..methods.base import Method
from ..runs import RunError
from .metrics import confusion_matrix, memorisation_shares, relabel_restored


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


class TrainPass:
    """A run's training images as evaluation sees them (resized and normalised, never augmented), for a method
    that passes over its whole training set during training (``ctx.train_pass``: per-sample losses every epoch).

    Iterating it yields ``(indices, images)`` for every training sample once, in index order and in batches of
    ``batch_size`` (the recipe's ``eval_batch_size``; the last may be smaller): ``indices`` long on the device,
    rows of ``ctx.train_labels``; ``images`` normalised float ``(b, 3, S, S)`` on the device, exactly what
    :meth:`~fer_bench.methods.base.Method.predict` gets at evaluation. No label comes with them: a method has only
    its own training labels, ``ctx.train_labels``. ``amp`` says whether evaluation runs under bf16 autocast (on a
    GPU), for a method that wants the same precision. ``rows`` maps a training index to its row of ``images`` when
    the run trains on some of the cache's rows (a noisy validation split holds the others out). Every rank of a
    multi-process run gets the whole set; drawing no random number, a pass changes nothing a run computes.
    """

    def __init__(self, images: torch.Tensor, augment: BatchAugment, device: torch.device, batch_size: int,
                 amp: bool, rows: Optional[torch.Tensor] = None) -> None:
        self.images, self.augment, self.device, self.batch_size, self.amp = images, augment, device, batch_size, amp
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows) if self.rows is not None else len(self.images)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self)
        for start in range(0, n, self.batch_size):
            idx = torch.arange(start, min(n, start + self.batch_size))
            src = idx if self.rows is None else self.rows[idx.to(self.rows.device)]
            raw = self.images[src.to(self.images.device)].to(self.device, non_blocking=True)
            x = self.augment.eval(raw)
            if self.device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            yield idx.to(self.device), x


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


def check_checkpoint_owner(ckpt: dict[str, Any], path: Path, owners: Iterable[str], remedy: str) -> None:
    """A checkpoint belongs to the run whose config hash it carries: one copied from another run (or too old to
    say whose it is) is a RunError naming the file, never a model to resume or evaluate."""
    owner = ckpt.get("config_hash")
    if owner is None:
        raise RunError(f"{path} does not say which run wrote it (no config_hash): it may be another run's; {remedy}")
    if owner not in set(owners):
        raise RunError(f"{path} was written by another run (its config hash is {owner}, this run's "
                       f"{' or '.join(sorted(set(owners)))}: copied here?); {remedy}")
