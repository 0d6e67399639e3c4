"""DivideMix on hand-computed cases (the co-divide's mixture, label co-refinement and co-guessing, the MixMatch
losses), its wiring (each network trains on the other's division), the engine's pass over the training set
(``ctx.train_pass``) that the co-divide reads, and a run whose co-divide epoch is killed and resumed."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fer_bench.engine.run as engine
from fer_bench.augment import AugmentConfig, BatchAugment
from fer_bench.engine import recipe as recipes
from fer_bench.engine.inference import TrainPass
from fer_bench.methods.base import Batch, MethodContext
from fer_bench.methods.dividemix import (
    DivideMix, Gaussians, TwinNet, clean_probability, co_guess, co_refine, fit_two_gaussians, linear_ramp, m_step,
    mix_weight, mixup, negative_entropy, normalise_losses, prior_penalty, semi_losses, sharpen, two_means,
)

from .conftest import kill_then_resume, tiny_spec, torch_threads

# --- the co-divide: a two-component Gaussian mixture on normalised losses --------------------------------


def test_co_divide_probabilities_on_a_known_loss_vector() -> None:
    # Losses 0.5 .. 2.5 normalise to [0, .1, .2, .8, .9, 1]. Two-means splits {0, .1, .2} | {.8, .9, 1}: means .1
    # and .9, variances (.01 + 0 + .01) / 3 + 5e-4 (reg_covar) each, weights 1/2. The clusters are so far apart
    # that EM leaves these (responsibilities within 3e-15 of 0 or 1) and stops at its second check. With equal
    # weights and variances the clean probability of x is 1 / (1 + exp(-((x - .9)^2 - (x - .1)^2) / (2 v))):
    # for x = .2, 1 / (1 + exp(-0.48 / (2 v))) = 1 - 2.86e-15; x = .8 mirrors it.
    v = 0.02 / 3 + 5e-4
    tail = math.exp(-0.48 / (2 * v))
    assert tail == pytest.approx(2.86e-15, rel=1e-2)
    losses = torch.tensor([2.3, 0.5, 2.5, 0.9, 2.1, 0.7])  # the order does not matter; the low-loss component is clean
    prob = clean_probability(normalise_losses(losses))
    expected = [tail * math.exp(-0.16 / (2 * v)), 1.0, 0.0, 1 - tail, tail, 1.0]  # x = .9: exponent (.64 - .0) / 2v
    assert prob[[1, 5]].tolist() == [1.0, 1.0] and prob[2] < 1e-20
    assert 1 - prob[3] == pytest.approx(tail, rel=1e-3) and prob[4] == pytest.approx(tail, rel=1e-3)
    assert prob[0] == pytest.approx(expected[0], rel=1e-3)
    # the division: p > p_threshold (0.5) -> the three low losses are labelled
    assert (prob > 0.5).tolist() == [False, True, False, True, False, True]


def test_normalisation_and_an_all_equal_loss_vector() -> None:
    assert normalise_losses(torch.tensor([2.0, 4.0, 6.0])).tolist() == [0.0, 0.5, 1.0]
    # the official code divides by zero here; nothing can be told apart, so every sample counts as clean
    assert normalise_losses(torch.tensor([3.0, 3.0])).tolist() == [0.0, 0.0]
    assert clean_probability(torch.zeros(4)).tolist() == [1.0] * 4


def test_two_means_partition_by_hand() -> None:
    # sorted .1 .15 .5 .9 .95; within sums of squares of the splits after 1, 2, 3, 4 values:
    # .4225, .00125 + .12167, .095 + .00125 (the least), .41188 + 0: .5 joins the low cluster
    assert two_means(np.array([0.9, 0.1, 0.5, 0.15, 0.95])).tolist() == [True, False, False, False, True]


def test_mixture_e_step_by_hand() -> None:
    g = Gaussians(np.array([0.2, 0.7]), np.array([0.01, 0.01]), np.array([0.5, 0.5]))
    log_resp, mean_ll = g.log_resp(np.array([0.45, 0.3]))
    resp = np.exp(log_resp)
    # .45 is half-way: 1/2 each; .3: exponent ((.3 - .7)^2 - (.3 - .2)^2) / (2 * .01) = 7.5
    assert resp[0].tolist() == pytest.approx([0.5, 0.5])
    assert resp[1, 0] == pytest.approx(1 / (1 + math.exp(-7.5)))
    # log-likelihood of .45: both components .25 away, log N(.25; 0, .01) = -log(2 pi .01) / 2 - .0625 / .02
    ll_045 = -0.5 * math.log(2 * math.pi * 0.01) - 3.125
    ll_03 = math.log(0.5 * math.exp(-0.5 * math.log(2 * math.pi * 0.01) - 0.5)
                     + 0.5 * math.exp(-0.5 * math.log(2 * math.pi * 0.01) - 8.0))
    assert mean_ll == pytest.approx((ll_045 + ll_03) / 2)
    unequal = Gaussians(np.array([0.2, 0.7]), np.array([0.01, 0.01]), np.array([0.75, 0.25]))
    assert np.exp(unequal.log_resp(np.array([0.45]))[0])[0, 0] == pytest.approx(0.75)


def test_mixture_m_step_by_hand() -> None:
    # x = 0, 1, 2 with responsibilities (1, 0), (1/2, 1/2), (0, 1): masses 3/2 each, means 1/3 and 5/3,
    # variances (1/9 + 1/2 * 4/9) / (3/2) = 2/9 each, plus reg_covar
    g = m_step(np.array([0.0, 1.0, 2.0]), np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]), reg_covar=5e-4)
    assert g.means.tolist() == pytest.approx([1 / 3, 5 / 3])
    assert g.variances.tolist() == pytest.approx([2 / 9 + 5e-4, 2 / 9 + 5e-4])
    assert g.weights.tolist() == pytest.approx([0.5, 0.5])


def test_a_soft_fit_is_a_fixed_point_of_em() -> None:
    # overlapping clusters: the fit stops where one more EM step moves the mean log-likelihood by less than tol
    x = np.array([0.0, 0.3, 0.45, 0.55, 0.7, 1.0])
    g, resp = fit_two_gaussians(x, max_iter=200, tol=1e-12)
    again = m_step(x, resp, 5e-4)
    assert again.means == pytest.approx(g.means, abs=1e-5) and again.variances == pytest.approx(g.variances, abs=1e-5)
    assert resp[:, int(np.argmin(g.means))][2] == pytest.approx(1 - resp[:, int(np.argmin(g.means))][3], abs=1e-6)


# --- label co-refinement and co-guessing, MixMatch -----------------------------------------------------


def test_label_co_refinement_by_hand() -> None:
    # w = .6 (the other network's clean probability), label 0, the network's two views (.1, .9) and (.3, .7):
    # .6 * (1, 0) + .4 * (.2, .8) = (.68, .32), sharpened with T = 1/2: (.4624, .1024) / .5648
    target = co_refine(torch.tensor([[1.0, 0.0]]), torch.tensor([0.6]), torch.tensor([[0.1, 0.9]]),
                       torch.tensor([[0.3, 0.7]]), T=0.5)
    assert target[0].tolist() == pytest.approx([0.4624 / 0.5648, 0.1024 / 0.5648])
    # a certainly clean label (w = 1) stays the label; w = 0 is the network's own sharpened guess
    assert co_refine(torch.tensor([[1.0, 0.0]]), torch.tensor([1.0]), torch.tensor([[0.1, 0.9]]),
                     torch.tensor([[0.3, 0.7]]), T=0.5)[0].tolist() == pytest.approx([1.0, 0.0])
    assert sharpen(torch.tensor([[0.2, 0.8]]), 0.5)[0].tolist() == pytest.approx([0.04 / 0.68, 0.64 / 0.68])


def test_label_co_guessing_by_hand() -> None:
    # both networks, both views: (.5, .5), (.7, .3), (.8, .2), (.4, .6) average to (.6, .4); sharpened (.36, .16) / .52
    views = [torch.tensor([[0.5, 0.5]]), torch.tensor([[0.7, 0.3]]), torch.tensor([[0.8, 0.2]]),
             torch.tensor([[0.4, 0.6]])]
    assert co_guess(views, T=0.5)[0].tolist() == pytest.approx([0.36 / 0.52, 0.16 / 0.52])
    assert co_guess(views, T=1.0)[0].tolist() == pytest.approx([0.6, 0.4])


def test_mixmatch_losses_by_hand() -> None:
    # labelled row: logits (0, 0) -> (.5, .5) against target (.25, .75): Lx = log 2
    # unlabelled row: logits (log 3, 0) -> (.75, .25) against (.5, .5): Lu = mean(.25^2, .25^2) = .0625
    lx, lu = semi_losses(torch.zeros(1, 2), torch.tensor([[0.25, 0.75]]), torch.tensor([[math.log(3), 0.0]]),
                         torch.tensor([[0.5, 0.5]]))
    assert lx.item() == pytest.approx(math.log(2)) and lu.item() == pytest.approx(0.0625)
    # an empty part gives 0 (a batch with no unlabelled sample)
    assert semi_losses(torch.zeros(1, 2), torch.tensor([[0.25, 0.75]]), torch.zeros(0, 2), torch.zeros(0, 2))[1] == 0
    # the prior penalty: mean prediction (.625, .375) against (1/2, 1/2): (log(.5/.625) + log(.5/.375)) / 2
    penalty = prior_penalty(torch.tensor([[0.0, 0.0], [math.log(3), 0.0]]))
    assert penalty.item() == pytest.approx(0.5 * math.log(0.8) + 0.5 * math.log(0.5 / 0.375))
    assert negative_entropy(torch.zeros(3, 2)).item() == pytest.approx(-math.log(2))
    # the ramp: 2.5 epochs into a 16-epoch ramp after a 10-epoch warm-up
    assert linear_ramp(12.5, 10, 16) == pytest.approx(2.5 / 16)
    assert (linear_ramp(9.9, 10, 16), linear_ramp(26.0, 10, 16), linear_ramp(10.0, 10, 0)) == (0.0, 1.0, 1.0)


def test_mixup_keeps_closer_to_its_own_sample() -> None:
    gen = torch.Generator().manual_seed(0)
    draws = [mix_weight(gen, 4.0) for _ in range(200)]
    assert min(draws) >= 0.5 and max(draws) < 1.0
    assert mix_weight(torch.Generator().manual_seed(3), 4.0) == mix_weight(torch.Generator().manual_seed(3), 4.0)
    inputs, targets = torch.tensor([[0.0], [1.0], [2.0], [4.0]]), torch.eye(4)
    perm = torch.tensor([1, 0, 3, 2])
    mixed, mixed_targets = mixup(inputs, targets, 0.75, perm)
    assert mixed.flatten().tolist() == [0.25, 0.75, 2.5, 3.5]
    assert mixed_targets[0].tolist() == [0.75, 0.25, 0.0, 0.0]
    # Clothing1M mixes only the labelled rows, each with a partner from all rows
    mixed, _ = mixup(inputs, targets, 0.75, torch.tensor([3, 2, 1, 0]), keep=2)
    assert mixed.flatten().tolist() == [1.0, 1.25]


def test_the_prediction_averages_the_two_networks() -> None:
    class Fixed(nn.Module):
        def __init__(self, logits: list[float]) -> None:
            super().__init__()
            self.logits = torch.tensor([logits])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.logits.expand(len(x), -1)

    x = torch.zeros(1, 3, 4, 4)
    both = TwinNet(Fixed([3.0, 0.0, 0.0]), Fixed([0.0, 0.5, 0.0]), combine="logits")
    assert both(x)[0].tolist() == pytest.approx([1.5, 0.25, 0.0])  # Train_cifar.py test(): the sum, halved
    probs = TwinNet(Fixed([3.0, 0.0, 0.0]), Fixed([0.0, 0.5, 0.0]), combine="probs")(x)
    s1 = [math.exp(3) / (math.exp(3) + 2), 1 / (math.exp(3) + 2), 1 / (math.exp(3) + 2)]
    s2 = [1 / (2 + math.exp(0.5)), math.exp(0.5) / (2 + math.exp(0.5)), 1 / (2 + math.exp(0.5))]
    assert probs.exp()[0].tolist() == pytest.approx([(a + b) / 2 for a, b in zip(s1, s2)])


# --- the method: wiring, bad input, what stays off ------------------------------------------------------

N, SIZE = 12, 16


def _method(**hp) -> DivideMix:
    recipe, hparams = recipes.resolve(DivideMix.recipe, DivideMix.hparams, "official", "cpu",
                                      {"image_size": SIZE, "batch_size": 6, "epochs": 4, **hp},
                                      run_values={"noise_rate": 0.2, "asymmetric_noise": False})
    labels = torch.tensor([0, 1, 2] * (N // 3))
    ctx = MethodContext(num_classes=3, class_names=("a", "b", "c"), train_labels=labels, device=torch.device("cpu"),
                        recipe=recipe, epochs=recipe["epochs"])
    torch.manual_seed(0)
    return DivideMix(ctx, hparams)


def test_each_network_trains_on_the_other_networks_division(monkeypatch: pytest.MonkeyPatch) -> None:
    method = _method(warm_up=1)
    raw = torch.randint(0, 256, (N, SIZE, SIZE, 3), dtype=torch.uint8)
    augment = BatchAugment(AugmentConfig(image_size=SIZE))
    method.ctx.train_pass = TrainPass(raw, augment, torch.device("cpu"), batch_size=5, amp=False)
    method.model.train()
    method.on_epoch_start(1)
    # network k's division is its own mixture on its own eval-mode losses over the whole set
    for k, net in enumerate((method.model.net1, method.model.net2)):
        net.eval()
        with torch.no_grad():
            losses = F.cross_entropy(net(augment.eval(raw)), method.ctx.train_labels, reduction="none")
        net.train()
        prob = clean_probability(normalise_losses(losses))
        assert method._prob[k].tolist() == pytest.approx(prob.tolist(), abs=1e-6)
        assert method._labelled[k].tolist() == (prob > 0.5).tolist()
    calls = []
    real = method._mixmatch

    def spy(net, other, batch, view2, w, labelled):
        calls.append((net, other, w, labelled))
        return real(net, other, batch, view2, w, labelled)

    monkeypatch.setattr(method, "_mixmatch", spy)
    idx = torch.tensor([0, 3, 5, 7, 8, 11])
    images = augment(raw[idx], torch.Generator().manual_seed(1)).images
    batch = Batch(images=images, labels=method.ctx.train_labels[idx], indices=idx, raw=raw[idx],
                  gen=torch.Generator().manual_seed(2), flipped=torch.zeros(6, dtype=torch.bool))
    out = method.training_step(batch)
    (n1, o1, w1, l1), (n2, o2, w2, l2) = calls
    assert (n1, o1, n2, o2) == (method.model.net1, method.model.net2, method.model.net2, method.model.net1)
    assert torch.equal(w1, method._prob[1][idx]) and torch.equal(l1, method._labelled[1][idx])
    assert torch.equal(w2, method._prob[0][idx]) and torch.equal(l2, method._labelled[0][idx])
    out.loss.backward()
    for net in (method.model.net1, method.model.net2):
        assert all(p.grad is not None for p in net.parameters())
    assert torch.isfinite(out.loss) and out.logits.shape == (6, 3)
    assert out.logs["lambda_u_weight"].item() == pytest.approx(0.0)  # the first step after the warm-up


def test_bad_hyper_parameters_are_refused_with_their_value() -> None:
    # by --set, when the run's recipe is resolved
    with pytest.raises(ValueError, match=r"--set p_threshold=1.5: must be a number in \[0, 1\]"):
        _method(p_threshold=1.5)
    with pytest.raises(ValueError, match=r"--set mix='?unlabeled'?: must be one of all, labeled"):
        _method(mix="unlabeled")
    with pytest.raises(ValueError, match=r"--set T=0: must be a number in \(0, inf\)"):
        _method(T=0)
    # and by the method itself, whatever builds it
    method = _method()
    hparams = {**DivideMix.hparam_defaults(), "conf_penalty": False, "loss_history": 0}
    with pytest.raises(ValueError, match=r"dividemix: loss_history=0 must be an integer in \[1, inf\)"):
        DivideMix(method.ctx, hparams)


def test_what_stays_off_is_said() -> None:
    assert _method(warm_up=4).mechanism_off({}) == [
        "co-divide and MixMatch never ran: all 4 epochs were warm-up (warm_up = 4)"]
    off = _method(warm_up=1, lambda_u=0.0).mechanism_off({"ramp": 1.0, "noisy_net1_share": 0.0, "noisy_net2_share": 0.3})
    assert any("warm-up takes 25% of training (officially 3%)" in line for line in off)
    assert any("lambda_u = 0" in line for line in off)
    assert any("network 1's co-divide put every sample in the labelled set" in line for line in off)
    assert not any("network 2" in line for line in off)
    ramp = _method(warm_up=1).mechanism_off({"ramp": 0.25})
    assert any("ramp ended at 25% of lambda_u" in line for line in ramp)


def test_the_warm_up_penalty_follows_the_noise_model_as_the_cifar_scripts_argument_does(
        tiny_synth: Path, tmp_path: Path) -> None:
    """Train_cifar.py adds the negative entropy to the warm-up when its noise_mode is asym (l. 132-134)."""
    from fer_bench.engine.spec import resolve

    def penalty(**kw):
        return resolve(tiny_spec(tiny_synth, tmp_path, method="dividemix", **kw)).hparams["conf_penalty"]

    assert penalty(noise="asym", rate=0.2) is True
    assert penalty(noise="sym", rate=0.2) is False and penalty(noise="none") is False
    assert penalty(noise="asym", rate=0.2, overrides={"conf_penalty": False}) is False  # --set wins
    labels = tmp_path / "noisy.txt"
    labels.write_text("")
    with pytest.raises(ValueError, match=r"conf_penalty defaults to whether the run's noise model flips other than "
                                         r"uniformly .*a run on a label file \(--noise-file\) has no noise model: "
                                         r"give it with --set conf_penalty=VALUE"):
        resolve(tiny_spec(tiny_synth, tmp_path, method="dividemix", noise_file=str(labels)))


# --- the engine's pass over the training set -------------------------------------------------------------


def test_the_training_pass_yields_every_training_image_as_evaluation_sees_it() -> None:
    raw = torch.randint(0, 256, (6, 12, 12, 3), dtype=torch.uint8)
    augment = BatchAugment(AugmentConfig(image_size=8, erase=1.0, flip=1.0))  # training draws would erase and flip
    rows = torch.tensor([5, 0, 3])  # training index i is row rows[i] of the cache (a validation split holds 1, 2, 4)
    passing = TrainPass(raw, augment, torch.device("cpu"), batch_size=2, amp=False, rows=rows)
    got = list(passing)
    assert len(passing) == 3 and [i.tolist() for i, _ in got] == [[0, 1], [2]]
    assert all(len(item) == 2 for item in got)  # indices and images: no label
    assert torch.equal(got[0][1], augment.eval(raw[[5, 0]])) and torch.equal(got[1][1], augment.eval(raw[[3]]))
    assert [i.tolist() for i, _ in TrainPass(raw, augment, torch.device("cpu"), 4, False)] == [[0, 1, 2, 3], [4, 5]]


def test_a_run_passes_over_its_training_set_and_resumes_its_co_divide_exactly(
        tiny_synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[int]] = []
    real = DivideMix._training_losses

    def recording(self, net):
        seen.append(torch.cat([i for i, _ in self.ctx.train_pass]).tolist())
        assert len(self.ctx.train_pass) == self.ctx.num_train
        return real(self, net)

    def spec(out: str):
        return tiny_spec(tiny_synth, tmp_path / out, method="dividemix", noise="sym", rate=0.3,
                         overrides={"warm_up": 1})

    with monkeypatch.context() as patched:
        patched.setattr(DivideMix, "_training_losses", recording)
        with torch_threads(2):
            full = engine.main(spec("a"))
    # the second epoch divided the set: each network passed over every training image once, in order
    assert len(seen) == 2 and all(s == list(range(len(s))) for s in seen)
    with open(Path(full["run_dir"]) / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["mech_noisy_net1_precision"] == "" and rows[0]["mech_ramp"] == "0.0"
    for k in (1, 2):
        assert 0 <= float(rows[1][f"mech_noisy_net{k}_share"]) <= 1
        assert 0 <= float(rows[1][f"mech_p_noisy_net{k}_auroc"]) <= 1
    assert float(rows[1]["loss_x"]) > 0 and "lambda_u_weight" in rows[1]
    assert any("warm-up takes 50% of training" in line for line in full["mechanism_off"])

    # killed in the middle of the co-divide epoch and run again: the same numbers to the last bit
    with torch_threads(2):
        resumed = kill_then_resume(spec("b"))

    def numbers(result: dict) -> list[dict[str, str]]:
        with open(Path(result["run_dir"]) / "metrics.csv") as f:
            return [{k: v for k, v in r.items() if k not in ("train_seconds", "images_per_s")}
                    for r in csv.DictReader(f)]

    assert numbers(resumed) == numbers(full) and resumed["acc_last"] == full["acc_last"]
