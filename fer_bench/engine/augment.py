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
        self._scale = 1.0 / (255.0 * std)
        self._shift = mean / std
        self._inv_std = 1.0 / std
        # [0, 1] in normalised units, per channel: clamping there is clamping to [0, 1] before normalising.
        self._bounds = [(float(-m / s), float((1 - m) / s)) for m, s in zip(mean.tolist(), std.tolist())]
        self._consts: dict[str, tuple[torch.Tensor, ...]] = {}

    def _on(self, device: torch.device) -> tuple[torch.Tensor, ...]:
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
        """The test transform: resize to the input size and normalise, with training's normalisation."""
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
        dev, size = raw.device, cfg.image_size
        # Every random number is drawn first, on the CPU generator, in a fixed order:
        # flip, crop, jitter factors, erasing boxes.
        if flip is None:
            flip = torch.rand(b, generator=gen) < cfg.flip
        flip = flip.cpu()
        cx, cy, w, h = _crop_boxes(b, cfg, gen)
        # Output coordinate u in [-1, 1] maps to input (2cx - 1) + w·u (x mirrored when flipped).
        sx = torch.where(flip, -w, w)
        theta = torch.zeros(b, 2, 3, dtype=torch.float64)
        theta[:, 0, 0], theta[:, 0, 2] = sx, 2 * cx - 1
        theta[:, 1, 1], theta[:, 1, 2] = h, 2 * cy - 1
        colour = self._colour_params(b, gen)
        box = None
        if cfg.erase > 0:
            box = _erase_boxes(b, size, size, gen, cfg.erase, cfg.erase_scale, cfg.erase_ratio)

        # The few per-sample numbers go to the device in two small copies.
        y0, y1, wy = _axis_taps(theta[:, 1, 1], theta[:, 1, 2], size, h_in)
        x0, x1, wx = _axis_taps(theta[:, 0, 0], theta[:, 0, 2], size, w_in)
        ints = [y0, y1, x0, x1] + ([box] if box is not None else [])
        ints = torch.cat([t.reshape(-1) for t in ints]).to(dev)
        floats = [wy, wx] + ([colour[0].reshape(-1), colour[1]] if colour is not None else [])
        floats = torch.cat([t.reshape(-1) for t in floats]).to(dev, torch.float32)
        n = b * size
        y0, y1, x0, x1 = (ints[k * n:(k + 1) * n].view(b, size) for k in range(4))
        wy, wx = floats[:n].view(b, size), floats[n:2 * n].view(b, size)
        box_dev = ints[4 * n:].view(4, b) if box is not None else None
        mat = floats[2 * n:2 * n + 9 * b].view(b, 3, 3) if colour is not None else None
        k_contrast = floats[2 * n + 9 * b:] if colour is not None else None

        out = torch.empty(b, 3, size, size, device=dev)
        step = b if dev.type != "cpu" else max(1, _CHUNK_ELEMENTS // (3 * size * size))
        for lo in range(0, b, step):
            hi = min(b, lo + step)
            x = _resample(raw[lo:hi], y0[lo:hi], y1[lo:hi], wy[lo:hi], x0[lo:hi], x1[lo:hi], wx[lo:hi])
            self._colour(x, out[lo:hi], None if mat is None else mat[lo:hi],
                         None if k_contrast is None or k_contrast.numel() == 0 else k_contrast[lo:hi])
            if box_dev is not None:
                # Multiplying by the kept-pixel mask (1/0) is one cheap pass; erased pixels become 0
                # (-0.0 where the normalised value was negative, which compares and computes as 0).
                keep = _box_mask(box_dev[:, lo:hi], size, size).logical_not_()
                out[lo:hi].mul_(keep.to(out.dtype))

        out_landmarks = None
        if landmarks is not None:
            # Pixel centre convention of align_corners=False: p -> (2p + 1)/W - 1.
            norm_x = (2 * landmarks[..., 0].double().cpu() + 1) / w_in - 1
            norm_y = (2 * landmarks[..., 1].double().cpu() + 1) / h_in - 1
            ux = (norm_x - theta[:, 0, 2:3]) / theta[:, 0, 0:1]
            uy = (norm_y - theta[:, 1, 2:3]) / theta[:, 1, 1:2]
            pts = torch.stack([((ux + 1) * size - 1) / 2, ((uy + 1) * size - 1) / 2], dim=-1)
            out_landmarks = pts.to(landmarks.device, torch.float32)
        return AugmentedBatch(out, out_landmarks, flip, theta)

    def _colour_params(self, b: int, gen: torch.Generator) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """Colour jitter (brightness, contrast, saturation, in that order) and normalisation as one affine map.

        Each jitter op is affine in RGB per sample: brightness scales by f_b;
        contrast blends with the image's mean grey g, f_c·x + (1 - f_c)·g (the
        mean grey of an affine image is the same map of the original's, so g
        comes from the per-sample channel means of the resampled input);
        saturation blends with the per-pixel grey, f_s·x + (1 - f_s)·1 wᵀx, a
        3x3 matrix S that keeps grey as it is (S·1 = 1: w sums to 1). Brightness
        then contrast give f_b·f_c·x + (1 - f_c)·f_b·g, so with the normalisation
        the whole chain is ``out = M x + (k·g - mean) / std`` with one matrix
        ``M = f_b·f_c·S / (255·std)`` (rows per output channel, x on the 0..255
        scale) and ``k = (1 - f_c)·f_b / 255`` per sample.

        torchvision clamps to [0, 1] after each op; here only the result is
        clamped. An intermediate clamp would cost a pass over the batch per op
        and only matters for pixels that an earlier op pushed out of range
        (bright pixels under f_b > 1) before contrast or saturation pull them
        back; tests/test_perf.py checks that the factors and the combined
        result still follow torchvision's ColorJitter.

        Returns ``(M (B, 3, 3), k (B,) or empty)`` in float64, or None without jitter.
        """
        cfg = self.cfg
        if not (cfg.brightness > 0 or cfg.contrast > 0 or cfg.saturation > 0):
            return None
        ones = torch.ones(b, dtype=torch.float64)
        fb = _uniform(b, max(0.0, 1 - cfg.brightness), 1 + cfg.brightness, gen) if cfg.brightness > 0 else ones
        fc = _uniform(b, max(0.0, 1 - cfg.contrast), 1 + cfg.contrast, gen) if cfg.contrast > 0 else ones
        fs = _uniform(b, max(0.0, 1 - cfg.saturation), 1 + cfg.saturation, gen) if cfg.saturation > 0 else ones
        eye = torch.eye(3, dtype=torch.float64)
        sat = fs.view(b, 1, 1) * eye + (1 - fs).view(b, 1, 1) * torch.ones(3, 1, dtype=torch.float64) * _GRAY
        mat = (fb * fc).view(b, 1, 1) * sat * self._scale.view(1, 3, 1)
        k = (1 - fc) * fb / 255.0 if cfg.contrast > 0 else torch.zeros(0, dtype=torch.float64)
        return mat, k

    def _colour(self, x: torch.Tensor, out: torch.Tensor, mat: Optional[torch.Tensor],
                k: Optional[torch.Tensor]) -> None:
        """Writes the colour-mapped, normalised, clamped ``x`` (0..255 scale) into ``out``."""
        scale, shift, inv_std, grey = self._on(x.device)
        b = x.shape[0]
        flat, dst = x.view(b, 3, -1), out.view(b, 3, -1)
        if mat is None:  # no jitter: scale and shift; bilinear values stay in range, so no clamp
            torch.addcmul(shift.neg().view(1, 3, 1), flat, scale.view(1, 3, 1), out=dst)
            return
        offset = shift.neg().view(1, 3, 1).expand(b, 3, 1)
        if k is not None:
            g = flat.mean(dim=2) @ grey  # (b,) mean grey of the input
            offset = torch.addcmul(offset, (k * g).view(b, 1, 1), inv_std.view(1, 3, 1))
        torch.baddbmm(offset, mat, flat, out=dst)
        for c, (low, high) in enumerate(self._bounds):
            out[:, c].clamp_(low, high)


# On the CPU the batch is processed in chunks of about this many float32 values per
# intermediate tensor, so that each step's output is still in cache for the next.
_CHUNK_ELEMENTS = 1 << 19


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


def _resample(raw: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor, wy: torch.Tensor,
              x0: torch.Tensor, x1: torch.Tensor, wx: torch.Tensor) -> torch.Tensor:
    """Separable bilinear resampling of uint8 ``(B, H, W, 3)`` to float ``(B, 3, S, S)`` (0..255 scale).

    Output row i blends input rows ``y0[:, i]`` and ``y1[:, i]`` with weight
    ``wy[:, i]`` on the second, and columns likewise: for an axis-aligned
    affine map this is ``grid_sample``'s bilinear interpolation exactly (up to
    float rounding), at two taps per axis instead of four per pixel.
    """
    b, h_in, w_in = raw.shape[0], raw.shape[1], raw.shape[2]
    size = y0.shape[1]
    if _MODE == "grid":
        u = (2 * torch.arange(size, dtype=torch.float32, device=raw.device) + 1) / size - 1
        gx = ((x0 + wx) * 2 + 1) / w_in - 1
        gy = ((y0 + wy) * 2 + 1) / h_in - 1
        grid = torch.empty(b, size, size, 2, device=raw.device)
        grid[..., 0] = gx.view(b, 1, size)
        grid[..., 1] = gy.view(b, size, 1)
        return F.grid_sample(raw.permute(0, 3, 1, 2).float(), grid, mode="bilinear", padding_mode="border",
                             align_corners=False)
    if _MODE == "cl":
        base = (torch.arange(b, device=raw.device) * h_in).view(b, 1)
        rows = torch.stack([base + y0, base + y1])  # (2, b, S)
        taps = raw.reshape(b * h_in, w_in * 3).index_select(0, rows.view(-1)).view(2, b, size, w_in, 3)
        tf = torch.empty(2, b, 3, size, w_in, device=raw.device).copy_(taps.permute(0, 1, 4, 2, 3))
    else:
        planar = raw.permute(0, 3, 1, 2).contiguous()  # (b, 3, H, W) uint8
        base = (torch.arange(b * 3, device=raw.device) * h_in).view(b, 3, 1)
        rows = torch.stack([base + y0.view(b, 1, size), base + y1.view(b, 1, size)])  # (2, b, 3, S)
        tf = planar.view(b * 3 * h_in, w_in).index_select(0, rows.view(-1)).view(2, b, 3, size, w_in).float()
    x = tf[0].lerp_(tf[1], wy.view(b, 1, size, 1))  # (b, 3, S, W)
    shape = (b, 3, size, size)
    c0 = torch.gather(x, 3, x0.view(b, 1, 1, size).expand(shape))
    c1 = torch.gather(x, 3, x1.view(b, 1, 1, size).expand(shape))
    return c0.lerp_(c1, wx.view(b, 1, 1, size))


import os
_MODE = os.environ.get("AUG_MODE", "planar")
_CHUNK_ELEMENTS = int(os.environ.get("AUG_CHUNK", 1 << 19))


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


def _box_mask(box: torch.Tensor, hh: int, ww: int) -> torch.Tensor:
    """Bool ``(B, 1, H, W)`` mask of the boxes ``(4, B)``, built on the boxes' device."""
    rows = torch.arange(hh, device=box.device)
    cols = torch.arange(ww, device=box.device)
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
    return x.masked_fill(_box_mask(box.to(x.device), hh, ww), 0.0)
