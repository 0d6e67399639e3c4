"""The noise record: what a noisy label set actually is, measured against the clean labels.

A nominal rate says little on its own: Bernoulli draws wander (about 0.3 pp at
r = 0.1 on RAF-DB), DivideMix-style flips can land on the true class, and on
imbalanced data uniform noise swamps the minority labels (in EAC's 10 % file
almost half of the samples labelled Fear are wrong). So every noisy label set
travels with a :class:`NoiseRecord` computed from the (clean, noisy) pair, for
generated noise and for imported label files alike.

Conventions: ``transition[i][j] = P(noisy = j | true = i)``, rows = TRUE class,
each row summing to 1; a class with no samples gets an identity row.
``per_class_rate`` is by true class (how much of class i was flipped);
``per_label_noise`` is by noisy label (how much of what carries label j is wrong).
Rates of classes with no samples (or labels nobody carries) are 0.0.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, Optional, Sequence

import numpy as np

from ..datasets.votes import vote_shares

MODES: tuple[str, ...] = ("bernoulli", "exact", "file")


@dataclass
class NoiseRecord:
    """Nominal settings and realised statistics of one noisy label set (JSON-serialisable).

    Attributes:
        model: noise model name (``sym``, ``asym``, ``confusion``, ``none``, a plugin's,
            or a description of an imported file's origin).
        rate: nominal rate asked for; None when unknown (an imported file).
        mode: ``bernoulli`` (per-sample draws), ``exact`` (exact count) or ``file``.
        noise_seed: seed of the noise generator; None for a file.
        class_names: class names in the dataset's index order.
        n, n_flipped, realised_rate: sample count, labels that differ, their fraction.
        per_class_rate: true class name -> fraction of that class's samples flipped.
        per_label_noise: noisy label name -> fraction of samples carrying it that are wrong.
        class_counts, noisy_counts: samples per clean class and per noisy label.
        transition: realised C x C row-stochastic P(noisy = j | true = i).
        flip_targets: the model's flip-target matrix F (rows = true class), None for a file.
        label_file_sha256: sha256 of the label file written for this set (filled by the caller).
        source: ``generated`` or the path of an imported file.
        by_ambiguity: realised flip rate in bins of the largest annotator vote share
            (see :func:`flip_rate_by_ambiguity`); None when the
            dataset has no votes.
    """

    model: str
    rate: Optional[float]
    mode: str
    noise_seed: Optional[int]
    class_names: list[str]
    n: int
    n_flipped: int
    realised_rate: float
    per_class_rate: dict[str, float]
    per_label_noise: dict[str, float]
    class_counts: dict[str, int]
    noisy_counts: dict[str, int]
    transition: list[list[float]]
    flip_targets: Optional[list[list[float]]] = None
    label_file_sha256: Optional[str] = None
    source: str = "generated"
    by_ambiguity: Optional[list[dict[str, float]]] = None

    @property
    def transition_matrix(self) -> np.ndarray:
        """``transition`` as a float64 array."""
        return np.asarray(self.transition, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (a deep copy)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "NoiseRecord":
        """Rebuild a record from :meth:`to_dict` output; keys it does not know are ignored."""
        known = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"noise record lacks {', '.join(missing)}")
        rec = cls(**{k: v for k, v in data.items() if k in known})
        if rec.mode not in MODES:
            raise ValueError(f"noise record mode {rec.mode!r} is not one of {', '.join(MODES)}")
        return rec

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> "NoiseRecord":
        return cls.from_dict(json.loads(text))

    def summary(self) -> str:
        """A short multi-line text: nominal vs realised rate, per-class and per-label rates."""
        seed = "" if self.noise_seed is None else f", noise seed {self.noise_seed}"
        lines = [f"noise model {self.model!r}, mode {self.mode}{seed}, source {self.source}"]
        nominal = "unknown" if self.rate is None else f"{self.rate:.4f}"
        realised = f"realised {self.realised_rate:.4f} ({self.n_flipped} of {self.n} labels changed)"
        if self.mode == "bernoulli" and self.rate is not None and self.n_flipped > 0:
            # The draw-to-draw spread, so a reader can tell wander from a bug.
            sigma = math.sqrt(self.rate * (1 - self.rate) / self.n)
            realised += f"; Bernoulli 1 sigma {sigma:.4f}"
        lines.append(f"nominal rate {nominal}, {realised}")
        if self.n_flipped == 0:
            lines.append("no flips: the labels are the clean labels")
        width = max([5] + [len(c) for c in self.class_names])
        lines.append(
            f"{'class':<{width}}  {'count':>6}  {'flip rate':>9}  {'noisy count':>11}  {'wrong among labelled':>20}"
        )
        for c in self.class_names:
            lines.append(
                f"{c:<{width}}  {self.class_counts[c]:>6}  {self.per_class_rate[c]:>9.4f}  "
                f"{self.noisy_counts[c]:>11}  {self.per_label_noise[c]:>20.4f}"
            )
        if self.by_ambiguity:
            lines.append("flip rate by largest vote share (low = ambiguous image):")
            for b in self.by_ambiguity:
                span = "1.0 (unanimous)" if b["lo"] == b["hi"] else f"[{b['lo']:.1f}, {b['hi']:.1f})"
                lines.append(f"  {span:<15}  {b['n']:>6} images  {b['n_flipped']:>6} flipped  "
                             f"rate {b['flip_rate']:.4f}")
        if self.label_file_sha256:
            lines.append(f"label file sha256 {self.label_file_sha256}")
        return "\n".join(lines)


def _check_labels(labels: np.ndarray, c: int, what: str) -> np.ndarray:
    a = np.asarray(labels)
    if a.ndim != 1:
        raise ValueError(f"{what} labels must be 1-D; got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{what} labels must be integers; got dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    if a.size and (a.min() < 0 or a.max() >= c):
        raise ValueError(f"{what} labels must lie in 0..{c - 1}; found {a.min()}..{a.max()}")
    return a


# Bins of the largest vote share (an image's agreement): [lo, hi), the last one is the unanimous images.
AMBIGUITY_EDGES: tuple[float, ...] = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def flip_rate_by_ambiguity(clean: np.ndarray, noisy: np.ndarray, votes: np.ndarray) -> list[dict[str, float]]:
    """Realised flip rate in bins of the largest vote share (low share = ambiguous image).

    Each bin: ``lo``, ``hi`` (``hi`` = ``lo`` = 1.0 for the unanimous bin), ``n`` images,
    ``n_flipped``, ``flip_rate`` (0.0 for an empty bin). Images without votes are left out.
    """
    shares = vote_shares(votes)
    voted = shares.sum(axis=1) > 0
    top = shares.max(axis=1)
    flipped = np.asarray(clean) != np.asarray(noisy)
    # The tolerance puts 6/10 = 0.6 (float rounding) into [0.6, 0.7), and 1.0 into the unanimous bin.
    idx = np.searchsorted(np.asarray(AMBIGUITY_EDGES), top + 1e-9, side="right") - 1
    bins = []
    for b, lo in enumerate(AMBIGUITY_EDGES):
        hi = AMBIGUITY_EDGES[b + 1] if b + 1 < len(AMBIGUITY_EDGES) else lo
        sel = voted & (idx == b)
        n = int(sel.sum())
        k = int(flipped[sel].sum())
        bins.append({"lo": lo, "hi": hi, "n": n, "n_flipped": k, "flip_rate": k / n if n else 0.0})
    return bins


def noise_record(
    clean: np.ndarray,
    noisy: np.ndarray,
    class_names: Sequence[str],
    *,
    model: str,
    rate: Optional[float],
    mode: str,
    noise_seed: Optional[int],
    flip_targets: Optional[np.ndarray] = None,
    source: str = "generated",
    votes: Optional[np.ndarray] = None,
) -> NoiseRecord:
    """Measure a (clean, noisy) label pair: realised rate, per-class rates, transition matrix.

    Works for generated noise and for label files loaded from disk (``mode="file"``).
    With ``votes`` (N x C annotator votes) it also measures the flip rate by vote agreement.
    """
    if mode not in MODES:
        raise ValueError(f"noise mode {mode!r} is not one of {', '.join(MODES)}")
    names = [str(c) for c in class_names]
    c = len(names)
    if len(set(names)) != c:
        raise ValueError(f"class names repeat: {', '.join(names)}")
    y = _check_labels(clean, c, "clean")
    z = _check_labels(noisy, c, "noisy")
    if y.shape != z.shape:
        raise ValueError(f"clean and noisy labels differ in length ({y.size} vs {z.size})")

    counts = np.bincount(y * c + z, minlength=c * c).reshape(c, c)
    n_true = counts.sum(axis=1)
    n_label = counts.sum(axis=0)
    correct = np.diag(counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        trans = np.where(n_true[:, None] > 0, counts / np.maximum(n_true, 1)[:, None], np.eye(c))
        per_class = np.where(n_true > 0, 1.0 - correct / np.maximum(n_true, 1), 0.0)
        per_label = np.where(n_label > 0, 1.0 - correct / np.maximum(n_label, 1), 0.0)
    n = int(y.size)
    n_flipped = int(n - correct.sum())
    return NoiseRecord(
        model=model,
        rate=None if rate is None else float(rate),
        mode=mode,
        noise_seed=None if noise_seed is None else int(noise_seed),
        class_names=names,
        n=n,
        n_flipped=n_flipped,
        realised_rate=n_flipped / n if n else 0.0,
        per_class_rate={k: float(v) for k, v in zip(names, per_class)},
        per_label_noise={k: float(v) for k, v in zip(names, per_label)},
        class_counts={k: int(v) for k, v in zip(names, n_true)},
        noisy_counts={k: int(v) for k, v in zip(names, n_label)},
        transition=[[float(v) for v in row] for row in trans],
        flip_targets=None
        if flip_targets is None
        else [[float(v) for v in row] for row in np.asarray(flip_targets, dtype=np.float64)],
        source=source,
        by_ambiguity=None if votes is None else flip_rate_by_ambiguity(y, z, votes),
    )
