"""DivideMix: learning with noisy labels as semi-supervised learning (Li, Socher, Hoi, ICLR 2020).

Two networks of the same architecture train side by side, and each decides for the *other* which
labels to trust:

* **Warm-up.** For the first ``warm_up`` epochs both networks train with plain cross-entropy on the
  noisy labels (with ``conf_penalty``, minus the entropy of their prediction, which keeps them from
  becoming confident too early), before they begin to memorise the flipped labels.
* **Co-divide.** At the start of every later epoch each network predicts, un-augmented as evaluation
  sees them, every training image (``ctx.train_pass``), and its per-sample cross-entropy against the
  training labels is scaled to [0, 1] over the set (``(l - min) / (max - min)``). A two-component
  Gaussian mixture fitted to these losses (:func:`fit_two_gaussians`) gives each sample its
  probability of belonging to the low-loss component: its clean probability ``w``. Samples with
  ``w > p_threshold`` form the *labelled* set, the others the *unlabelled* set, whose labels are
  dropped. Network 1 trains on network 2's division and network 2 on network 1's, so that neither
  confirms its own mistakes.
* **MixMatch with co-refinement and co-guessing.** Each image comes in two augmented views. A
  labelled sample's target is its label refined by the training network's own prediction,
  ``w * y + (1 - w) * (p(view 1) + p(view 2)) / 2``, sharpened with temperature ``T``
  (``p ** (1/T)``, renormalised): *label co-refinement*, ``w`` coming from the other network. An
  unlabelled sample's target is the mean of *both* networks' predictions on both views, sharpened:
  *label co-guessing*. All views and targets are then mixed with a random permutation of
  themselves, ``lam' * a + (1 - lam') * b`` with ``lam ~ Beta(alpha, alpha)`` and
  ``lam' = max(lam, 1 - lam)`` (so a mixture stays closer to its own sample). The loss is
  ``Lx + lambda_u * ramp * Lu + lambda_r * Lreg``: ``Lx`` the cross-entropy of the mixed labelled
  views with their mixed targets, ``Lu`` the mean squared error between the softmax of the mixed
  unlabelled views and their mixed targets, ``ramp`` rising linearly from 0 to 1 over ``rampup``
  epochs after the warm-up, and ``Lreg = sum_c pi_c log(pi_c / mean prediction_c)`` with a uniform
  prior ``pi``, which keeps the networks from predicting one class for everything.
* **Test.** The two networks' logits are averaged (``combine``).

The official code and the files followed (``LiJunnan1992/DivideMix``, ``Train_cifar.py``):
``eval_train`` (l. 165-190: the whole set with the test transform, the min-max normalisation, the
GMM with ``max_iter=10, tol=1e-2, reg_covar=5e-4``, the column of the smaller mean, the mean over
the last 5 epochs' losses at 90% noise), the main loop (l. 242-275: warm-up below ``warm_up``, then
``prob > p_threshold``, each network trained on the other's division, lr / 10 from epoch 150),
``train`` (l. 41-122: co-guessing l. 62-73, co-refinement l. 75-84, mixmatch l. 86-103, the prior
penalty l. 107-113, the trained network in train mode and the other in eval mode l. 42-43),
``SemiLoss``/``linear_rampup`` (l. 192-203: ``Lx``, ``Lu`` as the mean over all elements, the ramp
``clip((epoch + batch/iterations - warm_up) / 16, 0, 1)``), ``warmup``/``NegEntropy`` (l. 124-138 and
205-208: cross-entropy, plus the negative-entropy penalty for asymmetric noise) and ``test``
(l. 145-163: the sum of the two networks' logits). ``dataloader_cifar.py`` (l. 103-115): two
independent draws of the training transform per labelled and unlabelled image; the warm-up loader's
batch is twice the labelled batch (l. 167-174). ``Train_clothing1M.py`` (l. 84-109): mixup of the
labelled half only, no unlabelled loss.

The official recipe here is the CIFAR-10 script's (SGD, lr 0.02, momentum 0.9, weight decay 5e-4,
lr / 10 from epoch 150, 300 epochs, a labelled batch of 64, ``warm_up`` 10, ``T`` 0.5, ``alpha`` 4,
``lambda_u`` 25, ``p_threshold`` 0.5), not the Clothing1M one. The benchmark injects synthetic
symmetric and asymmetric noise at a nominal rate into a training set that every epoch visits whole,
which is the CIFAR setting the hyper-parameters were tuned on (the paper's appendix tables them per
noise rate); Clothing1M's real noise comes with a script that samples 1000 class-balanced batches of
a million images per epoch and warms up on 2000, and that drops the unlabelled loss (``lambda_u``
0), so its recipe turns co-guessing off. What the FER setting shares with Clothing1M, a backbone
pretrained at 224 px, comes from the run's profile (``arch``, ``pretrained``), not from the method.
The Clothing1M script's values are one ``--set`` away: ``optimizer=sgd lr=0.002 weight_decay=0.001
batch_size=64 epochs=80 milestones=[40] warm_up=1 alpha=0.5 lambda_u=0 conf_penalty=true
mix=labeled``; CIFAR-100's: ``warm_up=30``. The paper's appendix (its Table 7) sets ``lambda_u`` per
setting, where the script's default is 25: 0 for CIFAR-10 at 20% symmetric and 40% asymmetric
noise, 25 at 50-80%, 50 at 90%; for CIFAR-100 25 at 20%, 150 above; ``p_threshold`` 0.6 and
``loss_history`` 5 at 90% noise.

Switches (default: the official code's behaviour): ``combine`` (``logits``: the mean of the logits,
as ``test`` sums them; ``probs``: the mean of the probabilities, the paper's "average prediction");
``mix`` (``all``: every view is mixed and the unlabelled loss counts, CIFAR; ``labeled``: only the
labelled views, Clothing1M); ``conf_penalty`` (the warm-up's negative entropy: the CIFAR script turns
it on when its ``noise_mode`` is ``asym`` (l. 132-134, 237-238) and the Clothing1M script always; by
default it follows the run's noise model as the script's argument does, on unless the noise is symmetric
or absent, ``HParam(default_from="asymmetric_noise")``, and a run on a label file gives it with
``--set``); ``loss_history`` (epochs of losses averaged before the fit: 5 at 90% noise, else 1);
``lambda_r`` (the prior penalty's weight, 1 in the code).

Deviations, forced by the engine's one-optimiser, one-batch step or chosen for reproducibility:

* **One step trains both networks.** The official epoch trains network 1 through its labelled set
  and then network 2 through its own. Here every engine step draws one batch of ``batch_size``
  images (the recipe's 128 is the official warm-up batch and twice the labelled batch) and makes one
  iteration of each network on it: network 1 takes as labelled the batch's samples in network 2's
  labelled set and as unlabelled the rest, and network 2 the other way round. So an epoch still shows
  each network its labelled set once, but its unlabelled set once too (officially it cycles the
  unlabelled set so that every batch holds as many unlabelled as labelled images), the batch's
  labelled:unlabelled ratio follows the division instead of 1:1, and a network makes
  ``N / batch_size`` iterations an epoch instead of ``|labelled| / 64``: the same when half the set
  is labelled, fewer at low noise. Network 2's co-guessing uses network 1's weights from before the
  step (officially, those after network 1's whole epoch). The sum of the two losses makes one
  optimiser step over both networks' disjoint parameters, which for SGD (and Adam) is each
  network's own step.
* **The warm-up** trains both networks on the same batch, network 2 on an independently augmented
  second view (officially each network gets its own shuffle of the set).
* **Batch norm of the guesses.** The training network predicts the targets without gradient in
  train mode and in the official order, its labelled and unlabelled parts in forwards of their own,
  but a part of a single sample in eval mode (one value has no batch statistics), and, with
  ``--sync-bn``, every view whole (all ranks must make the same forwards, whatever their parts).
* **The mixture model** is fitted here (float64), as scikit-learn's ``GaussianMixture`` fits it
  (k-means start, EM until the mean log-likelihood moves less than ``tol`` or for ``max_iter``
  steps, ``reg_covar`` added to the variances, a final E-step), but from the exact two-means
  partition of the losses, which in one dimension is what scikit-learn's randomly started k-means
  finds, so the division is reproducible; all-equal losses (the official code divides by zero)
  count every sample as clean.
* **Augmentation.** CIFAR's random crop with 4 px of zero padding has no counterpart in the engine's
  augmentation; the recipe flips with p = 0.5 and neither crops nor erases.
* **Epochs.** The script's loop runs ``num_epochs + 1`` = 301 epochs; the recipe has the 300 of
  ``--num_epochs``, the last 150 at lr / 10.
* In a multi-process run rank 0 makes the pass over the training set and fits the mixtures, and every
  rank takes its divisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..engine import distributed
from ..models import create_backbone
from ..registry import register_method
from .base import Batch, Method, MethodContext, StepOutput
from .baseline import Classifier
from .hparams import HParam
from .probes import NoiseFlag, NoiseScore, Probe
from .relabel import LATE

# Train_cifar.py eval_train: GaussianMixture(n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4)
GMM_MAX_ITER = 10
GMM_TOL = 1e-2
GMM_REG_COVAR = 5e-4


# --- the co-divide: a two-component Gaussian mixture on normalised losses --------------------------------

def normalise_losses(losses: torch.Tensor) -> torch.Tensor:
    """``(l - min) / (max - min)`` over the set; all zeros when every loss is the same."""
    low, high = losses.min(), losses.max()
    if not bool(high > low):
        return torch.zeros_like(losses)
    return (losses - low) / (high - low)


def two_means(x: np.ndarray) -> np.ndarray:
    """The exact 2-means partition of the 1-D values ``x`` (bool, True: the upper cluster): of the
    ``n - 1`` splits of the sorted values, the one with the least within-cluster sum of squares."""
    order = np.argsort(x, kind="stable")
    s = x[order]
    n = len(s)
    k = np.arange(1, n)
    head = np.cumsum(s)[:-1]
    total = s.sum()
    # the within sum of squares is sum(x^2) - S1^2 / k - S2^2 / (n - k): maximise the subtracted part
    between = head ** 2 / k + (total - head) ** 2 / (n - k)
    split = int(np.argmax(between)) + 1
    upper = np.zeros(n, dtype=bool)
    upper[order[split:]] = True
    return upper


@dataclass
class Gaussians:
    """A two-component 1-D Gaussian mixture: means, variances and weights, each ``(2,)``."""

    means: np.ndarray
    variances: np.ndarray
    weights: np.ndarray

    def log_resp(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """The log responsibilities ``(n, 2)`` of ``x`` and its mean log-likelihood (the E-step)."""
        weighted = (-0.5 * (np.log(2 * np.pi) + (x[:, None] - self.means) ** 2 / self.variances)
                    - 0.5 * np.log(self.variances) + np.log(self.weights))
        norm = np.logaddexp(weighted[:, 0], weighted[:, 1])
        return weighted - norm[:, None], float(norm.mean())


def m_step(x: np.ndarray, resp: np.ndarray, reg_covar: float) -> Gaussians:
    """The mixture that responsibilities ``resp`` ``(n, 2)`` give ``x``: scikit-learn's estimates (10 eps added
    to each component's mass, ``reg_covar`` to each variance)."""
    nk = resp.sum(axis=0) + 10 * np.finfo(resp.dtype).eps
    means = resp.T @ x / nk
    variances = (resp * (x[:, None] - means) ** 2).sum(axis=0) / nk + reg_covar
    return Gaussians(means, variances, nk / nk.sum())


def fit_two_gaussians(x: np.ndarray, max_iter: int = GMM_MAX_ITER, tol: float = GMM_TOL,
                      reg_covar: float = GMM_REG_COVAR) -> tuple[Gaussians, np.ndarray]:
    """Fit a two-component Gaussian mixture to ``x`` as scikit-learn's ``GaussianMixture`` does (see the module
    docstring); returns the mixture and the responsibilities ``(n, 2)`` of ``x`` under it."""
    x = np.asarray(x, dtype=np.float64)
    start = two_means(x)
    resp = np.stack([~start, start], axis=1).astype(np.float64)
    g = m_step(x, resp, reg_covar)
    g.weights = (resp.sum(axis=0) + 10 * np.finfo(np.float64).eps) / len(x)  # the start divides by n
    bound = -np.inf
    for _ in range(max_iter):
        log_resp, new_bound = g.log_resp(x)
        g = m_step(x, np.exp(log_resp), reg_covar)
        change, bound = new_bound - bound, new_bound
        if abs(change) < tol:
            break
    return g, np.exp(g.log_resp(x)[0])


def clean_probability(losses: torch.Tensor) -> np.ndarray:
    """Each sample's probability (float64) of the mixture's low-loss component, from its normalised loss."""
    x = losses.detach().double().cpu().numpy()
    if len(x) < 2 or not x.max() > x.min():
        return np.ones(len(x))
    g, resp = fit_two_gaussians(x)
    return resp[:, int(np.argmin(g.means))]


# --- MixMatch with co-refinement and co-guessing --------------------------------------------------------

def sharpen(p: torch.Tensor, T: float) -> torch.Tensor:
    """``p ** (1/T)`` renormalised over the classes."""
    pt = p ** (1.0 / T)
    return pt / pt.sum(dim=1, keepdim=True)


def co_guess(predictions: Sequence[torch.Tensor], T: float) -> torch.Tensor:
    """Label co-guessing: the mean of both networks' class probabilities on both views, sharpened."""
    return sharpen(torch.stack(list(predictions)).mean(dim=0), T)


def co_refine(onehot: torch.Tensor, w: torch.Tensor, p_view1: torch.Tensor, p_view2: torch.Tensor,
              T: float) -> torch.Tensor:
    """Label co-refinement: ``w * y + (1 - w) * mean(p over the views)``, sharpened; ``w`` ``(b,)`` is the
    clean probability the *other* network's mixture gives each sample."""
    w = w.view(-1, 1)
    return sharpen(w * onehot + (1 - w) * (p_view1 + p_view2) / 2, T)


def mix_weight(gen: torch.Generator, alpha: float) -> float:
    """``lam' = max(lam, 1 - lam)`` with ``lam ~ Beta(alpha, alpha)``, drawn from the batch's generator."""
    rng = np.random.default_rng(int(torch.randint(0, 2 ** 62, (1,), generator=gen)))
    lam = float(rng.beta(alpha, alpha))
    return max(lam, 1.0 - lam)


def mixup(inputs: torch.Tensor, targets: torch.Tensor, lam: float, perm: torch.Tensor,
          keep: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``lam * a + (1 - lam) * a[perm]`` of inputs and targets; ``keep``: only the first ``keep`` rows are mixed
    (each still with a partner from all rows), as the Clothing1M script mixes only the labelled views."""
    n = len(inputs) if keep is None else keep
    partner = perm[:n]
    return lam * inputs[:n] + (1 - lam) * inputs[partner], lam * targets[:n] + (1 - lam) * targets[partner]


def semi_losses(logits_x: torch.Tensor, targets_x: torch.Tensor, logits_u: torch.Tensor,
                targets_u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``Lx``: cross-entropy with the (soft) mixed targets, the mean over labelled rows; ``Lu``: the mean squared
    error between softmax and mixed target over every element of the unlabelled rows. An empty part gives 0."""
    zero = (logits_x.sum() + logits_u.sum()) * 0.0  # (keeps the graph when a part is empty)
    lx = -(F.log_softmax(logits_x, dim=1) * targets_x).sum(dim=1).mean() if len(logits_x) else zero
    lu = ((torch.softmax(logits_u, dim=1) - targets_u) ** 2).mean() if len(logits_u) else zero
    return lx, lu


def prior_penalty(logits: torch.Tensor) -> torch.Tensor:
    """``sum_c pi_c log(pi_c / mean_b softmax_bc)`` with the uniform prior ``pi_c = 1 / C``."""
    mean = torch.softmax(logits, dim=1).mean(dim=0)
    prior = torch.full_like(mean, 1.0 / mean.numel())
    return (prior * torch.log(prior / mean)).sum()


def negative_entropy(logits: torch.Tensor) -> torch.Tensor:
    """The warm-up's confidence penalty: the mean over the batch of ``sum_c p_c log p_c``."""
    p = torch.softmax(logits, dim=1)
    return (p * torch.log(p)).sum(dim=1).mean()


def linear_ramp(progress: float, warm_up: int, length: int) -> float:
    """The unlabelled loss's ramp, ``clip((progress - warm_up) / length, 0, 1)``; ``progress`` is the epoch
    (0-based) plus the share of its steps done; a ramp of length 0 is 1 from the first step after the warm-up."""
    if length <= 0:
        return 1.0 if progress >= warm_up else 0.0
    return float(np.clip((progress - warm_up) / length, 0.0, 1.0))


# --- the model and the method ---------------------------------------------------------------------------

class TwinNet(nn.Module):
    """Two classifiers (backbone, pooling, linear) trained side by side; the prediction combines both."""

    def __init__(self, net1: nn.Module, net2: nn.Module, combine: str) -> None:
        super().__init__()
        self.net1, self.net2, self.combine = net1, net2, combine

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        l1, l2 = self.net1(x), self.net2(x)
        if self.combine == "logits":  # Train_cifar.py test(): outputs1 + outputs2 (halved: the same argmax)
            return (l1 + l2) / 2
        # the mean of the probabilities, as log-probabilities
        both = torch.stack([F.log_softmax(l1.float(), dim=1), F.log_softmax(l2.float(), dim=1)])
        return torch.logsumexp(both, dim=0) - math.log(2)


@register_method("dividemix")
class DivideMix(Method):
    """Two networks; each divides the set by a Gaussian mixture on its losses for the other, MixMatch after."""

    description = "co-divide by a GMM on per-sample losses, MixMatch with co-refinement and co-guessing, two networks"
    hparams = {
        "warm_up": HParam(10, range=(0, None), unit="epochs",
                          help="epochs of cross-entropy warm-up before the first co-divide (CIFAR-10 10, CIFAR-100 30, "
                               "Clothing1M 1)"),
        "p_threshold": HParam(0.5, range=(0, 1), help="clean probability above which a sample is labelled (tau; "
                                                      "0.6 at 90% noise)"),
        "T": HParam(0.5, range="(0, inf)", help="sharpening temperature of the refined and guessed targets"),
        "alpha": HParam(4.0, range="(0, inf)", help="mixup's Beta(alpha, alpha) (Clothing1M 0.5)"),
        "lambda_u": HParam(25.0, range=(0, None),
                           help="weight of the unlabelled loss (the paper tables 0-150 per setting; 0 on Clothing1M)"),
        "rampup": HParam(16, range=(0, None), unit="epochs",
                         help="epochs after the warm-up over which lambda_u's weight rises linearly from 0"),
        "lambda_r": HParam(1.0, range=(0, None), help="weight of the uniform-prior penalty on the mean prediction"),
        "conf_penalty": HParam(None, type=bool, default_from="asymmetric_noise",
                               help="negative-entropy penalty in the warm-up (official: CIFAR with asymmetric noise, "
                                    "Clothing1M); by default on where the run's noise is not symmetric"),
        "loss_history": HParam(1, range=(1, None), unit="epochs",
                               help="epochs of normalised losses averaged before the mixture is fitted (5 at 90% "
                                    "noise)"),
        "mix": HParam("all", choices=("all", "labeled"),
                      help="all: mix every view, with the unlabelled loss (CIFAR); labeled: mix the labelled views "
                           "only, no unlabelled loss (Clothing1M)"),
        "combine": HParam("logits", choices=("logits", "probs"),
                          help="test prediction: mean of the networks' logits (code) or of their probabilities "
                               "(paper)"),
    }
    recipe = {
        # Train_cifar.py: SGD(lr 0.02, momentum 0.9, weight decay 5e-4), lr / 10 from epoch 150, 300 epochs; a step
        # holds the warm-up's batch, twice the labelled batch of 64; RandomCrop(32, 4) + flip, no erasing
        "optimizer": "sgd", "lr": 0.02, "momentum": 0.9, "weight_decay": 5e-4, "schedule": "step",
        "milestones": [150], "gamma": 0.1, "epochs": 300, "batch_size": 128, "aug_flip": 0.5, "aug_erase": 0.0,
    }
    backbone_modules = ("net1.backbone", "net2.backbone")

    def __init__(self, ctx: MethodContext, hparams: dict[str, Any]) -> None:
        super().__init__(ctx, hparams)
        from ..augment import BatchAugment
        from ..engine.build import augment_config  # (the engine imports the methods' registry)
        from ..engine.loop import steps_per_epoch

        self._augment = BatchAugment(augment_config(ctx.recipe))  # the second view, drawn as the engine draws the first
        self._steps = steps_per_epoch(ctx.num_train, ctx.recipe)
        self._epoch = self._step = 0
        self._ramp = 0.0
        self._synced: Optional[bool] = None  # whether the model holds SyncBatchNorm (set at the first step)
        # the division of the current epoch: each network's clean probability of every sample, and its labelled set
        self._prob: list[Optional[torch.Tensor]] = [None, None]
        self._labelled: list[Optional[torch.Tensor]] = [None, None]
        self._history: list[list[torch.Tensor]] = [[], []]  # each network's last normalised losses (loss_history)

    def build_model(self) -> nn.Module:
        nets = [Classifier(create_backbone(**self.backbone_kwargs()), self.ctx.num_classes) for _ in range(2)]
        return TwinNet(*nets, combine=self.hp.combine)

    # --- the co-divide, at the start of each epoch after the warm-up -------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        self._epoch, self._step = epoch, 0
        self._ramp = 0.0
        if epoch < self.hp.warm_up:
            self._prob, self._labelled = [None, None], [None, None]
            return
        probs = distributed.on_main(self.ctx.world, self._divide)  # rank 0 fits; every rank takes its division
        dev = self.ctx.device
        self._prob = [torch.as_tensor(p, dtype=torch.float32, device=dev) for p in probs]
        self._labelled = [torch.as_tensor(p > self.hp.p_threshold, device=dev) for p in probs]

    def _divide(self) -> list[np.ndarray]:
        """Each network's clean probabilities (float64) of every training sample (Train_cifar.py eval_train)."""
        probs = []
        for k, net in enumerate((self.model.net1, self.model.net2)):
            losses = normalise_losses(self._training_losses(net))
            self._history[k] = (self._history[k] + [losses.cpu()])[-self.hp.loss_history:]
            probs.append(clean_probability(torch.stack(self._history[k]).mean(dim=0)))
        return probs

    @torch.no_grad()
    def _training_losses(self, net: nn.Module) -> torch.Tensor:
        """Per-sample cross-entropy of ``net`` (eval mode) on every training image, un-augmented, against its
        training label."""
        passing = self.ctx.train_pass
        if passing is None:
            raise RuntimeError("dividemix needs the engine's pass over the training images (ctx.train_pass), "
                               "which only a training run (fer_bench.engine.run) sets")
        device = self.ctx.device
        losses = torch.zeros(self.ctx.num_train, device=device)
        was_training = net.training
        net.eval()
        try:
            for indices, images in passing:
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=getattr(passing, "amp", False)):
                    logits = net(images)
                losses[indices] = F.cross_entropy(logits.float(), self.ctx.train_labels[indices], reduction="none")
        finally:
            net.train(was_training)
        return losses

    # --- the training step -------------------------------------------------------------------------------
    def _second_view(self, batch: Batch) -> torch.Tensor:
        """Another draw of the training augmentation of the batch's images, from the batch's generator."""
        with torch.autocast(batch.raw.device.type, enabled=False):
            view = self._augment(batch.raw, batch.gen).images
        if view.device.type == "cuda":
            view = view.contiguous(memory_format=torch.channels_last)
        return view

    def training_step(self, batch: Batch) -> StepOutput:
        step, self._step = self._step, self._step + 1
        view2 = self._second_view(batch)
        if self._epoch < self.hp.warm_up:
            return self._warm_up_step(batch, view2)
        self._ramp = linear_ramp(self._epoch + step / self._steps, self.hp.warm_up, self.hp.rampup)
        net1, net2 = self.model.net1, self.model.net2
        idx = batch.indices
        # each network trains on the other's division
        loss1, logits1, logs1 = self._mixmatch(net1, net2, batch, view2, self._prob[1][idx], self._labelled[1][idx])
        loss2, logits2, logs2 = self._mixmatch(net2, net1, batch, view2, self._prob[0][idx], self._labelled[0][idx])
        logs = {key: (logs1[key] + logs2[key]) / 2 for key in logs1}
        logs["lambda_u_weight"] = torch.tensor(self.hp.lambda_u * self._ramp, device=loss1.device)
        return StepOutput(loss1 + loss2, (logits1 + logits2) / 2, logs)

    def _warm_up_step(self, batch: Batch, view2: torch.Tensor) -> StepOutput:
        """Cross-entropy (with ``conf_penalty``, plus the negative entropy) of each network, network 2 on the
        second view (Train_cifar.py warmup)."""
        net1, net2 = self.model.net1, self.model.net2
        net1.train()
        net2.train()
        logits1, logits2 = net1(batch.images), net2(view2)
        ce1, ce2 = F.cross_entropy(logits1, batch.labels), F.cross_entropy(logits2, batch.labels)
        loss = ce1 + ce2
        if self.hp.conf_penalty:
            loss = loss + negative_entropy(logits1) + negative_entropy(logits2)
        return StepOutput(loss, (logits1.detach() + logits2.detach()) / 2, {"ce": (ce1.detach() + ce2.detach()) / 2})

    def _mixmatch(self, net: nn.Module, other: nn.Module, batch: Batch, view2: torch.Tensor, w: torch.Tensor,
                  labelled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """One iteration of ``net`` (Train_cifar.py train): the batch's ``labelled`` samples, with the other
        network's clean probability ``w``, and the rest unlabelled. Returns its loss, its (train-mode, no
        gradient) logits of the first view, and its logs."""
        view1, hp = batch.images, self.hp
        x = labelled.nonzero().squeeze(1)
        u = (~labelled).nonzero().squeeze(1)
        net.train()
        other.eval()
        with torch.no_grad():
            logits_v1, logits_v2 = self._own_predictions(net, view1, view2, x, u)
            p1, p2 = torch.softmax(logits_v1, dim=1), torch.softmax(logits_v2, dim=1)
            onehot = F.one_hot(batch.labels[x], self.ctx.num_classes).float()
            targets_x = co_refine(onehot, w[x].float(), p1[x], p2[x], hp.T)
            if len(u):
                q1 = torch.softmax(other(view1[u]).float(), dim=1)
                q2 = torch.softmax(other(view2[u]).float(), dim=1)
                targets_u = co_guess([p1[u], p2[u], q1, q2], hp.T)
            else:
                targets_u = p1[u]
        other.train()
        inputs = torch.cat([view1[x], view2[x], view1[u], view2[u]])
        targets = torch.cat([targets_x, targets_x, targets_u, targets_u])
        lam = mix_weight(batch.gen, hp.alpha)
        perm = torch.randperm(len(inputs), generator=batch.gen).to(inputs.device)
        n_x = 2 * len(x)
        if hp.mix == "labeled":
            if n_x == 0:  # no labelled sample in the batch: nothing to learn from (zero gradients)
                zero = sum(p.sum() for p in net.parameters()) * 0.0
                return zero, logits_v1, {"loss_x": zero.detach(), "loss_u": zero.detach(),
                                         "penalty": zero.detach(), "labelled": labelled.float().mean()}
            mixed, mixed_targets = mixup(inputs, targets, lam, perm, keep=n_x)
        else:
            mixed, mixed_targets = mixup(inputs, targets, lam, perm)
        logits = net(mixed)
        loss_x, loss_u = semi_losses(logits[:n_x], mixed_targets[:n_x], logits[n_x:], mixed_targets[n_x:])
        penalty = prior_penalty(logits.float())
        loss = loss_x + hp.lambda_r * penalty
        if hp.mix == "all":
            loss = loss + hp.lambda_u * self._ramp * loss_u
        return loss, logits_v1, {"loss_x": loss_x.detach(), "loss_u": loss_u.detach(), "penalty": penalty.detach(),
                                 "labelled": labelled.float().mean()}

    def _own_predictions(self, net: nn.Module, view1: torch.Tensor, view2: torch.Tensor, x: torch.Tensor,
                         u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The training network's logits (float32, batch order) of both views, without gradient and in train mode,
        as the official code makes them: the unlabelled and the labelled part in forwards of their own (they come
        from two loaders there), in its order (u view 1, u view 2, x view 1, x view 2), a part of one sample in
        eval mode (one value has no batch statistics); under SyncBatchNorm, where every rank must make the same
        forwards, one forward of each whole view."""
        if self._synced is None:
            self._synced = any(isinstance(m, nn.SyncBatchNorm) for m in net.modules())
        if self._synced:
            return net(view1).float(), net(view2).float()
        out = [view1.new_empty((len(view1), self.ctx.num_classes), dtype=torch.float32) for _ in range(2)]
        for part in (u, x):
            for view, logits in zip((view1, view2), out):
                if len(part) > 1:
                    logits[part] = net(view[part]).float()
                elif len(part) == 1:
                    net.eval()
                    logits[part] = net(view[part]).float()
                    net.train()
        return out[0], out[1]

    # --- resume and mechanism ----------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {"loss_history": [torch.stack(h) if h else torch.zeros(0, self.ctx.num_train) for h in self._history]}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        saved = state.get("loss_history")
        if saved is not None:
            self._history = [list(t.float().cpu().unbind(0)) for t in saved]

    def mechanism(self) -> dict[str, Probe]:
        found: dict[str, Probe] = {"ramp": self._ramp}
        for k, prob in enumerate(self._prob):
            if prob is not None:  # net k's mixture: the samples it sends to the other network's unlabelled set
                found[f"noisy_net{k + 1}"] = NoiseFlag(~self._labelled[k])
                found[f"p_noisy_net{k + 1}"] = NoiseScore(1 - prob)
        return found

    def mechanism_off(self, last: dict[str, float]) -> list[str]:
        hp, epochs = self.hp, self.ctx.epochs
        if hp.warm_up >= epochs:
            return [f"co-divide and MixMatch never ran: all {epochs} epochs were warm-up (warm_up = {hp.warm_up})"]
        off = []
        from ..engine.recipe import official_schedule  # (the engine's recipe imports the methods' registry)

        official = type(self).hparam_specs()["warm_up"].default / official_schedule(type(self).recipe).epochs
        if hp.warm_up / epochs > LATE * official:
            off.append(f"the warm-up takes {hp.warm_up / epochs:.0%} of training (officially {official:.0%}): "
                       f"{hp.warm_up} of {epochs} epochs")
        if hp.mix == "labeled":
            off.append("no unlabelled loss (mix = labeled, the Clothing1M script's): co-guessed targets only enter "
                       "as mixup partners")
        elif hp.lambda_u == 0:
            off.append("no unlabelled loss (lambda_u = 0): co-guessed targets only enter as mixup partners")
        elif last.get("ramp", 1.0) < 1.0:
            off.append(f"the unlabelled loss's ramp ended at {last['ramp']:.0%} of lambda_u (it rises over "
                       f"rampup = {hp.rampup} epochs after the warm-up)")
        for k in (1, 2):
            share = last.get(f"noisy_net{k}_share")
            if share == 0:
                off.append(f"network {k}'s co-divide put every sample in the labelled set: none was treated as noisy")
            elif share == 1:
                off.append(f"network {k}'s co-divide put every sample in the unlabelled set: no label was trusted")
        return off
