"""A run is its valid record, in the directory its record names: copies, look-alike label files, other images,
foreign checkpoints, stale derived files and broken or out-of-range records are never read as a finished run."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

import fer_bench.engine.run as engine
from fer_bench.cli import main
from fer_bench.datasets.synthfer.generate import generate
from fer_bench.engine.run import RunError, resolve
from fer_bench.noise.files import export_train_labels, generate_train_labels
from fer_bench.registry import DATASETS
from fer_bench.report.collect import collect_runs
from fer_bench.report.plots import load_runs
from fer_bench.runs import RunDir, RunRecord, collect, config_hash
from fer_bench.engine.trained import evaluate_run
from fer_bench.sweep.plan import run_state

from .conftest import TINY, tiny_spec

SYM = {"noise": "sym", "rate": 0.3}


def cli(*args: Any) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def spec(tiny_synth: Path, out: Path, seed: int = 0, **kw: Any) -> engine.RunSpec:
    return tiny_spec(tiny_synth, out, seed=seed, **{**SYM, **kw})


@pytest.fixture(scope="module")
def finished(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two finished tiny runs (seeds 0 and 1) under one runs root, trained once for the module."""
    out = tmp_path_factory.mktemp("finished") / "runs"
    for seed in (0, 1):
        engine.main(spec(tiny_synth, out, seed))
    return out


@pytest.fixture
def runs(finished: Path, tmp_path: Path) -> Path:
    """This test's own copy of the finished runs."""
    shutil.copytree(finished, tmp_path / "runs")
    return tmp_path / "runs"


def run_dir(tiny_synth: Path, out: Path, seed: int = 0, **kw: Any) -> Path:
    return resolve(spec(tiny_synth, out, seed, **kw)).run_dir


def table_cells(runs: Path) -> tuple[list[dict[str, str]], str]:
    res = CliRunner().invoke(main, ["table", "--results", str(runs), "--format", "csv"])
    assert res.exit_code == 0, res.output
    return list(csv.DictReader(io.StringIO(res.stdout))), res.stderr


def acc_last(path: Path) -> float:
    return json.loads((path / "result.json").read_text())["acc_last"]


# --- item 3: a copied run directory is not another seed ------------------------------------------------------

def test_a_copied_run_directory_is_left_out_and_named(tiny_synth: Path, runs: Path) -> None:
    seed0 = run_dir(tiny_synth, runs)
    shutil.copytree(seed0, seed0.with_name("seed0.bak"))
    cells, err = table_cells(runs)
    assert [c["n"] for c in cells] == ["2"]
    mean = (acc_last(seed0) + acc_last(run_dir(tiny_synth, runs, 1))) / 2
    assert float(cells[0]["mean"]) == pytest.approx(100 * mean, abs=0.01)
    assert "seed0.bak" in err and "left out" in err
    # every collector goes through the same rule: the data frame, the figures' loader, the Python API
    assert len(collect_runs(runs)) == len(load_runs(runs)) == len(collect(runs, warn=lambda m: None)) == 2


def test_a_second_directory_of_one_run_counts_once(tiny_synth: Path, runs: Path) -> None:
    seed0 = run_dir(tiny_synth, runs)
    again = runs / "elsewhere" / seed0.relative_to(runs)  # properly named, in another subtree of the same root
    shutil.copytree(seed0, again)
    assert sorted(collect_runs(runs)["seed"]) == [0, 1]
    said: list[str] = []
    records = collect(runs, warn=said.append)
    assert sorted(r.id.seed for r in records) == [0, 1]
    assert len(said) == 1 and str(again) in said[0] and str(seed0) in said[0]
    cells, err = table_cells(runs)
    assert [c["n"] for c in cells] == ["2"] and "the same run as" in err


def test_the_committed_records_are_all_valid_finished_runs() -> None:
    """A guard for the rules above: all 216 runs of the two committed reference benchmarks pass them, unwarned,
    and so does every other committed results tree (each a results root of its own: the profile search's
    candidates hold some of the benchmark's runs again, as a tree of their own)."""
    synthfer = Path(__file__).resolve().parent.parent / "results" / "synthfer"
    said: list[str] = []
    benchmarks = [synthfer / "runs", synthfer / "pretrained" / "runs"]
    assert sum(len(collect(tree, warn=said.append)) for tree in benchmarks) == 216 and said == []
    search = synthfer / "protocol" / "runs"
    for tree in sorted(search.iterdir()) if search.is_dir() else []:
        assert collect(tree, warn=said.append) and said == [], tree


# --- item 4: label files of one name, other contents -----------------------------------------------------------

def test_label_files_of_one_name_are_told_apart_by_their_content(tiny_synth: Path, tmp_path: Path) -> None:
    ds = DATASETS.get("synthfer").load(tiny_synth, progress=False)
    files = {}
    for name, seed in (("a", 5), ("b", 6)):
        labels, record = generate_train_labels(ds, "sym", 0.3, seed=seed)
        files[name] = tmp_path / "lf" / name / "noise.txt"
        files[name].parent.mkdir(parents=True)
        export_train_labels(ds, labels, record, files[name])
    files["c"] = tmp_path / "lf" / "c" / "other.txt"  # a's labels under another name
    files["c"].parent.mkdir(parents=True)
    shutil.copy(files["a"], files["c"])
    out = tmp_path / "runs"
    for name, seed in (("a", 0), ("b", 1), ("c", 1)):
        engine.main(tiny_spec(tiny_synth, out, seed=seed, noise_file=str(files[name])))
    sha = {k: hashlib.sha256(files[k].read_bytes()).hexdigest()[:8] for k in "ab"}
    frame = collect_runs(out)
    assert sorted(frame["setting"]) == sorted([f"file-noise@{sha['a']}", f"file-noise@{sha['a']}",
                                               f"file-noise@{sha['b']}"])
    res = cli("table", "--results", out)
    assert res.exit_code == 0, res.output
    assert f"label file noise@{sha['a']}" in res.stdout and f"label file noise@{sha['b']}" in res.stdout
    assert "(2) |" in res.stdout and "(1) |" in res.stdout  # a's labels: two seeds, whatever the file was called
    assert "file-noise" in res.stderr and "different contents" in res.stderr
    assert "file-other" in res.stderr  # the same labels under two names, said too


# --- item 5: the same labels on other images --------------------------------------------------------------------

def test_the_same_labels_on_other_images_are_another_run(tiny_synth: Path, runs: Path, tmp_path: Path) -> None:
    other = tmp_path / "synthfer-40px"
    generate(other, workers=1, progress=False, **{**TINY, "size": 40})  # same seed: the same labels
    with pytest.raises(RunError, match=r"other images: data fingerprint .*--out .*--force") as err:
        engine.main(spec(other, runs))
    assert str(other) in str(err.value)
    # the fingerprint is recorded, but not in the hash that names the run
    config = json.loads((run_dir(tiny_synth, runs) / "config.json").read_text())
    fingerprint = config.pop("data_fingerprint")
    assert len(fingerprint) == 16 and config_hash(config) == config["config_hash"]
    # a record from before the fingerprint existed stays finished
    (run_dir(tiny_synth, runs) / "config.json").write_text(json.dumps(config))
    assert engine.main(spec(other, runs)).get("already_done")


# --- item 6: a checkpoint is its own run's only -------------------------------------------------------------------

def test_a_resume_and_eval_refuse_another_runs_checkpoint(tiny_synth: Path, runs: Path) -> None:
    seed0, seed1 = run_dir(tiny_synth, runs), run_dir(tiny_synth, runs, 1)
    shutil.copy(seed1 / "checkpoint.pt", seed0 / "checkpoint.pt")
    with pytest.raises(RunError, match=r"checkpoint.pt was written by another run .*--force"):
        evaluate_run(seed0, device_name="cpu", progress=False)
    (seed0 / "result.json").unlink()  # a partial run, with seed 1's checkpoint
    with pytest.raises(RunError, match=r"checkpoint.pt was written by another run .*--force"):
        engine.main(spec(tiny_synth, runs))
    assert not (seed0 / "result.json").exists()
    ckpt = torch.load(seed1 / "checkpoint.pt", weights_only=True)
    del ckpt["config_hash"]
    torch.save(ckpt, seed1 / "checkpoint.pt")
    with pytest.raises(RunError, match=r"checkpoint.pt does not say which run wrote it"):
        evaluate_run(seed1, device_name="cpu", progress=False)


# --- item 7: a retrain leaves nothing of the old run behind --------------------------------------------------------

def test_force_removes_everything_derived_from_the_old_run(tiny_synth: Path, runs: Path) -> None:
    seed0 = run_dir(tiny_synth, runs)
    derived = ["userstudy.json", "final_train_labels.txt", "label_distributions.csv", "tensorboard/events"]
    for name in derived + ["log.txt"]:
        (seed0 / name).parent.mkdir(exist_ok=True)
        (seed0 / name).write_text("from the old run\n")
    engine.main(spec(tiny_synth, runs, force=True))
    assert [n for n in derived if (seed0 / n).exists()] == []
    assert (seed0 / "log.txt").read_text() == "from the old run\n"  # a sweep worker is appending to it
    assert (seed0 / "result.json").is_file()


def test_a_user_study_cache_of_another_run_is_not_used(tiny_synth: Path, runs: Path) -> None:
    from fer_bench.report.userstudy import measure

    first = measure(runs, device="cpu", progress=False)
    cache = run_dir(tiny_synth, runs) / "userstudy.json"
    cached = json.loads(cache.read_text())
    cached["js"]["predictions"] = [0.999, 0.999]  # what an older model of this run measured
    cache.write_text(json.dumps(cached))
    result_file = cache.with_name("result.json")
    result = json.loads(result_file.read_text())
    result["finished_at"] = "2099-01-01T00:00:00+00:00"  # trained again since
    result_file.write_text(json.dumps(result))
    again = measure(runs, device="cpu", progress=False)
    assert (again["js_all"] < 0.99).all()
    assert sorted(again["js_all"]) == pytest.approx(sorted(first["js_all"]))


# --- item 8: one definition of finished -----------------------------------------------------------------------------

def test_a_truncated_result_is_not_finished_anywhere_and_the_rerun_rebuilds_it(tiny_synth: Path, runs: Path,
                                                                               capsys: pytest.CaptureFixture) -> None:
    seed0 = run_dir(tiny_synth, runs)
    before = json.loads((seed0 / "result.json").read_text())
    (seed0 / "result.json").write_text((seed0 / "result.json").read_text()[:200])
    assert run_state(spec(tiny_synth, runs)).startswith("partial (epoch 2")  # what a sweep sees
    assert not RunDir(seed0).finished()
    cells, err = table_cells(runs)
    assert [c["n"] for c in cells] == ["1"] and str(seed0 / "result.json") in err and "unreadable" in err
    rebuilt = engine.main(spec(tiny_synth, runs))
    assert not rebuilt.get("already_done") and "writing it again from its last checkpoint" in capsys.readouterr().err
    assert {k: rebuilt[k] for k in ("acc_last", "acc_best", "acc_last5", "confusion_last")} == \
        {k: before[k] for k in ("acc_last", "acc_best", "acc_last5", "confusion_last")}
    assert RunDir(seed0).finished()


# --- item 9: records are validated when read ------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [("acc_last", "0.81"), ("acc_last", 57), ("mean_class_acc_best", -0.1),
                                          ("acc_best", True), ("acc_val", 1.5), ("epochs", 0), ("epochs", 2.5),
                                          ("best_epoch", 3), ("acc_last5", None)])
def test_a_record_with_a_bad_value_is_named_and_left_out(tiny_synth: Path, runs: Path, field: str,
                                                         value: Any) -> None:
    seed0 = run_dir(tiny_synth, runs)
    result = json.loads((seed0 / "result.json").read_text())
    result[field] = value
    (seed0 / "result.json").write_text(json.dumps(result))
    with pytest.raises(RunError, match=re.escape(f"{seed0 / 'result.json'}: field '{field}' is ")):
        RunRecord.read(seed0)
    cells, err = table_cells(runs)
    assert [c["n"] for c in cells] == ["1"] and f"field '{field}'" in err
    res = cli("plot", "confusion", seed0, "--out", seed0.parent / "cm")
    assert res.exit_code == 2 and f"field '{field}'" in res.output
