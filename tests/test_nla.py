"""NLA: the NAW weights, the consistency term and the sigma scheduler on hand-computed cases, and a run.

The expected numbers are worked out by hand in the comments, through the densities' principal axes
(a route independent of the code's inverse-covariance form): with ``a = std_major`` and ``b = a / ratio``,
the covariance ``[[a^2 + b^2, ±(a^2 - b^2)], ...]`` has variance ``2a^2`` along its long axis and ``2b^2``
across it, so ``d^T S^-1 d = (d . u_long)^2 / 2a^2 + (d . u_short)^2 / 2b^2`` and the density's peak is
``1 / (2 pi sqrt(2a^2 * 2b^2)) = 1 / (4 pi a b)``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from fer_bench.engine import recipe as recipes
from fer_bench.engine.build import augment_config
from fer_bench.engine.distributed import SINGLE, World
from fer_bench.engine.run import main
from fer_bench.methods.base import Batch, MethodContext
from fer_bench.methods.nla import (NLA, Gaussian, consistency, covariance, label_and_nearest_negative, naw_weights,
                                   sigma_eps)

from .conftest import tiny_spec

SIZE = 16

# The official densities (main_rafdb.py's defaults), with the first one's correlation fully open (eps = 1).
# Label ranked first: a = 0.8, b = 0.4, centre (0.5, 0.5), long axis along (1, -1); peak 1 / (4 pi 0.32).
TRUE_PEAK = 1 / (2 * math.pi * 0.64)       # 0.248680
# Label not ranked first: a = 0.91, b = 0.91 / 6, centre (0.30, 0.15), long axis along (1, 1).
FALSE_PEAK = 1 / (4 * math.pi * 0.91 * 0.91 / 6)  # 0.576579


def official_gaussians(eps: float = 1.0) -> tuple[Gaussian, Gaussian]:
    t_var, t_cov = covariance(0.8, 2.0, -1.0)
    f_var, f_cov = covariance(0.91, 6.0, 1.0)
    return Gaussian(0.5, 0.5, t_var, eps * t_cov), Gaussian(0.30, 0.15, f_var, f_cov)


def make_method(num_classes: int = 3, epochs: int = 60, world: World = SINGLE, **hp) -> NLA:
    torch.manual_seed(0)
    recipe = {"arch": "resnet18", "width": 8, "stem": "small", "image_size": SIZE}
    ctx = MethodContext(num_classes=num_classes, class_names=tuple(f"c{k}" for k in range(num_classes)),
                        train_labels=torch.arange(8) % num_classes, device=torch.device("cpu"), recipe=recipe,
                        epochs=epochs, world=world)
    hparams = NLA.hparam_defaults()
    hparams.update(hp)
    return NLA(ctx, hparams)


def logits_of(*rows: list[float]) -> torch.Tensor:
    """Logits whose softmax is each row (a row of probabilities)."""
    return torch.tensor(rows, dtype=torch.float64).log()


# --- NAW --------------------------------------------------------------------------------


def test_the_covariances_are_built_as_the_official_train_py_builds_them() -> None:
    # src/train.py: t_major = a^2 + (a/r)^2, t_minor = -a^2 + (a/r)^2, f_minor = a^2 - (a/r)^2
    assert covariance(0.8, 2.0, -1.0) == pytest.approx((0.64 + 0.16, -0.64 + 0.16))
    assert covariance(0.91, 6.0, 1.0) == pytest.approx((0.8281 + 0.8281 / 36, 0.8281 - 0.8281 / 36))


def test_naw_weights_for_a_known_score_pair() -> None:
    true, false = official_gaussians(eps=1.0)
    p_gt = torch.tensor([0.9, 0.6, 0.2, 0.05])
    p_nn = torch.tensor([0.1, 0.2, 0.6, 0.90])
    on_top = torch.tensor([True, True, False, False])
    w = naw_weights(p_gt, p_nn, on_top, true, false)
    expected = [
        # (0.9, 0.1): d = (0.4, -0.4), all on the long axis: 0.32 / 1.28 = 0.25 -> peak * e^-0.125
        TRUE_PEAK * math.exp(-0.125),                               # 0.219459
        # (0.6, 0.2): d = (0.1, -0.3): long 0.4^2/2 / 1.28 = 0.0625, short 0.2^2/2 / 0.32 = 0.0625 -> e^-0.0625
        TRUE_PEAK * math.exp(-0.0625),                              # 0.233613
        # (0.2, 0.6), label beaten: d = (-0.1, 0.45): long 0.35^2/2 / 1.6562 = 0.036982,
        # short 0.55^2/2 / 0.0460056 = 3.287647 -> e^-(3.324629 / 2)
        FALSE_PEAK * math.exp(-0.5 * (0.06125 / 1.6562 + 0.15125 / (2 * (0.91 / 6) ** 2))),  # 0.109377
        # (0.05, 0.9), label confidently contradicted: d = (-0.25, 0.75): long 0.125 / 1.6562, short 0.5 / 0.0460056
        FALSE_PEAK * math.exp(-0.5 * (0.125 / 1.6562 + 0.5 / (2 * (0.91 / 6) ** 2))),       # 0.002424
    ]
    assert w.tolist() == pytest.approx(expected, rel=1e-5)
    assert w.tolist() == pytest.approx([0.219459, 0.233613, 0.109377, 0.002424], abs=2e-6)
    # an ambiguous fitted label weighs more than a confident one; a confidently contradicted label almost nothing
    assert w[1] > w[0] and w[2] > 40 * w[3]


def test_the_first_epoch_density_is_isotropic_and_t_lambda_scales_it() -> None:
    true, false = official_gaussians(eps=0.0)
    # variance a^2 + b^2 = 0.8 in every direction: d = (0.4, -0.4) -> 0.32 / 0.8 = 0.4; peak 1 / (2 pi 0.8)
    w = naw_weights(torch.tensor([0.9]), torch.tensor([0.1]), torch.tensor([True]), true, false)
    assert w.item() == pytest.approx(math.exp(-0.2) / (2 * math.pi * 0.8), rel=1e-6)  # 0.162881
    doubled = Gaussian(true.mx, true.my, true.var, true.cov, scale=2.0)
    assert naw_weights(torch.tensor([0.9, 0.2]), torch.tensor([0.1, 0.6]), torch.tensor([True, False]),
                       doubled, false).tolist() == pytest.approx([2 * w.item(), 0.109377], abs=2e-6)


def test_label_and_nearest_negative() -> None:
    logits = logits_of([0.2, 0.6, 0.15, 0.05], [0.2, 0.6, 0.15, 0.05], [0.2, 0.6, 0.15, 0.05], [0.4, 0.4, 0.1, 0.1])
    p_gt, p_nn, on_top = label_and_nearest_negative(logits, torch.tensor([0, 1, 3, 1]))
    assert p_gt.tolist() == pytest.approx([0.2, 0.6, 0.05, 0.4])
    assert p_nn.tolist() == pytest.approx([0.6, 0.2, 0.6, 0.4])  # a tie with the label: the label counts as first
    assert on_top.tolist() == [False, True, False, True]


def test_pairwise_form_is_the_mean_column_of_the_old_code_s_matrix() -> None:
    true, false = official_gaussians(eps=1.0)
    p_gt, p_nn = torch.tensor([0.9, 0.2, 0.5]), torch.tensor([0.1, 0.6, 0.3])
    on_top = torch.tensor([True, False, True])
    # one sample: d^T S^-1 d is the per-sample form
    assert naw_weights(p_gt[:1], p_nn[:1], on_top[:1], true, false, "pairwise").item() == \
        pytest.approx(naw_weights(p_gt[:1], p_nn[:1], on_top[:1], true, false).item(), rel=1e-6)
    # the code before b86f31f: exp(-diff.t() @ inv(S) @ diff / 2) is (N, N); where(on_top) broadcasts over
    # columns; (ce * value).mean() weighs ce_j by the mean of column j
    expected = []
    for j in range(3):
        g = true if on_top[j] else false
        inv = torch.linalg.inv(torch.tensor([[g.var, g.cov], [g.cov, g.var]], dtype=torch.float64))
        d = torch.stack([p_gt - g.mx, p_nn - g.my]).double()
        column = g.scale / (2 * math.pi * math.sqrt(g.det)) * torch.exp(-0.5 * (d.t() @ inv @ d[:, j]))
        expected.append(column.mean().item())
    assert naw_weights(p_gt, p_nn, on_top, true, false, "pairwise").tolist() == pytest.approx(expected, rel=1e-5)
    assert naw_weights(p_gt, p_nn, on_top, true, false, "pairwise").tolist() != \
        pytest.approx(naw_weights(p_gt, p_nn, on_top, true, false).tolist(), rel=1e-3)


def test_a_covariance_that_is_not_positive_definite_is_refused() -> None:
    with pytest.raises(ValueError, match="not positive definite"):
        Gaussian(0.5, 0.5, 0.5, 0.5)


# --- consistency ------------------------------------------------------------------------


def test_consistency_on_a_hand_computed_pair() -> None:
    a = torch.tensor([[0.0, 0.0]])            # p = (1/2, 1/2)
    b = torch.tensor([[math.log(3.0), 0.0]])  # q = (3/4, 1/4)
    # code: m = (ln 3 / 2, 0), s(m) = (sqrt3, 1) / (sqrt3 + 1) = (0.633975, 0.366025);
    # 1/2 [KL(s(m) || p) + KL(s(m) || q)] = 1/2 [0.036341 + 0.032996]
    s = (math.sqrt(3) / (math.sqrt(3) + 1), 1 / (math.sqrt(3) + 1))
    kl_p = s[0] * math.log(s[0] / 0.5) + s[1] * math.log(s[1] / 0.5)
    kl_q = s[0] * math.log(s[0] / 0.75) + s[1] * math.log(s[1] / 0.25)
    assert consistency(a, b, "logit_mean").item() == pytest.approx(0.5 * (kl_p + kl_q), rel=1e-5)
    assert consistency(a, b, "logit_mean").item() == pytest.approx(0.034668, abs=1e-6)
    # textbook: M = (5/8, 3/8); 1/2 [KL(p || M) + KL(q || M)]
    kl_pm = 0.5 * math.log(0.5 / 0.625) + 0.5 * math.log(0.5 / 0.375)
    kl_qm = 0.75 * math.log(0.75 / 0.625) + 0.25 * math.log(0.25 / 0.375)
    assert consistency(a, b, "mixture").item() == pytest.approx(0.5 * (kl_pm + kl_qm), rel=1e-5)  # 0.033822
    for form in ("logit_mean", "mixture"):
        assert consistency(b, a, form).item() == pytest.approx(consistency(a, b, form).item(), rel=1e-6)
        assert consistency(a, a, form).item() == pytest.approx(0.0, abs=1e-7)


def test_the_loss_on_a_hand_computed_batch_and_its_reductions() -> None:
    method = make_method(sigma_scheduler=False)  # eps = 1
    logits = logits_of([0.6, 0.2, 0.2], [0.2, 0.6, 0.2]).float()
    labels = torch.tensor([0, 0])
    t = method.loss_terms(logits, logits.clone(), labels)  # the mirror agrees: no consistency
    # ce = (-ln 0.6, -ln 0.2); w = (0.233613, 0.109377) (test_naw_weights_for_a_known_score_pair)
    ce = (-math.log(0.6), -math.log(0.2))
    w = (TRUE_PEAK * math.exp(-0.0625), 0.109377)
    assert t["weight"].tolist() == pytest.approx(w, abs=2e-6)
    assert t["loss"].item() == pytest.approx(0.5 * sum(ce) / 2 + 0.5 * (ce[0] * w[0] + ce[1] * w[1]) / 2, rel=1e-5)
    assert t["loss"].item() == pytest.approx(0.603908, abs=2e-6)

    mirror = torch.stack([logits[0], logits[0]])  # the second sample's mirror disagrees
    per_sample = consistency(logits, mirror)
    assert per_sample[0].item() == pytest.approx(0.0, abs=1e-7) and per_sample[1].item() > 0
    summed = method.loss_terms(logits, mirror, labels)
    assert summed["consistency"].item() == pytest.approx(per_sample.sum().item(), rel=1e-6)  # the code's sum
    assert summed["loss"].item() == pytest.approx(t["loss"].item() + 0.5 * per_sample.sum().item(), rel=1e-6)
    mean = make_method(sigma_scheduler=False, jsd_reduction="mean").loss_terms(logits, mirror, labels)
    assert mean["consistency"].item() == pytest.approx(per_sample.mean().item(), rel=1e-6)
    # two processes each summing their half: x2, so that DDP's averaged gradients are those of the whole sum
    ranks = make_method(sigma_scheduler=False, world=World(0, 2)).loss_terms(logits, mirror, labels)
    assert ranks["consistency"].item() == pytest.approx(2 * per_sample.sum().item(), rel=1e-6)


def test_weight_grad_switch() -> None:
    logits = logits_of([0.6, 0.2, 0.2], [0.2, 0.6, 0.2]).float()
    labels = torch.tensor([0, 0])
    grads = {}
    for flows in (True, False):
        x = logits.clone().requires_grad_()
        t = make_method(sigma_scheduler=False, lam_c=0.0, weight_grad=flows).loss_terms(x, x.detach(), labels)
        grads[flows] = torch.autograd.grad(t["loss"], x)[0]
    # a detached weight: d/dz [(lam_a + lam_b w_i) ce_i / B] = (lam_a + lam_b w_i) (softmax - onehot) / B
    w = torch.tensor([TRUE_PEAK * math.exp(-0.0625), 0.109377])
    analytic = (0.5 + 0.5 * w)[:, None] * (torch.softmax(logits, 1) - F.one_hot(labels, 3)) / 2
    assert torch.allclose(grads[False], analytic, atol=1e-6)
    assert not torch.allclose(grads[True], grads[False], atol=1e-4)  # the code's weight carries gradient


# --- sigma scheduler --------------------------------------------------------------------


def test_sigma_scheduler() -> None:
    assert sigma_eps(0, 60, -15.0) == 0.0                                    # the first epoch: isotropic
    assert sigma_eps(4, 60, -15.0) == pytest.approx(1 - math.exp(-1.0))      # 0.632121
    assert sigma_eps(0, 60, -15.0, on=False) == 1.0                          # sch_bool false
    # a fraction of the run: epoch 3 of 15 is epoch 12 of 60
    assert sigma_eps(3, 15, -15.0) == pytest.approx(sigma_eps(12, 60, -15.0))
    method = make_method()
    assert method.true_gaussian().cov == 0.0
    method.on_epoch_start(4)
    assert method.true_gaussian().cov == pytest.approx((1 - math.exp(-1.0)) * (-0.48))
    assert method.mechanism()["sigma_eps"] == pytest.approx(0.632121, abs=1e-6)


# --- recipe, switches, step, mechanism --------------------------------------------------


def test_official_recipe() -> None:
    recipe, hp = recipes.resolve(NLA.recipe, NLA.hparams, "official", "paper", {})
    assert {k: recipe[k] for k in ("optimizer", "lr", "weight_decay", "schedule", "gamma", "epochs", "batch_size",
                                   "image_size")} == {"optimizer": "adam", "lr": 1e-4, "weight_decay": 1e-4,
                                                      "schedule": "exponential", "gamma": 0.9, "epochs": 60,
                                                      "batch_size": 32, "image_size": 224}
    cfg = augment_config(recipe)
    assert (cfg.flip, cfg.erase, cfg.erase_scale, cfg.noise, cfg.noise_var, cfg.flip_or_noise) == \
        (0.5, 0.5, (0.02, 0.3), 0.5, 30.0, False)
    assert (cfg.mean, cfg.std) == ((0.577, 0.4494, 0.4001), (0.2628, 0.2395, 0.2383))
    assert (hp["lam_a"], hp["lam_b"], hp["lam_c"], hp["slope"]) == (0.5, 0.5, 0.5, -15.0)
    # the scheduler is a fraction of the run: nothing to map on a shorter schedule
    assert recipes.resolve_mapped(NLA.recipe, NLA.hparams, "official", "cpu-face", {})[2] == []


@pytest.mark.parametrize("key, value, message", [
    ("slope", 1.0, "slope=1.0"), ("naw_form", "both", "naw_form='both'"), ("t_std_ratio", 0, "t_std_ratio=0"),
    ("lam_c", -0.5, "lam_c=-0.5"),
])
def test_bad_values_are_refused_by_name(key: str, value, message: str) -> None:
    with pytest.raises(recipes.RecipeError, match=message.replace("(", r"\(")):
        recipes.resolve(NLA.recipe, NLA.hparams, "official", "paper", {key: value})
    with pytest.raises(ValueError, match=key):
        make_method(**{key: value})


def test_the_second_view_is_the_augmented_image_mirrored() -> None:
    method = make_method()
    seen = []
    method.model.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    g = torch.Generator().manual_seed(0)
    batch = Batch(images=torch.randn(4, 3, SIZE, SIZE, generator=g), labels=torch.tensor([0, 1, 2, 0]),
                  indices=torch.tensor([0, 1, 2, 3]), raw=torch.zeros(4, SIZE, SIZE, 3, dtype=torch.uint8), gen=g,
                  flipped=torch.zeros(4, dtype=torch.bool))
    out = method.training_step(batch)
    assert len(seen) == 2 and torch.equal(seen[0], batch.images)
    assert torch.equal(seen[1], torch.flip(batch.images, dims=[-1]))
    assert set(out.logs) == {"consistency", "naw_weight"} and out.loss.requires_grad
    assert method.trace.seen().tolist() == [True] * 4 + [False] * 4


def test_mechanism_off_sentences() -> None:
    assert make_method().mechanism_off({"downweight_auroc": 0.7, "sigma_eps": 0.5}) == []
    off = make_method().mechanism_off({"downweight_auroc": 0.45, "sigma_eps": 0.0})
    assert len(off) == 2 and "AUROC 0.45" in off[1] and "eps = 0" in off[0]
    off = make_method(lam_b=0.0, lam_c=0.0, sigma_scheduler=False).mechanism_off({"downweight_auroc": 0.4})
    assert off == ["noise-aware adaptive weighting off (lam_b = 0)",
                   "mirror-consistency regularisation off (lam_c = 0)"]


def test_a_run_records_the_mechanism(tiny_synth: Path, tmp_path: Path) -> None:
    result = main(tiny_spec(tiny_synth, tmp_path, method="nla", noise="sym", rate=0.4))
    with open(Path(result["run_dir"]) / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for column in ("consistency", "naw_weight", "mech_off_label_precision", "mech_off_label_recall",
                   "mech_margin_auroc", "mech_downweight_auroc", "mech_sigma_eps"):
        assert column in rows[-1], column
    # two epochs: eps 0, then 1 - e^(-15/2)
    assert [float(r["mech_sigma_eps"]) for r in rows] == pytest.approx([0.0, 1 - math.exp(-7.5)])
    assert isinstance(result["mechanism_off"], list)
