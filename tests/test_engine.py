"""The run engine: records, skipping finished runs, SIGKILL resume, noise files, eval."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import fer_bench.engine.run as engine
from fer_bench.noise.files import export_train_labels, generate_train_labels
from fer_bench.registry import DATASETS

from .conftest import tiny_spec


def test_result_record_and_noise_record(tiny_synth: Path, tmp_path: Path) -> None:
    res = engine.main(tiny_spec(tiny_synth, tmp_path, noise="sym", rate=0.3, seed=1))
    run_dir = Path(res["run_dir"])
    assert run_dir == tmp_path / "synthfer" / "sym-0.3" / "baseline+batch_size=32+epochs=2+image_size=32" / "seed1"
    noise = json.loads((run_dir / "noise.json").read_text())
    assert noise == res["noise_record"]
    assert noise["mode"] == "bernoulli" and noise["noise_seed"] == 1
    assert noise["n_flipped"] > 0 and abs(noise["realised_rate"] - 0.3) < 0.2
    # The saved label file is exactly what the record's sha256 describes.
    assert hashlib.sha256((run_dir / "train_labels.txt").read_bytes()).hexdigest() == noise["label_file_sha256"]
    accs = [float(r["test_acc"]) for r in csv.DictReader(open(run_dir / "metrics.csv"))]
    assert res["acc_last"] == pytest.approx(accs[-1])
    assert res["acc_best"] == pytest.approx(max(accs)) and res["best_epoch"] == accs.index(max(accs)) + 1
    assert res["acc_last5"] == pytest.approx(np.mean(accs[-5:]))
    env = json.loads((run_dir / "env.json").read_text())
    assert env["device"] == "cpu" and env["torch"]


def test_finished_run_is_not_rerun_unless_forced(tiny_synth: Path, tmp_path: Path) -> None:
    first = engine.main(tiny_spec(tiny_synth, tmp_path))
    again = engine.main(tiny_spec(tiny_synth, tmp_path))
    assert again.get("already_done") and again["finished_at"] == first["finished_at"]
    forced = engine.main(tiny_spec(tiny_synth, tmp_path, force=True))
    assert not forced.get("already_done")
    assert forced["confusion_last"] == first["confusion_last"]  # same seed, same numbers on CPU


def test_run_dir_with_a_different_config_is_refused(tiny_synth: Path, tmp_path: Path) -> None:
    res = engine.main(tiny_spec(tiny_synth, tmp_path))
    config_file = Path(res["run_dir"]) / "config.json"
    config = json.loads(config_file.read_text())
    config["recipe"]["lr"] = 0.5
    config["config_hash"] = "0000"
    config_file.write_text(json.dumps(config))
    with pytest.raises(engine.RunError, match=r"different config .*recipe\.lr"):
        engine.main(tiny_spec(tiny_synth, tmp_path))


def test_noise_seed_is_independent_of_training_seed(tiny_synth: Path, tmp_path: Path) -> None:
    a = engine.main(tiny_spec(tiny_synth, tmp_path, noise="sym", rate=0.3, seed=0, noise_seed=7))
    b = engine.main(tiny_spec(tiny_synth, tmp_path, noise="sym", rate=0.3, seed=1, noise_seed=7))
    c = engine.main(tiny_spec(tiny_synth, tmp_path, noise="sym", rate=0.3, seed=0, noise_seed=8))
    sha = lambda r: r["noise_record"]["label_file_sha256"]  # noqa: E731
    assert sha(a) == sha(b) != sha(c)
    assert Path(a["run_dir"]).name == "seed0-noise7"


def test_training_on_an_exported_noise_file(tiny_synth: Path, tmp_path: Path) -> None:
    ds = DATASETS.get("synthfer").load(tiny_synth, progress=False)
    labels, record = generate_train_labels(ds, "asym", 0.25, seed=5)
    export_train_labels(ds, labels, record, tmp_path / "noise025.txt")
    assert json.loads((tmp_path / "noise025.txt.json").read_text())["realised_rate"] == record.realised_rate
    res = engine.main(tiny_spec(tiny_synth, tmp_path / "runs", noise_file=str(tmp_path / "noise025.txt")))
    assert res["noise_record"]["mode"] == "file"
    assert res["noise_record"]["realised_rate"] == pytest.approx(record.realised_rate)
    assert res["noise_record"]["transition"] == record.to_dict()["transition"]
    assert "file-noise025" in res["run_dir"]


def test_sigkill_then_rerun_matches_an_uninterrupted_run(tiny_synth: Path, tmp_path: Path) -> None:
    args = [sys.executable, "-m", "fer_bench.cli", "run", "--root", str(tiny_synth), "--noise", "sym",
            "--rate", "0.3", "--quiet", "--set", "epochs=6", "--set", "image_size=32", "--set", "batch_size=32"]
    env = dict(os.environ)
    subprocess.run(args + ["--out", str(tmp_path / "a")], check=True, env=env, capture_output=True)
    proc = subprocess.Popen(args + ["--out", str(tmp_path / "b")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_b = tmp_path / "b" / "synthfer" / "sym-0.3" / "baseline+batch_size=32+epochs=6+image_size=32" / "seed0"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        metrics = run_b / "metrics.csv"
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 3:  # header + 2 epochs
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.returncode != -signal.SIGKILL:
        pytest.skip("the run finished before it could be killed")
    assert not (run_b / "result.json").exists()
    subprocess.run(args + ["--out", str(tmp_path / "b")], check=True, env=env, capture_output=True)
    run_a = Path(str(run_b).replace(str(tmp_path / "b"), str(tmp_path / "a")))
    assert (run_a / "metrics.csv").read_text().splitlines()[0] == (run_b / "metrics.csv").read_text().splitlines()[0]
    res_a = json.loads((run_a / "result.json").read_text())
    res_b = json.loads((run_b / "result.json").read_text())
    for key in ("acc_last", "acc_best", "acc_last5", "mean_class_acc_last", "confusion_last"):
        assert res_a[key] == res_b[key], key


def test_rate_zero_of_any_model_is_the_clean_run(tiny_synth: Path, tmp_path: Path) -> None:
    clean = engine.main(tiny_spec(tiny_synth, tmp_path, noise="none"))
    same = engine.main(tiny_spec(tiny_synth, tmp_path, noise="sym", rate=0.0))
    assert same.get("already_done") and same["run_dir"] == clean["run_dir"]
    assert clean["noise_record"]["n_flipped"] == 0


@pytest.mark.slow
def test_compiled_backbones_train_and_keep_checkpoint_names(tiny_synth: Path, tmp_path: Path) -> None:
    plain = engine.main(tiny_spec(tiny_synth, tmp_path / "plain", overrides={"epochs": 1}))
    compiled = engine.main(tiny_spec(tiny_synth, tmp_path / "compiled", overrides={"epochs": 1}, compile=True))
    assert compiled["acc_last"] == pytest.approx(plain["acc_last"], abs=0.1)
    keys = lambda r: set(torch.load(Path(r["run_dir"]) / "checkpoint.pt", weights_only=True)["model"])
    assert keys(compiled) == keys(plain)


def test_memorisation_shares_match_a_hand_computed_case() -> None:
    from fer_bench.engine.metrics import memorisation_shares, memorisation_subset, relabel_restored

    clean = np.array([0, 0, 1, 1, 2, 2, 2, 0])
    noisy = np.array([1, 2, 0, 1, 0, 2, 2, 0])  # images 0, 1, 2 and 4 flipped
    pred = np.array([1, 0, 2, 1, 0, 2, 1, 0])   # memorised, corrected, other, -, memorised; 3 of 4 unflipped right
    shares = memorisation_shares(pred, noisy, clean)
    assert shares == pytest.approx({"flipped_memorised": 0.5, "flipped_corrected": 0.25, "flipped_other": 0.25,
                                    "unflipped_correct": 0.75})
    assert sum(shares[k] for k in ("flipped_memorised", "flipped_corrected", "flipped_other")) == pytest.approx(1)
    assert np.isnan(memorisation_shares(pred, clean, clean)["flipped_memorised"])  # clean labels: nothing flipped
    rewritten = noisy.copy()
    rewritten[[0, 1, 4]] = [0, 1, 2]  # restores images 0 and 4, moves image 1 to another wrong class
    assert relabel_restored(noisy, rewritten, clean) == pytest.approx(2 / 3)
    assert np.isnan(relabel_restored(noisy, noisy, clean))
    probe = memorisation_subset(noisy, clean, seed=0, size=2)
    assert np.array_equal(probe, memorisation_subset(noisy, clean, seed=0, size=2))
    assert (noisy[probe] != clean[probe]).sum() == 2 and (noisy[probe] == clean[probe]).sum() == 2


def test_metrics_csv_has_the_memorisation_columns(tiny_synth: Path, tmp_path: Path) -> None:
    from fer_bench.engine.metrics import MEMORISATION_COLUMNS

    res = engine.main(tiny_spec(tiny_synth, tmp_path, method="scn", noise="sym", rate=0.3))
    rows = list(csv.DictReader(open(Path(res["run_dir"]) / "metrics.csv")))
    assert len(rows) == res["epochs"]
    for row in rows:
        flipped = [float(row[k]) for k in ("flipped_memorised", "flipped_corrected", "flipped_other")]
        assert sum(flipped) == pytest.approx(1) and 0 <= float(row["unflipped_correct"]) <= 1
        assert set(MEMORISATION_COLUMNS) <= set(row)
