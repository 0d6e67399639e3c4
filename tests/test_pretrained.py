"""Pretrained backbone weights: mapped by name, never loaded silently wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from fer_bench.engine.run import main
from fer_bench.models import create_backbone
from fer_bench.models.pretrained import PretrainedError, load_pretrained

from .conftest import tiny_spec


def test_torchvision_state_dict_with_container_and_module_prefix(tmp_path: Path) -> None:
    source = torchvision.models.resnet18(num_classes=7).state_dict()
    ckpt = {"state_dict": {f"module.{k}": v for k, v in source.items()}, "epoch": 3}
    torch.save(ckpt, tmp_path / "r18.pth")
    backbone = create_backbone("resnet18")
    info = load_pretrained(backbone, str(tmp_path / "r18.pth"), "resnet18")
    assert info["matched"] == info["total"] == len(backbone.state_dict())
    assert len(info["sha256"]) == 64
    assert torch.equal(backbone.layer3[1].conv2.weight, source["layer3.1.conv2.weight"])


def test_a_checkpoint_with_other_names_is_an_error_listing_them(tmp_path: Path) -> None:
    # SCN's failure: keys named features.N.* match nothing, which must not pass silently.
    source = torchvision.models.resnet18().state_dict()
    renamed = {k.replace("layer", "features.").replace("conv1", "features.0"): v for k, v in source.items()}
    torch.save(renamed, tmp_path / "scn_style.pth")
    with pytest.raises(PretrainedError, match=r"matches only \d+ of 120 backbone tensors.*unmatched: conv1\.weight"):
        load_pretrained(create_backbone("resnet18"), str(tmp_path / "scn_style.pth"), "resnet18")


def test_wrong_width_is_an_error(tmp_path: Path) -> None:
    torch.save(create_backbone("resnet18", width=16).state_dict(), tmp_path / "small.pth")
    with pytest.raises(PretrainedError, match=r"matches only \d+ of 120 backbone tensors"):
        load_pretrained(create_backbone("resnet18"), str(tmp_path / "small.pth"), "resnet18")


def test_missing_imagenet_file_says_where_to_put_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(PretrainedError, match=r"hub/checkpoints/resnet18-f37072fd\.pth.*placed there by hand"):
        load_pretrained(create_backbone("resnet18"), "imagenet", "resnet18")


def test_run_records_the_pretrained_file(tiny_synth: Path, tmp_path: Path) -> None:
    torch.save(create_backbone("resnet18", width=16, stem="small").state_dict(), tmp_path / "w.pth")
    res = main(tiny_spec(tiny_synth, tmp_path / "runs", overrides={"pretrained": str(tmp_path / "w.pth")}))
    assert res["pretrained"][0]["matched"] == res["pretrained"][0]["total"]
    with pytest.raises(PretrainedError):
        main(tiny_spec(tiny_synth, tmp_path / "runs2", overrides={"pretrained": str(tmp_path / "absent.pth")}))
    assert not (tmp_path / "runs2").exists()  # nothing written for a run that could not start


def _fake_backbone_tensors(arch: str) -> dict[str, torch.Tensor]:
    """Random tensors with the real key names and shapes of a torchvision ResNet."""
    model = getattr(torchvision.models, arch)()
    return {k: torch.randn_like(v.float()) if v.is_floating_point() else v for k, v in model.state_dict().items()}


def test_scn_ijba_format_module_prefix_and_extra_heads(tmp_path: Path) -> None:
    tensors = _fake_backbone_tensors("resnet18")
    state = {f"module.{k}": v for k, v in tensors.items() if not k.startswith("fc.")}
    state.update({"module.feature.weight": torch.randn(256, 512), "module.feature.bias": torch.randn(256),
                  "module.fc.weight": torch.randn(1000, 256), "module.fc.bias": torch.randn(1000)})
    torch.save({"state_dict": state, "epoch": 30, "arch": "resnet18"}, tmp_path / "ijba_res18_naive.pth.tar")
    backbone = create_backbone("resnet18")
    info = load_pretrained(backbone, str(tmp_path / "ijba_res18_naive.pth.tar"), "resnet18")
    assert info["matched"] == info["total"]
    assert torch.equal(backbone.conv1.weight, tensors["conv1.weight"])


def test_msceleb_resnet18_format(tmp_path: Path) -> None:
    tensors = _fake_backbone_tensors("resnet18")
    torch.save({"state_dict": tensors}, tmp_path / "resnet18_msceleb.pth")
    backbone = create_backbone("resnet18")
    assert load_pretrained(backbone, str(tmp_path / "resnet18_msceleb.pth"), "resnet18")["matched"] == 120
    assert torch.equal(backbone.layer4[1].bn2.running_var, tensors["layer4.1.bn2.running_var"])


def test_vggface2_pickle_needs_trust(tmp_path: Path) -> None:
    import pickle

    tensors = _fake_backbone_tensors("resnet50")
    arrays = {k: v.numpy() for k, v in tensors.items()}
    arrays["fc.weight"] = arrays["fc.weight"][:, :8]  # VGGFace2's 8,631-way head does not match: ignored
    with open(tmp_path / "resnet50_ft_weight.pkl", "wb") as f:
        pickle.dump(arrays, f)
    backbone = create_backbone("resnet50")
    with pytest.raises(PretrainedError, match="pickle, which can run code.*--trust-pickle"):
        load_pretrained(backbone, str(tmp_path / "resnet50_ft_weight.pkl"), "resnet50")
    info = load_pretrained(backbone, str(tmp_path / "resnet50_ft_weight.pkl"), "resnet50", trust_pickle=True)
    assert info["matched"] == info["total"]
    assert torch.equal(backbone.layer3[5].conv3.weight, tensors["layer3.5.conv3.weight"])
