"""The run record that reports, sweeps, plots and ``eval`` consume: identity, config and result together.

:func:`collect` finds the finished runs below a directory (at any depth, so a
copied or committed tree of runs reads the same) and :func:`to_frame` turns
them into one data frame row each. Identity comes from :class:`RunId`, built
from the saved config, never from the directory's name; a directory that is
not named as its record says, or a second one of the same run, is left out
and said so (a ``cp -r seed0 seed0.bak`` is not another seed).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from .directory import RunDir
from .errors import RunError
from .identity import FILE_PREFIX, RunId, variant_name

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
                   "realised_rate", "train_seconds", "mechanism_off", "unpredicted", "run_dir", "record"] + [
                   f"{m}_{s}" for m in METRICS for s in STATS]


def unpredicted_classes(result: dict[str, Any]) -> list[str]:
    """The classes to which the run's last-epoch model assigned no test image (an empty column of
    ``confusion_last``): a collapse that accuracy alone hides when the class is small."""
    matrix, names = result.get("confusion_last"), result.get("class_names")
    if not matrix or not names:
        return []
    return [name for j, name in enumerate(names) if not any(row[j] for row in matrix)]


# A class with at least this share of its training images flagged by a method's noise flag is named in the
# run's summary: the method then learns that class from almost none of its images (Co-teaching's small-loss
# selection can drop a class whose losses are all large, whatever the truth of its labels).
WHOLE_CLASS = 0.9


def whole_classes_flagged(result: dict[str, Any]) -> list[str]:
    """``dropped_1: fear 99%``: each noise flag of the run's method that takes at least :data:`WHOLE_CLASS`
    of some class's training images at the last epoch (``flagged_by_class``, written by
    :func:`fer_bench.engine.mechanism.flags_by_class`; older records have none)."""
    lines = []
    for name, shares in (result.get("flagged_by_class") or {}).items():
        whole = [f"{c} {share:.0%}" for c, share in shares.items() if share >= WHOLE_CLASS]
        if whole:
            lines.append(f"{name}: {', '.join(whole)}")
    return lines


@dataclass(frozen=True)
class RunRecord:
    """One finished run: who it is, how it was configured, what it measured."""

    id: RunId
    dir: RunDir
    config: dict[str, Any]
    result: dict[str, Any]
    # The setting as reports show it: the run's own, but a label file's name plus its sha's start when
    # files of one name with other contents share a report (see collect).
    shown_setting: str = ""

    @classmethod
    def read(cls, path: Path | str) -> "RunRecord":
        """A finished run's record; a RunError naming the file (and field) when it is none."""
        d = RunDir(Path(path)).require("result.json")
        config = d.config()
        try:
            run_id = RunId.from_config(config)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RunError(f"{d.config_file}: not a run's config ({type(exc).__name__}: {exc})") from None
        return cls(run_id, d, config, d.result())

    @property
    def setting(self) -> str:
        return self.shown_setting or self.id.setting

    @property
    def label_sha(self) -> Optional[str]:
        return (self.config.get("noise") or {}).get("label_file_sha256")

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
            "dataset": self.id.dataset, "noise": self.id.noise, "rate": self.rate, "setting": self.setting,
            "method": self.id.method, "variant": self.id.variant, "is_default": True,
            "run_variant": self.id.variant,
            "protocol": self.config.get("protocol", "official"), "profile": self.config.get("profile"),
            "seed": self.id.seed, "noise_seed": noise.get("noise_seed"), "epochs": self.result["epochs"],
            "realised_rate": self.realised_rate, "train_seconds": self.result.get("train_seconds"),
            # what of the method's mechanism stayed off (fer_bench.engine.mechanism); older records say nothing
            "mechanism_off": tuple(self.result.get("mechanism_off") or ()),
            "unpredicted": tuple(unpredicted_classes(self.result)),
            "run_dir": str(self.dir.path), "record": self,
        }
        for metric in METRICS:
            for stat in STATS:
                value = self.result.get(f"{metric}_{stat}") if stat == "val" else self.result[f"{metric}_{stat}"]
                row[f"{metric}_{stat}"] = float("nan") if value is None else 100.0 * value
        return row


def _to_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def collect(results: Path | str, warn: Callable[[str], None] = _to_stderr) -> list[RunRecord]:
    """Every finished run below ``results``: one record per run, each from the directory its record names.

    Left out, each with a ``warn`` line that names it: a directory whose result.json is not a valid record
    (unreadable, incomplete, a value out of range), one not named as its record says (a copy such as
    ``seed0.bak``; the last four path components are the name), and a second directory of a run already
    found. Label files are told apart by their content (sha256), not their name (see :func:`_label_files`).
    """
    records = []
    for result_file in sorted(Path(results).rglob("result.json")):
        try:
            record = RunRecord.read(result_file.parent)
        except RunError as exc:
            warn(f"{exc}; that run is left out")  # the message names the file
            continue
        name = record.id.name()
        if record.dir.path.parts[-4:] != name.parts:
            warn(f"left out {record.dir.path}: its record is of run {name}, which is not this directory's name "
                 f"(a copy? move it to <runs root>/{name} or remove it)")
            continue
        records.append(record)
    records = _label_files(records, warn)
    kept: dict[tuple[Any, ...], RunRecord] = {}
    for record in records:
        key = (record.id.dataset, record.setting, record.id.variant, record.id.seed, record.id.noise_seed)
        if key in kept:
            warn(f"left out {record.dir.path}: the same run as {kept[key].dir.path} ({record.id.name()}); "
                 f"a run counts once (remove or move one of them)")
            continue
        kept[key] = record
    return list(kept.values())


def _label_files(records: list[RunRecord], warn: Callable[[str], None]) -> list[RunRecord]:
    """Label-file runs named by their file, told apart by its content: files of one name but other contents
    are shown as ``file-<name>@<sha256's first 8>`` (said once), and one file under several names is shown by
    the first (said too), so two label sets never share a cell and one never splits into two."""
    shas: dict[tuple[str, str], set[str]] = defaultdict(set)  # (dataset, setting) -> its contents
    names: dict[tuple[str, str], set[str]] = defaultdict(set)  # (dataset, content) -> its settings
    for r in records:
        if r.id.setting.startswith(FILE_PREFIX):
            shas[(r.id.dataset, r.id.setting)].add(str(r.label_sha))
            names[(r.id.dataset, str(r.label_sha))].add(r.id.setting)
    for (dataset, sha), settings in names.items():
        if len(settings) > 1:
            warn(f"{dataset}: one label file (sha256 {sha[:8]}) under several names ({', '.join(sorted(settings))});"
                 f" shown as {min(settings)}")
    for (dataset, setting), contents in shas.items():
        if len(contents) > 1:
            warn(f"{dataset}: label files of one name, {setting}, with {len(contents)} different contents; shown "
                 f"as " + ", ".join(f"{setting}@{c[:8]}" for c in sorted(contents)))
    out = []
    for r in records:
        if r.id.setting.startswith(FILE_PREFIX):
            sha = str(r.label_sha)
            shown = min(names[(r.id.dataset, sha)])
            if len(shas[(r.id.dataset, shown)]) > 1:
                shown = f"{shown}@{sha[:8]}"
            r = replace(r, shown_setting=shown)
        out.append(r)
    return out


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def own_variants(records: list[RunRecord]) -> list[tuple[str, bool]]:
    """Each run's variant among these runs: its method, protocol, profile and the overrides that set it
    apart from the method's other runs.

    A sweep run entirely with ``--set epochs=5`` is still the method's default
    runs; only overrides that some of its runs lack (a grid's values) make a variant.
    """
    common = _common_overrides(records)
    out = []
    for r in records:
        own = {k: v for k, v in r.overrides.items() if (k, _key(v)) not in common[r.id.method]}
        differs = r.config.get("profile") if "+profile=" in r.id.variant else None
        out.append((variant_name(r.id.method, r.config.get("protocol", "official"), differs, own), not own))
    return out


def _common_overrides(records: list[RunRecord]) -> dict[str, set[tuple[str, str]]]:
    """Per method, the overrides (name, JSON value) that every one of its runs among ``records`` has."""
    common: dict[str, set[tuple[str, str]]] = {}
    for r in records:
        items = {(k, _key(v)) for k, v in r.overrides.items()}
        common[r.id.method] = common[r.id.method] & items if r.id.method in common else items
    return common


def shared_overrides(records: list[RunRecord]) -> list[str]:
    """Each run's overrides that all its method's runs share (``warm_up=4``), which :func:`own_variants`
    leaves out of the variant's name, so that whoever shows the variant can still say them."""
    common = _common_overrides(records)
    return [" ".join(f"{k}={v}" for k, v in sorted(r.overrides.items()) if (k, _key(v)) in common[r.id.method])
            for r in records]


def to_frame(records: list[RunRecord]) -> "pd.DataFrame":
    """One row per run: its identity and every accuracy statistic (in percent); ``record`` is the run itself.

    ``variant`` is :func:`own_variants`' name (what tables, figures and ``--methods`` use),
    ``is_default`` whether it is the method's default runs (no overrides of its own),
    ``shared_overrides`` the overrides every run of its method shares (:func:`shared_overrides`), and
    ``run_variant`` the variant in the run's directory name.
    """
    import pandas as pd

    frame = pd.DataFrame([r.row() for r in records], columns=COLUMNS)
    own = own_variants(records)
    frame["variant"] = [v for v, _ in own]
    frame["is_default"] = [d for _, d in own]
    frame["shared_overrides"] = shared_overrides(records)
    return frame
