"""synthfer's ground truth: class order, class prior, expression distributions, votes.

Each face has a true expression distribution ``p``: most are clearly one class
(``p`` concentrated on it, with a little annotator-style spread), a share are
blends of two perceptually close classes. Ten simulated annotators vote from
``p`` (multinomial) and the label is the majority vote, so labels carry the
same kind of ambiguity-driven disagreement as crowd-labelled FER datasets.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ...classes import RAFDB_ORDER

# RAF-DB basic train counts in RAFDB_ORDER; the prior is these to a power.
RAFDB_TRAIN_COUNTS: tuple[int, ...] = (1290, 281, 717, 4772, 1982, 705, 2524)
# RAF-DB has no contempt; this pseudo-count gives it a small share (about 5% at
# power 0.5), like contempt's rarity in AffectNet and FERPlus.
CONTEMPT_COUNT = 200

# How much more likely a blend partner is than chance: blends pair expressions
# people actually confuse (surprise/fear, disgust/anger, sadness/neutral, ...).
BLEND_AFFINITY: dict[frozenset[str], float] = {
    frozenset(("surprise", "fear")): 4.0,
    frozenset(("disgust", "anger")): 4.0,
    frozenset(("fear", "sadness")): 2.5,
    frozenset(("sadness", "neutral")): 2.5,
    frozenset(("anger", "neutral")): 1.5,
    frozenset(("happiness", "surprise")): 2.0,
    frozenset(("sadness", "disgust")): 1.5,
    frozenset(("contempt", "happiness")): 2.0,
    frozenset(("contempt", "disgust")): 2.0,
    frozenset(("contempt", "neutral")): 2.0,
}


def class_names(num_classes: int) -> tuple[str, ...]:
    """RAF-DB's seven classes in its order, plus contempt as index 7 for 8 classes."""
    if num_classes == 7:
        return RAFDB_ORDER
    if num_classes == 8:
        return RAFDB_ORDER + ("contempt",)
    raise ValueError(f"synthfer has 7 or 8 classes, not {num_classes}")


def class_prior(num_classes: int, power: float = 0.5) -> np.ndarray:
    """Probability of each class being a face's main expression.

    ``power`` tempers RAF-DB's imbalance: 1 copies it, 0 is uniform.
    """
    extra = (CONTEMPT_COUNT,) if len(class_names(num_classes)) == 8 else ()
    w = np.array(RAFDB_TRAIN_COUNTS + extra, dtype=float) ** power
    return w / w.sum()


def blend_partner_weights(main: int, names: Sequence[str], prior: np.ndarray) -> np.ndarray:
    """Probabilities of the second class of a blend whose main class is ``main``."""
    w = np.array([
        0.0 if j == main else prior[j] * BLEND_AFFINITY.get(frozenset((names[main], n)), 1.0)
        for j, n in enumerate(names)
    ])
    return w / w.sum()


def sample_distribution(
    rng: np.random.Generator,
    names: Sequence[str],
    prior: np.ndarray,
    blend_share: float,
    blend_weight: tuple[float, float],
    spread: tuple[float, float],
) -> np.ndarray:
    """Draw one true expression distribution.

    A face is a blend with probability ``blend_share``: its main class keeps a
    weight drawn from ``blend_weight`` and the rest goes to a partner. Every face
    then spreads a share drawn from ``spread`` over all classes (Dirichlet), the
    disagreement that even clear faces get from annotators.
    """
    c = len(names)
    main = int(rng.choice(c, p=prior))
    p = np.zeros(c)
    if rng.random() < blend_share:
        second = int(rng.choice(c, p=blend_partner_weights(main, names, prior)))
        w = rng.uniform(*blend_weight)
        p[main], p[second] = w, 1.0 - w
    else:
        p[main] = 1.0
    eps = rng.uniform(*spread)
    return (1.0 - eps) * p + eps * rng.dirichlet(np.ones(c))


def draw_votes(rng: np.random.Generator, p: np.ndarray, n_votes: int = 10) -> np.ndarray:
    """Vote counts of ``n_votes`` independent annotators who answer from ``p``."""
    return rng.multinomial(n_votes, p / p.sum()).astype(np.int64)


def majority_label(votes: np.ndarray, p: np.ndarray) -> int:
    """The most-voted class; a tie goes to the class with the larger true probability
    (then the lower index), so it is deterministic and favours the truth."""
    top = np.flatnonzero(votes == votes.max())
    return int(top[np.argmax(p[top])])


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (natural log, in [0, ln 2]) between rows of p and q."""
    p = np.atleast_2d(np.asarray(p, float))
    q = np.atleast_2d(np.asarray(q, float))
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(a > 0, a * np.log(a / m), 0.0)
        return t.sum(axis=1)

    return 0.5 * kl(p) + 0.5 * kl(q)
