"""Bad input that used to crash, exit 0 wrongly or leave half-written run directories: each
now exits 2 with one line naming the option, file and line or value, and writes nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from fer_bench.cli import main

from .conftest import TINY_RECIPE
from .fixtures_real import make_rafdb

TINY_SETS = [arg for k, v in TINY_RECIPE.items() for arg in ("--set", f"{k}={v}")]
RAF_TRAIN, RAF_TEST = [2, 1, 1, 3, 2, 1, 2], [1, 1, 1, 2, 1, 1, 1]


def _files(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def _one_line_error(res, expected: str) -> None:
    assert res.exit_code == 2, res.output
    message = res.output.strip()
    assert len(message.splitlines()) == 1, message
    assert re.search(expected, message), message


@pytest.mark.parametrize("extra, expected", [
    (["--set", "epochs=0"], r"--set epochs=0: must be at least 1"),
    (["--set", "epochs=-1"], r"--set epochs=-1: must be at least 1"),
    (["--set", "batch_size=0"], r"--set batch_size=0: must be at least 1"),
    (["--set", "batch_size=-5"], r"--set batch_size=-5: must be at least 1"),
    (["--set", "lr=-0.1"], r"--set lr=-0\.1: must be at least 0"),
    (["--set", "aug_erase=1.5"], r"--set aug_erase=1\.5: must lie in \[0, 1\]"),
    (["--set", "aug_crop_scale=[0.9,0.5]"], r"--set aug_crop_scale=\[0\.9, 0\.5\]: must be \[low, high\]"),
    (["--set", "image_size=2"], r"--set image_size=2: must be at least 8"),
    (["--seed", "-1"], r"^Error: --seed -1: seeds are integers from 0$"),
    (["--noise-seed", "-3"], r"^Error: --noise-seed -3: seeds are integers from 0$"),
])
def test_out_of_range_values_stop_before_anything_is_written(extra: list[str], expected: str,
                                                              tiny_synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    res = CliRunner().invoke(main, ["run", "--root", str(tiny_synth), "--out", str(out), "--noise", "sym",
                                    "--rate", "0.2", "--quiet", *TINY_SETS, *extra])
    _one_line_error(res, expected)
    assert _files(out) == []


def test_names_are_case_insensitive_and_recorded_canonically(tiny_synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    res = CliRunner().invoke(main, ["run", "--method", "BaseLine", "--dataset", "SynthFER", "--noise", "ASYM",
                                    "--rate", "0.2", "--root", str(tiny_synth), "--out", str(out), "--quiet",
                                    *TINY_SETS, "--set", "epochs=1"])
    assert res.exit_code == 0, res.output
    run_dirs = [p.parent for p in out.rglob("result.json")]
    assert [str(d.relative_to(out)).split("/")[:3] for d in run_dirs] == [["synthfer", "asym-0.2",
                                                                          "baseline+batch_size=32+epochs=1+image_size=32"]]
    config = json.loads((run_dirs[0] / "config.json").read_text())
    assert (config["method"], config["dataset"], config["noise"]["model"]) == ("baseline", "synthfer", "asym")
    assert "baseline on synthfer, noise asym 0.2" in res.output


def test_an_explicit_synthfer_root_that_does_not_exist_is_not_generated(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "synthfer"
    res = CliRunner().invoke(main, ["run", "--root", str(missing), "--out", str(tmp_path / "runs"), "--quiet"])
    _one_line_error(res, rf"synthfer root {re.escape(str(missing))} does not exist; generate synthfer there "
                         rf"with `fer-bench data synth --out {re.escape(str(missing))}`")
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "runs").exists()


def test_summary_of_a_short_run_says_what_the_mean_is_over(tiny_synth: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["run", "--root", str(tiny_synth), "--out", str(tmp_path), "--quiet", *TINY_SETS])
    assert res.exit_code == 0, res.output
    assert "mean of all 2 epochs" in res.output and "last 5" not in res.output


@pytest.mark.parametrize("where", ["directory", "under_a_file"])
def test_noise_export_to_a_directory_or_under_a_file(where: str, tiny_synth: Path, tmp_path: Path) -> None:
    (tmp_path / "a_file.txt").write_text("keep")
    out = tmp_path if where == "directory" else tmp_path / "a_file.txt" / "x.txt"
    before = _files(tmp_path)
    res = CliRunner().invoke(main, ["noise", "export", "--root", str(tiny_synth), "--noise", "sym", "--rate", "0.2",
                                    "--out", str(out)])
    expected = (rf"--out {re.escape(str(out))} is a directory; give the label file's name" if where == "directory"
                else rf"--out {re.escape(str(out))}: {re.escape(str(tmp_path / 'a_file.txt'))} is a file")
    _one_line_error(res, expected)
    assert _files(tmp_path) == before


def _label_file_problems(tmp_path: Path, edit) -> list[str]:
    make_rafdb(tmp_path, RAF_TRAIN, RAF_TEST, size=16)
    label_file = tmp_path / "EmoLabel/list_patition_label.txt"
    label_file.write_text(edit(label_file.read_text()), encoding="utf-8")
    res = CliRunner().invoke(main, ["data", "check", "--dataset", "rafdb", "--root", str(tmp_path), "--quick"])
    assert res.exit_code == 2, res.output
    return res.output


def test_data_check_lists_a_bom_a_non_ascii_digit_and_a_missing_test_split(tmp_path: Path) -> None:
    def edit(text: str) -> str:
        lines = [ln for ln in text.splitlines() if not ln.startswith("test_")]
        lines[2] = lines[2].split()[0] + " \u00b2"  # a superscript two: str.isdigit() says yes, int() says no
        return "\ufeff" + "\n".join(lines) + "\n"

    out = _label_file_problems(tmp_path, edit)
    assert "list_patition_label.txt:1: the file starts with a UTF-8 byte-order mark (BOM)" in out
    assert "list_patition_label.txt:3: expected '<name> <label>', got 'train_00003.jpg \u00b2'" in out
    assert "the test split is empty" in out
    assert "3 problem(s)" in out and "no problems found" not in out


def test_training_on_a_label_file_with_a_non_ascii_digit_names_file_and_line(tmp_path: Path) -> None:
    make_rafdb(tmp_path / "raf", RAF_TRAIN, RAF_TEST, size=16)
    label_file = tmp_path / "raf/EmoLabel/list_patition_label.txt"
    lines = label_file.read_text().splitlines()
    lines[1] = lines[1].split()[0] + " \u00b2"
    label_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["run", "--dataset", "rafdb", "--root", str(tmp_path / "raf"),
                                    "--out", str(tmp_path / "runs"), "--quiet", *TINY_SETS])
    _one_line_error(res, r"list_patition_label\.txt:2: expected '<name> <label>'")
    assert not (tmp_path / "runs").exists()
