"""What a run's configuration would be by default: its method's recipe, today, for its protocol and profile.

A run's panel highlights every recipe key and hyper-parameter whose recorded value differs from this
default: its ``--set`` overrides, and what the code has changed since the run was made. The default is the
engine's own resolution (:func:`fer_bench.engine.recipe.resolve` with no overrides, the dataset's
validation split and, for a default taken from the run, the run's own value), never a second copy of the recipes; a method or dataset that is not registered here (a
plugin not loaded) has none, and the panel says so.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional


@lru_cache(maxsize=None)
def _resolved(method: str, dataset: str, protocol: str, profile: str,
              run_values: tuple[tuple[str, Any], ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    from ...datasets.contract import default_val_split
    from ...engine import recipe as recipes
    from ...registry import DATASETS, METHODS

    method_cls = METHODS.get(method)
    dataset_cls = DATASETS.get(dataset)
    return recipes.resolve(method_cls.recipe, method_cls.hparams, protocol, profile, {},
                           {"val_split": default_val_split(dataset_cls)}, dict(run_values))


def default_recipe(config: dict[str, Any]) -> tuple[Optional[dict[str, dict[str, Any]]], Optional[str]]:
    """``({"recipe": ..., "hparams": ...}, None)``: today's defaults for the run's method, dataset, protocol and
    profile; or ``(None, why not)``."""
    from ...engine.spec import recorded_run_values

    try:
        # a default taken from the run (Co-teaching's forget rate: its nominal noise rate) is this run's
        recipe, hparams = _resolved(str(config["method"]), str(config["dataset"]),
                                    str(config.get("protocol", "official")), str(config.get("profile")),
                                    tuple(sorted(recorded_run_values(config).items())))
    except Exception as exc:  # noqa: BLE001 - an unknown plugin, a profile gone: the panel says why
        return None, f"no default recipe to compare with ({str(exc).strip() or type(exc).__name__})"
    return {"recipe": dict(recipe), "hparams": dict(hparams)}, None
