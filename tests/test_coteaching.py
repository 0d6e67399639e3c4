"""Co-teaching: the small-loss exchange and the forget-rate ramp on hand-computed numbers, the run-derived
default of its forget rate (the generic ``HParam(default_from=...)``), and its records in a real run."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from click.testing import CliRunner

from fer_bench.cli import main as cli_main
from fer_bench.engine import recipe as recipes
from fer_bench.engine.optim import build_optimizer, build_scheduler
from fer_bench.engine.run import main
from fer_bench.engine.spec import resolve
from fer_bench.methods import MethodContext
from fer_bench.methods.coteaching import coteaching_losses, forget_rate_at, kept_count
from fer_bench.methods.hparams import HParam, HParamError, check_values, run_defaults
from fer_bench.registry import METHODS

from .conftest import tiny_spec

# Per-sample cross-entropies of the two networks on a batch of ten (label 0 of two classes; logits
# log(p), log(1 - p) with p = exp(-loss) give exactly these losses).
LOSS_1 = [0.9, 0.1, 0.5, 2.0, 0.3, 1.2, 0.05, 0.7, 3.0, 0.2]
LOSS_2 = [0.4, 2.5, 0.15, 0.6, 1.1, 0.35, 0.8, 1.9, 0.25, 0.05]


def _logits(losses: list[float]) -> torch.Tensor:
    p = torch.exp(-torch.tensor(losses, dtype=torch.float64))
    return torch.stack([p.log(), (1 - p).log()], dim=1).float().requires_grad_()


# --- the small-loss exchange ---------------------------------------------------------------------


def test_selected_indices_and_losses_for_known_losses() -> None:
    logits1, logits2, labels = _logits(LOSS_1), _logits(LOSS_2), torch.zeros(10, dtype=torch.long)
    ex = coteaching_losses(logits1, logits2, labels, forget_rate=0.3)
    # int((1 - 0.3) * 10) = 7 kept, smallest loss first; network 1 drops 5, 3, 8 and network 2 drops 4, 7, 1
    assert ex.kept1.tolist() == [6, 1, 9, 4, 2, 7, 0]
    assert ex.kept2.tolist() == [9, 2, 8, 5, 0, 3, 6]
    # each network learns from its peer's selection: network 1 on {9, 2, 8, 5, 0, 3, 6}:
    # (0.2 + 0.5 + 3.0 + 1.2 + 0.9 + 2.0 + 0.05) / 7 = 7.85 / 7, and the code divides by the 7 kept once more
    assert ex.loss1.item() == pytest.approx(7.85 / 7 / 7, rel=1e-6)
    # network 2 on {6, 1, 9, 4, 2, 7, 0}: (0.8 + 2.5 + 0.05 + 1.1 + 0.15 + 1.9 + 0.4) / 7 = 6.9 / 7
    assert ex.loss2.item() == pytest.approx(6.9 / 7 / 7, rel=1e-6)
    mean = coteaching_losses(logits1, logits2, labels, forget_rate=0.3, loss_scale="mean")
    assert (mean.loss1.item(), mean.loss2.item()) == pytest.approx((7.85 / 7, 6.9 / 7), rel=1e-6)
    # the gradient reaches each network's logits only at the samples its peer kept
    (ex.loss1 + ex.loss2).backward()
    assert torch.nonzero(logits1.grad.abs().sum(1)).flatten().tolist() == [0, 2, 3, 5, 6, 8, 9]
    assert torch.nonzero(logits2.grad.abs().sum(1)).flatten().tolist() == [0, 1, 2, 4, 6, 7, 9]


def test_forget_rate_zero_keeps_every_sample_and_ties_keep_the_lower_index() -> None:
    labels = torch.zeros(10, dtype=torch.long)
    ex = coteaching_losses(_logits(LOSS_1), _logits(LOSS_2), labels, forget_rate=0.0)
    assert sorted(ex.kept1.tolist()) == list(range(10)) and sorted(ex.kept2.tolist()) == list(range(10))
    assert ex.loss1.item() == pytest.approx(sum(LOSS_1) / 10 / 10, rel=1e-6)
    tied = coteaching_losses(_logits([0.5] * 4), _logits([0.5] * 4), labels[:4], forget_rate=0.5)
    assert tied.kept1.tolist() == [0, 1] and tied.kept2.tolist() == [0, 1]


def test_kept_count_is_the_codes_and_at_least_one() -> None:
    assert kept_count(10, 0.3) == 7  # int(7.000000000000001)
    assert kept_count(128, 0.2) == int((1 - 0.2) * 128) == 102
    assert kept_count(128, 0.45) == 70  # int(70.39999999999999)
    assert kept_count(2, 0.9) == 1  # the code's int(0.2) = 0 would divide by zero


# --- the forget-rate ramp --------------------------------------------------------------------------


def test_forget_rate_ramp_hand_computed() -> None:
    # code: linspace(0, 0.2, 5) = [0, .05, .1, .15, .2], training epochs 1, 2, ... take entries 1, 2, ...
    assert [forget_rate_at(e, 0.2, 5) for e in range(1, 7)] == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.2, 0.2])
    # with c = 2 the code ramps to tau^2 = 0.04 and jumps to tau at T_k
    assert [forget_rate_at(e, 0.2, 5, 2.0) for e in range(1, 6)] == pytest.approx([0.01, 0.02, 0.03, 0.04, 0.2])
    # paper (Algorithm 1): nothing dropped in epoch 1, then tau * (e - 1) / T_k up to tau
    assert [forget_rate_at(e, 0.2, 5, ramp="paper") for e in range(1, 8)] == pytest.approx(
        [0.0, 0.04, 0.08, 0.12, 0.16, 0.2, 0.2])
    # T_k = 1 (a ramp mapped to a short run): the whole rate from the first epoch
    assert forget_rate_at(1, 0.3, 1) == 0.3
    with pytest.raises(ValueError, match="1-based"):
        forget_rate_at(0, 0.2, 5)


def test_forget_rate_ramp_is_the_official_schedule_bit_for_bit() -> None:
    # main.py: rate_schedule = ones(n_epoch) * tau; rate_schedule[:T_k] = linspace(0, tau ** c, T_k); the
    # training loop runs epochs 1 .. n_epoch - 1 with rate_schedule[epoch]
    for tau, tk, c in ((0.2, 10, 1.0), (0.45, 10, 1.0), (0.5, 5, 2.0), (0.3, 15, 0.5)):
        schedule = np.ones(200) * tau
        schedule[:tk] = np.linspace(0, tau ** c, tk)
        assert [forget_rate_at(e, tau, tk, c) for e in range(1, 200)] == schedule[1:].tolist()


def test_ramp_is_declared_in_epochs_and_maps_to_a_short_schedule() -> None:
    cls = METHODS.get("coteaching")
    assert cls.hparam_specs()["num_gradual"].unit == "epochs"
    _, hp, mapped = recipes.resolve_mapped(cls.recipe, cls.hparams, "official", "paper", {"epochs": 60},
                                           run_values={"noise_rate": 0.2})
    # 10 of 199 epochs -> 3 of 60; the lr decay's start, epoch 80 of 199 -> 1 + round(79 * 60 / 199) = 25
    assert hp["num_gradual"] == 3 and [m.name for m in mapped] == ["num_gradual", "decay_start"]


def test_official_recipe_gives_the_official_lr_and_beta1_epoch_by_epoch() -> None:
    # main.py: alpha_plan[e] = lr for e < 80, else (200 - e) / (200 - 80) * lr; beta1_plan[e] = 0.9, else 0.1;
    # adjust_learning_rate(optimizer, epoch) before training epoch e = 1 .. 199
    cls = METHODS.get("coteaching")
    recipe, _ = recipes.resolve(cls.recipe, cls.hparams, "official", "paper", {})
    steps = 3
    optimizer = build_optimizer([{"params": [torch.nn.Parameter(torch.zeros(2))]}], recipe)
    scheduler = build_scheduler(optimizer, recipe, steps)
    seen = []
    for _ in range(recipe["epochs"]):
        epoch = []
        for _ in range(steps):
            group = optimizer.param_groups[0]
            epoch.append((group["lr"], group["betas"]))
            optimizer.step()
            scheduler.step()
        assert len(set(epoch)) == 1  # one lr and one beta1 through an epoch
        seen.append(epoch[0])
    plan = [(1e-3 if e < 80 else (200 - e) / 120 * 1e-3, (0.9 if e < 80 else 0.1, 0.999)) for e in range(1, 200)]
    assert [b for _, b in seen] == [b for _, b in plan]
    assert [lr for lr, _ in seen] == pytest.approx([lr for lr, _ in plan], rel=1e-12)
    assert seen[78][0] == 1e-3 and seen[79][0] == pytest.approx(1e-3) and seen[-1][0] == pytest.approx(1e-3 / 120)


def test_a_run_on_the_official_schedule_records_its_lr_and_resumes_to_the_same_numbers(
        tiny_synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from .conftest import interrupt_then_resume

    schedule = {"schedule": "delayed_linear", "decay_start": 2, "decay_beta1": 0.1, "epochs": 3}
    straight = main(tiny_spec(tiny_synth, tmp_path / "a", method="coteaching", noise="sym", rate=0.2,
                              overrides=schedule))
    resumed = interrupt_then_resume(tiny_spec(tiny_synth, tmp_path / "b", method="coteaching", noise="sym",
                                              rate=0.2, overrides=schedule), monkeypatch, epoch=2)
    def curves(result: dict) -> list[tuple[float, ...]]:
        with open(Path(result["run_dir"]) / "metrics.csv") as f:
            return [(float(r["lr"]), float(r["train_loss"]), float(r["test_acc"])) for r in csv.DictReader(f)]

    assert [lr for lr, _, _ in curves(straight)] == pytest.approx([0.002, 0.002, 0.001])  # then (4 - e) / (4 - 2)
    assert curves(resumed) == curves(straight) and resumed["acc_last"] == straight["acc_last"]


def test_a_profile_replaces_the_decay_with_its_own_schedule() -> None:
    cls = METHODS.get("coteaching")
    recipe, _ = recipes.resolve(cls.recipe, cls.hparams, "official", "cpu-face-56", {})
    assert recipe["schedule"] == "cosine" and "decay_start" not in recipe and "decay_beta1" not in recipe
    card = CliRunner().invoke(cli_main, ["methods", "show", "coteaching"]).output
    assert "schedule=cosine (without decay_start, decay_beta1)" in " ".join(card.split())


# --- the forget rate's default: the run's nominal noise rate ----------------------------------------


def test_forget_rate_defaults_to_the_runs_nominal_rate(tiny_synth: Path, tmp_path: Path) -> None:
    def hp(**kw):
        return resolve(tiny_spec(tiny_synth, tmp_path, method="coteaching", **kw)).hparams

    assert hp(noise="sym", rate=0.3)["forget_rate"] == 0.3
    assert hp(noise="asym", rate=0.2, exact=True)["forget_rate"] == 0.2
    assert hp(noise="none")["forget_rate"] == 0.0
    assert hp(noise="sym", rate=0.3, overrides={"forget_rate": 0.1})["forget_rate"] == 0.1  # --set wins
    assert isinstance(hp(noise="sym", rate=0.3, overrides={"forget_rate": 0})["forget_rate"], float)


def test_a_label_file_run_must_set_the_forget_rate(tiny_synth: Path, tmp_path: Path) -> None:
    labels = tmp_path / "noisy.txt"
    labels.write_text("")  # (resolve only checks that it exists)
    spec = tiny_spec(tiny_synth, tmp_path, method="coteaching", noise_file=str(labels))
    with pytest.raises(ValueError, match=r"forget_rate defaults to the run's nominal noise rate .*a run on a label "
                                         r"file \(--noise-file\) has no nominal noise rate: give it with "
                                         r"--set forget_rate=VALUE \(a number in \[0, 1\)\)"):
        resolve(spec)
    spec.overrides["forget_rate"] = 0.25
    assert resolve(spec).hparams["forget_rate"] == 0.25
    # a method whose hyper-parameters take nothing from the run does not care
    assert resolve(tiny_spec(tiny_synth, tmp_path, method="baseline", noise_file=str(labels))).hparams == {}


def test_a_nominal_rate_outside_the_range_is_refused() -> None:
    specs = {"tau": HParam(None, type=float, range="[0, 0.5]", default_from="noise_rate", help="h")}
    hparams = {"tau": None}
    with pytest.raises(ValueError, match=r"tau defaults to the run's nominal noise rate .*, 0.6 in this run, which "
                                         r"must be a number in \[0, 0.5\]: give another with --set tau=VALUE"):
        run_defaults(specs, hparams, {"noise_rate": 0.6})
    run_defaults(specs, hparams, {"noise_rate": 0.4})
    assert hparams == {"tau": 0.4}


def test_run_derived_declarations_are_checked() -> None:
    with pytest.raises(HParamError, match="not a run value; known: noise_rate"):
        HParam(None, type=float, default_from="realised_rate")
    with pytest.raises(HParamError, match="has none of its own: declare it as None"):
        HParam(0.2, default_from="noise_rate")
    with pytest.raises(HParamError, match="give type="):
        HParam(None, default_from="noise_rate")
    spec = HParam(None, type=float, range="[0, 1)", default_from="noise_rate")
    assert spec.problem(None) is not None  # `--set forget_rate=none` is no value
    with pytest.raises(ValueError, match="must be a number"):
        spec.convert(None)


def test_without_the_runs_values_the_default_stays_a_placeholder() -> None:
    cls = METHODS.get("coteaching")
    # a method's card and a report's defaults resolve without a run: the placeholder, refused when built
    _, hp = recipes.resolve(cls.recipe, cls.hparams, "official", "cpu", {})
    assert hp["forget_rate"] is None
    with pytest.raises(ValueError, match=r"coteaching: forget_rate defaults to the run's nominal noise rate .*which "
                                         r"it was not given"):
        check_values("coteaching", cls.hparam_specs(), hp)
    ctx = MethodContext(num_classes=2, class_names=("a", "b"), train_labels=torch.zeros(4, dtype=torch.long),
                        device=torch.device("cpu"), recipe={"arch": "resnet18", "width": 8, "stem": "small"},
                        epochs=1)
    with pytest.raises(ValueError, match="forget_rate defaults to"):
        cls(ctx, hp)
    assert recipes.resolve(cls.recipe, cls.hparams, "official", "cpu", {}, run_values={"noise_rate": 0.4})[1][
        "forget_rate"] == 0.4


# --- in a run ---------------------------------------------------------------------------------------


def test_run_records_the_forget_rate_and_scores_the_selection(tiny_synth: Path, tmp_path: Path) -> None:
    res = main(tiny_spec(tiny_synth, tmp_path, method="coteaching", noise="sym", rate=0.4,
                         overrides={"num_gradual": 1}))
    run_dir = Path(res["run_dir"])
    assert json.loads((run_dir / "config.json").read_text())["hparams"]["forget_rate"] == 0.4
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    row = dict(zip(lines[0].split(","), lines[1].split(",")))  # the first epoch: every visited sample once
    assert float(row["mech_forget_rate"]) == pytest.approx(0.4)
    # batches of 32 keep int(0.6 * 32) = 19: 13 of each batch's 32 are dropped
    assert float(row["mech_dropped_1_share"]) == float(row["mech_dropped_2_share"]) == 13 / 32
    for name in ("mech_dropped_1_precision", "mech_dropped_2_recall", "mech_loss_1_auroc"):
        assert 0.0 <= float(row[name]) <= 1.0
    # the official ramp, 10 of 199 epochs, maps to 1 of 2: the whole rate from the first epoch, which the run says
    assert res["mechanism_off"] == ["no ramp: the forget rate is 0.4 from the first epoch (officially it rises over "
                                    "epochs 1-8 of 199 and is full from epoch 9); num_gradual 1 of 2 epochs"]


def test_mechanism_off_says_what_stayed_off(tiny_synth: Path, tmp_path: Path) -> None:
    clean = main(tiny_spec(tiny_synth, tmp_path / "a", method="coteaching", noise="none"))
    assert any("small-loss selection off (forget_rate = 0)" in line for line in clean["mechanism_off"])
    # the official ramp of 10 epochs, kept as declared (not mapped), in a 2-epoch run never reaches the forget rate
    late = main(tiny_spec(tiny_synth, tmp_path / "b", method="coteaching", noise="sym", rate=0.3,
                          overrides={"time_constants": "fixed"}))
    assert any("never reaches 0.3" in line for line in late["mechanism_off"])
    ramped = main(tiny_spec(tiny_synth, tmp_path / "c", method="coteaching", noise="sym", rate=0.3,
                            overrides={"num_gradual": 3, "epochs": 3}))  # 0.15 in epoch 1, 0.3 from epoch 2
    assert not any("no ramp" in line for line in ramped["mechanism_off"])  # (it is late instead: 33% of 3 epochs)
    assert not math.isnan(late["acc_last"])
