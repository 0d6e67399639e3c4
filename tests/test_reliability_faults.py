"""Faults from outside the code and input at the edges: a full disk, plugins that are files or
fail to import, values far out of range, unreadable or ambiguous files, SIGTERM. Each ends in one
line naming the file, plugin or value (exit code 2; 143 for SIGTERM), never in a traceback, a
"Bus error" or a silently wrong run, and loses nothing that was saved."""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from fer_bench.cli import main

from .conftest import TINY_RECIPE

TINY_SETS = [arg for k, v in TINY_RECIPE.items() for arg in ("--set", f"{k}={v}")]
SYNTHFER_CLASSES = ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"]


def _one_line_error(res: Any, *expected: str) -> str:
    assert res.exit_code == 2, res.output
    message = res.output.strip()
    assert len(message.splitlines()) == 1, message
    for text in expected:
        assert re.search(text, message), message
    return message


def _run_args(root: Path, out: Path) -> list[str]:
    return ["run", "--root", str(root), "--out", str(out), "--noise", "sym", "--rate", "0.3", "--quiet", *TINY_SETS]


def _temporaries(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if ".tmp" in p.name]


# --- 12: a full disk ------------------------------------------------------------------------


def test_a_full_disk_at_a_checkpoint_is_one_line_and_the_run_resumes(
        tiny_synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_save, calls = torch.save, []

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) < 2:
            return real_save(obj, f, *args, **kwargs)
        f.write(b"PK" * 1000)  # half an archive, then the disk is full; torch reports it as this:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 448768 vs 448664")

    with monkeypatch.context() as patched:
        patched.setattr(torch, "save", save)
        res = CliRunner().invoke(main, _run_args(tiny_synth, tmp_path))
    [ckpt] = tmp_path.rglob("checkpoint.pt")
    _one_line_error(res, rf"no space left on the device for {re.escape(str(ckpt))} \(needs more than .* free\)")
    assert _temporaries(tmp_path) == []
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1  # the previous checkpoint, intact

    res = CliRunner().invoke(main, _run_args(tiny_synth, tmp_path))
    assert res.exit_code == 0, res.output
    assert "resuming from epoch 1 of 2" in res.output and "2 epochs in" in res.output


def test_a_full_disk_writing_a_text_file_is_one_line_and_leaves_no_temporary(
        tiny_synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fsync(fd: int) -> None:  # where a delayed allocation finds the disk full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync)
    out = tmp_path / "exported" / "noisy.txt"
    res = CliRunner().invoke(main, ["noise", "export", "--root", str(tiny_synth), "--noise", "sym", "--rate", "0.2",
                                    "--out", str(out)])
    _one_line_error(res, rf"no space left on the device for {re.escape(str(out))} \(needs [\d.]+ (B|KiB), .* free\)")
    assert list(out.parent.iterdir()) == []


def _fresh_copy(root: Path, tmp_path: Path) -> Path:
    """The dataset without its image cache, so that loading it writes one."""
    copy = tmp_path / "synthfer"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".cache"))
    return copy


def test_an_image_cache_that_does_not_fit_is_refused_before_decoding(
        tiny_synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _fresh_copy(tiny_synth, tmp_path)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    res = CliRunner().invoke(main, ["noise", "export", "--root", str(root), "--noise", "sym", "--rate", "0.2",
                                    "--out", str(tmp_path / "noisy.txt")])
    cache = re.escape(str(root / ".cache" / "images-"))
    _one_line_error(res, rf"no space left on the device for {cache}\w+\.npy \(needs \d+\.\d KiB, 1000 B free\)")
    assert _temporaries(root) == []


def test_an_image_cache_whose_space_is_taken_meanwhile_is_one_line_not_a_bus_error(
        tiny_synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _fresh_copy(tiny_synth, tmp_path)

    def posix_fallocate(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", posix_fallocate, raising=False)
    res = CliRunner().invoke(main, ["noise", "export", "--root", str(root), "--noise", "sym", "--rate", "0.2",
                                    "--out", str(tmp_path / "noisy.txt")])
    _one_line_error(res, r"no space left on the device for .*/\.cache/images-\w+\.npy \(needs ")
    assert _temporaries(root) == []


# --- 13: plugins ----------------------------------------------------------------------------

PLUGIN = """
from fer_bench.methods.baseline import Baseline
from fer_bench.registry import register_method


@register_method("{name}")
class Method(Baseline):
    '''A plugin of the reliability tests.'''
"""


def test_a_plugin_module_in_the_current_directory_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rf_cwd_plugin.py").write_text(PLUGIN.format(name="rf-cwd"))
    monkeypatch.chdir(tmp_path)
    path_before = list(sys.path)
    res = CliRunner().invoke(main, ["methods", "list", "--plugin", "rf_cwd_plugin"])
    assert res.exit_code == 0, res.output
    assert re.search(r"^rf-cwd\s+A plugin of the reliability tests\.\s+\[plugin rf_cwd_plugin\]$", res.output, re.M)
    assert sys.path == path_before  # on the path only while it loaded


def test_a_plugin_file_is_loaded_by_its_path_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "rf_file_plugin.py").write_text(PLUGIN.format(name="rf-file"))
    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # a second load is no second registration
        res = CliRunner().invoke(main, ["methods", "list", "--plugin", "./plugins/rf_file_plugin.py"])
        assert res.exit_code == 0, res.output
        assert re.search(r"^rf-file\s+A plugin of the reliability tests\.", res.output, re.M)


def test_a_sweep_gives_its_runs_a_plugin_file_by_its_absolute_path(
        tiny_synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fer_bench.sweep.local as local

    (tmp_path / "rf_sweep_plugin.py").write_text(PLUGIN.format(name="rf-sweep"))
    monkeypatch.chdir(tmp_path)
    given: list[tuple[str, ...]] = []

    def run_local(specs: Any, device: str, jobs: Any, runs_per_gpu: int, plugins: tuple[str, ...],
                  **kw: Any) -> list[Any]:
        given.append(tuple(plugins))
        return []

    monkeypatch.setattr(local, "run_local", run_local)
    res = CliRunner().invoke(main, ["sweep", "--plugin", "rf_sweep_plugin.py", "--methods", "rf-sweep",
                                    "--rates", "0.2", "--seeds", "0", "--root", str(tiny_synth),
                                    "--out", str(tmp_path / "runs"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert given == [(str(tmp_path.resolve() / "rf_sweep_plugin.py"),)]  # a worker may start elsewhere


@pytest.mark.parametrize("how", ["option", "file", "environment"])
def test_a_plugin_that_raises_on_import_is_one_line(how: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"rf_broken_{how}"
    (tmp_path / f"{name}.py").write_text("raise ZeroDivisionError('the plugin divided by zero')\n")
    monkeypatch.chdir(tmp_path)
    plugin = {"option": name, "file": f"./{name}.py", "environment": name}[how]
    args = ["methods", "list"] if how == "environment" else ["methods", "list", "--plugin", plugin]
    if how == "environment":
        monkeypatch.setenv("FER_BENCH_PLUGINS", plugin)
    res = CliRunner().invoke(main, args)
    _one_line_error(res, rf"^Error: plugin '{re.escape(plugin)}' failed to import: "
                         r"ZeroDivisionError: the plugin divided by zero$")


# --- 14: values, files and signals ----------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("image_size=100000", r"--set image_size=100000: must be at most 1024 \(pixels\)"),
    ("epochs=100000000000000000000", r"--set epochs=100000000000000000000: must be at most 10000"),
    ("batch_size=100000000", r"--set batch_size=100000000: must be at most 65536"),
    ("lr=1e400", r"--set lr=inf: must be at most 100"),
    ("gamma=20", r"--set gamma=20\.0: must lie in \(0, 1\]"),
    ("aug_crop_scale=[0.5,'x']", r"--set aug_crop_scale=\[0\.5, 'x'\]: must be \[low, high\]"),
])
def test_recipe_values_out_of_any_sane_range_are_refused(value: str, expected: str, tiny_synth: Path,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "runs"
    res = CliRunner().invoke(main, ["sweep", "--dry-run", "--root", str(tiny_synth), "--out", str(out),
                                    "--rates", "0.2", "--seeds", "0", "--set", value])
    _one_line_error(res, expected)
    assert not out.exists()


def test_seeds_beyond_what_torch_takes_are_refused_naming_them(tiny_synth: Path, tmp_path: Path) -> None:
    for option in ("--seed", "--noise-seed"):
        res = CliRunner().invoke(main, _run_args(tiny_synth, tmp_path) + [option, str(10**20)])
        _one_line_error(res, rf"^Error: {option} {10**20}: seeds are at most 2\*\*64 - 1 \({2**64 - 1}\)$")
    res = CliRunner().invoke(main, _run_args(tiny_synth, tmp_path) + ["--seed", "1e20"])
    assert res.exit_code == 2 and "'1e20' is not a valid integer" in res.output  # click's own answer
    assert not (tmp_path / "synthfer").exists()


def test_a_binary_config_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    res = CliRunner().invoke(main, ["run", "--config", str(config)])
    _one_line_error(res, rf"^Error: {re.escape(str(config))}:2: not a text \(UTF-8\) file")  # (bytes 0-9: line 1)


@pytest.mark.parametrize("text, key, line, first", [
    ("noise: sym\nrates: [0.2]\nnoise: asym\n", "noise", 3, 1),
    ("rates: [0.2]\nset:\n  epochs: 1\n  epochs: 3\n", "epochs", 4, 3),
])
def test_a_key_given_twice_in_a_config_file_is_refused(text: str, key: str, line: int, first: int,
                                                        tiny_synth: Path, tmp_path: Path) -> None:
    config = tmp_path / "options.yaml"
    config.write_text(text)
    res = CliRunner().invoke(main, ["sweep", "--dry-run", "--root", str(tiny_synth), "--config", str(config)])
    _one_line_error(res, rf"{re.escape(str(config))}:{line}: .*duplicate key '{key}' \(first on line {first}\)")


def test_a_huge_line_in_a_label_file_is_quoted_short(tiny_synth: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("train_00001.jpg " + "x" * 2_000_000 + "\n")
    res = CliRunner().invoke(main, ["noise", "inspect", str(labels), "--root", str(tiny_synth)])
    message = _one_line_error(res, rf"{re.escape(str(labels))}:1: expected '<name> <label>', got 'train_00001\.jpg x+"
                                   r"\.\.\.' \(2,000,016 characters\)$")
    assert len(message) < 300


def test_a_huge_line_in_a_csv_file_is_one_line_naming_it(tiny_synth: Path, tmp_path: Path) -> None:
    confusion = tmp_path / "confusion.csv"
    confusion.write_text("x" * 1_000_000 + "\n")  # past csv's field limit
    res = CliRunner().invoke(main, ["noise", "export", "--root", str(tiny_synth), "--noise", "confusion",
                                    "--rate", "0.2", "--confusion", str(confusion), "--out", str(tmp_path / "n.txt")])
    message = _one_line_error(res, rf"{re.escape(str(confusion))}:1: not readable as CSV")
    assert len(message) < 300


def test_confusion_rows_too_large_to_normalise_are_refused(tiny_synth: Path, tmp_path: Path) -> None:
    confusion = tmp_path / "confusion.csv"
    rows = ["true/predicted," + ",".join(SYNTHFER_CLASSES)]
    rows += [name + "," + ",".join(["1e308"] * len(SYNTHFER_CLASSES)) for name in SYNTHFER_CLASSES]
    confusion.write_text("\n".join(rows) + "\n")
    out = tmp_path / "noisy.txt"
    res = CliRunner().invoke(main, ["noise", "export", "--root", str(tiny_synth), "--noise", "confusion",
                                    "--rate", "0.3", "--confusion", str(confusion), "--out", str(out)])
    _one_line_error(res, rf"{re.escape(str(confusion))}: line 2 \(surprise\): the entries sum to more than a float")
    assert not out.exists()


def test_sigterm_saves_and_says_where_as_ctrl_c_does(tiny_synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    args = _run_args(tiny_synth, out) + ["--set", "epochs=1000"]
    proc = subprocess.Popen([sys.executable, "-m", "fer_bench", *args], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(out.rglob("checkpoint.pt")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, stderr
    assert re.search(r"^interrupted: progress saved at epoch \d+ of 1000 \(.*seed0\); the same command resumes$",
                     stderr.strip(), re.M), stderr
    assert "Traceback" not in stderr
    assert _temporaries(out) == []


# `fer-bench run` whose training forks a worker that SIGTERMs itself, then is sent SIGTERM itself.
_FORKING_RUN = """
import os, signal, sys, time
import fer_bench.engine.run as engine
from fer_bench.cli import main

def forking_main(spec):
    pid = os.fork()
    if pid == 0:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    died = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
    print("worker ended by SIGTERM" if died else f"worker status {status}", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
    print("SIGTERM ignored", file=sys.stderr)

engine.main = forking_main
main(sys.argv[1:], prog_name="fer-bench")
"""


def test_sigterm_reaches_only_the_process_that_asked_for_it(tiny_synth: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _FORKING_RUN, *_run_args(tiny_synth, tmp_path)],
                          env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert done.returncode == 143, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0] == "worker ended by SIGTERM", done.stderr  # a forked process keeps SIGTERM's default
    assert lines[1:] == ["terminated before training began or after it ended; the same command resumes from "
                         "the last saved epoch, if any"], done.stderr
