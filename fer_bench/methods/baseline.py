"""Baseline: a ResNet trained with plain cross-entropy on the (noisy) labels.

The reference point of every table: no noise handling at all. Its official
recipe is the one SCN, RUL and EAC share on RAF-DB (Adam, weight decay 1e-4,
ExponentialLR(0.9) per epoch, batch 64, 60 epochs), with lr 2e-4 as EAC uses
for ResNet-18.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models import create_backbone
from ..registry import register_method
from .base import Batch, Method, StepOutput


class Classifier(nn.Module):
    """Backbone, global average pooling, linear classifier."""

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(backbone.out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone.pool(self.backbone(x)))


@register_method("baseline")
class Baseline(Method):
    """ResNet + cross-entropy on the noisy labels (no noise handling)."""

    recipe = {
        "optimizer": "adam", "lr": 2e-4, "weight_decay": 1e-4,
        "schedule": "exponential", "gamma": 0.9, "epochs": 60, "batch_size": 64,
    }

    def build_model(self) -> nn.Module:
        return Classifier(create_backbone(**self.backbone_kwargs()), self.ctx.num_classes)

    def training_step(self, batch: Batch) -> StepOutput:
        logits = self.model(batch.images)
        return StepOutput(F.cross_entropy(logits, batch.labels), logits)
