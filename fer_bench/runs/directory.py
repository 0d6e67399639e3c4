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

For a run about to start, a directory is ``new`` (no config), ``partial (epoch k)``,
``finished``, ``finished, older recipe`` (a finished run of the same name whose recipe or
hyper-parameters the code has changed since) or holds a ``different config``;
:meth:`RunDir.finished_result` turns the last two into an error that says how to keep both runs.
``finished`` means one thing everywhere (engine, sweep, reports): ``result.json`` holds a
complete, valid record (:meth:`RunDir.result`). Every saved config is read through
:func:`~fer_bench.runs.config.migrate`.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager, Optional

from .config import DATA_FINGERPRINT, NOT_IDENTITY, config_hash, differences, migrate
from .errors import RunError
from .lock import run_lock

NEW, FINISHED, OLDER_RECIPE, DIFFERENT = "new", "finished", "finished, older recipe", "different config"
SWEEP_LOG = "log.txt"  # a sweep worker's output, appended to by every attempt at the run
# What a retrain (--force) keeps of an earlier run's directory: the lock it holds, and the log a sweep
# worker has already opened before the run starts. Everything else was the old run's.
KEPT_ON_RETRAIN = (".lock", SWEEP_LOG)
# What the code decides for a run rather than its command (whose choices are in the run's name).
_CODE_DECIDES = ("recipe", "hparams")


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
        """The saved config, in today's schema (:func:`~fer_bench.runs.config.migrate`)."""
        return migrate(_read_json(self.require().config_file))

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
        """``new``, ``partial (epoch k)``, ``finished``, ``finished, older recipe`` or ``different config`` for a
        run with ``config``.

        ``config`` may lack the noisy labels' sha (only a run that loaded the data knows it);
        the saved one then stands in.
        """
        if not self.config_file.is_file():
            return NEW
        old = migrate(_read_json(self.config_file))
        config = self._with_saved_sha(config, old)
        if config_hash(config) != config_hash(old) or _other_data(old, config):
            return OLDER_RECIPE if self.finished() and _only_code_differs(old, config) else DIFFERENT
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

    def finished_result(self, config: dict[str, Any], force: bool = False) -> Optional[dict[str, Any]]:
        """The result of the finished run ``config`` describes, when this directory holds it; None when there
        is none to reuse (no run yet, an interrupted one, an unreadable or invalid result.json, which the
        engine writes again from the final checkpoint; or ``force``).

        A directory that holds another run of this name (a different config, a finished run of an older
        recipe, or the same config on other images: both configs record a data fingerprint, and they
        differ) is a RunError, never something to overwrite; the message says how to keep both.
        """
        state = NEW if force else self.state(config)
        if state in (DIFFERENT, OLDER_RECIPE):
            raise RunError(self._different_message(migrate(_read_json(self.config_file)), config, state))
        if state != FINISHED:
            return None
        result = self.result()
        result["already_done"] = True
        result["run_dir"] = str(self.path)  # where it is now: a copied run directory records where it was trained
        return result

    def _different_message(self, old: dict[str, Any], new: dict[str, Any], state: str) -> str:
        skip = ("config_hash", "schema_version", DATA_FINGERPRINT)
        diff = differences({k: v for k, v in old.items() if k not in skip},
                           {k: v for k, v in new.items() if k not in skip})
        if _other_data(old, new):
            diff.append(f"other images: data fingerprint {old[DATA_FINGERPRINT]} -> {new[DATA_FINGERPRINT]}")
        other_root = f"--out {self._runs_root}-{Path(new.get('root') or 'default').name}"
        if old.get("root") != new.get("root"):
            # The data root is not part of a run's name, so the same command on two copies of a
            # dataset that differ meets here: say exactly how to keep both.
            where = {k: c.get("root") or "the default data root" for k, c in (("old", old), ("new", new))}
            rest = "; ".join(d for d in diff if not d.startswith("root:"))
            return (f"{self.path} holds a run on the data in {where['old']}; this one reads {where['new']}"
                    f"{f' ({rest})' if rest else ''}. To keep both, give this one its own runs root: "
                    f"{other_root} (or --force to replace the old run)")
        if old.get("profile") != new.get("profile"):
            # One name, two profiles: each run's name leaves out its dataset's default profile of its day.
            return (f"{self.path} holds a {old.get('profile')} run, made when {old.get('profile')} was "
                    f"{old.get('dataset')}'s default profile (this run's is {new.get('profile')}); to keep both, "
                    f"give this one its own runs root ({other_root}), or use --force to replace it")
        if _other_data(old, new):
            return (f"{self.path} holds a run on the data in {new.get('root') or 'the default data root'} as it "
                    f"was then ({diff[-1]}): the data changed since. To keep both, give this one its own runs "
                    f"root: {other_root} (or --force to replace the old run)")
        if state == OLDER_RECIPE:
            return (f"{self.path} holds a finished run of an older recipe, a different config "
                    f"({'; '.join(diff[:4])}); --force trains it again with today's, or {other_root} keeps both")
        return (f"{self.path} holds a run with a different config ({'; '.join(diff[:4])}); "
                f"use --force to replace it or --out for another runs root")

    @property
    def _runs_root(self) -> Path:
        """The runs root this directory is named below (``<root>/<dataset>/<setting>/<variant>/seed<k>``)."""
        return self.path.parents[3] if len(self.path.parts) > 4 else self.path.parent


def _only_code_differs(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether two configs of one run name differ only in what the code decides (recipe, hyper-parameters):
    the same command, run by another version of the suite."""
    skip = (*NOT_IDENTITY, *_CODE_DECIDES)
    return ({k: v for k, v in old.items() if k not in skip} == {k: v for k, v in new.items() if k not in skip}
            and not _other_data(old, new))
