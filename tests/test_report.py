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

from .conftest import TINY_RECIPE, tiny_spec


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
        p = _welch_by_hand(list(loser["seed_values"]), list(winner["seed_values"]))
        if not np.isclose(loser["mean"], winner["mean"]) and p < 0.05:
            assert f"| {loser['mean']:.2f} ± {loser['std']:.2f} (2) |" in md
        elif p >= 0.05:  # not significantly below the best: marked too
            assert f"| **{loser['mean']:.2f} ± {loser['std']:.2f}** (2) |" in md
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
    assert "No published number is on file" not in md
    later = pd.concat([agg, agg.iloc[:1].assign(method="nla", variant="nla", mean=80.0)], ignore_index=True)
    md = to_markdown(build_table(later, "last", "acc", compare_paper=True))
    assert "| NLA | 80.00 ± 0.50 (3) | – | – |" in md and "No published number is on file for NLA (–)." in md


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


def test_user_study_names_a_profile_every_run_shares_once_in_its_caption(runs: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import fer_bench.report.userstudy as userstudy

    def with_profile(results: Path) -> pd.DataFrame:
        found = collect_runs(results)
        return found.assign(variant=found["variant"] + "+profile=cpu-face")

    monkeypatch.setattr(userstudy, "collect_runs", with_profile)
    m = measure(runs, progress=False)
    assert (m["descriptor"] == "Baseline predictions").sum() == 4
    assert not m["descriptor"].str.contains("profile").any()
    assert "Every run: profile cpu-face." in userstudy.build_table(m).caption


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


def test_a_run_keeps_its_name_when_its_datasets_default_profile_changes_and_is_never_pooled(
        tiny_synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run is named against the default profile its config records, so a change of default renames
    nothing: the old run reads as the finished run it is, today's command that meets it in its
    directory says what it holds, and reports never average the two profiles in one cell."""
    from fer_bench.datasets.synthfer.loader import SynthFER
    from fer_bench.runs import RunDir, RunError, RunRecord

    out = tmp_path / "runs"
    today = SynthFER.default_profile
    before = "cpu" if today == "cpu-face" else "cpu-face"
    with monkeypatch.context() as m:
        m.setattr(SynthFER, "default_profile", before)
        old = run_main(tiny_spec(tiny_synth, out, method="baseline"))
    old_dir = Path(old["run_dir"])
    assert old_dir.parent.name.split("+")[0] == "baseline" and "profile" not in old_dir.parent.name
    record = RunRecord.read(old_dir)
    assert record.id.name().parts == old_dir.parts[-4:] and RunDir(old_dir).finished()
    assert record.config["profile"] == record.config["default_profile"] == before
    with pytest.raises(RunError, match=f"holds a {before} run, made when {before} was synthfer's default profile "
                                       f"\\(this run's is {today}\\); to keep both, give this one its own runs root"):
        run_main(tiny_spec(tiny_synth, out, method="baseline"))
    # Asked for by its profile, the old run is found under the name it got, not trained again beside it.
    again = run_main(tiny_spec(tiny_synth, out, method="baseline", profile=before))
    assert again.get("already_done") and Path(again["run_dir"]) == old_dir
    # trained again there (--force), its record keeps naming it as its directory does
    again = run_main(tiny_spec(tiny_synth, out, method="baseline", profile=before, force=True))
    assert not again.get("already_done") and Path(again["run_dir"]) == old_dir
    assert RunRecord.read(old_dir).id.name().parts == old_dir.parts[-4:]
    res = CliRunner().invoke(cli, ["sweep", "--methods", "baseline", "--root", str(tiny_synth), "--rates", "0",
                                   "--seeds", "0", "--profile", before, "--out", str(out), "--dry-run",
                                   *[f"--set={k}={v}" for k, v in TINY_RECIPE.items()]])
    assert res.exit_code == 0 and "1 runs, 1 finished" in res.output, res.output
    # today's default in another seed of the same root: one variant name, two profiles
    run_main(tiny_spec(tiny_synth, out, method="baseline", seed=1))
    res = CliRunner().invoke(cli, ["table", "--results", str(out), "--format", "csv"])
    assert res.exit_code == 2 and "holds runs of different profiles" in res.output, res.output


def test_one_cell_never_averages_two_profiles(runs: Path) -> None:
    """Runs made before and after a dataset's default profile changed share a variant name, not a profile."""
    frame = collect_runs(runs)
    frame.loc[frame.index[0], "profile"] = "other"
    with pytest.raises(ValueError, match="holds runs of different profiles"):
        aggregate(frame)


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


@pytest.mark.parametrize("page, table", [("results/from-scratch.md", "table-last.md"),
                                         ("results/pretrained.md", "pretrained/table-last.md"),
                                         ("results/pretrained.md", "pretrained/table-val.md")])
def test_the_docs_show_the_committed_reference_tables(page: str, table: str) -> None:
    """The results pages of the documentation site (docs/results/) show the committed tables as they are:
    the site's build hook puts each committed table into its page (docs/_scripts/generate.py)."""
    import sys

    repo = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(repo / "docs" / "_scripts"))
    import generate

    shown = generate.expand((repo / "docs" / page).read_text(), page)
    assert (repo / "results" / "synthfer" / table).read_text().strip() in shown


def _welch_by_hand(a: list[float], b: list[float]) -> float:
    """One-sided p that mean(a) < mean(b), from Welch's t and the Welch-Satterthwaite degrees of freedom."""
    from scipy.stats import t as student

    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    t = (np.mean(a) - np.mean(b)) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return float(student.cdf(t, df))


SIGNIFICANCE_CELLS = {  # method -> per-seed accuracies: best, a close runner-up, a clear loser, one seed only
    "scn": [88.0, 89.0, 90.0], "lanet": [87.0, 89.5, 88.0], "baseline": [80.0, 81.0, 82.0], "rul": [85.0]}


def _significance_agg() -> pd.DataFrame:
    return pd.DataFrame([
        {"dataset": "synthfer", "noise": "sym", "rate": 0.3, "setting": "sym-0.3", "method": m, "variant": m,
         "mean": np.mean(v), "std": np.std(v, ddof=1) if len(v) > 1 else float("nan"), "n": len(v),
         "seed_values": tuple(v), "noise_seeds_varied": True, "protocol": "official", "profile": "cpu"}
        for m, v in SIGNIFICANCE_CELLS.items()])


def test_significance_marks_the_best_and_every_entry_not_significantly_below_it() -> None:
    cells = SIGNIFICANCE_CELLS
    p_lanet, p_baseline = _welch_by_hand(cells["lanet"], cells["scn"]), _welch_by_hand(cells["baseline"], cells["scn"])
    assert p_lanet > 0.1 and p_baseline < 0.01  # the hand-built case is what it says
    table = build_table(_significance_agg(), "last", "acc")
    got = {v: c["synthfer"] for v, c in table.blocks[0].rows}
    assert got["scn"].best and got["scn"].p_best is None
    assert got["lanet"].p_best == pytest.approx(p_lanet) and got["lanet"].tied and not got["lanet"].best
    assert got["baseline"].p_best == pytest.approx(p_baseline) and not got["baseline"].tied
    assert got["rul"].p_best is None and not got["rul"].marked  # one seed: not tested, not marked
    md = to_markdown(table)
    assert "| **89.00 ± 1.00** (3) |" in md and "| **88.17 ± 1.26** (3) |" in md and "| 81.00 ± 1.00 (3) |" in md
    assert "not significantly below" in md and "Welch" in md and "α = 0.05" in md and "1-3 seeds" in md
    rows = {r["method"]: r for r in csv.DictReader(io.StringIO(to_csv(table)))}
    assert float(rows["lanet"]["p_vs_best"]) == pytest.approx(p_lanet, abs=1e-4)
    assert float(rows["baseline"]["p_vs_best"]) == pytest.approx(p_baseline, abs=1e-4)
    assert [rows[m]["tied_with_best"] for m in ("scn", "lanet", "baseline", "rul")] == ["True", "True", "False", "False"]
    assert rows["scn"]["best_in_block"] == "True" and rows["scn"]["p_vs_best"] == ""
    assert r"$\alpha$" in to_latex(table) and to_latex(table).count(r"\textbf{") == 2
    # a stricter level than lanet's p keeps it marked; a level above it drops it
    strict = dict(build_table(_significance_agg(), "last", "acc", alpha=p_lanet + 0.01).blocks[0].rows)
    assert not strict["lanet"]["synthfer"].tied
    off = dict(build_table(_significance_agg(), "last", "acc", alpha=None).blocks[0].rows)
    assert {m for m, c in off.items() if c["synthfer"].marked} == {"scn"}
    caption = build_table(_significance_agg(), "last", "acc", alpha=None).caption
    assert "Best mean per block and column in bold." in caption and "Welch" not in caption
    one_seed = _significance_agg().query("method == 'rul'")  # nothing to test: the caption does not claim a test
    assert "no significance test" in build_table(one_seed, "last", "acc").caption
    assert "Welch" not in build_table(one_seed, "last", "acc").caption


def test_table_cli_significance_options(runs: Path) -> None:
    res = CliRunner().invoke(cli, ["table", "--results", str(runs), "--format", "csv", "--alpha", "0.2"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.output)))
    for row in rows:
        if row["p_vs_best"]:
            assert (row["tied_with_best"] == "True") == (float(row["p_vs_best"]) >= 0.2)
    res = CliRunner().invoke(cli, ["table", "--results", str(runs), "--significance", "none"])
    assert res.exit_code == 0 and "Welch" not in res.output
    res = CliRunner().invoke(cli, ["table", "--results", str(runs), "--alpha", "1.5"])
    assert res.exit_code == 2 and "1.5" in res.output


def test_a_profile_every_row_shares_is_named_in_the_caption_not_in_each_row() -> None:
    agg = _significance_agg()
    face = agg.assign(variant=agg["variant"] + "+profile=cpu-face", profile="cpu-face")
    md = to_markdown(build_table(face, "last", "acc"))
    assert "| SCN |" in md and "+profile" not in md.split("\n\n")[0] and "Profile cpu-face" in md
    # rows of two profiles keep their names: nothing tells them apart otherwise
    mixed = pd.concat([face, agg.assign(variant=agg["variant"] + "+profile=paper", profile="paper")])
    md = to_markdown(build_table(mixed, "last", "acc"))
    assert "| SCN+profile=cpu-face |" in md and "| SCN+profile=paper |" in md


def test_a_class_the_last_model_never_predicts_is_named_by_the_run_and_counted_by_the_tables(
        runs: Path, tmp_path: Path) -> None:
    """A model that assigns no test image to a class loses little accuracy when the class is small; the run's
    summary names the class and the tables' caption counts such runs per method."""
    from fer_bench.cli import run_summary

    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    results = sorted(copy.rglob("result.json"))
    for path in results:  # every run predicts every class ...
        result = json.loads(path.read_text())
        k = len(result["class_names"])
        result["confusion_last"] = [[5 if i == j else 1 for j in range(k)] for i in range(k)]
        path.write_text(json.dumps(result))
    lost = next(p for p in results if "lanet" in p.parts[-3] and "clean" in p.parts)
    result = json.loads(lost.read_text())  # ... but one LA-Net run, which never predicts classes 1 and 3
    result["confusion_last"] = [[0 if j in (1, 3) else 5 for j in range(len(row))] for row in result["confusion_last"]]
    lost.write_text(json.dumps(result))
    names = result["class_names"]

    assert f"never predicted on the test set (last epoch): {names[1]}, {names[3]}" in run_summary(result)
    other = next(p for p in results if p != lost)
    assert "never predicted" not in run_summary(json.loads(other.read_text()))
    out = CliRunner().invoke(cli, ["table", "--results", str(copy)])
    assert out.exit_code == 0, out.output
    assert "Classes never predicted" in out.output and "LA-Net in 1 of 4 runs" in out.output
    assert "Baseline in" not in out.output.split("Classes never predicted")[1]


def test_the_report_panel_of_a_run_names_the_classes_it_never_predicts() -> None:
    from fer_bench.report.html.rundata import _result_rows

    result = {"acc_last": 0.5, "class_names": ["a", "b", "c"], "confusion_last": [[3, 0, 1], [2, 0, 0], [1, 0, 4]]}
    rows = {r["key"]: r["value"] for r in _result_rows(result)}
    assert rows["never predicted on the test set (last epoch)"] == "b"
    result["confusion_last"][1][1] = 1
    assert not any("never predicted" in r["key"] for r in _result_rows(result))


def test_a_setting_every_run_of_a_method_shares_is_said_in_the_caption(runs: Path, tiny_synth: Path,
                                                                        tmp_path: Path) -> None:
    """An override all of a method's runs share does not make a variant (its rows keep the method's name),
    so the caption says it; one that sets some runs apart names their rows instead."""
    shared = "batch_size=32 epochs=2 image_size=32"
    out = CliRunner().invoke(cli, ["table", "--results", str(runs)])
    assert out.exit_code == 0, out.output
    assert f"Set for every run of the method (--set): Baseline {shared}; LA-Net {shared}." in out.output
    study = CliRunner().invoke(cli, ["userstudy", "--results", str(runs)])
    assert study.exit_code == 0, study.output
    assert f"Set for every run of the method (--set): Baseline {shared}; LA-Net {shared}." in study.output
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    run_main(tiny_spec(tiny_synth, copy, method="lanet", overrides={"alpha": 0.5}))
    out = CliRunner().invoke(cli, ["table", "--results", str(copy), "--methods", "baseline,lanet,lanet+alpha=0.5"])
    assert out.exit_code == 0, out.output
    assert "LA-Net+alpha=0.5" in out.output and "LA-Net alpha" not in out.output
