"""How close label descriptors are to human perception: the JS-divergence user study.

LA-Net's supplementary Table 2 compares two descriptors of a face's expression
with the distribution of human votes: one-hot labels (0.2030) and LA-Net's
label distributions (0.0909). Here the same question is asked of every run
of a results root, on the training images (that is where label descriptors
live): one-hot clean labels, one-hot noisy labels (each setting and seed),
each method's predicted distribution (softmax of its final model) and
LA-Net's saved label distributions, each against the reference
distribution, as a mean over all images and over the ambiguous ones (largest
vote share below 0.7). A run with a noisy validation split is studied on the
images it trained on (its held-out ones have no label descriptor of it). The
study has no ``--stat``: it looks at each run's final model.

The reference is the dataset's ground-truth distributions where it has them
(synthfer), else its normalised vote counts (FERPlus), else a user-supplied
votes CSV (``image,<class>,...`` counts) covering any subset of the
training images.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..atomic import write_json
from ..datasets.base import FERDataset
from ..datasets.synthfer.labels import js_divergence
from ..datasets.votes import read_class_table
from ..engine.data import run_dataset, run_train_labels
from ..engine.trained import load_trained
from ..methods.lanet.method import DISTRIBUTION_FILE
from ..runs import RunDir
from . import paper
from .collect import collect_runs, refuse_pooling
from .style import block_title, method_title, profile_name, shared_profile, variant_order
from .tables import ALPHA, Block, Cell, Table, default_label, setting_order, shared_settings

AMBIGUOUS_BELOW = 0.7
CLEAN, NOISY = "one-hot clean labels", "one-hot noisy labels"


def reference(dataset: FERDataset, votes_csv: Optional[Path] = None) -> tuple[np.ndarray, np.ndarray, str]:
    """``(train indices, (n, C) reference distributions, where they came from)``."""
    train = dataset.train
    if votes_csv is not None:
        names, counts = read_class_table(Path(votes_csv), dataset.class_names)
        index = {n: i for i, n in enumerate(train.names)}
        unknown = [n for n in names if n not in index]
        if unknown:
            raise ValueError(f"{votes_csv}: {len(unknown)} image(s) are not training images of {dataset.name}, "
                             f"e.g. {', '.join(unknown[:3])}")
        source, idx = f"votes in {votes_csv}", np.array([index[n] for n in names], dtype=np.int64)
    elif train.distributions is not None:
        idx, counts, source = np.arange(len(train.names)), train.distributions, f"{dataset.name}'s true distributions"
    elif train.votes is not None:
        idx, counts, source = np.arange(len(train.names)), train.votes, f"{dataset.name}'s annotator votes"
    else:
        raise ValueError(f"{dataset.name} has no votes or distributions; pass --votes FILE.csv")
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(1, keepdims=True)
    if (totals <= 0).any():
        raise ValueError(f"{source}: {int((totals <= 0).sum())} image(s) have no votes")
    return idx, counts / totals, source


def _one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes)[labels]


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


CACHE_FILE = "userstudy.json"


def _run_descriptors(run_dir: Path, dataset: FERDataset, idx: np.ndarray, device: str) -> dict[str, np.ndarray]:
    """A run's label descriptors on the reference images: noisy one-hot, predictions, LA-Net's memory."""
    C = dataset.num_classes
    noisy = run_train_labels(run_dir, dataset)
    trained = load_trained(run_dir, device_name=device, progress=False, dataset=dataset)
    logits = trained.logits(dataset.train.images[idx]).numpy().astype(np.float64)
    out = {"noisy": _one_hot(noisy[idx], C), "predictions": _softmax(logits)}
    if (run_dir / DISTRIBUTION_FILE).is_file():
        names, dists = read_class_table(run_dir / DISTRIBUTION_FILE, dataset.class_names)
        order = {n: i for i, n in enumerate(names)}
        picked = dists[[order[dataset.train.names[i]] for i in idx]].astype(np.float64)
        out["distributions"] = picked / picked.sum(1, keepdims=True)
    return out


def _run_divergences(run_dir: Path, dataset: FERDataset, idx: np.ndarray, ref: np.ndarray,
                     ambiguous: np.ndarray, device: str) -> dict[str, list[float]]:
    """``{descriptor kind: [JS over all, JS over ambiguous]}``, cached in the run directory.

    The cache is keyed by the reference (images and distributions), so a run
    whose checkpoint is gone (results copied without them) still takes part, and
    by the run it was measured on (its result.json, which every training rewrites),
    so a retrained run is measured again even if an old cache survived. A cache
    from before it named its run is used only where it cannot be measured again
    (no checkpoint: the committed reference records).
    """
    rd = RunDir(run_dir)
    held_out = rd.held_out()
    if held_out:  # a run's noisy validation images were never trained on: they have no label descriptor of it
        mine = np.array([dataset.train.names[i] not in held_out for i in idx], dtype=bool)
        idx, ref, ambiguous = idx[mine], ref[mine], ambiguous[mine]
    key = hashlib.sha256(idx.tobytes() + np.round(ref, 6).tobytes()).hexdigest()[:16]
    run_key = hashlib.sha256(rd.result_file.read_bytes()).hexdigest()[:16]
    cache = run_dir / CACHE_FILE
    if cache.is_file():
        try:
            cached = json.loads(cache.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            cached = None  # a damaged cache is measured again
        cached = cached if isinstance(cached, dict) else {}
        ours = cached.get("run", None if rd.checkpoint_file.is_file() else run_key) == run_key
        if cached.get("reference") == key and ours and "js" in cached:
            return cached["js"]
    js = {}
    for kind, dist in _run_descriptors(run_dir, dataset, idx, device).items():
        d = js_divergence(dist, ref)
        js[kind] = [float(d.mean()), float(d[ambiguous].mean()) if ambiguous.any() else float("nan")]
    write_json(cache, {"reference": key, "run": run_key, "js": js})
    return js


def measure(results: Path, dataset_name: Optional[str] = None, root: Optional[str] = None,
            votes_csv: Optional[Path] = None, device: str = "auto", progress: bool = True,
            methods: Sequence[str] = ()) -> pd.DataFrame:
    """One row per (descriptor, run): mean JS over all reference images and over the ambiguous ones.

    ``methods`` keeps only these run variants (``lanet`` is its default runs, ``lanet+beta=0.2`` a variant).
    """
    runs = collect_runs(results)
    if dataset_name:
        runs = runs[runs["dataset"] == dataset_name]
    if methods:
        runs = runs[runs["variant"].isin(methods)]
    if runs.empty:
        chosen = f" of {','.join(methods)}" if methods else ""
        on = f" on {dataset_name}" if dataset_name else ""
        raise ValueError(f"no finished runs{chosen}{on} under {results}")
    names = sorted(runs["dataset"].unique())
    if len(names) > 1:
        raise ValueError(f"runs of several datasets under {results} ({', '.join(names)}); choose one with --dataset")
    refuse_pooling(runs)
    dataset = run_dataset(runs.iloc[0]["record"].config, root, progress)
    idx, ref, source = reference(dataset, votes_csv)
    ambiguous = ref.max(1) < AMBIGUOUS_BELOW

    def row(setting: str, descriptor: str, seed: Optional[int], js: list[float]) -> dict:
        return {"setting": setting, "descriptor": descriptor, "seed": seed, "js_all": js[0], "js_ambiguous": js[1]}

    clean = js_divergence(_one_hot(dataset.train.labels[idx], dataset.num_classes), ref)
    rows = [row("clean", CLEAN, None, [float(clean.mean()), float(clean[ambiguous].mean())
                                       if ambiguous.any() else float("nan")])]
    seen_noise = set()
    said = shared_profile(runs["variant"])  # named once, in the caption, as the accuracy tables do
    order = {v: i for i, v in enumerate(variant_order(list(runs["variant"].unique())))}
    runs = runs.sort_values(["seed"]).sort_values(["variant"], key=lambda v: v.map(order), kind="stable")
    for r in tqdm(list(runs.itertuples(index=False)), desc="user study", unit="run", disable=not progress):
        js = _run_divergences(Path(r.run_dir), dataset, idx, ref, ambiguous, device)
        if r.setting != "clean" and (r.setting, r.noise_seed) not in seen_noise:  # shared by the setting's methods
            seen_noise.add((r.setting, r.noise_seed))
            rows.append(row(r.setting, NOISY, r.seed, js["noisy"]))
        name = method_title(r.variant, said)  # e.g. "LA-Net+alpha=0.0"
        rows.append(row(r.setting, f"{name} predictions", r.seed, js["predictions"]))
        if "distributions" in js:
            rows.append(row(r.setting, f"{name} label distributions", r.seed, js["distributions"]))
    out = pd.DataFrame(rows)
    split_runs = sum(bool(RunDir(Path(d)).held_out()) for d in runs["run_dir"])
    shared = runs.groupby("variant", sort=False)["shared_overrides"].first()
    out.attrs.update(rates=dict(zip(runs["setting"], runs["rate"])), source=source, n_images=int(len(idx)),
                     n_ambiguous=int(ambiguous.sum()), dataset=dataset.name, split_runs=split_runs,
                     profile=profile_name(said), shared=[(method_title(v, said), shared[v]) for v in order])
    return out


def build_table(measured: pd.DataFrame, alpha: Optional[float] = ALPHA) -> Table:
    """Blocks of settings, a row per descriptor, columns all / ambiguous images; lowest JS in bold, and
    with ``alpha`` (None: off) every entry not significantly above it."""
    blocks = []
    rates = measured.attrs.get("rates", {})
    for setting, noise, rate in setting_order(measured["setting"].unique(), rates):
        part = measured[measured["setting"] == setting]
        block = Block(block_title(noise, rate, setting), noise, rate)
        for descriptor in part["descriptor"].unique():
            d = part[part["descriptor"] == descriptor]
            cells = {col: Cell(float(d[f"js_{col}"].mean()), float(d[f"js_{col}"].std()), len(d),
                               values=tuple(d[f"js_{col}"].dropna()))
                     for col in ("all", "ambiguous")}
            block.rows.append((descriptor, cells))
        blocks.append(block)
    a = measured.attrs
    caption = (f"Jensen-Shannon divergence (natural log) between label descriptors and {a.get('source')}, "
               f"mean over {a.get('n_images')} training images of {a.get('dataset')} and over the "
               f"{a.get('n_ambiguous')} ambiguous ones (largest share < {AMBIGUOUS_BELOW}); mean ± std over "
               f"runs (seeds), their number in parentheses. Lower is closer to human perception. For reference, LA-Net's user study (50 AffectNet images): one-hot "
               f"{paper.USER_STUDY['one-hot labels']:.4f}, LA-Net label distributions "
               f"{paper.USER_STUDY['LA-Net label distributions']:.4f}.")
    if a.get("profile"):
        caption += f" Every run: profile {a['profile']}."
    caption += shared_settings(a.get("shared", ()))
    if a.get("split_runs"):
        caption += (f" {a['split_runs']} run(s) held out a noisy validation split: their noisy labels, predictions "
                    f"and label distributions are measured on the images they trained on, the clean labels on all.")
    table = Table(blocks, ["all", "ambiguous"], [], caption, titles={"all": "all images",
                  "ambiguous": "ambiguous images"}, digits=4, row_header="Descriptor", column_name="images",
                  label=default_label("userstudy"))
    table.mark_best(higher=False, alpha=alpha)
    table.caption += " " + table.significance_words()
    return table
