"""The overview's tables as HTML: ``fer-bench table`` for every statistic and metric, and the user study.

Nothing here computes a cell: :func:`fer_bench.report.collect.aggregate` and
:func:`fer_bench.report.tables.build_table` make the table (significance marks and published numbers
included) and the tables module's own layout (``header_row``, ``body_rows``, ``mean_std_text``) writes its rows, so a
cell reads as in ``fer-bench table``'s Markdown (``84.26 ± 0.52 (3)``, marked ones in bold). This module
only puts them into HTML, with a link from each of our cells to the runs behind it and their per-seed
values in its tooltip. The user study is :func:`fer_bench.report.userstudy.measure` and its
``build_table``; when it cannot be measured (no dataset, no checkpoints), the page says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence
from urllib.parse import quote

from markupsafe import Markup, escape

from ..collect import aggregate, unavailable_message
from ..plots.canvas import METRIC_TEXT, STAT_TEXT
from ..tables import ALPHA, Cell, Table, body_rows, build_table, header_row, mean_std_text, setting_order
from .tree import Tree

PM = " ± "  # as in the Markdown table


@dataclass
class HtmlTable:
    """One table, ready for the page: its header, blocks of rows of cells (HTML), caption and notes."""

    id: str
    title: str
    header: list[str] = field(default_factory=list)
    blocks: list[list[list[Markup]]] = field(default_factory=list)
    caption: str = ""
    message: Optional[str] = None  # why there is no table (or what it lacks)
    stat: str = ""
    metric: str = ""

    @property
    def empty(self) -> bool:
        return not self.blocks


def group_id(dataset: str, setting: str, variant: str) -> str:
    """The key of a setting's runs of one variant (a table cell, a point of a figure): ``dataset/setting/variant``."""
    return f"{dataset}/{setting}/{variant}"


def group_href(group: str) -> str:
    return "#runs/" + quote(group, safe="/+=")


def _rows(table: Table, link: Optional[Callable[[int, str, str], Optional[tuple[str, str]]]] = None
          ) -> list[list[list[Markup]]]:
    """The table's rows as the tables module lays them out, each of our cells as HTML; ``link(block index,
    row name, column)`` gives a cell's (href, tooltip)."""
    where: dict[int, tuple[int, str, str]] = {}
    for b, block in enumerate(table.blocks):
        for name, cells in block.rows:
            for column, c in cells.items():
                where[id(c)] = (b, name, column)

    def cell(c: Cell) -> str:
        text = escape(mean_std_text(c, PM, table.digits))
        inner = Markup(f"<strong>{text}</strong>" if c.marked else text) + Markup(f' <span class="n">({c.n})</span>')
        target = link(*where[id(c)]) if link and id(c) in where else None
        if target:
            href, tip = target
            inner = Markup(f'<a href="{escape(href)}" title="{escape(tip)}">{inner}</a>')
        return inner

    return body_rows(table, cell, PM, escape)


def _seed_words(part: Any, column: str) -> str:
    values = [f"seed {int(s)}: {'n/a' if math.isnan(v) else f'{v:.2f}'}" for s, v in zip(part["seed"], part[column])]
    return "; ".join(values)


def accuracy_tables(tree: Tree, stats: Sequence[str], metrics: Sequence[str] = ("acc", "mean_class_acc"),
                    methods: Sequence[str] = (), alpha: Optional[float] = ALPHA) -> list[HtmlTable]:
    """``fer-bench table --stat S --metric M`` for each statistic and metric, with LA-Net's published numbers
    beside the accuracy of the datasets the paper reports."""
    out = []
    for metric in metrics:
        for stat in stats:
            view = HtmlTable(f"{metric}-{stat}", f"{METRIC_TEXT[metric]} · {STAT_TEXT[stat]}", stat=stat, metric=metric)
            out.append(view)
            try:
                agg = aggregate(tree.runs, stat, metric, list(methods))
            except ValueError as exc:
                view.message = str(exc)
                continue
            table = build_table(agg, stat, metric, compare_paper=metric == "acc", alpha=alpha)
            settings = [s for s, _, _ in setting_order(agg["setting"].unique(), dict(zip(agg["setting"], agg["rate"])))]
            runs, column = tree.runs, f"{metric}_{stat}"

            def link(block: int, variant: str, dataset: str, settings: list[str] = settings,
                     column: str = column) -> tuple[str, str]:
                group = group_id(dataset, settings[block], variant)
                part = runs[(runs["dataset"] == dataset) & (runs["setting"] == settings[block])
                            & (runs["variant"] == variant)].sort_values("seed")
                return group_href(group), f"{_seed_words(part, column)} (click: the runs)"

            view.header, view.blocks, view.caption = header_row(table), _rows(table, link), table.caption
            view.message = unavailable_message(agg, stat)
    return out


def userstudy_tables(tree: Tree, methods: Sequence[str] = (), alpha: Optional[float] = ALPHA,
                     device: str = "auto", progress: bool = False) -> list[HtmlTable]:
    """``fer-bench userstudy`` of each dataset of the tree; a table that cannot be measured says why."""
    out = []
    for dataset in sorted(tree.runs["dataset"].unique()):
        view = HtmlTable(f"userstudy-{dataset}", f"User study · {dataset}")
        out.append(view)
        try:
            from ..userstudy import build_table as userstudy_table
            from ..userstudy import measure

            table = userstudy_table(measure(tree.root, dataset, methods=methods, device=device, progress=progress),
                                    alpha)
        except Exception as exc:  # noqa: BLE001 - whatever stops it (no data, no checkpoint), the page says it
            view.message = f"not measured: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
            continue
        view.header, view.blocks, view.caption = header_row(table), _rows(table), table.caption
    return out
