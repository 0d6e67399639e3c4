"""``--imbalance RHO``: the long-tailed training subset's profile, its place in a run, its identity, and its tables."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fer_bench.cli import main as cli
from fer_bench.datasets.base import DatasetError
from fer_bench.datasets.imbalance import Imbalance, check_rho, long_tailed, profile_counts, subset_indices
from fer_bench.engine.data import load_data, run_dataset, run_train_labels
from fer_bench.engine.distributed import World
from fer_bench.engine.run import main as run_main
from fer_bench.engine.spec import RunSpec, config_record, resolve
from fer_bench.noise.files import export_train_labels, generate_train_labels
from fer_bench.registry import create_dataset
from fer_bench.report.collect import aggregate, collect_runs
from fer_bench.report.style import block_title
from fer_bench.report.tables import build_table, to_csv, to_latex, to_markdown
from fer_bench.runs import RunError, RunId, parse_setting
from fer_bench.runs.identity import split_imbalance
from fer_bench.sweep.plan import Axes, expand

from .conftest import interrupt_then_resume, tiny_spec

# The tiny synthfer's training classes (tests/conftest.py TINY), in its class order:
# surprise, fear, disgust, happiness, sadness, anger, neutral.
TINY_COUNTS = [13, 10, 10, 22, 16, 8, 17]
# RHO 4 by hand. Ranked by size: happiness 22, neutral 17, sadness 16, surprise 13, fear 10, disgust 10 (equal
# sizes: by class index), anger 8; shrink 4 ** (-r / 6) = 1, .7937, .6300, .5, .3969, .3150, .25. The head is
# floor(min(22 / 1, 17 / .7937, 16 / .63, 13 / .5, 10 / .3969, 10 / .315, 8 / .25)) = floor(21.42) = 21 (neutral
# binds), and n_r = int(21 * shrink_r) = 21, 16, 13, 10, 8, 6, 5.
TINY_RHO4 = [10, 8, 6, 21, 13, 5, 16]
ONE_EPOCH = {"epochs": 1}


def _data(spec: RunSpec):
    return load_data(resolve(spec), World())


# ----- the profile, by hand ------------------------------------------------------------------------------------


def test_profile_counts_are_the_exponential_profile_by_hand() -> None:
    assert profile_counts(TINY_COUNTS, 4).tolist() == TINY_RHO4
    # a balanced training set gives the long-tailed CIFAR-10 counts at RHO 100 (LDAM-DRW's get_img_num_per_cls,
    # int(5000 * 0.01 ** (i / 9))): 12,406 images
    cifar = profile_counts([5000] * 10, 100)
    assert cifar.tolist() == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50] and cifar.sum() == 12406
    # RHO 1: a balanced subsample at the smallest class's size
    assert profile_counts(TINY_COUNTS, 1).tolist() == [8] * 7
    # a class without images stays out of the profile (C = 3 here): shrink 1, 3 ** -.5, 1/3; the head
    # floor(min(30, 34.64, 30)) = 30, then 17 and 10
    assert profile_counts([30, 0, 10, 20], 3).tolist() == [30, 0, 10, 17]
    # a whole product stays whole: 98 / 49 is 2, though 98 * 49 ** -1 is 1.9999999999999998 in floating point
    assert profile_counts([98, 50], 49).tolist() == [98, 2]


def test_a_ratio_that_leaves_the_tail_empty_or_a_single_class_is_refused_by_name() -> None:
    with pytest.raises(DatasetError, match=r"--imbalance 30 leaves anger, the smallest class, no image.*at most 22"):
        profile_counts(TINY_COUNTS, 30, ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"])
    with pytest.raises(DatasetError, match="images of 1 class"):
        profile_counts([0, 12, 0], 2)


@pytest.mark.parametrize("value, words", [("abc", "'abc' is not a number"), (0.5, "0.5 is below 1"),
                                          ("0", "'0' is below 1"), (float("nan"), "not a finite number"),
                                          ("inf", "'inf' is not a finite number"), (True, "not a number")])
def test_bad_ratios_are_refused_naming_the_value(value: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        check_rho(value)


def test_the_subset_is_deterministic_per_seed_and_nested_across_ratios() -> None:
    labels = np.repeat(np.arange(7), TINY_COUNTS)[np.random.default_rng(0).permutation(sum(TINY_COUNTS))]
    a = subset_indices(labels, 7, Imbalance(4, 0))
    assert np.array_equal(a, subset_indices(labels, 7, Imbalance(4.0, 0)))  # the same draw every time
    assert np.bincount(labels[a], minlength=7).tolist() == TINY_RHO4 and np.all(np.diff(a) > 0)
    assert not np.array_equal(a, subset_indices(labels, 7, Imbalance(4, 1)))  # another seed, other images
    # for one seed, a class keeps a subset of its images at a larger ratio
    b = subset_indices(labels, 7, Imbalance(8, 0))
    for c in range(7):
        kept_a, kept_b = set(a[labels[a] == c]), set(b[labels[b] == c])
        assert kept_b <= kept_a or kept_a <= kept_b


# ----- a run on the subset ------------------------------------------------------------------------------------


def test_the_run_reads_the_exact_profile_draws_noise_in_it_and_leaves_the_test_set_alone(tiny_synth: Path,
                                                                                           tmp_path: Path) -> None:
    full = create_dataset("synthfer", tiny_synth, progress=False)
    assert np.bincount(full.train.labels).tolist() == TINY_COUNTS
    data = _data(tiny_spec(tiny_synth, tmp_path, noise="sym", rate=0.3, imbalance=4))
    train = data.dataset.train
    assert np.bincount(train.labels, minlength=7).tolist() == TINY_RHO4
    assert set(train.names) < set(full.train.names) and len(data.train_labels) == sum(TINY_RHO4)
    # the test split is the dataset's own, image for image
    assert data.dataset.test.names == full.test.names
    assert np.array_equal(data.dataset.test.labels, full.test.labels)
    assert np.array_equal(np.asarray(data.dataset.test.images), np.asarray(full.test.images))
    # the noise is drawn in the subset (its record counts the subset's images), after it
    assert data.noise.n == sum(TINY_RHO4) and list(data.noise.class_counts.values()) == TINY_RHO4
    subset = long_tailed(full, Imbalance(4, 0)).dataset
    again, _ = generate_train_labels(subset, "sym", 0.3, 0)
    assert np.array_equal(data.train_labels, again)
    # recorded: the config (identity) and the fingerprint of the data as it lies
    assert data.config["imbalance"] == {"profile": "exponential", "rho": 4.0, "seed": 0}
    assert data.config["data_fingerprint"] == full.fingerprint()
    assert data.imbalance["class_counts"] == dict(zip(full.class_names, TINY_RHO4))
    assert (data.imbalance["train_images"], data.imbalance["of"], data.imbalance["realised_ratio"]) == (79, 96, 4.2)


def test_a_finished_run_records_the_subset_holds_out_its_split_from_it_and_reads_it_again(
        tiny_synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tiny_spec(tiny_synth, tmp_path / "a", noise="sym", rate=0.2, imbalance=4)
    resumed = interrupt_then_resume(spec, monkeypatch)
    straight = run_main(tiny_spec(tiny_synth, tmp_path / "b", noise="sym", rate=0.2, imbalance=4))
    run_dir = resolve(spec).run_dir
    # a resumed run draws the same subset (and noise, and split), and ends where an uninterrupted one does
    other = resolve(tiny_spec(tiny_synth, tmp_path / "b", noise="sym", rate=0.2, imbalance=4)).run_dir
    for name in ("train_labels.txt", "val_split.txt", "noise.json"):
        assert (run_dir / name).read_text() == (other / name).read_text()
    assert resumed["acc_last"] == straight["acc_last"] and resumed["imbalance"] == straight["imbalance"]
    assert resumed["imbalance"]["class_counts"] == dict(zip(resumed["class_names"], TINY_RHO4))
    # the noisy validation split is held out of the subset
    names = [line.split()[0] for line in (run_dir / "train_labels.txt").read_text().splitlines()]
    held = (run_dir / "val_split.txt").read_text().split()
    assert len(names) == 79 and set(held) < set(names)
    assert resumed["val_split"]["held_out"] + resumed["val_split"]["train"] == 79
    # the clean test set, all of it: every test image is in the confusion matrix
    full = create_dataset("synthfer", tiny_synth, progress=False)
    assert np.array(resumed["confusion_last"]).sum(1).tolist() == np.bincount(full.test.labels, minlength=7).tolist()
    # read again (eval, gallery, user study): the run's own subset, whose labels match the ones it trained on
    config = json.loads((run_dir / "config.json").read_text())
    dataset = run_dataset(config)
    assert dataset.train.names == names
    assert len(run_train_labels(run_dir, dataset)) == 79
    with pytest.raises(RunError, match=r"long-tailed subset rho 4, seed 0, of synthfer.*full training split"):
        run_train_labels(run_dir, full)


def test_a_label_file_names_the_full_training_split_and_the_subset_takes_its_rows(tiny_synth: Path,
                                                                                   tmp_path: Path) -> None:
    full = create_dataset("synthfer", tiny_synth, progress=False)
    labels, record = generate_train_labels(full, "sym", 0.4, 7)
    file = tmp_path / "noisy.txt"
    export_train_labels(full, labels, record, file)
    data = _data(tiny_spec(tiny_synth, tmp_path, noise_file=str(file), imbalance=4, seed=2))
    keep = long_tailed(full, Imbalance(4, 2)).keep  # a label file's run: the subset follows the training seed
    assert np.array_equal(data.train_labels, labels[keep])
    assert data.noise.n == 79 and data.noise.label_file_sha256 == record.label_file_sha256
    assert data.noise.realised_rate == pytest.approx(np.mean(labels[keep] != full.train.labels[keep]))


# ----- identity ------------------------------------------------------------------------------------------------


def test_ratio_and_its_seed_are_in_the_name_and_the_config_and_the_name_comes_back_from_the_config(
        tiny_synth: Path, tmp_path: Path) -> None:
    def run(**kw):
        return resolve(tiny_spec(tiny_synth, tmp_path, noise="sym", rate=0.3, **kw))

    full, rho4, rho10 = run(), run(imbalance=4), run(imbalance=10)
    seed1, seed0_said, noise5 = run(imbalance=4, imbalance_seed=1), run(imbalance=4, imbalance_seed=0), \
        run(imbalance=4, noise_seed=5)
    assert rho4.id.setting == "sym-0.3+imbalance=4" and rho10.id.setting == "sym-0.3+imbalance=10"
    assert seed1.id.setting == "sym-0.3+imbalance=4+imbalance_seed=1"
    assert seed0_said.run_dir == rho4.run_dir  # the default seed (the noise seed), said or not: one run
    assert noise5.imbalance.seed == 5 and noise5.id.setting == "sym-0.3+imbalance=4"  # follows the noise seed
    assert run(imbalance=4, noise_seed=5, imbalance_seed=0).id.setting == "sym-0.3+imbalance=4+imbalance_seed=0"
    dirs = [r.run_dir for r in (full, rho4, rho10, seed1, noise5)]
    assert len(set(dirs)) == len(dirs)
    for r in (full, rho4, rho10, seed1, noise5):
        config = config_record(r, None)
        assert RunId.from_config(json.loads(json.dumps(config))) == r.id  # the name comes from the record
        assert RunId.parse(r.run_dir) == r.id
    # a run of the full training split: no key, so its config, hash and name are what they were
    assert "imbalance" not in config_record(full, None) and full.id.setting == "sym-0.3"
    assert config_record(seed1, None)["imbalance"] == {"profile": "exponential", "rho": 4.0, "seed": 1}
    # one value, however it is typed
    assert run(imbalance="4.0").run_dir == rho4.run_dir


def test_setting_names_parse_back() -> None:
    assert split_imbalance("sym-0.3+imbalance=10") == ("sym-0.3", 10.0, None)
    assert split_imbalance("clean+imbalance=2.5+imbalance_seed=3") == ("clean", 2.5, 3)
    assert split_imbalance("file-noise01+imbalance=10@0123abcd") == ("file-noise01@0123abcd", 10.0, None)
    assert split_imbalance("asym-exact-0.2") == ("asym-exact-0.2", None, None)
    assert parse_setting("asym-exact-0.2+imbalance=100") == ("asym-exact", 0.2)
    assert parse_setting("clean+imbalance=4") == ("none", 0.0)
    assert RunId.parse("x/synthfer/sym-0.2+imbalance=4/baseline/seed1").imbalance == 4.0
    assert block_title("sym", 0.3, "sym-0.3+imbalance=10") == "Symmetric 30%, ρ = 10"
    assert block_title("none", 0.0, "clean+imbalance=4+imbalance_seed=2") == "clean, ρ = 4 (subset seed 2)"


def test_bad_values_are_usage_errors_naming_the_value(tiny_synth: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    for args, named in ((["run", "--imbalance", "0.5"], "'0.5' is below 1"),
                        (["run", "--imbalance", "ten"], "'ten' is not a number"),
                        (["sweep", "--imbalance", "10,abc", "--dry-run"], "'abc' is not a number"),
                        (["run", "--imbalance", "10", "--imbalance-seed", "-1"], "-1: seeds are integers from 0")):
        res = runner.invoke(cli, args)
        assert res.exit_code == 2, res.output
        assert "--imbalance" in res.output and named in res.output, res.output
    res = runner.invoke(cli, ["run", "--root", str(tiny_synth), "--out", str(tmp_path), "--imbalance-seed", "3"])
    assert res.exit_code == 2 and "--imbalance-seed 3 without --imbalance" in res.output, res.output
    res = runner.invoke(cli, ["run", "--root", str(tiny_synth), "--out", str(tmp_path), "--imbalance", "50",
                              "--set", "epochs=1", "--quiet"])
    assert res.exit_code == 2 and "--imbalance 50 leaves anger, the smallest class, no image" in res.output
    assert not list(tmp_path.rglob("config.json"))


def test_a_bad_ratio_is_answered_without_importing_torch() -> None:
    from .test_startup import PROBE

    done = subprocess.run([sys.executable, "-c", PROBE, "run", "--imbalance", "0.9"], capture_output=True, text=True)
    assert "'0.9' is below 1" in done.stderr and "exit 2" in done.stdout, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"  # neither torch nor pandas was imported


def test_a_sweep_crosses_every_noise_setting_with_every_ratio(tiny_synth: Path, tmp_path: Path) -> None:
    base = tiny_spec(tiny_synth, tmp_path, imbalance_seed=3)
    specs = expand(Axes(methods=("baseline",), rates=(0.2,), seeds=(0,), clean=True, imbalances=(None, 4.0, 10.0)),
                   base)
    assert [resolve(s).id.setting for s in specs] == [
        "clean", "clean+imbalance=4+imbalance_seed=3", "clean+imbalance=10+imbalance_seed=3",
        "sym-0.2", "sym-0.2+imbalance=4+imbalance_seed=3", "sym-0.2+imbalance=10+imbalance_seed=3"]
    res = CliRunner().invoke(cli, ["sweep", "--root", str(tiny_synth), "--out", str(tmp_path), "--seeds", "0",
                                   "--rates", "0.2", "--imbalance", "none,4,4.0", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "synthfer/sym-0.2+imbalance=4/baseline/seed0" in res.output and "2 runs, 0 finished" in res.output


# ----- tables --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crossed(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs that differ only in the ratio or the subset's seed, beside one on the full training split."""
    out = tmp_path_factory.mktemp("imbalance") / "runs"
    for kw in ({}, {"imbalance": 2}, {"imbalance": 4}, {"imbalance": 4, "imbalance_seed": 1}):
        run_main(tiny_spec(tiny_synth, out, noise="sym", rate=0.2, overrides=ONE_EPOCH, **kw))
    return out


def test_runs_differing_only_in_the_ratio_or_its_seed_never_share_a_cell(crossed: Path) -> None:
    runs = collect_runs(crossed)
    assert len(runs) == 4
    agg = aggregate(runs, "last", "acc")
    assert len(agg) == 4 and (agg["n"] == 1).all()
    assert sorted(agg["setting"]) == ["sym-0.2", "sym-0.2+imbalance=2", "sym-0.2+imbalance=4",
                                      "sym-0.2+imbalance=4+imbalance_seed=1"]
    for r in agg.itertuples():  # each cell is its one run, accuracy and its companion
        result = json.loads(next(Path(d) for d in runs.loc[runs["setting"] == r.setting, "run_dir"])
                            .joinpath("result.json").read_text())
        assert r.mean == pytest.approx(100 * result["acc_last"])
        assert r.companion_mean == pytest.approx(100 * result["mean_class_acc_last"])


def test_accuracy_tables_of_long_tailed_runs_show_mean_class_accuracy_beside_it(crossed: Path) -> None:
    agg = aggregate(collect_runs(crossed), "last", "acc")
    table = build_table(agg, "last", "acc")
    md = to_markdown(table)
    assert md.splitlines()[0] == "| Noise | Method | synthfer acc. | synthfer mean class acc. |"
    titles = [line.split("|")[1].strip() for line in md.splitlines()[2:] if line.startswith("| ")]
    assert titles == ["Symmetric 20%", "Symmetric 20%, ρ = 2", "Symmetric 20%, ρ = 4",
                      "Symmetric 20%, ρ = 4 (subset seed 1)"]
    assert "beside it, mean class accuracy" in table.caption and "ρ: a long-tailed training subset" in table.caption
    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert len(rows) == 8 and {r["metric"] for r in rows} == {"acc", "mean_class_acc"}
    assert {r["dataset"] for r in rows} == {"synthfer"}
    assert sorted({r["imbalance"] for r in rows}) == ["", "2.0", "4.0"]
    mca = next(r for r in rows if r["imbalance"] == "2.0" and r["metric"] == "mean_class_acc")
    expected = agg.loc[agg["setting"] == "sym-0.2+imbalance=2", "companion_mean"].item()
    assert float(mca["mean"]) == pytest.approx(expected, abs=1e-4)
    assert r"$\rho$ = 4" in to_latex(table)
    # the mean-class-accuracy table itself has one column a dataset
    assert to_markdown(build_table(aggregate(collect_runs(crossed), "last", "mean_class_acc"), "last",
                                   "mean_class_acc")).splitlines()[0] == "| Noise | Method | synthfer |"
