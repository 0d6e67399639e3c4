"""Classification metrics and the per-run summary statistics over epochs."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def confusion_matrix(true: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``(C, C)``: rows are the true class, columns the prediction."""
    return np.bincount(true * num_classes + pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def accuracy(cm: np.ndarray) -> float:
    return float(np.trace(cm) / max(cm.sum(), 1))


def mean_class_accuracy(cm: np.ndarray) -> float:
    """Mean per-class recall over the classes present in the test set."""
    support = cm.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(cm)[present] / support[present]))


def summarise_epochs(acc: Sequence[float], mean_class_acc: Sequence[float],
                     val_acc: Optional[Sequence[float]] = None) -> dict[str, Optional[float]]:
    """The per-run statistics over epochs (``acc_<stat>`` and ``mean_class_acc_<stat>`` for
    each of :data:`fer_bench.runs.record.STATS`).

    ``last``: the last epoch; ``best``: the best epoch on the clean test set (optimistic: it peeks at
    the test set); ``last5``: the mean of the last 5 epochs; ``val``: the clean-test numbers at the
    epoch with the best accuracy on the noisy validation split (``val_acc``), the earliest such epoch
    on a tie, as early stopping would keep it. Without a split the ``val`` entries are None.
    """
    acc_arr = np.asarray(acc, dtype=float)
    best = int(np.argmax(acc_arr))
    out: dict[str, Optional[float]] = {
        "acc_last": float(acc_arr[-1]),
        "acc_best": float(acc_arr[best]),
        "best_epoch": best + 1,
        "acc_last5": float(acc_arr[-5:].mean()),
        "mean_class_acc_last": float(mean_class_acc[-1]),
        "mean_class_acc_best": float(max(mean_class_acc)),
        "mean_class_acc_last5": float(np.mean(mean_class_acc[-5:])),
        "acc_val": None, "mean_class_acc_val": None, "val_epoch": None, "val_acc_best": None,
    }
    if val_acc is not None and len(val_acc):
        chosen = int(np.argmax(np.asarray(val_acc, dtype=float)))  # the first maximum: the earliest epoch
        out.update(acc_val=float(acc_arr[chosen]), mean_class_acc_val=float(mean_class_acc[chosen]),
                   val_epoch=chosen + 1, val_acc_best=float(val_acc[chosen]))
    return out


# Memorisation diagnostics: a plain column each in metrics.csv (NaN where a group is empty, e.g. clean labels).
MEMORISATION_COLUMNS = ("flipped_memorised", "flipped_corrected", "flipped_other", "unflipped_correct",
                        "relabel_restored")
MEMORISATION_SUBSET = 1000  # training images of each kind (flipped, unflipped) evaluated per epoch


def memorisation_subset(noisy: np.ndarray, clean: np.ndarray, seed: int, size: int = MEMORISATION_SUBSET) -> np.ndarray:
    """Fixed training indices the diagnostics are measured on: up to ``size`` flipped and ``size``
    unflipped images, drawn once from ``seed`` so every epoch (and a resumed run) sees the same ones."""
    rng = np.random.default_rng(seed)
    flipped = np.flatnonzero(noisy != clean)
    kept = np.flatnonzero(noisy == clean)
    pick = [rng.choice(g, min(size, len(g)), replace=False) if len(g) else g for g in (flipped, kept)]
    return np.sort(np.concatenate(pick))


def memorisation_shares(pred: np.ndarray, noisy: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    """On the images whose label was flipped, the share predicted as the noisy label (memorised), as the
    clean label (corrected) and as another class (the three sum to 1); on the unflipped ones, the share
    predicted correctly. NaN for an empty group."""
    flipped = noisy != clean

    def share(hit: np.ndarray, group: np.ndarray) -> float:
        return float(hit[group].mean()) if group.any() else float("nan")

    memorised, corrected = pred == noisy, pred == clean
    return {"flipped_memorised": share(memorised, flipped), "flipped_corrected": share(corrected, flipped),
            "flipped_other": share(~memorised & ~corrected, flipped), "unflipped_correct": share(corrected, ~flipped)}


def relabel_restored(initial: np.ndarray, current: np.ndarray, clean: np.ndarray) -> float:
    """The share of a method's label rewrites (``current`` != ``initial``) that restored the clean label;
    NaN while it has rewritten none."""
    changed = current != initial
    return float((current[changed] == clean[changed]).mean()) if changed.any() else float("nan")


def relabel_summary(initial: np.ndarray, final: np.ndarray, clean: np.ndarray) -> dict[str, int]:
    """How a relabelling method's final labels differ from the noisy ones it started with: how many it
    changed, how many of those it set back to the clean label, and how many clean labels it broke."""
    changed = final != initial
    return {
        "changed": int(changed.sum()),
        "corrected_to_clean": int((changed & (final == clean) & (initial != clean)).sum()),
        "broke_clean": int((changed & (initial == clean)).sum()),
    }
