"""The ``fer-bench run`` command that trains a run again, from its saved config alone.

Every choice the run's name depends on is spelled out (the profile too, since a dataset's default
profile may change), each ``--set`` value written so that ``fer-bench run`` reads it back as the same
value (:func:`fer_bench.engine.recipe.parse_value`), and every argument quoted for a POSIX shell.
"""

from __future__ import annotations

import ast
import shlex
from typing import Any


def set_value(value: Any) -> str:
    """``value`` as ``--set key=VALUE`` writes it: ``true``, ``none``, ``0.0002``, ``[1.0, 1.0]``, a bare word."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, str):
        plain = value.strip().lower() not in ("true", "false", "none", "null")
        try:
            ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value if plain else repr(value)
        return repr(value)  # "0.5" as a string, not the number
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def _pairs(option: str, values: dict[str, Any]) -> list[str]:
    return [x for k, v in sorted(values.items()) for x in (option, f"{k}={set_value(v)}")]


def run_command(config: dict[str, Any]) -> str:
    """The shell command that trains the run of ``config`` (a saved ``config.json``) again."""
    noise = config.get("noise") or {}
    seed = int(config.get("seed", 0))
    args = ["fer-bench", "run", "--method", str(config["method"]), "--dataset", str(config["dataset"])]
    args += _pairs("--data", dict(config.get("data_options") or {}))
    if config.get("root"):
        args += ["--root", str(config["root"])]
    model = noise.get("model", "none")
    if model == "file":
        args += ["--noise-file", str(noise.get("file") or "LABELS.txt")]
    elif model != "none":
        args += ["--noise", str(model), "--rate", f"{float(noise.get('rate', 0.0)):g}"]
        if noise.get("exact"):
            args.append("--exact")
        if noise.get("confusion"):
            args += ["--confusion", str(noise["confusion"])]
    if model != "file" and noise.get("noise_seed") is not None and int(noise["noise_seed"]) != seed:
        args += ["--noise-seed", str(int(noise["noise_seed"]))]
    args += ["--seed", str(seed)]
    if config.get("protocol", "official") != "official":
        args += ["--protocol", str(config["protocol"])]
    if config.get("profile"):
        args += ["--profile", str(config["profile"])]
    args += _pairs("--set", dict(config.get("overrides") or {}))
    if int(config.get("processes", 1)) > 1:
        args += ["--nproc", str(int(config["processes"]))] + (["--sync-bn"] if config.get("sync_bn") else [])
    return shlex.join(args)
