"""A run's ``config.json``: its schema version, :func:`migrate` to today's schema, and its hash.

The engine writes the config (:func:`fer_bench.engine.spec.config_record`); everything that reads
one reads it through :func:`migrate`, so that a record of any age reads as today's schema, with no
key filled in anywhere else. The hash (:func:`config_hash`) is the run's identity: two runs with
the same hash are the same run. It leaves out where the data lies and what only describes the
record (:data:`NOT_IDENTITY`), so that adding such a key never changes the identity of a run.

Schema history:

* 0 (no ``schema_version``): recipe keys were added over time, each absent from the records made
  before it, which ran as :data:`SCHEMA_0_RECIPE` says. A run was named against its dataset's
  default profile of the day, and committed records were renamed when that changed, the last
  time to :data:`SCHEMA_0_NAMED_AGAINST`.
* 1: ``schema_version``; every recipe key; ``default_profile`` is the dataset's default profile
  when the run was made, which its name leaves out (:meth:`fer_bench.runs.RunId.from_config`).
* 2: the recipe keys ``time_constants``, ``last_stride`` and ``heatmap_stride``
  (:data:`SCHEMA_1_RECIPE`: what the code did before them), and ``mapped_constants``.

Keys a config holds only where they apply, so that every other config (and its hash) stays as it was and
no migration is needed: ``processes`` and ``sync_bn`` (a run trained by several processes) and
``imbalance`` (a long-tailed training subset, :mod:`fer_bench.datasets.imbalance`: ``{"profile", "rho",
"seed"}``). A record without ``imbalance`` trained on the full training split, as every record made before
it did.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .errors import RunError

SCHEMA_VERSION = 2
# A fingerprint of the images (and clean labels) a run read. A record may lack it (older runs), so it is
# compared on its own where both configs have it, never through the hash.
DATA_FINGERPRINT = "data_fingerprint"
# Recorded, but not who the run is: where the data lies, the hash itself, what the run's name is made
# against, the record's schema and what the images were.
# ``mapped_constants`` describes how hyper-parameters the config records (and hashes) came about.
NOT_IDENTITY = ("root", "config_hash", "default_profile", "schema_version", DATA_FINGERPRINT, "mapped_constants")

# The value of each recipe key a schema-0 record may lack that reproduces what the code did without it.
SCHEMA_0_RECIPE: dict[str, Any] = {"normalize": "imagenet", "aug_noise": 0.0, "aug_noise_var": 30.0,
                                   "aug_flip_or_noise": False, "val_split": 0.0}
# The recipe keys schema 2 added, as the code ran before them: constants as declared, the standard last stage,
# heatmaps a quarter of the input.
SCHEMA_1_RECIPE: dict[str, Any] = {"time_constants": "fixed", "last_stride": 2, "heatmap_stride": 4}
# The built-in datasets' default profiles that schema-0 run names leave out. A plugin dataset's record says
# its own (``default_profile``), or, lacking it, nothing: its name then carries its profile.
SCHEMA_0_NAMED_AGAINST = {"synthfer": "cpu-face", "rafdb": "paper", "ferplus": "paper", "affectnet": "paper"}


def migrate(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` (a saved config.json) in today's schema; a new dict when anything changed."""
    version = config.get("schema_version", 0)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise RunError(f"a run config of schema {version!r}, which this fer-bench (schema {SCHEMA_VERSION}) "
                       f"cannot read: it was written by a newer fer-bench")
    if version == SCHEMA_VERSION:
        return config
    config = dict(config)
    recipe = config.get("recipe")
    if version == 0:
        if isinstance(recipe, dict):
            filled = {**SCHEMA_0_RECIPE, **recipe}
            if "pretrained_kind" not in recipe and recipe.get("pretrained", "none") == "none":
                filled["pretrained_kind"] = "none"
            recipe = filled
        dataset = str(config.get("dataset", "")).lower()
        config["default_profile"] = SCHEMA_0_NAMED_AGAINST.get(dataset, config.get("default_profile", ""))
    if isinstance(recipe, dict):
        config["recipe"] = {**SCHEMA_1_RECIPE, **recipe}
    config.setdefault("mapped_constants", {})
    config["schema_version"] = SCHEMA_VERSION
    return config


def config_hash(config: dict[str, Any]) -> str:
    """Identity of a run's config: every key but :data:`NOT_IDENTITY` (the labels' sha stands for the data)."""
    identity = {k: v for k, v in config.items() if k not in NOT_IDENTITY}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """``key: old -> new`` for every (nested) key whose value differs."""
    out: list[str] = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return out
