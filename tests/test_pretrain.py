"""synthfer-id and `fer-bench pretrain`: on synthfer, the face-pretraining step (the papers' MS-Celeb one)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from fer_bench.cli import main as cli
from fer_bench.datasets.synthfer.generate import GENERATOR_VERSION, SPLIT_IDS
from fer_bench.datasets.synthfer.identities import (IDENTITY_STREAM, IdentitySetConfig, generate_identities,
                                                     person)
from fer_bench.datasets.synthfer import sample
from fer_bench.datasets.synthfer.face import sample_identity
from fer_bench.datasets.synthfer.sample import person_identity, render_face
from fer_bench.engine import recipe as recipes
from fer_bench.engine.run import main as run_main
from fer_bench.models.pretrained import (SYNTHFER_ID, SYNTHFER_ID_FILE, PretrainedError, checkpoint_kind,
                                         load_pretrained, record_path)
from fer_bench.models.resnet import CPU_BACKBONE, create_backbone
from fer_bench.pretrain import RECIPE, pretrain, sha256

from .conftest import tiny_spec

TINY_ID = IdentitySetConfig(identities=12, images_per_identity=10, heldout_per_identity=2, size=32)


@pytest.fixture(scope="module")
def tiny_pretrained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    d = tmp_path_factory.mktemp("pretrain")
    rec = pretrain(TINY_ID, seed=1, out=d / "a.pth", epochs=8, batch_size=16, root=d / "ids", progress=False)
    return d, rec


def _vector(idn) -> np.ndarray:
    return np.concatenate([np.ravel(v) for v in asdict(idn).values()])


def test_identity_set_is_deterministic_whatever_the_worker_count(tmp_path: Path) -> None:
    cfg = IdentitySetConfig(identities=4, images_per_identity=3, heldout_per_identity=1, size=32, seed=5)
    a = generate_identities(tmp_path / "a", cfg, workers=1, progress=False)
    b = generate_identities(tmp_path / "b", cfg, workers=2, progress=False)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.jpg"))
    assert len(files) == 12 and len(list((tmp_path / "a" / "heldout").rglob("*.jpg"))) == 4
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    assert generate_identities(tmp_path / "a", cfg, progress=False)["skipped"]
    # a person keeps their geometry and look across pictures; pictures differ
    assert _vector(person(5, 2).identity).tolist() == _vector(person(5, 2).identity).tolist()
    pictures = [np.asarray(Image.open(tmp_path / "a" / "train" / "id00002" / f)) for f in ("00.jpg", "01.jpg")]
    assert not np.array_equal(*pictures)


def test_identities_are_disjoint_from_the_expression_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every person of the default synthfer-id against the faces of synthfer's train and test
    # splits (seed 0; the first 1,000 of each, to keep the test short), by their identity parameters.
    assert IDENTITY_STREAM not in SPLIT_IDS.values()
    cfg = IdentitySetConfig()
    ids = np.stack([_vector(person(cfg.seed, k).identity) for k in range(cfg.identities)])
    faces = np.stack([_vector(person_identity(np.random.default_rng([0, SPLIT_IDS[split], i])))
                      for split in ("train", "test") for i in range(1000)])
    nearest = min(float(np.abs(faces - row).max(1).min()) for row in ids)
    assert nearest > 1e-3, "a synthfer-id identity is also a face of the expression splits"
    # person_identity is the identity render_face draws
    drawn = []
    monkeypatch.setattr(sample, "sample_identity", lambda rng: drawn.append(sample_identity(rng)) or drawn[-1])
    render_face(np.random.default_rng([0, 0, 7]), 32)
    assert _vector(drawn[0]).tolist() == _vector(person_identity(np.random.default_rng([0, 0, 7]))).tolist()


def test_tiny_pretraining_beats_chance_is_deterministic_and_loads(tiny_pretrained, tmp_path: Path) -> None:
    d, rec = tiny_pretrained
    assert rec["heldout_identity_accuracy"] >= 3 * rec["chance"], rec["history"]
    assert rec["history"][-1]["loss"] < rec["history"][0]["loss"]
    assert rec["sha256"] == sha256(d / "a.pth")  # (a second run reproduces it: see the resume test)
    assert json.loads(record_path(d / "a.pth").read_text())["sha256"] == rec["sha256"]
    # the checkpoint loads through --pretrained, every backbone tensor matched, and names its kind
    info = load_pretrained(create_backbone(**CPU_BACKBONE), str(d / "a.pth"), "resnet18")
    assert info["matched"] == info["total"]
    assert checkpoint_kind(str(d / "a.pth")) == SYNTHFER_ID
    # into a backbone of another width it matches too few tensors (the 95% rule)
    with pytest.raises(PretrainedError, match=r"matches only \d+ of \d+ backbone tensors"):
        load_pretrained(create_backbone("resnet18", width=32, stem="small"), str(d / "a.pth"), "resnet18")
    # a finished pretraining is not redone
    assert pretrain(TINY_ID, seed=1, out=d / "a.pth", epochs=8, batch_size=16, root=d / "ids",
                    progress=False)["skipped"]


def test_pretraining_resumes_after_an_interrupt_and_reproduces(tiny_pretrained, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    d, rec = tiny_pretrained
    import fer_bench.pretrain as mod

    real, calls = mod.identity_accuracy, []

    def crash_at_third_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(mod, "identity_accuracy", crash_at_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        pretrain(TINY_ID, seed=1, out=tmp_path / "c.pth", epochs=8, batch_size=16, root=d / "ids", progress=False)
    assert (tmp_path / "c.pth.partial").is_file() and not (tmp_path / "c.pth").exists()
    monkeypatch.setattr(mod, "identity_accuracy", real)
    resumed = pretrain(TINY_ID, seed=1, out=tmp_path / "c.pth", epochs=8, batch_size=16, root=d / "ids",
                       progress=False)
    assert resumed["sha256"] == rec["sha256"] and not (tmp_path / "c.pth.partial").exists()


def test_a_run_fine_tunes_from_the_users_pretrained_file(tiny_pretrained, tiny_synth: Path, tmp_path: Path) -> None:
    d, rec = tiny_pretrained
    res = run_main(tiny_spec(tiny_synth, tmp_path / "runs", overrides={"pretrained": str(d / "a.pth")}))
    assert res["pretrained"][0]["sha256"] == rec["sha256"]
    config = json.loads((Path(res["run_dir"]) / "config.json").read_text())
    assert config["recipe"]["pretrained_kind"] == SYNTHFER_ID and config["recipe"]["normalize"] == "imagenet"


def test_the_face_profile_starts_from_the_shipped_backbone() -> None:
    recipe, _ = recipes.resolve({}, {}, "official", "cpu-face", {})
    assert recipe["pretrained"] == SYNTHFER_ID and recipe["pretrained_kind"] == SYNTHFER_ID
    assert {k: recipe[k] for k in CPU_BACKBONE} == CPU_BACKBONE
    # everything else is the from-scratch cpu profile's
    cpu, _ = recipes.resolve({}, {}, "official", "cpu", {})
    assert {k for k in recipe if recipe[k] != cpu[k]} == {"pretrained", "pretrained_kind"}
    with pytest.raises(recipes.RecipeError, match="width=16"):
        recipes.resolve({}, {}, "official", "cpu", {"pretrained": SYNTHFER_ID, "width": 32})


def test_the_shipped_checkpoint_is_what_the_command_makes(tiny_synth: Path, tmp_path: Path) -> None:
    rec = json.loads(record_path(SYNTHFER_ID_FILE).read_text())
    assert rec["kind"] == SYNTHFER_ID and rec["sha256"] == sha256(SYNTHFER_ID_FILE)
    assert rec["recipe"] == RECIPE  # the command's defaults (the tiny runs above check that they reproduce)
    assert rec["dataset"]["version"] == GENERATOR_VERSION
    assert {k: rec["dataset"][k] for k in asdict(IdentitySetConfig())} == asdict(IdentitySetConfig())
    assert rec["heldout_identity_accuracy"] > 10 * rec["chance"]
    info = load_pretrained(create_backbone(**CPU_BACKBONE), SYNTHFER_ID, "resnet18")
    assert info["matched"] == info["total"] and info["sha256"] == rec["sha256"]
    # --pretrained synthfer-id names it; the run records its sha256
    res = run_main(tiny_spec(tiny_synth, tmp_path / "runs", overrides={"pretrained": SYNTHFER_ID}))
    assert [p["sha256"] for p in res["pretrained"]] == [rec["sha256"]]
    assert Path(res["run_dir"]).parent.name.endswith("+pretrained=synthfer-id")


def test_cli_pretrain_refuses_bad_sizes(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["pretrain", "--identities", "1", "--out", str(tmp_path / "x.pth")])
    assert res.exit_code == 2 and "at least 2 identities" in res.output
    res = CliRunner().invoke(cli, ["pretrain", "--out", str(tmp_path / "x.pt")])
    assert res.exit_code == 2 and "must end in .pth" in res.output
    assert not any(tmp_path.iterdir())


def test_cli_pretrain_tiny(tmp_path: Path) -> None:
    args = ["pretrain", "--root", str(tmp_path / "ids"), "--identities", "4", "--images-per-identity", "4",
            "--heldout", "1", "--epochs", "1", "--batch-size", "4", "--out", str(tmp_path / "w.pth"), "--quiet"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "held-out identity accuracy" in res.output and (tmp_path / "w.json").is_file()
    threads = json.loads((tmp_path / "w.json").read_text())["torch_threads"]
    assert re.search(rf"\d+ s on {threads} threads?\n", res.output), res.output  # the bytes depend on it
    assert torch.load(tmp_path / "w.pth", weights_only=True)["state_dict"]["conv1.weight"].shape[0] == 16
    assert "already pretrained" in CliRunner().invoke(cli, args).output


def test_cli_pretrain_help_states_the_defaults() -> None:
    text = " ".join(CliRunner().invoke(cli, ["pretrain", "--help"]).output.split())
    cfg = IdentitySetConfig()
    for option, value in (("identities", cfg.identities), ("images-per-identity", cfg.images_per_identity),
                          ("heldout", cfg.heldout_per_identity), ("data-seed", cfg.seed),
                          ("epochs", RECIPE["epochs"]), ("batch-size", RECIPE["batch_size"])):
        assert re.search(rf"--{option} INTEGER (?:(?! --).)*\(default {value}\)", text), option


@pytest.mark.parametrize("option, suffix", [
    ([], ""),  # synthfer's default profile, cpu-face-56, is the pretrained start
    (["--profile", "cpu-face-56"], ""),
    (["--profile", "cpu-face"], "+profile=cpu-face"),
    (["--pretrained", "synthfer-id"], "+pretrained=synthfer-id"),
    (["--set", "pretrained=synthfer-id"], "+pretrained=synthfer-id"),
    (["--profile", "cpu", "--pretrained", "synthfer-id"], "+profile=cpu+pretrained=synthfer-id"),
    (["--profile", "cpu"], "+profile=cpu"),  # from scratch
])
def test_a_sweep_passes_the_pretrained_start_on(option: list[str], suffix: str, tiny_synth: Path,
                                                tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["sweep", "--methods", "baseline,eac", "--root", str(tiny_synth), "--noise", "sym",
                                   "--rates", "0.3", "--seeds", "0", "--out", str(tmp_path), "--dry-run", *option])
    assert res.exit_code == 0, res.output
    assert sorted(re.findall(r"sym-0\.3/([^/]+)/seed0", res.output)) == [f"baseline{suffix}", f"eac{suffix}"]
