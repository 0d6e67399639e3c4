"""The commands that report on finished runs.

* ``fer-bench table``: mean ± std over seeds of every setting, method and dataset (LaTeX,
  Markdown or CSV).
* ``fer-bench userstudy``: how close label descriptors come to the human votes.
* ``fer-bench plot ...``: the figures (curves, memorisation, grid, gallery, confusion,
  transition, ambiguity), each written as OUT.png and OUT.pdf.
* ``fer-bench report``: all of it as one static HTML site to browse (:mod:`fer_bench.report.html`).

The reading, aggregating and drawing is :mod:`fer_bench.report`'s, imported when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import click

from ..runs.record import STATS
from .common import Group, csv_list, option_group, plugin_option

# --- tables ---------------------------------------------------------------------

def _emit(text: str, out: Optional[str]) -> None:
    if out:
        from ..atomic import write_text

        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_text(Path(out), text)
        click.echo(f"wrote {out}")
    else:
        click.echo(text, nl=False)


def _runs_root(results: Optional[str]) -> Path:
    from ..paths import runs_root

    path = Path(results) if results else runs_root()
    if not path.is_dir():
        raise FileNotFoundError(f"results directory not found: {path}")
    return path


format_option = click.option("--format", "fmt", default="markdown", show_default=True,
                             type=click.Choice(["latex", "markdown", "csv"]))
results_option = click.option("--results", type=click.Path(), help="Runs root to read (default: results/runs).")
label_options = option_group(
    click.option("--label", help="LaTeX \\label of the table (default: tab:fer-bench-<kind>[-<statistic>])."),
    click.option("--caption", help="Caption instead of the generated one (special characters are escaped)."),
)


def _emit_table(table: Any, fmt: str, out: Optional[str], label: Optional[str], caption: Optional[str]) -> None:
    from ..report.tables import FORMATS

    if label:
        table.label = label
    if caption:
        table.caption = caption
    _emit(FORMATS[fmt](table), out)


significance_options = option_group(
    click.option("--significance", default="welch", show_default=True, type=click.Choice(["welch", "none"]),
                 help="Also mark every entry not significantly worse than the best (one-sided Welch's t-test "
                      "over seeds), or only the best mean."),
    click.option("--alpha", default=0.05, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
                 help="Significance level of the marks."),
)


def _say_unavailable(data: Any, stat: str) -> None:
    """Say on stderr how many entries lack the statistic (val without a validation split), rather than drop them."""
    from ..report.collect import unavailable_message

    message = unavailable_message(data, stat)
    if message:
        click.echo(message, err=True)


def _alpha(significance: str, alpha: float) -> Optional[float]:
    return None if significance == "none" else alpha


methods_option = click.option(
    "--methods", callback=csv_list(str), default="",
    help="Only these run variants, comma-separated (lanet = its default runs, lanet+beta=0.2 a variant).")


@click.command()
@results_option
@click.option("--stat", default="last", show_default=True, type=click.Choice(STATS),
              help="Per run: last epoch, best epoch (optimistic), mean of the last 5, or the epoch chosen on the "
                   "noisy validation split (val).")
@click.option("--metric", default="acc", show_default=True, type=click.Choice(["acc", "mean_class_acc"]))
@format_option
@methods_option
@click.option("--compare-paper", is_flag=True, help="Put LA-Net's published numbers and the difference beside ours.")
@significance_options
@label_options
@click.option("--out", type=click.Path(), help="Write here instead of printing.")
def table(results: Optional[str], stat: str, metric: str, fmt: str, methods: tuple[str, ...],
          compare_paper: bool, significance: str, alpha: float, label: Optional[str], caption: Optional[str],
          out: Optional[str]) -> None:
    """Mean ± std over seeds of every setting, method and dataset (LA-Net's Table 1 layout).

    Each method's default runs only, unless --methods names variants (e.g. a grid's lanet+alpha=0.5).
    """
    from ..outputs import check_out
    from ..report.collect import aggregate, collect_runs
    from ..report.tables import build_table

    if out:
        check_out(out)
    agg = aggregate(collect_runs(_runs_root(results)), stat, metric, list(methods))
    _say_unavailable(agg, stat)
    _emit_table(build_table(agg, stat, metric, compare_paper, _alpha(significance, alpha)), fmt, out, label, caption)


@click.command()
@plugin_option
@results_option
@click.option("--dataset", help="The dataset whose runs to study (needed when the results hold several).")
@click.option("--root", type=click.Path(), help="Dataset directory (default: the runs').")
@click.option("--votes", type=click.Path(), help="Votes CSV (image,<class>,... counts) to use as the reference.")
@click.option("--device", default="auto", show_default=True)
@format_option
@methods_option
@significance_options
@label_options
@click.option("--out", type=click.Path(), help="Write here instead of printing.")
def userstudy(results: Optional[str], dataset: Optional[str], root: Optional[str], votes: Optional[str],
              device: str, fmt: str, methods: tuple[str, ...], significance: str, alpha: float,
              label: Optional[str], caption: Optional[str], out: Optional[str]) -> None:
    """JS divergence of label descriptors (one-hot, predictions, LA-Net's distributions) to human votes."""
    from ..outputs import check_out
    from ..report.userstudy import build_table, measure

    if out:
        check_out(out, dataset_roots=[root])
    measured = measure(_runs_root(results), dataset, root, Path(votes) if votes else None, device,
                       methods=methods)
    _emit_table(build_table(measured, _alpha(significance, alpha)), fmt, out, label, caption)


# --- plots ----------------------------------------------------------------------

@click.group(cls=Group)
def plot() -> None:
    """Figures from finished runs, each written as OUT.png and OUT.pdf."""


def _results_dir(results: Optional[str]) -> Path:
    from ..paths import runs_root

    return Path(results) if results else runs_root()


def _check_figure_out(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A figure's --out stem, checked as the command line is read: before any run is."""
    from ..outputs import check_out
    from ..report.plots import figure_paths

    if value is not None and not ctx.resilient_parsing:
        check_out(value, figure_paths(value))
    return value


figure_out_option = click.option("--out", required=True, type=click.Path(), callback=_check_figure_out,
                                 help="Output stem: writes OUT.png and OUT.pdf.")


def _saved(fig: Any, out: str) -> None:
    from ..report.plots import save

    paths = save(fig, out)
    click.echo("wrote " + " and ".join(str(p) for p in paths))


plot_stat_options = option_group(
    click.option("--results", type=click.Path(), help="Runs root to read (default: results/runs)."),
    click.option("--stat", default="last", show_default=True, type=click.Choice(STATS),
                 help="Per-run accuracy: last epoch, best epoch, mean of the last 5, or the epoch chosen on the "
                      "noisy validation split (val)."),
    click.option("--metric", default="acc", show_default=True, type=click.Choice(["acc", "mean_class_acc"])),
    click.option("--dataset", help="Only this dataset's runs (as in the results table, e.g. synthfer)."),
    figure_out_option,
)


@plot.command("curves")
@plot_stat_options
@click.option("--methods", default="", callback=csv_list(str), metavar="A,B,...",
              help="Only these methods or variants (default: all).")
@click.option("--variants", is_flag=True, help="Also plot variants with overrides (default: only the defaults).")
def plot_curves(results: Optional[str], stat: str, metric: str, dataset: Optional[str], out: str,
                methods: tuple[str, ...], variants: bool) -> None:
    """Accuracy vs noise rate per method (mean ± std over seeds).

    One panel per noise type; clean runs are rate 0 of every panel.
    """
    from ..report.plots import curves_data, curves_figure, load_runs

    data = curves_data(load_runs(_results_dir(results)), stat, metric, dataset, variants, methods)
    _say_unavailable(data, stat)
    _saved(curves_figure(data, stat, metric), out)


@plot.command("memorisation")
@click.option("--results", type=click.Path(), help="Runs root to read (default: results/runs).")
@click.option("--dataset", help="Only this dataset's runs (as in the results table, e.g. synthfer).")
@click.option("--methods", default="", callback=csv_list(str), metavar="A,B,...",
              help="Only these methods or variants (default: all).")
@figure_out_option
def plot_memorisation(results: Optional[str], dataset: Optional[str], methods: tuple[str, ...], out: str) -> None:
    """Memorised and corrected shares of the flipped training images per epoch, per method and noise setting."""
    from ..report.plots import load_runs, memorisation_data, memorisation_figure

    data = memorisation_data(load_runs(_results_dir(results)), dataset, methods)
    _saved(memorisation_figure(data), out)


@plot.command("mechanisms")
@click.option("--results", type=click.Path(), help="Runs root to read (default: results/runs).")
@click.option("--dataset", help="Only this dataset's runs (as in the results table, e.g. synthfer).")
@click.option("--methods", default="", callback=csv_list(str), metavar="A,B,...",
              help="Only these methods or variants (default: all).")
@figure_out_option
def plot_mechanisms(results: Optional[str], dataset: Optional[str], methods: tuple[str, ...], out: str) -> None:
    """Each method's mechanism diagnostics per epoch (its mech_* columns), scored against the flipped labels."""
    from ..report.plots import load_runs, mechanisms_data, mechanisms_figure

    data = mechanisms_data(load_runs(_results_dir(results)), dataset, methods)
    _saved(mechanisms_figure(data), out)


@plot.command("grid")
@plot_stat_options
@click.option("--method", required=True, help="The method whose --set KEY=VALUE variants form the grid.")
def plot_grid(results: Optional[str], stat: str, metric: str, dataset: Optional[str], out: str, method: str) -> None:
    """A method's grid search: accuracy vs each varied hyper-parameter.

    One line per noise setting; the run without the override is the default point.
    """
    from ..report.plots import grid_data, grid_figure, load_runs

    data = grid_data(load_runs(_results_dir(results)), method.lower(), stat, metric, dataset)
    _say_unavailable(data, stat)
    _saved(grid_figure(data, method.lower(), stat, metric), out)


@plot.command("gallery")
@plugin_option
@click.argument("run_dir", type=click.Path())
@click.option("--n", "n", default=8, show_default=True, type=int, help="Images to show.")
@click.option("--root", type=click.Path(), help="Dataset directory (default: the run's, else datasets/<dataset>).")
@click.option("--ambiguous", is_flag=True, help="Only images whose largest human vote share is below 0.7.")
@figure_out_option
def plot_gallery(run_dir: str, n: int, root: Optional[str], ambiguous: bool, out: str) -> None:
    """Training images with their label, votes and learned distribution.

    Bars per image: the run's training label, the human votes, and the run's
    label_distributions.csv (LA-Net) when it has one.
    """
    from ..outputs import check_out
    from ..report.plots import figure_paths, gallery_data, gallery_figure

    check_out(out, figure_paths(out), [root])  # the option checked the rest; --root is known only here
    _saved(gallery_figure(gallery_data(Path(run_dir), n, root, ambiguous)), out)


@plot.command("confusion")
@click.argument("run_dir", type=click.Path())
@click.option("--normalise", is_flag=True, help="Divide each row by its total (per-class recall on the diagonal).")
@figure_out_option
def plot_confusion(run_dir: str, normalise: bool, out: str) -> None:
    """A run's last-epoch confusion matrix on the clean test set."""
    from ..report.plots import confusion_data, confusion_figure

    matrix, names, title = confusion_data(Path(run_dir))
    _saved(confusion_figure(matrix, names, normalise, title), out)


@plot.command("transition")
@click.argument("run_dir", type=click.Path())
@figure_out_option
def plot_transition(run_dir: str, out: str) -> None:
    """A run's realised noise transition matrix (from noise.json)."""
    from ..report.plots import transition_data, transition_figure, transition_title

    record = transition_data(Path(run_dir))
    _saved(transition_figure(record.transition_matrix, record.class_names, transition_title(record)), out)


@plot.command("ambiguity")
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@figure_out_option
def plot_ambiguity(sources: tuple[str, ...], out: str) -> None:
    """Realised flip rate by the largest annotator vote share, one bar series per SOURCE.

    A SOURCE is a run directory (its noise.json) or a noise record FILE.json written by
    `fer-bench noise export`; datasets with votes only (synthfer, FERPlus).
    """
    from ..report.plots import ambiguity_figure, transition_data

    _saved(ambiguity_figure([transition_data(Path(s)) for s in sources]), out)



# --- the HTML report ------------------------------------------------------------

def _stats_list(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    stats = tuple(dict.fromkeys(s.strip() for s in value.split(",") if s.strip()))
    unknown = [s for s in stats if s not in STATS]
    if unknown or not stats:
        raise click.BadParameter(f"{','.join(unknown) or 'none given'}: choose from {', '.join(STATS)}")
    return stats


@click.command("report")
@plugin_option
@results_option
@click.option("--out", type=click.Path(), help="Directory of the site: index.html and its assets "
                                               "(default: report/ beside the runs root, e.g. results/report).")
@click.option("--stat", "stats", default=",".join(STATS), show_default=True, callback=_stats_list, metavar="S,S,...",
              help="The statistics the page switches between (last, best, last5, val); the first is shown first.")
@methods_option
@significance_options
@click.option("--userstudy/--no-userstudy", default=True, show_default=True,
              help="Measure the user study (as fer-bench userstudy: needs the runs' dataset, and their checkpoints "
                   "where no userstudy.json is cached); where it cannot be measured, the page says why.")
@click.option("--device", default="auto", show_default=True, help="Device of the user study's measurements.")
@click.option("--title", help="The report's title (default: the results directory as given).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def report(results: Optional[str], out: Optional[str], stats: tuple[str, ...], methods: tuple[str, ...],
           significance: str, alpha: float, userstudy: bool, device: str, title: Optional[str], quiet: bool) -> None:
    """A static HTML site of a results tree: tables, figures, a panel per run, compare.

    It opens from file:// with no network (no CDN, no server) and can be published as it is. Runs that
    cannot be read are listed in it and named here, with exit code 2; the rest is still reported.
    """
    from ..report.html import build_report
    from .common import UserError

    root = _runs_root(results)
    target = Path(out) if out else root.parent / "report"
    made = build_report(root, target, stats, methods, _alpha(significance, alpha), userstudy, device,
                        progress=not quiet, title=title)
    click.echo(made.summary())
    if made.bad:
        named = "\n".join(f"  {b.path}: {b.problem}" for b in made.bad)
        raise UserError(f"{len(made.bad)} run director{'y' if len(made.bad) == 1 else 'ies'} under {root} could not "
                        f"be read and {'is' if len(made.bad) == 1 else 'are'} left out (the rest is in "
                        f"{made.index}):\n{named}")
