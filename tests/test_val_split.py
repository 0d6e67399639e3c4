"""The noisy validation split (--val-split) and the ``val`` statistic."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import fer_bench.engine.run as engine
from fer_bench.cli import main, run_summary
from fer_bench.datasets.split import ValidationSplit, training_indices, validation_indices
from fer_bench.engine.metrics import summarise_epochs
from fer_bench.noise.files import import_train_labels
from fer_bench.registry import create_dataset, list_datasets
from fer_bench.runs import RunError, migrate

from .conftest import TINY, TINY_RECIPE, interrupt_then_resume, tiny_spec


def cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_the_split_is_stratified_by_noisy_class_deterministic_and_disjoint() -> None:
    labels = np.repeat(np.arange(5), [40, 23, 7, 2, 1])
    np.random.default_rng(0).shuffle(labels)
    held = validation_indices(labels, 0.2, seed=7)
    assert np.array_equal(held, validation_indices(labels, 0.2, seed=7))
    assert not np.array_equal(held, validation_indices(labels, 0.2, seed=8))
    assert len(held) == round(0.2 * len(labels)) and len(np.unique(held)) == len(held)
    for c, n in zip(range(5), [40, 23, 7, 2, 1]):
        got = int((labels[held] == c).sum())
        # its share, rounded either way, and never a class's last training image
        assert np.floor(0.2 * n) <= got <= min(np.ceil(0.2 * n), n - 1), (c, got)
    keep = training_indices(len(labels), held)
    assert not set(keep) & set(held) and len(keep) + len(held) == len(labels)
    assert len(validation_indices(labels, 0.0, seed=7)) == 0
    with pytest.raises(ValueError, match="holds out no image"):
        ValidationSplit.draw(labels[:3], 0.1, seed=0)


@pytest.mark.parametrize("name", list_datasets())
def test_each_dataset_owns_its_default_split(name: str) -> None:
    run = engine.resolve(engine.RunSpec(dataset=name))
    assert run.recipe["val_split"] == (0.1 if name == "synthfer" else 0.0)
    assert engine.resolve(engine.RunSpec(dataset=name, overrides={"val_split": 0.2})).recipe["val_split"] == 0.2
    # a run recorded before the split existed trained on every image: it is the same run as val_split=0
    assert migrate({"recipe": {"epochs": 1}})["recipe"]["val_split"] == 0.0


def test_val_picks_the_clean_test_accuracy_at_the_best_noisy_validation_epoch(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("epoch,test_acc,test_mean_class_acc,val_acc\n"
                       "1,0.50,0.40,0.30\n"
                       "2,0.60,0.55,0.45\n"
                       "3,0.70,0.65,0.45\n"   # ties with epoch 2: the earlier epoch is kept
                       "4,0.80,0.75,0.40\n"
                       "5,0.65,0.60,0.20\n")
    rows = list(csv.DictReader(metrics.open()))
    column = lambda key: [float(r[key]) for r in rows]  # noqa: E731
    out = summarise_epochs(column("test_acc"), column("test_mean_class_acc"), column("val_acc"))
    assert out["val_epoch"] == 2 and out["acc_val"] == 0.60 and out["mean_class_acc_val"] == 0.55
    assert out["val_acc_best"] == 0.45
    assert out["best_epoch"] == 4 and out["acc_best"] == 0.80  # the optimistic one peeks at the test set
    none = summarise_epochs(column("test_acc"), column("test_mean_class_acc"))
    assert none["acc_val"] is None and none["val_epoch"] is None


def test_a_split_run_holds_its_images_out_of_training_and_records_them(tiny_synth: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}
    real = engine.build_training

    def build_training(run, dataset, labels, *world):
        seen["names"], seen["labels"] = list(dataset.train.names), np.asarray(labels)
        setup = real(run, dataset, labels, *world)
        seen["num_train"] = setup.ctx.num_train
        return setup

    monkeypatch.setattr(engine, "build_training", build_training)
    result = engine.main(tiny_spec(tiny_synth, tmp_path / "split", noise="sym", rate=0.3))
    run_dir = Path(result["run_dir"])
    held = (run_dir / "val_split.txt").read_text().split()
    assert result["val_split"] == {"fraction": 0.1, "held_out": len(held), "train": TINY["n_train"] - len(held)}
    assert len(held) == round(0.1 * TINY["n_train"])
    assert not set(held) & set(seen["names"]) and len(seen["names"]) + len(held) == TINY["n_train"]
    assert seen["num_train"] == len(seen["names"])  # the method's per-sample memories: the remaining images
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    val = [float(r["val_acc"]) for r in rows]
    assert result["val_epoch"] == int(np.argmax(val)) + 1
    assert result["acc_val"] == pytest.approx(float(rows[result["val_epoch"] - 1]["test_acc"]))
    assert "val " in run_summary(result)
    # the gallery shows what the run trained on: never a held-out image (LA-Net has no memory of them)
    from fer_bench.report.plots import gallery_data

    shown = gallery_data(run_dir, n=TINY["n_train"], root=str(tiny_synth)).names
    assert len(shown) == TINY["n_train"] - len(held) and not set(shown) & set(held)

    # No split: the same noisy labels for every image, nothing held out, and `val` unavailable.
    plain = engine.main(tiny_spec(tiny_synth, tmp_path / "split", noise="sym", rate=0.3,
                                  overrides={"val_split": 0.0}))
    plain_dir = Path(plain["run_dir"])
    assert (plain_dir / "train_labels.txt").read_text() == (run_dir / "train_labels.txt").read_text()
    assert not (plain_dir / "val_split.txt").exists() and plain["acc_val"] is None
    assert plain["val_split"] == {"fraction": 0.0, "held_out": 0, "train": TINY["n_train"]}
    assert "val_acc" not in (plain_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "val: unavailable" in run_summary(plain)
    # the labels the method trained on are those of a run without a split, less the held-out images
    dataset = create_dataset("synthfer", tiny_synth, progress=False)
    full = import_train_labels(dataset, plain_dir / "train_labels.txt")[0]
    index = {n: i for i, n in enumerate(dataset.train.names)}
    assert np.array_equal(seen["labels"], full[[index[n] for n in seen["names"]]])

    res = cli("table", "--stat", "val", "--results", tmp_path / "split", "--methods",
              "baseline,baseline+val_split=0.0")
    assert res.exit_code == 0, res.output
    assert "n/a (1)" in res.stdout and "unavailable for 1 entry" in res.stderr, res.output
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("| Symmetric"))
    assert f"{100 * result['acc_val']:.2f}" in line
    res = cli("table", "--stat", "val", "--results", tmp_path / "split", "--methods", "baseline+val_split=0.0",
              "--format", "csv")
    assert res.exit_code == 0 and ",synthfer,,,1," in res.stdout, res.output
    res = cli("plot", "curves", "--stat", "val", "--results", tmp_path / "split", "--methods",
              "baseline+val_split=0.0", "--variants", "--out", tmp_path / "curves")
    assert res.exit_code == 2 and "unavailable for every run" in res.output, res.output
    # the user study measures a split run on the images it trained on, and its caption says so
    res = cli("userstudy", "--results", tmp_path / "split", "--methods", "baseline,baseline+val_split=0.0",
              "--format", "markdown")
    assert res.exit_code == 0 and "1 run(s) held out a noisy validation split" in res.stdout, res.output


def test_a_split_run_gathers_its_batches_from_the_whole_cache_without_copying_it(tiny_synth: Path,
                                                                                   tmp_path: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from fer_bench.datasets.split import Rows, training_view

    dataset = create_dataset("synthfer", tiny_synth, progress=False)
    split = ValidationSplit.draw(np.asarray(dataset.train.labels), 0.25, seed=0)
    view = training_view(dataset, split.keep)
    assert isinstance(view.train.images, Rows) and view.train.images.base is dataset.train.images
    assert view.train.images.shape == (len(split.keep), *dataset.train.images.shape[1:])
    assert np.array_equal(view.train.images[3], dataset.train.images[split.keep[3]])
    assert np.array_equal(np.asarray(view.train.images[1:4]), dataset.train.images[split.keep[1:4]])

    # The batches gathered from the whole cache by row are those of a copy of the kept rows.
    run = engine.resolve(tiny_spec(tiny_synth, tmp_path, device="cpu"))
    labels = np.asarray(dataset.train.labels)[split.keep]
    setup = engine.build_training(run, view, labels)
    by_row = engine.CachedBatches(setup.method, torch.from_numpy(dataset.train.images), setup.augment, setup.seed,
                                  epoch=1, rows=torch.as_tensor(split.keep))
    copied = engine.CachedBatches(setup.method, torch.from_numpy(dataset.train.images[split.keep]), setup.augment,
                                  setup.seed, epoch=1)
    pairs = list(zip(by_row, copied))
    assert len(pairs) == len(split.keep) // TINY_RECIPE["batch_size"]
    for a, b in pairs:
        assert torch.equal(a.raw, b.raw) and torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)

    # The engine hands the device the whole training cache, never a copy of the rows it trains on.
    sizes = []
    real = engine.images_on
    monkeypatch.setattr(engine, "images_on", lambda device, images: sizes.append(len(images)) or real(device, images))
    result = engine.main(tiny_spec(tiny_synth, tmp_path / "run", noise="sym", rate=0.3))
    held = result["val_split"]["held_out"]
    assert sorted(sizes) == sorted([TINY["n_train"], TINY["n_test"], held])


def test_a_resumed_split_run_ends_as_an_uninterrupted_one(tiny_synth: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    spec = dict(noise="sym", rate=0.3, device="cpu")
    whole = engine.main(tiny_spec(tiny_synth, tmp_path / "whole", **spec))
    resumed = interrupt_then_resume(tiny_spec(tiny_synth, tmp_path / "resumed", **spec), monkeypatch)
    for key in ("acc_val", "val_epoch", "acc_last", "val_split"):
        assert resumed[key] == whole[key], key
    same = lambda name: [Path(r["run_dir"], name).read_text() for r in (whole, resumed)]  # noqa: E731
    assert len(set(same("val_split.txt"))) == 1
    whole_rows, resumed_rows = (list(csv.DictReader(io.splitlines())) for io in same("metrics.csv"))
    assert [r["val_acc"] for r in whole_rows] == [r["val_acc"] for r in resumed_rows]

    # a partial run whose recorded split is not the one its seeds draw is refused, not silently resumed
    partial = tiny_spec(tiny_synth, tmp_path / "tampered", **spec)
    with monkeypatch.context() as patched:
        patched.setattr(engine, "train_one_epoch", _interrupt_at_epoch(engine.train_one_epoch, 1))
        with pytest.raises(KeyboardInterrupt):
            engine.main(partial)
    record = engine.resolve(partial).run_dir / "val_split.txt"
    record.write_text("train_00001.jpg\n")
    with pytest.raises(RunError, match="val_split.txt records another validation split"):
        engine.main(partial)
    assert json.loads((record.parent / "config.json").read_text())["recipe"]["val_split"] == 0.1


def _interrupt_at_epoch(real, epoch: int):
    def train_one_epoch(*args, **kwargs):
        if args[5] == epoch:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    return train_one_epoch
