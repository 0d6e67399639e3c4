"""A run's confusion matrix and a noise record's transition matrix, as annotated heatmaps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from matplotlib.figure import Figure

from ...runs import RunDir
from .canvas import new_figure, run_title, styled

def confusion_data(run_dir: Path | str) -> tuple[np.ndarray, list[str], str]:
    """A finished run's last-epoch confusion matrix (rows: true class), its class names and a title."""
    rd = RunDir(Path(run_dir))
    result = rd.result()
    if "confusion_last" not in result or "class_names" not in result:
        raise ValueError(f"{rd.result_file} has no confusion_last/class_names")
    title = run_title(rd.config())
    if "acc_last" in result:
        title += f"\ntest accuracy (last epoch) {100 * result['acc_last']:.1f}%"
    return np.asarray(result["confusion_last"], dtype=np.float64), list(result["class_names"]), title


def transition_data(run_dir: Path | str) -> Any:
    """A noise record (:class:`~fer_bench.noise.record.NoiseRecord`): a run's noise.json, or a
    record file itself (``FILE.json`` beside a label file written by ``fer-bench noise export``)."""
    from ...noise.record import NoiseRecord

    path = Path(run_dir)
    if path.is_file():
        source = path
    else:
        source = RunDir(path).require("noise.json").noise_file
    try:
        return NoiseRecord.from_dict(json.loads(source.read_text()))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {exc}") from None


def _heatmap(ax: Any, matrix: np.ndarray, class_names: Sequence[str], fmt: str, vmax: Optional[float],
             cmap: str) -> Any:
    c = len(class_names)
    im = ax.imshow(matrix, cmap=cmap, vmin=0, vmax=vmax if vmax is not None else max(float(matrix.max()), 1e-12),
                   aspect="equal")
    ax.grid(False)
    ax.set_xticks(np.arange(c))
    ax.set_yticks(np.arange(c))
    ax.set_xticklabels(class_names, rotation=40, ha="right", rotation_mode="anchor")
    ax.set_yticklabels(class_names)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    norm, cm = im.norm, im.cmap
    fontsize = 8 if c <= 8 else 6.5
    for i, j in np.ndindex(matrix.shape):
        r, gr, b, _ = cm(norm(matrix[i, j]))
        dark = 0.299 * r + 0.587 * gr + 0.114 * b < 0.5
        ax.text(j, i, format(matrix[i, j], fmt), ha="center", va="center", fontsize=fontsize,
                color="white" if dark else "0.15")
    return im


@styled
def confusion_figure(matrix: np.ndarray, class_names: Sequence[str], normalise: bool = False,
                     title: str = "") -> Figure:
    """Annotated heatmap of a confusion matrix (rows: true class, columns: predicted).

    With ``normalise`` each row is divided by its total (recall per class on the diagonal).
    """
    m = np.asarray(matrix, dtype=np.float64)
    if normalise:
        sums = m.sum(axis=1, keepdims=True)
        m = np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)
    c = len(class_names)
    side = 1.2 + 0.55 * c
    fig = new_figure(side + 1.0, side + 0.5)
    ax = fig.subplots()
    im = _heatmap(ax, m, class_names, ".2f" if normalise else ".0f", 1.0 if normalise else None, "Blues")
    fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of the true class" if normalise else "test images")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    return fig


@styled
def transition_figure(matrix: np.ndarray, class_names: Sequence[str], title: str = "") -> Figure:
    """Annotated heatmap of a row-stochastic noise transition matrix (rows: true class, columns: noisy label)."""
    m = np.asarray(matrix, dtype=np.float64)
    c = len(class_names)
    side = 1.2 + 0.55 * c
    fig = new_figure(side + 1.0, side + 0.5)
    ax = fig.subplots()
    im = _heatmap(ax, m, class_names, ".2f", 1.0, "magma_r")
    fig.colorbar(im, ax=ax, shrink=0.8, label="P(noisy label | true class)")
    ax.set_xlabel("noisy training label")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    return fig


def transition_title(record: Any) -> str:
    """Two lines: the noise model, mode and nominal rate; the realised rate and flip count."""
    if record.model == "none":
        return f"clean labels (no noise)\n{record.n_flipped} of {record.n} labels flipped"
    nominal = "unknown" if record.rate is None else f"{record.rate:g}"
    return (f"{record.model} noise ({record.mode}), nominal rate {nominal}\n"
            f"realised rate {record.realised_rate:.3f} ({record.n_flipped} of {record.n} labels flipped)")
