"""Faults a run meets outside its own code: a damaged checkpoint, temporaries of killed
processes, Ctrl-C, a run directory copied elsewhere. Each ends in a message that names the
file and what to do, never in a traceback or a silently wrong record."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import fer_bench.engine.run as engine
from fer_bench.atomic import remove_stale_temporaries
from fer_bench.cli import main
from fer_bench.engine.run import RunError, resolve
from fer_bench.engine.trained import evaluate_run

from .conftest import TINY_RECIPE, tiny_spec

TINY_SETS = [arg for k, v in TINY_RECIPE.items() for arg in ("--set", f"{k}={v}")]


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    """Ctrl-C at the start of ``epoch`` (0-based) of every run from now on."""
    real_epoch = engine.train_one_epoch

    def crash(*args: Any, **kwargs: Any) -> dict[str, float]:
        if args[5] == epoch:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(engine, "train_one_epoch", crash)


def _run_args(root: Path, out: Path) -> list[str]:
    return ["run", "--root", str(root), "--out", str(out), "--noise", "sym", "--rate", "0.3", "--quiet", *TINY_SETS]


def test_ctrl_c_says_where_progress_was_saved_and_the_rerun_says_it_resumes(
        tiny_synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = _run_args(tiny_synth, tmp_path)
    with monkeypatch.context() as patched:
        _interrupt_at(patched, 1)
        res = CliRunner().invoke(main, args)
    assert res.exit_code == 130, res.output
    assert "Aborted!" not in res.output
    assert re.search(r"^interrupted: progress saved at epoch 1 of 2 \(.*seed0\); the same command resumes$",
                     res.output.strip(), re.M), res.output

    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert re.search(r"^resuming from epoch 1 of 2 \(.*seed0\)$", res.output, re.M), res.output
    assert "2 epochs in" in res.output


def test_ctrl_c_in_the_first_epoch_says_nothing_was_saved(tiny_synth: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _interrupt_at(monkeypatch, 0)
    res = CliRunner().invoke(main, _run_args(tiny_synth, tmp_path))
    assert res.exit_code == 130
    assert "interrupted: no epoch had finished yet" in res.output


def test_a_truncated_checkpoint_is_named_and_force_starts_again(tiny_synth: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tiny_spec(tiny_synth, tmp_path, noise="sym", rate=0.3)
    with monkeypatch.context() as patched:
        _interrupt_at(patched, 1)
        with pytest.raises(KeyboardInterrupt):
            engine.main(spec)
    ckpt = resolve(spec).run_dir / "checkpoint.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[:len(data) // 2])  # a disk that filled, a copy cut short

    res = CliRunner().invoke(main, _run_args(tiny_synth, tmp_path))
    assert res.exit_code == 2, res.output
    message = res.output.strip()
    assert len(message.splitlines()) == 1, message
    assert f"{ckpt} cannot be read (truncated or damaged" in message
    assert "--force trains this run again from scratch" in message

    res = CliRunner().invoke(main, _run_args(tiny_synth, tmp_path) + ["--force"])
    assert res.exit_code == 0, res.output
    assert "resuming" not in res.output and "2 epochs in" in res.output


def test_eval_of_a_truncated_checkpoint_names_it(tiny_synth: Path, tmp_path: Path) -> None:
    result = engine.main(tiny_spec(tiny_synth, tmp_path, overrides={"epochs": 1}))
    ckpt = Path(result["run_dir"]) / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(RunError, match=re.escape(f"{ckpt} cannot be read")):
        evaluate_run(Path(result["run_dir"]), progress=False)
    res = CliRunner().invoke(main, ["eval", result["run_dir"]])
    assert res.exit_code == 2 and f"{ckpt} cannot be read" in res.output, res.output


def test_temporaries_of_dead_processes_are_removed_at_the_next_start(tiny_synth: Path, tmp_path: Path) -> None:
    spec = tiny_spec(tiny_synth, tmp_path, overrides={"epochs": 1})
    run_dir = resolve(spec).run_dir
    run_dir.mkdir(parents=True)
    dead, live = _dead_pid(), subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [run_dir / f".checkpoint.pt.tmp{dead}", tiny_synth / ".cache" / f"images-0123abcd.tmp{dead}.npy"]
        alive = [run_dir / f".metrics.csv.tmp{live.pid}", tiny_synth / ".cache" / f"images-0123abcd.tmp{live.pid}.npy"]
        for path in stale + alive:
            path.write_bytes(b"half a file")
        engine.main(spec)
        assert not any(p.exists() for p in stale)
        assert all(p.exists() for p in alive)  # a live process's, never touched
    finally:
        live.kill()
        live.wait()
        for path in alive:
            path.unlink(missing_ok=True)


def test_noise_export_removes_its_own_stale_temporaries_only(tiny_synth: Path, tmp_path: Path) -> None:
    dead = _dead_pid()
    mine = [tmp_path / f".nf.tmp{dead}", tmp_path / f".nf.json.tmp{dead}"]
    other = tmp_path / f".notes.txt.tmp{dead}"  # not the export's: left alone
    for path in mine + [other]:
        path.write_text("half")
    res = CliRunner().invoke(main, ["noise", "export", "--root", str(tiny_synth), "--noise", "sym",
                                    "--rate", "0.2", "--out", str(tmp_path / "nf")])
    assert res.exit_code == 0, res.output
    assert not any(p.exists() for p in mine) and other.exists()
    assert (tmp_path / "nf").is_file() and (tmp_path / "nf.json").is_file()


def test_stale_temporaries_keep_this_process_and_other_names(tmp_path: Path) -> None:
    import os

    dead = _dead_pid()
    files = [f".a.tmp{dead}", f".a.tmp{os.getpid()}", f"images-k.tmp{dead}c.npy", "a.tmp", f"notes{dead}.txt"]
    for name in files:
        (tmp_path / name).write_text("x")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted([f".a.tmp{dead}", f"images-k.tmp{dead}c.npy"])
    assert remove_stale_temporaries(tmp_path / "absent") == []


def test_a_copied_finished_run_reports_where_it_is_now(tiny_synth: Path, tmp_path: Path) -> None:
    first = engine.main(tiny_spec(tiny_synth, tmp_path / "a", overrides={"epochs": 1}))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    res = CliRunner().invoke(main, ["run", "--root", str(tiny_synth), "--out", str(tmp_path / "b"), *TINY_SETS,
                                    "--set", "epochs=1"])
    assert res.exit_code == 0, res.output
    copied = str(Path(first["run_dir"].replace(str(tmp_path / "a"), str(tmp_path / "b"))))
    assert f"already finished (use --force to re-run): {copied}\n" in res.output
    assert f"run directory: {copied}\n" in res.output
    assert str(tmp_path / "a") not in res.output
