"""NLA: Navigating Label Ambiguity (Lee, Choi, Kim, Kim, Nam, AAAI 2025; arXiv 2502.09993).

NLA trains a plain ResNet classifier with two additions:

* **Noise-aware adaptive weighting (NAW).** Each sample's prediction is summarised by two
  numbers: ``p_gt``, the probability of its (possibly noisy) label, and ``p_nn``, that of its
  *nearest negative*, the most probable other class. Where the label is the top class, the
  sample's weight is a bivariate normal density over ``(p_gt, p_nn)`` centred on (0.5, 0.5) and
  stretched along the anti-diagonal ``p_gt + p_nn = 1``: ambiguous samples, whose label only just
  beats another class, weigh most; confidently fitted ones weigh less. Where another class beats the
  label, a second density, centred on (0.30, 0.15) and stretched along the diagonal, weighs the sample
  by how far the other class leads: a label the network contradicts confidently (a likely flipped
  label) gets a weight near 0, one it nearly agrees with gets the largest weight of all. The loss is
  ``lam_a * CE + lam_b * w * CE`` (per sample, averaged over the batch), so NAW moves each sample's
  cross-entropy weight within ``[lam_a, lam_a + lam_b * max w]``.
* **Consistency regularisation.** The network also sees the mirror image of each (augmented,
  erased) training image, and a Jensen-Shannon-like divergence between the two predictions, weighted
  by ``lam_c``, asks them to agree.
* **The sigma scheduler.** The first density's correlation grows during training: its off-diagonal
  covariance is multiplied by ``eps = 1 - exp(slope * epoch / epochs)`` (epoch 0-based), 0 in the first
  epoch (an isotropic density) and 0.95 after a fifth of training at the official slope of -15.

The densities' covariances come from a major standard deviation ``a`` and a ratio ``r`` (``b = a / r``):
variances ``a^2 + b^2`` on the diagonal and ``±(a^2 - b^2)`` off it (minus for the first density, plus
for the second), i.e. standard deviations ``sqrt(2) a`` along the long axis and ``sqrt(2) b`` across it.
The densities are not normalised to a peak of 1: at the official values the first peaks at 0.25 and
the second at 0.58.

**Sources.** ``src/loss.py`` (``NAW``, ``co_gau``, ``jensen_shannon_divergence``,
``exponential_scheduler``), ``src/train.py`` (the step: how the covariances are built from the
standard deviations, the three weighted terms, the mirror view), ``src/dataset.py`` (the mirror is the
transformed image flipped, erased patch included; Gaussian noise with p 0.5 on the raw image),
``src/model.py`` (ResNet-18, global pooling, one linear layer) and ``main_rafdb.py`` (recipe and
defaults) of ``jungyu0413/NLA`` at b86f31f (2025-05-14). The issue that asked for this method said
``src/train.py`` was missing from the repository; the snapshot of the repository read here has it
(added 2025-03-31, commit 9a1ec4a), so every part of the training step follows the code, and nothing
had to be taken from the paper. The paper's own text could not be read here: only its abstract and a
third-party summary (``L_total = lambda L_NAW-CE + (1 - lambda) L_reg`` with ``L_NAW-CE = (1 + w) L_CE``),
which the code's ``lam_a = lam_b = lam_c = 0.5`` matches exactly (``lambda = 0.5``).

**Choices, each a switch whose default is the official code:**

* ``naw_form``: ``per_sample`` is the current code, a density per sample. The code before b86f31f
  (2025-05-14, three months after the paper) evaluated the quadratic form on all *pairs* of the batch,
  ``d_i^T S^-1 d_j``; broadcast against the per-sample cross-entropy, each sample's effective weight was
  the mean over the batch of its column. ``pairwise`` reproduces that; which of the two produced the
  published numbers is not stated.
* ``jsd_form``: the code's "Jensen-Shannon divergence" averages the two *logit* vectors, and takes
  ``KL(softmax(mean logits) || softmax(view))`` for each view (``F.kl_div``'s argument order), halved and
  summed. ``mixture`` is the divergence as usually defined, ``1/2 KL(p || m) + 1/2 KL(q || m)`` with
  ``m = (p + q) / 2`` of the probabilities (what the name promises; the paper's formula could not be read).
* ``jsd_reduction``: the code sums the divergence over the batch (``reduction='sum'``), so its weight
  grows with the batch size (32 officially); ``mean`` averages it per sample.
* ``weight_grad``: the code never detaches the NAW weight, so the gradient also flows through the
  densities into the probabilities (the weighted term pushes a sample towards a higher-density
  ``(p_gt, p_nn)``); ``false`` treats the weight as a per-step constant.
* ``sigma_scheduler``: the code's ``sch_bool``; ``false`` gives ``eps = 1`` from the first epoch.

**Time constants.** The sigma scheduler is already a function of the *fraction* of training done
(``epoch / epochs``, the run's own epochs), so a shortened schedule keeps it by construction (the same
``eps`` at the same fraction of training); ``slope`` therefore has no ``unit`` (mapping it as well would
apply the schedule change twice). NLA has no other schedule point or momentum.

**Deviations.** The official model's extra ``Linear(512, 1024)`` (``embed``) is never used in the
forward pass (Adam skips it, as it gets no gradient), so it is left out. The official RAF-DB recipe loads
``resnet18_msceleb.pth`` (EAC's file; ``--pretrained``), as the other methods' do. The official loader
resizes with PIL to 224 before the flip and erasing; here one resampling from the image cache, as for
every method. In a multi-process run each rank computes NAW and the consistency on its share of the
batch (all per-sample quantities), and the summed consistency is multiplied by the number of processes,
so that the averaged gradients equal those of one process summing over the whole batch (the
``pairwise`` form's mean runs over the rank's share only).

**Input** (``main_rafdb.py``, ``src/dataset.py``): Gaussian noise of variance 30 on the raw image with
p 0.5, resize to 224, normalisation with the code's own statistics (``normalize: nla``), horizontal
flip with p 0.5, random erasing with p 0.5 and area 0.02-0.3; the mirror view is that image flipped.
The official noisy-label runs read their own label files (``--noise_name 10_1``: rate and seed, with a
third column marking the flipped samples), which the repository does not ship.

**Mechanism reported** (every epoch, scored by the engine against the flipped set): ``off_label``, the
samples whose label the network does not rank first (the second density's branch), as a flag with its
precision and recall; ``margin`` (``p_nn - p_gt``) and ``downweight`` (minus the NAW weight) as noise
scores with their AUROC; ``sigma_eps``, the scheduler's factor in the epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models import create_backbone
from ..registry import register_method
from .base import Batch, Method, StepOutput
from .baseline import Classifier
from .hparams import HParam
from .probes import NoiseFlag, NoiseScore, Probe, SampleTrace

NAW_FORMS = ("per_sample", "pairwise")
JSD_FORMS = ("logit_mean", "mixture")
REDUCTIONS = ("sum", "mean")


@dataclass(frozen=True)
class Gaussian:
    """A bivariate normal density over ``(x, y) = (p_gt, p_nn)`` with covariance ``[[var, cov], [cov, var]]``,
    times ``scale``."""

    mx: float
    my: float
    var: float
    cov: float
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.var > abs(self.cov):
            raise ValueError(f"covariance [[{self.var}, {self.cov}], [{self.cov}, {self.var}]] is not positive "
                             f"definite: the variance must exceed the covariance's magnitude")

    @property
    def det(self) -> float:
        return self.var ** 2 - self.cov ** 2

    @property
    def peak(self) -> float:
        """The density at its mean, ``scale / (2 pi sqrt(det))``."""
        return self.scale / (2 * math.pi * math.sqrt(self.det))

    def density(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The density at each ``(x[i], y[i])``: ``peak * exp(-d^T S^-1 d / 2)``."""
        dx, dy = x - self.mx, y - self.my
        quad = (self.var * (dx * dx + dy * dy) - 2 * self.cov * dx * dy) / self.det
        return self.peak * torch.exp(-0.5 * quad)

    def cross(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(N, N)``: ``peak * exp(-d_i^T S^-1 d_j / 2)`` for every pair (the code before b86f31f)."""
        dx, dy = x - self.mx, y - self.my
        quad = (self.var * (dx[:, None] * dx[None, :] + dy[:, None] * dy[None, :])
                - self.cov * (dx[:, None] * dy[None, :] + dy[:, None] * dx[None, :])) / self.det
        return self.peak * torch.exp(-0.5 * quad)


def covariance(std_major: float, ratio: float, sign: float) -> tuple[float, float]:
    """``(variance, covariance)`` of a density whose long axis has standard deviation ``sqrt(2) a`` and whose
    short one ``sqrt(2) a / ratio`` (``a = std_major``): ``a^2 + b^2`` and ``sign * (a^2 - b^2)``, ``b = a / ratio``.
    ``sign`` -1: long axis along the anti-diagonal (the code's ``t_minor``); +1: along the diagonal."""
    a2, b2 = std_major ** 2, (std_major / ratio) ** 2
    return a2 + b2, sign * (a2 - b2)


def sigma_eps(epoch: int, epochs: int, slope: float, on: bool = True) -> float:
    """The sigma scheduler's factor for a 0-based ``epoch`` of ``epochs``: ``1 - exp(slope * epoch / epochs)``,
    1 when the scheduler is off."""
    return 1.0 - math.exp(slope * epoch / epochs) if on else 1.0


def label_and_nearest_negative(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(p_gt, p_nn, on_top)``: the probability of each sample's label, of its most probable other class, and
    whether the label is ranked first (a tie with another class counts as first, as in the code)."""
    probs = torch.softmax(logits, dim=1)
    p_gt = probs.gather(1, labels[:, None]).squeeze(1)
    top2 = probs.topk(2, dim=1).values
    on_top = top2[:, 0] == p_gt
    p_nn = torch.where(on_top, top2[:, 1], top2[:, 0])
    return p_gt, p_nn, on_top


def naw_weights(p_gt: torch.Tensor, p_nn: torch.Tensor, on_top: torch.Tensor, true: Gaussian, false: Gaussian,
                form: str = "per_sample") -> torch.Tensor:
    """Each sample's NAW weight: ``true``'s density where its label is ranked first, ``false``'s elsewhere
    (``pairwise``: the mean over the batch of the pairwise form's column, the code before b86f31f)."""
    if form == "per_sample":
        return torch.where(on_top, true.density(p_gt, p_nn), false.density(p_gt, p_nn))
    if form == "pairwise":
        return torch.where(on_top[None, :], true.cross(p_gt, p_nn), false.cross(p_gt, p_nn)).mean(dim=0)
    raise ValueError(f"naw_form={form!r}: expected one of {', '.join(NAW_FORMS)}")


def consistency(logits: torch.Tensor, logits_mirror: torch.Tensor, form: str = "logit_mean") -> torch.Tensor:
    """Per-sample divergence ``(B,)`` between the predictions of an image and of its mirror.

    ``logit_mean`` (the code): ``1/2 [KL(s(m) || s(a)) + KL(s(m) || s(b))]`` with ``m = (a + b) / 2`` of the
    logits and ``s`` the softmax; ``mixture``: ``1/2 [KL(p || M) + KL(q || M)]``, ``M = (p + q) / 2``."""
    if form == "logit_mean":
        target = torch.softmax(0.5 * (logits + logits_mirror), dim=1)
        kl_a = F.kl_div(F.log_softmax(logits, dim=1), target, reduction="none").sum(1)
        kl_b = F.kl_div(F.log_softmax(logits_mirror, dim=1), target, reduction="none").sum(1)
    elif form == "mixture":
        log_p, log_q = F.log_softmax(logits, dim=1), F.log_softmax(logits_mirror, dim=1)
        log_m = torch.logsumexp(torch.stack([log_p, log_q]), dim=0) - math.log(2.0)
        kl_a = F.kl_div(log_m, log_p, reduction="none", log_target=True).sum(1)
        kl_b = F.kl_div(log_m, log_q, reduction="none", log_target=True).sum(1)
    else:
        raise ValueError(f"jsd_form={form!r}: expected one of {', '.join(JSD_FORMS)}")
    return 0.5 * (kl_a + kl_b)


_STD = "(0, inf)"


@register_method("nla")
class NLA(Method):
    """Navigating Label Ambiguity: noise-aware Gaussian weights on CE, mirror consistency."""

    hparams = {
        "lam_a": HParam(0.5, range=(0, None), help="weight of the plain cross-entropy"),
        "lam_b": HParam(0.5, range=(0, None), help="weight of the NAW-weighted cross-entropy"),
        "lam_c": HParam(0.5, range=(0, None), help="weight of the mirror-consistency divergence"),
        "mu_x_t": HParam(0.5, range=(0, 1), help="label ranked first: the density's centre in p_gt"),
        "mu_y_t": HParam(0.5, range=(0, 1), help="label ranked first: the density's centre in p_nn"),
        "mu_x_f": HParam(0.30, range=(0, 1), help="label not ranked first: the density's centre in p_gt"),
        "mu_y_f": HParam(0.15, range=(0, 1), help="label not ranked first: the density's centre in p_nn"),
        "t_std_major": HParam(0.8, range=_STD, help="label ranked first: std a (long axis sqrt(2) a, anti-diagonal)"),
        "t_std_ratio": HParam(2.0, range=_STD, help="label ranked first: a over the short axis' b"),
        "f_std_major": HParam(0.91, range=_STD, help="label not ranked first: std a (long axis sqrt(2) a, diagonal)"),
        "f_std_ratio": HParam(6.0, range=_STD, help="label not ranked first: a over the short axis' b"),
        "t_lambda": HParam(1.0, range=(0, None), help="scale of the label-ranked-first density"),
        "slope": HParam(-15.0, range=(None, 0),
                        help="sigma scheduler: eps = 1 - exp(slope * epoch/epochs), a fraction of the run"),
        "sigma_scheduler": HParam(True, help="true: the scheduler grows the first density's correlation (sch_bool); "
                                             "false: eps = 1 throughout"),
        "naw_form": HParam("per_sample", choices=NAW_FORMS,
                           help="per_sample: a density per sample (code); pairwise: the code before its May 2025 fix"),
        "jsd_form": HParam("logit_mean", choices=JSD_FORMS,
                           help="logit_mean: KL to the softmax of the mean logits (code); mixture: textbook JSD"),
        "jsd_reduction": HParam("sum", choices=REDUCTIONS,
                                help="sum: summed over the batch (code); mean: averaged per sample"),
        "weight_grad": HParam(True, help="true: gradient through the NAW weight (code); false: weight detached"),
    }
    recipe = {
        # main_rafdb.py: Adam 1e-4, wd 1e-4, ExponentialLR(0.9) per epoch, 60 epochs, batch 32, 224 px
        "optimizer": "adam", "lr": 1e-4, "weight_decay": 1e-4, "schedule": "exponential", "gamma": 0.9,
        "epochs": 60, "batch_size": 32, "image_size": 224,
        # src/dataset.py: Gaussian noise (variance 30) with p 0.5; main_rafdb.py: its own normalisation,
        # RandomHorizontalFlip(0.5), RandomErasing(scale=(0.02, 0.3))
        "aug_noise": 0.5, "aug_flip": 0.5, "aug_erase": 0.5, "aug_erase_scale": [0.02, 0.3], "normalize": "nla",
    }

    def __init__(self, ctx, hparams) -> None:
        super().__init__(ctx, hparams)
        self._eps = sigma_eps(0, ctx.epochs, self.hp.slope, self.hp.sigma_scheduler)
        f_var, f_cov = covariance(self.hp.f_std_major, self.hp.f_std_ratio, 1.0)
        self._false = Gaussian(self.hp.mu_x_f, self.hp.mu_y_f, f_var, f_cov)
        self.trace = SampleTrace(ctx.num_train, ctx.device, weight=torch.float32, margin=torch.float32,
                                  off_label=torch.float32)

    def build_model(self) -> nn.Module:
        return Classifier(create_backbone(**self.backbone_kwargs()), self.ctx.num_classes)

    def true_gaussian(self) -> Gaussian:
        """The density for samples whose label is ranked first, its correlation scaled by this epoch's eps."""
        var, cov = covariance(self.hp.t_std_major, self.hp.t_std_ratio, -1.0)
        return Gaussian(self.hp.mu_x_t, self.hp.mu_y_t, var, self._eps * cov, self.hp.t_lambda)

    def on_epoch_start(self, epoch: int) -> None:
        self._eps = sigma_eps(epoch, self.ctx.epochs, self.hp.slope, self.hp.sigma_scheduler)

    def loss_terms(self, logits: torch.Tensor, logits_mirror: torch.Tensor,
                   labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """The step's terms: per-sample ``ce``, ``weight``, ``p_gt``, ``p_nn``, ``on_top``, and the reduced
        ``consistency`` (before ``lam_c``) and total ``loss``."""
        logits, logits_mirror = logits.float(), logits_mirror.float()
        ce = F.cross_entropy(logits, labels, reduction="none")
        p_gt, p_nn, on_top = label_and_nearest_negative(logits, labels)
        weight = naw_weights(p_gt, p_nn, on_top, self.true_gaussian(), self._false, self.hp.naw_form)
        if not self.hp.weight_grad:
            weight = weight.detach()
        divergence = consistency(logits, logits_mirror, self.hp.jsd_form)
        if self.hp.jsd_reduction == "sum":  # over the whole (global) batch, as one process would
            reg = divergence.sum() * self.ctx.world.size
        else:
            reg = divergence.mean()
        loss = self.hp.lam_a * ce.mean() + self.hp.lam_b * (ce * weight).mean() + self.hp.lam_c * reg
        return {"ce": ce, "weight": weight, "p_gt": p_gt, "p_nn": p_nn, "on_top": on_top,
                "consistency": reg, "loss": loss}

    def training_step(self, batch: Batch) -> StepOutput:
        logits = self.model(batch.images)
        logits_mirror = self.model(torch.flip(batch.images, dims=[-1]))  # src/dataset.py: the view flipped
        t = self.loss_terms(logits, logits_mirror, batch.labels)
        self.trace.write(batch.indices, weight=t["weight"], margin=t["p_nn"] - t["p_gt"], off_label=~t["on_top"])
        return StepOutput(t["loss"], logits, {"consistency": t["consistency"].detach(),
                                              "naw_weight": t["weight"].detach().mean()})

    def mechanism(self) -> dict[str, Probe]:
        seen = self.trace.seen()
        return {"off_label": NoiseFlag(self.trace["off_label"] > 0, valid=seen),
                "margin": NoiseScore(self.trace["margin"], valid=seen),
                "downweight": NoiseScore(-self.trace["weight"], valid=seen),  # a low NAW weight: noisy
                "sigma_eps": self._eps}

    def mechanism_off(self, last: dict[str, float]) -> list[str]:
        off = []
        if self.hp.lam_b == 0:
            off.append("noise-aware adaptive weighting off (lam_b = 0)")
        if self.hp.lam_c == 0:
            off.append("mirror-consistency regularisation off (lam_c = 0)")
        eps = last.get("sigma_eps")
        if self.hp.sigma_scheduler and eps is not None and eps == 0.0:
            off.append("the sigma scheduler never correlated the label-ranked-first density (eps = 0 in the last "
                       "epoch: a one-epoch run, or slope = 0)")
        separation = last.get("downweight_auroc")
        if self.hp.lam_b > 0 and separation is not None and separation <= 0.5:
            off.append(f"NAW's weights do not single out the flipped labels (AUROC {separation:.2f} of a low weight "
                       f"between flipped and unflipped training images; 0.5 is chance)")
        return off
