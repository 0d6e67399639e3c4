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
