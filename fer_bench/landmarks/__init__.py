"""Facial landmarks: how they are obtained, laid out and turned into training targets.

* :mod:`.mapping`: the iBUG 68 and LA-Net 19-point layouts, the documented
  68 -> 19 mapping and the left/right mirror permutations of both;
* :mod:`.heatmaps`: Gaussian heatmap targets (the official and the pixel-centre
  peak convention) and their weight maps;
* extraction into a per-dataset cache lives in the backend and extract modules
  beside them (imported on demand: they pull in optional detectors).
"""

from .heatmaps import (HEATMAP_CONVENTIONS, gaussian_heatmaps, heatmap_size, heatmap_targets, official_heatmaps,
                       to_heatmap_coords, weight_map)
from .mapping import (FLIP_19, FLIP_68, MAP_68_TO_19, NAMES_19, flip_permutation, map_68_to_19,
                      mapping_matrix, swap_mirrored)

__all__ = [
    "FLIP_19", "FLIP_68", "HEATMAP_CONVENTIONS", "MAP_68_TO_19", "NAMES_19", "flip_permutation",
    "gaussian_heatmaps", "heatmap_size", "heatmap_targets", "map_68_to_19", "mapping_matrix", "official_heatmaps",
    "swap_mirrored",
    "to_heatmap_coords", "weight_map",
]
