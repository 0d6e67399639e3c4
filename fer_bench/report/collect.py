"""Finished runs as one data frame, and their mean ± std over seeds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import pandas as pd

STATS = ("last", "best", "last5")
METRICS = ("acc", "mean_class_acc")
# A setting is what a table row block stands for; a variant is a method plus whatever else sets its
# runs apart (protocol, profile, overrides), named as in the run directory.
GROUP = ["dataset", "noise", "rate", "setting", "method", "variant"]


def setting_name(noise: str, rate: float, exact: bool = False) -> str:
    if noise in ("none", "file") and rate == 0:
        return "clean" if noise == "none" else "file"
    return f"{noise}{'-exact' if exact else ''}-{rate:g}"


def variant_name(method: str, overrides: dict) -> str:
    return "+".join([method] + [f"{k}={v}" for k, v in sorted(overrides.items())])


def collect_runs(results: Path) -> pd.DataFrame:
    """One row per finished run under ``results`` (any depth): its identity and every accuracy statistic.

    Runs still in progress (no ``result.json``) are left out. Accuracies are in percent.
    """
    rows = []
    for result_file in sorted(Path(results).rglob("result.json")):
        run_dir = result_file.parent
        try:
            result = json.loads(result_file.read_text())
            config = json.loads((run_dir / "config.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{run_dir}: unreadable run record ({exc})") from None
        noise = config["noise"]
        row = {
            "dataset": config["dataset"] + "".join(f"+{k}={v}" for k, v in sorted(config["data_options"].items())),
            "noise": noise["model"], "rate": float(noise["rate"]),
            "setting": setting_name(noise["model"], float(noise["rate"]), noise.get("exact", False)),
            "method": config["method"], "variant": run_dir.parent.name,
            "protocol": config["protocol"], "profile": config["profile"],
            "seed": config["seed"], "noise_seed": noise.get("noise_seed"), "epochs": result["epochs"],
            "realised_rate": result["noise_record"].get("realised_rate") if result.get("noise_record") else None,
            "train_seconds": result.get("train_seconds"), "run_dir": str(run_dir),
        }
        for metric in METRICS:
            for stat in STATS:
                row[f"{metric}_{stat}"] = 100.0 * result[f"{metric}_{stat}"]
        rows.append(row)
    columns = GROUP + ["protocol", "profile", "seed", "noise_seed", "epochs", "realised_rate", "train_seconds",
                       "run_dir"] + [f"{m}_{s}" for m in METRICS for s in STATS]
    return pd.DataFrame(rows, columns=columns)


def aggregate(runs: pd.DataFrame, stat: str = "last", metric: str = "acc",
              methods: Optional[list[str]] = None) -> pd.DataFrame:
    """Mean, sample std (ddof=1; NaN for one seed) and count per setting and variant.

    ``noise_seeds_varied`` tells whether the noisy labels differed between the
    seeds (the default: the noise seed follows the training seed); never for clean labels.
    """
    if stat not in STATS or metric not in METRICS:
        raise ValueError(f"--stat must be one of {', '.join(STATS)} and --metric one of {', '.join(METRICS)}")
    if runs.empty:
        raise ValueError("no finished runs (no result.json) found")
    if methods:  # a method's default runs carry its plain name; a variant is named in full
        runs = runs[runs["variant"].isin(methods)]
    column = f"{metric}_{stat}"
    grouped = runs.groupby(GROUP, sort=False)
    out = grouped[column].agg(mean="mean", std="std", n="count").reset_index()
    out["noise_seeds_varied"] = (grouped["noise_seed"].nunique().values > 1) & (out["noise"] != "none").values
    out["protocol"] = grouped["protocol"].first().values
    out["profile"] = grouped["profile"].first().values
    return out
