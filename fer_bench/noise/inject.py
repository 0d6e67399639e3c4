"""Sampling flips: turning clean labels, a noise model and a rate into a noisy copy.

Two ways to choose which samples flip:

* ``bernoulli`` (default; SCN/EAC/LA-Net): every sample flips independently with
  probability ``rate``, so the realised rate wanders around the nominal one;
* ``exact``: exactly ``round(rate * n)`` flips (Python's ``round``), spread over
  the true classes in proportion to their counts by largest-remainder rounding,
  chosen without replacement within each class.

A flipped sample of true class ``i`` gets a label drawn from row ``F[i]`` of the
model's flip-target matrix (rows = true class, zero diagonal), so it never keeps
its class. Everything is selected from the clean labels and written into a copy,
so flips never chain (ELR#16).

Randomness comes only from ``np.random.default_rng(seed)``: the noise seed is
independent of the training seed and of any global numpy/torch state. Each sample
gets two uniforms by position (one decides *whether* it flips, one *where to*),
and target classes are laid out by canonical name, so the same samples with the
classes numbered in another order get the same noisy labels by name.
"""

from __future__ import annotations

import numbers
from typing import Optional, Sequence

import numpy as np

from ..registry import NOISE_MODELS
from .annotator import annotator_labels, needs_votes
from .models import canonical_order, flip_targets
from .record import NoiseRecord, _check_labels, noise_record


def _check_rate(rate: float) -> float:
    try:
        r = float(rate)
    except (TypeError, ValueError):
        raise ValueError(f"noise rate {rate!r} is not a number") from None
    if not 0.0 <= r < 1.0:  # also rejects NaN
        raise ValueError(f"noise rate {r!r} is outside [0, 1)")
    return r


def _check_seed(seed: int) -> int:
    # None would make default_rng draw OS entropy: noise nobody can regenerate.
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"noise seed must be a non-negative integer; got {seed!r}")
    if seed < 0:
        raise ValueError(f"noise seed must be non-negative; got {seed}")
    return int(seed)


def largest_remainder(counts: np.ndarray, total: int, tie_order: Optional[np.ndarray] = None) -> np.ndarray:
    """Split ``total`` over classes in proportion to ``counts``; the parts sum exactly to ``total``.

    Each class gets ``floor(total * n_i / n)``, and the leftover units go to the
    largest fractional parts; equal remainders go to the class that comes first
    in ``tie_order`` (class indices; default index order). Integer arithmetic,
    so no float rounding can lose or add a flip. Requires ``0 <= total <= sum(counts)``.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n = int(counts.sum())
    if not 0 <= total <= n:
        raise ValueError(f"cannot allocate {total} flips over {n} samples")
    if n == 0:
        return np.zeros_like(counts)
    num = total * counts
    quota = num // n
    remainder = num % n
    rank = np.empty(counts.size, dtype=np.int64)
    rank[np.arange(counts.size) if tie_order is None else np.asarray(tie_order)] = np.arange(counts.size)
    leftover = total - int(quota.sum())
    winners = sorted(range(counts.size), key=lambda i: (-int(remainder[i]), int(rank[i])))[:leftover]
    quota[winners] += 1
    return quota


def _draw_targets(true: np.ndarray, u: np.ndarray, f: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw of new labels from rows of ``f``, columns laid out in ``order``."""
    out = np.empty_like(true)
    for i in np.unique(true):
        sel = true == i
        p = f[i, order]
        cdf = np.cumsum(p)
        # side="right" skips zero-probability columns (including the true class);
        # the clip guards the top end against cdf[-1] rounding below u * cdf[-1].
        pos = np.searchsorted(cdf, u[sel] * cdf[-1], side="right")
        pos = np.minimum(pos, np.flatnonzero(p > 0)[-1])
        out[sel] = order[pos]
    return out


def inject_noise(
    clean: np.ndarray,
    class_names: Sequence[str],
    model: str,
    rate: float,
    seed: int,
    exact: bool = False,
    confusion: Optional[np.ndarray] = None,
    votes: Optional[np.ndarray] = None,
) -> tuple[np.ndarray, NoiseRecord]:
    """Return a noisy copy of ``clean`` (int64, 0-based) and its :class:`NoiseRecord`.

    ``model`` is a registered noise model name, ``rate`` in [0, 1), ``seed`` the
    noise seed (same arguments -> identical output). ``exact`` flips exactly
    ``round(rate * n)`` samples instead of deciding each one by a Bernoulli draw.
    ``confusion`` is a C x C matrix in the dataset's class order (rows = true
    class) for the models that use one. ``votes`` (N x C, the dataset's per-image
    annotator votes) is what the ``annotator`` model draws from (:mod:`.annotator`);
    given for any model, the record also holds the realised flip rate by vote
    agreement. Rate 0 or a model returning the all-zero matrix (``none``) flips
    nothing. ``clean`` is never modified.
    """
    names = list(class_names)
    labels = _check_labels(clean, len(names), "clean").copy()
    r = _check_rate(rate)
    s = _check_seed(seed)
    from_votes = needs_votes(NOISE_MODELS.get(model))
    if from_votes and votes is None:
        raise ValueError(f"noise model {model!r} needs per-image annotator votes, and this dataset has none")
    # resolved even at rate 0, so misconfigurations surface
    f = None if from_votes else flip_targets(model, names, confusion)
    order = canonical_order(names)

    rng = np.random.default_rng(s)
    n = labels.size
    # Both streams are drawn in full whatever the mode, so a sample's fate
    # depends only on (seed, its position), not on what other samples did.
    u_flip = rng.random(n)
    u_target = rng.random(n)

    noisy = labels.copy()
    if f is None:
        noisy = annotator_labels(labels, np.asarray(votes), order, r, exact, u_flip, u_target)
    elif r > 0 and f.any() and n > 0:
        if exact:
            counts = np.bincount(labels, minlength=len(names))
            quota = largest_remainder(counts, int(round(r * n)), tie_order=order)
            flip = np.zeros(n, dtype=bool)
            for i in np.flatnonzero(quota):
                members = np.flatnonzero(labels == i)
                chosen = members[np.argsort(u_flip[members], kind="stable")[: quota[i]]]
                flip[chosen] = True
        else:
            flip = u_flip < r
        noisy[flip] = _draw_targets(labels[flip], u_target[flip], f, order)

    record = noise_record(
        labels, noisy, names,
        model=model.lower(), rate=r, mode="exact" if exact else "bernoulli",
        noise_seed=s, flip_targets=f, source="generated", votes=votes,
    )
    return noisy, record
