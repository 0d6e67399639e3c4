"""A run's directory: its files, its state, its lock and its saved records.

One run is one directory (named by :class:`~fer_bench.runs.identity.RunId`)::

    config.json        resolved config (recipe, hyper-parameters, noise spec, data root)
    noise.json         the noise record (realised rate, per-class rates, matrix)
    train_labels.txt   the noisy training labels, in the dataset's format
    val_split.txt      the images held out as the noisy validation split, one name a line (with a split)
    env.json           versions, hardware, device, git commit and whether its tree was dirty
    metrics.csv        one row per epoch
    checkpoint.pt      written every epoch; the final model once done
    result.json        written last and atomically: the done marker

and what is derived from the run afterwards (``final_train_labels.txt``, a method's files such as
LA-Net's ``label_distributions.csv``, the user study's ``userstudy.json``, tracker logs).

A directory is ``new`` (no config), ``partial (epoch k)``, ``finished`` or
holds a ``different config``; :meth:`RunDir.check` turns the last into an
error that says how to keep both runs. ``finished`` means one thing everywhere
(engine, sweep, reports): ``result.json`` holds a complete, valid record (:meth:`RunDir.result`).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager, Optional

from ..engine.checks import RunError
from .lock import run_lock

NEW, FINISHED, DIFFERENT = "new", "finished", "different config"
# A fingerprint of the images (and clean labels) a run read. Runs recorded before it existed lack it, so it
# stays out of the hash (their names and hashes must not change) and is compared on its own where both
# configs have it.
DATA_FINGERPRINT = "data_fingerprint"
# Where the data lies and what the dataset defaults to are recorded, but do not make a run different.
_NOT_IDENTITY = ("root", "config_hash", "default_profile", DATA_FINGERPRINT)
SWEEP_LOG = "log.txt"  # a sweep worker's output, appended to by every attempt at the run
# What a retrain (--force) keeps of an earlier run's directory: the lock it holds, and the log a sweep
# worker has already opened before the run starts. Everything else was the old run's.
KEPT_ON_RETRAIN = (".lock", SWEEP_LOG)


# Recipe keys added after runs were first recorded, with the value that reproduces what the code
# did before the key existed. A run recorded without them is the same run as one with these values,
# so it stays finished rather than turning into a "different config" (the committed reference runs).
_BEFORE_THE_KEY_EXISTED = {"normalize": "imagenet", "aug_noise": 0.0, "aug_noise_var": 30.0,
                           "aug_flip_or_noise": False, "val_split": 0.0}


def as_recorded_today(config: dict[str, Any]) -> dict[str, Any]:
    """A saved config with the recipe keys it predates filled in as the code then behaved."""
    recipe = config.get("recipe")
    if not isinstance(recipe, dict):
        return config
    filled = {**_BEFORE_THE_KEY_EXISTED, **recipe}
    if "pretrained_kind" not in recipe and recipe.get("pretrained", "none") == "none":
        filled["pretrained_kind"] = "none"
    return {**config, "recipe": filled}


def config_hash(config: dict[str, Any]) -> str:
    """Identity of a run's config; where the dataset lies is not part of it (its labels' sha is)."""
    identity = {k: v for k, v in config.items() if k not in _NOT_IDENTITY}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """``key: old -> new`` for every (nested) key whose value differs."""
    out: list[str] = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{path}: unreadable ({exc})") from None
    if not isinstance(value, dict):
        raise RunError(f"{path}: unreadable (a JSON {type(value).__name__}, not an object)")
    return value


# What reports, tables and the run summary read from result.json. A record lacking one of the required
# fields, or holding a value of the wrong type or range, is not a finished run anywhere.
_FRACTIONS = tuple(f"{m}_{s}" for m in ("acc", "mean_class_acc") for s in ("last", "best", "last5"))
_OPTIONAL_FRACTIONS = ("acc_val", "mean_class_acc_val", "val_acc_best")
_OPTIONAL_SECONDS = ("train_seconds", "wall_seconds", "images_per_second")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_result(result: dict[str, Any], path: Path | str) -> dict[str, Any]:
    """``result`` if it is a complete, valid run record; else a :class:`RunError` naming ``path``, the field
    and its value."""
    def bad(field: str, expected: str) -> RunError:
        value = repr(result[field]) if field in result else "missing"
        return RunError(f"{path}: field {field!r} is {value}, expected {expected}")

    epochs = result.get("epochs")
    if not _is_count(epochs) or epochs < 1:
        raise bad("epochs", "a whole number of epochs from 1")
    for field in _FRACTIONS + _OPTIONAL_FRACTIONS:
        value = result.get(field)
        if (value is not None or field in _FRACTIONS) and not (_is_number(value) and 0.0 <= value <= 1.0):
            raise bad(field, "an accuracy (a number in [0, 1])")
    for field in ("best_epoch", "val_epoch"):
        value = result.get(field)
        if (value is not None or field == "best_epoch") and not (_is_count(value) and 1 <= value <= epochs):
            raise bad(field, f"an epoch from 1 to {epochs}")
    for field in _OPTIONAL_SECONDS:
        if field in result and not (_is_number(result[field]) and result[field] >= 0):
            raise bad(field, "a number from 0")
    noise = result.get("noise_record")
    if noise is not None:
        rate = noise.get("realised_rate") if isinstance(noise, dict) else None
        if not (rate is None or _is_number(rate) and 0.0 <= rate <= 1.0):
            raise RunError(f"{path}: field 'noise_record.realised_rate' is {rate!r}, expected a rate in [0, 1]")
    names = result.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise bad("class_names", "a list of class names")
    return result


def _other_data(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether two configs record different data (only runs recorded since the fingerprint existed can say)."""
    a, b = old.get(DATA_FINGERPRINT), new.get(DATA_FINGERPRINT)
    return a is not None and b is not None and a != b


@dataclass(frozen=True)
class RunDir:
    """The files of one run directory, and what they say about the run."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __str__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def result_file(self) -> Path:
        return self.path / "result.json"

    @property
    def checkpoint_file(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def noise_file(self) -> Path:
        return self.path / "noise.json"

    @property
    def labels_file(self) -> Path:
        return self.path / "train_labels.txt"

    @property
    def val_split_file(self) -> Path:
        return self.path / "val_split.txt"

    @property
    def env_file(self) -> Path:
        return self.path / "env.json"

    def lock(self) -> ContextManager[None]:
        """This directory's inter-process lock (see :mod:`.lock`)."""
        return run_lock(self.path)

    def load_model(self, **kwargs: Any) -> Any:
        """The trained model (:func:`fer_bench.runs.model.load_trained`)."""
        from .model import load_trained

        return load_trained(self.path, **kwargs)

    def require(self, *files: str) -> "RunDir":
        """This directory, if it is a run directory holding ``files``; else an error naming what is missing."""
        if not self.config_file.is_file():
            raise RunError(f"{self.path} is not a run directory (no config.json)")
        for name in files:
            if not (self.path / name).is_file():
                extra = " (is the run finished?)" if name == "result.json" else ""
                raise RunError(f"{self.path} has no {name}{extra}")
        return self

    def config(self) -> dict[str, Any]:
        return _read_json(self.require().config_file)

    def result(self) -> dict[str, Any]:
        """The run's record, checked (:func:`check_result`): an unreadable or invalid one is a RunError naming
        the file and the field."""
        return check_result(_read_json(self.require("result.json").result_file), self.result_file)

    def result_problem(self) -> Optional[str]:
        """Why this directory holds no finished run (no, an unreadable or an invalid result.json); None if it does."""
        if not self.result_file.is_file():
            return f"{self.result_file} is missing"
        try:
            self.result()
        except RunError as exc:
            return str(exc)
        return None

    def finished(self) -> bool:
        """Whether this directory holds a finished run: the one definition that the engine, sweeps and reports use."""
        return self.result_problem() is None

    def recorded_hash(self) -> Optional[str]:
        """The config hash the saved config.json records (None without a readable one)."""
        try:
            value = _read_json(self.config_file).get("config_hash") if self.config_file.is_file() else None
        except RunError:
            return None
        return value if isinstance(value, str) else None

    def clear(self) -> list[Path]:
        """Remove everything an earlier run left here, before it is trained again; the removed paths.

        Not only the run's own files: anything derived from its model (a method's files, the user study's
        cache, tracker logs) would otherwise outlive it and be read as the new run's.
        """
        removed = []
        for path in sorted(self.path.iterdir()) if self.path.is_dir() else []:
            if path.name in KEPT_ON_RETRAIN:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
        return removed

    def held_out(self) -> set[str]:
        """The names of the training images the run held out as its noisy validation split (none without one)."""
        return set(self.val_split_file.read_text().split()) if self.val_split_file.is_file() else set()

    def epochs_done(self) -> int:
        lines = self.metrics_file.read_text().splitlines() if self.metrics_file.is_file() else []
        return max(0, len(lines) - 1)

    def state(self, config: dict[str, Any]) -> str:
        """``new``, ``partial (epoch k)``, ``finished`` or ``different config`` for a run with ``config``.

        ``config`` may lack the noisy labels' sha (only a run that loaded the data knows it);
        the saved one then stands in.
        """
        if not self.config_file.is_file():
            return NEW
        old = _read_json(self.config_file)
        if (config_hash(self._with_saved_sha(config, old)) != config_hash(as_recorded_today(old))
                or _other_data(old, config)):
            return DIFFERENT
        if self.finished():
            return FINISHED
        bad = "; result.json unreadable or invalid" if self.result_file.is_file() else ""
        return f"partial (epoch {self.epochs_done()}{bad})"

    @staticmethod
    def _with_saved_sha(config: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
        if config.get("noise", {}).get("label_file_sha256") is not None:
            return config
        sha = old.get("noise", {}).get("label_file_sha256")
        return {**config, "noise": {**config.get("noise", {}), "label_file_sha256": sha}}

    def check(self, config: dict[str, Any], force: bool = False) -> Optional[dict[str, Any]]:
        """The result of a finished run with this config, None if there is none (or ``force``); an unreadable
        or invalid result.json is none, so the engine writes it again (from the final checkpoint).

        A directory that holds a different config, or the same config on other images (both configs record
        a data fingerprint, and they differ), is an error, not something to overwrite; when the two differ
        in the data they read, the message says how to keep both.
        """
        if force or self.state(config) == NEW:
            return None
        old = _read_json(self.config_file)
        old = as_recorded_today(old)
        if config_hash(old) != config_hash(config):
            skip = ("config_hash", DATA_FINGERPRINT)
            diff = differences({k: v for k, v in old.items() if k not in skip},
                               {k: v for k, v in config.items() if k not in skip})
            raise RunError(self._different_message(old, config, diff))
        if _other_data(old, config):
            raise RunError(self._different_message(old, config, [
                f"other images: data fingerprint {old[DATA_FINGERPRINT]} -> {config[DATA_FINGERPRINT]}"]))
        if not self.finished():  # none yet, or an unreadable one: the engine (re)builds it
            return None
        result = self.result()
        result["already_done"] = True
        result["run_dir"] = str(self.path)  # where it is now: a copied run directory records where it was trained
        return result

    def _different_message(self, old: dict[str, Any], new: dict[str, Any], diff: list[str]) -> str:
        if old.get("root") != new.get("root"):
            # The data root is not part of a run's name, so the same command on two copies of a
            # dataset that differ meets here: say exactly how to keep both.
            where = {k: c.get("root") or "the default data root" for k, c in (("old", old), ("new", new))}
            other = f"{self._runs_root}-{Path(new.get('root') or 'default').name}"
            rest = "; ".join(d for d in diff if not d.startswith("root:"))
            return (f"{self.path} holds a run on the data in {where['old']}; this one reads {where['new']}"
                    f"{f' ({rest})' if rest else ''}. To keep both, give this one its own runs root: "
                    f"--out {other} (or --force to replace the old run)")
        renamed = self._name_today(old)
        if renamed is not None and old.get("profile") != new.get("profile"):
            return (f"{self.path} holds a {old.get('profile')} run, named when {old.get('profile')} was "
                    f"{old.get('dataset')}'s default profile; its name today is {renamed}: move it there to "
                    f"keep both, or use --force to replace it")
        if _other_data(old, new):
            return (f"{self.path} holds a run on the data in {new.get('root') or 'the default data root'} as it "
                    f"was then ({diff[0]}): the data changed since. To keep both, give this one its own runs "
                    f"root: --out {self._runs_root}-{Path(new.get('root') or 'default').name} "
                    f"(or --force to replace the old run)")
        return (f"{self.path} holds a run with a different config ({'; '.join(diff[:4])}); "
                f"use --force to replace it or --out for another runs root")

    def _name_today(self, old: dict[str, Any]) -> Optional[Path]:
        """Where the run this directory holds is named today, when that is elsewhere (a dataset's default
        profile changed since it was made); None when it is here or its config cannot say."""
        from .identity import RunId

        try:
            where = self._runs_root / RunId.from_config(old).name()
        except (KeyError, TypeError, ValueError):
            return None
        return where if where != self.path else None

    @property
    def _runs_root(self) -> Path:
        """The runs root this directory is named below (``<root>/<dataset>/<setting>/<variant>/seed<k>``)."""
        return self.path.parents[3] if len(self.path.parts) > 4 else self.path.parent
