"""Tables and the user study, from tiny real runs."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fer_bench.cli import main as cli
from fer_bench.datasets.synthfer.labels import js_divergence
from fer_bench.registry import create_dataset
from fer_bench.engine.run import main as run_main
from fer_bench.report.collect import aggregate, collect_runs
from fer_bench.report.tables import build_table, to_csv, to_latex, to_markdown
from fer_bench.report.userstudy import CLEAN, NOISY, measure

from .conftest import tiny_spec


@pytest.fixture(scope="module")
def runs(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "runs"
    for seed in (0, 1):
        for method in ("baseline", "lanet"):
            run_main(tiny_spec(tiny_synth, out, method=method, seed=seed))
            run_main(tiny_spec(tiny_synth, out, method=method, seed=seed, noise="sym", rate=0.2))
    return out


def _results(runs: Path) -> list[dict]:
    return [json.loads(p.read_text()) | {"dir": p.parent} for p in runs.rglob("result.json")]


def test_collect_and_aggregate_match_the_result_files(runs: Path) -> None:
    table = collect_runs(runs)
    assert len(table) == 8 and set(table["setting"]) == {"clean", "sym-0.2"}
    agg = aggregate(table, "last", "acc")
    for r in agg.itertuples():
        accs = [100 * x["acc_last"] for x in _results(runs)
                if x["method"] == r.method and (x["noise"]["model"] == "none") == (r.setting == "clean")]
        assert r.n == 2 and r.mean == pytest.approx(np.mean(accs)) and r.std == pytest.approx(np.std(accs, ddof=1))
        assert r.noise_seeds_varied == (r.setting != "clean")
    best = aggregate(table, "best", "mean_class_acc")
    assert (best["mean"] >= agg["mean"] - 100).all()
    with pytest.raises(ValueError, match="--stat"):
        aggregate(table, "median", "acc")


def test_markdown_and_csv_tables(runs: Path) -> None:
    agg = aggregate(collect_runs(runs), "last5", "acc")
    table = build_table(agg, "last5", "acc")
    md = to_markdown(table)
    lines = md.splitlines()
    assert lines[0] == "| Noise | Method | synthfer |"
    blocks = [l.split("|")[1].strip() for l in lines[2:] if l.startswith("|") and l.split("|")[1].strip()]
    assert blocks == ["clean", "Symmetric 20%"]
    for setting in ("clean", "sym-0.2"):
        part = agg[agg["setting"] == setting]
        winner = part.loc[part["mean"].idxmax()]
        assert f"**{winner['mean']:.2f} ± {winner['std']:.2f}** (2)" in md
        loser = part.loc[part["mean"].idxmin()]
        if not np.isclose(loser["mean"], winner["mean"]):
            assert f"| {loser['mean']:.2f} ± {loser['std']:.2f} (2) |" in md
    assert "averaged over the last 5 epochs" in md and "2 seeds" in md and "differ between seeds" in md
    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert len(rows) == 4
    for row in rows:
        match = agg[(agg["variant"] == row["method"]) & (agg["rate"] == float(row["rate"]))]
        assert float(row["mean"]) == pytest.approx(match["mean"].item(), abs=1e-4)
        assert int(row["n"]) == 2


def test_latex_table_is_booktabs_with_bold_best(runs: Path) -> None:
    tex = to_latex(build_table(aggregate(collect_runs(runs)), "last", "acc"))
    assert [l for l in tex.splitlines() if l.endswith("rule")] == [r"\toprule", r"\midrule", r"\midrule",
                                                                   r"\bottomrule"]
    assert tex.count(r"\textbf{") >= 2 and r"$\pm$" in tex and r"\%" in tex
    assert tex.count("{") == tex.count("}") - tex.count(r"\}") + tex.count(r"\{")
    if shutil.which("pdflatex"):
        doc = "\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n" + tex + "\\end{document}\n"
        work = runs.parent / "tex"
        work.mkdir(exist_ok=True)
        (work / "t.tex").write_text(doc)
        res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "t.tex"], cwd=work, capture_output=True)
        assert res.returncode == 0, res.stdout[-2000:]


def test_compare_paper_puts_published_numbers_and_differences_beside_ours() -> None:
    agg = pd.DataFrame([
        {"dataset": "rafdb", "noise": "sym", "rate": 0.3, "setting": "sym-0.3", "method": m, "variant": m,
         "mean": mean, "std": 0.5, "n": 3, "noise_seeds_varied": True, "protocol": "official", "profile": "paper"}
        for m, mean in (("baseline", 74.0), ("lanet", 86.0))])
    table = build_table(agg, "last", "acc", compare_paper=True)
    md = to_markdown(table)
    assert "| Noise | Method | RAF-DB | RAF-DB paper | RAF-DB Δ |" in md
    assert "| 74.00 ± 0.50 (3) | 75.50 | -1.50 |" in md
    assert "| **86.00 ± 0.50** (3) | 85.33 ± 0.18 | +0.67 |" in md
    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert "No published numbers" not in md
    synth = build_table(agg.assign(dataset="synthfer"), "last", "acc", compare_paper=True)
    assert not synth.compared and "No published numbers to compare with" in synth.caption
    assert float(rows[1]["paper"]) == 85.33 and float(rows[1]["diff"]) == pytest.approx(0.67)


def test_user_study_measures_each_descriptor_against_the_true_distributions(runs: Path, tiny_synth: Path) -> None:
    train = create_dataset("synthfer", tiny_synth, progress=False).train
    m = measure(runs, progress=False)
    truth = train.distributions / train.distributions.sum(1, keepdims=True)
    expected = js_divergence(np.eye(truth.shape[1])[train.labels], truth)
    clean = m[m["descriptor"] == CLEAN]
    assert clean["js_all"].item() == pytest.approx(expected.mean(), rel=1e-5)
    assert clean["js_ambiguous"].item() == pytest.approx(expected[truth.max(1) < 0.7].mean(), rel=1e-5)
    assert len(m[m["descriptor"] == NOISY]) == 2  # one per noise seed, not per method
    # overrides every run of a method shares (the tiny recipe) do not make a variant
    assert (m["descriptor"] == "LA-Net label distributions").sum() == 4
    assert (m["descriptor"] == "Baseline predictions").sum() == 4
    assert ((m["js_all"] >= 0) & (m["js_all"] <= np.log(2))).all()
    noisy = m[m["descriptor"] == NOISY]["js_all"]
    assert (noisy > clean["js_all"].item()).all()  # flipped labels are further from the truth


def test_user_study_keeps_only_the_chosen_run_variants(runs: Path) -> None:
    lanet = [v for v in collect_runs(runs)["variant"].unique() if v.startswith("lanet")]
    m = measure(runs, progress=False, methods=lanet)
    assert not m["descriptor"].str.startswith("Baseline").any()
    assert m["descriptor"].str.startswith("LA-Net").sum() == 8  # predictions and distributions of 4 runs
    assert len(m[m["descriptor"] == NOISY]) == 2
    with pytest.raises(ValueError, match="nosuch"):
        measure(runs, progress=False, methods=["nosuch"])


def test_user_study_cli_with_a_votes_file(runs: Path, tmp_path: Path) -> None:
    names = [l.split()[0] for l in (Path(json.loads(next(runs.rglob("config.json")).read_text())["root"])
                                    / "EmoLabel" / "list_patition_label.txt").read_text().split("\n")
             if l.startswith("train")][:5]
    votes = tmp_path / "votes.csv"
    votes.write_text("image,surprise,fear,disgust,happiness,sadness,anger,neutral\n"
                     + "".join(f"{n},0,0,0,10,0,0,0\n" for n in names))
    res = CliRunner().invoke(cli, ["userstudy", "--results", str(runs), "--votes", str(votes), "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert f"votes in {votes}" not in res.output  # the caption is not part of the CSV
    rows = list(csv.DictReader(io.StringIO(res.output[res.output.index("noise,"):])))
    assert {CLEAN, NOISY} <= {r["descriptor"] for r in rows}
    assert any(re.fullmatch(r"LA-Net.* label distributions", r["descriptor"]) for r in rows)
    md = CliRunner().invoke(cli, ["userstudy", "--results", str(runs), "--votes", str(votes)]).output
    assert re.search(r"mean over 5 training images", md)
    bad = tmp_path / "bad.csv"
    bad.write_text("image,surprise,fear,disgust,happiness,sadness,anger,neutral\nnot_an_image.jpg,1,0,0,0,0,0,0\n")
    res = CliRunner().invoke(cli, ["userstudy", "--results", str(runs), "--votes", str(bad)])
    assert res.exit_code == 2 and "not_an_image.jpg" in res.output


def test_table_cli_writes_each_format(runs: Path, tmp_path: Path) -> None:
    for fmt, needle in (("latex", r"\toprule"), ("markdown", "| Noise |"), ("csv", "noise,rate,method")):
        out = tmp_path / f"t.{fmt}"
        res = CliRunner().invoke(cli, ["table", "--results", str(runs), "--format", fmt, "--out", str(out)])
        assert res.exit_code == 0, res.output
        assert needle in out.read_text()
    res = CliRunner().invoke(cli, ["table", "--results", str(tmp_path / "none")])
    assert res.exit_code == 2 and "none" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner().invoke(cli, ["table", "--results", str(empty)])
    assert res.exit_code == 2 and "no finished runs" in res.output


def test_user_study_reuses_its_per_run_cache_without_checkpoints(runs: Path, tmp_path: Path) -> None:
    first = measure(runs, progress=False)
    copy = tmp_path / "copied"
    shutil.copytree(runs, copy, ignore=shutil.ignore_patterns("checkpoint.pt"))
    again = measure(copy, progress=False)
    pd.testing.assert_frame_equal(first.sort_values(["setting", "descriptor", "seed"]).reset_index(drop=True),
                                  again.sort_values(["setting", "descriptor", "seed"]).reset_index(drop=True))


def test_user_study_reference_is_ferplus_votes_or_a_votes_file(tmp_path: Path) -> None:
    from fer_bench.datasets.ferplus import FERPlus
    from fer_bench.report.userstudy import reference

    from .fixtures_real import make_ferplus_folders

    make_ferplus_folders(tmp_path / "ferplus")
    ds = FERPlus.load(tmp_path / "ferplus", progress=False)
    idx, ref, source = reference(ds)
    votes = np.asarray(ds.train.votes, dtype=float)
    assert "votes" in source and len(idx) == len(ds.train.names)
    np.testing.assert_allclose(ref, votes / votes.sum(1, keepdims=True))
    one = tmp_path / "votes.csv"
    one.write_text(",".join(["image", *ds.class_names]) + "\n"
                   + f"{ds.train.names[2]}," + ",".join(["0"] * (ds.num_classes - 1) + ["4"]) + "\n")
    idx, ref, source = reference(ds, one)
    assert idx.tolist() == [2] and ref[0, -1] == 1.0 and str(one) in source


def test_readme_shows_the_committed_reference_table() -> None:
    repo = Path(__file__).resolve().parent.parent
    readme = (repo / "README.md").read_text()
    shown = readme.split("<!-- reference-table:start -->")[1].split("<!-- reference-table:end -->")[0]
    assert shown.strip() == (repo / "results" / "synthfer" / "table-last.md").read_text().strip()
