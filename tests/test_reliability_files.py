"""Files the user did not name are never trusted, and files the user names as --out never destroy others.

* a planted ``.partial`` beside ``pretrain``'s default --out is never unpickled (it could run code);
* a label file cannot make a loader read images outside the dataset's directory;
* an --out never lands in a run directory or a dataset's directory;
* an --out that is a directory is refused before any work, and a failed write leaves no temporary.
"""

from __future__ import annotations

import csv
import pickle
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner, Result
from PIL import Image

import fer_bench.engine.run as engine
import fer_bench.pretrain as pretrain_module
from fer_bench.atomic import save_torch, write_text
from fer_bench.cli import main
from fer_bench.datasets.affectnet import AffectNet
from fer_bench.datasets.base import DatasetError
from fer_bench.datasets.ferplus import FERPlus
from fer_bench.datasets.rafdb import RAFDB
from fer_bench.datasets.raf_layout import LABEL_FILE
from fer_bench.datasets.synthfer.identities import IdentitySetConfig
from fer_bench.engine.export import export_run
from fer_bench.runs import RunError

from .conftest import tiny_spec
from .fixtures_real import make_affectnet_csv, make_ferplus_folders, make_rafdb

TINY_PRETRAIN = ["--identities", "4", "--images-per-identity", "4", "--heldout", "1", "--epochs", "1",
                 "--batch-size", "4", "--quiet"]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(res: Result, expected: str) -> None:
    assert res.exit_code == 2, res.output
    message = res.output.strip()
    assert len(message.splitlines()) == 1, message
    assert re.search(expected, message), message


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


class Planted:
    """Unpickling this creates ``marker``: the proof that a load ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return open, (str(self.marker), "w")


# --- 1. a planted .partial is never unpickled ------------------------------------------

@pytest.mark.parametrize("kind", ["torch.save", "pickle", "truncated"])
def test_pretrain_never_unpickles_a_planted_partial(kind: str, tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    partial = pretrain_module.default_out(0).with_name(pretrain_module.default_out(0).name + ".partial")
    partial.parent.mkdir(parents=True)
    if kind == "torch.save":
        torch.save({"what": Planted(marker), "history": []}, partial)
    elif kind == "pickle":
        partial.write_bytes(pickle.dumps({"what": Planted(marker)}))
    else:
        torch.save({"history": [1.0] * 1000}, partial)
        partial.write_bytes(partial.read_bytes()[:200])
    res = invoke("pretrain", *TINY_PRETRAIN)
    assert not marker.exists(), "the planted partial ran code"
    one_line_error(res, rf"{re.escape(str(partial))} cannot be read .*--force to pretrain from the start")
    assert partial.is_file() and not pretrain_module.default_out(0).exists()  # nothing lost, nothing written


def test_pretrain_resumes_from_its_partial_read_as_weights_only(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = IdentitySetConfig(identities=4, images_per_identity=4, heldout_per_identity=1, size=32)
    kw: dict[str, Any] = dict(out=tmp_path / "w.pth", epochs=3, batch_size=4, root=tmp_path / "ids", progress=False)
    real, calls = pretrain_module.identity_accuracy, []

    def stop_in_the_second_epoch(*args: Any, **kwargs: Any) -> float:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(pretrain_module, "identity_accuracy", stop_in_the_second_epoch)
        with pytest.raises(KeyboardInterrupt):
            pretrain_module.pretrain(cfg, **kw)
    loads, real_load = [], torch.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        loads.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    rec = pretrain_module.pretrain(cfg, **kw)
    # the optimizer and scheduler states, the record of what ran and the history all load as plain data
    assert loads == [True] and len(rec["history"]) == 3 and not rec["skipped"]


@pytest.fixture(scope="module")
def finished_runs(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    engine.main(tiny_spec(tiny_synth, root, overrides={"epochs": 1}))
    return root


@pytest.fixture
def runs(finished_runs: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of a finished tiny run: (runs root, run directory)."""
    root = tmp_path / "runs"
    shutil.copytree(finished_runs, root)
    return root, next(p.parent for p in root.rglob("config.json"))


def test_a_planted_run_checkpoint_is_a_clear_error(runs: tuple[Path, Path], tmp_path: Path) -> None:
    _, run_dir = runs
    marker = tmp_path / "code-ran"
    torch.save({"model": Planted(marker)}, run_dir / "checkpoint.pt")
    with pytest.raises(RunError, match=r"checkpoint.pt cannot be read .*could run code\); start again"):
        engine.load_checkpoint(run_dir / "checkpoint.pt", torch.device("cpu"), "start again")
    one_line_error(invoke("eval", run_dir), r"checkpoint.pt cannot be read")
    assert not marker.exists()


# --- 2. label files cannot name images outside the dataset -------------------------------

RAF_TRAIN, RAF_TEST = (2, 1, 1, 2, 1, 1, 1), (1, 1, 1, 1, 1, 1, 1)


def _raf_with(tmp_path: Path, name: str) -> tuple[Path, Path]:
    root = tmp_path / "rafdb"
    make_rafdb(root, RAF_TRAIN, RAF_TEST, size=16)
    label_file = root / LABEL_FILE
    lines = label_file.read_text().splitlines()
    lines[1] = f"{name} {lines[1].split()[1]}"
    label_file.write_text("\n".join(lines))
    # What the name reaches when joined below Image/aligned (the kernel needs "train" to exist to go up).
    (root / "Image/aligned/train").mkdir()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(tmp_path / "secret_aligned.jpg")
    return root, label_file


def test_rafdb_label_file_cannot_leave_the_root(tmp_path: Path) -> None:
    root, label_file = _raf_with(tmp_path, "train/../../../../secret.jpg")
    expected = rf"{re.escape(str(label_file))}:2: image name 'train/../../../../secret.jpg' leads outside"
    with pytest.raises(DatasetError, match=expected):
        RAFDB.load(root, progress=False)
    res = invoke("data", "check", "--dataset", "rafdb", "--root", root, "--quick")
    assert res.exit_code == 2 and re.search(expected, res.output), res.output
    one_line_error(invoke("noise", "export", "--dataset", "rafdb", "--root", root, "--noise", "sym", "--rate", "0.2",
                          "--out", tmp_path / "noisy.txt"), expected)


@pytest.mark.parametrize("name", ["../../secret.png", "ABSOLUTE"])
def test_ferplus_label_csv_cannot_leave_the_root(name: str, tmp_path: Path) -> None:
    root = tmp_path / "ferplus"
    make_ferplus_folders(root)
    Image.new("L", (48, 48), 7).save(tmp_path / "secret.png")
    name = str(tmp_path / "secret.png") if name == "ABSOLUTE" else name
    label_csv = root / "FER2013Train/label.csv"
    rows = label_csv.read_text().splitlines()
    rows[0] = name + rows[0][rows[0].index(","):]
    label_csv.write_text("\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match=rf"{re.escape(str(label_csv))}:1: image name '{re.escape(name)}' leads"):
        FERPlus.load(root, progress=False)


def test_affectnet_list_cannot_leave_the_root(tmp_path: Path) -> None:
    root = tmp_path / "affectnet"
    make_affectnet_csv(root)
    Image.new("RGB", (80, 60), (9, 9, 9)).save(tmp_path / "secret.jpg")
    listing = root / "Manually_Annotated_file_lists/training.csv"
    with open(listing, newline="") as f:
        rows = list(csv.reader(f))
    rows[1][0] = "../../../secret.jpg"
    with open(listing, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(DatasetError, match=rf"{re.escape(str(listing))}:2: image name '../../../secret.jpg' leads"):
        AffectNet.load(root, progress=False, size=20)


# --- 10. an --out never lands in a run's or a dataset's directory -----------------------

def _fake_bench(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench writes its JSON at once: only where it writes matters here, not the minutes of timing."""
    import fer_bench.perf.bench as bench

    monkeypatch.setattr(bench, "run_bench", lambda *a, **kw: write_text(Path(kw["out"]), "{}") or {})
    monkeypatch.setattr(bench, "format_table", lambda result: "timed")


@pytest.mark.parametrize("command, name", [
    ("export", "checkpoint.pt"), ("export", "result"), ("export", "model.pt"), ("table", "metrics.csv"),
    ("plot", "confusion"), ("pretrain", "w.pth"), ("bench", "env.json"),
])
def test_an_out_in_a_run_directory_is_refused(command: str, name: str, runs: tuple[Path, Path],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_bench(monkeypatch)
    root, run_dir = runs
    out = run_dir / name
    args = {"export": ["export", run_dir, "--out", out], "table": ["table", "--results", root, "--out", out],
            "plot": ["plot", "confusion", run_dir, "--out", out], "pretrain": ["pretrain", *TINY_PRETRAIN, "--out", out],
            "bench": ["bench", "--out", out]}[command]
    before = snapshot(run_dir)
    res = invoke(*args)
    one_line_error(res, rf"--out {re.escape(str(out))}.* is inside the run directory {re.escape(str(run_dir))}")
    assert snapshot(run_dir) == before


@pytest.mark.parametrize("where", ["--root", "data root"])
def test_noise_export_never_writes_into_the_dataset(where: str, tiny_synth: Path, tmp_path: Path) -> None:
    root = tmp_path / "data" / "synthfer" if where == "data root" else tmp_path / "mine"
    shutil.copytree(tiny_synth, root)
    label_file = root / LABEL_FILE
    before = snapshot(root)
    res = invoke("noise", "export", *(["--root", root] if where == "--root" else []), "--noise", "sym", "--rate", "0.3",
                 "--out", label_file)
    one_line_error(res, rf"--out {re.escape(str(label_file))} is inside the (dataset directory|data root)")
    assert snapshot(root) == before


# --- 11. an --out that is a directory, and failed writes ---------------------------------

@pytest.mark.parametrize("command", ["export", "export-torchscript", "table", "plot", "pretrain", "bench"])
def test_an_out_that_is_a_directory_is_refused_before_any_work(command: str, runs: tuple[Path, Path], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_bench(monkeypatch)
    root, run_dir = runs
    work = tmp_path / "work"
    out = work / ("figure.png" if command == "plot" else "taken.pth" if command == "pretrain" else "taken")
    out.mkdir(parents=True)
    args = {"export": ["export", run_dir, "--out", out], "table": ["table", "--results", root, "--out", out],
            "export-torchscript": ["export", run_dir, "--out", out, "--format", "torchscript"],
            "plot": ["plot", "confusion", run_dir, "--out", work / "figure"],
            "pretrain": ["pretrain", *TINY_PRETRAIN, "--root", tmp_path / "ids", "--out", out],
            "bench": ["bench", "--out", out]}[command]
    res = invoke(*args)
    one_line_error(res, rf"--out {re.escape(str(args[-1] if command != 'export-torchscript' else out))}"
                        rf"( \({re.escape(str(out))}\))? is a directory")
    assert sorted(p.name for p in work.iterdir()) == [out.name]  # no temporary, no partial
    assert not (tmp_path / "ids").exists()  # pretrain did not even generate its data


@pytest.mark.parametrize("fmt", ["state_dict", "torchscript"])
def test_a_failed_export_leaves_no_temporary(fmt: str, runs: tuple[Path, Path], tmp_path: Path) -> None:
    _, run_dir = runs
    out = tmp_path / "work" / "model"
    out.mkdir(parents=True)
    with pytest.raises(IsADirectoryError):
        export_run(run_dir, out, fmt)
    assert [p.name for p in out.parent.iterdir()] == ["model"]


def test_failed_atomic_writes_leave_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(IsADirectoryError):
        write_text(tmp_path / "taken", "text")
    (tmp_path / "model.pt").write_text("old")
    with pytest.raises(Exception):  # a lambda cannot be pickled: the write stops half-way
        save_torch(tmp_path / "model.pt", {"weights": torch.zeros(100_000), "fn": lambda: 0})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "taken"]
    assert (tmp_path / "model.pt").read_text() == "old"
