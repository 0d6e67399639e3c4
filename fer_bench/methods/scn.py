"""SCN: Self-Cure Network (Wang et al., CVPR 2020).

Three parts, as in the paper and the official code:

* **Self-attention importance weighting.** A linear layer and a sigmoid give
  each sample an importance alpha in (0, 1); the logits are multiplied by it,
  so alpha acts as a per-sample temperature and the cross-entropy of a
  low-alpha (suspect) sample has a flat, weak gradient.
* **Rank regularisation.** Within a batch, the mean alpha of the top
  ``beta`` fraction must exceed that of the rest by a margin ``delta1``:
  ``L_RR = max(0, delta1 - (mean_high - mean_low))``.
* **Relabelling.** From epoch ``relabel_epoch`` on, a sample whose prediction
  beats its current label by ``delta2`` in probability gets the prediction as
  its new training label (see :mod:`.relabel`).

Where the code and the paper differ, this module follows the code and exposes
the paper: the official code relabels every sample of the batch, the paper only
the low-importance group; ``relabel_scope=all`` (default) or ``low``. The loss
is CE + L_RR with unit weights, as in the code (the paper writes a convex
combination). ``delta1`` defaults to 0.07, the README's advice for batch 64
(0.15 was tuned for batch 1024). ``relabel_epoch`` is 1-based, like the code's.

Input augmentation (official recipe, as ``src/train.py``'s dataset does): with
p = 0.5 either a horizontal flip or additive Gaussian noise of variance 30 (0-255
scale), each equally likely (``aug_flip=0.25, aug_noise=0.25,
aug_flip_or_noise=true``), then erasing; ImageNet normalisation, as the code uses
with its MS-Celeb weights. The unified protocol flips with p = 0.5, no noise.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..models import create_backbone
from ..registry import register_method
from .base import Batch, Method, StepOutput
from .hparams import HParam
from .probes import NoiseFlag, NoiseScore, Probe, SampleTrace
from .relabel import official_start, relabel_, relabel_off, relabel_report


class SCNNet(nn.Module):
    """Backbone -> pooled feature -> (importance alpha, class logits z); output alpha * z."""

    def __init__(self, backbone: nn.Module, num_classes: int, drop_rate: float) -> None:
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(drop_rate)
        self.attention = nn.Linear(backbone.out_channels, 1)
        self.fc = nn.Linear(backbone.out_channels, num_classes)

    def forward_parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.dropout(self.backbone.pool(self.backbone(x)))
        return torch.sigmoid(self.attention(f)), self.fc(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha, z = self.forward_parts(x)
        return alpha * z


def rank_regularisation(alpha: torch.Tensor, beta: float, margin: float) -> torch.Tensor:
    """``max(0, margin - (mean of the top beta*B alphas - mean of the rest))``."""
    a = alpha.flatten().float()
    n_high = int(math.floor(beta * a.numel()))
    if n_high < 1 or n_high >= a.numel():
        return a.sum() * 0.0
    ranked, _ = torch.sort(a, descending=True)
    gap = ranked[:n_high].mean() - ranked[n_high:].mean()
    return F.relu(margin - gap)


def low_importance_mask(alpha: torch.Tensor, beta: float) -> torch.Tensor:
    """True for the samples outside the top ``beta`` fraction of importance."""
    a = alpha.flatten()
    n_high = int(math.floor(beta * a.numel()))
    mask = torch.ones_like(a, dtype=torch.bool)
    mask[torch.argsort(a, descending=True)[:n_high]] = False
    return mask


@register_method("scn")
class SCN(Method):
    """Self-Cure Network: importance weighting, rank regularisation, relabelling."""

    hparams = {
        "beta": HParam(0.7, range=(0, 1), help="share of the batch in the high-importance group"),
        "delta1": HParam(0.07, range=(0, 1), help="rank-regularisation margin (0.15 at batch 1024)"),
        "delta2": HParam(0.2, range=(0, 1),
                         help="relabelling margin: the prediction's probability must beat the label's by it"),
        "relabel_epoch": HParam(10, range=(1, None), unit="epoch", help="first (1-based) epoch that relabels"),
        "relabel_scope": HParam("all", choices=("all", "low"),
                                help="all: every sample (official code); low: the low-importance group (paper)"),
        "drop_rate": HParam(0.0, range=(0, 1), help="dropout on the pooled feature before both heads"),
    }
    recipe = {
        "optimizer": "adam", "lr": 1e-3, "weight_decay": 1e-4, "schedule": "exponential",
        "gamma": 0.9, "epochs": 70, "batch_size": 64,
        # src/train.py RafDataSet: with p 0.5 one of (flip, Gaussian noise of variance 30), each equally likely
        "aug_flip": 0.25, "aug_noise": 0.25, "aug_flip_or_noise": True, "normalize": "imagenet",
    }

    def __init__(self, ctx, hparams) -> None:
        super().__init__(ctx, hparams)
        self._epoch = 0
        self._relabelled = torch.zeros((), dtype=torch.long, device=ctx.device)
        self._initial = ctx.train_labels.clone()
        self.trace = SampleTrace(ctx.num_train, ctx.device, importance=torch.float32, low=torch.float32)

    def build_model(self) -> nn.Module:
        return SCNNet(create_backbone(**self.backbone_kwargs()), self.ctx.num_classes, self.hp.drop_rate)

    def on_epoch_start(self, epoch: int) -> None:
        self._epoch = epoch
        self._relabelled.zero_()

    def training_step(self, batch: Batch) -> StepOutput:
        alpha, z = self.model.forward_parts(batch.images)
        logits = alpha * z
        ce = F.cross_entropy(logits, batch.labels)
        rr = rank_regularisation(alpha, self.hp.beta, self.hp.delta1)
        self.trace.write(batch.indices, importance=alpha, low=low_importance_mask(alpha.detach(), self.hp.beta))
        if self._epoch + 1 >= self.hp.relabel_epoch:
            eligible = low_importance_mask(alpha, self.hp.beta) if self.hp.relabel_scope == "low" else None
            self._relabelled += relabel_(self.ctx.train_labels, batch.indices, logits.detach(),
                                         self.hp.delta2, eligible)
        return StepOutput(ce + rr, logits, {"rank_reg": rr.detach(), "alpha_mean": alpha.detach().mean()})

    def on_epoch_end(self, epoch: int) -> dict[str, float]:
        return {"relabelled": int(self._relabelled)}

    def mechanism(self) -> dict[str, Probe]:
        seen = self.trace.seen()
        return {"low_importance": NoiseFlag(self.trace["low"] > 0, valid=seen),
                "importance": NoiseScore(-self.trace["importance"], valid=seen),  # low importance: noisy
                **relabel_report(self.ctx.train_labels, self._initial, self.hp.relabel_epoch, self.ctx.epochs)}

    def mechanism_off(self, last: dict[str, float]) -> list[str]:
        return relabel_off(last, self.hp.relabel_epoch, self.ctx.epochs, official_start(type(self)))
