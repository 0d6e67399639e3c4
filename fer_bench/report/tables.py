"""Result tables in the layout of LA-Net's Table 1: LaTeX (booktabs), Markdown and CSV.

Rows are blocks of one noise setting (clean, then each noise type by rate)
with one row per method; columns are datasets. A cell is mean ± sample std
over seeds with the number of seeds; the best mean of each block and dataset
is bold, and so is every entry not significantly worse than it (one-sided
Welch's t-test over the seeds, see :meth:`Table.mark_best`). With ``compare_paper`` every real dataset gets the published number
and our difference beside it. The CSV keeps numbers as numbers (one row per
cell) so it can be re-analysed without parsing strings.

Runs on long-tailed training subsets (``--imbalance RHO``) make blocks of their own
(``Symmetric 30%, ρ = 10``, after the same noise on the full training set), and an
accuracy table of such runs puts each dataset's mean class accuracy beside its accuracy
(:func:`~fer_bench.report.collect.companion`; the CSV then has a ``metric`` column).
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _stats

from ..runs.identity import parse_setting, split_imbalance
from .collect import COMPANION
from .style import block_title, method_of, method_title, setting_key, shared_profile, variant_order
from . import paper

DATASET_TITLES = {"synthfer": "synthfer", "rafdb": "RAF-DB", "ferplus": "FERPlus", "affectnet": "AffectNet"}
STAT_WORDS = {"last": "at the last epoch", "best": "at the best epoch (optimistic: chosen on the test set)",
              "last5": "averaged over the last 5 epochs",
              "val": "at the epoch with the best accuracy on the held-out noisy labels (chosen without the test set)"}
METRIC_WORDS = {"acc": "Clean-test accuracy (%)", "mean_class_acc": "Clean-test mean class accuracy (%)"}


ALPHA = 0.05  # the default significance level of the table marks


def welch_p(values: Sequence[float], best: Sequence[float], higher: bool = True) -> float:
    """One-sided p-value of Welch's t-test that ``values`` are worse than ``best`` (lower when ``higher``).

    Zero spread on both sides leaves the test undefined: equal means are then a tie (p = 1), different
    ones a certain difference (p = 0).
    """
    a, b = np.asarray(values, float), np.asarray(best, float)
    with warnings.catch_warnings():  # nearly equal seeds: scipy warns, the p-value stays usable
        warnings.simplefilter("ignore", RuntimeWarning)
        p = _stats.ttest_ind(a, b, equal_var=False, alternative="less" if higher else "greater").pvalue
    if np.isnan(p):
        return 1.0 if np.isclose(a.mean(), b.mean()) else 0.0
    return float(p)


@dataclass
class Cell:
    mean: float
    std: float
    n: int
    best: bool = False  # the best mean of its block and column
    paper: Optional[paper.Cell] = None
    values: Sequence[float] = ()  # the per-seed numbers, for the significance test
    p_best: Optional[float] = None  # Welch's p-value against the best cell (None: not tested)
    tied: bool = False  # not significantly worse than the best (the best itself too): marked

    @property
    def marked(self) -> bool:
        return self.best or self.tied

    @property
    def diff(self) -> Optional[float]:
        return None if self.paper is None else self.mean - self.paper[0]


@dataclass
class Block:
    title: str
    noise: str
    rate: float
    rows: list[tuple[str, dict[str, Cell]]] = field(default_factory=list)  # (variant, dataset -> cell)
    imbalance: Optional[float] = None  # RHO of the block's long-tailed training subset; None: the full set
    imbalance_seed: Optional[int] = None  # the subset's seed, where the setting names it (not the default)


@dataclass
class Table:
    blocks: list[Block]
    columns: list[str]  # datasets, or other column keys (the user study's image subsets)
    compared: list[str]  # columns with published numbers beside ours
    caption: str
    titles: dict[str, str] = field(default_factory=lambda: dict(DATASET_TITLES))
    digits: int = 2
    row_header: str = "Method"
    column_name: str = "dataset"  # what a column is, for the CSV
    label: str = "tab:fer-bench"  # LaTeX \label; build_table makes it unique per metric and statistic
    higher: bool = True  # a higher number is better

    alpha: Optional[float] = None  # significance level of the marks; None: the best mean only
    # column -> (dataset, metric) where a table shows more than one metric (the companion of long-tailed runs)
    column_metrics: dict[str, tuple[str, str]] = field(default_factory=dict)

    def mark_best(self, higher: bool = True, alpha: Optional[float] = ALPHA) -> None:
        """Mark the best mean of each block and column (equal means too), where a block has a choice, and
        with ``alpha`` every cell not significantly worse than it (:func:`welch_p` >= ``alpha``).

        Cells without 2 seeds on both sides are not tested: only the best mean is marked among them.
        """
        self.alpha, self.higher = alpha, higher
        pick = max if higher else min
        for block in self.blocks:
            for col in self.columns:
                cells = [c[col] for _, c in block.rows if col in c and not math.isnan(c[col].mean)]
                if len(cells) > 1:
                    best_mean = pick(c.mean for c in cells)
                    for c in cells:
                        c.best = bool(np.isclose(c.mean, best_mean))
                        c.tied, c.p_best = c.best, None
                    if alpha is None:
                        continue
                    best = next(c for c in cells if c.best)
                    for c in cells:
                        if not c.best and len(c.values) > 1 and len(best.values) > 1:
                            c.p_best = welch_p(c.values, best.values, higher)
                            c.tied = c.p_best >= alpha

    def significance_words(self) -> str:
        """What the marks mean, for the caption."""
        if self.alpha is None:
            return "Best mean per block and column in bold."
        ns = sorted({c.n for b in self.blocks for _, cells in b.rows for c in cells.values()})
        if ns[-1] < 2:
            return "Best mean per block and column in bold (one seed per entry: no significance test)."
        seeds = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}-{ns[-1]}"
        return (f"Bold: the best mean per block and column and every entry not significantly "
                f"{'below' if self.higher else 'above'} it (one-sided Welch's t-test over {seeds} seeds, "
                f"α = {self.alpha:g}; with fewer than 2 seeds only the best mean).")


def _dataset_order(names: list[str]) -> list[str]:
    rank = {d: i for i, d in enumerate(["synthfer", *paper.DATASETS])}
    return sorted(names, key=lambda d: (rank.get(d.split("+")[0], len(rank)), d))


def setting_order(settings: Iterable[str], rates: Optional[dict[str, float]] = None) -> list[tuple[str, str, float]]:
    """``(setting, noise, rate)`` in :func:`~fer_bench.report.style.setting_key`'s order. A label file's
    rate is its realised one, from ``rates`` (setting -> rate)."""
    parsed = []
    for setting in set(settings):
        noise, rate = parse_setting(setting)
        parsed.append((setting, noise, rate if rate is not None else (rates or {}).get(setting, 0.0)))
    return sorted(parsed, key=lambda p: setting_key(p[1], p[2], p[0]))


def build_table(agg: pd.DataFrame, stat: str, metric: str, compare_paper: bool = False,
                alpha: Optional[float] = ALPHA) -> Table:
    """Arrange :func:`~fer_bench.report.collect.aggregate`'s output into blocks, rows and cells; mark the
    best and, with ``alpha`` (None: off), the entries not significantly below it."""
    datasets = _dataset_order(list(agg["dataset"].unique()))
    compared = [d for d in datasets if compare_paper and d.split("+")[0] in paper.DATASETS]
    with_companion = "companion_mean" in agg.columns
    blocks = []
    rates = dict(zip(agg["setting"], agg["rate"]))
    for setting, noise, rate in setting_order(agg["setting"].unique(), rates):
        part = agg[agg["setting"] == setting]
        _, rho, rho_seed = split_imbalance(setting)
        block = Block(block_title(noise, rate, setting), noise, rate, imbalance=rho, imbalance_seed=rho_seed)
        for variant in variant_order(list(part["variant"].unique())):
            cells = {}
            for r in part[part["variant"] == variant].itertuples(index=False):
                cells[r.dataset] = Cell(r.mean, r.std, int(r.n), values=tuple(getattr(r, "seed_values", ())),
                                        paper=paper.published(noise, rate, r.method, r.dataset)
                                        if r.dataset in compared else None)
                if with_companion:
                    cells[companion_column(r.dataset)] = Cell(r.companion_mean, r.companion_std, int(r.n),
                                                              values=tuple(r.companion_seed_values))
            block.rows.append((variant, cells))
        blocks.append(block)
    caption = _caption(agg, stat, metric, compared)
    if compare_paper and not compared:
        caption += " No published numbers to compare with: the paper reports RAF-DB, FERPlus and AffectNet only."
    table = Table(blocks, datasets, compared, caption, label=default_label(metric, stat))
    if with_companion:
        table.columns = [c for d in datasets for c in (d, companion_column(d))]
        for d in datasets:
            title = table.titles.get(d, d)
            table.titles.update({d: f"{title} acc.", companion_column(d): f"{title} mean class acc."})
            table.column_metrics.update({d: (d, metric), companion_column(d): (d, COMPANION)})
    table.mark_best(higher=True, alpha=alpha)
    table.caption += " " + table.significance_words()
    return table


def companion_column(dataset: str) -> str:
    """The key of a dataset's companion column (its mean class accuracy beside its accuracy)."""
    return f"{dataset} {COMPANION}"


def default_label(*parts: str) -> str:
    """``tab:fer-bench-acc-last``: unique per table kind and statistic, so that two tables in one paper
    do not clash."""
    return "-".join(["tab:fer-bench", *[p.replace("_", "-") for p in parts]])


def _caption(agg: pd.DataFrame, stat: str, metric: str, compared: list[str]) -> str:
    ns = sorted(set(agg["n"].astype(int)))
    seeds = f"{ns[0]} seed{'s' if ns[0] != 1 else ''}" if len(ns) == 1 else f"{ns[0]}-{ns[-1]} seeds (n per cell)"
    varied = agg.loc[(agg["noise"] != "none") & (agg["n"] > 1), "noise_seeds_varied"]
    noise_seeds = ("" if varied.empty
                   else "; the noise seed followed the training seed, so the noisy labels differ between seeds"
                   if varied.all() else "; the noisy labels were the same for every seed" if not varied.any()
                   else "; the noisy labels differed between seeds for some cells only")
    profiles = ", ".join(sorted(set(agg["profile"])))
    protocols = ", ".join(sorted(set(agg["protocol"])))
    words = METRIC_WORDS[metric]
    if "companion_mean" in agg:
        words += " and, beside it, mean class accuracy (%, the mean of the per-class recalls)"
    text = (f"{words} {STAT_WORDS[stat]}: mean ± sample std (ddof=1) over {seeds}, "
            f"the number of seeds in parentheses{noise_seeds}. Profile {profiles}, protocol {protocols}.")
    if "imbalance" in agg:
        varied = agg.loc[agg["imbalance"].notna() & (agg["n"] > 1), "imbalance_seeds_varied"]
        subsets = ("" if varied.empty else " The subset followed the seed, so it differs between seeds."
                   if varied.all() else " The subset was the same for every seed." if not varied.any()
                   else " The subset differed between seeds for some cells only.")
        text += (" ρ: a long-tailed training subset (--imbalance), its largest class's image count over its "
                 f"smallest's under an exponential profile, drawn before the noise; the test set is the dataset's "
                 f"own.{subsets}")
    if "unavailable" in agg and (agg["unavailable"] > 0).any():
        text += " n/a: a run of the entry has no noisy validation split, so the statistic is unavailable."
    said = shared_profile(agg["variant"])
    if "shared_overrides" in agg:
        shared = agg.groupby("variant", sort=False)["shared_overrides"].first()
        text += shared_settings([(method_title(v, said), shared[v]) for v in variant_order(list(shared.index))])
    off = flagged_runs(agg, "mechanism_off", said)
    if off:
        text += (f" Mechanism off (part of the method's mechanism did not engage; each run's summary and "
                 f"result.json say which): {off}.")
    lost = flagged_runs(agg, "unpredicted", said)
    if lost:
        text += (f" Classes never predicted (the last epoch's model assigns no test image to some class; each "
                 f"run's summary says which): {lost}.")
    if compared:
        text += (" Paper: LA-Net's Table 1 (symmetric) and supplementary Table 1 (asymmetric), ResNet-18 "
                 "pretrained on MS-Celeb-1M; Δ = ours − paper.")
        absent = [method_title(v, said) for v in variant_order(list(agg["variant"].unique()))
                  if method_of(v) not in paper.METHODS]
        if absent:
            text += f" No published number is on file for {', '.join(absent)} (–)."
    return text


def shared_settings(titled: Iterable[tuple[str, str]]) -> str:
    """The caption's sentence for the ``--set`` values that every run of a method shares, which its rows'
    name leaves out (:func:`fer_bench.runs.record.shared_overrides`), from (row title, values) pairs; empty
    when no method has any."""
    parts = [f"{title} {values}" for title, values in titled if values]
    return f" Set for every run of the method (--set): {'; '.join(parts)}." if parts else ""


def flagged_runs(agg: pd.DataFrame, column: str, said: Iterable[str] = ()) -> str:
    """``"EAC in 2 of 3 runs, SCN in 3 of 3 runs"``: per variant, named as the table's rows name it (``said``:
    the name parts its caption says once), how many of its runs the aggregate's count ``column`` flags;
    empty when none is."""
    if column not in agg or not (agg[column] > 0).any():
        return ""
    counts = agg.groupby("variant", sort=False)[[column, "n"]].sum()
    flagged = agg.loc[agg[column] > 0, "variant"].unique()
    return ", ".join(f"{method_title(v, said)} in {int(counts.loc[v, column])} of {int(counts.loc[v, 'n'])} runs"
                     for v in variant_order(list(flagged)))


def mean_std_text(c: Cell, pm: str, digits: int) -> str:
    """A cell as every format writes it: ``84.26 ± 0.52`` (the std with two seeds or more), ``n/a`` without
    a value."""
    if math.isnan(c.mean):
        return "n/a"  # a run of the cell lacks the statistic (val without a validation split)
    return f"{c.mean:.{digits}f}" + (f"{pm}{c.std:.{digits}f}" if c.n > 1 else "")


def _paper_text(p: Optional[paper.Cell], pm: str) -> str:
    if p is None:
        return "–"
    return f"{p[0]:.2f}" + (f"{pm}{p[1]:.2f}" if p[1] is not None else "")


def header_row(table: Table) -> list[str]:
    """The column titles, with a paper and a Δ column beside each compared dataset."""
    cols = ["Noise", table.row_header]
    for d in table.columns:
        title = table.titles.get(d, d)
        cols += [title, f"{title} paper", f"{title} Δ"] if d in table.compared else [title]
    return cols


def body_rows(table: Table, cell: Callable[[Cell], str], pm: str,
          plain: Callable[[str], str] = str) -> list[list[list[str]]]:
    """Blocks of rows of strings: ``cell`` formats our results, ``plain`` escapes everything else."""
    out = []
    said = shared_profile(v for block in table.blocks for v, _ in block.rows)  # the caption names it
    for block in table.blocks:
        rows = []
        for i, (variant, cells) in enumerate(block.rows):
            row = [plain(block.title if i == 0 else ""), plain(method_title(variant, said))]
            for d in table.columns:
                c = cells.get(d)
                row.append(plain("–") if c is None else cell(c))
                if d in table.compared:
                    diff = c.diff if c else None
                    row += [plain(_paper_text(c.paper if c else None, pm)),
                            plain("–" if diff is None else f"{diff:+.2f}")]
            rows.append(row)
        out.append(rows)
    return out


def to_markdown(table: Table) -> str:
    def cell(c: Cell) -> str:
        text = mean_std_text(c, " ± ", table.digits)
        return f"**{text}** ({c.n})" if c.marked else f"{text} ({c.n})"

    header = header_row(table)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---", "---"] + [":-:"] * (len(header) - 2)) + "|"]
    for rows in body_rows(table, cell, " ± "):
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + f"\n\n{table.caption}\n"


TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
               "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
               "±": r"$\pm$", "Δ": r"$\Delta$", "α": r"$\alpha$", "ρ": r"$\rho$", "–": "--", "−": "-"}


def _tex(text: str) -> str:
    return "".join(TEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(table: Table) -> str:
    """A ``table`` float with booktabs rules; needs only ``\\usepackage{booktabs}``."""
    def cell(c: Cell) -> str:
        text = _tex(mean_std_text(c, "±", table.digits))
        return (rf"\textbf{{{text}}}" if c.marked else text) + rf" {{\scriptsize ({c.n})}}"

    header = header_row(table)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{_tex(table.caption)}}}",
             rf"\label{{{table.label}}}", r"\begin{tabular}{ll" + "c" * (len(header) - 2) + "}", r"\toprule",
             " & ".join(_tex(h) for h in header) + r" \\", r"\midrule"]
    for i, rows in enumerate(body_rows(table, cell, "±", _tex)):
        if i:
            lines.append(r"\midrule")
        lines += [" & ".join(r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    rows = []
    imbalanced = any(block.imbalance is not None for block in table.blocks)
    for block in table.blocks:
        for variant, cells in block.rows:
            for d in table.columns:
                if d not in cells:
                    continue
                c = cells[d]
                row = {"noise": block.noise, "rate": block.rate,
                       **({"imbalance": block.imbalance, "imbalance_seed": block.imbalance_seed} if imbalanced else {}),
                       table.row_header.lower(): variant, table.column_name: d,
                       **({table.column_name: table.column_metrics[d][0], "metric": table.column_metrics[d][1]}
                          if table.column_metrics else {}),
                       "mean": round(c.mean, table.digits + 2),
                       "std": None if math.isnan(c.std) else round(c.std, table.digits + 2), "n": c.n,
                       "best_in_block": c.best, "p_vs_best": None if c.p_best is None else round(c.p_best, 4),
                       "tied_with_best": c.marked}
                if table.compared:
                    row.update(paper=c.paper[0] if c.paper else None, paper_std=c.paper[1] if c.paper else None,
                               diff=None if c.diff is None else round(c.diff, 4))
                rows.append(row)
    buf = io.StringIO()
    pd.DataFrame(rows).to_csv(buf, index=False)
    return buf.getvalue()


FORMATS = {"latex": to_latex, "markdown": to_markdown, "csv": to_csv}


def make_table(runs: pd.DataFrame, stat: str = "last", metric: str = "acc", fmt: str = "markdown",
               methods: Optional[list[str]] = None, compare_paper: bool = False,
               alpha: Optional[float] = ALPHA) -> str:
    """What ``fer-bench table`` prints, from :func:`~fer_bench.report.collect.collect_runs`' frame."""
    from .collect import aggregate

    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return FORMATS[fmt](build_table(aggregate(runs, stat, metric, methods), stat, metric, compare_paper, alpha))
