"""Mechanism diagnostics: the scoring against the flipped set on hand-built cases, each method's report, and a
run whose mechanism is switched off saying so."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fer_bench.engine import mechanism
from fer_bench.methods.probes import LabelGuess, NoiseFlag, NoiseScore, SampleTrace
from fer_bench.registry import list_methods
from tests.conftest import interrupt_then_resume, tiny_spec

# Six samples, three classes; samples 1, 3 and 4 were flipped.
NOISY = np.array([0, 2, 1, 0, 1, 2])
CLEAN = np.array([0, 1, 1, 2, 2, 2])


def test_label_guesses() -> None:
    guess = torch.tensor([0, 1, 1, 0, 0, 2])  # flipped: 1 clean, 3 noisy, 4 other
    neighbours = torch.tensor([0, 1, 1, 2, 1, 2])  # flipped: 1 and 3 clean, 4 other
    row = mechanism.score({"memory": LabelGuess(guess, among="neighbours"), "neighbours": LabelGuess(neighbours)},
                          NOISY, CLEAN)
    assert row["mech_memory_clean"] == pytest.approx(1 / 3)
    assert row["mech_memory_noisy"] == pytest.approx(1 / 3)
    assert row["mech_memory_agree"] == pytest.approx(4 / 6)  # samples 0, 1, 2, 5
    # among the flipped samples whose neighbours say the clean label (1 and 3), the memory says it for 1
    assert row["mech_memory_clean_among_neighbours"] == pytest.approx(1 / 2)
    assert row["mech_neighbours_clean"] == pytest.approx(2 / 3)


def test_a_guess_only_counts_the_samples_it_has_seen() -> None:
    guess = torch.tensor([0, 1, 0, 2, 0, 0])
    seen = torch.tensor([True, True, True, False, False, True])
    row = mechanism.score({"g": LabelGuess(guess, valid=seen)}, NOISY, CLEAN)
    assert row["mech_g_clean"] == 1.0  # only sample 1 of the flipped ones was seen
    assert row["mech_g_agree"] == pytest.approx(2 / 4)  # 0 and 1 of 0, 1, 2, 5


def test_noise_scores_and_auroc() -> None:
    # flipped 1, 3, 4 score 0.9, 0.5, 0.2; unflipped 0, 2, 5 score 0.1, 0.5, 0.3:
    # pairs won 3 + 2.5 + 2 of 9 (the tie 0.5/0.5 counts a half)
    scores = torch.tensor([0.1, 0.9, 0.5, 0.5, 0.2, 0.3])
    row = mechanism.score({"u": NoiseScore(scores)}, NOISY, CLEAN)
    assert row["mech_u_auroc"] == pytest.approx(6.5 / 9)
    assert mechanism.auroc(np.array([1.0, 2.0]), np.array([False, False])) != mechanism.auroc(
        np.array([1.0, 2.0]), np.array([False, False]))  # NaN: no flipped sample
    assert mechanism.auroc(np.array([0.0, 1.0]), np.array([False, True])) == 1.0


def test_noise_flags_precision_and_recall() -> None:
    mask = torch.tensor([True, True, False, False, True, False])  # catches 1 and 4 of 1, 3, 4, and sample 0
    row = mechanism.score({"low": NoiseFlag(mask), "n": 3}, NOISY, CLEAN)
    assert row["mech_low_share"] == 0.5
    assert row["mech_low_precision"] == pytest.approx(2 / 3)
    assert row["mech_low_recall"] == pytest.approx(2 / 3)
    assert row["mech_n"] == 3.0


def test_flags_are_counted_per_label_and_a_class_flagged_whole_is_named() -> None:
    from fer_bench.runs import whole_classes_flagged

    # labels 0, 2, 1, 0, 1, 2: the flag takes sample 1 (a 2), 2 and 4 (both 1s); sample 5 (a 2) is unseen
    flag = NoiseFlag(torch.tensor([False, True, True, False, True, True]),
                     valid=torch.tensor([True, True, True, True, True, False]))
    by_class = mechanism.flags_by_class({"drop": flag, "rate": 0.3}, NOISY, ["a", "b", "c"])
    assert by_class == {"drop": {"a": 0.0, "b": 1.0, "c": 1.0}}  # c: its one seen sample
    only_b = mechanism.flags_by_class({"drop": NoiseFlag(torch.tensor([False, False, True, False, True, False]))},
                                      NOISY, ["a", "b", "c"])
    assert only_b == {"drop": {"a": 0.0, "b": 1.0, "c": 0.0}}
    assert whole_classes_flagged({"flagged_by_class": {"drop": {"a": 0.0, "b": 0.93, "c": 0.89}}}) == ["drop: b 93%"]
    assert whole_classes_flagged({}) == []  # an older record


def test_a_run_records_its_flags_per_class_and_its_summary_names_a_class_taken_whole(
        tiny_synth: Path, tmp_path: Path) -> None:
    from fer_bench.cli.training import run_summary

    result = engine_main(tiny_spec(tiny_synth, tmp_path, method="coteaching", noise="sym", rate=0.4))
    saved = json.loads((Path(result["run_dir"]) / "result.json").read_text())
    assert set(saved["flagged_by_class"]) == {"dropped_1", "dropped_2"}
    assert set(saved["flagged_by_class"]["dropped_1"]) <= set(saved["class_names"])
    shares = saved["flagged_by_class"]["dropped_1"].values()
    assert all(0 <= v <= 1 for v in shares) and 0 < max(shares)
    saved["flagged_by_class"]["dropped_1"]["fear"] = 0.95
    assert "flags most of a class's training images (last epoch): dropped_1: fear 95%" in run_summary(saved)


def test_a_run_resumed_after_its_last_epoch_records_the_same_flags(tiny_synth: Path, tmp_path: Path) -> None:
    # DivideMix keeps its division out of its checkpoint, so the flags are taken when its last epoch is scored
    spec = tiny_spec(tiny_synth, tmp_path, method="dividemix", noise="sym", rate=0.4, overrides={"warm_up": 1})
    first = engine_main(spec)
    assert set(first["flagged_by_class"]) == {"noisy_net1", "noisy_net2"}
    (Path(first["run_dir"]) / "result.json").unlink()  # as if killed between the last checkpoint and the result
    again = engine_main(spec)
    assert again["flagged_by_class"] == first["flagged_by_class"]


def test_bad_reports_are_named() -> None:
    with pytest.raises(TypeError, match="'x'"):
        mechanism.score({"x": "high"}, NOISY, CLEAN)
    with pytest.raises(KeyError, match="'nowhere'"):
        mechanism.score({"g": LabelGuess(torch.zeros(6, dtype=torch.long), among="nowhere")}, NOISY, CLEAN)


def test_a_trace_keeps_each_samples_last_visit_and_survives_a_resume() -> None:
    trace = SampleTrace(4, torch.device("cpu"), u=torch.float32)
    trace.write(torch.tensor([2, 0]), u=torch.tensor([[0.5], [0.25]]))
    trace.write(torch.tensor([2]), u=torch.tensor([0.75]))
    assert trace["u"].tolist() == [0.25, 0.0, 0.75, 0.0] and trace.seen().tolist() == [True, False, True, False]
    again = SampleTrace(4, torch.device("cpu"), u=torch.float32)
    again.load_state_dict(trace.state_dict())
    assert torch.equal(again["u"], trace["u"]) and torch.equal(again.seen(), trace.seen())
    again.load_state_dict({})  # a checkpoint of an older fer-bench: nothing seen yet
    assert not again.seen().any()


def _mech_rows(result: dict) -> list[dict]:
    with open(Path(result["run_dir"]) / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k.startswith("mech_")} for row in csv.DictReader(f)]


# What each built-in method reports every epoch (at least): its columns in metrics.csv.
EXPECTED = {
    "baseline": set(),
    "scn": {"mech_low_importance_precision", "mech_low_importance_recall", "mech_relabelled_precision",
            "mech_relabelled_recall", "mech_importance_auroc", "mech_relabel_start"},
    "rul": {"mech_uncertainty_auroc"},
    "eac": {"mech_cam_side"},
    "lanet": {"mech_memory_clean", "mech_memory_noisy", "mech_memory_clean_among_neighbours",
              "mech_expression_neighbours_agree", "mech_landmark_neighbours_agree", "mech_below_delta",
              "mech_start_mass", "mech_heatmap_side"},
}


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_each_method_reports_its_mechanism_every_epoch(method: str, tiny_synth: Path, tmp_path: Path) -> None:
    result = engine_main(tiny_spec(tiny_synth, tmp_path, method=method, noise="sym", rate=0.4))
    rows = _mech_rows(result)
    assert len(rows) == 2 and EXPECTED[method] <= set(rows[-1])
    assert isinstance(result["mechanism_off"], list)


def test_every_registered_method_is_expected() -> None:
    assert set(EXPECTED) <= set(list_methods())


def engine_main(spec):
    import fer_bench.engine.run as engine

    return engine.main(spec)


def test_lanet_switched_off_says_so(tiny_synth: Path, tmp_path: Path) -> None:
    from fer_bench.cli.training import run_summary

    from fer_bench.engine.spec import resolve

    spec = tiny_spec(tiny_synth, tmp_path, method="lanet", noise="sym", rate=0.4, overrides={"alpha": 0.0, "beta": 0.0})
    result = engine_main(spec)
    off = result["mechanism_off"]
    assert any("alpha = 0" in line for line in off) and any("beta = 0" in line for line in off)
    # at 32 px the heatmaps are 32 / heatmap_stride cells a side, under the 28 the criteria ask for
    side = resolve(spec).recipe["image_size"] // resolve(spec).recipe["heatmap_stride"]
    assert side < 28 and any(f"heatmaps of {side}x{side} cells" in line for line in off), off
    assert not any("contrastive half" in line for line in off)  # beta = 0 says it once
    saved = json.loads((Path(result["run_dir"]) / "result.json").read_text())
    assert saved["mechanism_off"] == off
    assert "mechanism off: label distribution learning off (alpha = 0)" in run_summary(result)


def test_lanet_diagnostics_on_a_built_memory(tiny_synth: Path, tmp_path: Path) -> None:
    """The memory's values read back exactly: below delta and the one-hot mass left after known visits."""
    from fer_bench.engine.build import build_training
    from fer_bench.engine.data import draw_split, load_data
    from fer_bench.engine.spec import resolve
    from fer_bench.engine.distributed import SINGLE
    from fer_bench.datasets.split import training_view

    run = resolve(tiny_spec(tiny_synth, tmp_path, method="lanet", noise="sym", rate=0.4,
                            overrides={"omega": 0.5}))
    data = load_data(run, SINGLE)
    split = draw_split(run, data.train_labels)
    method = build_training(run, training_view(data.dataset, split.keep), data.train_labels[split.keep], SINGLE).method
    n = method.ctx.num_train
    method.memory.table[: n // 2] = 0.6 / (method.ctx.num_classes - 1)  # spread: peak below delta = 0.7
    method.memory.table[: n // 2, 0] = 0.4
    method.model.lde.last_estimates = (torch.zeros(1, method.ctx.num_classes),) * 2
    for _ in range(3):  # three visits of sample 0, one of sample 1
        method._trace_step(torch.tensor([0]), torch.zeros(1, method.ctx.num_classes))
    method._trace_step(torch.tensor([1]), torch.zeros(1, method.ctx.num_classes))
    report = method.mechanism()
    assert report["below_delta"] == pytest.approx((n // 2) / n)
    assert report["start_mass"] == pytest.approx((0.5 ** 3 + 0.5 + (n - 2)) / n)


def test_the_diagnostics_resume_exactly(tiny_synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tiny_spec(tiny_synth, tmp_path / "a", method="scn", noise="sym", rate=0.4)
    straight = engine_main(spec)
    resumed = interrupt_then_resume(tiny_spec(tiny_synth, tmp_path / "b", method="scn", noise="sym", rate=0.4),
                                    monkeypatch)
    assert _mech_rows(resumed) == _mech_rows(straight)


def test_tables_and_the_figure_say_what_stayed_off(tiny_synth: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fer_bench.cli import main as cli

    runs = tmp_path / "runs"
    off = engine_main(tiny_spec(tiny_synth, runs, method="lanet", noise="sym", rate=0.4,
                                overrides={"alpha": 0.0, "beta": 0.0}))
    engine_main(tiny_spec(tiny_synth, runs, method="scn", noise="sym", rate=0.4))
    # (overrides that every run of a method shares do not make a variant: these are LA-Net's and SCN's rows)
    out = CliRunner().invoke(cli, ["table", "--results", str(runs)])
    assert out.exit_code == 0, out.output
    assert "Mechanism off" in out.output and "LA-Net in 1 of 1 runs" in out.output
    figure = CliRunner().invoke(cli, ["plot", "mechanisms", "--results", str(runs), "--out", str(tmp_path / "m")])
    assert figure.exit_code == 0, figure.output
    assert (tmp_path / "m.png").is_file() and (tmp_path / "m.pdf").is_file()


def test_the_figure_draws_the_diagnostics_it_read(tiny_synth: Path, tmp_path: Path) -> None:
    from fer_bench.report.plots import load_runs, mechanisms_data, mechanisms_figure

    runs = tmp_path / "runs"
    result = engine_main(tiny_spec(tiny_synth, runs, method="scn", noise="sym", rate=0.4))
    data = mechanisms_data(load_runs(runs))
    rows = _mech_rows(result)
    recall = data[data["column"] == "mech_low_importance_recall"].sort_values("epoch")["value"].tolist()
    assert recall == pytest.approx([float(r["mech_low_importance_recall"]) for r in rows])
    assert "mech_relabel_start" not in set(data["column"])  # a setting, constant over training
    fig = mechanisms_figure(data)
    gids = {line.get_gid() for ax in fig.axes for line in ax.get_lines()}
    assert f"{data['variant'].iloc[0]}/mech_low_importance_recall" in gids
    with pytest.raises(ValueError, match="no noisy run with mechanism diagnostics"):
        mechanisms_data(load_runs(runs), methods=["baseline"])
