"""Recipe resolution: protocol, profile and --set layers, and their errors."""

from __future__ import annotations

import pytest

from fer_bench.engine import recipe
from fer_bench.engine.optim import lr_factor


def test_layers_apply_in_order() -> None:
    method_recipe = {"lr": 1e-3, "epochs": 80, "schedule": "linear"}
    r, hp = recipe.resolve(method_recipe, {"beta": 0.7}, "official", "paper", {"beta": 0.5, "batch_size": 32})
    assert (r["lr"], r["epochs"], r["batch_size"], hp["beta"]) == (1e-3, 80, 32, 0.5)
    r, _ = recipe.resolve(method_recipe, {}, "unified", "paper", {})
    assert r["lr"] == recipe.UNIFIED["lr"] and r["schedule"] == recipe.UNIFIED["schedule"]
    r, _ = recipe.resolve(method_recipe, {}, "official", "cpu", {"epochs": 3})
    assert r["width"] == recipe.PROFILES["cpu"]["width"] and r["epochs"] == 3


@pytest.mark.parametrize("overrides, message", [
    ({"nope": 1}, "unknown --set key 'nope'"),
    ({"epochs": "many"}, "--set epochs='many': expected a value like"),
    ({"aug_flip": True}, "--set aug_flip=True: expected a value like"),
])
def test_bad_overrides(overrides: dict, message: str) -> None:
    with pytest.raises(recipe.RecipeError, match=message.replace("(", r"\(").replace("[", r"\[")):
        recipe.resolve({}, {}, "official", "paper", overrides)


def test_unknown_protocol_and_profile() -> None:
    with pytest.raises(recipe.RecipeError, match="unknown protocol"):
        recipe.resolve({}, {}, "mine", "paper", {})
    with pytest.raises(recipe.RecipeError, match="unknown profile"):
        recipe.resolve({}, {}, "official", "laptop", {})


def test_set_values_parse_as_literals() -> None:
    assert recipe.parse_sets(["lr=1e-3", "milestones=[10, 20]", "relabel=true", "arch=resnet50"]) == {
        "lr": 1e-3, "milestones": [10, 20], "relabel": True, "arch": "resnet50"}


def test_schedules() -> None:
    base = dict(recipe.DEFAULTS, epochs=10, warmup_epochs=0, gamma=0.5, milestones=[3])
    f = lr_factor(dict(base, schedule="exponential"), steps_per_epoch=4)
    assert f(0) == 1 and f(4) == 0.5 and f(8) == 0.25
    f = lr_factor(dict(base, schedule="step"), steps_per_epoch=4)
    assert f(11) == 1 and f(12) == 0.5
    f = lr_factor(dict(base, schedule="linear"), steps_per_epoch=4)
    assert f(0) == 1 and f(20) == pytest.approx(0.5)
    f = lr_factor(dict(base, schedule="cosine", warmup_epochs=1), steps_per_epoch=4)
    assert f(0) == 0.25 and f(4) == 1 and f(40) == pytest.approx(0.0)
