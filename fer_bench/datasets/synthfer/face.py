"""Geometry of synthfer faces: the 68-point layout, identities, expressions and pose.

Points follow the iBUG/dlib/FAN order (0-16 jaw from the image-left ear round the
chin, 17-21 and 22-26 brows, 27-30 nose bridge, 31-35 nostrils, 36-41 and 42-47
eyes, 48-59 outer lips, 60-67 inner lips). "Right" in that scheme is the
subject's right, which is image-left; here left/right always mean image sides.

Shapes live in a canonical frame: x to the image right, y down, the face is one
unit wide (the jaw spans x in [-0.5, 0.5]) and the origin lies near the eye line.
Expressions are FACS-inspired: each expression is a vector of action-unit
intensities (:data:`EXPRESSION_AUS`), each action unit a displacement field over
the 68 points (:func:`au_basis`). Because the map from action units to
displacements is linear, the deformation of a blend ``p`` is exactly the
``p``-weighted blend of the per-class deformations; the only non-linear step is
that inner lips may touch but never cross (:func:`deform`). Pose (yaw, roll,
scale, translation) maps the canonical frame to image pixels (:func:`project`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

N_POINTS = 68
HALF_W = 0.5

JAW = np.arange(0, 17)
BROW_R, BROW_L = np.arange(17, 22), np.arange(22, 27)
NOSE_BRIDGE, NOSTRILS = np.arange(27, 31), np.arange(31, 36)
EYE_R, EYE_L = np.arange(36, 42), np.arange(42, 48)
LIPS_OUTER, LIPS_INNER = np.arange(48, 60), np.arange(60, 68)

# Points on the image-left half; their mirror partners are derived, so every
# symmetric movement is written once.
LEFT = np.array(
    list(range(0, 8)) + list(range(17, 22)) + [31, 32] + list(range(36, 42))
    + [48, 49, 50, 58, 59, 60, 61, 67]
)
MIDLINE = np.array([8, 27, 28, 29, 30, 33, 51, 57, 62, 66])


def _mirror_index() -> np.ndarray:
    pairs = [(k, 16 - k) for k in range(8)] + [(17 + k, 26 - k) for k in range(5)] + [
        (31, 35), (32, 34), (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),
        (48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67),
    ]
    m = np.arange(N_POINTS)
    for a, b in pairs:
        m[a], m[b] = b, a
    return m


MIRROR = _mirror_index()
"""``MIRROR[i]`` is the point symmetric to ``i`` (itself on the midline)."""

# Inner-lip points facing each other across the mouth (upper, lower).
LIP_CONTACT = ((61, 67), (62, 66), (63, 65))

AU_NAMES: tuple[str, ...] = (
    "brow_inner_up",     # AU1
    "brow_outer_up",     # AU2
    "brow_down",         # AU4 (lowering)
    "brow_knit",         # AU4 (drawing together)
    "lid_up",            # AU5
    "cheek_raise",       # AU6
    "lid_tighten",       # AU7
    "nose_wrinkle",      # AU9
    "upper_lip_up",      # AU10
    "corner_pull",       # AU12
    "corner_down",       # AU15 + AU17
    "lip_stretch",       # AU20
    "lip_press",         # AU24
    "lips_part",         # AU25
    "jaw_drop",          # AU26/27
    "lid_droop",         # AU43-like upper lid lowering of sadness
    "corner_raise_l",    # AU14/12 on the image-left mouth corner only
    "corner_raise_r",    # the same on the image-right corner
)
AU_INDEX: dict[str, int] = {n: i for i, n in enumerate(AU_NAMES)}

# Action units per expression (canonical class names) at full intensity.
# Contempt is one-sided; "corner_raise" is resolved to the _l or _r unit per face.
EXPRESSION_AUS: dict[str, dict[str, float]] = {
    "neutral": {},
    "happiness": {"cheek_raise": 1.0, "corner_pull": 1.0, "lips_part": 0.5, "upper_lip_up": 0.3},
    "sadness": {"brow_inner_up": 1.0, "brow_outer_up": -0.35, "brow_knit": 0.5,
                "lid_droop": 1.0, "corner_down": 1.0},
    "surprise": {"brow_inner_up": 1.0, "brow_outer_up": 1.0, "lid_up": 1.0,
                 "jaw_drop": 1.0, "lips_part": 0.3},
    "fear": {"brow_inner_up": 1.0, "brow_outer_up": 0.45, "brow_knit": 1.0, "lid_up": 1.0,
             "lip_stretch": 1.0, "lips_part": 0.8, "jaw_drop": 0.2},
    "disgust": {"nose_wrinkle": 1.0, "upper_lip_up": 1.0, "brow_down": 0.55,
                "lid_tighten": 0.45, "cheek_raise": 0.3, "corner_down": 0.45},
    "anger": {"brow_down": 1.0, "brow_knit": 1.0, "lid_tighten": 1.0, "lip_press": 1.0},
    "contempt": {"corner_raise": 1.0, "lid_tighten": 0.15},
}


@dataclass
class Identity:
    """The per-person geometry: feature positions and sizes in canonical units."""

    jaw_top: float      # y of jaw points 0 and 16 (ear level)
    chin: float         # y of the chin (point 8)
    jaw_square: float   # superellipse exponent of the jaw (2 = round, 3 = square)
    chin_taper: float   # narrowing of the lower face (0 = none)
    forehead: float     # height of the skull above the jaw top
    eye_y: float
    eye_dx: float       # half the distance between eye centres
    eye_w: float
    eye_h: float        # lid-to-lid opening at rest
    eye_tilt: float     # outer corner offset in y (negative: upturned)
    brow_gap: float     # inner brow end above the eye centre
    brow_in: float      # x of the inner brow end
    brow_len: float
    brow_arch: float
    brow_thick: float
    nose_y: float       # subnasale (point 33)
    nose_hw: float
    mouth_y: float
    mouth_hw: float
    lip_up: float       # upper lip thickness
    lip_lo: float       # lower lip thickness
    jitter: np.ndarray  # (68, 2) small asymmetries


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw one person's geometry; ranges keep every feature plausibly placed."""
    u = rng.uniform
    jaw_top = u(-0.05, 0.02)
    chin = u(0.54, 0.64)
    nose_y = u(0.15, 0.2)
    return Identity(
        jaw_top=jaw_top, chin=chin, jaw_square=u(2.0, 3.2), chin_taper=u(0.0, 0.18),
        forehead=u(0.56, 0.68), eye_y=u(-0.06, -0.02), eye_dx=u(0.175, 0.215),
        eye_w=u(0.155, 0.185), eye_h=u(0.07, 0.09), eye_tilt=u(-0.012, 0.01),
        brow_gap=u(0.115, 0.145), brow_in=u(0.04, 0.07), brow_len=u(0.17, 0.22),
        brow_arch=u(0.012, 0.045), brow_thick=u(0.028, 0.05), nose_y=nose_y,
        nose_hw=u(0.055, 0.08), mouth_y=nose_y + (chin - nose_y) * u(0.36, 0.44),
        mouth_hw=u(0.12, 0.15), lip_up=u(0.024, 0.036), lip_lo=u(0.03, 0.045),
        jitter=_jitter(rng),
    )


def _jitter(rng: np.random.Generator) -> np.ndarray:
    j = rng.normal(0.0, 0.003, size=(N_POINTS, 2))
    # Closed lips touch: facing inner-lip points share their offset.
    for up, lo in LIP_CONTACT:
        j[lo] = j[up]
    return j


def neutral_shape(idn: Identity) -> np.ndarray:
    """The identity's expressionless 68 points, ``(68, 2)`` canonical."""
    p = np.zeros((N_POINTS, 2))
    t = np.linspace(0.0, np.pi, 17)
    e = 2.0 / idn.jaw_square
    c, s = np.cos(t), np.sin(t)
    p[JAW, 0] = -HALF_W * np.sign(c) * np.abs(c) ** e * (1.0 - idn.chin_taper * s ** 2)
    p[JAW, 1] = idn.jaw_top + (idn.chin - idn.jaw_top) * np.abs(s) ** e

    # Right brow, outer (17) to inner (21), peaking 40% of the way in.
    u = np.linspace(0.0, 1.0, 5)
    brow_y = idn.eye_y - idn.brow_gap
    p[BROW_R, 0] = -(idn.brow_in + idn.brow_len * (1.0 - u))
    p[BROW_R, 1] = brow_y - idn.brow_arch * (1.0 - ((u - 0.4) / 0.6) ** 2)

    tip = idn.nose_y - 0.035
    p[NOSE_BRIDGE, 1] = np.linspace(idn.eye_y - 0.01, tip, 4)
    p[31] = (-idn.nose_hw, idn.nose_y - 0.022)
    p[32] = (-0.5 * idn.nose_hw, idn.nose_y - 0.004)
    p[33] = (0.0, idn.nose_y)

    cx, cy, w, h = -idn.eye_dx, idn.eye_y, idn.eye_w, idn.eye_h
    p[36] = (cx - w / 2, cy + idn.eye_tilt)
    p[37] = (cx - w / 6, cy - 0.55 * h)
    p[38] = (cx + w / 6, cy - 0.55 * h)
    p[39] = (cx + w / 2, cy)
    p[40] = (cx + w / 6, cy + 0.45 * h)
    p[41] = (cx - w / 6, cy + 0.45 * h)

    my, hw, ul, ll = idn.mouth_y, idn.mouth_hw, idn.lip_up, idn.lip_lo
    p[48] = (-hw, my)
    p[49] = (-0.62 * hw, my - 0.85 * ul)
    p[50] = (-0.25 * hw, my - ul)
    p[51] = (0.0, my - 0.8 * ul)
    p[57] = (0.0, my + ll)
    p[58] = (-0.28 * hw, my + 0.97 * ll)
    p[59] = (-0.63 * hw, my + 0.75 * ll)
    p[60] = (-0.9 * hw, my)
    p[61] = (-0.38 * hw, my)
    p[62] = (0.0, my)
    p[67] = (-0.38 * hw, my)
    p[66] = (0.0, my)

    p[MIRROR[LEFT], 0] = -p[LEFT, 0]
    p[MIRROR[LEFT], 1] = p[LEFT, 1]
    return p + idn.jitter


def _left_moves(idn: Identity) -> dict[str, dict[int, tuple[float, float]]]:
    """Per action unit, the displacement of image-left and midline points.

    ``(out, dy)``: ``out`` is away from the face's midline (mirrored for the right
    half), ``dy`` is down. Magnitudes are cartoon-sized so that a unit-intensity
    movement spans a couple of pixels at 48-64 px.
    """
    eh, ul, ll = idn.eye_h, idn.lip_up, idn.lip_lo
    return {
        "brow_inner_up": {21: (0, -0.085), 20: (0, -0.062), 19: (0, -0.038), 18: (0, -0.018),
                          17: (0, -0.006)},
        "brow_outer_up": {17: (0, -0.08), 18: (0, -0.08), 19: (0, -0.068), 20: (0, -0.048),
                          21: (0, -0.025)},
        "brow_down": {17: (0, 0.02), 18: (0, 0.032), 19: (0, 0.045), 20: (0, 0.058),
                      21: (0, 0.07)},
        "brow_knit": {21: (-0.04, 0.008), 20: (-0.032, 0.004), 19: (-0.022, 0),
                      18: (-0.012, 0), 17: (-0.006, 0)},
        "lid_up": {37: (0, -0.5 * eh), 38: (0, -0.5 * eh), 36: (0, -0.004), 39: (0, -0.003),
                   40: (0, 0.12 * eh), 41: (0, 0.12 * eh)},
        "cheek_raise": {40: (0, -0.42 * eh), 41: (0, -0.45 * eh), 36: (0, -0.012),
                        37: (0, 0.06 * eh), 38: (0, 0.06 * eh), 2: (0.008, 0), 3: (0.01, 0),
                        4: (0.008, 0)},
        "lid_tighten": {37: (0, 0.33 * eh), 38: (0, 0.33 * eh), 40: (0, -0.25 * eh),
                        41: (0, -0.25 * eh)},
        "nose_wrinkle": {31: (0.012, -0.032), 32: (0.006, -0.03), 33: (0, -0.026),
                         29: (0, -0.012), 30: (0, -0.022), 21: (0, 0.022), 20: (0, 0.014),
                         50: (0, -0.012), 51: (0, -0.012)},
        "upper_lip_up": {49: (0, -0.034), 50: (0, -0.048), 51: (0, -0.044), 48: (0, -0.008),
                         60: (0, -0.012), 61: (0, -0.04), 62: (0, -0.044), 31: (0, -0.008),
                         32: (0, -0.008)},
        "corner_pull": {48: (0.05, -0.08), 60: (0.045, -0.07), 49: (0.028, -0.04),
                        59: (0.028, -0.034), 61: (0.016, -0.032), 67: (0.016, -0.022),
                        50: (0.01, -0.012), 58: (0.01, 0.0), 57: (0, 0.008), 66: (0, 0.008)},
        "corner_down": {48: (0.005, 0.06), 60: (0.005, 0.055), 49: (0, 0.022), 59: (0, 0.03),
                        61: (0, 0.022), 67: (0, 0.022), 57: (0, -0.012), 58: (0, -0.006),
                        51: (0, -0.006), 8: (0, -0.008)},
        "lip_stretch": {48: (0.055, 0.012), 60: (0.05, 0.012), 49: (0.03, 0.008),
                        59: (0.03, 0.005), 61: (0.022, 0.002), 67: (0.022, 0.002),
                        50: (0.01, 0.35 * ul), 51: (0, 0.3 * ul), 57: (0, -0.3 * ll),
                        58: (0.01, -0.3 * ll)},
        "lip_press": {49: (0, 0.45 * ul), 50: (0, 0.55 * ul), 51: (0, 0.5 * ul),
                      57: (0, -0.55 * ll), 58: (0, -0.55 * ll), 59: (0, -0.4 * ll),
                      48: (-0.014, 0), 60: (-0.012, 0), 8: (0, -0.006)},
        "lips_part": {66: (0, 0.032), 67: (0, 0.028), 57: (0, 0.032), 58: (0, 0.03),
                      59: (0, 0.016), 61: (0, -0.006), 62: (0, -0.006)},
        "jaw_drop": {66: (0, 0.13), 67: (0, 0.11), 57: (0, 0.13), 58: (0, 0.12), 59: (0, 0.075),
                     61: (0, -0.016), 62: (0, -0.018), 50: (0, -0.01), 51: (0, -0.01),
                     48: (-0.022, 0.05), 60: (-0.022, 0.05), 49: (-0.01, 0.005),
                     8: (0, 0.12), 7: (0, 0.11), 6: (0, 0.085), 5: (0, 0.055), 4: (0, 0.025),
                     3: (0, 0.008)},
        "lid_droop": {37: (0, 0.2 * eh), 38: (0, 0.24 * eh), 36: (0, 0.006)},
        "corner_raise_l": {48: (0.045, -0.085), 60: (0.04, -0.075), 49: (0.018, -0.032),
                           59: (0.018, -0.026), 61: (0.013, -0.024), 67: (0.013, -0.018)},
    }


def au_basis(idn: Identity) -> np.ndarray:
    """Displacement per unit of each action unit, ``(len(AU_NAMES), 68, 2)``."""
    moves = _left_moves(idn)
    basis = np.zeros((len(AU_NAMES), N_POINTS, 2))
    is_mid = np.zeros(N_POINTS, bool)
    is_mid[MIDLINE] = True
    for name, k in AU_INDEX.items():
        one_sided = name.endswith(("_l", "_r"))
        spec = moves[name[:-2] + "_l"] if one_sided else moves[name]
        for i, (out, dy) in spec.items():
            if is_mid[i]:
                basis[k, i] = (0.0, dy)
                continue
            if not one_sided or name.endswith("_l"):
                basis[k, i] = (-out, dy)
            if not one_sided or name.endswith("_r"):
                basis[k, MIRROR[i]] = (out, dy)
    return basis


def expression_aus(
    distribution: Sequence[float] | np.ndarray, class_names: Sequence[str], contempt_side: int = 0
) -> np.ndarray:
    """The action-unit vector of an expression distribution (the p-weighted blend).

    ``contempt_side`` picks the raised mouth corner of contempt: 0 image-left, 1 right.
    """
    aus = np.zeros(len(AU_NAMES))
    for w, name in zip(distribution, class_names):
        for au, v in EXPRESSION_AUS[name].items():
            if au == "corner_raise":
                au = "corner_raise_r" if contempt_side else "corner_raise_l"
            aus[AU_INDEX[au]] += w * v
    return aus


def deform(idn: Identity, aus: np.ndarray, basis: np.ndarray | None = None) -> np.ndarray:
    """The identity's 68 points under action-unit intensities ``aus``, canonical."""
    if basis is None:
        basis = au_basis(idn)
    p = neutral_shape(idn) + np.tensordot(aus, basis, axes=1)
    # Lips are solid: where movements would push the lower inner lip above the
    # upper one (e.g. pressed lips blended with a raised chin), they meet.
    for up, lo in LIP_CONTACT:
        if p[lo, 1] < p[up, 1]:
            p[up, 1] = p[lo, 1] = 0.5 * (p[up, 1] + p[lo, 1])
    return p


def depth(points: np.ndarray, bulge: float = 0.9) -> np.ndarray:
    """Depth (towards the viewer) of points on a head of half-width 0.5.

    The head is a sphere squashed by ``bulge``; depth is only used to shift points
    under yaw, so a rough surface is enough.
    """
    return bulge * np.sqrt(np.clip(HALF_W ** 2 - points[:, 0] ** 2, 0.0, None))


# Extra protrusion of the nose over the face surface: it is what makes yaw visible.
_NOSE_EXTRA = {27: 0.02, 28: 0.06, 29: 0.1, 30: 0.15, 31: 0.04, 32: 0.07, 33: 0.08,
               34: 0.07, 35: 0.04}


def landmark_depth(shape: np.ndarray) -> np.ndarray:
    """Depth of the 68 landmarks: the jaw is set back, the nose sticks out."""
    z = depth(shape, 0.9)
    z[JAW] = depth(shape[JAW], 0.55)
    for i, extra in _NOSE_EXTRA.items():
        z[i] += extra
    return z


@dataclass(frozen=True)
class Pose:
    """Canonical frame to image pixels (pixel centres at integers).

    ``yaw`` turns features about the vertical axis using point depth, ``roll``
    rotates in the image plane (radians), ``scale`` is pixels per face width and
    ``cx, cy`` is where the canonical origin lands.
    """

    yaw: float
    roll: float
    scale: float
    cx: float
    cy: float

    def shifted(self, dx: float, dy: float) -> "Pose":
        return Pose(self.yaw, self.roll, self.scale, self.cx + dx, self.cy + dy)

    def scaled(self, f: float, about: tuple[float, float]) -> "Pose":
        ax, ay = about
        return Pose(self.yaw, self.roll, self.scale * f, ax + (self.cx - ax) * f,
                    ay + (self.cy - ay) * f)


def project(points: np.ndarray, z: np.ndarray | float, pose: Pose) -> np.ndarray:
    """Map canonical points (with depths ``z``) to pixel coordinates, ``(N, 2)``."""
    x = points[:, 0] * np.cos(pose.yaw) + np.asarray(z) * np.sin(pose.yaw)
    y = points[:, 1]
    c, s = np.cos(pose.roll), np.sin(pose.roll)
    out = np.empty((len(points), 2))
    out[:, 0] = pose.cx + pose.scale * (c * x - s * y)
    out[:, 1] = pose.cy + pose.scale * (s * x + c * y)
    return out


def fit_pose(pose: Pose, shape: np.ndarray, z: np.ndarray, size: int,
             margin: float = 1.0) -> Pose:
    """Shrink and shift ``pose`` just enough that all landmarks lie inside the image.

    Random scale, shift and a dropped jaw can push the chin out of frame; the
    landmark file promises in-image points, so the pose gives way instead.
    """
    pts = project(shape, z, pose)
    lo, hi = pts.min(0), pts.max(0)
    room = size - 1 - 2 * margin
    extent = float((hi - lo).max())
    if extent > room:
        pose = pose.scaled(room / extent, about=tuple((lo + hi) / 2))
        pts = project(shape, z, pose)
        lo, hi = pts.min(0), pts.max(0)
    shift = np.clip(margin - lo, 0.0, None) - np.clip(hi - (size - 1 - margin), 0.0, None)
    return pose.shifted(float(shift[0]), float(shift[1]))

