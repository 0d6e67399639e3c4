"""Schedule-aware time constants (fer_bench/engine/timescale.py) on hand-computed cases, and how a run records them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fer_bench.engine import recipe as recipes
from fer_bench.engine.timescale import Schedule, map_value
from fer_bench.methods import HParam
from fer_bench.registry import METHODS, list_methods
from fer_bench.runs.config import migrate
from tests.conftest import tiny_spec

LANET_OFFICIAL = Schedule(80, 128)
CPU_FACE = Schedule(15, 64)


def test_momenta_keep_the_fraction_of_their_start_left_at_the_end() -> None:
    # omega per visit: one visit an epoch, 80 -> 15 epochs: 0.9 ** (80 / 15)
    omega = map_value(0.9, "visit", LANET_OFFICIAL, CPU_FACE)
    assert omega == pytest.approx(0.570112, abs=1e-6)
    assert omega ** 15 == pytest.approx(0.9 ** 80)
    # the key encoder's m per step: 80 epochs of N/128 steps against 15 of N/64: 0.999 ** (80/128 / (15/64))
    m = map_value(0.999, "step", LANET_OFFICIAL, CPU_FACE)
    assert m == pytest.approx(0.999 ** (8 / 3))
    assert m == pytest.approx(0.997336, abs=1e-6)
    n = 7200  # whatever the training set, the same share of the start is left after the run as officially
    assert m ** (15 * n / 64) == pytest.approx(0.999 ** (80 * n / 128))


def test_epoch_points_keep_their_fraction_of_training() -> None:
    scn = Schedule(70, 64)
    # relabelling from epoch 10 of 70: after 9 epochs, 12.9% of training; of 15: after 2 (13.3%), epoch 3
    assert map_value(10, "epoch", scn, Schedule(15, 64)) == 3
    assert map_value(10, "epoch", scn, Schedule(140, 32)) == 19  # batch size does not matter for epochs
    assert map_value(1, "epoch", scn, Schedule(15, 64)) == 1  # from the start stays from the start
    # a count of epochs (a warm-up): 10 of 80 -> 2 of 15 (1.875 rounded); a short one keeps at least one epoch
    assert map_value(10, "epochs", LANET_OFFICIAL, CPU_FACE) == 2
    assert map_value(1, "epochs", LANET_OFFICIAL, CPU_FACE) == 1
    assert map_value(0, "epochs", LANET_OFFICIAL, CPU_FACE) == 0


def test_the_official_schedule_maps_to_itself() -> None:
    for unit, value in (("visit", 0.9), ("step", 0.999), ("epoch", 10), ("epochs", 5)):
        assert map_value(value, unit, LANET_OFFICIAL, LANET_OFFICIAL) == value


@pytest.mark.parametrize("name", list_methods())
def test_every_method_on_its_official_recipe_keeps_its_declared_constants(name: str) -> None:
    cls = METHODS.get(name)
    recipe, hparams, mapped = recipes.resolve_mapped(cls.recipe, cls.hparams, "official", "paper", {})
    assert mapped == []
    assert hparams == recipes.layered(cls.recipe, cls.hparams, "official", "paper")[1]


def test_lanet_on_a_shortened_schedule_and_set_wins() -> None:
    cls = METHODS.get("lanet")
    sets = {"epochs": 15, "batch_size": 64}
    _, hp, mapped = recipes.resolve_mapped(cls.recipe, cls.hparams, "official", "paper", sets)
    assert hp["omega"] == pytest.approx(0.9 ** (80 / 15)) and hp["moco_m"] == pytest.approx(0.999 ** (8 / 3))
    assert [(m.name, m.unit, m.official) for m in mapped] == [("omega", "visit", 0.9), ("moco_m", "step", 0.999)]
    # a value the user sets is the value the run uses
    _, hp, mapped = recipes.resolve_mapped(cls.recipe, cls.hparams, "official", "paper", {**sets, "omega": 0.8})
    assert hp["omega"] == 0.8 and [m.name for m in mapped] == ["moco_m"]
    # and time_constants=fixed keeps the declared values
    _, hp, mapped = recipes.resolve_mapped(cls.recipe, cls.hparams, "official", "paper",
                                           {**sets, "time_constants": "fixed"})
    assert (hp["omega"], hp["moco_m"], mapped) == (0.9, 0.999, [])


def test_the_historical_profiles_keep_their_constants_unless_asked() -> None:
    cls = METHODS.get("scn")
    for profile in ("cpu", "cpu-face"):
        recipe, hp, mapped = recipes.resolve_mapped(cls.recipe, cls.hparams, "official", profile, {})
        assert recipe["time_constants"] == "fixed" and hp["relabel_epoch"] == 10 and mapped == []
    _, hp, _ = recipes.resolve_mapped(cls.recipe, cls.hparams, "official", "cpu-face", {"time_constants": "mapped"})
    assert hp["relabel_epoch"] == 3
    # under the unified protocol (60 epochs) the reference is still the method's own official schedule (70)
    _, hp, _ = recipes.resolve_mapped(cls.recipe, cls.hparams, "unified", "paper", {})
    assert hp["relabel_epoch"] == 1 + round(9 * 60 / 70)


def test_a_bad_mode_is_refused() -> None:
    with pytest.raises(recipes.RecipeError, match="time_constants"):
        recipes.resolve({}, {}, "official", "paper", {"time_constants": "scaled"})


def test_a_plugin_unit_is_mapped_too() -> None:
    hparams = {"ema": HParam(0.99, range=(0, 1), unit="step"), "start": HParam(20, unit="epoch")}
    _, hp, mapped = recipes.resolve_mapped({"epochs": 40, "batch_size": 64}, hparams, "official", "paper",
                                           {"epochs": 20})
    assert hp["ema"] == pytest.approx(0.99 ** 2) and hp["start"] == 1 + round(19 / 2)
    assert len(mapped) == 2


def test_a_run_records_prints_and_summarises_its_mapping(tiny_synth: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    import fer_bench.engine.run as engine
    from fer_bench.cli.training import run_summary

    spec = tiny_spec(tiny_synth, tmp_path, method="scn", noise="sym", rate=0.3, profile="cpu",
                     overrides={"time_constants": "mapped"})
    result = engine.main(spec)
    config = json.loads((Path(result["run_dir"]) / "config.json").read_text())
    # 10 of 70 epochs -> 1 + round(9 * 2 / 70) = 1 of 2 epochs
    assert config["hparams"]["relabel_epoch"] == 1
    assert config["mapped_constants"] == {"relabel_epoch": {"unit": "epoch", "official": 10, "value": 1}}
    assert "time constants mapped from 70 epochs at batch 64 to 2 epochs at batch 32" in capsys.readouterr().err
    assert "time constants mapped to this schedule: relabel_epoch 10 -> 1" in run_summary(result)


def test_older_records_read_as_the_code_ran_them() -> None:
    old = {"schema_version": 1, "method": "lanet", "dataset": "synthfer",
           "recipe": {"epochs": 15, "batch_size": 64}, "hparams": {"omega": 0.9}}
    new = migrate(old)
    assert new["recipe"]["time_constants"] == "fixed"
    assert (new["recipe"]["last_stride"], new["recipe"]["heatmap_stride"]) == (2, 4)
    assert new["mapped_constants"] == {} and new["schema_version"] == 2
