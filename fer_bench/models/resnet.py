"""ResNet backbones with a configurable base width and stem.

``resnet18`` at width 64 with the ``imagenet`` stem has exactly torchvision's
parameter names and shapes (``conv1``, ``bn1``, ``layer1``..``layer4``), so
pretrained torchvision or MS-Celeb checkpoints map onto it by name. The CPU
profile uses the same network at a reduced width and with a lighter stem,
because a full ResNet-18 trains at only ~16 images/s at 224 px on two cores.

``resnet50_caffe`` is the Caffe-style ResNet-50 that EAC's VGGFace2 weights
(``resnet50_ft_weight.pkl``) were trained in (EAC ``src/resnet.py``): a
downsampling bottleneck strides in its first 1x1 convolution instead of the
3x3 (torchvision's v1.5 layout, ``resnet50``), and the stem's max-pool has no
padding and rounds up (``ceil_mode``). Parameter names and shapes are the same
as ``resnet50``'s, so the two would accept each other's weights without a
word and compute different things; :mod:`.pretrained` keeps them apart.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck



class CaffeBottleneck(Bottleneck):
    """A bottleneck that downsamples in its first 1x1 convolution (the original ResNet/Caffe layout)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__(inplanes, planes, stride, downsample)
        self.conv1.stride, self.conv2.stride = (stride, stride), (1, 1)


DEPTHS: dict[str, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet50_caffe": (CaffeBottleneck, (3, 4, 6, 3)),
}
# Architectures whose ImageNet stem max-pools as Caffe did: no padding, output size rounded up.
CAFFE_STEM = frozenset({"resnet50_caffe"})

Stem = Literal["imagenet", "small"]

# The CPU-sized backbone (synthfer's cpu profiles, and what synthfer-id pretraining trains):
# ResNet-18 at a quarter of the width with the light stem, for 48 px faces.
CPU_BACKBONE: dict[str, Any] = {"arch": "resnet18", "width": 16, "stem": "small"}


class ResNetBackbone(nn.Module):
    """A ResNet trunk without its classifier.

    Args:
        arch: ``resnet18``, ``resnet34``, ``resnet50`` or ``resnet50_caffe``.
        width: channels of the first stage (64 in the papers).
        stem: ``imagenet`` (7x7/2 conv + max-pool: /4) for 100-224 px faces, or
            ``small`` (3x3/2 conv, no pool: /2) for 32-64 px images, where the
            ImageNet stem would leave a 2x2 map at the last stage.
        last_stride: the stride of ``layer4`` (2, the standard ResNet; 1 keeps the last map as large as
            ``layer3``'s, for small inputs where class activation maps would otherwise be 3x3). It changes
            no parameter's shape, so any checkpoint of the same arch, width and stem loads.

    ``forward`` returns the last feature map ``(B, out_channels, h, w)``; use
    :meth:`pool` for the pooled ``(B, out_channels)`` feature.
    """

    def __init__(self, arch: str = "resnet18", width: int = 64, stem: Stem = "imagenet", last_stride: int = 2) -> None:
        super().__init__()
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride!r}")
        if arch not in DEPTHS:
            raise ValueError(f"unknown arch {arch!r}; known: {', '.join(DEPTHS)}")
        if stem not in ("imagenet", "small"):
            raise ValueError(f"unknown stem {stem!r}; known: imagenet, small")
        block, depths = DEPTHS[arch]
        self.arch, self.width, self.stem = arch, width, stem
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = (nn.MaxPool2d(kernel_size=3, stride=2, padding=0, ceil_mode=True)
                                       if arch in CAFFE_STEM else nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        else:
            self.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=2, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self._inplanes = width
        self.layer1 = self._make_layer(block, width, depths[0], stride=1)
        self.layer2 = self._make_layer(block, width * 2, depths[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, depths[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, depths[3], stride=last_stride)
        self.out_channels = width * 8 * block.expansion
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block: type[nn.Module], planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self._inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self._inplanes, planes, stride, downsample)]
        self._inplanes = planes * block.expansion
        layers += [block(self._inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def stem_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1(self.stem_forward(x))
        return self.layer4(self.layer3(self.layer2(x)))

    @staticmethod
    def pool(feature_map: torch.Tensor) -> torch.Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(feature_map, 1), 1)


def create_backbone(arch: str = "resnet18", width: int = 64, stem: Stem = "imagenet",
                    last_stride: int = 2) -> ResNetBackbone:
    """Build a randomly initialised backbone (pretrained loading is a separate step)."""
    return ResNetBackbone(arch, width, stem, last_stride)
