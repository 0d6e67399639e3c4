"""The run record that reports, sweeps, plots and ``eval`` consume: identity, config and result together.

:func:`collect` finds the finished runs below a directory (at any depth, so a
copied or committed tree of runs reads the same) and :func:`to_frame` turns
them into one data frame row each. Identity comes from :class:`RunId`, built
from the saved config, never from the directory's name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from .directory import RunDir, RunError
from .identity import RunId, variant_name

if TYPE_CHECKING:  # pandas costs half a second to import, and the CLI imports this package to start
    import pandas as pd

# Per run (fer_bench.engine.metrics.summarise_epochs): the last epoch, the best epoch on the test set
# (optimistic), the mean of the last 5, and the epoch chosen on the noisy validation split (None without one).
STATS = ("last", "best", "last5", "val")
METRICS = ("acc", "mean_class_acc")
# A setting is what a table row block stands for; a variant is a method plus whatever else sets its
# runs apart (protocol, profile, overrides), named as in the run directory.
GROUP = ["dataset", "noise", "rate", "setting", "method", "variant"]
COLUMNS = GROUP + ["is_default", "run_variant", "protocol", "profile", "seed", "noise_seed", "epochs",
                   "realised_rate", "train_seconds", "run_dir", "record"] + [f"{m}_{s}" for m in METRICS for s in STATS]


@dataclass(frozen=True)
class RunRecord:
    """One finished run: who it is, how it was configured, what it measured."""

    id: RunId
    dir: RunDir
    config: dict[str, Any]
    result: dict[str, Any]

    @classmethod
    def read(cls, path: Path | str) -> "RunRecord":
        d = RunDir(Path(path)).require("result.json")
        config = d.config()
        return cls(RunId.from_config(config), d, config, d.result())

    @property
    def overrides(self) -> dict[str, Any]:
        return dict(self.config.get("overrides", {}))

    @property
    def realised_rate(self) -> Optional[float]:
        record = self.result.get("noise_record") or {}
        return record.get("realised_rate")

    @property
    def rate(self) -> float:
        """The nominal noise rate, or for a label file (which has none) its realised rate."""
        nominal = self.id.nominal_rate
        if nominal is None:
            return round(float(self.realised_rate or 0.0), 4)
        return nominal

    def setting_value(self, key: str) -> Any:
        """The value this run used for a recipe key or hyper-parameter (its default when not overridden)."""
        for part in ("hparams", "recipe", "overrides"):
            if key in self.config.get(part, {}):
                return self.config[part][key]
        return None

    def row(self) -> dict[str, Any]:
        noise = self.config["noise"]
        row = {
            "dataset": self.id.dataset, "noise": self.id.noise, "rate": self.rate, "setting": self.id.setting,
            "method": self.id.method, "variant": self.id.variant, "is_default": True,
            "run_variant": self.id.variant,
            "protocol": self.config.get("protocol", "official"), "profile": self.config.get("profile"),
            "seed": self.id.seed, "noise_seed": noise.get("noise_seed"), "epochs": self.result["epochs"],
            "realised_rate": self.realised_rate, "train_seconds": self.result.get("train_seconds"),
            "run_dir": str(self.dir.path), "record": self,
        }
        for metric in METRICS:
            for stat in STATS:
                value = self.result.get(f"{metric}_{stat}") if stat == "val" else self.result[f"{metric}_{stat}"]
                row[f"{metric}_{stat}"] = float("nan") if value is None else 100.0 * value
        return row


def collect(results: Path | str) -> list[RunRecord]:
    """Every finished run (a ``result.json`` beside its ``config.json``) below ``results``."""
    records = []
    for result_file in sorted(Path(results).rglob("result.json")):
        try:
            records.append(RunRecord.read(result_file.parent))
        except (KeyError, TypeError) as exc:
            raise RunError(f"{result_file.parent}: incomplete run record (missing {exc})") from None
    return records


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def own_variants(records: list[RunRecord]) -> list[tuple[str, bool]]:
    """Each run's variant among these runs: its method, protocol, profile and the overrides that set it
    apart from the method's other runs.

    A sweep run entirely with ``--set epochs=5`` is still the method's default
    runs; only overrides that some of its runs lack (a grid's values) make a variant.
    """
    common: dict[str, set[tuple[str, str]]] = {}
    for r in records:
        items = {(k, _key(v)) for k, v in r.overrides.items()}
        common[r.id.method] = common[r.id.method] & items if r.id.method in common else items
    out = []
    for r in records:
        own = {k: v for k, v in r.overrides.items() if (k, _key(v)) not in common[r.id.method]}
        differs = r.config.get("profile") if "+profile=" in r.id.variant else None
        out.append((variant_name(r.id.method, r.config.get("protocol", "official"), differs, own), not own))
    return out


def to_frame(records: list[RunRecord]) -> "pd.DataFrame":
    """One row per run: its identity and every accuracy statistic (in percent); ``record`` is the run itself.

    ``variant`` is :func:`own_variants`' name (what tables, figures and ``--methods`` use),
    ``is_default`` whether it is the method's default runs (no overrides of its own), and
    ``run_variant`` the variant in the run's directory name.
    """
    import pandas as pd

    frame = pd.DataFrame([r.row() for r in records], columns=COLUMNS)
    own = own_variants(records)
    frame["variant"] = [v for v, _ in own]
    frame["is_default"] = [d for _, d in own]
    return frame
