"""Batched, on-device image augmentation whose geometry landmarks can follow.

The peers augment one PIL image at a time in DataLoader workers; here a whole
uint8 batch is augmented at once with tensor operations on the training device.
Flip, random-resized crop and the resize to the model's input are one affine
map per sample; the same map moves landmarks, so they stay on the face through
every geometric step. Colour jitter and random erasing follow, on the
normalised tensor as in torchvision's order.

How it is made fast (see :meth:`BatchAugment.__call__`):

* the affine map only scales, shifts and mirrors each axis, so its bilinear
  resampling (``grid_sample``'s, with border padding) is separable: whole
  uint8 rows are gathered, blended, then columns, two taps per axis;
* brightness, contrast, saturation and the normalisation are all affine in
  RGB per sample, so they compose into one 3x3 matrix and offset per sample,
  applied in one batched matmul and clamped once (the uint8 -> [0, 1]
  scaling is folded in as well);
* the erasing mask is built on the device from a few box numbers;
* on the CPU the batch goes through in chunks of a few samples, so each
  step's intermediate is still in cache for the next, and with more than one
  torch thread the chunks are shared among that many worker threads that each
  run single-threaded (:func:`fer_bench.threads.single_threaded_pool`: no
  OpenMP barrier per op, which stalls badly when another process keeps a core
  busy). Every chunk is computed the same way
  whichever thread runs it, so the result does not depend on the thread count.

Additive Gaussian noise (SCN's, RUL's and EAC's per-image ``add_gaussian_noise``:
``clip(x + N(0, var), 0, 255)`` cast back to uint8, var 30 on the 0-255 scale) is applied
to the chosen samples' uint8 images before anything else, as the peers add it to the
decoded image before their tensor transform. Flip and noise are drawn independently, or,
with ``flip_or_noise``, by one uniform draw that picks a flip (probability ``flip``), noise
(``noise``) or neither, as the peers' ``if rand > 0.5: one of (flip, noise)`` does with
0.25 each. The per-pixel noise comes from a device generator seeded from the batch's
generator, so it is reproducible and is drawn where the images are.

Randomness comes only from the ``torch.Generator`` passed in (on the CPU), so a
batch's augmentation is reproducible from the run's seed, epoch and step. All of
a batch's random numbers are drawn first, in a fixed order (flip, crop, jitter
factors, erasing boxes, then the noise: which samples, unless drawn with the flip,
and the seed of its pixels); with the noise off the draws are those of a pipeline
without it.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F

from .threads import single_threaded_pool

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# ITU-R 601 luma weights (torchvision rounds red to 0.2989);
# they sum to 1, which the colour composition below relies on.
_GRAY = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
# On the CPU, about this many float32 values per intermediate tensor of a chunk (1 MiB: 6 samples
# at 112 px), small enough to stay in cache from one step to the next.
_CHUNK_ELEMENTS = 1 << 18


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation parameters (the recipe's ``aug_*`` keys).

    ``crop_scale`` is the area fraction range of RandomResizedCrop; (1, 1) disables it.
    ``erase`` is the probability of RandomErasing, with torchvision's scale/ratio.
    ``noise`` is the probability of additive Gaussian noise of variance ``noise_var``
    (0-255 scale); ``flip_or_noise`` makes flip and noise exclusive (see the module docstring).
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
    noise: float = 0.0
    noise_var: float = 30.0
    flip_or_noise: bool = False
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass
class AugmentedBatch:
    """Images ready for the model, landmarks in output pixels, and the geometry used.

    ``theta`` maps output normalised coordinates to input normalised coordinates
    (``grid_sample``'s convention, align_corners=False); ``flipped`` marks the
    samples that were mirrored, so methods can swap left/right landmark channels.
    ``noisy`` marks the samples that got Gaussian noise; ``noiseless``, when asked
    for, is the same batch without it (same geometry, colour and erasing).
    """

    images: torch.Tensor
    landmarks: Optional[torch.Tensor]
    flipped: torch.Tensor
    theta: torch.Tensor
    noisy: Optional[torch.Tensor] = None
    noiseless: Optional[torch.Tensor] = None


@dataclass
class _Plan:
    """One batch's per-sample parameters, on the device (flip, theta and landmarks as returned)."""

    flip: torch.Tensor
    theta: torch.Tensor
    landmarks: Optional[torch.Tensor]
    step: int                        # samples per chunk
    rows: torch.Tensor               # (2, B, 3, S) int64: the two row taps, in a chunk's uint8 rows
    x0: torch.Tensor                 # (B, S) int64: the two column taps
    x1: torch.Tensor
    wy: torch.Tensor                 # (B, 1, S, 1) float32: weight of the second row tap
    wx: torch.Tensor                 # (B, 1, 1, S) float32: weight of the second column tap
    mat: Optional[torch.Tensor] = None         # (B, 3, 3) colour matrix (None: no jitter)
    k_contrast: Optional[torch.Tensor] = None  # (B,) weight of the mean grey in the offset
    erased_rows: Optional[torch.Tensor] = None  # (B, S) float 1/0
    erased_cols: Optional[torch.Tensor] = None
    erased_any: list = field(default_factory=list)
    noisy: Optional[torch.Tensor] = None        # (B,) bool on the CPU: samples that get Gaussian noise
    noise_seed: Optional[int] = None            # seed of the noise pixels (None: no sample is noisy)


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
        # The normalisation of 0..255 values: x * scale - shift = (x / 255 - mean) / std.
        self._scale = 1.0 / (255.0 * std)
        self._shift = mean / std
        self._inv_std = 1.0 / std
        # [0, 1] before normalising is [-mean/std, (1 - mean)/std] after it, per channel.
        self._bounds = [(float(-m / s), float((1 - m) / s)) for m, s in zip(cfg.mean, cfg.std)]
        self._consts: dict[str, tuple[torch.Tensor, ...]] = {}

    def _on(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """(scale, shift, 1/std, grey weights) as float32 on ``device``, copied there once."""
        key = str(device)
        if key not in self._consts:
            self._consts[key] = tuple(
                t.to(device, torch.float32) for t in (self._scale, self._shift, self._inv_std, _GRAY))
        return self._consts[key]

    def eval(self, raw: torch.Tensor) -> torch.Tensor:
        """The test transform: resize to the input size and normalise, exactly as training normalises."""
        size = self.cfg.image_size
        if raw.shape[1] != size or raw.shape[2] != size:
            x = raw.permute(0, 3, 1, 2).float()
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            x = x.contiguous()
        else:  # uint8 -> float32 and channels-first in one copy
            x = torch.empty(raw.shape[0], 3, size, size, device=raw.device).copy_(raw.permute(0, 3, 1, 2))
        flat = x.view(x.shape[0], 3, -1)
        return self._normalise(flat, flat).view_as(x)

    def _normalise(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``(x / 255 - mean) / std`` of ``(b, 3, P)`` 0..255 values into ``out`` (may be ``x``).

        The one normalisation of both paths: eval, and training without colour
        jitter, so the same pixels give the same bits in both.
        """
        scale, shift, _, _ = self._on(x.device)
        return torch.addcmul(shift.neg().view(1, 3, 1), x, scale.view(1, 3, 1), out=out)

    def __call__(
        self,
        raw: torch.Tensor,
        gen: torch.Generator,
        landmarks: Optional[torch.Tensor] = None,
        flip: Optional[torch.Tensor] = None,
        noiseless: bool = False,
    ) -> AugmentedBatch:
        """Augment a batch.

        Args:
            raw: uint8 ``(B, H, W, 3)`` on the target device.
            gen: CPU generator all random parameters are drawn from.
            landmarks: optional ``(B, K, 2)`` (x, y) in pixels of ``raw``.
            flip: optional bool ``(B,)`` forcing which samples are mirrored
                (EAC's second view); drawn with probability ``cfg.flip`` otherwise.
            noiseless: also return the batch without the Gaussian noise (EAC's
                mirror view is built from it).
        """
        dev = raw.device
        threads = torch.get_num_threads() if dev.type == "cpu" else 1
        pool = single_threaded_pool(threads) if threads > 1 else None
        # The per-batch CPU work is many tiny ops, a few of which (exp, sqrt, round, floor)
        # open an OpenMP region even on small tensors; in a single-threaded worker they do not.
        plan = pool.submit(self._plan, raw, gen, landmarks, flip).result() if pool else \
            self._plan(raw, gen, landmarks, flip)
        source = raw if plan.noise_seed is None else gaussian_noise(raw, plan.noisy, plan.noise_seed, self.cfg.noise_var)
        out = self._apply(source, plan, pool)
        plain = None
        if noiseless:
            plain = out if source is raw else self._apply(raw, plan, pool)
        return AugmentedBatch(out, plan.landmarks, plan.flip, plan.theta, plan.noisy, plain)

    def _apply(self, raw: torch.Tensor, plan: _Plan, pool: Optional[ThreadPoolExecutor]) -> torch.Tensor:
        """Runs ``plan`` over ``raw`` chunk by chunk (on the pool's threads when there is one)."""
        b, size = raw.shape[0], self.cfg.image_size
        out = torch.empty(b, 3, size, size, device=raw.device)
        spans = [(lo, min(b, lo + plan.step)) for lo in range(0, b, plan.step)]
        if pool is None:
            for lo, hi in spans:
                self._chunk(raw, out, plan, lo, hi)
        else:
            for future in [pool.submit(self._chunk, raw, out, plan, lo, hi) for lo, hi in spans]:
                future.result()
        return out

    def _plan(self, raw: torch.Tensor, gen: torch.Generator, landmarks: Optional[torch.Tensor],
              flip: Optional[torch.Tensor]) -> _Plan:
        """Draws the batch's random numbers (flip, crop, jitter, erasing, in that order) and derives
        every per-sample parameter from them on the CPU; they reach the device in two small copies."""
        cfg = self.cfg
        b, h_in, w_in = raw.shape[0], raw.shape[1], raw.shape[2]
        dev, size = raw.device, cfg.image_size
        noisy = None
        if flip is None:
            draw = torch.rand(b, generator=gen)
            flip = draw < cfg.flip
            if cfg.flip_or_noise and cfg.noise > 0:
                noisy = ~flip & (draw < cfg.flip + cfg.noise)
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
        if cfg.noise > 0 and noisy is None:
            noisy = torch.rand(b, generator=gen) < cfg.noise
        noise_seed = None
        if noisy is not None and bool(noisy.any()):
            noise_seed = int(torch.randint(0, 2 ** 62, (1,), generator=gen))

        out_landmarks = None
        if landmarks is not None:
            # Computed on the landmarks' device: copying them to the host would wait for the GPU.
            # Pixel centre convention of align_corners=False: p -> (2p + 1)/W - 1.
            th = theta.to(landmarks.device, non_blocking=True)
            norm_x = (2 * landmarks[..., 0].double() + 1) / w_in - 1
            norm_y = (2 * landmarks[..., 1].double() + 1) / h_in - 1
            ux = (norm_x - th[:, 0, 2:3]) / th[:, 0, 0:1]
            uy = (norm_y - th[:, 1, 2:3]) / th[:, 1, 1:2]
            out_landmarks = torch.stack([((ux + 1) * size - 1) / 2, ((uy + 1) * size - 1) / 2], dim=-1).float()

        step = max(1, _CHUNK_ELEMENTS // (3 * size * size)) if dev.type == "cpu" else b
        y0, y1, wy = _axis_taps(theta[:, 1, 1], theta[:, 1, 2], size, h_in)
        x0, x1, wx = _axis_taps(theta[:, 0, 0], theta[:, 0, 2], size, w_in)
        # rows of a chunk's channels-first (b, 3, H, W) uint8 view, numbered within the chunk
        plane = ((torch.arange(b) % step).view(b, 1) * 3 + torch.arange(3)).view(b, 3, 1) * h_in
        rows = torch.stack([plane + y0.view(b, 1, size), plane + y1.view(b, 1, size)])  # (2, B, 3, S)
        ints = [rows, x0, x1] + ([box] if box is not None else [])
        ints = torch.cat([t.reshape(-1) for t in ints]).to(dev, non_blocking=True)
        floats = [wy, wx] + (list(colour) if colour is not None else [])
        floats = torch.cat([t.reshape(-1) for t in floats]).to(dev, torch.float32, non_blocking=True)
        n = b * size
        plan = _Plan(
            flip=flip, theta=theta, landmarks=out_landmarks, step=step, noisy=noisy, noise_seed=noise_seed,
            rows=ints[:6 * n].view(2, b, 3, size),
            x0=ints[6 * n:7 * n].view(b, size), x1=ints[7 * n:8 * n].view(b, size),
            wy=floats[:n].view(b, 1, size, 1), wx=floats[n:2 * n].view(b, 1, 1, size),
        )
        if colour is not None:
            plan.mat = floats[2 * n:2 * n + 9 * b].view(b, 3, 3)
            plan.k_contrast = floats[2 * n + 9 * b:] if colour[1].numel() else None
        if box is not None:
            # the boxes as (B, S) row and column indicators, built on the device from the box numbers
            box_dev = ints[8 * n:].view(4, b)
            ar = torch.arange(size, device=dev)
            plan.erased_rows = ((ar >= box_dev[0].view(b, 1)) & (ar < box_dev[1].view(b, 1))).float()
            plan.erased_cols = ((ar >= box_dev[2].view(b, 1)) & (ar < box_dev[3].view(b, 1))).float()
            plan.erased_any = (box[1] > box[0]).tolist()
        return plan

    def _chunk(self, raw: torch.Tensor, out: torch.Tensor, plan: _Plan, lo: int, hi: int) -> None:
        """Samples ``lo:hi``: resample, colour and normalise, erase, into ``out[lo:hi]``."""
        x = _resample(raw[lo:hi], plan.rows[:, lo:hi], plan.wy[lo:hi], plan.x0[lo:hi], plan.x1[lo:hi],
                      plan.wx[lo:hi])
        dst = out[lo:hi]
        self._colour(x, dst, None if plan.mat is None else plan.mat[lo:hi],
                     None if plan.k_contrast is None else plan.k_contrast[lo:hi])
        if plan.erased_rows is not None and any(plan.erased_any[lo:hi]):
            # Multiplying by the kept-pixel indicator is the cheapest pass; an erased pixel
            # becomes 0 (-0.0 where its normalised value was negative, equal to 0 in every use).
            keep = torch.addcmul(torch.ones((), device=out.device), plan.erased_rows[lo:hi].unsqueeze(2),
                                 plan.erased_cols[lo:hi].unsqueeze(1), value=-1)
            dst.mul_(keep.unsqueeze(1))

    def _colour_params(self, b: int, gen: torch.Generator) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """Colour jitter (brightness, contrast, saturation, in this fixed order) with the normalisation.

        Each op is affine in RGB per sample: brightness scales by f_b; contrast
        blends with the image's mean grey g, f_c·x + (1 - f_c)·g (the mean grey
        of an affine image is the same map of the original's, so g is taken
        once, from the channel means of the resampled input); saturation blends
        with each pixel's grey, f_s·x + (1 - f_s)·1 wᵀx, a 3x3 matrix S that
        leaves grey alone (S·1 = 1, as w sums to 1). Brightness then contrast
        give f_b·f_c·x + (1 - f_c)·f_b·g, so with saturation and the
        normalisation the whole chain is, for x on the 0..255 scale,

            out = M x + (k·g - mean) / std,   M = f_b·f_c·S / (255·std),   k = (1 - f_c)·f_b / 255,

        one matrix per sample (rows are output channels) and a per-sample
        offset, applied in one batched matmul and clamped once, to [0, 1] in
        normalised units.

        torchvision clamps to [0, 1] after every op; the intermediate clamps
        are dropped: each would cost a pass over the batch, and they only
        matter for pixels that an earlier op pushed out of range (bright pixels
        under f_b > 1, or the mean used by contrast, now that of the unclamped
        brightened image) before a later op pulls them back in.
        tests/test_perf.py checks that the factors, and the result of all
        three, still follow torchvision's ColorJitter.

        Returns ``(M (B, 3, 3), k (B,) or empty when contrast is off)`` in
        float64, or None when no jitter is configured.
        """
        cfg = self.cfg
        if not (cfg.brightness > 0 or cfg.contrast > 0 or cfg.saturation > 0):
            return None

        def factors(strength: float) -> torch.Tensor:
            if strength <= 0:
                return torch.ones(b, dtype=torch.float64)
            return _uniform(b, max(0.0, 1 - strength), 1 + strength, gen)

        fb, fc, fs = factors(cfg.brightness), factors(cfg.contrast), factors(cfg.saturation)
        eye = torch.eye(3, dtype=torch.float64)
        sat = fs.view(b, 1, 1) * eye + (1 - fs).view(b, 1, 1) * _GRAY.view(1, 1, 3)
        mat = (fb * fc).view(b, 1, 1) * sat * self._scale.view(1, 3, 1)
        k = (1 - fc) * fb / 255.0 if cfg.contrast > 0 else torch.zeros(0, dtype=torch.float64)
        return mat, k

    def _colour(self, x: torch.Tensor, out: torch.Tensor, mat: Optional[torch.Tensor],
                k: Optional[torch.Tensor]) -> None:
        """Writes ``x`` (0..255 scale) colour-jittered, normalised and clamped into ``out``."""
        scale, shift, inv_std, grey = self._on(x.device)
        b = x.shape[0]
        flat, dst = x.view(b, 3, -1), out.view(b, 3, -1)
        if mat is None:  # no jitter: scale and shift; bilinear values never leave [0, 255], no clamp
            self._normalise(flat, dst)
            return
        offset = shift.neg().view(1, 3, 1).expand(b, 3, 1)
        if k is not None:
            g = flat.mean(dim=2) @ grey  # (b,) mean grey of each image
            offset = torch.addcmul(offset, (k * g).view(b, 1, 1), inv_std.view(1, 3, 1))
        torch.baddbmm(offset, mat, flat, out=dst)
        for c, (low, high) in enumerate(self._bounds):
            out[:, c].clamp_(low, high)


def gaussian_noise(raw: torch.Tensor, chosen: torch.Tensor, seed: int, var: float) -> torch.Tensor:
    """``raw`` (uint8 ``(B, H, W, 3)``) with ``clip(x + N(0, var), 0, 255)`` on the ``chosen`` samples.

    The peers' ``add_gaussian_noise``: float noise of standard deviation ``sqrt(var)`` per
    pixel and channel, clipped to 0..255 and cast to uint8, which truncates towards 0.
    The pixels come from a generator on ``raw``'s device seeded with ``seed``.
    """
    idx = chosen.nonzero().squeeze(1).to(raw.device)
    picked = raw.index_select(0, idx)
    gen = torch.Generator(device=raw.device).manual_seed(seed)
    noise = torch.randn(picked.shape, generator=gen, device=raw.device)
    noisy = noise.mul_(math.sqrt(var)).add_(picked).clamp_(0, 255).to(torch.uint8)
    return raw.index_copy(0, idx, noisy)


def _axis_taps(scale: torch.Tensor, shift: torch.Tensor, n_out: int, n_in: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``grid_sample``'s bilinear taps along one axis (align_corners=False, border padding).

    Output pixel j (normalised centre u_j) samples the input at normalised
    ``scale·u_j + shift``, per sample. Returns the two input indices ``(B, n_out)``
    and the weight of the second (float64). A position within 1e-6 px of a
    pixel centre snaps to it, so identity maps and mirrors copy pixels exactly.
    """
    u = (2 * torch.arange(n_out, dtype=torch.float64) + 1) / n_out - 1
    pos = ((scale.view(-1, 1) * u + shift.view(-1, 1) + 1) * n_in - 1) / 2
    pos = pos.clamp(0, n_in - 1)  # border padding
    near = pos.round()
    pos = torch.where((pos - near).abs() < 1e-6, near, pos)
    first = pos.floor()
    return first.long(), (first + 1).clamp(max=n_in - 1).long(), pos - first


def _resample(raw: torch.Tensor, rows: torch.Tensor, wy: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor,
              wx: torch.Tensor) -> torch.Tensor:
    """Separable bilinear resampling of uint8 ``(b, H, W, 3)`` to float32 ``(b, 3, S, S)``, 0..255 scale.

    For a map that only scales, shifts and mirrors each axis, ``grid_sample``'s
    bilinear weights factor into a row weight times a column weight, so this is
    the same interpolation (up to float rounding): output row i blends the
    input rows ``rows[:, :, :, i]`` (two taps, indices into the chunk's
    channels-first uint8 rows) with weight ``wy`` on the second, then output
    column j blends columns ``x0``/``x1`` with weight ``wx``.
    """
    b, h_in, w_in = raw.shape[0], raw.shape[1], raw.shape[2]
    size = x0.shape[1]
    planar = raw.permute(0, 3, 1, 2).contiguous().view(b * 3 * h_in, w_in)  # uint8, small to copy
    taps = planar.index_select(0, rows.reshape(-1)).view(2, b, 3, size, w_in).float()
    x = taps[0].lerp_(taps[1], wy)  # (b, 3, S, W)
    shape = (b, 3, size, size)
    left = torch.gather(x, 3, x0.view(b, 1, 1, size).expand(shape))
    right = torch.gather(x, 3, x1.view(b, 1, 1, size).expand(shape))
    return left.lerp_(right, wx)


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
