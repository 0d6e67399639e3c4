"""``--config FILE.yaml`` for run and sweep: the file's options, the command line overriding them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fer_bench.cli import main

pytest.importorskip("yaml")


def cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_run_takes_the_file_and_the_command_line_overrides_it(tiny_synth: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"""
method: baseline
noise: annotator
rate: 0.3
noise-seed: 4
root: {tiny_synth}
out: {tmp_path / 'runs'}
quiet: true
set:
  epochs: 1
  image_size: 32
  batch_size: 32
""")
    res = cli("run", "--config", cfg, "--rate", "0.2", "--set", "batch_size=16")
    assert res.exit_code == 0, res.output
    run_dir = tmp_path / "runs" / "synthfer" / "annotator-0.2"
    config = json.loads(next(run_dir.glob("*/seed0-noise4/config.json")).read_text())
    assert config["noise"]["model"] == "annotator" and config["noise"]["rate"] == 0.2
    assert config["noise"]["noise_seed"] == 4
    assert config["recipe"]["batch_size"] == 16 and config["recipe"]["epochs"] == 1


def test_sweep_takes_lists(tiny_synth: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "sweep.yaml"
    cfg.write_text(f"methods: [baseline, scn]\nnoise: [sym, asym]\nrates: [0.1, 0.2]\nseeds: 0\nclean: true\n"
                   f"root: {tiny_synth}\nout: {tmp_path / 'runs'}\ngrid: {{lr: [0.01, 0.1]}}\n")
    res = cli("sweep", "--config", cfg, "--dry-run")
    assert res.exit_code == 0, res.output
    assert res.output.strip().endswith("20 runs, 0 finished")  # 2 methods x (clean + 2 x 2) x 2 lr
    res = cli("sweep", "--config", cfg, "--methods", "lanet", "--dry-run")
    assert res.output.strip().endswith("10 runs, 0 finished"), res.output


@pytest.mark.parametrize("text,message", [
    ("method: baseline\nepochs: 3\n", "unknown key(s) epochs; known: "),
    ("- method\n", "expected a mapping"),
    ("method: [baseline\n", "not valid YAML"),
])
def test_bad_config_is_exit_2_naming_it(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    res = cli("run", "--config", cfg, "--out", tmp_path / "runs")
    assert res.exit_code == 2 and message in res.output and str(cfg) in res.output
    if "known" in message:
        assert "method" in res.output and "noise_seed" in res.output and "set" in res.output
    assert not (tmp_path / "runs").exists()


def test_missing_config_file(tmp_path: Path) -> None:
    res = cli("run", "--config", tmp_path / "nope.yaml")
    assert res.exit_code == 2 and "config file not found" in res.output
