"""A run's identity: the one place that builds a run directory's name and parses it back.

A run is named by five things, one directory level each (the seed level also
carries the noise seed when it differs from the training seed)::

    <dataset>/<setting>/<variant>/seed<k>[-noise<n>]

* ``dataset``: the dataset's name and its loader options (``rafdb+classes=8``);
* ``setting``: the noisy labels: ``clean``, ``sym-0.3``, ``asym-exact-0.2``, or
  ``file-<stem>`` for a label file (its realised rate is in the run's record);
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


def setting_name(noise: str, rate: float, exact: bool = False, noise_file: Optional[str] = None) -> str:
    """The setting part of a run's name (see the module docstring)."""
    if noise_file:
        return FILE_PREFIX + Path(noise_file).stem
    if noise in ("none", "file") or rate == 0:
        return CLEAN
    return f"{noise}{'-exact' if exact else ''}-{rate:g}"


def parse_setting(setting: str) -> tuple[str, Optional[float]]:
    """``(noise, nominal rate)`` of a setting name: ``("none", 0.0)``, ``("sym-exact", 0.3)``,
    ``("file", None)`` (a label file has no nominal rate; its realised one is in its record)."""
    if setting == CLEAN:
        return "none", 0.0
    if setting.startswith(FILE_PREFIX):
        return "file", None
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
              sync_bn: bool = False) -> "RunId":
        """The identity of a run with these choices (the engine's resolved spec, or a saved config)."""
        return cls(
            dataset=dataset_name(dataset, data_options),
            setting=setting_name(noise, rate, exact, noise_file),
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
        return cls.build(
            method=config["method"], dataset=config["dataset"], data_options=config.get("data_options", {}),
            noise=noise["model"], rate=float(noise["rate"]), exact=bool(noise.get("exact", False)),
            noise_file=file, protocol=config.get("protocol", "official"), profile=config.get("profile", ""),
            default_profile=config["default_profile"],
            overrides=config.get("overrides", {}), seed=int(config["seed"]), noise_seed=noise.get("noise_seed"),
            processes=int(config.get("processes", 1)), sync_bn=bool(config.get("sync_bn", False)),
        )
