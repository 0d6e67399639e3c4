"""SCN, RUL and EAC mechanisms on small tensors, and their records in a real run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fer_bench.engine.run import main
from fer_bench.methods.eac import EACNet, class_activation_maps, flip_consistency
from fer_bench.methods.relabel import relabel_
from fer_bench.methods.rul import RULNet, mix_by_uncertainty
from fer_bench.methods.scn import low_importance_mask, rank_regularisation
from fer_bench.models import create_backbone

from .conftest import tiny_spec

# --- SCN ---------------------------------------------------------------------------


def test_rank_regularisation_hinge() -> None:
    alpha = torch.tensor([0.9, 0.1, 0.8, 0.2, 0.7], requires_grad=True)
    # beta 0.6 of 5 -> the top 3 (mean 0.8) against the other 2 (mean 0.15): gap 0.65.
    satisfied = rank_regularisation(alpha, beta=0.6, margin=0.5)
    assert satisfied.item() == 0.0
    satisfied.backward()
    assert torch.all(alpha.grad == 0)
    violated = rank_regularisation(alpha, beta=0.6, margin=0.7)
    assert violated.item() == pytest.approx(0.05)
    alpha.grad = None
    violated.backward()
    # Pushing the high group up and the low group down is what reduces the loss.
    assert alpha.grad[0] < 0 and alpha.grad[1] > 0


def test_low_importance_group() -> None:
    mask = low_importance_mask(torch.tensor([0.9, 0.1, 0.8, 0.2, 0.7]), beta=0.6)
    assert mask.tolist() == [False, True, False, True, False]


def test_relabel_rule() -> None:
    labels = torch.tensor([0, 0, 0, 1, 2])
    indices = torch.tensor([0, 1, 3])
    probs = torch.tensor([
        [0.05, 0.05, 0.90],   # label 0: 0.90 - 0.05 > 0.2 -> becomes 2
        [0.40, 0.55, 0.05],   # label 0: 0.55 - 0.40 < 0.2 -> kept
        [0.70, 0.20, 0.10],   # label 1: 0.70 - 0.20 > 0.2 -> becomes 0
    ])
    changed = relabel_(labels, indices, probs.log(), margin=0.2)
    assert changed.item() == 2 and labels.tolist() == [2, 0, 0, 0, 2]
    labels = torch.tensor([0, 0, 0, 1, 2])
    relabel_(labels, indices, probs.log(), margin=0.2, eligible=torch.tensor([False, True, True]))
    assert labels.tolist() == [0, 0, 0, 0, 2]


def test_scn_relabelling_is_recorded_in_the_run(tiny_synth: Path, tmp_path: Path) -> None:
    res = main(tiny_spec(tiny_synth, tmp_path, method="scn", noise="sym", rate=0.3,
                         overrides={"relabel_epoch": 1, "delta2": 0.0}))
    relabel = res["relabel"]
    assert relabel["changed"] > 0 and relabel["corrected_to_clean"] + relabel["broke_clean"] <= relabel["changed"]
    assert (Path(res["run_dir"]) / "final_train_labels.txt").is_file()
    assert "relabelled" in (Path(res["run_dir"]) / "metrics.csv").read_text().splitlines()[0]


# --- RUL ---------------------------------------------------------------------------


def test_higher_uncertainty_gets_the_larger_mixing_weight() -> None:
    mu = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    u = torch.tensor([[3.0], [1.0]])
    mixed, w = mix_by_uncertainty(mu, u, torch.tensor([1, 0]))
    assert w.flatten().tolist() == pytest.approx([0.75, 0.25])
    assert mixed[0].tolist() == pytest.approx([0.75, 0.25])
    assert mixed[1].tolist() == pytest.approx([0.75, 0.25])  # the same pair, seen from the other side


def test_rul_prediction_ignores_the_uncertainty_branch() -> None:
    torch.manual_seed(0)
    net = RULNet(create_backbone("resnet18", width=8, stem="small"), 32, 7, dropout=0.4).eval()
    x = torch.randn(4, 3, 32, 32)
    before = net(x)
    with torch.no_grad():
        for p in net.logvar_head.parameters():
            p.add_(torch.randn_like(p))
    assert torch.equal(before, net(x))
    _, u = net.embed(x)
    assert (u > 0).all()


# --- EAC ---------------------------------------------------------------------------


def test_flip_back_equals_the_official_grid_sample_flip() -> None:
    cam = torch.randn(2, 7, 7, 7)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 7), torch.linspace(-1, 1, 7), indexing="ij")
    grid = torch.stack([-xs, ys], dim=-1).unsqueeze(0).expand(2, 7, 7, 2)
    official = F.grid_sample(cam, grid, mode="bilinear", padding_mode="border", align_corners=True)
    assert torch.allclose(torch.flip(cam, dims=[-1]), official, atol=1e-6)
    assert torch.equal(torch.flip(cam, dims=[-1]), cam[..., torch.arange(6, -1, -1)])


class _PointwiseBackbone(nn.Module):
    """A 1x1-convolution 'backbone': commutes with mirroring, like an ideal EAC network."""

    out_channels = 8

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))

    @staticmethod
    def pool(fmap: torch.Tensor) -> torch.Tensor:
        return fmap.mean(dim=(2, 3))


def _consistency(net: EACNet, x: torch.Tensor) -> torch.Tensor:
    _, fmap = net.forward_with_map(x)
    _, fmap_mirror = net.forward_with_map(torch.flip(x, dims=[-1]))
    w = net.fc.weight
    return flip_consistency(class_activation_maps(fmap, w), class_activation_maps(fmap_mirror, w))


def test_consistency_is_zero_for_a_flip_symmetric_input_and_positive_otherwise() -> None:
    torch.manual_seed(0)
    half = torch.randn(2, 3, 8, 4)
    symmetric = torch.cat([half, torch.flip(half, dims=[-1])], dim=-1)
    pointwise = EACNet(_PointwiseBackbone(), 7)
    assert _consistency(pointwise, symmetric).item() == pytest.approx(0.0, abs=1e-12)
    # A network that commutes with mirroring is consistent on any input: the flip-back is right.
    assert _consistency(pointwise, torch.randn(2, 3, 8, 8)).item() == pytest.approx(0.0, abs=1e-12)
    resnet = EACNet(create_backbone("resnet18", width=8, stem="small"), 7).eval()
    assert _consistency(resnet, torch.randn(2, 3, 32, 32)).item() > 0


def test_cam_uses_detached_classifier_weights() -> None:
    net = EACNet(_PointwiseBackbone(), 7)
    _, fmap = net.forward_with_map(torch.randn(2, 3, 8, 8))
    class_activation_maps(fmap, net.fc.weight).sum().backward()
    assert net.fc.weight.grad is None and net.backbone.conv.weight.grad is not None


def test_different_class_partners() -> None:
    from fer_bench.methods.rul import different_class_partners

    torch.manual_seed(0)
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    partner = different_class_partners(labels)
    assert (labels[partner] != labels).all()
    alone = different_class_partners(torch.tensor([3, 3, 3]))
    assert alone.tolist() == [0, 1, 2]  # no other class in the batch: paired with itself


# --- the peers' input augmentation in their official recipes -------------------------


def _record_batches(monkeypatch: pytest.MonkeyPatch, method_cls: type) -> list:
    seen = []
    real = method_cls.training_step

    def recording(self, batch):
        seen.append(batch)
        return real(self, batch)

    monkeypatch.setattr(method_cls, "training_step", recording)
    return seen


def test_eac_first_view_is_never_flipped_and_its_mirror_has_no_noise(tiny_synth: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from fer_bench.methods.eac import EAC

    seen = _record_batches(monkeypatch, EAC)
    mirrored = []
    real_erase = EAC._erase
    monkeypatch.setattr(EAC, "_erase", lambda self, x, gen: mirrored.append(x) or real_erase(self, x, gen))
    main(tiny_spec(tiny_synth, tmp_path / "runs", method="eac"))
    assert seen and not any(bool(b.flipped.any()) for b in seen)  # official: the mirror is the second view
    noisy = torch.cat([(b.images != b.noiseless).flatten(1).any(1) for b in seen]).float().mean().item()
    assert 0.3 < noisy < 0.7  # Gaussian noise on the first view with p 0.5
    # the erased inputs alternate view, mirror; each mirror is the noiseless image flipped
    for b, mirror in zip(seen, mirrored[1::2]):
        assert torch.equal(mirror, torch.flip(b.noiseless, dims=[-1]))

    seen.clear()
    main(tiny_spec(tiny_synth, tmp_path / "unified", method="eac", protocol="unified"))
    assert any(bool(b.flipped.any()) for b in seen) and all(b.noiseless is b.images for b in seen)


@pytest.mark.parametrize("method", ["scn", "rul"])
def test_scn_and_rul_flip_or_add_noise_each_with_p_quarter(method: str) -> None:
    from fer_bench.engine.recipe import resolve
    from fer_bench.engine.build import augment_config
    from fer_bench.registry import METHODS

    cls = METHODS.get(method)
    for profile in ("paper", "cpu"):
        cfg = augment_config(resolve(cls.recipe, cls.hparams, "official", profile, {})[0])
        assert (cfg.flip, cfg.noise, cfg.noise_var, cfg.flip_or_noise) == (0.25, 0.25, 30.0, True)
    cfg = augment_config(resolve(cls.recipe, cls.hparams, "unified", "paper", {})[0])
    assert (cfg.flip, cfg.noise) == (0.5, 0.0)
