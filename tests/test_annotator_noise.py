"""The ``annotator`` noise model: labels drawn from per-image votes, so ambiguous images flip more."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fer_bench.cli import main
from fer_bench.noise import NoiseRecord, inject_noise
from fer_bench.noise.record import flip_rate_by_ambiguity

from .fixtures_real import make_rafdb

NAMES = ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"]


def vote_table(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Clean labels and 10-vote tables: the first half unanimous or nearly (9-10 votes on the label),
    the second half ambiguous (5-6 votes on the label, the rest on another class)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, n)
    votes = np.zeros((n, 7), dtype=np.float32)
    for i, y in enumerate(labels):
        agree = rng.integers(9, 11) if i < n // 2 else rng.integers(5, 7)
        votes[i, y] = agree
        votes[i, (y + 1 + rng.integers(0, 6)) % 7] += 10 - agree
    return labels, votes


def test_ambiguous_images_flip_more_and_flips_go_to_voted_classes() -> None:
    labels, votes = vote_table()
    noisy, record = inject_noise(labels, NAMES, "annotator", 0.2, seed=3, votes=votes)
    flipped = noisy != labels
    clear, ambiguous = flipped[:2000].mean(), flipped[2000:].mean()
    assert ambiguous > 3 * clear > 0
    # every new label is one some annotator gave
    assert (votes[np.flatnonzero(flipped), noisy[flipped]] > 0).all()
    bins = {b["lo"]: b for b in record.by_ambiguity}
    assert bins[1.0]["n_flipped"] == 0 and bins[1.0]["n"] > 0  # unanimous images never flip
    assert bins[0.5]["flip_rate"] > bins[0.9]["flip_rate"]
    assert record.flip_targets is None and record.model == "annotator"


@pytest.mark.parametrize("rate", [0.1, 0.2, 0.3])
def test_realised_rate_within_tolerance_and_exact_count(rate: float) -> None:
    labels, votes = vote_table()
    n = labels.size
    _, bern = inject_noise(labels, NAMES, "annotator", rate, seed=1, votes=votes)
    assert abs(bern.realised_rate - rate) < 4 * np.sqrt(rate * (1 - rate) / n)
    _, exact = inject_noise(labels, NAMES, "annotator", rate, seed=1, exact=True, votes=votes)
    assert exact.n_flipped == round(rate * n) and exact.mode == "exact"


@pytest.mark.parametrize("exact", [False, True])
def test_deterministic_per_noise_seed(exact: bool) -> None:
    labels, votes = vote_table(800)
    a, rec_a = inject_noise(labels, NAMES, "annotator", 0.25, seed=7, exact=exact, votes=votes)
    b, rec_b = inject_noise(labels, NAMES, "annotator", 0.25, seed=7, exact=exact, votes=votes)
    c, _ = inject_noise(labels, NAMES, "annotator", 0.25, seed=8, exact=exact, votes=votes)
    assert np.array_equal(a, b) and rec_a.to_dict() == rec_b.to_dict()
    assert not np.array_equal(a, c)


def test_same_flips_by_name_in_any_class_order() -> None:
    labels, votes = vote_table(800)
    perm = np.array([3, 0, 6, 1, 5, 2, 4])  # new index k holds old class perm[k]
    inverse = np.argsort(perm)
    a, _ = inject_noise(labels, NAMES, "annotator", 0.2, seed=2, votes=votes)
    b, _ = inject_noise(inverse[labels], [NAMES[k] for k in perm], "annotator", 0.2, seed=2, votes=votes[:, perm])
    assert np.array_equal(perm[b], a)


def test_unreachable_rate_and_missing_votes_are_errors() -> None:
    labels, votes = vote_table(100)
    votes[:] = 0
    votes[np.arange(100), labels] = 10  # everyone agrees: nothing can flip
    with pytest.raises(ValueError, match="above 0.0000.*unanimous"):
        inject_noise(labels, NAMES, "annotator", 0.1, seed=0, votes=votes)
    with pytest.raises(ValueError, match="needs per-image annotator votes"):
        inject_noise(labels, NAMES, "annotator", 0.1, seed=0)


def test_flip_rate_by_ambiguity_by_hand() -> None:
    votes = np.array([[6, 4], [6, 4], [10, 0], [7, 3], [0, 0]], dtype=np.float32)
    clean = np.array([0, 0, 0, 0, 0])
    noisy = np.array([1, 0, 0, 1, 1])
    bins = {b["lo"]: b for b in flip_rate_by_ambiguity(clean, noisy, votes)}
    assert (bins[0.6]["n"], bins[0.6]["n_flipped"], bins[0.6]["flip_rate"]) == (2, 1, 0.5)
    assert (bins[0.7]["n"], bins[0.7]["flip_rate"]) == (1, 1.0)
    assert (bins[1.0]["n"], bins[1.0]["flip_rate"]) == (1, 0.0)
    assert sum(b["n"] for b in bins.values()) == 4  # the image without votes is left out


def test_cli_export_on_synthfer_records_flip_rate_by_ambiguity(tiny_synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "ann.txt"
    res = CliRunner().invoke(main, ["noise", "export", "--root", str(tiny_synth), "--noise", "annotator",
                                    "--rate", "0.2", "--noise-seed", "0", "--out", str(out)])
    assert res.exit_code == 0, res.output
    record = NoiseRecord.from_json((tmp_path / "ann.txt.json").read_text())
    assert record.model == "annotator" and len(record.by_ambiguity) == 7
    assert sum(b["n"] for b in record.by_ambiguity) == record.n
    assert "flip rate by largest vote share" in res.output


def test_dataset_without_votes_refuses_with_exit_2(tmp_path: Path) -> None:
    root = tmp_path / "raf"
    make_rafdb(root, [3] * 7, [1] * 7, size=16)
    out = tmp_path / "x.txt"
    res = CliRunner().invoke(main, ["noise", "export", "--dataset", "rafdb", "--root", str(root), "--noise",
                                    "annotator", "--rate", "0.2", "--out", str(out)])
    assert res.exit_code == 2
    assert "dataset rafdb has none" in res.output and "annotator" in res.output
    assert not out.exists()


def test_run_with_annotator_noise_then_plot_by_ambiguity(tiny_synth: Path, tmp_path: Path) -> None:
    import fer_bench.engine.run as engine

    from .conftest import tiny_spec

    spec = tiny_spec(tiny_synth, tmp_path / "runs", method="baseline", noise="annotator", rate=0.2, seed=0,
                     overrides={"epochs": 1})
    engine.main(spec)
    run_dir = engine.resolve(spec).run_dir
    assert "annotator-0.2" in str(run_dir)
    record = NoiseRecord.from_json((run_dir / "noise.json").read_text())
    assert record.model == "annotator" and record.by_ambiguity
    # a run's record and an exported record plot side by side
    res = CliRunner().invoke(main, ["plot", "ambiguity", str(run_dir), "--out", str(tmp_path / "amb")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "amb.png").stat().st_size > 0 and (tmp_path / "amb.pdf").is_file()
    # gallery re-derives the run's labels through the same noise path
    res = CliRunner().invoke(main, ["plot", "gallery", str(run_dir), "--n", "2", "--out", str(tmp_path / "g")])
    assert res.exit_code == 0, res.output


def test_plot_ambiguity_refuses_a_record_without_votes(tmp_path: Path) -> None:
    labels = np.array([0, 1, 2, 3] * 10)
    _, record = inject_noise(labels, NAMES, "sym", 0.2, seed=0)
    path = tmp_path / "sym.json"
    path.write_text(record.to_json())
    res = CliRunner().invoke(main, ["plot", "ambiguity", str(path), "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "no flip rate by vote share" in res.output
    assert not (tmp_path / "x.png").exists()
