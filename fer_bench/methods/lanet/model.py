"""LA-Net's network (the official ``Landmark_ResNet``): one stem, an expression branch and a landmark branch.

The ResNet is split after ``layer1``. The shared stem (conv1, bn1, layer1) gives
F1; the **expression branch** (its own layer2-4, global average pooling, a linear
classifier) gives the expression feature u and the logits; the **landmark
branch** (separate copies of layer2-4) gives L2, L3, L4, which an FPN-style
top-down pass merges with F1:

    M = lat4(L4);  M = up(M) + lat3(L3);  M = up(M) + lat2(L2);  M = up(M) + lat1(F1)

with 1 x 1 lateral convolutions to F1's channel count (64 for ResNet-18), no
bias, normalisation or activation, and bilinear upsampling. A 1 x 1 convolution
turns M into one raw heatmap per landmark (no sigmoid) and ``v = GAP(M)`` is the
landmark feature. The branches meet only in the stem and in the losses; the
expression branch never reads the landmark branch, so inference
(:meth:`LandmarkResNet.forward`) is a plain ResNet classifier.

Choices where the official code assumes 224 px and the ImageNet stem:

* Upsampling goes to the size of the next lateral map rather than by a fixed
  factor 2, so odd map sizes (e.g. 3 -> 5 at 40 px) work; at 224 px it is the
  same x2 resampling.
* Heatmaps are the input size divided by the recipe's ``heatmap_stride`` (4 by default, a quarter,
  :mod:`fer_bench.landmarks.heatmaps`). M has F1's size, which is that quarter with the ImageNet stem
  (56 at 224 px) but half the input with the CPU profiles' small stem (24 at 48 px); M is then
  average-pooled (or upsampled) to the heatmap size before the head. ``v`` is pooled from M itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...models.resnet import ResNetBackbone


class LandmarkFPN(nn.Module):
    """Top-down merge of F1, L2, L3, L4 into M, and the 1 x 1 heatmap head."""

    def __init__(self, channels: tuple[int, int, int, int], num_landmarks: int) -> None:
        super().__init__()
        out = channels[0]
        self.lateral = nn.ModuleList(nn.Conv2d(c, out, kernel_size=1, bias=False) for c in channels)
        self.head = nn.Conv2d(out, num_landmarks, kernel_size=1, bias=False)

    def merge(self, f1: torch.Tensor, l2: torch.Tensor, l3: torch.Tensor, l4: torch.Tensor) -> torch.Tensor:
        m = self.lateral[3](l4)
        for lateral, skip in ((self.lateral[2], l3), (self.lateral[1], l2), (self.lateral[0], f1)):
            m = F.interpolate(m, size=skip.shape[-2:], mode="bilinear", align_corners=False) + lateral(skip)
        return m

    def heatmaps(self, m: torch.Tensor, size: int) -> torch.Tensor:
        if m.shape[-1] != size or m.shape[-2] != size:
            m = (F.adaptive_avg_pool2d(m, size) if m.shape[-1] >= size
                 else F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False))
        return self.head(m)


def share_stem(branch: ResNetBackbone, trunk: ResNetBackbone) -> ResNetBackbone:
    """Make ``branch`` use ``trunk``'s conv1, bn1 and layer1 module objects (not copies)."""
    branch.conv1, branch.bn1, branch.relu, branch.maxpool = trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool
    branch.layer1 = trunk.layer1
    return branch


class LandmarkResNet(nn.Module):
    """The two-branch ResNet (see the module docstring), with the expression classifier.

    Attributes:
        backbone: the expression path, a complete :class:`ResNetBackbone`
            (stem, layer1, layer2-4).
        landmark: a second :class:`ResNetBackbone` whose conv1, bn1 and layer1
            *are* the backbone's (shared objects) and whose layer2-4 are its own.
            Pretrained ResNet weights load into both, so layer2-4 start from the
            same weights twice, as the official loader does.
        fpn: lateral convolutions and the heatmap head.
        fc: the expression classifier.
    """

    def __init__(self, arch: str, width: int, stem: str, num_classes: int, num_landmarks: int,
                 last_stride: int = 2) -> None:
        super().__init__()
        self.backbone = ResNetBackbone(arch, width, stem, last_stride)
        self.landmark = share_stem(ResNetBackbone(arch, width, stem, last_stride), self.backbone)
        c1 = self.backbone.out_channels // 8  # layer1's output: 64 * expansion at width 64
        self.fpn = LandmarkFPN((c1, 2 * c1, 4 * c1, 8 * c1), num_landmarks)
        self.fc = nn.Linear(self.backbone.out_channels, num_classes)
        self.expr_dim, self.landmark_dim = self.backbone.out_channels, c1

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Expression feature u ``(B, 512e)``, landmark feature v ``(B, 64e)`` and M."""
        bb, lm = self.backbone, self.landmark
        f1 = bb.layer1(bb.stem_forward(x))
        u = bb.pool(bb.layer4(bb.layer3(bb.layer2(f1))))
        l2 = lm.layer2(f1)
        l3 = lm.layer3(l2)
        m = self.fpn.merge(f1, l2, l3, lm.layer4(l3))
        return u, bb.pool(m), m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inference: stem -> expression layer2-4 -> GAP -> fc; the landmark branch is not run."""
        return self.fc(self.backbone.pool(self.backbone(x)))
