"""Sweeps: expansion, the local pool, locks, failures, --dry-run and the submitit launcher."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from fer_bench.cli import main as cli
from fer_bench.runs import RunBusy, run_lock
from fer_bench.engine.recipe import RecipeError
from fer_bench.engine.run import resolve
from fer_bench.registry import UnknownNameError
from fer_bench.sweep.local import run_local
from fer_bench.sweep.plan import Axes, expand, parse_grid, run_state, split_list

from .conftest import TINY_RECIPE, tiny_spec


def _dirs(specs):
    return [resolve(s).run_dir for s in specs]


def test_expand_varies_seeds_slowest_and_lists_each_run_once(tiny_synth: Path, tmp_path: Path) -> None:
    axes = Axes(methods=("baseline", "scn"), noises=("sym", "asym"), rates=(0.1, 0.3), seeds=(0, 1), clean=True,
                grid=parse_grid(["lr=0.001,0.002"]))
    specs = expand(axes, tiny_spec(tiny_synth, tmp_path))
    # (clean + 2 noises x 2 rates) x 2 methods x 2 grid values x 2 seeds
    assert len(specs) == len(set(_dirs(specs))) == 5 * 2 * 2 * 2
    assert [s.seed for s in specs] == sorted(s.seed for s in specs)
    assert {s.overrides["lr"] for s in specs} == {0.001, 0.002}
    assert sum(s.noise == "none" for s in specs) == 2 * 2 * 2
    # "none" among the noise models lands in the same clean directories as --clean
    again = expand(Axes(methods=("baseline",), noises=("none", "sym"), rates=(0.1, 0.2), seeds=(0,), clean=True),
                   tiny_spec(tiny_synth, tmp_path))
    assert [str(d).split("/")[-3] for d in _dirs(again)] == ["clean", "sym-0.1", "sym-0.2"]


def test_bad_sweeps_fail_before_anything_runs(tiny_synth: Path, tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="nosuch"):
        expand(Axes(methods=("baseline", "nosuch")), tiny_spec(tiny_synth, tmp_path))
    with pytest.raises(ValueError, match="1.5"):
        expand(Axes(methods=("baseline",), rates=(1.5,)), tiny_spec(tiny_synth, tmp_path))
    with pytest.raises(RecipeError, match="--grid"):
        parse_grid(["alpha"])
    assert not list(tmp_path.glob("synthfer*"))


def test_grid_values_may_be_lists() -> None:
    assert split_list("[0.8,1],[1,1]") == ["[0.8,1]", "[1,1]"]
    assert parse_grid(["aug_crop_scale=[0.8,1],[1,1]"]) == (("aug_crop_scale", ([0.8, 1], [1, 1])),)


def test_a_value_names_one_run_however_it_is_typed(tiny_synth: Path, tmp_path: Path) -> None:
    """`--set alpha=0` and `--grid alpha=0.0` are one experiment: one directory, one config."""
    base = tiny_spec(tiny_synth, tmp_path / "runs")
    specs = expand(Axes(methods=("lanet",), rates=(0.3,), seeds=(0,), grid=parse_grid(["alpha=0,0.0,2"])), base)
    dirs = [resolve(s).run_dir.parent.name for s in specs]
    assert len(dirs) == 2 and all(d.startswith("lanet+") for d in dirs)
    assert "alpha=0.0" in dirs[0] and "alpha=2.0" in dirs[1]
    typed_int = resolve(replace(base, method="lanet", noise="sym", rate=0.3, overrides={**base.overrides, "alpha": 0}))
    assert typed_int.run_dir == resolve(specs[0]).run_dir
    assert typed_int.spec.overrides["alpha"] == 0.0 and isinstance(typed_int.spec.overrides["alpha"], float)


def test_local_sweep_runs_skips_and_survives_a_failing_run(tiny_synth: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_synth, broken)
    missing = sorted((broken / "Image" / "aligned").glob("train_*"))[0]
    missing.unlink()
    out = tmp_path / "runs"
    good = expand(Axes(methods=("baseline", "scn"), rates=(0.2,), seeds=(0,)), tiny_spec(tiny_synth, out))
    bad = expand(Axes(methods=("baseline",), rates=(0.2,), seeds=(1,)), tiny_spec(broken, out))
    outcomes = run_local(good + bad, device="cpu", jobs=2, progress=False)
    assert [o.status for o in outcomes] == ["done", "done", "failed"]
    for o in outcomes[:2]:
        assert json.loads((o.run_dir / "result.json").read_text())["epochs"] == TINY_RECIPE["epochs"]
    failed = outcomes[2]
    assert missing.name in failed.log.read_text()
    assert failed.log == failed.run_dir / "log.txt"
    assert [o.status for o in run_local(good, device="cpu", jobs=2, progress=False)] == ["skipped", "skipped"]
    assert [run_state(s) for s in good] == ["finished", "finished"]


def test_a_locked_run_is_left_to_its_owner(tiny_synth: Path, tmp_path: Path) -> None:
    spec = tiny_spec(tiny_synth, tmp_path / "runs", method="baseline", noise="sym", rate=0.2)
    run_dir = resolve(spec).run_dir
    with run_lock(run_dir):  # as if another sweep were training it
        [outcome] = run_local([spec], device="cpu", jobs=1, progress=False)
    assert outcome.status == "busy"
    assert not (run_dir / "log.txt").exists() and not (run_dir / "result.json").exists()


def test_run_lock_excludes_other_processes(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from fer_bench.runs import run_lock, RunBusy\n"
            "try:\n  with run_lock(sys.argv[1]): pass\nexcept RunBusy as e: print(e); sys.exit(3)\n")
    with run_lock(tmp_path / "run"):
        with run_lock(tmp_path / "run"):  # re-entrant within a process
            busy = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], capture_output=True, text=True)
    assert busy.returncode == 3 and "another process" in busy.stdout
    free = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")])
    assert free.returncode == 0
    assert issubclass(RunBusy, RuntimeError)


def test_sweep_cli_dry_run_and_summary(tiny_synth: Path, tmp_path: Path) -> None:
    common = ["--methods", "baseline", "--rates", "0.2", "--seeds", "0", "--clean", "--root", str(tiny_synth),
              "--out", str(tmp_path / "runs"), "--quiet"] + [f"--set={k}={v}" for k, v in TINY_RECIPE.items()]
    dry = CliRunner().invoke(cli, ["sweep", *common, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.count("new ") == 2 and "2 runs, 0 finished" in dry.output
    res = CliRunner().invoke(cli, ["sweep", *common, "--jobs", "2"])
    assert res.exit_code == 0, res.output
    assert "2 runs: 2 trained now, 0 already finished, 0 running elsewhere, 0 failed" in res.output
    assert "2 runs, 2 finished" in CliRunner().invoke(cli, ["sweep", *common, "--dry-run"]).output
    bad = CliRunner().invoke(cli, ["sweep", *common, "--rates", "0.2,x"])
    assert bad.exit_code == 2 and "comma-separated list of floats" in bad.output


def test_slurm_launcher_through_submitit_local_executor(tiny_synth: Path, tmp_path: Path) -> None:
    pytest.importorskip("submitit")
    from fer_bench.sweep.slurm import RunTask, submit
    from fer_bench.sweep.plan import spec_to_json

    specs = expand(Axes(methods=("baseline",), rates=(0.2,), seeds=(0, 1)), tiny_spec(tiny_synth, tmp_path / "runs"))
    jobs = submit(specs, {"cluster": "local", "timeout_min": 5})
    outcomes = [j.result() for j in jobs]
    assert [o.status for o in outcomes] == ["done", "done"]
    assert all((o.run_dir / "result.json").is_file() for o in outcomes)
    # a requeue (timeout, preemption) resubmits the same run, which then resumes or skips
    delayed = RunTask().checkpoint(spec_to_json(specs[0]))
    assert delayed.args == (spec_to_json(specs[0]),)
    assert delayed.result().status == "skipped"


def test_two_sweeps_at_once_train_each_run_exactly_once(tiny_synth: Path, tmp_path: Path) -> None:
    import re
    import subprocess
    import sys

    args = [sys.executable, "-m", "fer_bench.cli", "sweep", "--methods", "baseline", "--rates", "0.1,0.2",
            "--seeds", "0", "--clean", "--root", str(tiny_synth), "--out", str(tmp_path / "runs"), "--quiet",
            *[f"--set={k}={v}" for k, v in TINY_RECIPE.items()]]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    trained = [int(re.search(r"(\d+) trained now", out).group(1)) for out in outputs]
    assert sum(trained) == 3, outputs
    logs = list((tmp_path / "runs").rglob("log.txt"))
    assert len(logs) == 3
    assert all(log.read_text().count("=== fer-bench sweep worker") == 1 for log in logs)
    assert len(list((tmp_path / "runs").rglob("result.json"))) == 3


def test_runs_per_gpu_packs_slots_onto_each_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from fer_bench.sweep import local

    assert local.slots("cpu", 3, 4) == [None, None, None]
    if not torch.cuda.is_available():
        assert local.slots("auto", None, 2) == [None]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert local.slots("auto", None, 3) == ["0", "0", "0", "1", "1", "1"]
    assert local.slots("cuda", 4, 3) == ["0", "0", "0", "1"]
    assert local.slots("cuda:1", None, 2) == ["1", "1"]
    for name in ("FER_BENCH_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "FER_BENCH_OMP_SET"):
        monkeypatch.delenv(name, raising=False)
    env = local._child_env("1", 8, ("my_plugin",))  # each child adapts between 1 and its 8 cores
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["FER_BENCH_THREADS"] == "auto:8"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's own count goes to every child
    assert local._child_env(None, 8, ())["OMP_NUM_THREADS"] == "3"
    assert env["FER_BENCH_PLUGINS"].endswith("my_plugin")


def test_ctrl_c_stops_the_sweep_and_starts_no_more_runs(tiny_synth: Path, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "runs"
    args = [sys.executable, "-m", "fer_bench.cli", "sweep", "--methods", "baseline", "--rates", "0.1,0.2,0.3",
            "--seeds", "0,1,2", "--root", str(tiny_synth), "--out", str(out), "--quiet",
            *[f"--set={k}={v}" for k, v in TINY_RECIPE.items()]]
    proc = subprocess.Popen(args, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not list(out.rglob("result.json")) and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    started = len(list(out.rglob("config.json")))
    time.sleep(2)
    assert len(list(out.rglob("config.json"))) == started < 9


def test_a_run_finished_meanwhile_is_skipped_without_touching_its_log(tiny_synth: Path, tmp_path: Path) -> None:
    from fer_bench.sweep import local

    spec = tiny_spec(tiny_synth, tmp_path / "runs", method="baseline", noise="sym", rate=0.2)
    [first] = run_local([spec], device="cpu", jobs=1, progress=False)
    log = first.run_dir / "log.txt"
    before = log.read_text()
    # as if a second sweep had looked just before the first one finished
    assert local._run_child(spec, None, 1, ()).status == "skipped"
    assert log.read_text() == before
