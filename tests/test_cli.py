"""The command line as a user meets it: plugins, listings, and bad input."""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
import types
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from click.testing import CliRunner

import fer_bench.registry as registry
from fer_bench.cli import main
from fer_bench.datasets.raf_layout import aligned_path

from .conftest import TINY_RECIPE

# The plugin example of the documentation (the "Add a method" guide), run here as a user runs it.
PLUGIN_GUIDE = Path(__file__).resolve().parent.parent / "docs" / "how-to" / "add-method.md"
TINY_SETS = [arg for k, v in TINY_RECIPE.items() for arg in ("--set", f"{k}={v}")]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_methods_list_shows_descriptions_and_sources() -> None:
    res = invoke("methods", "list")
    assert res.exit_code == 0
    assert re.search(r"^baseline\s+ResNet \+ cross-entropy.*\[built-in\]$", res.output, re.M)


def test_the_documented_plugin_example_runs_through_plugin_option(tiny_synth: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    text = PLUGIN_GUIDE.read_text()
    block = text.split("<!-- plugin-example:start -->")[1].split("<!-- plugin-example:end -->")[0]
    code = block.split("```python")[1].split("```")[0]
    (tmp_path / "my_method.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    # imported here, gone afterwards: a later test's `--plugin my_method` (the docs' runner) imports its own file
    monkeypatch.setitem(sys.modules, "my_method", types.ModuleType("my_method"))
    monkeypatch.delitem(sys.modules, "my_method")

    listed = invoke("methods", "list", "--plugin", "my_method")
    assert re.search(r"^smooth\s+Cross-entropy with label smoothing\.\s+\[plugin my_method\]$", listed.output, re.M)

    res = invoke("run", "--plugin", "my_method", "--method", "smooth", "--root", str(tiny_synth),
                 "--noise", "sym", "--rate", "0.3", "--set", "smoothing=0.2", "--out", str(tmp_path / "runs"),
                 "--quiet", *TINY_SETS)
    assert res.exit_code == 0, res.output
    assert "smooth on synthfer, noise sym 0.3" in res.output
    assert "smoothing=0.2" in res.output  # the override names the run directory


def test_entry_point_plugins_are_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ep_plugin.py").write_text(
        "from fer_bench.methods.baseline import Baseline\n"
        "class EntryPointMethod(Baseline):\n    'Registered through an entry point.'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    fake = [EntryPoint("epmethod", "ep_plugin:EntryPointMethod", "fer_bench.methods"),
            EntryPoint("broken", "no_such_module_xyz", "fer_bench.methods")]
    monkeypatch.setattr(registry, "entry_points", lambda group: fake if group == "fer_bench.methods" else [])
    reg = registry.Registry("method", "fer_bench.methods", ("fer_bench.methods",))
    with pytest.warns(UserWarning, match="broken"):
        names = reg.names()
    assert "epmethod" in names and "baseline" not in names  # built-ins register into METHODS only
    entry = reg.entries("ep*")[0]
    assert entry.description == "Registered through an entry point."
    assert entry.source.startswith("entry point ep_plugin:EntryPointMethod")


def test_duplicate_registration_is_an_error() -> None:
    reg = registry.Registry("thing", "none.group", ())
    reg.register("a", object())
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", object())
    replacement = object()
    reg.register("a", replacement, override=True)
    assert reg.get("a") is replacement


def _tree_digest(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "runs"
    res = invoke("run", "--root", str(tiny_synth), "--out", str(out), "--quiet", *TINY_SETS)
    assert res.exit_code == 0, res.output
    return out


def _broken_copy(tiny_synth: Path, tmp_path: Path, how: str) -> Path:
    root = tmp_path / f"broken-{how}"
    shutil.copytree(tiny_synth, root, ignore=shutil.ignore_patterns(".cache"))
    label_file = root / "EmoLabel/list_patition_label.txt"
    lines = label_file.read_text().splitlines()
    if how == "line":
        lines[2] = "train_00003.jpg"
    elif how == "class":
        lines[4] = lines[4].split()[0] + " 9"
    elif how == "image":
        aligned_path(root, "train_00002.jpg").unlink()
    label_file.write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize("case, expected", [
    ("method", r"unknown method 'nope'; registered: baseline"),
    ("dataset", r"unknown dataset 'nope'; registered: .*synthfer"),
    ("noise", r"unknown noise model 'nope'; registered: .*sym"),
    ("rate_high", r"noise rate 1(\.0)? is outside \[0, 1\)"),
    ("rate_negative", r"noise rate -0\.1 is outside \[0, 1\)"),
    ("set_key", r"unknown --set key 'nope'"),
    ("malformed_line", r"list_patition_label\.txt:3: expected '<name> <label>'"),
    ("unknown_class", r"list_patition_label\.txt:5: label 9 outside 1\.\.7"),
    ("missing_image", r"image not found: .*train_00002_aligned\.jpg"),
    ("noise_file_names", r"noise\.txt: 1 name\(s\) are not training images of synthfer, e\.g\. test_0001\.jpg"),
    ("missing_noise_file", r"noise file not found: .*absent\.txt"),
])
def test_bad_input_exits_2_with_one_line_and_loses_nothing(case: str, expected: str, tiny_synth: Path,
                                                          tmp_path: Path, finished_run: Path) -> None:
    before = _tree_digest(finished_run)
    args = ["run", "--root", str(tiny_synth), "--out", str(finished_run), "--quiet", *TINY_SETS]
    if case == "method":
        args += ["--method", "nope"]
    elif case == "dataset":
        args += ["--dataset", "nope"]
    elif case == "noise":
        args += ["--noise", "nope", "--rate", "0.1"]
    elif case == "rate_high":
        args += ["--noise", "sym", "--rate", "1.0"]
    elif case == "rate_negative":
        args += ["--noise", "sym", "--rate", "-0.1"]
    elif case == "set_key":
        args += ["--set", "nope=1"]
    elif case in ("malformed_line", "unknown_class", "missing_image"):
        how = {"malformed_line": "line", "unknown_class": "class", "missing_image": "image"}[case]
        args[2] = str(_broken_copy(tiny_synth, tmp_path, how))
    elif case == "noise_file_names":
        lines = (tiny_synth / "EmoLabel/list_patition_label.txt").read_text().splitlines()
        train = [ln for ln in lines if ln.startswith("train")]
        (tmp_path / "noise.txt").write_text("\n".join(train[1:] + ["test_0001.jpg 1"]) + "\n")
        args += ["--noise-file", str(tmp_path / "noise.txt")]
    elif case == "missing_noise_file":
        args += ["--noise-file", str(tmp_path / "absent.txt")]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    message = res.output.strip()
    assert len(message.splitlines()) == 1, message
    assert re.search(expected, message), message
    assert _tree_digest(finished_run) == before


def test_eval_prints_accuracy_and_confusion_matrix(finished_run: Path) -> None:
    run_dir = next(finished_run.rglob("result.json")).parent
    res = invoke("eval", str(run_dir))
    assert res.exit_code == 0, res.output
    assert re.search(r"accuracy \d+\.\d\d%\s+mean class accuracy \d+\.\d\d%", res.output)
    assert "surprise" in res.output and "confusion matrix" in res.output


def test_eval_of_a_non_run_directory_is_a_clear_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["eval", str(tmp_path)])
    assert res.exit_code == 2 and "is not a run directory: config.json is missing" in res.output


def test_noise_export_then_inspect(tiny_synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "noise03.txt"
    res = invoke("noise", "export", "--root", str(tiny_synth), "--noise", "sym", "--rate", "0.3",
                 "--noise-seed", "4", "--exact", "--out", str(out))
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert len(lines) == 96 and all(re.fullmatch(r"train_\d{5}\.jpg [1-7]", ln) for ln in lines)
    assert "realised 0.3021 (29 of 96 labels changed)" in res.output  # exact: round(0.3 * 96) = 29
    inspected = invoke("noise", "inspect", str(out), "--root", str(tiny_synth))
    assert inspected.exit_code == 0 and "29 of 96 labels changed" in inspected.output


def test_unknown_dataset_option_names_the_accepted_ones(tiny_synth: Path) -> None:
    res = CliRunner().invoke(main, ["run", "--root", str(tiny_synth), "--data", "classes=9", "--quiet", *TINY_SETS])
    assert res.exit_code == 2 and "dataset option(s) classes not understood" in res.output
