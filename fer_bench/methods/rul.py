"""RUL: Relative Uncertainty Learning (Zhang, Wang, Deng, NeurIPS 2021).

The backbone's last feature map feeds two heads of the same shape (batch
norm, dropout, a linear map to 64 dimensions, batch norm): a **mean** head
giving a feature mu and a **log-variance** head giving s, whose mean
``u = mean(exp(s))`` is the sample's uncertainty.

Training mixes the mean features of random pairs (a permutation of the
batch), weighting each side by its *relative* uncertainty,
``w_i = u_i / (u_i + u_pi(i))``, and the **add-up loss** asks the classifier to
predict both labels from the mixture with equal weights:
``L = 1/2 CE(fc(m), y) + 1/2 CE(fc(m), y_pi)``. To predict both, the mixture
must lean towards the harder sample, so the uncertainty head learns which
samples are hard (noisy or ambiguous). At test time the prediction is
``fc(mu(x))``: the uncertainty branch is not used.

Input augmentation (official recipe, ``src/dataset.py``): SCN's rule, with
p = 0.5 a flip or Gaussian noise of variance 30, each equally likely, then
erasing; ImageNet normalisation as the code uses with ``resnet18_msceleb.pth``.

Choices (code vs paper): pairs are a random permutation as in the code (a
sample may be paired with one of the same class, or itself); the paper's text
mixes samples of different classes, which ``--set pairs=different_class`` does
(each sample draws a partner of another class from the batch when there is one). The authors added SCN's relabelling for their noisy-label
results, but it is not in the released code nor part of the method the paper
describes, so it is off by default (``--set relabel=true`` turns it on, with
SCN's margin and start epoch): the default measures RUL itself. The classifier
trains with 10x the backbone's lr, as in the code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models import create_backbone
from ..registry import register_method
from .base import Batch, Method, StepOutput
from .hparams import HParam
from .probes import NoiseScore, Probe, SampleTrace
from .relabel import official_start, relabel_, relabel_off, relabel_report

EMBED_DIM = 64
# The uncertainty separates flipped from unflipped images when its AUROC reaches this
# (results/synthfer/protocol/CRITERIA.md, R1).
MIN_AUROC = 0.6


class UncertaintyHead(nn.Module):
    """BN2d (no affine) -> dropout -> flatten -> linear to 64 -> BN1d, as in the official code."""

    def __init__(self, channels: int, height: int, width: int, dropout: float) -> None:
        super().__init__()
        self.norm_in = nn.BatchNorm2d(channels, affine=False, eps=2e-5)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(channels * height * width, EMBED_DIM)
        self.norm_out = nn.BatchNorm1d(EMBED_DIM, eps=2e-5)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.norm_out(self.linear(torch.flatten(self.dropout(self.norm_in(fmap)), 1)))


class RULNet(nn.Module):
    def __init__(self, backbone: nn.Module, image_size: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.backbone = backbone
        with torch.no_grad():  # the heads flatten the map, so they need its size at this input size
            was_training = backbone.training
            _, c, h, w = backbone.eval()(torch.zeros(1, 3, image_size, image_size)).shape
            backbone.train(was_training)
        self.mean_head = UncertaintyHead(c, h, w, dropout)
        self.logvar_head = UncertaintyHead(c, h, w, dropout)
        self.fc = nn.Linear(EMBED_DIM, num_classes)

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean feature mu ``(B, 64)`` and uncertainty u ``(B, 1)``."""
        fmap = self.backbone(x)
        mu = self.mean_head(fmap)
        u = torch.exp(self.logvar_head(fmap)).mean(dim=1, keepdim=True)
        return mu, u

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.mean_head(self.backbone(x)))


def different_class_partners(labels: torch.Tensor) -> torch.Tensor:
    """For each sample, a random partner in the batch with another label (itself if none has one)."""
    scores = torch.rand(labels.shape[0], labels.shape[0], device=labels.device)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    scores = scores.masked_fill(same, -1.0)
    partner = scores.argmax(dim=1)
    alone = same.all(dim=1)
    return torch.where(alone, torch.arange(labels.shape[0], device=labels.device), partner)


def mix_by_uncertainty(mu: torch.Tensor, u: torch.Tensor, perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``w * mu + (1 - w) * mu[perm]`` with ``w = u / (u + u[perm])``; returns (mixture, w)."""
    w = u / (u + u[perm])
    return w * mu + (1 - w) * mu[perm], w


@register_method("rul")
class RUL(Method):
    """Relative Uncertainty Learning: uncertainty-weighted feature mixup with the add-up loss."""

    hparams = {
        "dropout": HParam(0.4, range=(0, 1), help="dropout in the mean and uncertainty heads"),
        "pairs": HParam("random", choices=("random", "different_class"),
                        help="mixup partners: random (official code) or of another class (paper)"),
        "relabel": HParam(False, help="SCN-style relabelling, used by the authors for noisy runs (not in the code)"),
        "delta2": HParam(0.2, range=(0, 1), help="relabelling margin (with relabel=true)"),
        "relabel_epoch": HParam(10, range=(1, None), unit="epoch",
                                help="first (1-based) epoch that relabels (with relabel=true)"),
    }
    recipe = {
        "optimizer": "adam", "lr": 2e-4, "weight_decay": 1e-4, "schedule": "exponential",
        "gamma": 0.9, "epochs": 60, "batch_size": 64,
        # src/dataset.py: with p 0.5 one of (flip, Gaussian noise of variance 30), each equally likely
        "aug_flip": 0.25, "aug_noise": 0.25, "aug_flip_or_noise": True, "normalize": "imagenet",
    }

    def __init__(self, ctx, hparams) -> None:
        super().__init__(ctx, hparams)
        self._epoch = 0
        self._relabelled = torch.zeros((), dtype=torch.long, device=ctx.device)
        self._initial = ctx.train_labels.clone()
        self.trace = SampleTrace(ctx.num_train, ctx.device, uncertainty=torch.float32)

    def build_model(self) -> nn.Module:
        return RULNet(create_backbone(**self.backbone_kwargs()), self.ctx.recipe["image_size"],
                      self.ctx.num_classes, self.hp.dropout)

    def inference_network(self) -> nn.Module:
        """Backbone, mean head and classifier: the log-variance head only weighs training mixtures."""
        return nn.Sequential(self.model.backbone, self.model.mean_head, self.model.fc)

    def param_groups(self) -> list[dict]:
        head = list(self.model.fc.parameters())
        head_ids = {id(p) for p in head}
        rest = [p for p in self.model.parameters() if id(p) not in head_ids]
        return [{"params": rest}, {"params": head, "lr_scale": 10.0}]

    def on_epoch_start(self, epoch: int) -> None:
        self._epoch = epoch
        self._relabelled.zero_()

    def training_step(self, batch: Batch) -> StepOutput:
        mu, u = self.model.embed(batch.images)
        self.trace.write(batch.indices, uncertainty=u)
        if self.hp.pairs == "random":
            perm = torch.randperm(mu.shape[0], device=mu.device)
        else:
            perm = different_class_partners(batch.labels)
        mixed, _ = mix_by_uncertainty(mu, u, perm)
        logits_mixed = self.model.fc(mixed)
        loss = 0.5 * F.cross_entropy(logits_mixed, batch.labels) + 0.5 * F.cross_entropy(logits_mixed, batch.labels[perm])
        logits = self.model.fc(mu.detach())  # the test-time prediction, for train accuracy and relabelling
        if self.hp.relabel and self._epoch + 1 >= self.hp.relabel_epoch:
            self._relabelled += relabel_(self.ctx.train_labels, batch.indices, logits, self.hp.delta2)
        return StepOutput(loss, logits)

    def on_epoch_end(self, epoch: int) -> dict[str, float]:
        return {"relabelled": int(self._relabelled)} if self.hp.relabel else {}

    def mechanism(self) -> dict[str, Probe]:
        found: dict[str, Probe] = {"uncertainty": NoiseScore(self.trace["uncertainty"], valid=self.trace.seen())}
        if self.hp.relabel:
            found.update(relabel_report(self.ctx.train_labels, self._initial, self.hp.relabel_epoch, self.ctx.epochs))
        return found

    def mechanism_off(self, last: dict[str, float]) -> list[str]:
        off = []
        separation = last.get("uncertainty_auroc")
        if separation is not None and separation < MIN_AUROC:
            off.append(f"its uncertainty does not single out the flipped labels (AUROC {separation:.2f} between "
                       f"flipped and unflipped training images; {MIN_AUROC} or more counts as separating)")
        if self.hp.relabel:
            off += relabel_off(last, self.hp.relabel_epoch, self.ctx.epochs, official_start(type(self)))
        return off
