"""ELR: the temporal-ensembling target update and the regularised loss on hand-computed numbers, and its
records in a real run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from fer_bench.engine import recipe as recipes
from fer_bench.engine.run import main
from fer_bench.methods import Batch, MethodContext
from fer_bench.methods.elr import clamped_probabilities, elr_regulariser, update_targets_
from fer_bench.registry import METHODS

from .conftest import tiny_spec


def test_target_update_hand_computed() -> None:
    targets = torch.zeros(3, 3)
    p0, p2 = [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]
    rows = update_targets_(targets, torch.tensor([0, 2]), torch.tensor([p0, p2]), beta=0.7)
    # targets start at zero: a first visit leaves (1 - beta) p
    assert rows.flatten().tolist() == pytest.approx([0.15, 0.09, 0.06, 0.03, 0.03, 0.24])
    assert targets[1].tolist() == [0.0, 0.0, 0.0] and torch.equal(targets[[0, 2]], rows)
    # a second visit of sample 0 with p = (0.2, 0.6, 0.2): 0.7 * (0.15, 0.09, 0.06) + 0.3 * (0.2, 0.6, 0.2)
    update_targets_(targets, torch.tensor([0]), torch.tensor([[0.2, 0.6, 0.2]]), beta=0.7)
    assert targets[0].tolist() == pytest.approx([0.165, 0.243, 0.102])
    assert targets[2].tolist() == pytest.approx([0.03, 0.03, 0.24])


def test_the_update_renormalises_the_clamped_prediction() -> None:
    logits = torch.tensor([[0.98, 0.01, 0.01]]).log()
    probs = clamped_probabilities(logits, eps=0.1)  # clamped to (0.9, 0.1, 0.1), not renormalised
    assert probs[0].tolist() == pytest.approx([0.9, 0.1, 0.1])
    targets = torch.zeros(1, 3)
    update_targets_(targets, torch.tensor([0]), probs, beta=0.5)
    # 0.5 * (0.9, 0.1, 0.1) / 1.1
    assert targets[0].tolist() == pytest.approx([0.9 / 2.2, 0.1 / 2.2, 0.1 / 2.2])


def test_regulariser_hand_computed() -> None:
    t = torch.tensor([[0.165, 0.243, 0.102], [0.03, 0.03, 0.24]])
    p = torch.tensor([[0.2, 0.6, 0.2], [0.1, 0.1, 0.8]], requires_grad=True)
    # <t, p> = 0.033 + 0.1458 + 0.0204 = 0.1992 and 0.003 + 0.003 + 0.192 = 0.198
    reg = elr_regulariser(t, p)
    assert reg.item() == pytest.approx((math.log(1 - 0.1992) + math.log(1 - 0.198)) / 2, rel=1e-6)
    reg.backward()
    # d/dp log(1 - <t, p>) / 2 = -t / (2 (1 - <t, p>)): raising p where the target is lowers the loss
    assert p.grad[0].tolist() == pytest.approx((-t[0] / (2 * (1 - 0.1992))).tolist(), rel=1e-5)


class _Fixed(nn.Module):
    """A 'network' that returns the same logits whatever the images."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits


def test_training_step_regularises_towards_the_updated_target() -> None:
    cls = METHODS.get("elr")
    ctx = MethodContext(num_classes=3, class_names=("a", "b", "c"), train_labels=torch.tensor([0, 1, 2, 1]),
                        device=torch.device("cpu"), recipe={"arch": "resnet18", "width": 8, "stem": "small"},
                        epochs=1)
    elr = cls(ctx, {**cls.hparam_defaults(), "beta": 0.5, "lam": 2.0, "eps": 0.0})
    elr.targets[3] = torch.tensor([0.1, 0.3, 0.1])  # sample 3 was seen before
    probs = torch.tensor([[0.2, 0.6, 0.2], [0.5, 0.25, 0.25]])
    elr.model = _Fixed(probs.log())
    labels = torch.tensor([1, 0])
    batch = Batch(images=torch.zeros(2, 3, 8, 8), labels=labels, indices=torch.tensor([3, 0]),
                  raw=torch.zeros(2, 8, 8, 3, dtype=torch.uint8), gen=torch.Generator(),
                  flipped=torch.zeros(2, dtype=torch.bool))
    out = elr.training_step(batch)
    # updated targets: sample 3: 0.5 (0.1, 0.3, 0.1) + 0.5 (0.2, 0.6, 0.2) = (0.15, 0.45, 0.15);
    # sample 0 (first visit): 0.5 (0.5, 0.25, 0.25) = (0.25, 0.125, 0.125)
    assert elr.targets[3].tolist() == pytest.approx([0.15, 0.45, 0.15])
    assert elr.targets[0].tolist() == pytest.approx([0.25, 0.125, 0.125])
    # <t, p>: 0.03 + 0.27 + 0.03 = 0.33 and 0.125 + 0.03125 + 0.03125 = 0.1875
    ce = -(math.log(0.6) + math.log(0.5)) / 2
    reg = (math.log(1 - 0.33) + math.log(1 - 0.1875)) / 2
    assert out.loss.item() == pytest.approx(ce + 2.0 * reg, abs=1e-6)  # float32; a sum near zero
    assert out.logs["elr_reg"].item() == pytest.approx(reg, rel=1e-6)
    # the mechanism: the target's peak per visited sample, and its mass away from the given label
    found = elr.mechanism()
    assert found["target"].valid.tolist() == [True, False, False, True]
    assert found["target"].labels[[0, 3]].tolist() == [0, 1]
    assert found["target_off_label"].scores[[0, 3]].tolist() == pytest.approx([0.5, 1 - 0.45 / 0.75])


def test_beta_keeps_its_value_on_a_short_schedule() -> None:
    """Mapped to 15 epochs (0.7^8), a target would be the current prediction from its first visit on, and the
    regulariser would hold the network to its first epoch's guesses (the module's docstring)."""
    cls = METHODS.get("elr")
    assert cls.hparam_specs()["beta"].unit is None
    _, hp, mapped = recipes.resolve_mapped(cls.recipe, cls.hparams, "official", "paper", {"epochs": 15},
                                           run_values={"noise_rate": 0.3, "asymmetric_noise": False})
    assert hp["beta"] == 0.7 and "beta" not in {m.name for m in mapped}


def test_beta_and_lambda_follow_the_noise_model_as_the_official_configurations_do(
        tiny_synth: Path, tmp_path: Path) -> None:
    """config_cifar10.json (symmetric): beta 0.7, lambda 3; config_cifar10_asym.json: beta 0.9, lambda 1."""
    from fer_bench.engine.spec import resolve
    from fer_bench.methods.card import method_card

    def hp(**kw):
        found = resolve(tiny_spec(tiny_synth, tmp_path, method="elr", **kw)).hparams
        return found["beta"], found["lam"]

    assert hp(noise="sym", rate=0.3) == hp(noise="none") == (0.7, 3.0)
    assert hp(noise="asym", rate=0.3) == (0.9, 1.0)
    assert hp(noise="asym", rate=0.3, overrides={"lam": 2}) == (0.9, 2.0)  # --set wins
    labels = tmp_path / "noisy.txt"
    labels.write_text("")
    with pytest.raises(ValueError, match=r"beta defaults to whether the run's noise model flips other than "
                                         r"uniformly .*give it with --set beta=VALUE"):
        resolve(tiny_spec(tiny_synth, tmp_path, method="elr", noise_file=str(labels)))
    assert resolve(tiny_spec(tiny_synth, tmp_path, method="elr", noise_file=str(labels),
                             overrides={"beta": 0.8, "lam": 2})).hparams["beta"] == 0.8
    card = method_card("elr")
    assert "0.7 (asymmetric_noise false), 0.9 (asymmetric_noise true)" in card


def test_a_default_per_run_value_is_checked_where_it_is_declared() -> None:
    from fer_bench.methods.hparams import HParam, HParamError

    with pytest.raises(HParamError, match=r"the default for asymmetric_noise = True, 1.5, must be a number in "
                                          r"\[0, 1\)"):
        HParam(None, type=float, range="[0, 1)", default_from="asymmetric_noise", by={False: 0.7, True: 1.5})
    with pytest.raises(HParamError, match="name it with default_from="):
        HParam(0.7, range="[0, 1)", by={False: 0.7, True: 0.9})


def test_run_reports_the_target_and_says_when_it_is_off(tiny_synth: Path, tmp_path: Path) -> None:
    res = main(tiny_spec(tiny_synth, tmp_path / "a", method="elr", noise="sym", rate=0.4))
    header = (Path(res["run_dir"]) / "metrics.csv").read_text().splitlines()[0].split(",")
    for name in ("mech_target_clean", "mech_target_noisy", "mech_target_agree", "mech_target_off_label_auroc",
                 "elr_reg"):
        assert name in header
    off = main(tiny_spec(tiny_synth, tmp_path / "b", method="elr", noise="sym", rate=0.4,
                         overrides={"lam": 0.0}))["mechanism_off"]
    assert off == ["early-learning regularisation off (lam = 0): plain cross-entropy"]
