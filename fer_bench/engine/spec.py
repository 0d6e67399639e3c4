"""What a run is: the user's :class:`RunSpec`, checked and completed by :func:`resolve` into a
:class:`ResolvedRun` (recipe, hyper-parameters, noise seed, run directory), and the ``config.json``
that records it (:func:`config_record`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import torch

from ..datasets.contract import default_val_split
from ..datasets.imbalance import Imbalance
from ..methods.base import Method
from ..noise.models import required_rate
from ..paths import runs_root
from ..registry import DATASETS, METHODS, NOISE_MODELS
from ..runs import SCHEMA_VERSION, RunDir, RunError, RunId, migrate
from ..runs.config import DATA_FINGERPRINT
from ..tracking import check_tracker
from . import recipe as recipes
from .checks import check_noise_rate, check_seeds
from .distributed import World
from .samplers import SAMPLERS
from .timescale import Mapped, Schedule


@dataclass
class RunSpec:
    """Everything a user chooses for one run (what ``fer-bench run`` takes)."""

    method: str = "baseline"
    dataset: str = "synthfer"
    root: Optional[str] = None
    data_options: dict[str, Any] = field(default_factory=dict)
    noise: str = "none"
    rate: Optional[float] = None  # required by every noise model but none (and a label file)
    exact: bool = False
    confusion: Optional[str] = None
    noise_file: Optional[str] = None
    noise_seed: Optional[int] = None
    imbalance: Optional[float] = None  # RHO of a long-tailed training subset (fer_bench.datasets.imbalance)
    imbalance_seed: Optional[int] = None  # its seed (default: the noise seed; a label file's run: the seed)
    seed: int = 0
    protocol: str = "official"
    profile: Optional[str] = None
    overrides: dict[str, Any] = field(default_factory=dict)
    trust_pickle: bool = False
    device: str = "auto"
    compile: bool = False  # torch.compile the backbones; a speed choice, not part of the run's identity
    sync_bn: bool = False  # SyncBatchNorm across the ranks of a multi-process run (no effect in one process)
    processes: int = 1  # the ranks that train it (torchrun's world size); more than one names the run apart
    log: Optional[str] = None  # tensorboard | wandb: a copy of the metrics, not part of the run's identity
    out: Optional[str] = None
    force: bool = False
    progress: bool = True


@dataclass
class ResolvedRun:
    spec: RunSpec
    method_cls: type[Method]
    dataset_cls: Any
    profile: str
    recipe: dict[str, Any]
    hparams: dict[str, Any]
    noise_seed: int
    mapped: list[Mapped] = field(default_factory=list)  # time constants carried to the run's schedule
    imbalance: Optional[Imbalance] = None  # the long-tailed training subset; None: the full training split

    def mapping_note(self) -> Optional[str]:
        """One line saying which time constants were mapped to the run's schedule, or None."""
        if not self.mapped:
            return None
        official = recipes.official_schedule(self.method_cls.recipe)
        return (f"time constants mapped from {official.describe()} to {Schedule.of(self.recipe).describe()}: "
                + ", ".join(m.describe() for m in self.mapped) + " (--set NAME=VALUE keeps a value as given)")

    @property
    def id(self) -> RunId:
        return self._named_against(self.named_against)

    @property
    def named_against(self) -> str:
        """The default profile the run's name leaves out, which its config records: the dataset's of today,
        unless this root already holds the run under the name it got when its profile was the default."""
        today = self.dataset_cls.default_profile
        if self.profile != today and self._recorded_as_default(self._root / self._named_against(self.profile).name()):
            return self.profile
        return today

    def _named_against(self, default_profile: str) -> RunId:
        s = self.spec
        return RunId.build(
            method=s.method, dataset=s.dataset, data_options=s.data_options, noise=s.noise, rate=s.rate,
            exact=s.exact, noise_file=s.noise_file, protocol=s.protocol, profile=self.profile,
            default_profile=default_profile, overrides=s.overrides, seed=s.seed,
            noise_seed=self.noise_seed, processes=s.processes, sync_bn=s.sync_bn,
            imbalance=self.imbalance.rho if self.imbalance else None,
            imbalance_seed=self.imbalance.seed if self.imbalance else None)

    def _recorded_as_default(self, run_dir: Path) -> bool:
        """Whether ``run_dir`` holds a run of this profile made while it was the dataset's default, so that a
        sweep over a benchmark of an earlier default finds its runs instead of training them again."""
        try:
            config = migrate(json.loads(RunDir(run_dir).config_file.read_text()))
        except (OSError, ValueError, RunError):
            return False
        return config.get("profile") == self.profile == config.get("default_profile")

    @property
    def _root(self) -> Path:
        return Path(self.spec.out) if self.spec.out else runs_root()

    @property
    def run_dir(self) -> Path:
        return self._root / self.id.name()


def resolve(spec: RunSpec) -> ResolvedRun:
    """Check every name and number of a spec before anything is loaded or written."""
    # Names are case-insensitive; the registered spelling is the one recorded and in the run directory.
    spec = replace(spec, method=METHODS.canonical(spec.method), dataset=DATASETS.canonical(spec.dataset),
                   noise=spec.noise if spec.noise_file else NOISE_MODELS.canonical(spec.noise))
    method_cls = METHODS.get(spec.method)
    dataset_cls = DATASETS.get(spec.dataset)
    if not spec.noise_file:
        NOISE_MODELS.get(spec.noise)
    if spec.rate is None:
        try:
            spec = replace(spec, rate=0.0 if spec.noise_file else required_rate(spec.noise, spec.rate))
        except ValueError as exc:
            raise RunError(str(exc)) from None
    check_seeds(spec.seed, spec.noise_seed)
    check_noise_rate(spec.rate)
    if spec.noise == "none" and spec.rate > 0 and not spec.noise_file:
        raise RunError(f"--noise none with --rate {spec.rate}: choose a noise model (sym, asym, ...)")
    if spec.noise_file and not Path(spec.noise_file).is_file():
        raise RunError(f"noise file not found: {spec.noise_file}")
    if spec.confusion and not Path(spec.confusion).is_file():
        raise RunError(f"confusion matrix file not found: {spec.confusion}")
    if spec.rate == 0 and not spec.noise_file:
        spec = replace(spec, noise="none", exact=False)  # every rate-0 model yields the clean labels
    profile = spec.profile or dataset_cls.default_profile
    recipe, hparams, mapped = recipes.resolve_mapped(method_cls.recipe, method_cls.hparams, spec.protocol, profile,
                                                     spec.overrides, {"val_split": default_val_split(dataset_cls)},
                                                     run_values(spec))
    # The checked values, so that `--set alpha=0` and `--grid alpha=0.0` name one run directory and one config.
    spec = replace(spec, overrides={k: recipe[k] if k in recipe else hparams[k] for k in spec.overrides})
    try:
        check_tracker(spec.log)
    except ValueError as exc:
        raise RunError(str(exc)) from None
    if recipe["sampler"] not in SAMPLERS:
        raise RunError(f"unknown sampler {recipe['sampler']!r}; known: {', '.join(SAMPLERS)}")
    noise_seed = spec.seed if spec.noise_seed is None else spec.noise_seed
    return ResolvedRun(spec, method_cls, dataset_cls, profile, recipe, hparams, noise_seed, mapped,
                       imbalance=resolve_imbalance(spec, noise_seed))


def run_values(spec: RunSpec) -> dict[str, Any]:
    """What a method's hyper-parameter may take its default from (:data:`fer_bench.methods.hparams.RUN_VALUES`):
    the run's *nominal* noise rate, as the user gave it (0 without noise), and whether its noise model is
    other than symmetric; a label file has neither. Never the realised rate, nor anything else computed from
    the clean labels."""
    return _run_values(None if spec.noise_file else NOISE_MODELS.canonical(spec.noise), spec.rate)


def recorded_run_values(config: dict[str, Any]) -> dict[str, Any]:
    """:func:`run_values` of the run a saved ``config.json`` describes."""
    noise = config.get("noise") or {}
    model = noise.get("model")
    return _run_values(None if model == "file" else model, noise.get("rate"))


def _run_values(model: Optional[str], rate: Optional[float]) -> dict[str, Any]:
    if model is None:  # a label file
        return {"noise_rate": None, "asymmetric_noise": None}
    return {"noise_rate": rate, "asymmetric_noise": model not in ("sym", "none")}


def resolve_imbalance(spec: RunSpec, noise_seed: int) -> Optional[Imbalance]:
    """The run's long-tailed training subset: ``spec.imbalance`` from ``spec.imbalance_seed``, by default the
    noise seed (a label file's run, which has none: the training seed)."""
    if spec.imbalance is None:
        if spec.imbalance_seed is not None:
            raise RunError(f"--imbalance-seed {spec.imbalance_seed} without --imbalance: the seed picks the images "
                           f"of a long-tailed training subset; give its ratio with --imbalance RHO")
        return None
    seed = spec.imbalance_seed if spec.imbalance_seed is not None else spec.seed if spec.noise_file else noise_seed
    try:
        return Imbalance(spec.imbalance, seed)
    except ValueError as exc:
        raise RunError(str(exc)) from None


def noise_settings(run: ResolvedRun, label_sha: Optional[str] = None) -> dict[str, Any]:
    """The ``noise`` entry of the run's config: how its noisy training labels are made (see
    :func:`fer_bench.engine.data.train_labels`), and their sha256 once they are."""
    s = run.spec
    return {"model": "file" if s.noise_file else s.noise, "rate": s.rate, "exact": s.exact,
            "noise_seed": None if s.noise_file else run.noise_seed, "confusion": s.confusion,
            "file": s.noise_file, "label_file_sha256": label_sha}


def config_record(run: ResolvedRun, noise_sha: Optional[str], data_fingerprint: Optional[str] = None
                  ) -> dict[str, Any]:
    """The run's config.json (schema :data:`~fer_bench.runs.SCHEMA_VERSION`). ``root`` is absolute, so that
    reports find the data from any directory; None means the dataset's default place under the data root
    (:func:`fer_bench.paths.data_root`). ``default_profile`` is the one the run's name leaves out
    (:attr:`ResolvedRun.named_against`). ``data_fingerprint`` (:meth:`FERDataset.fingerprint`, known once the data is loaded) says what the
    images were. Neither is part of the config's hash (:data:`fer_bench.runs.config.NOT_IDENTITY`)."""
    s = run.spec
    return {
        "schema_version": SCHEMA_VERSION,
        "method": s.method.lower(), "dataset": s.dataset.lower(),
        "root": str(Path(s.root).resolve()) if s.root else None,
        "default_profile": run.named_against,
        "data_options": s.data_options, "seed": s.seed,
        "noise": noise_settings(run, noise_sha),
        "protocol": s.protocol, "profile": run.profile, "overrides": s.overrides,
        "recipe": run.recipe, "hparams": run.hparams,
        "mapped_constants": {m.name: m.record() for m in run.mapped},
        # only when several processes train it, so a single-process config is unchanged
        **({"processes": s.processes, "sync_bn": s.sync_bn} if s.processes > 1 else {}),
        # only on a long-tailed training subset, so a config of the full training split is unchanged
        **({"imbalance": run.imbalance.record()} if run.imbalance else {}),
        **({DATA_FINGERPRINT: data_fingerprint} if data_fingerprint else {}),
    }


def select_device(name: str) -> torch.device:
    """The device ``--device`` names (``auto``: CUDA when there is one)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RunError(f"--device {name}: no CUDA device is available")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise RunError(f"unknown device {name!r}; use auto, cpu or cuda[:N]")
    return torch.device(name)


def check_world(recipe: dict[str, Any], world: World) -> None:
    """The global batch must split into equal per-rank batches."""
    if recipe["batch_size"] % world.size:
        raise RunError(f"batch_size {recipe['batch_size']} does not divide among {world.size} processes: "
                       f"each rank trains batch_size / {world.size}; choose a multiple of {world.size} "
                       f"(--set batch_size=...) or another process count")
