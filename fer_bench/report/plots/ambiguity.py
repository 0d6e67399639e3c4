"""Label noise by image ambiguity: a noise record's realised flip rate by bins of the largest vote share."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from ..style import noise_title
from .canvas import new_figure, styled

def _bin_label(b: dict[str, float]) -> str:
    return "1.0" if b["lo"] == b["hi"] else f"{b['lo']:.1f}-{b['hi']:.1f}"


@styled
def ambiguity_figure(records: Sequence[Any]) -> Figure:
    """Realised flip rate by bins of the largest vote share, one bar series per noise record.

    Left is ambiguous (annotators split), right unanimous; each bar is annotated with its
    image count. A record without ``by_ambiguity`` (a dataset without votes) is an error.
    """
    if not records:
        raise ValueError("no noise record to plot")
    for r in records:
        if not r.by_ambiguity:
            raise ValueError(f"the noise record of {r.source} has no flip rate by vote share "
                             "(the dataset has no annotator votes, or the record predates it)")
    labels = [_bin_label(b) for b in records[0].by_ambiguity]
    fig = new_figure(1.6 + 0.75 * len(labels), 3.4)
    ax = fig.subplots()
    width = 0.8 / len(records)
    x = np.arange(len(labels))
    palette = sns.color_palette("colorblind", max(len(records), 3))
    for k, r in enumerate(records):
        rates = [b["flip_rate"] for b in r.by_ambiguity]
        pos = x - 0.4 + width * (k + 0.5)
        nominal = "" if r.rate is None else f" {r.rate:g}"
        ax.bar(pos, rates, width, color=palette[k],
               label=f"{noise_title(r.model)}{nominal} ({r.mode}): realised {r.realised_rate:.3f}")
        for px, rate, b in zip(pos, rates, r.by_ambiguity):
            ax.text(px, rate + 0.01, f"n={b['n']}", ha="center", va="bottom", fontsize=6, rotation=90)
    ax.set_xticks(x)
    ax.set_xticklabels(labels)
    ax.set_ylim(0, 1.3)  # room for the legend above the bars
    ax.set_xlabel("largest annotator vote share (left: ambiguous, right: unanimous)")
    ax.set_ylabel("realised flip rate")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("label noise by image ambiguity", fontsize=9)
    return fig
