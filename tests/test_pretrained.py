"""Pretrained backbone weights: mapped by name, never loaded silently wrong."""

from __future__ import annotations

import re
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


@pytest.fixture(scope="module")
def vggface2_pickle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A file in the format of EAC's resnet50_ft_weight.pkl: a pickled dict of numpy arrays with
    torchvision's key names and shapes, converted from Caffe (so no num_batches_tracked counters)."""
    import pickle

    tensors = {k: v for k, v in _fake_backbone_tensors("resnet50").items() if not k.endswith("num_batches_tracked")}
    arrays = {k: v.numpy() for k, v in tensors.items()}
    arrays["fc.weight"] = arrays["fc.weight"][:8]  # the real head is 8631 x 2048; not part of the backbone
    arrays["fc.bias"] = arrays["fc.bias"][:8]
    path = tmp_path_factory.mktemp("vggface2") / "resnet50_ft_weight.pkl"
    with open(path, "wb") as f:
        pickle.dump(arrays, f)
    return path, tensors


def test_vggface2_pickle_loads_only_into_the_caffe_resnet50(vggface2_pickle) -> None:
    path, tensors = vggface2_pickle
    with pytest.raises(PretrainedError, match="Caffe layout.*use --set arch=resnet50_caffe"):
        load_pretrained(create_backbone("resnet50"), str(path), "resnet50", trust_pickle=True)
    backbone = create_backbone("resnet50_caffe")
    with pytest.raises(PretrainedError, match="pickle, which can run code.*--trust-pickle"):
        load_pretrained(backbone, str(path), "resnet50_caffe")
    info = load_pretrained(backbone, str(path), "resnet50_caffe", trust_pickle=True)
    assert info["matched"] == info["total"] == 318
    assert torch.equal(backbone.layer3[5].conv3.weight, tensors["layer3.5.conv3.weight"])


def test_caffe_resnet50_layout() -> None:
    caffe, v15 = create_backbone("resnet50_caffe"), create_backbone("resnet50")
    assert [k for k in caffe.state_dict()] == [k for k in v15.state_dict()]  # same names: why the check is needed
    for layer in (caffe.layer2, caffe.layer3, caffe.layer4):
        assert layer[0].conv1.stride == (2, 2) and layer[0].conv2.stride == (1, 1)
    assert v15.layer2[0].conv1.stride == (1, 1) and v15.layer2[0].conv2.stride == (2, 2)
    assert caffe.maxpool.padding == 0 and caffe.maxpool.ceil_mode
    # 225 px: conv1 gives 113; Caffe's pool rounds (113 - 3) / 2 up to 56 (+1), torchvision's pads to 57.
    x = torch.randn(1, 3, 225, 225)
    assert caffe.stem_forward(x).shape[-1] == 56 and v15.stem_forward(x).shape[-1] == 57
    v15.load_state_dict(caffe.state_dict())
    caffe.eval(), v15.eval()
    with torch.no_grad():  # the same weights compute something else in the other layout
        assert not torch.allclose(caffe(x[..., :224, :224]), v15(x[..., :224, :224]), atol=1e-3)


def test_a_torchvision_checkpoint_is_refused_by_the_caffe_resnet50(tmp_path: Path) -> None:
    torch.save(_fake_backbone_tensors("resnet50"), tmp_path / "r50.pth")
    with pytest.raises(PretrainedError, match="torchvision's layout: use --set arch=resnet50"):
        load_pretrained(create_backbone("resnet50_caffe"), str(tmp_path / "r50.pth"), "resnet50_caffe")


def test_eac_with_the_vggface2_pickle_builds_the_caffe_network(vggface2_pickle, tiny_synth: Path,
                                                               tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from fer_bench.cli import main as cli

    path, _ = vggface2_pickle
    base = ["run", "--method", "eac", "--root", str(tiny_synth), "--out", str(tmp_path / "runs"), "--quiet",
            "--pretrained", str(path), "--trust-pickle", "--set", "epochs=1", "--set", "image_size=32",
            "--set", "batch_size=32"]
    refused = CliRunner().invoke(cli, base + ["--set", "arch=resnet50"])
    assert refused.exit_code == 2 and "use --set arch=resnet50_caffe" in refused.output
    assert not (tmp_path / "runs").exists()
    res = CliRunner().invoke(cli, base)
    assert res.exit_code == 0, res.output
    run_dir = Path(re.search(r"run directory: (\S+)", res.output).group(1))
    recipe = json.loads((run_dir / "config.json").read_text())["recipe"]
    assert (recipe["arch"], recipe["width"], recipe["stem"]) == ("resnet50_caffe", 64, "imagenet")
    assert (recipe["pretrained_kind"], recipe["normalize"]) == ("vggface2", "imagenet")
    assert json.loads((run_dir / "result.json").read_text())["pretrained"][0]["matched"] == 318


@pytest.mark.parametrize("method, source, overrides, kind, normalize", [
    ("lanet", "none", {}, "none", "imagenet"),
    ("lanet", "imagenet", {}, "imagenet", "imagenet"),
    ("lanet", "/w/resnet18-f37072fd.pth", {}, "imagenet", "imagenet"),
    ("lanet", "/w/resnet18_msceleb.pth", {}, "msceleb", "msceleb"),       # LA-Net's MS-Celeb statistics
    ("lanet", "/w/resnet18_msceleb.pth", {"normalize": "imagenet"}, "msceleb", "imagenet"),
    ("lanet", "/w/mine.pth", {"pretrained_kind": "imagenet"}, "imagenet", "imagenet"),
    ("scn", "/w/ijba_res18_naive.pth.tar", {}, "msceleb", "imagenet"),    # SCN's code uses ImageNet's
    ("baseline", "/w/resnet18_msceleb.pth", {}, "msceleb", "msceleb"),
])
def test_normalisation_follows_the_checkpoint_kind(method: str, source: str, overrides: dict, kind: str,
                                                   normalize: str) -> None:
    from fer_bench.engine import recipe as recipes
    from fer_bench.registry import METHODS

    cls = METHODS.get(method)
    r, _ = recipes.resolve(cls.recipe, cls.hparams, "official", "paper", {"pretrained": source, **overrides})
    assert (r["pretrained_kind"], r["normalize"]) == (kind, normalize)


def test_bad_kind_or_statistics_name_is_an_error() -> None:
    from fer_bench.engine import recipe as recipes

    with pytest.raises(recipes.RecipeError, match="normalize='coco': known: auto, imagenet, msceleb"):
        recipes.resolve({}, {}, "official", "paper", {"normalize": "coco"})
    with pytest.raises(recipes.RecipeError, match="pretrained_kind='clip'"):
        recipes.resolve({}, {}, "official", "paper", {"pretrained_kind": "clip"})


def test_run_normalises_with_the_recorded_statistics(tiny_synth: Path, tmp_path: Path) -> None:
    import json

    from fer_bench.engine.build import augment_config
    from fer_bench.models.pretrained import NORMALISATIONS
    from fer_bench.engine.trained import load_trained

    torch.save(create_backbone("resnet18", width=16, stem="small").state_dict(), tmp_path / "resnet18_msceleb.pth")
    res = main(tiny_spec(tiny_synth, tmp_path / "runs", overrides={"pretrained": str(tmp_path / "resnet18_msceleb.pth"),
                                                                   "epochs": 1}))
    recipe = json.loads((Path(res["run_dir"]) / "config.json").read_text())["recipe"]
    assert (recipe["pretrained_kind"], recipe["normalize"]) == ("msceleb", "msceleb")
    trained = load_trained(Path(res["run_dir"]), progress=False)
    cfg = augment_config(trained.config["recipe"])  # what the trained model predicts with
    assert (cfg.mean, cfg.std) == NORMALISATIONS["msceleb"]
