"""The commands about what a run is made of: methods, datasets, noisy label files, landmarks.

* ``fer-bench methods list|show``: the registered methods and a method's hyper-parameters and recipe.
* ``fer-bench data list|check|synth``: the registered datasets, a real one's layout, the synthetic one.
* ``fer-bench noise list|export|inspect``: the noise models, and noisy label files in a dataset's format.
* ``fer-bench landmarks extract``: 68 facial landmarks per image, once, into the dataset's cache.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import click

from ..registry import DATASETS, METHODS, NOISE_MODELS
from .common import Group, plugin_option


def _print_entries(registry: Any, detail: Callable[[str], str] = lambda name: "") -> None:
    """One line per registered name: its description, ``detail(name)`` and where it came from (built-in or a
    plugin)."""
    entries = registry.listing()
    width = max([4] + [len(name) for name, _, _ in entries])
    for name, description, source in entries:
        click.echo(f"{name:<{width}}  {description}{detail(name)}  [{source}]")


# --- methods ------------------------------------------------------------------

@click.group(cls=Group)
def methods() -> None:
    """Registered methods."""


@methods.command("list")
@plugin_option
def methods_list() -> None:
    """List the registered methods, with where each came from."""
    _print_entries(METHODS)


@methods.command("show")
@plugin_option
@click.argument("name")
def methods_show(name: str) -> None:
    """A method's hyper-parameters (type, default, allowed values, help) and its official recipe."""
    from ..methods.card import method_card

    click.echo(method_card(name))


# --- data ---------------------------------------------------------------------

@click.group(cls=Group)
def data() -> None:
    """Datasets: list them, check a real one's layout, generate the synthetic one."""


@data.command("list")
@plugin_option
def data_list() -> None:
    """List the registered datasets, each with its default profile (the one its runs use without --profile)."""
    _print_entries(DATASETS, lambda name: f" Default profile: {DATASETS.get(name).default_profile}.")


@data.command("check")
@plugin_option
@click.option("--dataset", required=True, help="A registered real dataset (rafdb, ferplus, affectnet).")
@click.option("--root", type=click.Path(), help="Dataset directory (default: datasets/<dataset>).")
@click.option("--data", "data_opts", multiple=True, metavar="KEY=VALUE",
              help="A loader option, e.g. images=original, classes=8, layout=csv (repeatable).")
@click.option("--quick", is_flag=True, help="Only check that image files exist (no decoding).")
def data_check(dataset: str, root: Optional[str], data_opts: tuple[str, ...], quick: bool) -> None:
    """Validate a dataset's layout and report counts, class mapping and every problem.

    Exits with 0 when no problem was found and 2 otherwise.
    """
    from ..datasets.check import check_dataset
    from ..engine.recipe import parse_sets

    report = check_dataset(dataset, Path(root) if root else None, deep=not quick, **parse_sets(data_opts, "--data"))
    click.echo(report.format())
    if not report.ok:
        sys.exit(2)


@data.command("synth")
@click.option("--out", type=click.Path(), help="Output directory (default: datasets/synthfer).")
@click.option("--n-train", default=None, type=int, help="Training images (default: the built-in size).")
@click.option("--n-test", default=None, type=int, help="Test images.")
@click.option("--size", default=None, type=int, help="Image side in pixels.")
@click.option("--seed", default=0, type=int, show_default=True)
@click.option("--classes", "num_classes", default=7, type=click.Choice(["7", "8"]), show_default=True,
              help="8 adds contempt.")
@click.option("--workers", default=None, type=int, help="Processes (default: all cores).")
def data_synth(out: Optional[str], num_classes: str, **kw: Any) -> None:
    """Generate the synthetic dataset in RAF-DB's layout (plus votes and landmarks)."""
    from ..datasets.synthfer.generate import generate
    from ..datasets.synthfer.loader import SynthFER

    kwargs = {k: v for k, v in kw.items() if v is not None}
    summary = generate(Path(out) if out else SynthFER.default_root(), num_classes=int(num_classes), **kwargs)
    click.echo(json.dumps(summary, indent=2, default=str))


# --- noise ----------------------------------------------------------------------

@click.group(cls=Group)
def noise() -> None:
    """Noisy label sets: list models, export, inspect."""


@noise.command("list")
@plugin_option
def noise_list() -> None:
    """List the registered noise models."""
    _print_entries(NOISE_MODELS)


@noise.command("export")
@plugin_option
@click.option("--dataset", default="synthfer", show_default=True)
@click.option("--root", type=click.Path())
@click.option("--data", "data_opts", multiple=True, metavar="KEY=VALUE", help="A dataset loader option (repeatable).")
@click.option("--noise", required=True, help="Noise model.")
@click.option("--rate", type=float, help="Noise rate in [0, 1); needed by every noise model but none.")
@click.option("--noise-seed", default=0, type=int, show_default=True)
@click.option("--exact", is_flag=True)
@click.option("--confusion", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Label file to write (plus FILE.json).")
def noise_export(dataset: str, root: Optional[str], data_opts: tuple[str, ...], noise: str, rate: Optional[float],
                 noise_seed: int, exact: bool, confusion: Optional[str], out: str) -> None:
    """Write noisy train labels in the dataset's own label-file format, with their record."""
    from ..engine.recipe import parse_sets
    from ..engine.checks import check_noise_rate
    from ..noise.files import check_export_path, export_train_labels, generate_train_labels
    from ..noise.models import required_rate
    from ..registry import create_dataset

    rate = required_rate(noise, rate)
    check_noise_rate(rate)
    check_export_path(Path(out), Path(root) if root else None)
    ds = create_dataset(dataset, root, True, **parse_sets(data_opts, "--data"))
    labels, record = generate_train_labels(ds, noise, rate, noise_seed, exact, Path(confusion) if confusion else None)
    sha = export_train_labels(ds, labels, record, Path(out))
    click.echo(record.summary())
    click.echo(f"wrote {out} (sha256 {sha}) and {out}.json")


@noise.command("inspect")
@plugin_option
@click.argument("file", type=click.Path())
@click.option("--dataset", default="synthfer", show_default=True)
@click.option("--root", type=click.Path())
@click.option("--data", "data_opts", multiple=True, metavar="KEY=VALUE", help="A dataset loader option (repeatable).")
def noise_inspect(file: str, dataset: str, root: Optional[str], data_opts: tuple[str, ...]) -> None:
    """Print the record of a label file measured against the dataset's clean labels."""
    from ..engine.recipe import parse_sets
    from ..noise.files import import_train_labels
    from ..registry import create_dataset

    ds = create_dataset(dataset, root, True, **parse_sets(data_opts, "--data"))
    _, record = import_train_labels(ds, Path(file))
    click.echo(record.summary())


# --- landmarks ------------------------------------------------------------------

@click.group(cls=Group)
def landmarks() -> None:
    """Facial landmarks: extract them once into a per-dataset cache."""


@landmarks.command("extract")
@plugin_option
@click.option("--dataset", required=True)
@click.option("--root", type=click.Path())
@click.option("--data", "data_opts", multiple=True, metavar="KEY=VALUE", help="A dataset loader option (repeatable).")
@click.option("--backend", default="dlib", show_default=True, type=click.Choice(["dlib", "fan"]))
@click.option("--predictor", type=click.Path(), help="dlib's shape_predictor_68_face_landmarks.dat (default: found).")
@click.option("--device", default="cpu", show_default=True, help="Device for fan.")
@click.option("--detect", is_flag=True, help="Run a face detector first (default: the dataset's face box).")
@click.option("--split", "splits", multiple=True, type=click.Choice(["train", "test"]), help="Default: both.")
@click.option("--force", is_flag=True, help="Extract even when the dataset ships landmarks.")
def landmarks_extract(dataset: str, root: Optional[str], data_opts: tuple[str, ...], backend: str,
                      predictor: Optional[str], device: str, detect: bool, splits: tuple[str, ...], force: bool) -> None:
    """Fit 68 landmarks to every image once; training reads the cache."""
    from ..engine.recipe import parse_sets
    from ..landmarks.backends import create_backend
    from ..landmarks.extract import extract_split
    from ..registry import create_dataset

    ds = create_dataset(dataset, root, True, **parse_sets(data_opts, "--data"))
    fitter = create_backend(backend, Path(predictor) if predictor else None, device, detect)
    for split in splits or ("train", "test"):
        if getattr(ds, split).landmarks is not None and not force:
            click.echo(f"{dataset} {split}: the dataset ships landmarks; nothing to extract (--force to do it anyway)")
            continue
        rec = extract_split(ds, split, fitter)
        click.echo(f"{dataset} {split}: {rec['n']} faces, {rec['failures']} failed, "
                   f"{rec['ms_per_face']:.1f} ms per face ({rec['version']}) -> {ds.root / 'landmarks'}")

