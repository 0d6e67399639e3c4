"""Every figure is drawn in the suite's style, and a method looks the same in every figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib.colors as mcolors
import pytest

from fer_bench.engine.run import main as run_main
from fer_bench.engine.run import resolve
from fer_bench.report import plots
from fer_bench.report.collect import collect_runs

from .conftest import tiny_spec


@pytest.fixture(scope="module")
def runs(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("style") / "runs"
    wanted = {
        "base-clean": dict(method="baseline"),
        "base-sym": dict(method="baseline", noise="sym", rate=0.2),
        "base-asym": dict(method="baseline", noise="asym", rate=0.2),
        "lanet-sym": dict(method="lanet", noise="sym", rate=0.2),
        "lanet-alpha": dict(method="lanet", noise="sym", rate=0.2, overrides={"alpha": 0.5}),
    }
    dirs = {}
    for name, kw in wanted.items():
        spec = tiny_spec(tiny_synth, out, device="cpu", overrides={"epochs": 1, **kw.pop("overrides", {})}, **kw)
        run_main(spec)
        dirs[name] = resolve(spec).run_dir
    dirs["root"] = out
    return dirs


def _figure(kind: str, runs: dict[str, Path]):
    frame = collect_runs(runs["root"])
    if kind == "curves":
        return plots.curves_figure(plots.curves_data(frame))
    if kind == "grid":
        return plots.grid_figure(plots.grid_data(frame, "lanet"), "lanet")
    if kind == "gallery":
        return plots.gallery_figure(plots.gallery_data(runs["lanet-sym"], n=2))
    if kind == "confusion":
        return plots.confusion_figure(*plots.confusion_data(runs["base-sym"]))
    record = plots.transition_data(runs["base-asym"])
    return plots.transition_figure(record.transition_matrix, record.class_names, plots.transition_title(record))


@pytest.mark.parametrize("kind", ["curves", "grid", "gallery", "confusion", "transition"])
def test_every_figure_is_drawn_in_the_suites_style(kind: str, runs: dict[str, Path]) -> None:
    fig = _figure(kind, runs)
    style = plots.STYLE
    # rcParams are read when an artist is made: a figure drawn outside the style has 12 pt suptitles,
    # 10 pt legends and ticks, and 1.5 pt lines
    checked = 0
    if fig._suptitle is not None:  # noqa: SLF001 (where matplotlib keeps it)
        assert fig._suptitle.get_fontsize() == style["figure.titlesize"]  # noqa: SLF001
        checked += 1
    for legend in fig.legends:
        assert {t.get_fontsize() for t in legend.get_texts()} == {style["legend.fontsize"]}
        checked += 1
    for ax in fig.axes:
        for line in ax.get_lines():
            if line.get_gid():
                assert line.get_linewidth() == style["lines.linewidth"]
                checked += 1
        labels = [t for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
        if labels and kind != "gallery":  # the gallery sizes its ticks itself
            assert {t.get_fontsize() for t in labels} == {style["xtick.labelsize"]}
            checked += 1
    assert checked


def test_a_method_keeps_its_colour_and_name_whichever_methods_share_the_figure(runs: dict[str, Path]) -> None:
    frame = collect_runs(runs["root"])

    def lanet_line(methods: list[str]):
        fig = plots.curves_figure(plots.curves_data(frame, methods=methods))
        ax = next(a for a in fig.axes if a.get_gid() == "synthfer/sym")
        line = next(ln for ln in ax.get_lines() if ln.get_gid() == "lanet")
        return mcolors.to_hex(line.get_color()), [t.get_text() for t in fig.legends[0].get_texts()]

    alone, legend_alone = lanet_line(["lanet"])
    shared, legend_shared = lanet_line(["baseline", "lanet"])
    assert alone == shared
    assert legend_alone == ["LA-Net (n=1)"] and legend_shared[0].startswith("Baseline")


def test_panels_follow_the_tables_setting_order(runs: dict[str, Path]) -> None:
    fig = plots.curves_figure(plots.curves_data(collect_runs(runs["root"])))
    panels = [ax.get_gid() for ax in fig.axes if ax.get_visible() and ax.get_gid()]
    assert panels == ["synthfer/sym", "synthfer/asym"]
    assert [ax.get_title() for ax in fig.axes if ax.get_gid()] == ["Symmetric noise", "Asymmetric noise"]


def test_the_clean_transition_matrix_is_titled_as_clean(runs: dict[str, Path]) -> None:
    title = plots.transition_title(plots.transition_data(runs["base-clean"]))
    assert title.startswith("clean labels") and "nominal rate" not in title
