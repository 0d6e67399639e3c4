"""One run's panel: what it is, how it was configured, what its noise was, and what it measured every epoch.

:func:`run_summary` is the line every run has in the report's index (the runs list, the compare pickers);
:func:`run_detail` is what its panel shows, loaded only when opened: its configuration beside its method's
default recipe (:mod:`.defaults`), its environment, its noise record (nominal and realised rate, the
per-class flip table, the transition matrix), every column of its ``metrics.csv`` grouped into charts
(:func:`curve_groups`: columns a later version adds, such as the ``mech_*`` mechanism diagnostics, appear
without a change here), its final confusion matrix and the command that trains it again (:mod:`.reproduce`).
"""

from __future__ import annotations

import csv
import json
import math
import re
from typing import Any, Callable, Optional

from ...runs import RunRecord
from ...runs.record import METRICS, STATS, unpredicted_classes
from ..style import block_title, method_color, method_title
from .defaults import default_recipe
from .figures import hex_color
from .overview import group_id
from .reproduce import run_command
from .tree import Tree

_MECH_PARTS = re.compile(r"^mech_(?P<name>.+?)_(?P<part>clean_among_.+|clean|noisy|agree|auroc|share|precision|recall)$")


def _num(value: Any, digits: int = 6) -> Optional[float]:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(value) or math.isinf(value):
        return None
    return float(f"{value:.{digits}g}")


def _percent(value: Any) -> Optional[float]:
    value = _num(value)
    return None if value is None else round(100.0 * value, 4)


def run_summary(tree: Tree, record: RunRecord, row: Any, file: str) -> dict[str, Any]:
    """The run's entry in the report's index: identity, names and colour from the style module, statistics."""
    result = record.result
    stats = {f"{m}_{s}": _num(getattr(row, f"{m}_{s}"), 6) for m in METRICS for s in STATS}
    return {
        "key": tree.key(record), "file": file, "dataset": row.dataset, "setting": row.setting,
        "setting_title": block_title(row.noise, float(row.rate), row.setting), "noise": row.noise,
        "rate": _num(row.rate), "method": row.method, "variant": row.variant, "run_variant": row.run_variant,
        "title": method_title(row.variant), "color": hex_color(method_color(row.variant)),
        "is_default": bool(row.is_default), "seed": int(row.seed),
        "noise_seed": None if row.noise_seed is None or (isinstance(row.noise_seed, float) and math.isnan(row.noise_seed))
        else int(row.noise_seed),
        "group": group_id(row.dataset, row.setting, row.variant), "epochs": int(result.get("epochs", 0)),
        "realised_rate": _num(record.realised_rate), "train_seconds": _num(result.get("train_seconds"), 4),
        "device": result.get("device"), "stats": stats,
    }


def read_metrics(path: Any) -> dict[str, list[Optional[float]]]:
    """``metrics.csv`` as columns of numbers (None for an empty or non-numeric entry); empty without the file."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}
    columns: dict[str, list[Optional[float]]] = {}
    for row in rows:
        for key, value in row.items():
            if key is None:
                continue
            columns.setdefault(key, []).append(_num(value))
    return columns


# (title, which columns, scale to the unit shown, unit); the first that takes a column gets it
_GROUPS: list[tuple[str, Callable[[str], bool], float, str]] = [
    ("accuracy", lambda c: c.endswith("_acc") or "_acc_" in c, 100.0, "%"),
    ("loss", lambda c: "loss" in c, 1.0, ""),
    ("memorisation (% of training images)",
     lambda c: c.startswith(("flipped_", "unflipped_", "relabel_")), 100.0, "%"),
    ("learning rate", lambda c: c == "lr", 1.0, ""),
    ("seconds per epoch", lambda c: c == "train_seconds", 1.0, "s"),
    ("images per second", lambda c: c == "images_per_s", 1.0, ""),
    ("threads", lambda c: c.endswith("threads"), 1.0, ""),
]


def curve_groups(columns: list[str]) -> list[dict[str, Any]]:
    """The charts of a run's ``metrics.csv``: every column but ``epoch`` in exactly one, known ones grouped
    (accuracies, losses, memorisation, ...), each ``mech_<name>_<part>`` family together, any other column
    on its own. ``scale`` turns the recorded fraction into the unit shown."""
    groups: dict[str, dict[str, Any]] = {}
    for column in columns:
        if column == "epoch":
            continue
        if column.startswith("mech_"):
            mech = _MECH_PARTS.match(column)
            title, scale, unit = f"mechanism: {mech.group('name') if mech else column.removeprefix('mech_')}", 1.0, ""
        else:
            for title, takes, scale, unit in _GROUPS:
                if takes(column):
                    break
            else:
                title, scale, unit = column, 1.0, ""
        groups.setdefault(title, {"title": title, "scale": scale, "unit": unit, "columns": []})["columns"].append(column)
    known = [title for title, _, _, _ in _GROUPS]

    def rank(title: str) -> tuple[int, int]:  # accuracy, loss, memorisation, mechanism, the method's own, the rest
        if title in known[:3]:
            return 0, known.index(title)
        if title.startswith("mechanism: "):
            return 1, 0
        return (3, known.index(title)) if title in known else (2, 0)

    return sorted(groups.values(), key=lambda g: rank(g["title"]))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def config_sections(config: dict[str, Any]) -> tuple[list[dict[str, Any]], Optional[str]]:
    """The configuration as sections of rows ``{key, value, default, differs, set}``; recipe keys and
    hyper-parameters beside today's default (:func:`~.defaults.default_recipe`), and why there is none."""
    defaults, why = default_recipe(config)
    overrides = config.get("overrides") or {}
    nested = ("noise", "recipe", "hparams", "overrides", "data_options")
    run = [{"key": k, "value": _text(v)} for k, v in config.items() if k not in nested]
    run += [{"key": f"data_options.{k}", "value": _text(v)} for k, v in (config.get("data_options") or {}).items()]
    sections = [{"title": "run", "rows": run},
                {"title": "noise", "rows": [{"key": k, "value": _text(v)} for k, v in (config.get("noise") or {}).items()]}]
    for part, title in (("recipe", "recipe"), ("hparams", "hyper-parameters")):
        rows = []
        for key, value in (config.get(part) or {}).items():
            row: dict[str, Any] = {"key": key, "value": _text(value), "set": key in overrides}
            if defaults is not None:
                known = key in defaults[part]
                row["default"] = _text(defaults[part][key]) if known else "(not a key today)"
                row["differs"] = not known or defaults[part][key] != value
            rows.append(row)
        if defaults is not None:  # keys today's recipe has and the run's lacks
            rows += [{"key": k, "value": "(not recorded)", "default": _text(v), "differs": True, "set": False}
                     for k, v in defaults[part].items() if k not in (config.get(part) or {})]
        sections.append({"title": title, "rows": rows, "compared": defaults is not None})
    return sections, why


def _flatten(value: Any, prefix: str = "") -> list[dict[str, str]]:
    if isinstance(value, dict) and value:
        return [row for k, v in value.items() for row in _flatten(v, f"{prefix}{k}.")]
    return [{"key": prefix.rstrip("."), "value": _text(value)}]


def noise_panel(record: RunRecord) -> Optional[dict[str, Any]]:
    """The noise record (the run's ``noise.json``, else the copy in its result): rates, flip table, matrix."""
    noise: Any = None
    try:
        noise = json.loads(record.dir.noise_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        noise = None
    if not isinstance(noise, dict):
        noise = record.result.get("noise_record")
    if not isinstance(noise, dict):
        return None
    names = list(noise.get("class_names") or [])
    counts, rates = noise.get("class_counts") or {}, noise.get("per_class_rate") or {}
    noisy, wrong = noise.get("noisy_counts") or {}, noise.get("per_label_noise") or {}
    table = [{"class": c, "count": counts.get(c), "flip_rate": _num(rates.get(c), 4),
              "flipped": None if counts.get(c) is None or rates.get(c) is None else round(counts[c] * rates[c]),
              "noisy_count": noisy.get(c), "wrong_share": _num(wrong.get(c), 4)} for c in names]
    return {"model": noise.get("model"), "mode": noise.get("mode"), "rate": noise.get("rate"),
            "realised_rate": _num(noise.get("realised_rate"), 6), "n": noise.get("n"),
            "n_flipped": noise.get("n_flipped"), "noise_seed": noise.get("noise_seed"),
            "source": noise.get("source"), "sha256": noise.get("label_file_sha256"), "class_names": names,
            "table": table, "transition": [[_num(v, 4) for v in row] for row in noise.get("transition") or []],
            "by_ambiguity": noise.get("by_ambiguity")}


def _result_rows(result: dict[str, Any]) -> list[dict[str, str]]:
    skip = {"noise_record", "confusion_last", "class_names", "noise", "method", "dataset", "seed", "protocol",
            "profile", "config_hash", "run_dir"}
    rows = []
    for key, value in result.items():
        if key in skip:
            continue
        if key in {f"{m}_{s}" for m in METRICS for s in STATS} | {"val_acc_best"} and value is not None:
            rows.append({"key": key, "value": f"{100 * value:.2f} %"})
        else:
            rows += _flatten(value, f"{key}.") if isinstance(value, dict) else [{"key": key, "value": _text(value)}]
    lost = unpredicted_classes(result)
    if lost:
        rows.append({"key": "never predicted on the test set (last epoch)", "value": ", ".join(lost)})
    return rows


def run_detail(tree: Tree, record: RunRecord) -> dict[str, Any]:
    """Everything a run's panel shows (JSON-ready)."""
    config, result = record.config, record.result
    sections, why = config_sections(config)
    env: list[dict[str, str]] = []
    try:
        env = _flatten(json.loads(record.dir.env_file.read_text()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        env = []
    metrics = read_metrics(record.dir.metrics_file)
    confusion = None
    if result.get("confusion_last") and result.get("class_names"):
        confusion = {"names": list(result["class_names"]), "matrix": result["confusion_last"]}
    files = sorted(p.name for p in record.dir.path.iterdir() if p.is_file() and not p.name.startswith("."))
    return {
        "key": tree.key(record), "title": record.id.title(), "name": record.id.name().as_posix(),
        "command": run_command(config), "config": sections, "config_note": why, "env": env,
        "result": _result_rows(result), "noise": noise_panel(record),
        "metrics": {"columns": metrics, "groups": curve_groups(list(metrics))}, "confusion": confusion,
        "files": files,
    }
