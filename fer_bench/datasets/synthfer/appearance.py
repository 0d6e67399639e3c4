"""The look of a synthfer face image apart from its geometry and expression: skin, hair, eyes, lips,
clothes, background, glasses, occluders, lighting, colour cast, noise and blur.

:func:`sample_appearance` draws each of these nuisances independently of the
others from a generator; :mod:`.render` draws them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

Colour = np.ndarray  # float (3,), 0..255

_SKIN_RAMP = np.array([[252, 224, 204], [232, 188, 152], [196, 142, 104], [141, 94, 62],
                       [92, 60, 42]], float)
_HAIR = np.array([[22, 18, 18], [55, 38, 28], [100, 68, 42], [196, 160, 100], [150, 72, 38],
                  [150, 148, 146], [214, 212, 205]], float)
_HAIR_P = np.array([0.25, 0.25, 0.17, 0.12, 0.07, 0.08, 0.06])
_IRIS = np.array([[88, 56, 32], [42, 30, 24], [68, 108, 160], [76, 118, 76], [122, 98, 52]],
                 float)
HAIR_STYLES = ("short", "long", "bob", "bald")
OCCLUDERS = ("patch", "hand", "sunglasses", "mask", "bar")


@dataclass
class Occluder:
    """Something in front of the face: its kind, colour and placement.

    ``anchor`` is a landmark index the occluder centres on, ``offset`` a shift in
    face units, ``size`` in face widths, ``angle`` in radians.
    """

    kind: str
    colour: Colour
    anchor: int
    offset: np.ndarray
    size: float
    aspect: float
    angle: float


@dataclass
class Appearance:
    """Everything about a face image except its geometry and expression."""

    skin: Colour
    blush: float
    hair: Colour
    hair_style: str
    hair_volume: float
    hair_length: float
    hairline: float        # gap between brow tops and the hairline, face units
    brow_colour: Colour
    iris: Colour
    lips: Colour
    gaze: float            # horizontal iris offset, -1..1
    clothes: Colour
    bg: Colour
    bg2: Colour
    bg_cells: int          # background blotch grid size (texture scale)
    glasses: Optional[Colour]
    occluder: Optional[Occluder]
    light_angle: float
    light_strength: float
    brightness: float
    contrast: float
    cast: np.ndarray       # per-channel gain (colour temperature)
    noise_std: float
    blur: float            # Gaussian blur radius at output size, 0 for none
    gray: bool


def mix(a: Colour, b: Colour, t: float) -> Colour:
    """The colour a fraction ``t`` of the way from ``a`` to ``b``."""
    return a + (b - a) * t


def sample_appearance(
    rng: np.random.Generator,
    occlusion_prob: float = 0.15,
    glasses_prob: float = 0.1,
    gray_prob: float = 0.05,
    blur_prob: float = 0.15,
    light_strength: float = 0.45,
    noise_max: float = 6.0,
) -> Appearance:
    """Draw an appearance; each nuisance is independent of the others."""
    u = rng.uniform
    t = u(0, len(_SKIN_RAMP) - 1)
    k = min(int(t), len(_SKIN_RAMP) - 2)
    skin = mix(_SKIN_RAMP[k], _SKIN_RAMP[k + 1], t - k) + rng.normal(0, 5, 3)
    hair = _HAIR[rng.choice(len(_HAIR), p=_HAIR_P)] * u(0.85, 1.15)
    style = HAIR_STYLES[rng.choice(4, p=[0.45, 0.25, 0.18, 0.12])]
    brow = mix(hair, np.array([30.0, 24, 20]), u(0.3, 0.8))
    lips = skin * np.array([0.86, 0.58, 0.6]) + np.array([34.0, 4, 8]) + rng.normal(0, 6, 3)
    bg, bg2 = rng.uniform(25, 235, 3), rng.uniform(25, 235, 3)
    glasses = None
    if rng.random() < glasses_prob:
        glasses = rng.uniform(10, 90, 3) if rng.random() < 0.7 else rng.uniform(120, 200, 3)
    occluder = None
    if rng.random() < occlusion_prob:
        kind = OCCLUDERS[rng.choice(len(OCCLUDERS), p=[0.3, 0.25, 0.15, 0.15, 0.15])]
        if kind == "hand":
            tt = u(0, len(_SKIN_RAMP) - 1)
            kk = min(int(tt), len(_SKIN_RAMP) - 2)
            colour = mix(_SKIN_RAMP[kk], _SKIN_RAMP[kk + 1], tt - kk)
            anchor = int(rng.choice([57, 8, 3, 13, 48, 54, 33]))
        elif kind == "sunglasses":
            colour, anchor = rng.uniform(5, 60, 3), 27
        elif kind == "mask":
            colour = rng.choice([np.array([235.0, 238, 240]), np.array([150.0, 190, 215]),
                                 np.array([30.0, 30, 35])]) + rng.normal(0, 8, 3)
            anchor = 33
        else:
            colour = rng.uniform(0, 255, 3)
            anchor = int(rng.choice([37, 44, 30, 51, 57, 48, 54, 2, 14, 19, 24]))
        occluder = Occluder(
            kind=kind, colour=colour, anchor=anchor, offset=rng.normal(0, 0.05, 2),
            size=u(0.22, 0.42), aspect=u(0.5, 1.6), angle=u(-0.6, 0.6),
        )
    return Appearance(
        skin=skin, blush=u(0.0, 0.12), hair=hair, hair_style=style, hair_volume=u(0.02, 0.12),
        hair_length=u(0.1, 0.55), hairline=u(0.1, 0.3), brow_colour=brow,
        iris=_IRIS[rng.integers(len(_IRIS))] * u(0.85, 1.15), lips=lips, gaze=u(-1, 1),
        clothes=rng.uniform(20, 235, 3), bg=bg, bg2=bg2, bg_cells=int(rng.integers(2, 8)),
        glasses=glasses, occluder=occluder, light_angle=u(0, 2 * np.pi),
        light_strength=u(0.0, light_strength), brightness=u(0.78, 1.12), contrast=u(0.8, 1.15),
        cast=1.0 + rng.normal(0, 0.04, 3), noise_std=u(0.0, noise_max),
        blur=u(0.4, 0.9) if rng.random() < blur_prob else 0.0, gray=bool(rng.random() < gray_prob),
    )
