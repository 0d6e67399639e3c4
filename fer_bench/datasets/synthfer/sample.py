"""One synthfer sample: the generator's knobs and the recipe that turns a random stream
into a face image with its landmarks, true distribution, votes and label.

The order of draws from the stream is fixed, so a sample depends only on the
stream, the image size, the class count and the configuration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, NamedTuple, Optional, Sequence

import numpy as np

from .appearance import Appearance, sample_appearance
from .face import (Identity, Pose, deform, expression_aus, fit_pose, landmark_depth, project,
                   sample_identity)
from .labels import class_names, class_prior, draw_votes, majority_label, sample_distribution
from .render import render


@dataclass(frozen=True)
class SynthConfig:
    """Knobs of the generator, with the defaults the built-in dataset uses.

    Ground truth:
        prior_power: main-class prior is RAF-DB's train counts to this power
            (1 = RAF-DB's imbalance, 0 = uniform).
        blend_share: share of faces that blend two expressions.
        blend_weight: range of the main class's weight in a blend.
        spread: range of the probability mass every face spreads over all
            classes (annotator disagreement on clear faces).
        intensity: range of the expression intensity (deformation scale);
            weak expressions are harder to read.
        n_votes: simulated annotators per image.
    Nuisances:
        occlusion_prob: share of faces with an occluder (patch, hand,
            sunglasses, face mask or bar).
        glasses_prob, gray_prob, blur_prob: shares with clear glasses, a grey
            image, a slight blur.
        yaw_max_deg, roll_std_deg: head turn range and in-plane tilt spread.
        face_width: face width as a fraction of the image width.
        shift: maximum translation, as a fraction of the image size.
        light_strength: maximum brightness gradient across the image.
        noise_max: maximum std of the pixel noise (0-255 scale).
        supersample: drawing canvas factor; 0 picks one from the image size.
    """

    prior_power: float = 0.5
    blend_share: float = 0.2
    blend_weight: tuple[float, float] = (0.5, 0.75)
    spread: tuple[float, float] = (0.0, 0.12)
    intensity: tuple[float, float] = (0.6, 1.0)
    n_votes: int = 10
    occlusion_prob: float = 0.12
    glasses_prob: float = 0.1
    gray_prob: float = 0.05
    blur_prob: float = 0.15
    yaw_max_deg: float = 18.0
    roll_std_deg: float = 6.0
    face_width: tuple[float, float] = (0.62, 0.78)
    shift: float = 0.05
    light_strength: float = 0.45
    noise_max: float = 6.0
    supersample: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SynthConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown synthfer option(s): {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


class Sample(NamedTuple):
    """One rendered face and its ground truth."""

    image: np.ndarray         # uint8 (size, size, 3) RGB
    landmarks: np.ndarray     # float32 (68, 2), (x, y) pixels, iBUG order
    distribution: np.ndarray  # float64 (C,), the true expression distribution
    votes: np.ndarray         # int64 (C,), simulated annotator votes
    label: int                # majority vote, 0-based
    intensity: float


def supersample_for(size: int) -> int:
    """Canvas factor giving about 190 px canvases: enough anti-aliasing, still fast."""
    return int(min(4, max(2, round(192 / size))))


def sample_pose(rng: np.random.Generator, size: int, cfg: SynthConfig) -> Pose:
    roll_std = np.radians(cfg.roll_std_deg)
    return Pose(
        yaw=float(np.radians(rng.uniform(-cfg.yaw_max_deg, cfg.yaw_max_deg))),
        roll=float(np.clip(rng.normal(0.0, roll_std), -2.5 * roll_std, 2.5 * roll_std)),
        scale=float(rng.uniform(*cfg.face_width) * size),
        # The canonical origin is near the eye line; RAF-DB's aligned crops put the
        # eyes at about 40% of the height.
        cx=float(size / 2 + rng.uniform(-cfg.shift, cfg.shift) * size),
        cy=float(size * 0.42 + rng.uniform(-cfg.shift, cfg.shift) * size),
    )


def render_face(
    rng: np.random.Generator,
    size: int = 64,
    num_classes: int = 7,
    config: Optional[SynthConfig] = None,
    distribution: Optional[Sequence[float] | np.ndarray] = None,
    intensity: Optional[float] = None,
) -> Sample:
    """Render one face from ``rng``.

    ``distribution`` and ``intensity`` fix the expression instead of drawing it
    (for tests and figures); the identity, pose and appearance are still drawn.
    """
    # Separate streams for the ground truth, the person and the picture: vote
    # draws consume a p-dependent amount of randomness, and this keeps the same
    # person, pose and picture for a seed whatever the expression.
    truth, person, look = streams(rng)
    return draw_face(truth, person, look, size, num_classes, config, distribution=distribution,
                     intensity=intensity)


def streams(rng: np.random.Generator) -> tuple[np.random.Generator, ...]:
    """The ground-truth, person and picture streams a sample's stream splits into."""
    return tuple(np.random.default_rng(s) for s in rng.integers(0, 2**63, size=3))


def person_identity(rng: np.random.Generator) -> Identity:
    """The identity :func:`render_face` draws from ``rng`` (without rendering anything)."""
    person = streams(rng)[1]
    person.integers(2)  # the contempt side, drawn first
    return sample_identity(person)


# The appearance fields that belong to a person rather than to a picture (synthfer-id
# keeps them per identity; the rest, such as light, background, glasses, occluders
# and gaze, vary per image).
PERSON_LOOK = ("skin", "blush", "hair", "hair_style", "hair_volume", "hair_length", "hairline",
               "brow_colour", "iris", "lips")


def draw_face(
    truth: np.random.Generator,
    person: np.random.Generator,
    look: np.random.Generator,
    size: int = 64,
    num_classes: int = 7,
    config: Optional[SynthConfig] = None,
    distribution: Optional[Sequence[float] | np.ndarray] = None,
    intensity: Optional[float] = None,
    identity: Optional[Identity] = None,
    person_look: Optional[Appearance] = None,
) -> Sample:
    """Render one face from its three streams (see :func:`render_face`).

    ``identity`` and ``person_look`` fix who is pictured (its geometry and the
    :data:`PERSON_LOOK` fields of its appearance) instead of drawing them; then
    ``person`` still draws the contempt side and the pose.
    """
    cfg = config or SynthConfig()
    names = class_names(num_classes)
    if distribution is None:
        p = sample_distribution(truth, names, class_prior(num_classes, cfg.prior_power),
                                cfg.blend_share, cfg.blend_weight, cfg.spread)
    else:
        p = np.asarray(distribution, float)
        if p.shape != (num_classes,) or (p < 0).any() or p.sum() <= 0:
            raise ValueError(f"distribution must be {num_classes} non-negative weights")
        p = p / p.sum()
    votes = draw_votes(truth, p, cfg.n_votes)
    label = majority_label(votes, p)
    s = float(truth.uniform(*cfg.intensity)) if intensity is None else float(intensity)
    aus = s * expression_aus(p, names, contempt_side=int(person.integers(2)))

    idn = sample_identity(person) if identity is None else identity
    shape = deform(idn, aus)
    z = landmark_depth(shape)
    pose = fit_pose(sample_pose(person, size, cfg), shape, z, size)
    app = sample_appearance(look, occlusion_prob=cfg.occlusion_prob, glasses_prob=cfg.glasses_prob,
                            gray_prob=cfg.gray_prob, blur_prob=cfg.blur_prob,
                            light_strength=cfg.light_strength, noise_max=cfg.noise_max)
    if person_look is not None:
        app = replace(app, **{k: getattr(person_look, k) for k in PERSON_LOOK})
    ss = cfg.supersample or supersample_for(size)
    image = render(shape, z, idn, aus, pose, app, size, look, supersample=ss)
    landmarks = project(shape, z, pose).astype(np.float32)
    return Sample(image, landmarks, p, votes, label, s)
