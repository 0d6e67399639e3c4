"""Classification metrics and the per-run summary statistics over epochs."""

from __future__ import annotations

from typing import Sequence

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


def summarise_epochs(acc: Sequence[float], mean_class_acc: Sequence[float]) -> dict[str, float]:
    """The three statistics papers report: last epoch, best epoch (optimistic), mean of last 5."""
    acc_arr = np.asarray(acc, dtype=float)
    best = int(np.argmax(acc_arr))
    return {
        "acc_last": float(acc_arr[-1]),
        "acc_best": float(acc_arr[best]),
        "best_epoch": best + 1,
        "acc_last5": float(acc_arr[-5:].mean()),
        "mean_class_acc_last": float(mean_class_acc[-1]),
        "mean_class_acc_best": float(max(mean_class_acc)),
        "mean_class_acc_last5": float(np.mean(mean_class_acc[-5:])),
    }
