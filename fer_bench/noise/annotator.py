"""Annotator noise: each chosen training image takes one human annotator's label.

Symmetric and class-to-class noise flip labels whatever the image looks like;
real annotators disagree on ambiguous faces and agree on clear ones. The
``annotator`` model draws its noise from the per-image vote distributions
(FERPlus's ten crowd votes, synthfer's ten simulated votes), so an image whose
votes are split flips often and a unanimous one never does.

How a rate ``r`` is reached. Let ``p_i`` be image i's vote shares, ``y_i`` its
clean label and ``q_i = 1 - p_i[y_i]`` the chance that one annotator picked at
random disagrees with it. One annotator per image would flip image i with
probability ``q_i`` and realise ``mean(q)`` (about 0.12 on synthfer), too little
for the usual 10-40 % benchmarks; so the model scales it:

* image i flips with probability ``pi_i = min(1, lam * q_i)``, ``lam`` found by
  bisection so that ``mean(pi) = r`` (``lam`` is "how many annotators' worth of
  disagreement"; at ``lam <= 1/max(q)`` it is exactly one annotator with
  probability ``lam``);
* a flipped image takes the label of one of the annotators who disagreed, drawn
  from ``p_i`` without its clean class, so ``P(noisy = j | image i) = lam * p_i[j]``
  for ``j != y_i`` (below the cap);
* ``bernoulli``: image i flips when its selection uniform is below ``pi_i``;
  ``exact``: the ``round(r * n)`` images with the largest keys ``log(u_i) / pi_i``
  flip (weighted sampling without replacement, Efraimidis-Spirakis), so exactly
  that many labels change and images are chosen in proportion to ``pi_i``.

Uniforms come per position from the noise seed and classes are laid out by
canonical name, so the draw depends neither on the class order nor on other
images. Unanimous images never flip, so a rate above the fraction of images with
any disagreement cannot be reached and is an error, as is a dataset without votes.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..datasets.votes import vote_shares
from ..registry import register_noise_model


@register_noise_model(
    "annotator",
    description="each chosen image takes one annotator's label drawn from its votes: ambiguous faces flip more",
)
def annotator_model(class_names: Sequence[str], confusion: Optional[np.ndarray] = None) -> np.ndarray:
    """Has no flip-target matrix: the noise depends on each image's votes (see :func:`annotator_labels`)."""
    raise ValueError("noise model 'annotator' needs the dataset's per-image votes; it has no class-level matrix")


annotator_model.needs_votes = True  # type: ignore[attr-defined]


def needs_votes(fn: object) -> bool:
    """Whether a registered noise model draws from per-image votes instead of a flip-target matrix."""
    return bool(getattr(fn, "needs_votes", False))


def _scale(q: np.ndarray, rate: float) -> float:
    """The ``lam`` with ``mean(min(1, lam * q)) = rate`` (bisection; the mean grows with ``lam``)."""
    lo, hi = 0.0, 1.0 / max(float(q[q > 0].min()), 1e-12)
    for _ in range(200):
        mid = (lo + hi) / 2
        if np.minimum(1.0, mid * q).mean() < rate:
            lo = mid
        else:
            hi = mid
    return hi


def annotator_labels(
    clean: np.ndarray, votes: np.ndarray, order: np.ndarray, rate: float, exact: bool,
    u_flip: np.ndarray, u_target: np.ndarray,
) -> np.ndarray:
    """Noisy copy of ``clean`` (int64) drawn from the annotators' votes; see the module docstring.

    ``order`` lays the classes out by canonical name; ``u_flip`` and ``u_target`` are the
    per-position uniforms of the noise seed.
    """
    n = clean.size
    if votes.ndim != 2 or votes.shape[0] != n:
        raise ValueError(f"votes have shape {votes.shape}; expected ({n}, C) for {n} labels")
    noisy = clean.copy()
    if rate <= 0 or n == 0:
        return noisy
    rows = np.arange(n)
    shares = vote_shares(votes)
    q = np.where(shares.sum(axis=1) > 0, 1.0 - shares[rows, clean], 0.0)  # no votes: nobody disagrees
    reach = float(np.mean(q > 0))
    if rate > reach:
        raise ValueError(
            f"annotator noise: rate {rate} is above {reach:.4f}, the fraction of training images on "
            "whose label any annotator disagrees (unanimous images never flip)")
    pi = np.minimum(1.0, _scale(q, rate) * q)
    if exact:
        k = int(round(rate * n))
        with np.errstate(divide="ignore"):
            key = np.where(pi > 0, np.log(np.maximum(u_flip, 1e-300)) / np.where(pi > 0, pi, 1.0), -np.inf)
        flip = np.zeros(n, dtype=bool)
        flip[np.argsort(-key, kind="stable")[:k]] = True
    else:
        flip = u_flip < pi
    # A flipped image takes a disagreeing annotator's label: its vote shares without the clean class.
    others = shares[flip][:, order]
    others[order[None, :] == clean[flip][:, None]] = 0.0
    cdf = np.cumsum(others, axis=1)
    pos = (u_target[flip][:, None] * cdf[:, -1:] >= cdf).sum(axis=1)
    # Guard the top end against cdf rounding: never past the last class with votes.
    last = (others > 0).shape[1] - 1 - np.argmax((others > 0)[:, ::-1], axis=1)
    noisy[flip] = order[np.minimum(pos, last)]
    return noisy
