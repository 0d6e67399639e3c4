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


def test_delayed_linear_holds_then_decays_per_epoch_to_a_last_nonzero_step() -> None:
    base = dict(recipe.DEFAULTS, epochs=5, warmup_epochs=0, schedule="delayed_linear", decay_start=3)
    f = lr_factor(base, steps_per_epoch=2)
    # epochs 1, 2 at the full lr; epochs 3, 4, 5 at (6 - e) / (6 - 3)
    assert [f(it) for it in range(10)] == [1, 1, 1, 1, 1, 1, pytest.approx(2 / 3), pytest.approx(2 / 3),
                                           pytest.approx(1 / 3), pytest.approx(1 / 3)]


def test_late_beta1_resumes_from_a_checkpoint() -> None:
    import torch

    from fer_bench.engine.optim import build_optimizer, build_scheduler

    r, _ = recipe.resolve({}, {}, "official", "paper",
                          {"schedule": "delayed_linear", "decay_start": 2, "decay_beta1": 0.1, "epochs": 3})

    def fresh() -> tuple:
        optimizer = build_optimizer([{"params": [torch.nn.Parameter(torch.ones(2))]}], r)
        return optimizer, build_scheduler(optimizer, r, steps_per_epoch=2)

    optimizer, scheduler = fresh()
    betas = []
    for _ in range(6):
        betas.append(optimizer.param_groups[0]["betas"][0])
        optimizer.step()
        scheduler.step()
        if len(betas) == 3:  # checkpoint in the middle of epoch 2, resume into new objects
            state = (optimizer.state_dict(), scheduler.state_dict())
            optimizer, scheduler = fresh()
            optimizer.load_state_dict(state[0])
            scheduler.load_state_dict(state[1])
    assert betas == [0.9, 0.9, 0.1, 0.1, 0.1, 0.1]


@pytest.mark.parametrize("overrides, message", [
    ({"decay_start": 3}, "only the delayed_linear schedule reads it"),
    ({"schedule": "delayed_linear", "decay_beta1": 0.1, "optimizer": "sgd"}, "this run's optimizer is sgd"),
    ({"schedule": "delayed_linear", "decay_beta1": 1.5}, r"must lie in \[0, 1\)"),
    ({"schedule": "delayed_linear", "decay_start": 9, "epochs": 5}, "after the last of 5 epochs"),
])
def test_delayed_linear_keys_are_checked(overrides: dict, message: str) -> None:
    with pytest.raises(recipe.RecipeError, match=message):
        recipe.resolve({}, {}, "official", "paper", overrides)


def test_delayed_linear_keys_appear_only_under_that_schedule() -> None:
    r, _ = recipe.resolve({}, {}, "official", "paper", {})
    assert not set(recipe.DELAYED_LINEAR) & set(r)  # so no other run's config (and hash) changes
    r, _ = recipe.resolve({}, {}, "official", "paper", {"schedule": "delayed_linear"})
    assert (r["decay_start"], r["decay_beta1"]) == (1, None)
