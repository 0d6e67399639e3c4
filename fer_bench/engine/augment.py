"""Batched, on-device image augmentation whose geometry landmarks can follow.

The peers augment one PIL image at a time in DataLoader workers; here a whole
uint8 batch is augmented at once with tensor operations on the training device.
Flip, random-resized crop and the resize to the model's input are one affine
map per sample, applied with ``grid_sample``; the same map moves landmarks, so
they stay on the face through every geometric step. Colour jitter and random
erasing follow, on the normalised tensor as in torchvision's order.

Randomness comes only from the ``torch.Generator`` passed in (on the CPU), so a
batch's augmentation is reproducible from the run's seed, epoch and step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation parameters (the recipe's ``aug_*`` keys).

    ``crop_scale`` is the area fraction range of RandomResizedCrop; (1, 1) disables it.
    ``erase`` is the probability of RandomErasing, with torchvision's scale/ratio.
    """

    image_size: int
    flip: float = 0.5
    crop_scale: tuple[float, float] = (1.0, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    erase: float = 0.0
    erase_scale: tuple[float, float] = (0.02, 0.25)
    erase_ratio: tuple[float, float] = (0.3, 3.3)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass
class AugmentedBatch:
    """Images ready for the model, landmarks in output pixels, and the geometry used.

    ``theta`` maps output normalised coordinates to input normalised coordinates
    (``grid_sample``'s convention, align_corners=False); ``flipped`` marks the
    samples that were mirrored, so methods can swap left/right landmark channels.
    """

    images: torch.Tensor
    landmarks: Optional[torch.Tensor]
    flipped: torch.Tensor
    theta: torch.Tensor


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen, dtype=torch.float64)


def _crop_boxes(n: int, cfg: AugmentConfig, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Per-sample crop (centre x, centre y, width, height) as fractions of a square image.

    RandomResizedCrop's semantics, batched: up to 10 draws of an area fraction
    from ``crop_scale`` and a log-uniform aspect ratio; the first draw that fits
    the image wins, and a sample with none falls back to the whole image.
    """
    tries = 10
    area = _uniform(n * tries, *cfg.crop_scale, gen).view(n, tries)
    log_r = _uniform(n * tries, math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1]), gen).view(n, tries)
    ratio = torch.exp(log_r)
    w_all, h_all = torch.sqrt(area * ratio), torch.sqrt(area / ratio)
    fits = (w_all <= 1) & (h_all <= 1)
    first = fits.to(torch.int8).argmax(dim=1, keepdim=True)
    any_fit = fits.any(dim=1)
    w = torch.where(any_fit, w_all.gather(1, first).squeeze(1), torch.ones(n, dtype=torch.float64))
    h = torch.where(any_fit, h_all.gather(1, first).squeeze(1), torch.ones(n, dtype=torch.float64))
    cx = w / 2 + (1 - w) * torch.rand(n, generator=gen, dtype=torch.float64)
    cy = h / 2 + (1 - h) * torch.rand(n, generator=gen, dtype=torch.float64)
    return cx, cy, w, h


class BatchAugment:
    """Turns uint8 ``(B, H, W, 3)`` batches into normalised float ``(B, 3, S, S)`` tensors."""

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.cfg.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.cfg.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x - mean) / std

    @staticmethod
    def to_float(raw: torch.Tensor) -> torch.Tensor:
        return raw.permute(0, 3, 1, 2).float().div_(255.0)

    def eval(self, raw: torch.Tensor) -> torch.Tensor:
        """The test transform: resize to the input size and normalise."""
        x = self.to_float(raw)
        if x.shape[-1] != self.cfg.image_size or x.shape[-2] != self.cfg.image_size:
            size = (self.cfg.image_size, self.cfg.image_size)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        return self._normalise(x).contiguous()

    def __call__(
        self,
        raw: torch.Tensor,
        gen: torch.Generator,
        landmarks: Optional[torch.Tensor] = None,
        flip: Optional[torch.Tensor] = None,
    ) -> AugmentedBatch:
        """Augment a batch.

        Args:
            raw: uint8 ``(B, H, W, 3)`` on the target device.
            gen: CPU generator all random parameters are drawn from.
            landmarks: optional ``(B, K, 2)`` (x, y) in pixels of ``raw``.
            flip: optional bool ``(B,)`` forcing which samples are mirrored
                (EAC's second view); drawn with probability ``cfg.flip`` otherwise.
        """
        cfg = self.cfg
        b, h_in, w_in = raw.shape[0], raw.shape[1], raw.shape[2]
        if flip is None:
            flip = torch.rand(b, generator=gen) < cfg.flip
        flip = flip.cpu()
        cx, cy, w, h = _crop_boxes(b, cfg, gen)
        # Output coordinate u in [-1, 1] maps to input (2cx - 1) + w·u (x mirrored when flipped).
        sx = torch.where(flip, -w, w)
        theta = torch.zeros(b, 2, 3, dtype=torch.float64)
        theta[:, 0, 0], theta[:, 0, 2] = sx, 2 * cx - 1
        theta[:, 1, 1], theta[:, 1, 2] = h, 2 * cy - 1
        theta_dev = theta.to(raw.device, torch.float32)
        size = cfg.image_size
        grid = F.affine_grid(theta_dev, [b, 3, size, size], align_corners=False)
        x = F.grid_sample(self.to_float(raw), grid, mode="bilinear", padding_mode="border", align_corners=False)

        out_landmarks = None
        if landmarks is not None:
            # Pixel centre convention of align_corners=False: p -> (2p + 1)/W - 1.
            norm_x = (2 * landmarks[..., 0].double().cpu() + 1) / w_in - 1
            norm_y = (2 * landmarks[..., 1].double().cpu() + 1) / h_in - 1
            ux = (norm_x - theta[:, 0, 2:3]) / theta[:, 0, 0:1]
            uy = (norm_y - theta[:, 1, 2:3]) / theta[:, 1, 1:2]
            out = torch.stack([((ux + 1) * size - 1) / 2, ((uy + 1) * size - 1) / 2], dim=-1)
            out_landmarks = out.to(landmarks.device, torch.float32)

        x = self._colour_jitter(x, gen)
        x = self._normalise(x)
        if cfg.erase > 0:
            x = random_erase(x, gen, cfg.erase, cfg.erase_scale, cfg.erase_ratio)
        return AugmentedBatch(x.contiguous(), out_landmarks, flip, theta)

    def _colour_jitter(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        cfg, b = self.cfg, x.shape[0]

        def factors(strength: float) -> torch.Tensor:
            f = _uniform(b, max(0.0, 1 - strength), 1 + strength, gen)
            return f.to(x.device, x.dtype).view(b, 1, 1, 1)

        if cfg.brightness > 0:
            x = (x * factors(cfg.brightness)).clamp_(0, 1)
        if cfg.contrast > 0:
            gray_mean = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
            gray_mean = gray_mean.mean(dim=(2, 3), keepdim=True)
            x = ((x - gray_mean) * factors(cfg.contrast) + gray_mean).clamp_(0, 1)
        if cfg.saturation > 0:
            gray = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
            x = ((x - gray) * factors(cfg.saturation) + gray).clamp_(0, 1)
        return x


def random_erase(x: torch.Tensor, gen: torch.Generator, p: float,
                 scale: tuple[float, float] = (0.02, 0.25),
                 ratio: tuple[float, float] = (0.3, 3.3)) -> torch.Tensor:
    """RandomErasing with value 0 (torchvision's default), one box per chosen sample.

    Each sample is erased with probability ``p``; the box's area fraction is
    uniform in ``scale`` and its aspect ratio log-uniform in ``ratio``.
    """
    b, _, hh, ww = x.shape
    apply = torch.rand(b, generator=gen) < p
    area = _uniform(b, *scale, gen) * hh * ww
    aspect = torch.exp(_uniform(b, math.log(ratio[0]), math.log(ratio[1]), gen))
    eh = torch.sqrt(area * aspect).round().clamp(1, hh).long()
    ew = torch.sqrt(area / aspect).round().clamp(1, ww).long()
    top = (torch.rand(b, generator=gen, dtype=torch.float64) * (hh - eh + 1)).long()
    left = (torch.rand(b, generator=gen, dtype=torch.float64) * (ww - ew + 1)).long()
    rows = torch.arange(hh).view(1, hh, 1)
    cols = torch.arange(ww).view(1, 1, ww)
    mask = (
        (rows >= top.view(b, 1, 1)) & (rows < (top + eh).view(b, 1, 1))
        & (cols >= left.view(b, 1, 1)) & (cols < (left + ew).view(b, 1, 1))
        & apply.view(b, 1, 1)
    )
    return x.masked_fill(mask.to(x.device).unsqueeze(1), 0.0)
