"""Built-in noise models: flip-target matrices written by class name.

A noise model answers one question: *given* that a sample of true class ``i`` is
flipped, which label does it get? Its answer is the **flip-target matrix** ``F``,
a C x C float64 array in the dataset's class order with

* rows indexed by the TRUE class and columns by the NEW (noisy) label, i.e. it is
  row-stochastic: ``F[i, j] = P(new label = j | true = i, flipped)``, and each
  row sums to 1. (cleanlab's noise matrices use the opposite, column-stochastic
  convention; do not feed one in without transposing.)
* a zero diagonal: a "flip" that lands back on the true class is not a flip.
  DivideMix's symmetric noise draws over all C classes and so realises only
  ``r (1 - 1/C)``; to reproduce that, scale the rate, do not put mass on the
  diagonal.

How *many* samples flip (the rate, Bernoulli or exact) is the injector's business
(:mod:`fer_bench.noise.inject`), not the model's.

A model is a function ``fn(class_names, confusion=None) -> np.ndarray`` registered
with :func:`fer_bench.registry.register_noise_model`; ``class_names`` are canonical
names in the dataset's index order and ``confusion`` is an optional C x C matrix
already in that order (rows = true class). Maps are written by *name* because
RAF-DB, FERPlus, AffectNet and LA-Net's code all order the same classes
differently. The all-zero matrix means "no flips" (the ``none`` model).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from ..classes import canonical_name
from ..registry import NOISE_MODELS, register_noise_model

NoiseModel = Callable[..., np.ndarray]
"""``fn(class_names: Sequence[str], confusion: np.ndarray | None = None) -> np.ndarray``."""


def required_rate(noise: str, rate: Optional[float]) -> float:
    """The rate to use with ``noise``: every model but ``none`` needs one, since without it a
    noisy run would quietly train on the clean labels."""
    if rate is None:
        if noise != "none":
            raise ValueError(f"--noise {noise} needs --rate (the noise rate in (0, 1))")
        return 0.0
    return rate

# LA-Net's asymmetric map (its dataloader, translated from its own class indices
# to names). Contempt is not in LA-Net (7 classes); neutral is its closest class.
ASYM_MAP: Mapping[str, str] = MappingProxyType({
    "anger": "disgust",
    "disgust": "anger",
    "fear": "surprise",
    "happiness": "neutral",
    "sadness": "neutral",
    "surprise": "anger",
    "neutral": "sadness",
    "contempt": "neutral",
})

# Tolerance on row sums of a plugin's matrix: loose enough for rows built from
# float divisions, tight enough to catch a matrix in the wrong convention.
_ROW_SUM_TOL = 1e-6


def _name_key(name: str) -> str:
    try:
        return canonical_name(name)
    except ValueError:  # a plugin dataset may have classes outside the canonical set
        return name.strip().lower()


def canonical_order(class_names: Sequence[str]) -> np.ndarray:
    """Class indices sorted by canonical class name.

    Anything that must not depend on a dataset's index order (tie-breaking,
    the order in which target classes are laid out for sampling) goes through
    this, so that the same classes in another order give the same noise by name.
    """
    keys = [_name_key(n) for n in class_names]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"class names repeat ({', '.join(dup)}): {', '.join(class_names)}")
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


def check_confusion(confusion: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """Return ``confusion`` as float64 after checking it is C x C, finite and non-negative, with
    rows that can be normalised."""
    m = np.asarray(confusion, dtype=np.float64)
    c = len(class_names)
    if m.shape != (c, c):
        raise ValueError(
            f"confusion matrix has shape {m.shape}; expected ({c}, {c}) for classes "
            f"{', '.join(class_names)}"
        )
    if not np.all(np.isfinite(m)):
        raise ValueError("confusion matrix has non-finite entries")
    if np.any(m < 0):
        raise ValueError("confusion matrix has negative entries")
    with np.errstate(over="ignore"):
        overflow = [class_names[i] for i in np.flatnonzero(~np.isfinite(m.sum(axis=1)))]
    if overflow:
        raise ValueError(f"confusion matrix rows of {', '.join(overflow)} sum to more than a float can hold, "
                         f"so they cannot be normalised; scale them down")
    return m


def _off_diagonal(m: np.ndarray) -> np.ndarray:
    off = m.copy()
    np.fill_diagonal(off, 0.0)
    return off


def asym_map(class_names: Sequence[str], confusion: Optional[np.ndarray] = None) -> dict[str, str]:
    """The ``asym`` model's class -> most-similar-class map, by name, for these classes.

    Without ``confusion`` this is :data:`ASYM_MAP` (LA-Net's map). With it, each
    class maps to the largest off-diagonal entry of its row; ties go to the
    alphabetically first canonical name so the choice does not depend on the
    dataset's class order.
    """
    names = list(class_names)
    if confusion is None:
        canon = [canonical_name(n) for n in names]
        out: dict[str, str] = {}
        for name, key in zip(names, canon):
            target = ASYM_MAP.get(key)
            if target is None:
                raise ValueError(
                    f"asym noise has no default target for class {name!r}; "
                    "pass a confusion matrix to derive the map"
                )
            if target not in canon:
                raise ValueError(
                    f"asym noise maps {key!r} to {target!r}, which is not one of this "
                    f"dataset's classes ({', '.join(names)}); pass a confusion matrix "
                    "to derive the map instead"
                )
            out[name] = names[canon.index(target)]
        return out

    off = _off_diagonal(check_confusion(confusion, names))
    rank = np.empty(len(names), dtype=np.int64)
    rank[canonical_order(names)] = np.arange(len(names))
    out = {}
    for i, name in enumerate(names):
        best = off[i].max() if len(names) > 1 else 0.0
        if best <= 0:
            raise ValueError(
                f"asym noise: confusion row of class {name!r} has no off-diagonal mass, "
                "so it has no most-similar class"
            )
        tied = np.flatnonzero(off[i] == best)
        out[name] = names[int(tied[np.argmin(rank[tied])])]
    return out


@register_noise_model("sym", description="uniform over the other C-1 classes, never the true class (SCN/EAC/LA-Net)")
def sym_model(class_names: Sequence[str], confusion: Optional[np.ndarray] = None) -> np.ndarray:
    """Symmetric noise: a flipped label is uniform over the C-1 other classes."""
    c = len(class_names)
    if c < 2:
        raise ValueError("sym noise needs at least two classes")
    f = np.full((c, c), 1.0 / (c - 1))
    np.fill_diagonal(f, 0.0)
    return f


@register_noise_model(
    "asym",
    description="each class flips to its most similar class (LA-Net map, or a confusion matrix's largest off-diagonal)",
)
def asym_model(class_names: Sequence[str], confusion: Optional[np.ndarray] = None) -> np.ndarray:
    """Asymmetric noise: one-hot at each class's most similar class (see :func:`asym_map`)."""
    names = list(class_names)
    mapping = asym_map(names, confusion)
    f = np.zeros((len(names), len(names)))
    for i, name in enumerate(names):
        f[i, names.index(mapping[name])] = 1.0
    return f


@register_noise_model(
    "confusion",
    description="flip targets proportional to a confusion matrix's off-diagonal (annotator-like)",
)
def confusion_model(class_names: Sequence[str], confusion: Optional[np.ndarray] = None) -> np.ndarray:
    """Confusion noise: row i is the off-diagonal of the confusion row of class i, normalised."""
    names = list(class_names)
    if confusion is None:
        raise ValueError(
            "noise model 'confusion' needs a confusion matrix "
            "(see fer_bench.noise.read_confusion_csv)"
        )
    off = _off_diagonal(check_confusion(confusion, names))
    sums = off.sum(axis=1)
    empty = [names[i] for i in np.flatnonzero(sums <= 0)]
    if empty:
        raise ValueError(
            f"confusion noise: the confusion row of {', '.join(map(repr, empty))} has no "
            "off-diagonal mass, so a flipped sample of that class has nowhere to go"
        )
    return off / sums[:, None]


@register_noise_model("none", description="no flips (clean labels)")
def none_model(class_names: Sequence[str], confusion: Optional[np.ndarray] = None) -> np.ndarray:
    """No noise: the all-zero matrix, which the injector reads as "flip nothing"."""
    return np.zeros((len(class_names), len(class_names)))


def check_flip_targets(f: np.ndarray, class_names: Sequence[str], model: str = "?") -> np.ndarray:
    """Validate a noise model's output and return it as an exactly row-normalised float64 copy.

    Plugins are held to the same contract as the built-ins: C x C, finite,
    non-negative, zero diagonal, rows summing to 1 (or the all-zero "no flips").
    """
    names = list(class_names)
    c = len(names)
    m = np.array(f, dtype=np.float64, copy=True)
    if m.shape != (c, c):
        raise ValueError(f"noise model {model!r} returned shape {m.shape}; expected ({c}, {c})")
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError(f"noise model {model!r} returned negative or non-finite entries")
    if not m.any():
        return m
    on_diag = [names[i] for i in np.flatnonzero(np.diag(m) > 0)]
    if on_diag:
        raise ValueError(
            f"noise model {model!r} puts flip mass on the true class for {', '.join(on_diag)}; "
            "flip-target rows must have a zero diagonal (scale the rate instead)"
        )
    sums = m.sum(axis=1)
    bad = [f"{names[i]} ({sums[i]:.6g})" for i in np.flatnonzero(np.abs(sums - 1.0) > _ROW_SUM_TOL)]
    if bad:
        raise ValueError(
            f"noise model {model!r}: flip-target rows (true class) must sum to 1; "
            f"rows of {', '.join(bad)} do not (column-stochastic matrices must be transposed)"
        )
    return m / sums[:, None]


def flip_targets(
    model: str, class_names: Sequence[str], confusion: Optional[np.ndarray] = None
) -> np.ndarray:
    """The checked flip-target matrix of the registered noise model ``model`` for these classes."""
    fn = NOISE_MODELS.get(model)
    names = list(class_names)
    if confusion is None:
        f = fn(names)
    else:
        f = fn(names, check_confusion(confusion, names))
    return check_flip_targets(f, names, model)
