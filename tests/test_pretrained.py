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
