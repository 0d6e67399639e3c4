"""`fer-bench plot`: every figure is written as PNG and PDF and shows the numbers of the runs."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fer_bench.cli import main as cli
from fer_bench.engine.run import main as run_main
from fer_bench.engine.run import resolve
from fer_bench.report import plots
from fer_bench.report.collect import aggregate, collect_runs

from .conftest import tiny_spec

ONE_EPOCH = {"epochs": 1}


@pytest.fixture(scope="module")
def runs(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny finished runs: baseline and LA-Net, clean and sym 0.2 over two seeds, baseline
    at asym 0.2, and one LA-Net grid variant (alpha=0.5)."""
    out = tmp_path_factory.mktemp("plots") / "runs"
    wanted = {
        "base-clean-0": dict(method="baseline", seed=0),
        "base-clean-1": dict(method="baseline", seed=1),
        "base-sym-0": dict(method="baseline", noise="sym", rate=0.2, seed=0),
        "base-sym-1": dict(method="baseline", noise="sym", rate=0.2, seed=1),
        "base-asym-0": dict(method="baseline", noise="asym", rate=0.2, seed=0),
        "lanet-clean-0": dict(method="lanet", seed=0),
        "lanet-sym-0": dict(method="lanet", noise="sym", rate=0.2, seed=0),
        "lanet-sym-1": dict(method="lanet", noise="sym", rate=0.2, seed=1),
        "lanet-alpha-0": dict(method="lanet", noise="sym", rate=0.2, seed=0, overrides={"alpha": 0.5}),
    }
    dirs = {}
    for name, kw in wanted.items():
        overrides = {**ONE_EPOCH, **kw.pop("overrides", {})}
        spec = tiny_spec(tiny_synth, out, device="cpu", overrides=overrides, **kw)
        run_main(spec)
        dirs[name] = resolve(spec).run_dir
    dirs["root"] = out
    return dirs


def _invoke(*args: str):
    return CliRunner().invoke(cli, ["plot", *args], catch_exceptions=False)


def _assert_written(stem: Path) -> None:
    png, pdf = stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000
    assert not [p for p in stem.parent.iterdir() if ".tmp" in p.name]


def _panel(fig, gid: str):
    [ax] = [a for a in fig.axes if a.get_gid() == gid]
    return ax


def _line(ax, gid: str):
    [line] = [ln for ln in ax.get_lines() if ln.get_gid() == gid]
    return line


def test_curves_show_the_aggregate_means(runs: dict[str, Path], tmp_path: Path) -> None:
    res = _invoke("curves", "--results", str(runs["root"]), "--out", str(tmp_path / "curves"))
    assert res.exit_code == 0, res.output
    _assert_written(tmp_path / "curves")

    table = collect_runs(runs["root"])
    agg = aggregate(table, "last", "acc").set_index(["setting", "method"])
    agg = agg[~agg["variant"].str.contains("alpha")]
    data = plots.curves_data(table)
    # overrides all runs share (epochs, image_size, ...) make no variant; the grid variant only with --variants
    assert set(data["variant"]) == {"baseline", "lanet"}
    fig = plots.curves_figure(data)
    sym, asym = _panel(fig, "synthfer/sym"), _panel(fig, "synthfer/asym")
    base = _line(sym, "baseline")
    assert list(base.get_xdata()) == [0.0, 0.2]
    np.testing.assert_allclose(base.get_ydata(), [agg.loc[("clean", "baseline"), "mean"],
                                                  agg.loc[("sym-0.2", "baseline"), "mean"]])
    np.testing.assert_allclose(_line(asym, "baseline").get_ydata(), [agg.loc[("clean", "baseline"), "mean"],
                                                                     agg.loc[("asym-0.2", "baseline"), "mean"]])
    np.testing.assert_allclose(_line(sym, "lanet").get_ydata(), [agg.loc[("clean", "lanet"), "mean"],
                                                                 agg.loc[("sym-0.2", "lanet"), "mean"]])
    assert agg.loc[("sym-0.2", "baseline"), "n"] == 2
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["Baseline (n=1–2)", "LA-Net (n=1–2)"]  # asym and clean lanet have one seed

    with_variants = plots.curves_data(table, variants=True)
    assert "lanet+alpha=0.5" in set(with_variants["variant"])
    alpha = with_variants[with_variants["variant"] == "lanet+alpha=0.5"]
    assert alpha["mean"].tolist() == [100 * json.loads((runs["lanet-alpha-0"] / "result.json").read_text())["acc_last"]]


def test_grid_plots_each_varied_hyper_parameter_with_its_default(runs: dict[str, Path], tmp_path: Path) -> None:
    res = _invoke("grid", "--results", str(runs["root"]), "--method", "lanet", "--out", str(tmp_path / "grid"))
    assert res.exit_code == 0, res.output
    _assert_written(tmp_path / "grid")

    table = collect_runs(runs["root"])
    data = plots.grid_data(table, "lanet")
    assert set(data["hparam"]) == {"alpha"}  # epochs/image_size/batch_size are overridden alike everywhere
    default_alpha = json.loads((runs["lanet-sym-0"] / "config.json").read_text())["hparams"]["alpha"]
    sym = data[data["setting"] == "sym-0.2"].set_index("value")
    assert sorted(sym.index) == sorted([0.5, default_alpha])
    assert bool(sym.loc[default_alpha, "is_default"]) and not bool(sym.loc[0.5, "is_default"])
    assert sym.loc[default_alpha, "n"] == 2 and sym.loc[0.5, "n"] == 1

    fig = plots.grid_figure(data, "lanet")
    line = _line(_panel(fig, "alpha"), "sym-0.2")
    acc = {name: 100 * json.loads((runs[name] / "result.json").read_text())["acc_last"]
           for name in ("lanet-sym-0", "lanet-sym-1", "lanet-alpha-0")}
    by_x = dict(zip(line.get_xdata(), line.get_ydata()))
    assert by_x[0.5] == pytest.approx(acc["lanet-alpha-0"])
    assert by_x[default_alpha] == pytest.approx((acc["lanet-sym-0"] + acc["lanet-sym-1"]) / 2)
    # the clean setting has only the default value of alpha: no line for it
    assert "clean" not in [ln.get_gid() for ln in _panel(fig, "alpha").get_lines()]


def _read_table(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return {r[0]: np.array([float(x) for x in r[1:]]) for r in rows[1:]}


def _bars(fig, gid: str) -> np.ndarray:
    return np.array([p.get_width() for p in _panel(fig, gid).patches])


def test_gallery_bars_are_the_runs_labels_votes_and_distributions(runs: dict[str, Path], tiny_synth: Path,
                                                                  tmp_path: Path) -> None:
    run_dir = runs["lanet-sym-0"]
    res = _invoke("gallery", str(run_dir), "--root", str(tiny_synth), "--n", "4", "--out", str(tmp_path / "g"))
    assert res.exit_code == 0, res.output
    _assert_written(tmp_path / "g")

    g = plots.gallery_data(run_dir, n=5, root=str(tiny_synth))
    assert len(g.names) == 5 and g.names == sorted(g.names)
    assert plots.gallery_data(run_dir, n=5, root=str(tiny_synth)).names == g.names  # deterministic
    fig = plots.gallery_figure(g)
    learned = _read_table(run_dir / "label_distributions.csv")
    votes = _read_table(tiny_synth / "EmoLabel" / "votes.csv")
    train = dict(line.split() for line in (run_dir / "train_labels.txt").read_text().splitlines())
    for name in g.names:
        np.testing.assert_allclose(_bars(fig, f"distribution:{name}"), learned[name], atol=1e-6)
        np.testing.assert_allclose(_bars(fig, f"votes:{name}"), votes[name] / votes[name].sum(), atol=1e-6)
        np.testing.assert_array_equal(_bars(fig, f"label:{name}"), np.eye(7)[int(train[name]) - 1])

    amb = plots.gallery_data(run_dir, n=3, root=str(tiny_synth), ambiguous=True)
    assert amb.names and all(votes[n].max() / votes[n].sum() < 0.7 for n in amb.names)

    # a method without label distributions: those bars are left out and the title says so
    plain = plots.gallery_figure(plots.gallery_data(runs["base-sym-0"], n=2, root=str(tiny_synth)))
    assert not [a for a in plain.axes if (a.get_gid() or "").startswith("distribution:")]
    assert "omitted" in plain._suptitle.get_text()


def test_confusion_heatmap_is_the_last_confusion_matrix(runs: dict[str, Path], tmp_path: Path) -> None:
    run_dir = runs["base-sym-0"]
    for extra in ([], ["--normalise"]):
        res = _invoke("confusion", str(run_dir), *extra, "--out", str(tmp_path / f"c{len(extra)}"))
        assert res.exit_code == 0, res.output
        _assert_written(tmp_path / f"c{len(extra)}")
    result = json.loads((run_dir / "result.json").read_text())
    m, names, title = plots.confusion_data(run_dir)
    assert names == result["class_names"] and "seed 0" in title
    fig = plots.confusion_figure(m, names)
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), result["confusion_last"])
    norm = plots.confusion_figure(m, names, normalise=True).axes[0].images[0].get_array()
    cm = np.asarray(result["confusion_last"], dtype=float)
    np.testing.assert_allclose(norm, cm / cm.sum(axis=1, keepdims=True))


def test_transition_heatmap_is_the_realised_matrix(runs: dict[str, Path], tmp_path: Path) -> None:
    run_dir = runs["base-asym-0"]
    res = _invoke("transition", str(run_dir), "--out", str(tmp_path / "t.png"))  # a suffix is dropped
    assert res.exit_code == 0, res.output
    _assert_written(tmp_path / "t")
    noise = json.loads((run_dir / "noise.json").read_text())
    record = plots.transition_data(run_dir)
    fig = plots.transition_figure(record.transition_matrix, record.class_names, plots.transition_title(record))
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), noise["transition"])
    assert f"{noise['realised_rate']:.3f}" in fig.axes[0].get_title()


def test_bad_input_exits_2_naming_the_path_or_method(runs: dict[str, Path], tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(runs["base-sym-0"] / "config.json", unfinished / "config.json")
    cases = [
        (["curves", "--results", str(empty)], str(empty)),
        (["grid", "--results", str(runs["root"]), "--method", "baseline"], "'baseline' has no grid variants"),
        (["grid", "--results", str(runs["root"]), "--method", "nosuch"], "'nosuch'"),
        (["confusion", str(empty)], f"{empty} is not a run directory"),
        (["confusion", str(unfinished)], f"{unfinished} has no result.json"),
        (["transition", str(unfinished)], f"{unfinished} has no noise.json"),
        (["gallery", str(empty)], f"{empty} is not a run directory"),
        (["gallery", str(runs["base-sym-0"]), "--root", str(tmp_path / "nodata")], f"{tmp_path / 'nodata'}"),
    ]
    for args, message in cases:
        res = _invoke(*args, "--out", str(tmp_path / "x"))
        assert res.exit_code == 2, (args, res.output)
        assert message in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not list(tmp_path.glob("x.*"))


def test_memorisation_plot_shows_the_mean_shares_of_each_setting(runs: dict[str, Path], tmp_path: Path) -> None:
    res = _invoke("memorisation", "--results", str(runs["root"]), "--out", str(tmp_path / "memo"))
    assert res.exit_code == 0, res.output
    _assert_written(tmp_path / "memo")
    data = plots.memorisation_data(collect_runs(runs["root"]))
    assert set(data["setting"]) == {"sym-0.2", "asym-0.2"} and set(data["variant"]) == {"baseline", "lanet"}
    fig = plots.memorisation_figure(data)
    seeds = [list(csv.DictReader(open(runs[f"base-sym-{s}"] / "metrics.csv"))) for s in (0, 1)]
    for share in ("flipped_memorised", "flipped_corrected"):
        expected = [100 * np.mean([float(rows[e][share]) for rows in seeds]) for e in range(len(seeds[0]))]
        np.testing.assert_allclose(_line(_panel(fig, "synthfer/sym-0.2"), f"baseline/{share}").get_ydata(), expected)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["Baseline (n=1–2)", "LA-Net (n=2)"]
    # A profile every line shares is named once, in the title, as a table names it in its caption.
    shared = plots.memorisation_figure(data.assign(variant=data["variant"] + "+profile=cpu-face"))
    assert [t.get_text() for t in shared.legends[0].get_texts()] == ["Baseline (n=1–2)", "LA-Net (n=2)"]
    assert shared._suptitle.get_text().endswith("· profile cpu-face")
    mixed = data.assign(variant=data["variant"].where(data["variant"] == "lanet", "baseline+profile=cpu-face"))
    assert [t.get_text() for t in plots.memorisation_figure(mixed).legends[0].get_texts()] == [
        "Baseline+profile=cpu-face (n=1–2)", "LA-Net (n=2)"]
    # runs recorded before the diagnostics existed: a clear error, nothing written
    old = tmp_path / "old"
    shutil.copytree(runs["root"], old)
    for m in old.rglob("metrics.csv"):
        rows = list(csv.DictReader(open(m)))
        keep = [k for k in rows[0] if k not in plots.MEMORISATION_LINES]
        m.write_text(",".join(keep) + "\n" + "\n".join(",".join(r[k] for k in keep) for r in rows) + "\n")
    res = CliRunner().invoke(cli, ["plot", "memorisation", "--results", str(old), "--out", str(tmp_path / "none")])
    assert res.exit_code == 2 and "memorisation diagnostics" in res.output
    assert not (tmp_path / "none.png").exists()
