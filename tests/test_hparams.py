"""Typed hyper-parameters: declarations, the refusal of names that collide with the recipe's, ``--set``
conversion and its errors, ``fer-bench methods show``, undeclared (plain-value) plugins, backbone_modules."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import fer_bench.registry as registry
from fer_bench.cli import main
from fer_bench.engine import recipe as recipes
from fer_bench.methods import HParam, Method, MethodContext, StepOutput
from fer_bench.methods.hparams import HParamError, ascending_pair, check_method, declare
from fer_bench.registry import METHODS, list_methods

# What every built-in method recorded in config.json's "hparams" before the declarations existed (keys, values
# and JSON types): the config hash and the run names of the committed runs depend on it.
RECORDED = {
    "official": {
        "baseline": {},
        "eac": {"erase": 0.5, "erase_scale": [0.02, 0.25], "lam": 5.0, "shared_erasing": False},
        "lanet": {"K": 8, "alpha": 1.0, "beta": 0.1, "delta": 0.7, "heatmap_peak": "official", "lam": 1.0,
                  "moco_m": 0.999, "num_landmarks": 19, "omega": 0.9, "queue_size": 8192, "shards": 2,
                  "sigma": 1.5, "swap_flipped_landmarks": False, "tau": 0.1},
        "rul": {"delta2": 0.2, "dropout": 0.4, "pairs": "random", "relabel": False, "relabel_epoch": 10},
        "scn": {"beta": 0.7, "delta1": 0.07, "delta2": 0.2, "drop_rate": 0.0, "relabel_epoch": 10,
                "relabel_scope": "all"},
    },
}
RECORDED["unified"] = {m: dict(hp) for m, hp in RECORDED["official"].items()}
RECORDED["unified"]["lanet"].update(heatmap_peak="centre", shards=1, swap_flipped_landmarks=True)
BUILT_INS = sorted(RECORDED["official"])


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def methods_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a test registers into METHODS is gone after it."""
    METHODS._discover()
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))


def _plugin(tmp_path: Path, name: str, hparams: str, extra: str = "") -> Path:
    path = tmp_path / f"{name}_plugin.py"
    path.write_text(
        "from fer_bench.methods import HParam, Method\n"
        "from fer_bench.registry import register_method\n\n"
        f"@register_method({name!r})\n"
        "class Plugin(Method):\n"
        "    '''A test plugin.'''\n"
        f"    hparams = {hparams}\n{extra}"
    )
    return path


# --- declarations ---------------------------------------------------------------------------------------------

def test_a_declaration_infers_its_type_and_describes_what_it_takes() -> None:
    assert HParam(0.5, range=(0, 1)).describe() == "a number in [0, 1]"
    assert HParam(8, range=(1, None)).describe() == "an integer in [1, inf)"
    assert HParam(0.1, range="(0, inf)").describe() == "a number in (0, inf)"
    assert HParam(0.1, range=(0, math.inf)).describe() == "a number in [0, inf)"
    assert HParam("all", choices=("all", "low")).describe() == "one of all, low"
    assert HParam(True).describe() == "true or false"
    assert HParam([0.1, 0.2], range=(0, 1)).describe() == "a list of numbers in [0, 1]"
    p = HParam(1, type=float, range=(0, None))
    assert p.default == 1.0 and isinstance(p.default, float)  # recorded as a float, as --set would make it
    assert (p.type, HParam(8).type, HParam("x").type, HParam(False).type, HParam((1, 2)).type) == (
        float, int, str, bool, list)


@pytest.mark.parametrize("make, message", [
    (lambda: HParam(1.5, range=(0, 1)), r"the default must be a number in \[0, 1\]"),
    (lambda: HParam(0.0, range="(0, 1]"), r"the default must be a number in \(0, 1\]"),
    (lambda: HParam(float("nan"), range=(0, 1)), "the default must be"),
    (lambda: HParam("x", choices=("a", "b")), "the default must be one of a, b"),
    (lambda: HParam(None), "type must be one of"),
    (lambda: HParam({"a": 1}), "type must be one of"),
    (lambda: HParam("x", range=(0, 1)), "a range needs a number"),
    (lambda: HParam(1, range=(0, 2), choices=(1, 2)), "a range or choices, not both"),
    (lambda: HParam(1, choices="12"), "choices must be a non-empty tuple"),
    (lambda: HParam(1, choices=(1, "2")), "choice '2' is not an integer"),
    (lambda: HParam(1, range=(2, 0)), "the low bound is above the high one"),
    (lambda: HParam(1, range="0..1"), "write it as an interval"),
    (lambda: HParam(1, unit="fortnight"), "unit 'fortnight' is not one of epoch, epochs, step, visit"),
    (lambda: HParam(True, type=int), "the default must be an integer"),
    (lambda: HParam([0.3, 0.1], check=ascending_pair), "low <= high"),
])
def test_a_wrong_declaration_is_refused_where_it_is_made(make, message: str) -> None:
    with pytest.raises(HParamError, match=message):
        make()


def test_conversion_follows_the_declared_type() -> None:
    assert HParam(0.5).convert(0) == 0.0 and isinstance(HParam(0.5).convert(0), float)
    assert HParam([0.1, 0.2]).convert((0, 1)) == [0, 1]  # a tuple becomes a list; its elements stay as given
    for spec, value in [(HParam(8), 2.5), (HParam(8), True), (HParam(0.5), True), (HParam(True), 1),
                        (HParam("a", choices=("a", "b")), 1), (HParam(0.5), None), (HParam(0.5), "x")]:
        with pytest.raises(ValueError, match="must be"):
            spec.convert(value)


def test_every_built_in_method_declares_typed_hyperparameters_with_help() -> None:
    for name in BUILT_INS:
        cls = METHODS.get(name)
        for key, spec in cls.hparams.items():
            assert isinstance(spec, HParam) and spec.declared, (name, key)
            assert spec.help, (name, key)
            assert spec.type is bool or spec.choices or spec.interval, (name, key)  # a range or choices


@pytest.mark.parametrize("protocol", ["official", "unified"])
def test_built_in_hyperparameters_resolve_to_the_values_runs_recorded(protocol: str) -> None:
    for name in BUILT_INS:
        cls = METHODS.get(name)
        for profile in recipes.PROFILES:
            # as declared (the constants a shorter schedule maps are tested in test_timescale.py)
            _, hp = recipes.resolve(cls.recipe, cls.hparams, protocol, profile, {"time_constants": "fixed"})
            assert json.dumps(hp, sort_keys=True) == json.dumps(RECORDED[protocol][name], sort_keys=True)


def test_overrides_still_name_one_run_whatever_their_spelling() -> None:
    lanet, eac = METHODS.get("lanet"), METHODS.get("eac")

    def hp(cls, *sets: str) -> dict:
        return recipes.resolve(cls.recipe, cls.hparams, "official", "cpu", recipes.parse_sets(sets))[1]

    assert json.dumps(hp(lanet, "alpha=0")) == json.dumps(hp(lanet, "alpha=0.0"))
    assert hp(lanet, "alpha=0")["alpha"] == 0.0 and isinstance(hp(lanet, "alpha=0")["alpha"], float)
    assert hp(lanet, "K=4")["K"] == 4 and hp(lanet, "shards=1")["shards"] == 1
    assert hp(eac, "erase_scale=(0.1, 0.3)")["erase_scale"] == [0.1, 0.3]


def test_every_recipe_key_has_help() -> None:
    assert set(recipes.RECIPE_HELP) == recipes.recipe_keys() and all(recipes.RECIPE_HELP.values())


# --- registration ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("hparams, message", [
    ({"momentum": HParam(0.99, range=(0, 1))}, "hyper-parameter 'momentum' has the name of a recipe key"),
    ({"gamma": 0.5}, "hyper-parameter 'gamma' has the name of a recipe key"),
    ({"lr": HParam(0.1)}, "hyper-parameter 'lr' has the name of a recipe key"),
    ({"my-param": 1}, "'my-param' is not a Python identifier"),
])
def test_registration_refuses_names_that_cannot_be_set(hparams: dict, message: str) -> None:
    reg = registry.Registry("method", "none.group", (), check=registry._check_method)

    class Colliding(Method):
        pass

    Colliding.hparams = hparams
    with pytest.raises(ValueError, match=message):
        reg.register("colliding", Colliding)
    assert "colliding" not in reg._entries


def test_registration_refuses_an_official_recipe_value_the_declaration_does_not_allow() -> None:
    class Bad(Method):
        hparams = {"k": HParam(2, range=(1, 8))}
        recipe = {"k": 9}

    with pytest.raises(ValueError, match=r"method 'bad': its recipe sets k=9, which must be an integer in \[1, 8\]"):
        check_method("bad", Bad)

    class BadModules(Method):
        backbone_modules = "backbone"

    with pytest.raises(ValueError, match="backbone_modules must be a tuple"):
        check_method("badmodules", BadModules)


def test_a_colliding_plugin_is_refused_with_one_line_and_exit_2(tmp_path: Path, methods_restored: None) -> None:
    plugin = _plugin(tmp_path, "ema", '{"momentum": HParam(0.99, range=(0, 1), help="EMA momentum")}')
    res = cli("methods", "list", "--plugin", str(plugin))
    assert res.exit_code == 2
    line = res.output.strip()
    assert "\n" not in line
    assert "hyper-parameter 'momentum' has the name of a recipe key (momentum: SGD momentum" in line
    assert "ema" not in METHODS._entries


def test_a_colliding_entry_point_is_a_warning_and_the_others_still_register(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    (tmp_path / "ep_colliding.py").write_text(
        "from fer_bench.methods.baseline import Baseline\n"
        "class Colliding(Baseline):\n    hparams = {'gamma': 0.5}\n"
        "class Fine(Baseline):\n    hparams = {'rho': 0.5}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fake = [EntryPoint("colliding", "ep_colliding:Colliding", "fer_bench.methods"),
            EntryPoint("fine", "ep_colliding:Fine", "fer_bench.methods")]
    monkeypatch.setattr(registry, "entry_points", lambda group: fake if group == "fer_bench.methods" else [])
    reg = registry.Registry("method", "fer_bench.methods", (), check=registry._check_method)
    with pytest.warns(UserWarning, match="'colliding' .* was refused: .*'gamma' has the name of a recipe key"):
        assert reg.names() == ["fine"]


def test_resolve_refuses_colliding_hyperparameters_of_an_unregistered_class() -> None:
    with pytest.raises(recipes.RecipeError, match="gamma have the names of recipe keys"):
        recipes.resolve({}, {"gamma": 0.5}, "official", "paper", {})


# --- --set ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("setting, message", [
    ("K=2.5", r"--set K=2.5: must be an integer in [1, inf)"),
    ("delta=1.5", r"--set delta=1.5: must be a number in [0, 1]"),
    ("tau=0", r"--set tau=0: must be a number in (0, inf)"),
    ("num_landmarks=21", r"--set num_landmarks=21: must be one of 19, 68"),
    ("heatmap_peak=corner", r"--set heatmap_peak='corner': must be one of official, centre"),
    ("swap_flipped_landmarks=1", r"--set swap_flipped_landmarks=1: must be true or false"),
])
def test_a_bad_set_is_one_line_naming_key_value_and_what_is_allowed(setting: str, message: str,
                                                                    tmp_path: Path) -> None:
    res = cli("run", "--method", "lanet", "--noise", "sym", "--rate", "0.3", "--out", str(tmp_path / "runs"),
              "--set", setting)
    assert res.exit_code == 2
    assert res.output.strip() == f"Error: {message}"
    assert not (tmp_path / "runs").exists()


def test_a_method_built_directly_checks_its_values() -> None:
    cls = METHODS.get("scn")
    ctx = MethodContext(num_classes=3, class_names=("a", "b", "c"), train_labels=torch.zeros(4, dtype=torch.long),
                        device=torch.device("cpu"), recipe={"arch": "resnet18", "width": 8, "stem": "small",
                                                            "image_size": 32}, epochs=1)
    with pytest.raises(ValueError, match=r"scn: relabel_scope='some' must be one of all, low"):
        cls(ctx, {**cls.hparam_defaults(), "relabel_scope": "some"})
    with pytest.raises(ValueError, match=r"scn: drop_rate=1.5 must be a number in \[0, 1\]"):
        cls(ctx, {**cls.hparam_defaults(), "drop_rate": 1.5})


# --- methods show ---------------------------------------------------------------------------------------------

def test_methods_show_lists_hyperparameters_and_the_official_recipe() -> None:
    res = cli("methods", "show", "lanet")
    assert res.exit_code == 0, res.output
    out = res.output
    lanet = METHODS.get("lanet")
    for key, spec in lanet.hparams.items():
        row = next(line for line in out.splitlines() if line.split()[:1] == [key])
        assert spec.type.__name__ in row and spec.help in row, row
    assert re.search(r"^\s+tau\s+float\s+0\.1\s+\(0, inf\)\s+contrastive temperature$", out, re.M)
    assert re.search(r"^\s+shards\s+int\s+1\s+2\s+\[1, inf\)\s+per-device", out, re.M)  # official: 2
    assert re.search(r"^\s+heatmap_peak\s+str\s+centre\s+official\s+official, centre\s+", out, re.M)
    assert re.search(r"^\s+omega\s+.*\[unit: visit\]$", out, re.M)
    assert re.search(r"^\s+lr\s+\*\s+0\.001\s+learning rate", out, re.M)  # lanet's own recipe
    assert re.search(r"^\s+momentum\s+0\.9\s+SGD momentum", out, re.M)  # the engine's default
    for key in recipes.DEFAULTS:
        assert re.search(rf"^\s+{key}\s", out, re.M), key
    assert "--profile cpu-face: as --profile cpu, and pretrained=synthfer-id" in out
    assert "hyper-parameters swap_flipped_landmarks=true shards=1 heatmap_peak=centre" in out
    assert "model.encoder.backbone, model.encoder.landmark" in out


def test_methods_show_of_an_unknown_method_is_exit_2() -> None:
    res = cli("methods", "show", "nope")
    assert res.exit_code == 2 and "unknown method 'nope'" in res.output


# --- plain values, as plugins wrote them before declarations ---------------------------------------------------

def test_a_plain_value_plugin_still_works(tmp_path: Path, methods_restored: None) -> None:
    plugin = _plugin(tmp_path, "plain", '{"smoothing": 0.1, "scope": "all", "anything": None}')
    res = cli("methods", "show", "plain", "--plugin", str(plugin))
    assert res.exit_code == 0, res.output
    assert re.search(r"^\s+smoothing\s+float\s+0\.1\s+\(undeclared\)", res.output, re.M)
    cls = METHODS.get("plain")
    assert cls.hparam_defaults() == {"smoothing": 0.1, "scope": "all", "anything": None}

    def hp(**sets):
        return recipes.resolve({}, cls.hparams, "official", "paper", sets)[1]

    # checked as before declarations: the default's type, an integer standing for a float; nothing more
    assert hp(smoothing=0) == {"smoothing": 0.0, "scope": "all", "anything": None}
    assert hp(smoothing=7.5)["smoothing"] == 7.5 and hp(scope="whatever")["scope"] == "whatever"
    assert hp(anything=[1, 2])["anything"] == [1, 2]
    with pytest.raises(recipes.RecipeError, match=r"--set smoothing='x': expected a value like 0.1"):
        hp(smoothing="x")
    assert declare(cls.hparams)["smoothing"].problem(99) is None


# --- backbone_modules -----------------------------------------------------------------------------------------

class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))
        self.fc = nn.Linear(4, 2)


class _Toy(Method):
    def build_model(self) -> nn.Module:
        return _Net()

    def training_step(self, batch):  # pragma: no cover - not trained here
        return StepOutput(torch.zeros(()))


def _toy(**attrs) -> Method:
    cls = type("Toy", (_Toy,), attrs)
    ctx = MethodContext(num_classes=2, class_names=("a", "b"), train_labels=torch.zeros(2, dtype=torch.long),
                        device=torch.device("cpu"), recipe={}, epochs=1)
    return cls(ctx, {})


def test_backbones_are_the_declared_modules_never_a_guess() -> None:
    toy = _toy(backbone_modules=("trunk.1", "fc"))
    assert toy.backbones() == [toy.model.trunk[1], toy.model.fc]
    assert _toy(backbone_modules=()).backbones() == []
    with pytest.raises(ValueError, match=r"toy: backbone_modules names 'backbone', which its model \(_Net\) does "
                                         r"not have; set backbone_modules"):
        _toy().backbones()  # the default, ("backbone",), is a declaration too: a model without it says so
    lanet = METHODS.get("lanet")
    assert lanet.backbone_modules == ("encoder.backbone", "encoder.landmark")
    assert all(METHODS.get(m).backbone_modules == ("backbone",) for m in ("baseline", "scn", "rul", "eac"))


def test_every_registered_method_passes_the_registration_checks() -> None:
    for name in list_methods():
        check_method(name, METHODS.get(name))
