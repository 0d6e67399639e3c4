"""Landmark heatmap targets and their weight maps, the targets of LA-Net's landmark branch.

One channel per landmark: a Gaussian with peak 1 (not normalised) and
``sigma`` = 1.5 heatmap pixels, centred on the landmark's heatmap pixel, on a
map a quarter of the input size (56 x 56 for 224 px, 12 x 12 for 48 px).

The weight map gives the pixels around each peak weight 10 and the rest 1: the
heatmap is dilated with a 3 x 3 max filter and thresholded at 0.2. Without it a
network would learn that predicting zeros everywhere is nearly optimal, since a
point's foreground is ~45 of 3,136 pixels.

Two peak conventions (``convention``; LA-Net's ``--set heatmap_peak=...``), both
computed separably for the whole batch at once:

* ``official`` (the official recipe's): the official ``generate_target``
  (LA-Net ``dataloader.py`` and ``utils.py``): the peak sits on heatmap pixel
  ``int(x * h / S + 0.5)`` (``int(x / 4 + 0.5)`` at 224 px, truncating toward
  zero), and the Gaussian is written as its 10 x 10 patch, offsets -5..+4 from
  the peak (for sigma 1.5; ``int(p - 3 sigma)`` to ``int(p + 3 sigma + 1)`` in
  general). Near the top/left border the patch's integer truncation moves the
  peak one pixel right/down; that is reproduced too, so ``official`` gives the
  targets the official code trains on.
* ``centre`` (the suite's): the engine's pixel-centre convention (pixel ``i`` has
  its centre at ``i``), so an input pixel ``p`` lies at heatmap coordinate
  ``(p + 0.5) * h / S - 0.5``, rounded to the nearest pixel; the Gaussian is cut
  symmetrically at ``|dx|, |dy| <= 3 sigma`` (offsets -4..+4 for sigma 1.5). At
  224 px it puts about three peaks in four one heatmap pixel away from the
  official ones (the official ``x / 4`` is a quarter of the coordinate, not of
  the pixel centre), and it has no border quirk.

Either way the peak value is 1, and a point whose patch lies wholly outside the
map (cropped away) gives an all-zero heatmap and so an all-ones weight map, as
in the code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

HEATMAP_STRIDE = 4
SIGMA = 1.5
FOREGROUND_WEIGHT = 10.0
FOREGROUND_THRESHOLD = 0.2


def heatmap_size(image_size: int, stride: int = HEATMAP_STRIDE) -> int:
    """Side of the heatmap for a square input (a quarter of it by default)."""
    return max(1, image_size // stride)


def to_heatmap_coords(points: torch.Tensor, image_size: int, size: int) -> torch.Tensor:
    """Points in input pixels ``(..., 2)`` to continuous heatmap pixel coordinates."""
    return (points + 0.5) * (size / image_size) - 0.5


def gaussian_heatmaps(centres: torch.Tensor, size: int, sigma: float = SIGMA) -> torch.Tensor:
    """``(B, K, size, size)`` Gaussians of peak 1 at the rounded ``centres`` ``(B, K, 2)`` (x, y)."""
    c = torch.floor(centres.float() + 0.5)
    grid = torch.arange(size, device=centres.device, dtype=torch.float32)
    d_x = grid.view(1, 1, -1) - c[..., 0:1]       # (B, K, W)
    d_y = grid.view(1, 1, -1) - c[..., 1:2]       # (B, K, H)
    reach = 3.0 * sigma
    g_x = torch.exp(-d_x ** 2 / (2 * sigma ** 2)) * (d_x.abs() <= reach)
    g_y = torch.exp(-d_y ** 2 / (2 * sigma ** 2)) * (d_y.abs() <= reach)
    return g_y.unsqueeze(-1) * g_x.unsqueeze(-2)


def weight_map(heatmaps: torch.Tensor, threshold: float = FOREGROUND_THRESHOLD,
               foreground: float = FOREGROUND_WEIGHT) -> torch.Tensor:
    """``foreground`` where the 3 x 3-dilated heatmap exceeds ``threshold``, 1 elsewhere."""
    b, k, h, w = heatmaps.shape
    dilated = F.max_pool2d(heatmaps.reshape(b * k, 1, h, w), 3, stride=1, padding=1).view(b, k, h, w)
    return torch.where(dilated > threshold, torch.full_like(heatmaps, foreground), torch.ones_like(heatmaps))


def official_heatmaps(points: torch.Tensor, image_size: int, size: int, sigma: float = SIGMA) -> torch.Tensor:
    """``(B, K, size, size)`` heatmaps as the official ``generate_target`` writes them (see the module docstring)."""
    peak = torch.trunc(points.float() * (size / image_size) + 0.5)
    reach = 3.0 * sigma
    patch = math.ceil(2 * reach + 1)       # the patch's side: len(arange(0, 2 * reach + 1))
    middle = (2 * reach + 1) // 2          # its peak's index in the patch
    first, end = torch.trunc(peak - reach), torch.trunc(peak + reach + 1)
    grid = torch.arange(size, device=points.device, dtype=torch.float32)
    axes = []
    for a in (0, 1):  # x, then y
        index = grid.view(1, 1, -1) - first[..., a:a + 1]  # position in the patch
        inside = (index >= 0) & (index < patch) & (grid.view(1, 1, -1) < end[..., a:a + 1])
        axes.append(torch.exp(-(index - middle) ** 2 / (2 * sigma ** 2)) * inside)
    return axes[1].unsqueeze(-1) * axes[0].unsqueeze(-2)


HEATMAP_CONVENTIONS = ("official", "centre")


def heatmap_targets(points: torch.Tensor, image_size: int, size: int, sigma: float = SIGMA,
                    convention: str = "centre") -> tuple[torch.Tensor, torch.Tensor]:
    """Heatmaps and weight maps ``(B, K, size, size)`` for points ``(B, K, 2)`` in input pixels."""
    if convention == "official":
        heat = official_heatmaps(points, image_size, size, sigma)
    elif convention == "centre":
        heat = gaussian_heatmaps(to_heatmap_coords(points, image_size, size), size, sigma)
    else:
        raise ValueError(f"unknown heatmap convention {convention!r}; known: {', '.join(HEATMAP_CONVENTIONS)}")
    return heat, weight_map(heat)
