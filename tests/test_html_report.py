"""``fer-bench report``: the static HTML site of a results tree, opened in a real (headless) browser.

The tree is a dozen of the committed synthfer records (no training), plus a variant run with a ``--set``
override. The browser tests run with the network off (tests/browser.py ``start(offline=True)``): the page
must need nothing but its own files. Where no browser is installed they are skipped with the reason.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from fer_bench.cli import main as cli
from fer_bench.registry import DATASETS
from fer_bench.runs.record import STATS
from tests import browser as chromium

COMMITTED = Path(__file__).resolve().parents[1] / "results" / "synthfer" / "pretrained" / "runs"
RUN_FILES = ("config.json", "result.json", "metrics.csv", "noise.json", "env.json")
SETTINGS, METHODS, SEEDS = ("clean", "sym-0.3", "asym-0.3"), ("baseline", "lanet"), (0, 1)
VARIANT = "synthfer/sym-0.3/baseline+lr=0.001/seed0"  # a run given --set lr=0.001
METRICS = ("acc", "mean_class_acc")


def _copy_run(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    for name in RUN_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)


def small_tree(root: Path) -> Path:
    """12 committed runs (3 settings x 2 methods x 2 seeds) and one variant with an override."""
    for setting in SETTINGS:
        for method in METHODS:
            for seed in SEEDS:
                part = Path("synthfer", setting, method, f"seed{seed}")
                _copy_run(COMMITTED / part, root / part)
    _copy_run(COMMITTED / "synthfer/sym-0.3/baseline/seed0", root / VARIANT)
    config = json.loads((root / VARIANT / "config.json").read_text())
    config["overrides"] = {"lr": 0.001}
    config["recipe"]["lr"] = 0.001
    (root / VARIANT / "config.json").write_text(json.dumps(config, indent=2))
    return root


def _need_committed() -> None:
    if not COMMITTED.is_dir():
        pytest.skip(f"the committed records are not here ({COMMITTED})")


def _report(args: list[str]) -> Any:
    return CliRunner().invoke(cli, ["report", "--quiet", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(results tree, report directory)``, the report made once by the command line."""
    _need_committed()
    base = tmp_path_factory.mktemp("html-report")
    runs, out = small_tree(base / "runs"), base / "site"
    done = _report(["--results", str(runs), "--out", str(out), "--no-userstudy"])
    assert done.exit_code == 0, done.output
    assert re.search(r"wrote the report of 13 runs: 1 page and 13 run panels, \d+ files, [\d.]+ [kM]B, in", done.output)
    return runs, out


@pytest.fixture(scope="module")
def offline() -> Iterator[Any]:
    """One headless Chromium for this module, with every network request failing."""
    reason = chromium.why_unavailable()
    if reason:
        pytest.skip(reason)
    driver = chromium.start(offline=True)
    try:
        yield driver
    finally:
        driver.quit()


def _open(driver: Any, out: Path, hash_: str = "") -> None:
    driver.get((out / "index.html").as_uri() + hash_)


def _wait(driver: Any, script: str, timeout: float = 10.0) -> Any:
    """The first truthy value of ``script`` (JavaScript returning something), polled."""
    end = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value or time.monotonic() > end:
            return value
        time.sleep(0.05)


def _markdown_rows(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("|")][2:]
    return [[cell.strip().replace("**", "") for cell in line.strip("|").split("|")] for line in lines]


_VISIBLE_TABLE = """
var view = document.querySelector('.table-view:not([hidden]) table.results');
if (!view) { return null; }
return Array.from(view.querySelectorAll('tbody tr')).map(function (tr) {
  return Array.from(tr.children).map(function (c) { return c.textContent.replace(/\\s+/g, ' ').trim(); });
});"""


def test_the_site_is_static_small_and_needs_nothing_from_outside(site: tuple[Path, Path]) -> None:
    _, out = site
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert {"index.html", "assets/data.js", "assets/report.js", "assets/report.css"} <= set(files)
    assert len([f for f in files if f.startswith("runs/")]) == 13
    for path in out.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), f"{path} loads from outside"
            assert "@import" not in text and "url(http" not in text, path
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) < 1_000_000


def test_the_table_shows_fer_bench_tables_cells_for_every_statistic_and_metric(
        site: tuple[Path, Path], offline: Any) -> None:
    runs, out = site
    _open(offline, out)
    assert _wait(offline, "return window.FER_REPORT && document.querySelector('#fig-accuracy').childElementCount > 0")
    seen = set()
    for metric in METRICS:
        offline.find_element("css selector", f"[data-metric='{metric}']").click()
        for stat in STATS:
            offline.find_element("css selector", f"[data-stat='{stat}']").click()
            shown = offline.execute_script(_VISIBLE_TABLE)
            table = CliRunner().invoke(cli, ["table", "--results", str(runs), "--stat", stat, "--metric", metric])
            assert table.exit_code == 0, table.output
            assert shown == _markdown_rows(table.output), (stat, metric)
            seen.add(json.dumps(shown))
    assert len(seen) == len(STATS) * len(METRICS)  # switching changed the numbers every time
    assert chromium.console_errors(offline) == []


def test_a_cell_and_a_figure_point_show_the_runs_behind_them(site: tuple[Path, Path], offline: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    _, out = site
    _open(offline, out)
    offline.find_element("css selector", "[data-stat='last']").click()
    link = offline.find_element("css selector", ".table-view:not([hidden]) td a")
    assert re.search(r"seed 0: [\d.]+; seed 1: [\d.]+", link.get_attribute("title"))
    link.click()
    assert _wait(offline, "return document.querySelectorAll('#tab-runs tbody tr:not([hidden])').length") == 2
    offline.get((out / "index.html").as_uri() + "#figures")
    point = _wait(offline, "return document.querySelector('#fig-accuracy svg.chart circle')")
    ActionChains(offline).move_to_element(point).perform()
    tip = _wait(offline, "var t = document.getElementById('tip'); return !t.hidden && t.textContent")
    assert "seed 0" in tip and "seed 1" in tip and "synthfer/" in tip
    assert chromium.console_errors(offline) == []


def test_a_runs_page_shows_its_configuration_curves_noise_and_command(site: tuple[Path, Path], offline: Any) -> None:
    _, out = site
    offline.get((out / "index.html").as_uri() + "#run/" + quote(VARIANT, safe=""))
    assert _wait(offline, "return document.querySelector('#tab-run pre.command')")
    panel = offline.find_element("css selector", "#tab-run")
    command = panel.find_element("css selector", "pre.command").text
    assert command == ("fer-bench run --method baseline --dataset synthfer --noise sym --rate 0.3 --seed 0 "
                       "--profile cpu-face --set lr=0.001")
    metrics = (out.parent / "runs" / VARIANT / "metrics.csv").read_text().splitlines()[0].split(",")
    titles = offline.execute_script(
        "return Array.from(document.querySelectorAll('#tab-run svg.chart .ctitle')).map(function (t) { return t.textContent; })")
    assert {"accuracy", "loss", "learning rate"} <= set(titles)
    legend = offline.execute_script(
        "return Array.from(document.querySelectorAll('#tab-run .legend .item')).map(function (b) { return b.textContent.trim(); })")
    assert set(legend) == set(metrics) - {"epoch"}  # every column of metrics.csv is drawn
    paths = offline.execute_script("return Array.from(document.querySelectorAll('#tab-run svg.chart path')).filter("
                                   "function (p) { return (p.getAttribute('d') || '').split('L').length > 5; }).length")
    assert paths >= 4
    lr = offline.execute_script(
        "var rows = Array.from(document.querySelectorAll('#tab-run table.kv tr')).filter(function (tr) {"
        " return tr.cells.length && tr.cells[0].textContent.replace('--set', '').trim() === 'lr'; });"
        " return rows.map(function (tr) { return [tr.className, tr.textContent]; });")
    assert len(lr) == 1 and lr[0][0] == "differs" and "0.001" in lr[0][1] and "0.002" in lr[0][1] and "--set" in lr[0][1]
    text = panel.text
    assert "realised 30.20 %" in text and "Confusion matrix" in text and "git_commit" in text
    assert len(panel.find_elements("css selector", "svg.heatmap")) == 2  # confusion and transition
    assert chromium.console_errors(offline) == []


def test_the_compare_view_puts_two_methods_side_by_side(site: tuple[Path, Path], offline: Any) -> None:
    _, out = site
    a, b = "g:synthfer/sym-0.3/baseline", "synthfer/sym-0.3/lanet/seed1"
    offline.get((out / "index.html").as_uri() + f"#compare/{quote(a, safe='')}/{quote(b, safe='')}")
    assert _wait(offline, "return document.querySelectorAll('#tab-compare .side-by-side svg.chart').length > 4")
    text = offline.find_element("css selector", "#tab-compare").text
    assert "Baseline · Symmetric 30% · mean of 2 seeds" in text and "LA-Net · Symmetric 30% · seed 1" in text
    differ = offline.execute_script(
        "return Array.from(document.querySelectorAll('#tab-compare tr.differs')).map(function (tr) { return tr.textContent; })")
    assert any(row.startswith("method") and "baseline" in row and "lanet" in row for row in differ)
    assert chromium.console_errors(offline) == []


def test_the_page_works_with_the_network_off(site: tuple[Path, Path], offline: Any) -> None:
    _, out = site
    offline.get((out / "index.html").as_uri() + "#runs")
    offline.refresh()  # a whole load with the network off
    assert _wait(offline, "return document.querySelectorAll('#tab-runs tbody tr').length") == 13
    first = offline.find_element("css selector", "#tab-runs tbody tr a")
    first.click()  # its panel's script is loaded now, from the file beside the page
    assert _wait(offline, "return document.querySelector('#tab-run pre.command')")
    loaded = offline.execute_script(
        "return Array.from(document.querySelectorAll('script[src], link[href]')).map(function (e) { return e.src || e.href; })")
    assert len(loaded) == 5 and all(u.startswith(("file://", "data:")) for u in loaded), loaded  # css, icon, 3 scripts
    assert chromium.console_errors(offline) == []


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    """``(tree, report, the command's outcome)`` of a tree with a broken run and an unfinished one."""
    _need_committed()
    base = tmp_path_factory.mktemp("broken")
    runs = base / "runs"
    for seed in SEEDS:
        part = Path("synthfer", "sym-0.3", "lanet", f"seed{seed}")
        _copy_run(COMMITTED / part, runs / part)
    _copy_run(COMMITTED / "synthfer/sym-0.3/baseline/seed0", runs / "synthfer/sym-0.3/baseline/seed0")
    (runs / "synthfer/sym-0.3/baseline/seed0/result.json").write_text('{"acc_last": ')
    going = runs / "synthfer/sym-0.3/baseline/seed1"
    _copy_run(COMMITTED / "synthfer/sym-0.3/baseline/seed1", going)
    (going / "result.json").unlink()
    return runs, base / "site", _report(["--results", str(runs), "--out", str(base / "site"), "--no-userstudy"])


def test_a_broken_run_is_named_with_exit_code_2_and_the_rest_is_reported(broken: tuple[Path, Path, Any]) -> None:
    runs, out, done = broken
    assert done.exit_code == 2
    assert "synthfer/sym-0.3/baseline/seed0: " in done.output and "could not be read" in done.output
    assert "wrote the report of 2 runs, 1 unfinished, 1 unreadable" in done.output
    page = (out / "index.html").read_text()
    bad = page[page.index('id="bad-runs"'):]
    assert "synthfer/sym-0.3/baseline/seed0</code>: " in bad[:2000] and "unreadable" in bad[:2000]
    assert "unfinished: <code>synthfer/sym-0.3/baseline/seed1</code> at epoch 15 of 15" in page
    assert "+1 unfinished" in page and "1 unreadable" in page and "missing:" not in page  # in the grid
    assert "/runs/synthfer" not in page  # no local path: the results root is left out of the problems


def test_the_rest_of_a_broken_tree_is_browsable(broken: tuple[Path, Path, Any], offline: Any) -> None:
    runs, out, _ = broken
    _open(offline, out)
    expected = _markdown_rows(CliRunner().invoke(cli, ["table", "--results", str(runs)]).output)
    assert offline.execute_script(_VISIBLE_TABLE) == expected == [["Symmetric 30%", "LA-Net", expected[0][2]]]
    offline.get((out / "index.html").as_uri() + "#runs")
    assert _wait(offline, "return document.querySelectorAll('#tab-runs tbody tr').length") == 2
    assert "unreadable: synthfer/sym-0.3/baseline/seed0" in offline.find_element("css selector", "#tab-runs").text
    assert chromium.console_errors(offline) == []


def test_an_empty_or_wholly_unreadable_tree_is_an_error_naming_the_runs(tmp_path: Path) -> None:
    _need_committed()
    (tmp_path / "empty").mkdir()
    done = _report(["--results", str(tmp_path / "empty"), "--out", str(tmp_path / "site")])
    assert done.exit_code == 2 and "no finished runs to report" in done.output
    broken = tmp_path / "bad" / "synthfer/clean/lanet/seed0"
    _copy_run(COMMITTED / "synthfer/clean/lanet/seed0", broken)
    (broken / "result.json").write_text("[]")
    done = _report(["--results", str(tmp_path / "bad"), "--out", str(tmp_path / "site")])
    assert done.exit_code == 2 and "synthfer/clean/lanet/seed0" in done.output
    assert not (tmp_path / "site" / "index.html").exists()
    done = _report(["--results", str(tmp_path / "nowhere")])
    assert done.exit_code == 2 and "results directory not found" in done.output


def test_other_files_are_never_overwritten_and_an_old_report_is_replaced(site: tuple[Path, Path],
                                                                         tmp_path: Path) -> None:
    runs, _ = site
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    done = _report(["--results", str(runs), "--out", str(other), "--no-userstudy"])
    assert done.exit_code == 2 and "holds other files" in done.output and (other / "notes.txt").read_text() == "mine"
    out = tmp_path / "site"
    assert _report(["--results", str(runs), "--out", str(out), "--no-userstudy"]).exit_code == 0
    (out / "runs" / "0123456789ab.js").write_text("stale")  # a run of an earlier tree
    first = (out / "index.html").read_text()
    assert _report(["--results", str(runs), "--out", str(out), "--no-userstudy"]).exit_code == 0
    assert not (out / "runs" / "0123456789ab.js").exists()
    assert (out / "index.html").read_text() == first  # the same tree gives the same page


def test_the_figures_numbers_are_fer_bench_plots_and_the_reproduce_command_names_the_same_run(
        site: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from fer_bench.cli.training import _base_spec, run
    from fer_bench.engine.spec import resolve
    from fer_bench.report.plots import curves_data, load_runs
    from fer_bench.runs import RunRecord

    runs, out = site
    data = json.loads((out / "assets" / "data.js").read_text().removeprefix("window.FER_REPORT = ").rstrip()[:-1])
    for stat in STATS:
        expected = curves_data(load_runs(runs), stat, "acc")
        shown = {(p["dataset"], p["panel"], line["line"], point["x"]): point["y"]
                 for p in data["accuracy"][f"acc-{stat}"]["panels"] for line in p["lines"] for point in line["points"]}
        assert shown == {(r.dataset, r.panel, r.line, r.rate): round(r.mean, 4) for r in expected.itertuples()}
    for entry in data["runs"]:
        record = RunRecord.read(runs / entry["key"])
        command = json.loads((out / "runs" / entry["file"]).read_text().removeprefix("ferReportRun(")
                             .rstrip()[:-2])["command"]
        params = dict(run.make_context("run", shlex.split(command)[2:]).params)
        params.pop("quiet"), params.pop("nproc")
        # named, as the record is, against the dataset's default profile of the day the run was made
        monkeypatch.setattr(DATASETS.get(record.config["dataset"]), "default_profile", record.config["default_profile"])
        resolved = resolve(_base_spec(progress=False, **params))
        assert resolved.id.name() == record.id.name()
        assert resolved.spec.overrides == record.config["overrides"]


def test_the_user_study_is_measured_as_fer_bench_userstudy_or_the_page_says_why(
        site: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    import fer_bench.report.userstudy as userstudy
    from fer_bench.report.html import build_report

    runs, _ = site

    def no_data(*args: Any, **kwargs: Any) -> pd.DataFrame:
        raise ValueError("the synthfer data of this run is not at /nowhere; pass --root DIR")

    monkeypatch.setattr(userstudy, "measure", no_data)
    build_report(runs, tmp_path / "a", progress=False)
    page = (tmp_path / "a" / "index.html").read_text()
    assert "not measured: the synthfer data of this run is not at /nowhere" in page

    measured = pd.DataFrame([{"setting": "clean", "descriptor": userstudy.CLEAN, "seed": None, "js_all": 0.25,
                              "js_ambiguous": 0.5}])
    measured.attrs.update(rates={"clean": 0.0}, source="synthfer's true distributions", n_images=10,
                          n_ambiguous=2, dataset="synthfer", split_runs=0, profile="")
    monkeypatch.setattr(userstudy, "measure", lambda *a, **k: measured)
    build_report(runs, tmp_path / "b", progress=False)
    page = (tmp_path / "b" / "index.html").read_text()
    assert 'data-table="userstudy-synthfer"' in page and "0.2500" in page and "one-hot clean labels" in page


def test_set_values_read_back_as_the_same_values() -> None:
    from fer_bench.engine.recipe import parse_value
    from fer_bench.report.html.reproduce import set_value

    for value in (0.001, 2, True, False, None, [1.0, 1.0], [], "cosine", "0.5", "true", "a b", 1e-05):
        assert parse_value(set_value(value)) == value, value


def test_the_mechanism_diagnostics_are_drawn_from_the_runs(tiny_synth: Path, tmp_path: Path, browser: Any) -> None:
    import fer_bench.engine.run as engine
    from fer_bench.report.html import build_report
    from fer_bench.report.plots import load_runs, mechanisms_data
    from tests.conftest import tiny_spec

    runs = tmp_path / "runs"
    engine.main(tiny_spec(tiny_synth, runs, method="scn", noise="sym", rate=0.4))
    build_report(runs, tmp_path / "site", progress=False, userstudy=False)
    data = json.loads((tmp_path / "site" / "assets" / "data.js").read_text().split("=", 1)[1].rstrip().rstrip(";"))
    panels = {p["title"].split(" · ")[1]: p for p in data["mechanisms"]["panels"]}
    expected = mechanisms_data(load_runs(runs))
    recall = expected[expected["column"] == "mech_low_importance_recall"].sort_values("epoch")["value"].tolist()
    line = next(l for l in panels["low importance"]["lines"] if l["title"].endswith("recall of flipped"))
    assert [p["y"] for p in line["points"]] == pytest.approx(recall, abs=1e-4)
    browser.get((tmp_path / "site" / "index.html").as_uri() + "#figures")
    _wait(browser, "return document.querySelectorAll('#fig-mechanisms svg').length > 0")
    assert chromium.console_errors(browser) == []


def test_a_default_taken_from_the_run_is_the_runs_own_in_the_panel() -> None:
    """Co-teaching's forget rate defaults to the run's nominal noise rate: at 30% noise, 0.3 is its default,
    not a value that differs from one."""
    from fer_bench.report.html.defaults import default_recipe
    from fer_bench.report.html.rundata import config_sections

    config = {"method": "coteaching", "dataset": "synthfer", "protocol": "official", "profile": "cpu-face-56",
              "noise": {"model": "sym", "rate": 0.3}, "overrides": {}}
    defaults, why = default_recipe(config)
    assert why is None and defaults["hparams"]["forget_rate"] == 0.3
    config["hparams"] = {"forget_rate": 0.3}
    rows = {r["key"]: r for s in config_sections(config)[0] if s["title"] == "hyper-parameters" for r in s["rows"]}
    assert rows["forget_rate"]["differs"] is False
    # a label-file run has no nominal rate: there is no default to compare with, and the panel says why
    defaults, why = default_recipe({**config, "noise": {"model": "file", "rate": None}})
    assert defaults is None and "forget_rate" in why
