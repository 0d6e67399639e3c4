"""A run's identity: the one place that builds a run directory's name and parses it back.

A run is named by five things, one directory level each (the seed level also
carries the noise seed when it differs from the training seed)::

    <dataset>/<setting>/<variant>/seed<k>[-noise<n>]

* ``dataset``: the dataset's name and its loader options (``rafdb+classes=8``);
* ``setting``: the noisy labels: ``clean``, ``sym-0.3``, ``asym-exact-0.2``, or
  ``file-<stem>`` for a label file (its realised rate is in the run's record); on a long-tailed
  training subset (``--imbalance RHO``, :mod:`fer_bench.datasets.imbalance`) followed by
  ``+imbalance=RHO``, and by ``+imbalance_seed=S`` when the subset's seed is not its default (the
  noise seed; a label file's run: the training seed): ``sym-0.3+imbalance=10``. The setting is what
  a table's row block stands for, so runs at two RHOs (or two subset seeds) never share a cell;
* ``variant``: the method plus whatever else sets its runs apart: a protocol
  other than ``official``, a profile other than the dataset's default profile
  when the run was made (which its config records, so a run keeps its name when a
  default changes), the ``--set`` overrides (``lanet+unified+alpha=0.5``) and, for
  a run trained by several processes, their number and SyncBatchNorm
  (``lanet+processes=2+sync_bn``: per-rank batch norm and augmentation give other
  numbers than one process);
* the training seed and the noise seed.

A saved run's name is built from its config alone (:meth:`RunId.from_config`, through
:func:`~fer_bench.runs.config.migrate`). Everything else (reports, sweeps, plots,
``eval``) asks :class:`RunId`; nothing else splits a run directory's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Mapping, Optional

from .config import migrate

CLEAN = "clean"
FILE_PREFIX = "file-"
_SEED = re.compile(r"^seed(-?\d+)(?:-noise(-?\d+))?$")
# A setting's long-tailed subset: ``+imbalance=RHO[+imbalance_seed=S]`` at its end (before the ``@<sha>`` by which
# reports tell label files of one name apart).
_IMBALANCE = re.compile(r"\+imbalance=(?P<rho>\d+(?:\.\d+)?)(?:\+imbalance_seed=(?P<seed>\d+))?(?=@|$)")


def number_text(value: float) -> str:
    """``10``, ``2.5``: a number as a name part, every digit kept (never an exponent, whose ``+`` would split)."""
    text = repr(float(value))
    if "e" in text:
        text = format(float(value), "f").rstrip("0").rstrip(".")
    return text[:-2] if text.endswith(".0") else text


def imbalance_suffix(rho: Optional[float], seed: Optional[int] = None) -> str:
    """``+imbalance=RHO[+imbalance_seed=S]``, the end of a long-tailed run's setting; ``""`` without a subset."""
    if rho is None:
        return ""
    return f"+imbalance={number_text(rho)}" + (f"+imbalance_seed={seed}" if seed is not None else "")


def split_imbalance(setting: str) -> tuple[str, Optional[float], Optional[int]]:
    """``(noise setting, RHO, seed)`` of a setting name: ``("sym-0.3", 10.0, None)`` for
    ``sym-0.3+imbalance=10`` (the seed: only when the name carries it), ``(setting, None, None)`` for a
    run on the full training set."""
    match = _IMBALANCE.search(setting)
    if match is None:
        return setting, None, None
    seed = match.group("seed")
    return (setting[:match.start()] + setting[match.end():], float(match.group("rho")),
            int(seed) if seed is not None else None)


def setting_name(noise: str, rate: float, exact: bool = False, noise_file: Optional[str] = None,
                 imbalance: Optional[float] = None, imbalance_seed: Optional[int] = None) -> str:
    """The setting part of a run's name (see the module docstring); ``imbalance_seed`` only where the name
    carries it (it is not the default)."""
    return _noise_setting(noise, rate, exact, noise_file) + imbalance_suffix(imbalance, imbalance_seed)


def _noise_setting(noise: str, rate: float, exact: bool = False, noise_file: Optional[str] = None) -> str:
    if noise_file:
        return FILE_PREFIX + Path(noise_file).stem
    if noise in ("none", "file") or rate == 0:
        return CLEAN
    return f"{noise}{'-exact' if exact else ''}-{rate:g}"


def parse_setting(setting: str) -> tuple[str, Optional[float]]:
    """``(noise, nominal rate)`` of a setting name: ``("none", 0.0)``, ``("sym-exact", 0.3)``,
    ``("file", None)`` (a label file has no nominal rate; its realised one is in its record). A long-tailed
    subset's suffix (``+imbalance=RHO``) is no part of the noise: :func:`split_imbalance` reads it."""
    if setting.startswith(FILE_PREFIX):
        return "file", None
    setting = split_imbalance(setting)[0]
    if setting == CLEAN:
        return "none", 0.0
    noise, sep, rate = setting.rpartition("-")
    try:
        if not sep or not noise:
            raise ValueError
        return noise, float(rate)
    except ValueError:
        raise ValueError(f"{setting!r} is not a noise setting (clean, <noise>-<rate> or file-<name>)") from None


def variant_name(method: str, protocol: str = "official", profile_differs: Optional[str] = None,
                 overrides: Optional[Mapping[str, Any]] = None, processes: int = 1, sync_bn: bool = False) -> str:
    """``method[+protocol][+profile=p][+k=v...][+processes=n[+sync_bn]]``: what sets a method's runs apart."""
    parts = [method.lower()]
    if protocol != "official":
        parts.append(protocol)
    if profile_differs:
        parts.append(f"profile={profile_differs}")
    parts += [f"{k}={_one_level(v)}" for k, v in sorted((overrides or {}).items())]
    if processes > 1:
        parts += [f"processes={processes}"] + (["sync_bn"] if sync_bn else [])
    return "+".join(parts)


def _one_level(value: Any) -> Any:
    """A value as it may stand in one directory level: a file path (``--pretrained DIR/w.pth``) by
    its file name. Two files of one name still never share a run: their configs differ."""
    if isinstance(value, str) and ("/" in value or "\\" in value):
        return PurePosixPath(value.replace("\\", "/")).name
    return value


def dataset_name(dataset: str, data_options: Optional[Mapping[str, Any]] = None) -> str:
    return dataset.lower() + "".join(f"+{k}={v}" for k, v in sorted((data_options or {}).items()))


@dataclass(frozen=True)
class RunId:
    """Who a run is; :meth:`name` is its directory below a runs root, :meth:`parse` reads one back."""

    dataset: str
    setting: str
    variant: str
    seed: int
    noise_seed: Optional[int] = None  # None: the training seed's (or a label file's: no noise seed)

    @property
    def method(self) -> str:
        return self.variant.split("+", 1)[0]

    @property
    def noise(self) -> str:
        return parse_setting(self.setting)[0]

    @property
    def nominal_rate(self) -> Optional[float]:
        return parse_setting(self.setting)[1]

    @property
    def imbalance(self) -> Optional[float]:
        """RHO of the run's long-tailed training subset; None: the full training set."""
        return split_imbalance(self.setting)[1]

    def name(self) -> PurePosixPath:
        seed = f"seed{self.seed}"
        if self.noise_seed is not None and self.noise_seed != self.seed:
            seed += f"-noise{self.noise_seed}"
        return PurePosixPath(self.dataset, self.setting, self.variant, seed)

    def title(self) -> str:
        """``lanet+alpha=0.5 · synthfer · sym-0.3 · seed 0`` for figure titles."""
        return f"{self.variant} · {self.dataset} · {self.setting} · seed {self.seed}"

    @classmethod
    def parse(cls, path: Path | str) -> "RunId":
        """The identity of a run directory from its last four path components."""
        parts = Path(path).parts[-4:]
        match = _SEED.match(parts[-1]) if len(parts) == 4 else None
        if match is None:
            raise ValueError(f"{path} is not named like a run directory "
                             f"(<dataset>/<setting>/<variant>/seed<k>[-noise<n>])")
        parse_setting(parts[1])
        seed = int(match.group(1))
        return cls(parts[0], parts[1], parts[2], seed, int(match.group(2)) if match.group(2) else None)

    @classmethod
    def build(cls, *, method: str, dataset: str, data_options: Mapping[str, Any], noise: str, rate: float,
              exact: bool, noise_file: Optional[str], protocol: str, profile: str, default_profile: str,
              overrides: Mapping[str, Any], seed: int, noise_seed: Optional[int], processes: int = 1,
              sync_bn: bool = False, imbalance: Optional[float] = None,
              imbalance_seed: Optional[int] = None) -> "RunId":
        """The identity of a run with these choices (the engine's resolved spec, or a saved config).
        ``imbalance_seed`` is named only when it is not its default: the noise seed (a label file: the seed)."""
        default_seed = seed if noise_file or noise_seed is None else noise_seed
        return cls(
            dataset=dataset_name(dataset, data_options),
            setting=setting_name(noise, rate, exact, noise_file, imbalance,
                                 None if imbalance_seed == default_seed else imbalance_seed),
            variant=variant_name(method, protocol, profile if profile != default_profile else None, overrides,
                                 processes, sync_bn),
            seed=seed, noise_seed=None if noise_file or noise_seed == seed else noise_seed,
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "RunId":
        """The identity a saved ``config.json`` describes (its directory may have been moved or renamed)."""
        config = migrate(dict(config))
        noise = config["noise"]
        file = noise.get("file")
        if noise.get("model") == "file" and not file:
            file = "labels"
        imbalance = config.get("imbalance") or {}  # absent: the full training set (every run before it)
        return cls.build(
            method=config["method"], dataset=config["dataset"], data_options=config.get("data_options", {}),
            noise=noise["model"], rate=float(noise["rate"]), exact=bool(noise.get("exact", False)),
            noise_file=file, protocol=config.get("protocol", "official"), profile=config.get("profile", ""),
            default_profile=config["default_profile"],
            overrides=config.get("overrides", {}), seed=int(config["seed"]), noise_seed=noise.get("noise_seed"),
            processes=int(config.get("processes", 1)), sync_bn=bool(config.get("sync_bn", False)),
            imbalance=imbalance.get("rho"), imbalance_seed=imbalance.get("seed"),
        )
