"""Co-teaching (Han, Yao, Yu, Niu, Xu, Hu, Tsang, Sugiyama, NeurIPS 2018).

Networks fit clean labels before they memorise flipped ones, so early in training a sample with a
small loss is probably a correctly labelled one. Co-teaching trains **two networks** on the same
batches and lets each choose the samples the *other* learns from: each network ranks the batch by its
own cross-entropy and keeps the ``1 - R`` fraction with the smallest loss (``int((1 - R) * B)``
samples); network 1 is then updated on the samples network 2 kept and network 2 on those network 1
kept. Because the two networks start from different weights they make different mistakes, and the
exchange keeps one network's accumulated selection errors from feeding straight back into itself.

The **forget rate** ``R`` grows from 0 to ``forget_rate`` (the paper's tau) over the first
``num_gradual`` epochs (T_k), then stays: early on, when losses say little, nothing is dropped. The
method assumes the noise rate is known: as in the official code (``main.py``, ``forget_rate =
noise_rate`` unless ``--forget_rate`` is given), ``forget_rate`` defaults to the run's **nominal** noise
rate (``--rate``), which the engine gives it when the run's recipe is resolved and ``config.json``
records (``HParam(default_from="noise_rate")``); never the realised rate. A run on a label file has no
nominal rate and must give it (``--set forget_rate=0.3``); ``--noise none`` gives 0, which trains two
independent networks on every sample.

Loss (official ``loss.py``, ``loss_coteaching``): per-sample cross-entropy of each network, a stable
ascending sort, the first ``int((1 - R) * B)`` indices of each, and each network's cross-entropy over
the peer's indices. Both networks are one module (``net1``, ``net2``) trained by one optimiser on the
sum of the two losses; their parameters are disjoint, so each network gets exactly the gradient of
its own loss, and Adam, being per parameter, updates each as the official code's two Adams do.

Where the code and the paper differ, the code is the default and the paper a switch:

* ``loss_scale``: the code takes the mean cross-entropy over the kept samples and divides it by their
  count once more (``torch.sum(mean) / num_remember``), so the loss is ``1 / num_remember`` of the
  mean (``code``); ``mean`` is the plain mean over the selected set, the loss the paper's update is written
  with. Adam is nearly blind to the scale (up to its epsilon); SGD is not.
* ``ramp``: the code fills the first T_k entries of its per-epoch schedule with
  ``linspace(0, tau ** c, T_k)`` and trains its first epoch with entry 1 (entry 0 belongs to the
  evaluation of the untrained networks), so training epoch ``e`` (1-based) drops
  ``tau ** c * e / (T_k - 1)`` for ``e < T_k`` and ``tau`` afterwards (``code``). The paper's Algorithm 1
  updates ``R(T) = 1 - min(T / T_k * tau, tau)`` after epoch ``T``, so epoch ``e`` drops
  ``tau * min((e - 1) ** c / T_k, 1)`` (``paper``; the exponent's place, ``T ** c / T_k``, is as recalled
  from the paper's experiments section and is UNVERIFIED against the PDF).

``num_gradual`` is a number of epochs (unit ``epochs``): a run on a shorter schedule than the official
199 epochs ramps over the same fraction of training (:mod:`fer_bench.engine.timescale`).

Evaluation: the official code tests both networks every epoch and logs both accuracies; the suite
needs one prediction, so ``predict_with`` chooses the network (``first``, the official log's first
column, by default); ``fer-bench export`` writes that network alone.

Official recipe (``main.py``, CIFAR-10): Adam, lr 0.001, no weight decay, batch 128, no augmentation
(``transforms.ToTensor()`` only), ``n_epoch = 200``, which trains 199 epochs (``for epoch in range(1,
n_epoch)``; entry 0 of its plans belongs to the evaluation of the untrained networks), so the recipe's
``epochs`` is 199. The lr is constant before training epoch ``epoch_decay_start = 80`` and from it decays
per epoch as ``(200 - e) / 120`` of the lr (1/120 in the last epoch), while Adam's beta1 drops from 0.9 to
0.1 (``alpha_plan``, ``beta1_plan``, ``adjust_learning_rate``): the engine's ``delayed_linear`` schedule
with ``decay_start`` 80 and ``decay_beta1`` 0.1, the same lr and betas epoch by epoch. (CIFAR-100 starts
the decay at 100: ``--set decay_start=100``.) A profile or ``--protocol unified`` replaces the schedule
with its own, decay start and beta1 included; on another number of epochs ``decay_start`` is mapped to
the same fraction of training, as an ``epoch`` time constant. Deviations:

* the official networks are a 9-layer CNN (``model.py``) trained from scratch; here each network is the
  recipe's backbone (``backbone_modules`` names both, so pretrained weights load into both: the two
  networks then start from the same backbone and differ only in their classifiers' initialisation);
* the official loop stops after ``num_iter_per_epoch + 1`` = 401 batches of an epoch (it matters for
  MNIST only); the engine trains every full batch;
* ``np.argsort``'s default sort is not stable; ties are broken here by the lower index (a stable sort);
* with ``int((1 - R) * B) = 0`` (a tiny batch at a huge forget rate) the code divides by zero; one
  sample is kept instead;
* several processes: each rank ranks and exchanges within its shard of the global batch, as a smaller
  batch would.

Mechanism (``mech_*`` columns, scored against the flipped set the method never sees): ``dropped_1`` /
``dropped_2``, the samples network 1 / 2 left out of its peer's update at their last visit (share,
precision and recall against the flipped set; the official code logs the other side, its "pure ratio":
the share of clean labels among the kept samples);
``loss_1``, network 1's loss at the last visit as a noise score (AUROC); ``forget_rate``, the epoch's
scheduled rate.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..models import create_backbone
from ..registry import register_method
from .base import Batch, Method, MethodContext, StepOutput
from .baseline import Classifier
from .hparams import HParam
from .probes import NoiseFlag, NoiseScore, Probe, SampleTrace

# A ramp whose full rate comes this many times later in training than officially is reported as late.
LATE = 1.5


class TwoNetworks(nn.Module):
    """The two peer networks, each a backbone and a linear classifier; ``forward`` gives both logits."""

    def __init__(self, net1: nn.Module, net2: nn.Module) -> None:
        super().__init__()
        self.net1 = net1
        self.net2 = net2

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net1(x), self.net2(x)


def forget_rate_at(epoch: int, forget_rate: float, num_gradual: int, exponent: float = 1.0,
                   ramp: str = "code") -> float:
    """The share of each batch dropped in (1-based) training ``epoch``; see the module's docstring."""
    if epoch < 1:
        raise ValueError(f"epoch is 1-based, got {epoch}")
    if ramp == "code":
        if epoch >= num_gradual:
            return forget_rate
        top = forget_rate ** exponent
        if epoch == num_gradual - 1:
            return top  # linspace ends exactly at its stop
        return epoch * (top / (num_gradual - 1))  # linspace's step, times the index
    if ramp == "paper":
        return forget_rate * min((epoch - 1) ** exponent / num_gradual, 1.0)
    raise ValueError(f"unknown ramp {ramp!r}; known: code, paper")


def kept_count(batch_size: int, forget_rate: float) -> int:
    """``int((1 - R) * B)`` as the official code computes it, and at least one."""
    return max(1, int((1 - forget_rate) * batch_size))


def small_loss_indices(losses: torch.Tensor, keep: int) -> torch.Tensor:
    """The positions of the ``keep`` smallest losses, smallest first (ties: the lower position first)."""
    return torch.argsort(losses.detach(), stable=True)[:keep]


class Exchange(NamedTuple):
    """One batch of Co-teaching: each network's loss on its peer's selection, and the selections."""

    loss1: torch.Tensor  # network 1's cross-entropy over the samples network 2 kept
    loss2: torch.Tensor  # network 2's over those network 1 kept
    kept1: torch.Tensor  # positions in the batch of network 1's small-loss samples, smallest loss first
    kept2: torch.Tensor
    ce1: torch.Tensor    # network 1's per-sample cross-entropy (what it ranks by)
    ce2: torch.Tensor


def coteaching_losses(logits1: torch.Tensor, logits2: torch.Tensor, labels: torch.Tensor, forget_rate: float,
                      loss_scale: str = "code") -> Exchange:
    """Each network ranks the batch by its own cross-entropy and keeps ``int((1 - forget_rate) * B)`` samples;
    each network's loss is its cross-entropy over the samples its peer kept (official ``loss_coteaching``)."""
    ce1 = F.cross_entropy(logits1.float(), labels, reduction="none")
    ce2 = F.cross_entropy(logits2.float(), labels, reduction="none")
    keep = kept_count(labels.numel(), forget_rate)
    kept1, kept2 = small_loss_indices(ce1, keep), small_loss_indices(ce2, keep)
    loss1 = F.cross_entropy(logits1[kept2].float(), labels[kept2])
    loss2 = F.cross_entropy(logits2[kept1].float(), labels[kept1])
    if loss_scale == "code":
        loss1, loss2 = loss1 / keep, loss2 / keep
    elif loss_scale != "mean":
        raise ValueError(f"unknown loss_scale {loss_scale!r}; known: code, mean")
    return Exchange(loss1, loss2, kept1, kept2, ce1.detach(), ce2.detach())


@register_method("coteaching")
class CoTeaching(Method):
    """Co-teaching: two networks, each trained on the samples of small loss under the other."""

    hparams = {
        "forget_rate": HParam(None, type=float, range="[0, 1)", default_from="noise_rate",
                              help="share of each batch dropped after the ramp (tau); default: the run's "
                                   "nominal noise rate, as the official code"),
        "num_gradual": HParam(10, range=(1, None), unit="epochs",
                              help="epochs over which the forget rate ramps up (T_k)"),
        "exponent": HParam(1.0, range="(0, inf)", help="exponent c of the ramp (see ramp)"),
        "ramp": HParam("code", choices=("code", "paper"),
                       help="code: linspace(0, tau^c, T_k) from epoch 1; paper: Algorithm 1, from 0 after epoch 1"),
        "loss_scale": HParam("code", choices=("code", "mean"),
                             help="code: mean CE over the kept samples / their count (official); mean: the mean"),
        "predict_with": HParam("first", choices=("first", "second"),
                               help="which network predicts (the official code tests both)"),
    }
    recipe = {
        "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0,
        "schedule": "delayed_linear", "decay_start": 80, "decay_beta1": 0.1,
        "epochs": 199, "batch_size": 128,
        # main.py: transforms.ToTensor() only
        "aug_flip": 0.0, "aug_erase": 0.0,
    }
    backbone_modules = ("net1.backbone", "net2.backbone")

    def __init__(self, ctx: MethodContext, hparams: dict[str, Any]) -> None:
        super().__init__(ctx, hparams)
        self._rate = 0.0
        self.trace = SampleTrace(ctx.num_train, ctx.device, dropped_1=torch.float32, dropped_2=torch.float32,
                                  loss_1=torch.float32)

    def build_model(self) -> nn.Module:
        # built one after the other from the run's seed, so the two start from different weights
        net1 = Classifier(create_backbone(**self.backbone_kwargs()), self.ctx.num_classes)
        net2 = Classifier(create_backbone(**self.backbone_kwargs()), self.ctx.num_classes)
        return TwoNetworks(net1, net2)

    def inference_network(self) -> nn.Module:
        return self.model.net1 if self.hp.predict_with == "first" else self.model.net2

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return self.inference_network()(images)

    def on_epoch_start(self, epoch: int) -> None:
        self._rate = forget_rate_at(epoch + 1, self.hp.forget_rate, self.hp.num_gradual, self.hp.exponent,
                                    self.hp.ramp)

    def training_step(self, batch: Batch) -> StepOutput:
        logits1, logits2 = self.model(batch.images)
        ex = coteaching_losses(logits1, logits2, batch.labels, self._rate, self.hp.loss_scale)
        dropped1 = torch.ones(batch.labels.shape, dtype=torch.float32, device=batch.labels.device)
        dropped1[ex.kept1] = 0.0
        dropped2 = torch.ones_like(dropped1)
        dropped2[ex.kept2] = 0.0
        self.trace.write(batch.indices, dropped_1=dropped1, dropped_2=dropped2, loss_1=ex.ce1)
        logs = {"loss_net1": ex.loss1.detach(), "loss_net2": ex.loss2.detach()}  # (the rate: mech_forget_rate)
        return StepOutput(ex.loss1 + ex.loss2, logits1 if self.hp.predict_with == "first" else logits2, logs)

    def mechanism(self) -> dict[str, Probe]:
        seen = self.trace.seen()
        return {"dropped_1": NoiseFlag(self.trace["dropped_1"] > 0, valid=seen),
                "dropped_2": NoiseFlag(self.trace["dropped_2"] > 0, valid=seen),
                "loss_1": NoiseScore(self.trace["loss_1"], valid=seen),
                "forget_rate": self._rate}

    def full_rate_epoch(self, epochs: int, num_gradual: int, ramp: str) -> Optional[int]:
        """The first (1-based) epoch of ``epochs`` that drops the whole forget rate, or None."""
        hp = self.hp
        return next((e for e in range(1, epochs + 1)
                     if forget_rate_at(e, hp.forget_rate, num_gradual, hp.exponent, ramp) >= hp.forget_rate), None)

    def mechanism_off(self, last: dict[str, float]) -> list[str]:
        from ..engine.recipe import official_schedule  # (the engine's recipe imports the methods' registry)

        hp, epochs = self.hp, self.ctx.epochs
        if hp.forget_rate == 0:
            return ["small-loss selection off (forget_rate = 0): each network trains on every sample, so the two "
                    "are independent cross-entropy networks"]
        off = []
        full = self.full_rate_epoch(epochs, hp.num_gradual, hp.ramp)
        official_epochs = official_schedule(type(self).recipe).epochs
        official_full = self.full_rate_epoch(official_epochs, type(self).hparam_specs()["num_gradual"].default, "code")
        if full is None:
            off.append(f"the forget rate never reaches {hp.forget_rate:g} (num_gradual {hp.num_gradual} of "
                       f"{epochs} epochs)")
        elif official_full is not None and (full - 1) / epochs > LATE * (official_full - 1) / official_epochs:
            off.append(f"the forget rate reaches {hp.forget_rate:g} only after {(full - 1) / epochs:.0%} of training "
                       f"(officially {(official_full - 1) / official_epochs:.0%}): epoch {full} of {epochs}")
        elif full == 1 and official_full is not None and official_full > 1:
            # a ramp shorter than an epoch (mapped: 10 of 199 epochs is 0.75 of 15) cannot be drawn per epoch, so the
            # first batches, whose losses say nothing yet of the labels, already drop the whole rate
            off.append(f"no ramp: the forget rate is {hp.forget_rate:g} from the first epoch (officially it rises over "
                       f"epochs 1-{official_full - 1} of {official_epochs} and is full from epoch {official_full}); "
                       f"num_gradual {hp.num_gradual} of {epochs} epochs")
        if last.get("dropped_1_share") == 0 and last.get("dropped_2_share") == 0:
            off.append(f"no sample was dropped in the last epoch (forget rate {last.get('forget_rate', 0):g} of "
                       f"a batch of {self.ctx.recipe['batch_size']})")
        return off
