"""The documentation site and README.md: built with ``mkdocs build --strict``, true to the committed
records and the code, free of history, and rendered by a real browser.

The examples themselves run in ``tests/test_docs_examples.py``.
"""

from __future__ import annotations

import functools
import html
import http.server
import os
import re
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "docs" / "_scripts"))
import generate  # noqa: E402  (docs/_scripts/generate.py: what the pages show that code and records decide)

DOC_PAGES = sorted(p for p in (REPO / "docs").rglob("*.md") if "_generated" not in p.parts)
README = REPO / "README.md"


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as ``mkdocs build --strict`` builds it (a warning, a broken link or a missing page fails)."""
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env.pop("FER_BENCH_RESULTS", None)
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    return out


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


def test_the_site_builds_strict_with_every_page(site: Path) -> None:
    for page in DOC_PAGES:
        rel = page.relative_to(REPO / "docs").with_suffix(".html")
        assert (site / rel).is_file(), f"{rel} was not built"
    assert (site / "assets" / "results" / "synthfer" / "pretrained" / "figures" / "accuracy-vs-noise.png").is_file()


def test_the_cli_reference_has_every_command_and_option(site: Path) -> None:
    import click

    from fer_bench.cli import main

    page = (site / "reference" / "cli.html").read_text()

    def walk(group: click.Group, prefix: str) -> Iterator[tuple[str, click.Command]]:
        for name, command in group.commands.items():
            yield f"{prefix} {name}", command
            if isinstance(command, click.Group):
                yield from walk(command, f"{prefix} {name}")

    for path, command in walk(main, "fer-bench"):
        assert path in page, f"the CLI reference lacks `{path}`"
        for param in command.params:
            for option in getattr(param, "opts", []):
                if option.startswith("--"):
                    assert option in page, f"the CLI reference lacks `{path} {option}`"


def test_results_pages_show_every_committed_table(site: Path) -> None:
    for folder in generate.benchmark_folders():
        page = generate.results_page(folder)
        built = _text(site / Path(page).with_suffix(".html"))
        source = REPO / "docs" / page
        expanded = generate.expand(source.read_text(), page) if source.is_file() else generate.generated_results_page(folder)
        for table in [*folder.glob("table-*.md"), folder / "userstudy.md"]:
            if not table.is_file():
                continue
            assert table.read_text().strip() in expanded, f"{page} does not show {table.relative_to(REPO)} as committed"
            for cell in re.findall(r"\d+\.\d+ ± \d+\.\d+ \(\d+\)", table.read_text()):
                assert cell in built, f"{page}: the built page lacks {cell} of {table.relative_to(REPO)}"


def test_numbers_quoted_in_the_results_prose_are_in_committed_tables() -> None:
    committed = "\n".join(p.read_text() for p in (REPO / "results").rglob("*.md") if "runs" not in p.parts)
    for page in [*(REPO / "docs" / "results").glob("*.md"), REPO / "docs" / "explanation" / "protocol.md"]:
        for number in re.findall(r"\d+\.\d\d ± \d+\.\d\d", page.read_text()):
            assert number in committed, f"{page.relative_to(REPO)} quotes {number}, which no committed table holds"


def test_last_epoch_tables_count_only_finished_runs(tmp_path: Path) -> None:
    """A run still training (no result.json) beside a benchmark's runs, as when a sweep is going on, is no
    seed of it: its last row so far must not be averaged in as a last epoch."""
    import shutil

    finished = REPO / generate.BASELINE_RUN
    cell = tmp_path / "runs" / finished.relative_to(REPO / generate.DEFAULT_PROFILE / "runs").parent
    shutil.copytree(finished, cell / "seed0")
    training = cell / "seed1"
    training.mkdir()
    shutil.copy(finished / "config.json", training)
    rows = (finished / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    early = dict(zip(header, rows[1].split(",")))  # the first epoch's row, as the last one so far
    (training / "metrics.csv").write_text("\n".join([rows[0], rows[1]]) + "\n")
    last = dict(zip(header, rows[-1].split(",")))
    assert early["flipped_memorised"] != last["flipped_memorised"]

    table = generate.memorisation_table(str(tmp_path), settings=cell.parent.name)
    assert f"| Baseline | 1 | {100 * float(last['flipped_memorised']):.1f} |" in table, table


def test_the_headline_table_keeps_the_settings_asked_for() -> None:
    benchmark = generate.DEFAULT_PROFILE
    every = generate.headline_table(benchmark).splitlines()[0]
    kept = generate.headline_table(benchmark, settings="clean,sym-0.3").splitlines()
    assert "asym 30%" in every and kept[0] == "| method | clean | sym 30% |"
    assert all(row.count("|") == 4 for row in kept)


def test_readme_generated_blocks_are_current() -> None:
    stale = generate.stale_readme_blocks(README.read_text())
    assert not stale, f"README.md blocks {stale} are stale: run python docs/_scripts/generate.py --write"


def test_readme_is_a_landing_page() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; the landing page keeps to about 150"
    first_screen = "\n".join(lines[:60])
    for needed in ("pip install -e .", "## Quick start", "fer-bench run --method", "docs/getting-started/tutorial.md",
                   "docs/reference/index.md", "## Methods"):
        assert needed in first_screen, f"README.md's first screen lacks {needed!r}"
    assert "mkdocs build --strict" in README.read_text() and 'pip install -e ".[docs]"' in README.read_text()


def test_readme_links_resolve() -> None:
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text()):
        if not re.match(r"https?:", target):
            assert (REPO / target).exists(), f"README.md links {target}, which does not exist"


HISTORY = [
    (re.compile(r"\bissues? #?\d+", re.I), "an issue number"),
    (re.compile(r"\bat commit\b|\bcommit [0-9a-f]{7}", re.I), "a commit"),
    (re.compile(r"(?<![\w./-])(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,12}(?![\w/-])"), "a commit hash"),
]


@pytest.mark.parametrize("page", [README, *DOC_PAGES], ids=lambda p: str(p.relative_to(REPO)))
def test_no_history_in_the_readme_or_the_docs(page: Path) -> None:
    """What changed and when belongs in CHANGELOG.md (which docs/changelog.md includes)."""
    text = page.read_text()
    if page.name == "changelog.md":
        return
    for pattern, what in HISTORY:
        found = pattern.search(text)
        assert found is None, f"{page.relative_to(REPO)} names {what} ({found.group(0)!r}): history goes to CHANGELOG.md"


def test_the_quick_start_shows_the_committed_runs_command() -> None:
    command = generate.run_command(generate.QUICKSTART_RUN)
    for page in (README, REPO / "docs" / "index.md", REPO / "docs" / "getting-started" / "tutorial.md"):
        assert f"```bash\n{command}\n```" in page.read_text(), f"{page.name}: the quick start is not `{command}`"


def test_the_test_command_is_cis_and_the_docs_extra_is_in_the_test_extra() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert 'pip install -e ".[test]" && pytest' in README.read_text()
    assert '-e ".[test]"' in ci and ci.rstrip().splitlines()[-1] == "pytest"
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras["docs"]) <= set(extras["test"]), "the tests build the site: the test extra needs the docs extra"


def test_changelog_follows_keep_a_changelog() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog") and "## [Unreleased]" in text
    days = re.findall(r"^## (\d{4}-\d\d-\d\d)$", text, re.M)
    assert days and days == sorted(days, reverse=True), "days newest first"
    assert set(re.findall(r"^### (\w+)", text, re.M)) <= {"Added", "Changed", "Deprecated", "Removed", "Fixed",
                                                        "Security", "Measured"}


# --- in a real browser --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The built site over HTTP on a free local port, as ``mkdocs serve`` or any web server serves it."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()


@pytest.mark.parametrize("page, figures", [
    ("index.html", 1), ("getting-started/tutorial.html", 2), ("reference/cli.html", 0), ("results/pretrained.html", 6),
])
def test_pages_render_in_a_browser(page: str, figures: int, served: str, browser: Any, tmp_path: Path) -> None:
    """Home, tutorial, CLI reference and results load without console errors, ask nothing of the network
    beyond the site, and show their figures. FER_BENCH_DOCS_SHOTS=DIR keeps a screenshot of each."""
    from tests.browser import console_errors

    browser.get(served + page)
    deadline = time.time() + 20
    while browser.execute_script("return document.readyState") != "complete" and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # the search worker and the images
    assert browser.find_element("css selector", "h1").text.strip()
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
    broken = [src for src, ok in images if not ok]
    assert not broken, f"{page}: images that did not load: {broken}"
    assert len([src for src, _ in images if "assets/results" in src]) >= figures, f"{page}: figures missing"
    requests = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    outside = [url for url in requests if not url.startswith(served)]
    assert not outside, f"{page} asked the network for {outside}"
    assert console_errors(browser) == [], f"{page} logged errors"
    shots = Path(os.environ.get("FER_BENCH_DOCS_SHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1280, min(max(height, 900), 4000))
    browser.save_screenshot(str(shots / (page.replace("/", "_").replace(".html", "") + ".png")))


def test_the_methods_table_has_every_built_in_method(site: Path) -> None:
    """README.md's methods table (name, paper, venue, what it does against noise; the site's home page
    includes it) is written by hand: a method added to the suite needs its row, and a row its method."""
    from fer_bench.registry import METHODS

    page = README
    section = page.read_text().split("## Methods", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([\w-]+)` \|", section, re.M))
    built_in = {e.name for e in METHODS.entries() if e.source == "built-in"}
    assert rows == built_in, (f"{page.name}'s methods table: rows without a method {sorted(rows - built_in)}, "
                              f"methods without a row {sorted(built_in - rows)}")
    home = _text(site / "index.html")
    assert all(name in home for name in rows), "the home page does not show README.md's methods table"


@pytest.mark.slow
def test_outputs_on_the_full_synthfer_are_current(tmp_path: Path) -> None:
    """docs/_generated/ holds what `noise export` prints on the full synthfer (the default, about a minute
    to generate); `python docs/_scripts/generate.py --write --slow` writes it again."""
    for name, content in generate.slow_outputs(tmp_path).items():
        if isinstance(content, str):
            assert (generate.GENERATED / name).read_text() == content, f"docs/_generated/{name} is stale"


def _inline_commands(text: str) -> list[str]:
    """The ``fer-bench ...`` commands quoted in running text and tables (inline code, not fenced blocks)."""
    prose = re.sub(r"^[ \t]*```.*?^[ \t]*```", "", text, flags=re.M | re.S)
    return [span for span in re.findall(r"`(fer-bench [^`]+)`", prose)]


@pytest.mark.parametrize("page", [README, *DOC_PAGES], ids=lambda p: str(p.relative_to(REPO)))
def test_commands_quoted_in_the_text_name_existing_commands_and_options(page: Path) -> None:
    """`fer-bench plot curves [--stat S]` in a sentence or a table is checked too: the command must exist
    and each --option it names must be one of that command's."""
    import click

    from fer_bench.cli import main

    for span in _inline_commands(page.read_text()):
        words = span.replace("\\|", "|").split()[1:]
        command: click.Command = main
        path = ["fer-bench"]
        while isinstance(command, click.Group) and words and words[0] in command.commands:
            command = command.commands[words.pop(0)]
            path.append(command.name or "")
        if isinstance(command, click.Group) and words and not words[0].startswith("-"):
            assert words[0] in ("COMMAND", "..."), f"{page.name}: `{span}`: fer-bench has no command {words[0]!r}"
        known = {opt for param in command.params for opt in (*getattr(param, "opts", []),
                                                             *getattr(param, "secondary_opts", []))}
        known |= {"--help"}
        for option in re.findall(r"(?<![\w-])--[a-z][\w-]*", " ".join(words)):
            assert option in known, f"{page.relative_to(REPO)}: `{span}`: {' '.join(path)} has no option {option}"


def test_the_results_link_each_benchmarks_report_and_it_opens(site: Path, served: str, browser: Any) -> None:
    """The build writes every committed benchmark's `fer-bench report` (docs/_scripts/hooks.py), the Results
    page links it, and the linked page opens from the site with its table and no console error."""
    from tests.browser import console_errors

    browser.get(served + "results/index.html")
    links = [a.get_attribute("href") for a in browser.find_elements("link text", "report")]
    # one per committed benchmark with run records (from scratch, the papers' protocol, cpu-face-56, ...)
    assert len(links) == sum((f / "runs").is_dir() for f in generate.benchmark_folders()) >= 3, links
    for link in links:
        browser.get(link)
        deadline = time.time() + 20
        while not browser.execute_script("return document.querySelectorAll('table td').length") and time.time() < deadline:
            time.sleep(0.1)
        assert browser.execute_script("return document.querySelectorAll('table td').length") > 20, link
        assert console_errors(browser) == [], link
