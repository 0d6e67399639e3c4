"""The gallery: training images beside their one-hot training label, the human votes and LA-Net's
learned label distribution (LA-Net's supplementary Fig. 2)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from matplotlib.figure import Figure

from ...datasets.votes import vote_shares
from ...runs import RunDir
from .canvas import new_figure, run_title, styled

@dataclass
class GalleryData:
    """The chosen training images of one run and the three label views of each.

    ``labels`` are the run's training labels (``train_labels.txt``, or generated again from its
    noise record when the file was not kept), ``clean`` the
    dataset's clean labels, ``human`` the normalised votes (or the true
    distributions when the dataset has no votes; None if neither), ``learned``
    the rows of the run's ``label_distributions.csv`` (None when the run has none).
    """

    run_dir: Path
    title: str
    class_names: list[str]
    names: list[str]
    images: np.ndarray
    labels: np.ndarray
    clean: np.ndarray
    human: Optional[np.ndarray]
    human_source: str
    learned: Optional[np.ndarray]


AMBIGUOUS_BELOW = 0.7
DISTRIBUTION_FILE = "label_distributions.csv"


def human_distribution(votes: Optional[np.ndarray], distributions: Optional[np.ndarray]
                       ) -> tuple[Optional[np.ndarray], str]:
    """Row-normalised annotator votes, else the true distributions; and which one it is."""
    for table, source in ((votes, "human votes"), (distributions, "true distribution")):
        if table is None:
            continue
        t = np.asarray(table, dtype=np.float64)
        if (t.sum(axis=1) > 0).all():
            return vote_shares(t), source
    return None, "none"


def select_images(human: Optional[np.ndarray], n: int, count: int, ambiguous: bool = False,
                  allowed: Optional[np.ndarray] = None) -> np.ndarray:
    """Indices of ``n`` images spread evenly over the ``count`` training images, in order.

    With ``ambiguous`` only images whose largest vote share is below 0.7 are candidates; with
    ``allowed`` (a mask) only those it marks.
    """
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    candidates = np.arange(count)
    if ambiguous:
        if human is None:
            raise ValueError("--ambiguous needs the dataset's votes or distributions; this dataset has neither")
        candidates = np.flatnonzero(human.max(axis=1) < AMBIGUOUS_BELOW)
        if candidates.size == 0:
            raise ValueError(f"no training image has a largest vote share below {AMBIGUOUS_BELOW}")
    if allowed is not None:
        candidates = candidates[allowed[candidates]]
    if candidates.size <= n:
        return candidates
    return candidates[np.unique(np.linspace(0, candidates.size - 1, n).round().astype(int))]


def gallery_data(run_dir: Path | str, n: int = 8, root: Optional[str] = None, ambiguous: bool = False,
                 progress: bool = False) -> GalleryData:
    """Load a run's dataset (``root``, else the run's recorded root, else the default) and pick ``n`` images."""
    from ...datasets.votes import read_class_table
    from ...engine.data import run_dataset, run_train_labels

    rd = RunDir(Path(run_dir)).require()
    run_dir, config = rd.path, rd.config()
    dataset = run_dataset(config, root, progress)
    labels = run_train_labels(run_dir, dataset)
    split = dataset.train
    human, source = human_distribution(split.votes, split.distributions)
    held_out = rd.held_out()  # the run's noisy validation images: it never trained on them
    trained_on = np.array([name not in held_out for name in split.names], dtype=bool) if held_out else None
    idx = select_images(human, n, len(split), ambiguous, trained_on)
    learned = None
    if (run_dir / DISTRIBUTION_FILE).is_file():
        dist_names, table = read_class_table(run_dir / DISTRIBUTION_FILE, dataset.class_names)
        row_of = {name: i for i, name in enumerate(dist_names)}
        missing = [split.names[i] for i in idx if split.names[i] not in row_of]
        if missing:
            raise ValueError(f"{run_dir / DISTRIBUTION_FILE} has no row for {missing[0]} "
                             f"(was the run trained on another dataset?)")
        learned = table[[row_of[split.names[i]] for i in idx]].astype(np.float64)
    return GalleryData(
        run_dir=run_dir, title=run_title(config), class_names=list(dataset.class_names),
        names=[split.names[i] for i in idx], images=split.images[idx], labels=labels[idx],
        clean=split.labels[idx], human=None if human is None else human[idx], human_source=source,
        learned=learned,
    )


@styled
def gallery_figure(g: GalleryData) -> Figure:
    """One row per image: the image, then horizontal bars of the training label, the human votes and
    LA-Net's label distribution (columns without data are left out and the title says so).

    Bar axes have ``gid`` ``label:<image>``, ``votes:<image>`` and ``distribution:<image>``;
    a training label that differs from the clean one is drawn in red, its clean class under the image.
    """
    columns = [("label", "training label")]
    if g.human is not None:
        columns.append(("votes", g.human_source))
    if g.learned is not None:
        columns.append(("distribution", "LA-Net label distribution"))
    c = len(g.class_names)
    ticks = [name[:3] if len({n[:3] for n in g.class_names}) == c else name for name in g.class_names]
    rows = len(g.names)
    groups = min(3, math.ceil(rows / 8))  # side-by-side columns of at most ~8 images each
    per_group = math.ceil(rows / groups)
    ncols = groups * (1 + len(columns))
    fig = new_figure(groups * (1.45 + 1.55 * len(columns)), 1.22 * per_group + 0.75)
    widths = ([1.0] + [1.25] * len(columns)) * groups
    axes = fig.subplots(per_group, ncols, squeeze=False, gridspec_kw={"width_ratios": widths})
    for i in range(per_group * groups):
        row, group = i % per_group, i // per_group
        row_axes = axes[row, group * (1 + len(columns)):(group + 1) * (1 + len(columns))]
        if i >= rows:
            for ax in row_axes:
                ax.set_visible(False)
            continue
        name = g.names[i]
        img_ax = row_axes[0]
        img_ax.imshow(g.images[i])
        img_ax.set_xticks([])
        img_ax.set_yticks([])
        img_ax.grid(False)
        for spine in img_ax.spines.values():
            spine.set_visible(False)
        noisy = int(g.labels[i]) != int(g.clean[i])
        img_ax.set_xlabel(f"{name}\nnoisy label (clean: {ticks[int(g.clean[i])]})" if noisy else name,
                          fontsize=7, labelpad=2, color="#d62728" if noisy else "black")
        for ax, (kind, header) in zip(row_axes[1:], columns):
            if kind == "label":
                values = np.eye(c)[int(g.labels[i])]
            elif kind == "votes":
                values = g.human[i]  # type: ignore[index]
            else:
                values = g.learned[i]  # type: ignore[index]
            color = ["#d62728" if kind == "label" and noisy else "#4c72b0"] * c
            ax.barh(np.arange(c), values, color=color, height=0.7)
            ax.set_gid(f"{kind}:{name}")
            ax.set_xlim(0, 1)
            ax.set_ylim(c - 0.5, -0.5)
            ax.set_yticks(np.arange(c))
            ax.set_yticklabels(ticks if ax is row_axes[1] else [], fontsize=7)
            ax.set_xticks([0, 0.5, 1])
            ax.set_xticklabels(["0", ".5", "1"] if row == per_group - 1 or i == rows - 1 else [], fontsize=7)
            ax.tick_params(length=2, pad=1)
            ax.grid(axis="y", visible=False)
            if row == 0:
                ax.set_title(header, fontsize=8.5)
    note = "" if g.learned is not None else f"\n(no {DISTRIBUTION_FILE} in this run: label distribution bars omitted)"
    fig.suptitle(f"{g.title}{note}")
    return fig
