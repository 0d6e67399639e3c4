"""Landmark layouts: the iBUG 68-point scheme, LA-Net's 19 points, and their mirror images.

**iBUG 68** (dlib, FAN, synthfer; 0-based): 0-16 jaw from the image-left ear round
the chin (8) to the image-right ear, 17-21 image-left brow (outer to inner), 22-26
image-right brow (inner to outer), 27-30 nose bridge down to the tip (30), 31-35
nostrils from image-left to image-right (33 below the tip), 36-41 image-left eye
(36 outer corner, 39 inner corner), 42-47 image-right eye (42 inner, 45 outer),
48-59 outer lips (48 image-left corner, 51 top centre, 54 image-right corner, 57
bottom centre), 60-67 inner lips (62 top centre, 66 bottom centre).

**LA-Net 19**: the AFLW-19 scheme (AFLW's 21 points minus the ears) that the
official code's pre-detected RAF-DB landmarks follow:

====  ==========================================  ====================
 idx   point (image sides)                          from iBUG 68
====  ==========================================  ====================
 0     image-left brow, outer end                  17
 1     image-left brow, middle                     19
 2     image-left brow, inner end                  21
 3     image-right brow, inner end                 22
 4     image-right brow, middle                    24
 5     image-right brow, outer end                 26
 6     image-left eye, outer corner                36
 7     image-left eye, centre                      mean of 36-41
 8     image-left eye, inner corner                39
 9     image-right eye, inner corner               42
 10    image-right eye, centre                     mean of 42-47
 11    image-right eye, outer corner               45
 12    nose, image-left ala                        31
 13    nose tip                                    30
 14    nose, image-right ala                       35
 15    mouth, image-left corner                    48
 16    mouth centre                                mean of 51, 57, 62, 66
 17    mouth, image-right corner                   54
 18    chin                                        8
====  ==========================================  ====================

Points without a 68-point counterpart (eye and mouth centres) are means of the
contour around them; the mouth centre uses the outer and inner lip midpoints so
that it sits in the middle of an open mouth too. The nose tip is iBUG 30 (the end
of the bridge), not 33 (the base between the nostrils): in the official RAF-DB
file the tip lies above the alae, as 30 does.

**Mirroring.** ``FLIP_68[i]`` / ``FLIP_19[i]`` is the index of the point symmetric
to ``i`` (itself on the midline). Indexing mirrored landmarks with them,
``points[..., FLIP, :]``, gives channel ``i`` back its meaning ("the image-left
outer brow") after a horizontal flip moved that point to the other side.
Mapping and mirroring commute: ``map_68_to_19(p[FLIP_68]) == map_68_to_19(p)[FLIP_19]``.
"""

from __future__ import annotations

import torch

NUM_68 = 68
NUM_19 = 19

# Each 19-point landmark as the mean of these iBUG-68 points (see the table above).
MAP_68_TO_19: tuple[tuple[int, ...], ...] = (
    (17,), (19,), (21,),                      # image-left brow: outer, middle, inner
    (22,), (24,), (26,),                      # image-right brow: inner, middle, outer
    (36,), (36, 37, 38, 39, 40, 41), (39,),   # image-left eye: outer, centre, inner
    (42,), (42, 43, 44, 45, 46, 47), (45,),   # image-right eye: inner, centre, outer
    (31,), (30,), (35,),                      # nose: left ala, tip, right ala
    (48,), (51, 57, 62, 66), (54,),           # mouth: left corner, centre, right corner
    (8,),                                     # chin
)

NAMES_19: tuple[str, ...] = (
    "left_brow_outer", "left_brow_middle", "left_brow_inner",
    "right_brow_inner", "right_brow_middle", "right_brow_outer",
    "left_eye_outer", "left_eye_centre", "left_eye_inner",
    "right_eye_inner", "right_eye_centre", "right_eye_outer",
    "nose_left_ala", "nose_tip", "nose_right_ala",
    "mouth_left_corner", "mouth_centre", "mouth_right_corner",
    "chin",
)
"""Names by image side (``left`` = image-left = the subject's right)."""


def _permutation(pairs: list[tuple[int, int]], n: int) -> tuple[int, ...]:
    perm = list(range(n))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


FLIP_68: tuple[int, ...] = _permutation(
    [(k, 16 - k) for k in range(8)]                       # jaw
    + [(17 + k, 26 - k) for k in range(5)]                # brows
    + [(31, 35), (32, 34)]                                # nostrils
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips
    + [(60, 64), (61, 63), (65, 67)],                     # inner lips
    NUM_68,
)

FLIP_19: tuple[int, ...] = _permutation(
    [(0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9), (12, 14), (15, 17)], NUM_19,
)


def mapping_matrix(dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(19, 68)`` averaging weights: row ``k`` spreads 1 over the 68-points of 19-point ``k``."""
    m = torch.zeros(NUM_19, NUM_68, dtype=dtype, device=device)
    for k, sources in enumerate(MAP_68_TO_19):
        m[k, list(sources)] = 1.0 / len(sources)
    return m


def map_68_to_19(points: torch.Tensor) -> torch.Tensor:
    """``(..., 68, 2)`` iBUG points to ``(..., 19, 2)`` LA-Net points."""
    if points.shape[-2] != NUM_68:
        raise ValueError(f"expected 68 points, got {points.shape[-2]}")
    return torch.einsum("kp,...pd->...kd", mapping_matrix(points.dtype, points.device), points)


def flip_permutation(num_points: int) -> tuple[int, ...]:
    """The mirror permutation of the 68- or 19-point layout."""
    if num_points == NUM_68:
        return FLIP_68
    if num_points == NUM_19:
        return FLIP_19
    raise ValueError(f"no mirror permutation for {num_points} points (known: 19, 68)")


def swap_mirrored(points: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
    """Re-index the points of mirrored samples so each channel keeps its image-side meaning.

    Args:
        points: ``(B, K, 2)`` already mirrored geometrically (x reflected) where ``flipped``.
        flipped: bool ``(B,)``.
    """
    perm = torch.tensor(flip_permutation(points.shape[-2]), device=points.device)
    return torch.where(flipped.to(points.device).view(-1, 1, 1), points[:, perm], points)
