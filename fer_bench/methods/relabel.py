"""SCN's relabelling rule, shared by SCN and (as an option) RUL.

A training label y is replaced by the predicted class when the model is more
confident in its prediction than in the label by a margin:
``max_k p_k - p_y > delta2``. The change is made in place in the run's
training labels, so it lasts for the rest of training and can be undone by a
later relabelling (as in SCN's code).
"""

from __future__ import annotations

from typing import Optional

import torch

from .probes import NoiseFlag, Probe


@torch.no_grad()
def relabel_(train_labels: torch.Tensor, indices: torch.Tensor, logits: torch.Tensor,
             margin: float, eligible: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Rewrite ``train_labels[indices]`` where the prediction beats the label by ``margin``.

    Args:
        train_labels: the run's training labels (modified in place).
        indices: dataset indices of the batch.
        logits: the batch's (pre-step) logits.
        margin: SCN's delta2.
        eligible: optional bool mask of the samples that may be relabelled.

    Returns:
        The number of labels changed, as a tensor (reading it would synchronise a GPU).
    """
    probs = torch.softmax(logits.float(), dim=1)
    p_max, predicted = probs.max(dim=1)
    current = train_labels[indices]
    p_label = probs.gather(1, current.unsqueeze(1)).squeeze(1)
    change = (p_max - p_label > margin) & (predicted != current)
    if eligible is not None:
        change &= eligible
    train_labels[indices[change]] = predicted[change]
    return change.sum()


def relabel_report(train_labels: torch.Tensor, initial: torch.Tensor, relabel_epoch: int,
                   epochs: int) -> dict[str, Probe]:
    """The relabelling's mechanism values: the samples whose label it changed (scored against the flipped set)
    and the fraction of training done before it starts."""
    return {"relabelled": NoiseFlag(train_labels != initial), "relabel_start": (relabel_epoch - 1) / epochs}


def official_start(method_cls: type) -> float:
    """The fraction of training done before the method's relabelling starts in its official recipe."""
    from ..engine.recipe import official_schedule  # (the engine's recipe imports the methods' registry)

    return (method_cls.hparam_specs()["relabel_epoch"].default - 1) / official_schedule(method_cls.recipe).epochs


def relabel_off(last: dict[str, float], relabel_epoch: int, epochs: int, official_start: float) -> list[str]:
    """What a run's relabelling left undone: it never starts, starts much later in training than officially
    (``official_start``: the fraction of training done before it, officially), or changed no label."""
    if relabel_epoch > epochs:
        return [f"relabelling never starts (relabel_epoch {relabel_epoch} of {epochs} epochs)"]
    off = []
    start = (relabel_epoch - 1) / epochs
    if start > LATE * official_start:
        off.append(f"relabelling starts after {start:.0%} of training (officially {official_start:.0%}): "
                   f"epoch {relabel_epoch} of {epochs}")
    if last.get("relabelled_share") == 0:
        off.append("relabelling changed no label")
    return off


# Relabelling that starts more than this many times later in training than officially is reported as late.
LATE = 1.5
