"""When the network memorises the flipped labels: the flipped training images' memorised and corrected
shares over the epochs, from each noisy run's ``metrics.csv``."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import pandas as pd
from matplotlib.figure import Figure

from ..style import block_title, method_color, setting_key, variant_order
from .canvas import legend_labels, panel_grid, styled

MEMORISATION_LINES = {"flipped_memorised": ("flipped: predicted as the noisy label (memorised)", "-"),
                      "flipped_corrected": ("flipped: predicted as the clean label (corrected)", "--")}


def memorisation_data(runs: pd.DataFrame, dataset: Optional[str] = None,
                      methods: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Per (setting, method, epoch): the mean over seeds of the flipped images' memorised and corrected
    shares (in %) from each noisy default run's ``metrics.csv``. Runs recorded before the diagnostics
    existed are left out; none at all is an error."""
    runs = runs[(runs["noise"] != "none") & runs["is_default"]]
    if dataset:
        runs = runs[runs["dataset"] == dataset]
    if methods:
        runs = runs[runs["method"].isin(methods) | runs["variant"].isin(methods)]
    frames = []
    for r in runs.itertuples(index=False):
        path = r.record.dir.metrics_file
        metrics = pd.read_csv(path) if path.is_file() else pd.DataFrame()
        if not set(MEMORISATION_LINES) <= set(metrics.columns):
            continue
        part = metrics[["epoch", *MEMORISATION_LINES]].copy()
        part[list(MEMORISATION_LINES)] *= 100.0
        frames.append(part.assign(dataset=r.dataset, setting=r.setting, noise=r.noise, rate=r.rate,
                                  variant=r.variant, seed=r.seed))
    if not frames:
        raise ValueError("no noisy run with memorisation diagnostics in its metrics.csv "
                         "(runs recorded before they existed have none: train them again)")
    data = pd.concat(frames, ignore_index=True)
    keys = ["dataset", "setting", "noise", "rate", "variant", "epoch"]
    out = data.groupby(keys, sort=False)[list(MEMORISATION_LINES)].mean().reset_index()
    out["n"] = data.groupby(keys, sort=False)["seed"].nunique().values
    return out


@styled
def memorisation_figure(data: pd.DataFrame) -> Figure:
    """Per noise setting a panel: the memorised (solid) and corrected (dashed) shares of the flipped
    training images over the epochs, one colour per method. Each panel's ``gid`` is ``<dataset>/<setting>``,
    each line's ``<variant>/<share>``."""
    panels = sorted(data[["dataset", "setting", "noise", "rate"]].drop_duplicates().itertuples(index=False, name=None),
                    key=lambda p: (p[0], setting_key(p[2], p[3], p[1])))
    multi_dataset = data["dataset"].nunique() > 1
    lines = variant_order(list(data["variant"].unique()))
    fig, axes, cols = panel_grid(len(panels), 3.4, 2.8)
    handles: dict[str, Any] = {}
    for ax, (ds, setting, noise, rate) in zip(axes, panels):
        ax.set_gid(f"{ds}/{setting}")
        part = data[(data["dataset"] == ds) & (data["setting"] == setting)]
        for variant in lines:
            d = part[part["variant"] == variant].sort_values("epoch")
            if d.empty:
                continue
            for share, (_, style) in MEMORISATION_LINES.items():
                (h,) = ax.plot(d["epoch"], d[share], color=method_color(variant), linestyle=style,
                               gid=f"{variant}/{share}")
                handles.setdefault(variant, h)
        title = block_title(noise, rate, setting)
        ax.set_title(f"{ds} · {title}" if multi_dataset else title)
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 100)
    for ax in axes[::cols]:
        ax.set_ylabel("share of flipped training images (%)")
    labels, said = legend_labels(handles, data, "variant")
    fig.legend(list(handles.values()), labels, loc="outside lower center", ncols=min(len(labels), 5),
               title="solid: memorised (predicts the noisy label) · dashed: corrected (predicts the clean label) "
                     "· mean over seeds (n)", frameon=False)
    if not multi_dataset:
        fig.suptitle(f"{data['dataset'].iloc[0]}: when the network memorises the flipped labels{said}")
    return fig
