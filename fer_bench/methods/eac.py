"""EAC: Erasing Attention Consistency (Zhang, Wang, Ling, Deng, ECCV 2022).

Noisy labels are memorised through features that are not the expression;
EAC keeps the network's attention where it belongs by asking it to be
**flip-equivariant under random erasing**. Each training image gives two
views: the image and its horizontal mirror, each randomly erased. The class
activation maps of both views are computed from the backbone's last feature
map and the classifier's weights *detached* (so the consistency term trains
only the backbone), the mirror's maps are flipped back, and

``L = CE(logits of the original view, y) + lambda * MSE(CAM(x), flip(CAM(flip(x))))``

with lambda = 5. The mirror view's logits are not used.

Choice (code vs paper): the official code erases the two views independently
when it trains on noisy labels and erases first and then flips (the same
mirrored patch) on clean labels, which is what the paper describes.
Independent erasing is the default here (``shared_erasing=false``), as in the
code's noisy runs the paper's tables come from; ``--set shared_erasing=true``
gives the paper's variant. EAC erases with p = 0.5 and area 0.02-0.25 itself,
so its recipe turns the engine's own erasing off.

Input augmentation as in the official code (``src/dataset.py``): the first view is
never flipped (its mirror is the second view), so the official recipe sets
``aug_flip=0``; it gets additive Gaussian noise (variance 30 on the 0-255 scale)
with p = 0.5 (``aug_noise=0.5``), and the mirror view is made from the image
*without* that noise (in noisy mode; with ``shared_erasing`` the mirror is the
first view mirrored, noise included, as the code's clean mode does). The unified
protocol flips the first view with p = 0.5 and adds no noise.

Backbone: the paper's noisy-label table uses ResNet-18 (the official recipe here);
the code's default is a ResNet-50 from VGGFace2 (``resnet50_ft_weight.pkl``), a
Caffe-style network: ``--pretrained resnet50_ft_weight.pkl --trust-pickle``
builds ``resnet50_caffe`` for it (see :mod:`fer_bench.models.resnet`), with
ImageNet normalisation as the code uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import random_erase
from ..models import create_backbone
from ..registry import register_method
from .base import Batch, Method, StepOutput
from .hparams import HParam, ascending_pair
from .probes import Probe

# The side of the class activation maps below which a horizontal flip is not a meaningful constraint: the
# official ResNet-50 at 224 px works on 7x7 maps (results/synthfer/protocol/CRITERIA.md, E2).
MIN_CAM_SIDE = 7


class EACNet(nn.Module):
    """Backbone + linear classifier that also returns the last feature map."""

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(backbone.out_channels, num_classes)

    def forward_with_map(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self.backbone(x)
        return self.fc(self.backbone.pool(fmap)), fmap

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_map(x)[0]


def class_activation_maps(fmap: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``(B, K, h, w)`` maps ``sum_c W[k, c] * F[b, c, h, w]`` with the classifier weights detached."""
    return torch.einsum("kc,bchw->bkhw", weight.detach(), fmap)


def flip_consistency(cam: torch.Tensor, cam_of_mirror: torch.Tensor) -> torch.Tensor:
    """MSE between the maps of a view and the flipped-back maps of its mirror."""
    return F.mse_loss(cam, torch.flip(cam_of_mirror, dims=[-1]))


@register_method("eac")
class EAC(Method):
    """Erasing Attention Consistency: flip-equivariant class activation maps under erasing."""

    hparams = {
        "lam": HParam(5.0, range=(0, None), help="weight of the attention-consistency term"),
        "erase": HParam(0.5, range=(0, 1), help="erasing probability per view"),
        "erase_scale": HParam([0.02, 0.25], range=(0, 1), check=ascending_pair,
                              help="[low, high] area fraction of an erased box"),
        "shared_erasing": HParam(False, help="true: erase, then mirror (paper); "
                                             "false: erase each view (code, noisy runs)"),
    }
    recipe = {
        "optimizer": "adam", "lr": 2e-4, "weight_decay": 1e-4, "schedule": "exponential",
        "gamma": 0.9, "epochs": 60, "batch_size": 32, "aug_erase": 0.0,
        "aug_flip": 0.0, "aug_noise": 0.5, "normalize": "imagenet",
    }
    needs_noiseless = True

    def build_model(self) -> nn.Module:
        return EACNet(create_backbone(**self.backbone_kwargs()), self.ctx.num_classes)

    def _erase(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return random_erase(x, gen, self.hp.erase, tuple(self.hp.erase_scale))

    def training_step(self, batch: Batch) -> StepOutput:
        x = batch.images
        if self.hp.shared_erasing:
            view = self._erase(x, batch.gen)
            mirror = torch.flip(view, dims=[-1])
        else:
            view = self._erase(x, batch.gen)
            plain = x if batch.noiseless is None else batch.noiseless
            mirror = self._erase(torch.flip(plain, dims=[-1]), batch.gen)
        logits, fmap = self.model.forward_with_map(view)
        self._cam_side = fmap.shape[-1]
        _, fmap_mirror = self.model.forward_with_map(mirror)
        weight = self.model.fc.weight
        consistency = flip_consistency(class_activation_maps(fmap, weight), class_activation_maps(fmap_mirror, weight))
        loss = F.cross_entropy(logits, batch.labels) + self.hp.lam * consistency
        return StepOutput(loss, logits, {"consistency": consistency.detach()})

    def mechanism(self) -> dict[str, Probe]:
        side = getattr(self, "_cam_side", None)
        return {} if side is None else {"cam_side": side}

    def mechanism_off(self, last: dict[str, float]) -> list[str]:
        if self.hp.lam == 0:
            return ["attention consistency off (lam = 0)"]
        side = last.get("cam_side")
        if side is not None and side < MIN_CAM_SIDE:
            s = int(side)
            return [f"class activation maps of {s}x{s} cells (under {MIN_CAM_SIDE}x{MIN_CAM_SIDE}): a horizontal "
                    f"flip barely moves them, so the flip-consistency term is another, stronger regulariser"]
        return []
