"""Batched, on-device image augmentation whose geometry landmarks can follow.

The peers augment one PIL image at a time in DataLoader workers; here a whole
uint8 batch is augmented at once with tensor operations on the training device.
Flip, random-resized crop and the resize to the model's input are one affine
map per sample; the same map moves landmarks, so they stay on the face through
every geometric step. The map only scales, shifts and mirrors each axis, so its
bilinear resampling (``grid_sample``'s, border padding) is done one axis at a
time from gathered rows and columns. Colour jitter and normalisation are then
one per-sample 3x3 colour matrix and offset, applied with a single batched
matmul, and random erasing follows on the normalised tensor, as in
torchvision's order.

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
_GRAY = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)  # luma weights (sum to 1), as torchvision


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
        mean = torch.tensor(cfg.mean, dtype=torch.float64)
        std = torch.tensor(cfg.std, dtype=torch.float64)
        # Normalisation of 0..255 values: x -> x * scale - shift, i.e. (x / 255 - mean) / std.
        self._inv_std = 1.0 / std
        self._scale = 1.0 / (255.0 * std)
        self._shift = mean / std
        # [0, 1] in normalised units, per channel: clamping there is clamping to [0, 1] before normalising.
        self._bounds = [(float(-m / s), float((1 - m) / s)) for m, s in zip(mean.tolist(), std.tolist())]
        self._consts: dict = {}

    def _on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(scale, shift, 1/std, grey weights) as float32 on ``device``, cached (no copy per batch)."""
        key = str(device)
        if key not in self._consts:
            self._consts[key] = tuple(
                t.to(device, torch.float32) for t in (self._scale, self._shift, self._inv_std, _GRAY))
        return self._consts[key]

    @staticmethod
    def to_float(raw: torch.Tensor) -> torch.Tensor:
        return raw.permute(0, 3, 1, 2).float().div_(255.0)

    def eval(self, raw: torch.Tensor) -> torch.Tensor:
        """The test transform: resize to the input size and normalise (as training does, without jitter)."""
        scale, shift, _, _ = self._on(raw.device)
        size = self.cfg.image_size
        if raw.shape[1] != size or raw.shape[2] != size:
            x = raw.permute(0, 3, 1, 2).float()
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            x = x.contiguous()
        else:  # uint8 -> float and channels-first in one copy
            x = torch.empty(raw.shape[0], 3, size, size, device=raw.device).copy_(raw.permute(0, 3, 1, 2))
        return x.mul_(scale.view(1, 3, 1, 1)).sub_(shift.view(1, 3, 1, 1))  # (x / 255 - mean) / std

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
        size = cfg.image_size
        x = _resample(raw, theta, size)  # (B, 3, S, S) float32, still on the 0..255 scale

        out_landmarks = None
        if landmarks is not None:
            # Pixel centre convention of align_corners=False: p -> (2p + 1)/W - 1.
            norm_x = (2 * landmarks[..., 0].double().cpu() + 1) / w_in - 1
            norm_y = (2 * landmarks[..., 1].double().cpu() + 1) / h_in - 1
            ux = (norm_x - theta[:, 0, 2:3]) / theta[:, 0, 0:1]
            uy = (norm_y - theta[:, 1, 2:3]) / theta[:, 1, 1:2]
            out = torch.stack([((ux + 1) * size - 1) / 2, ((uy + 1) * size - 1) / 2], dim=-1)
            out_landmarks = out.to(landmarks.device, torch.float32)

        x = self._colour(x, gen)
        if cfg.erase > 0:
            box = _erase_boxes(b, size, size, gen, cfg.erase, cfg.erase_scale, cfg.erase_ratio)
            if box is not None:
                # multiplying by the kept-pixel mask (1/0) is one cheap pass; erased pixels become 0
                # (-0.0 where the normalised value was negative, which compares and computes as 0)
                x.mul_(_box_mask(box, size, size, x.device).logical_not_().to(x.dtype))
        return AugmentedBatch(x, out_landmarks, flip, theta)

    def _colour(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Colour jitter (brightness, contrast, saturation, in that order) and normalisation of 0..255 input.

        Each jitter op is affine in RGB per sample: brightness scales by f_b;
        contrast blends with the mean grey of the image, c·x + (1 - c)·grey_mean
        (the mean grey of an affine image is the same map of the original's, so
        it comes from the per-sample channel means of the input); saturation
        blends with the per-pixel grey, s·x + (1 - s)·1 wᵀx, a 3x3 matrix. With
        the normalisation they compose into one matrix and offset per sample,
        applied in a single batched matmul, then one clamp to [0, 1] (in
        normalised units). torchvision clamps to [0, 1] after each op; the
        intermediate clamps are dropped here because they would need a pass
        over the batch each and they only matter for pixels pushed out of range
        by an earlier op (bright pixels under brightness > 1) before contrast or
        saturation pull them back; the final clamp keeps the output range, and
        tests/test_perf.py checks that the factors and the combined result still
        follow torchvision's ColorJitter.
        """
        cfg, b = self.cfg, x.shape[0]
        scale, shift, inv_std, grey = self._on(x.device)

        def factors(strength: float) -> torch.Tensor:
            return _uniform(b, max(0.0, 1 - strength), 1 + strength, gen)

        ones = torch.ones(b, dtype=torch.float64)
        fb = factors(cfg.brightness) if cfg.brightness > 0 else ones
        fc = factors(cfg.contrast) if cfg.contrast > 0 else ones
        fs = factors(cfg.saturation) if cfg.saturation > 0 else ones
        flat = x.view(b, 3, -1)
        if not (cfg.brightness > 0 or cfg.contrast > 0 or cfg.saturation > 0):
            # no jitter: a per-channel scale and shift, and bilinear values stay in range (no clamp)
            return flat.mul_(scale.view(1, 3, 1)).sub_(shift.view(1, 3, 1)).view_as(x)
        # After brightness and contrast the image is fb·fc·x + (1 - fc)·fb·g (g its mean grey);
        # saturation S = fs·I + (1 - fs)·1 wᵀ keeps the grey constant (S·1 = 1, w sums to 1).
        eye = torch.eye(3, dtype=torch.float64)
        sat = fs.view(b, 1, 1) * eye + (1 - fs).view(b, 1, 1) * torch.ones(3, 1, dtype=torch.float64) * _GRAY
        mat = (fb * fc).view(b, 1, 1) * sat * self._scale.view(1, 3, 1)  # rows: output channels
        offset = shift.neg().view(1, 3, 1).expand(b, 3, 1)
        if cfg.contrast > 0:
            g = flat.mean(dim=2) @ grey  # (B,) mean grey of the input, 0..255
            k = ((1 - fc) * fb / 255.0).to(x.device, torch.float32)
            offset = torch.addcmul(offset, (k * g).view(b, 1, 1), inv_std.view(1, 3, 1))
        out = torch.baddbmm(offset, mat.to(x.device, torch.float32), flat).view_as(x)
        for c, (low, high) in enumerate(self._bounds):
            out[:, c].clamp_(low, high)
        return out


def _axis_taps(scale: torch.Tensor, shift: torch.Tensor, n_out: int, n_in: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """1-D bilinear taps of ``grid_sample`` (align_corners=False, border padding) along one axis.

    Output pixel j (normalised centre u_j) samples the input at normalised
    ``scale·u_j + shift``, per sample. Returns the two input indices ``(B, n_out)``
    and the weight of the second (float64). Positions within 1e-6 px of a pixel
    centre snap to it, so identity maps and mirrors copy pixels exactly.
    """
    u = (2 * torch.arange(n_out, dtype=torch.float64) + 1) / n_out - 1
    pos = ((scale.view(-1, 1) * u + shift.view(-1, 1) + 1) * n_in - 1) / 2
    pos = pos.clamp(0, n_in - 1)  # border padding
    near = pos.round()
    pos = torch.where((pos - near).abs() < 1e-6, near, pos)
    first = pos.floor()
    return first.long(), (first + 1).clamp(max=n_in - 1).long(), pos - first


def _resample(raw: torch.Tensor, theta: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resampling of uint8 ``(B, H, W, 3)`` under axis-aligned ``theta`` to float ``(B, 3, S, S)``.

    Equal (up to float rounding) to ``grid_sample(raw, affine_grid(theta))`` with
    border padding, done separably: rows first, gathered as whole uint8 rows,
    then columns, each a linear blend of two taps. Values stay on the 0..255 scale.
    """
    b, h_in, w_in = raw.shape[0], raw.shape[1], raw.shape[2]
    dev = raw.device
    y0, y1, wy = _axis_taps(theta[:, 1, 1], theta[:, 1, 2], size, h_in)
    x0, x1, wx = _axis_taps(theta[:, 0, 0], theta[:, 0, 2], size, w_in)
    # rows: one index_select of whole rows of the channels-first uint8 batch
    planar = raw.permute(0, 3, 1, 2).contiguous()  # (B, 3, H, W) uint8
    base = (torch.arange(b * 3, dtype=torch.int64) * h_in).view(b, 3, 1)
    rows = torch.cat([(base + y0.view(b, 1, size)).flatten(), (base + y1.view(b, 1, size)).flatten()])
    taps = planar.view(b * 3 * h_in, w_in).index_select(0, rows.to(dev)).view(2, b, 3, size, w_in).float()
    x = taps[0].lerp_(taps[1], wy.to(dev, torch.float32).view(b, 1, size, 1))  # (B, 3, S, W)
    # columns: gather along the last axis, the same columns for every row and channel of a sample
    shape = (b, 3, size, size)
    c0 = torch.gather(x, 3, x0.to(dev).view(b, 1, 1, size).expand(shape))
    c1 = torch.gather(x, 3, x1.to(dev).view(b, 1, 1, size).expand(shape))
    return c0.lerp_(c1, wx.to(dev, torch.float32).view(b, 1, 1, size))


def _erase_boxes(b: int, hh: int, ww: int, gen: torch.Generator, p: float,
                 scale: tuple[float, float], ratio: tuple[float, float]) -> Optional[torch.Tensor]:
    """RandomErasing's boxes drawn on the CPU generator: ``(4, B)`` int64 rows top, bottom, left, right.

    Samples that are not erased get an empty box; None when no sample is erased.
    """
    apply = torch.rand(b, generator=gen) < p
    area = _uniform(b, *scale, gen) * hh * ww
    aspect = torch.exp(_uniform(b, math.log(ratio[0]), math.log(ratio[1]), gen))
    eh = torch.sqrt(area * aspect).round().clamp(1, hh).long()
    ew = torch.sqrt(area / aspect).round().clamp(1, ww).long()
    top = (torch.rand(b, generator=gen, dtype=torch.float64) * (hh - eh + 1)).long()
    left = (torch.rand(b, generator=gen, dtype=torch.float64) * (ww - ew + 1)).long()
    if not bool(apply.any()):
        return None
    eh = torch.where(apply, eh, torch.zeros_like(eh))
    return torch.stack([top, top + eh, left, left + ew])


def _box_mask(box: torch.Tensor, hh: int, ww: int, device: torch.device) -> torch.Tensor:
    """Bool ``(B, 1, H, W)`` mask of the boxes, built on ``device`` from the few box numbers."""
    box = box.to(device)
    rows = torch.arange(hh, device=device)
    cols = torch.arange(ww, device=device)
    in_rows = (rows >= box[0].view(-1, 1)) & (rows < box[1].view(-1, 1))
    in_cols = (cols >= box[2].view(-1, 1)) & (cols < box[3].view(-1, 1))
    return (in_rows.unsqueeze(2) & in_cols.unsqueeze(1)).unsqueeze(1)


def random_erase(x: torch.Tensor, gen: torch.Generator, p: float,
                 scale: tuple[float, float] = (0.02, 0.25),
                 ratio: tuple[float, float] = (0.3, 3.3)) -> torch.Tensor:
    """RandomErasing with value 0 (torchvision's default), one box per chosen sample.

    Each sample is erased with probability ``p``; the box's area fraction is
    uniform in ``scale`` and its aspect ratio log-uniform in ``ratio``. The box
    parameters come from ``gen`` (CPU); the mask is built on ``x``'s device.
    Returns a new tensor (``x`` is left as it is).
    """
    b, _, hh, ww = x.shape
    box = _erase_boxes(b, hh, ww, gen, p, scale, ratio)
    if box is None:
        return x.clone()
    return x.masked_fill(_box_mask(box, hh, ww, x.device), 0.0)
