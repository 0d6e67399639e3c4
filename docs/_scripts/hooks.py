"""The documentation site's build hook (``hooks:`` in mkdocs.yml).

* Every ``<!-- gen: NAME key=value ... -->`` in a page becomes the Markdown that
  ``generate.GENERATORS[NAME]`` makes from the code and the committed records (``generate.py``).
* The committed results (``results/**/figures/*``, the benchmarks' LaTeX and CSV tables) are copied into
  the site under ``assets/results/...``, so pages show and link them.
* A committed benchmark folder (``results/.../table-*.md``) without a page of its own gets a generated
  one, in the Results section: a benchmark committed later appears on the site without an edit.
* Sphinx roles in docstrings (``:func:`x```), which mkdocstrings leaves as text, are shown as code.
* After the build, every committed benchmark with run records gets its ``fer-bench report`` (the browsable
  HTML site of its runs) under ``report/<benchmark>/`` (:func:`generate.report_dir`); the Results pages link
  to it. It is generated, never committed: its records are.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate  # noqa: E402  (beside this file)

ASSET_SUFFIXES = (".png", ".pdf", ".tex", ".csv")
ROLE = re.compile(r":(?:func|class|mod|data|meth|attr|exc|obj|py:\w+):(?=<code>)")
TILDE = re.compile(r"<code>~(?:[\w.]+\.)?([\w]+)</code>")


def on_files(files: Files, config: Any) -> Files:
    assets = {path for folder in generate.benchmark_folders() for path in folder.rglob("*")
              if path.suffix in ASSET_SUFFIXES and "runs" not in path.relative_to(folder).parts}
    for path in sorted(assets):
        files.append(File.generated(config, generate.asset_uri(path), abs_src_path=str(path)))
    for folder in generate.benchmark_folders():
        page = generate.results_page(folder)
        if files.get_file_from_path(page) is None:
            files.append(File.generated(config, page, content=generate.generated_results_page(folder)))
            _add_to_results_nav(config, folder.relative_to(generate.REPO).as_posix(), page)
    return files


def _add_to_results_nav(config: Any, title: str, page: str) -> None:
    """List a generated benchmark page under the navigation's Results section."""
    for item in config["nav"] or []:
        if isinstance(item, dict) and "Results" in item:
            item["Results"].append({title: page})
            return


def on_post_build(config: Any) -> None:
    from fer_bench.report.html import build_report

    for folder in generate.benchmark_folders():
        runs = folder / "runs"
        if runs.is_dir():
            # no user study: it reads the full synthfer; the committed userstudy tables are on the pages
            build_report(runs, Path(config["site_dir"]) / generate.report_dir(folder), progress=False,
                         userstudy=False, title=f"{folder.relative_to(generate.REPO).as_posix()}: every run")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    return generate.expand(markdown, page.file.src_uri)


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    html = ROLE.sub("", html)
    return TILDE.sub(r"<code>\1</code>", html)
