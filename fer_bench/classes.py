"""The suite's canonical expression class names and per-dataset class orders.

Every dataset declares its classes as canonical names in its own index order.
Noise maps, confusion matrices and tables are written by name and resolved per
dataset, because RAF-DB, FERPlus, AffectNet and LA-Net's code all order the
same classes differently.
"""

from __future__ import annotations

from typing import Sequence

from .errors import excerpt

CANONICAL: tuple[str, ...] = (
    "neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger", "contempt",
)

# Spellings found in label files and papers, mapped to canonical names.
ALIASES: dict[str, str] = {
    "happy": "happiness", "sad": "sadness", "angry": "anger", "surprised": "surprise",
    "fearful": "fear", "disgusted": "disgust", "contemptuous": "contempt",
}

# RAF-DB basic: labels 1..7 in the file, 0..6 after subtracting 1.
RAFDB_ORDER: tuple[str, ...] = (
    "surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral",
)


def canonical_name(name: str) -> str:
    """Return the canonical spelling of a class name; raise ValueError if unknown."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in CANONICAL:
        raise ValueError(f"unknown class name {excerpt(name)}; known: {', '.join(CANONICAL)}")
    return key


def class_index(class_names: Sequence[str], name: str) -> int:
    """Index of ``name`` (any known spelling) in a dataset's class order."""
    key = canonical_name(name)
    try:
        return list(class_names).index(key)
    except ValueError:
        raise ValueError(
            f"class {excerpt(name)} is not one of this dataset's classes ({', '.join(class_names)})"
        ) from None
