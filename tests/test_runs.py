"""Runs: one owner for a run's identity and directory, and the reporting bugs a shared record fixes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fer_bench.cli import main
from fer_bench.datasets.synthfer.generate import generate

from .conftest import TINY, TINY_RECIPE

TINY_SETS = [arg for k, v in TINY_RECIPE.items() for arg in ("--set", f"{k}={v}")]
ONE_EPOCH = [*TINY_SETS, "--set", "epochs=1"]


def cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("name", [
    "synthfer/clean/baseline/seed0",
    "synthfer/sym-0.3/lanet+alpha=0.5/seed2",
    "rafdb+classes=8/asym-exact-0.2/scn+unified+profile=cpu/seed1-noise7",
    "synthfer/file-noise01/eac/seed0",
])
def test_a_run_name_parses_back_to_the_same_name(name: str, tmp_path: Path) -> None:
    from fer_bench.runs import RunId

    run_id = RunId.parse(tmp_path / "runs" / name)
    assert str(run_id.name()) == name
    assert run_id.method == name.split("/")[2].split("+")[0]
    with pytest.raises(ValueError, match="not named like a run directory"):
        RunId.parse(tmp_path / "runs" / "synthfer" / "clean" / "baseline")


def test_a_checkpoint_path_names_one_directory_level() -> None:
    from fer_bench.runs.identity import variant_name

    assert variant_name("eac", overrides={"pretrained": "/w/vggface2/resnet50_ft_weight.pkl"}) == \
        "eac+pretrained=resnet50_ft_weight.pkl"
    assert variant_name("lanet", overrides={"pretrained": "C:\\w\\ms.pth", "lr": 0.1}) == "lanet+lr=0.1+pretrained=ms.pth"


def test_identity_from_a_saved_config_is_the_directory_it_was_written_to(tiny_synth: Path, tmp_path: Path) -> None:
    from fer_bench.runs import RunId

    res = cli("run", "--root", tiny_synth, "--out", tmp_path, "--quiet", "--noise", "asym", "--rate", "0.2",
              "--noise-seed", "5", "--protocol", "unified", *ONE_EPOCH)
    assert res.exit_code == 0, res.output
    run_dir = next(tmp_path.rglob("result.json")).parent
    config = json.loads((run_dir / "config.json").read_text())
    assert tmp_path / RunId.from_config(config).name() == run_dir
    assert RunId.parse(run_dir) == RunId.from_config(config)



def test_a_config_records_its_schema_outside_the_runs_identity(tiny_synth: Path, tmp_path: Path) -> None:
    from fer_bench.runs import SCHEMA_VERSION, RunDir, config_hash, migrate

    res = cli("run", "--root", tiny_synth, "--out", tmp_path, "--quiet", *ONE_EPOCH)
    assert res.exit_code == 0, res.output
    run_dir = next(tmp_path.rglob("result.json")).parent
    config = json.loads((run_dir / "config.json").read_text())
    assert config["schema_version"] == SCHEMA_VERSION and migrate(config) is config
    assert config_hash(config) == config_hash({k: v for k, v in config.items() if k != "schema_version"})
    assert config_hash(config) == config["config_hash"] == RunDir(run_dir).result()["config_hash"]


def test_migrate_names_a_schema_0_record_as_its_directory_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Schema-0 names leave out the built-in datasets' default profiles of when schema 1 began (synthfer's
    cpu-face), whatever the record says its default was; no later change of a default renames a run."""
    from fer_bench.datasets.synthfer.loader import SynthFER
    from fer_bench.runs import SCHEMA_VERSION, RunError, RunId, migrate

    committed = Path(__file__).resolve().parent.parent / "results" / "synthfer"
    scratch = committed / "runs" / "synthfer" / "sym-0.3" / "lanet+profile=cpu" / "seed0"
    pretrained = committed / "pretrained" / "runs" / "synthfer" / "sym-0.3" / "lanet" / "seed0"
    for run_dir, recorded_default in ((scratch, None), (pretrained, "cpu")):
        config = json.loads((run_dir / "config.json").read_text())
        assert "schema_version" not in config and config.get("default_profile") == recorded_default
        migrated = migrate(config)
        assert migrated["schema_version"] == SCHEMA_VERSION and migrated["default_profile"] == "cpu-face"
        assert migrated["recipe"]["val_split"] == config["recipe"].get("val_split", 0.0)  # the scratch runs': 0
        assert migrate(migrated) is migrated
        assert RunId.from_config(config).name().parts == run_dir.parts[-4:]
        with monkeypatch.context() as m:
            m.setattr(SynthFER, "default_profile", "paper")  # a record never changes name with a default
            assert RunId.from_config(config).name().parts == run_dir.parts[-4:]
    with pytest.raises(RunError, match="written by a newer fer-bench"):
        migrate({"schema_version": 99})

# --- bug 2: a noise model without --rate ---------------------------------------------------------

def test_a_noise_model_without_a_rate_exits_2_naming_the_rate(tiny_synth: Path, tmp_path: Path) -> None:
    res = cli("run", "--root", tiny_synth, "--out", tmp_path / "runs", "--quiet", "--noise", "sym", *ONE_EPOCH)
    assert res.exit_code == 2, res.output
    assert "--noise sym needs --rate" in res.output
    assert not (tmp_path / "runs").exists()
    res = cli("noise", "export", "--root", tiny_synth, "--noise", "asym", "--out", tmp_path / "n.txt")
    assert res.exit_code == 2 and "--rate" in res.output and not (tmp_path / "n.txt").exists()
    # the clean labels still need none
    res = cli("noise", "export", "--root", tiny_synth, "--noise", "none", "--out", tmp_path / "clean.txt")
    assert res.exit_code == 0, res.output


# --- bug 1: label-file runs -------------------------------------------------------------------------

def test_label_file_runs_are_settings_of_their_own_with_their_realised_rate(tiny_synth: Path,
                                                                             tmp_path: Path) -> None:
    out = tmp_path / "runs"
    for name, rate in (("noise01", 0.1), ("noise03", 0.3)):
        res = cli("noise", "export", "--root", tiny_synth, "--noise", "sym", "--rate", rate, "--exact",
                  "--out", tmp_path / f"{name}.txt")
        assert res.exit_code == 0, res.output
        res = cli("run", "--root", tiny_synth, "--out", out, "--quiet", "--noise-file", tmp_path / f"{name}.txt",
                  *ONE_EPOCH)
        assert res.exit_code == 0, res.output
    res = cli("table", "--results", out, "--format", "csv")
    assert res.exit_code == 0, res.output
    rows = res.output.strip().splitlines()[1:]
    assert len(rows) == 2 and all(r.split(",")[6] == "1" for r in rows)  # n = 1 each: never pooled as seeds
    md = cli("table", "--results", out).output
    # round(0.1 * 96) = 10 and round(0.3 * 96) = 29 labels flipped
    assert "label file noise01 (realised 10.4%)" in md and "label file noise03 (realised 30.2%)" in md
    assert md.index("noise01") < md.index("noise03")


# --- bug 3: Slurm resubmits finished runs -------------------------------------------------------------

def test_slurm_launcher_does_not_submit_finished_runs(tiny_synth: Path, tmp_path: Path) -> None:
    pytest.importorskip("submitit")
    out = tmp_path / "runs"
    args = ["sweep", "--root", tiny_synth, "--out", out, "--rates", "0.2", "--seeds", "0", "--quiet", *ONE_EPOCH]
    assert cli(*args).exit_code == 0
    res = cli(*args, "--launcher", "slurm", "--slurm", "cluster=local", "--wait")
    assert res.exit_code == 0, res.output
    assert "submitted" not in res.output and "nothing to submit" in res.output
    assert "1 runs: 0 trained now, 1 already finished" in res.output
    assert not (out / ".submitit").exists()


# --- bug 4: the data root does not depend on the working directory -------------------------------------

def test_the_data_root_is_one_place_whatever_the_working_directory(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from fer_bench.paths import data_root

    monkeypatch.delenv("FER_BENCH_DATA")
    roots = []
    for where in ("a", "b"):
        (tmp_path / where).mkdir()
        monkeypatch.chdir(tmp_path / where)
        roots.append(data_root())
    assert roots[0] == roots[1] and roots[0].is_absolute() and tmp_path not in roots[0].parents


def test_generating_synthfer_says_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from fer_bench.datasets.synthfer import loader

    class Stop(Exception):
        pass

    def no_generation(root: Path, **kw: object) -> None:
        raise Stop

    monkeypatch.setattr(loader, "generate", no_generation)
    with pytest.raises(Stop):
        loader.SynthFER.load(progress=False)
    err = capsys.readouterr().err
    assert f"generating synthfer in {tmp_path / 'data' / 'synthfer'}" in err and "FER_BENCH_DATA" in err


def test_a_run_records_an_absolute_data_root_that_reports_use_from_anywhere(tiny_synth: Path, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch
                                                                              ) -> None:
    monkeypatch.chdir(tiny_synth.parent)
    res = cli("run", "--root", tiny_synth.name, "--out", tmp_path / "runs", "--quiet", *ONE_EPOCH)
    assert res.exit_code == 0, res.output
    run_dir = next((tmp_path / "runs").rglob("result.json")).parent
    assert json.loads((run_dir / "config.json").read_text())["root"] == str(tiny_synth.resolve())
    monkeypatch.chdir(tmp_path)
    res = cli("eval", run_dir)
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "datasets").exists() and not (tmp_path / "data").exists()


# --- bug 5: the same command on two dataset roots -----------------------------------------------------

def test_the_same_run_on_another_dataset_root_says_how_to_keep_both(tiny_synth: Path, tmp_path: Path) -> None:
    other = tmp_path / "synthfer-b"
    generate(other, workers=1, progress=False, **{**TINY, "seed": TINY["seed"] + 1})
    out = tmp_path / "runs"
    args = ["run", "--out", out, "--quiet", *ONE_EPOCH]
    assert cli(*args, "--root", tiny_synth).exit_code == 0
    res = cli(*args, "--root", other)
    assert res.exit_code == 2
    match = re.search(r"To keep both, give this one its own runs root: --out (\S+)", res.output)
    assert match and str(other) in res.output, res.output
    res = cli(*args[:1], "--out", match.group(1), *args[3:], "--root", other)
    assert res.exit_code == 0, res.output


# --- bug 9: grid variants in the table ------------------------------------------------------------------

def test_table_shows_default_runs_unless_variants_are_asked_for(tiny_synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    assert cli("run", "--root", tiny_synth, "--out", out, "--quiet", *ONE_EPOCH).exit_code == 0
    assert cli("run", "--root", tiny_synth, "--out", out, "--quiet", *ONE_EPOCH, "--set", "lr=0.01").exit_code == 0
    md = cli("table", "--results", out).output
    assert "lr=0.01" not in md and "| Baseline |" in md
    assert "over 1 seed," in md
    md = cli("table", "--results", out, "--methods", "baseline,baseline+lr=0.01").output
    assert "Baseline+lr=0.01" in md and "| Baseline |" in md


# --- bug 10: locking --------------------------------------------------------------------------------------

def test_fer_bench_starts_without_fcntl(tmp_path: Path) -> None:
    code = ("import sys, warnings; warnings.simplefilter('ignore'); sys.modules['fcntl'] = None\n"
            "from fer_bench.cli import main\n"
            "from fer_bench.runs import run_lock\n"
            "with run_lock(sys.argv[1]): pass\n"
            "main(['methods', 'list'])\n")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert res.returncode == 0, res.stderr
    assert "lanet" in res.stdout


def test_a_file_system_without_locks_is_a_clear_error(tiny_synth: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import filelock

    def unsupported(self: object, *args: object, **kwargs: object) -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(filelock.FileLock, "acquire", unsupported)
    res = cli("run", "--root", tiny_synth, "--out", tmp_path / "runs", "--quiet", *ONE_EPOCH)
    assert res.exit_code == 2
    assert "does not support file locks" in res.output and ".lock" in res.output


def test_filelock_is_a_declared_dependency() -> None:
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert re.search(r'^\s*"filelock[>=<~ ].*",$', pyproject, re.M)


# --- bug 11: a dirty working tree ---------------------------------------------------------------------------

def test_env_records_whether_the_working_tree_was_dirty(tmp_path: Path) -> None:
    from fer_bench.engine import environment

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "f.py").write_text("a = 1\n")
    subprocess.run([*git, "add", "f.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    state = environment.git_state(repo)
    assert re.fullmatch(r"[0-9a-f]{40}", state["git_commit"]) and state["git_dirty"] is False
    (repo / "f.py").write_text("a = 2\n")
    assert environment.git_state(repo)["git_dirty"] is True
    assert environment.git_state(tmp_path / "nowhere")["git_dirty"] is None
    import torch

    record = environment.environment_record(torch.device("cpu"))
    assert "git_dirty" in record and "git_commit" in record


# --- bug 7: LaTeX escaping and labels -----------------------------------------------------------------------

def _latex_compiles(tex: str, work: Path) -> None:
    """Compile ``tex`` in a document with a LaTeX engine when one is installed."""
    import shutil

    engine = next((e for e in ("pdflatex", "xelatex", "lualatex") if shutil.which(e)), None)
    if engine is None:
        return
    work.mkdir(exist_ok=True)
    (work / "t.tex").write_text("\\documentclass{article}\\usepackage[T1]{fontenc}\\usepackage{booktabs}"
                                "\\begin{document}\n" + tex + "\\end{document}\n")
    res = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=work,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-2000:]


def _tiny_agg():
    import pandas as pd

    return pd.DataFrame([
        {"dataset": "synthfer", "noise": "sym", "rate": 0.3, "setting": "sym-0.3", "method": "lanet",
         "variant": v, "mean": 80.0 + i, "std": 1.0, "n": 3, "noise_seeds_varied": True, "protocol": "official",
         "profile": "cpu"} for i, v in enumerate(["lanet", "lanet+tag=a<b>c|d_e&f%g#h$i{j}k~l^m\\n"])])


def test_every_latex_special_character_is_escaped_and_labels_are_unique(tmp_path: Path) -> None:
    from fer_bench.report.tables import build_table, to_latex

    table = build_table(_tiny_agg(), "last", "acc")
    table.caption += " share < 0.7 > 0.1 | 5% of #1 & $2 ~ ^_ {x} \\"
    tex = to_latex(table)
    body = "\n".join(ln.removesuffix(" \\\\").replace(" & ", " ") for ln in tex.splitlines()
                     if not ln.startswith(("\\begin", "\\end", "\\label")))  # column and row separators
    text = re.sub(r"\\[a-zA-Z]+(\{\})?|\\[&%$#_{}]|\$\\pm\$|\$\\Delta\$|\$\\alpha\$", "", body)
    assert not set("<>|&%$#_~^\\") & set(text.replace("{", "").replace("}", "")), text
    assert r"\textless{}" in tex and r"\textgreater{}" in tex and r"\textbar{}" in tex
    labels = {re.search(r"\\label\{(.*?)\}", to_latex(build_table(_tiny_agg(), stat, metric))).group(1)
              for stat in ("last", "best") for metric in ("acc", "mean_class_acc")}
    assert len(labels) == 4
    _latex_compiles(tex, tmp_path / "tex")


def test_table_label_and_caption_options(tiny_synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    assert cli("run", "--root", tiny_synth, "--out", out, "--quiet", *ONE_EPOCH).exit_code == 0
    res = cli("table", "--results", out, "--format", "latex", "--label", "tab:mine", "--caption", "Ours < 5% & more")
    assert res.exit_code == 0, res.output
    assert r"\label{tab:mine}" in res.output and r"\caption{Ours \textless{} 5\% \& more}" in res.output
    assert r"\label{tab:fer-bench-acc-best}" in cli("table", "--results", out, "--format", "latex",
                                                    "--stat", "best").output
    _latex_compiles(res.output, tmp_path / "tex")


# --- bug 6: the committed reference records ----------------------------------------------------------------

def test_the_committed_reference_records_redraw_a_figure_and_count_as_finished(tmp_path: Path) -> None:
    import numpy as np

    from fer_bench.report import plots

    committed = Path(__file__).resolve().parent.parent / "results" / "synthfer" / "runs"
    # From scratch: the cpu profile, named so since synthfer's default became cpu-face.
    run_dir = committed / "synthfer" / "sym-0.3" / "lanet+profile=cpu" / "seed0"
    res = cli("plot", "confusion", run_dir, "--normalise", "--out", tmp_path / "confusion")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "confusion.png").stat().st_size > 1000
    matrix, _, _ = plots.confusion_data(run_dir)
    assert np.array_equal(matrix, json.loads((run_dir / "result.json").read_text())["confusion_last"])
    # Their records predate schema 1 (migrate fills the recipe keys added later as the code then behaved:
    # val_split 0, every image trained on). synthfer now holds out a 10% noisy validation split by default,
    # and LA-Net's official recipe now sets shards and heatmap_peak, so today's command finds
    # them as what they are, finished runs of an older recipe, until they are trained again.
    res = cli("sweep", "--methods", "baseline,lanet", "--noise", "sym,asym", "--rates", "0.3", "--seeds", "0,2",
              "--clean", "--profile", "cpu", "--out", committed, "--dry-run")
    assert res.exit_code == 0, res.output
    assert res.output.strip().endswith("12 runs, 0 finished, 12 finished with an older recipe (kept; --force or another --out trains today's)"), res.output
    older = [line for line in res.output.splitlines() if line.startswith("finished, older recipe")]
    assert len(older) == 12, res.output
    # With a split of 0, the Baseline's committed runs are still the same runs: finished.
    from fer_bench.engine.spec import RunSpec, config_record, resolve
    from fer_bench.runs import RunDir

    for setting in ({"noise": "none"}, {"noise": "sym", "rate": 0.3, "seed": 2}):
        run = resolve(RunSpec(method="baseline", profile="cpu", out=str(committed), **setting))
        config = config_record(run, None)
        assert config["recipe"]["val_split"] == 0.1
        config["recipe"]["val_split"] = 0.0
        assert RunDir(run.run_dir).state(config) == "finished", run.run_dir


# --- the dataset loader contract ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["synthfer", "rafdb", "ferplus", "affectnet"])
def test_every_registered_dataset_fulfils_the_loader_contract(name: str) -> None:
    from fer_bench.datasets.contract import DatasetLoader, ScannableDatasetLoader
    from fer_bench.engine.recipe import PROFILES
    from fer_bench.registry import DATASETS, list_datasets

    assert name in list_datasets()
    loader = DATASETS.get(name)
    assert isinstance(loader, DatasetLoader) and loader.default_profile in PROFILES
    assert isinstance(loader, ScannableDatasetLoader) == (name != "synthfer")


def test_create_dataset_checks_options_by_name(tiny_synth: Path) -> None:
    from fer_bench.registry import create_dataset

    dataset = create_dataset("synthfer", tiny_synth, progress=False)
    assert len(dataset.train) == TINY["n_train"] and dataset.train.landmarks is not None
    with pytest.raises(ValueError, match="dataset option\\(s\\) classes not understood"):
        create_dataset("synthfer", tiny_synth, progress=False, classes=8)


# --- the Python API -----------------------------------------------------------------------------------------

def test_the_documented_python_api_example_runs(tiny_synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    import fer_bench

    page = (Path(__file__).resolve().parent.parent / "docs" / "reference" / "python-api.md").read_text()
    section = page.split("<!-- python-api-example:start -->")[1].split("<!-- python-api-example:end -->")[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    # the example's default synthfer is the tiny one, and it trains the tiny recipe
    shutil.copytree(tiny_synth, tmp_path / "data" / "synthfer")
    monkeypatch.chdir(tmp_path)
    code = code.replace('overrides={"epochs": 2}', f"overrides={TINY_RECIPE!r}")
    exec(compile(code, "docs/reference/python-api.md", "exec"), {})  # noqa: S102 (the documented example itself)
    out = capsys.readouterr().out
    assert "| Noise | Method | synthfer |" in out and "Symmetric 20%" in out and "tensor([" in out
    assert set(fer_bench.__all__) <= set(dir(fer_bench))
    for name in fer_bench.__all__:
        assert getattr(fer_bench, name) is not None


# --- the training loop takes any iterable of batches --------------------------------------------------------

def test_train_one_epoch_takes_any_iterable_of_batches(tiny_synth: Path, tmp_path: Path) -> None:
    import torch

    from fer_bench.engine import run as engine
    from fer_bench.registry import create_dataset

    from .conftest import tiny_spec

    run = engine.resolve(tiny_spec(tiny_synth, tmp_path, device="cpu"))
    dataset = create_dataset("synthfer", tiny_synth, progress=False)
    rows = []
    for materialise in (False, True):
        setup = engine.build_training(run, dataset, dataset.train.labels)
        images = torch.from_numpy(dataset.train.images)
        batches = engine.CachedBatches(setup.method, images, setup.augment, setup.seed, epoch=0)
        feed = list(batches) if materialise else batches  # a plain list of Batch objects works too
        rows.append(engine.train_one_epoch(setup.method, feed, setup.optimizer, setup.scheduler, False, 0))
    assert rows[0]["train_loss"] == pytest.approx(rows[1]["train_loss"], rel=1e-6)
    assert rows[0]["images_per_s"] > 0 and len(batches) == TINY["n_train"] // TINY_RECIPE["batch_size"]


def test_a_run_without_its_label_file_gets_its_labels_again_from_its_noise_record(tiny_synth: Path,
                                                                                  tmp_path: Path) -> None:
    import numpy as np

    from fer_bench.report import plots

    res = cli("run", "--root", tiny_synth, "--out", tmp_path, "--quiet", "--noise", "sym", "--rate", "0.3",
              *ONE_EPOCH)
    assert res.exit_code == 0, res.output
    run_dir = next(tmp_path.rglob("result.json")).parent
    kept = plots.gallery_data(run_dir, n=96).labels
    (run_dir / "train_labels.txt").unlink()  # as in the committed reference records
    assert np.array_equal(plots.gallery_data(run_dir, n=96).labels, kept)
    res = cli("plot", "gallery", run_dir, "--out", tmp_path / "gallery")
    assert res.exit_code == 0, res.output
    config = json.loads((run_dir / "config.json").read_text())
    config["noise"]["label_file_sha256"] = "0" * 64
    (run_dir / "config.json").write_text(json.dumps(config))
    res = cli("plot", "gallery", run_dir, "--out", tmp_path / "gallery")
    assert res.exit_code == 2 and "sha256 differs" in res.output
