"""Judge the candidate profiles of the search by CRITERIA.md, from their run records.

    python results/synthfer/protocol/evaluate.py [RUNS] [--cost COST.json] [--out criteria.md]

RUNS (default results/synthfer/protocol/runs) holds one directory per candidate (search.sh). For each,
the criteria are read from the last epoch of each run's metrics.csv (the mechanism diagnostics, the
memorisation shares) and from its result.json (the Baseline's accuracies), in both noise settings
(symmetric and asymmetric 30%, seed 0); a criterion without its runs yet is "pending". The cost per
run is taken from COST.json (cost.sh, measured on an otherwise idle machine); without it, the runs' own
training seconds are shown and marked as measured beside other work.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any, Optional

from fer_bench.runs import RunError, collect

SETTINGS = ("sym-0.3", "asym-0.3")
OFFICIAL_SCN_START = 9 / 70  # SCN relabels from epoch 10 of 70: after 9 epochs


def last_row(run_dir: Path) -> dict[str, float]:
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return {k: float(v) for k, v in rows[-1].items() if v not in ("", None)} if rows else {}


def candidate_runs(root: Path) -> dict[tuple[str, str], Any]:
    """(setting, method) -> the run's record, of the seed-0 runs below ``root``."""
    found = {}
    for record in collect(root, warn=lambda message: print(f"warning: {message}", file=sys.stderr)):
        if record.id.seed == 0:
            found[(record.setting, record.id.method)] = record
    return found


def judge(root: Path) -> dict[str, Any]:
    runs = candidate_runs(root)

    def row(setting: str, method: str) -> Optional[dict[str, float]]:
        record = runs.get((setting, method))
        return last_row(record.dir.path) if record else None

    out: dict[str, Any] = {}

    def per_setting(name: str, method: str, value: Any, passes: Any) -> None:
        values, verdicts = [], []
        for setting in SETTINGS:
            r = row(setting, method)
            v = value(r, setting) if r is not None else None
            values.append(v)
            verdicts.append(None if v is None else bool(passes(v)))
        out[name] = (values, None if None in verdicts else all(verdicts))

    per_setting("L1 memory corrects", "lanet", lambda r, s: r.get("mech_memory_clean_among_neighbours"),
                lambda v: v > 0.5)
    per_setting("L2 contrastive engages", "lanet", lambda r, s: r.get("mech_below_delta"), lambda v: v < 0.5)
    per_setting("L3 start forgotten", "lanet", lambda r, s: r.get("mech_start_mass"), lambda v: v < 0.01)
    per_setting("L4 heatmaps >= 28", "lanet", lambda r, s: r.get("mech_heatmap_side"), lambda v: v >= 28)

    def eac_gap(r: dict[str, float], setting: str) -> Optional[float]:
        base = row(setting, "baseline")
        return None if base is None else r["unflipped_correct"] - base["unflipped_correct"]

    per_setting("E1 EAC fits unflipped", "eac", eac_gap, lambda v: v >= -0.05)
    per_setting("E2 CAMs >= 7", "eac", lambda r, s: r.get("mech_cam_side"), lambda v: v >= 7)

    def scn_start(r: dict[str, float], setting: str) -> Optional[float]:
        return r.get("mech_relabel_start")

    epochs = {rec.config["recipe"]["epochs"] for rec in runs.values()} or {15}
    per_setting("S1 relabel start", "scn", scn_start,
                lambda v: abs(v - OFFICIAL_SCN_START) <= 1 / max(epochs))
    for probe in ("relabelled", "low_importance"):
        values = []
        for setting in SETTINGS:
            r = row(setting, "scn")
            values.append(None if r is None or f"mech_{probe}_precision" not in r else
                          (r[f"mech_{probe}_precision"], r[f"mech_{probe}_recall"]))
        out[f"S2 SCN {probe} precision/recall"] = (values, "reported")
    per_setting("R1 RUL uncertainty AUROC", "rul", lambda r, s: r.get("mech_uncertainty_auroc"), lambda v: v >= 0.6)

    clean = runs.get(("clean", "baseline"))
    sym = runs.get(("sym-0.3", "baseline"))
    p1 = clean.result["acc_last"] if clean else None
    out["P1 clean Baseline 80-95%"] = ([p1], None if p1 is None else 0.80 <= p1 <= 0.95)
    p2 = (clean.result["acc_last"] - sym.result["acc_last"]) if clean and sym else None
    out["P2 sym30 costs >= 10 pts"] = ([p2], None if p2 is None else p2 >= 0.10)
    out["_seconds"] = {f"{s}/{m}": rec.result.get("train_seconds") for (s, m), rec in runs.items()}
    return out


def fmt(v: Any) -> str:
    if v is None:
        return "pending"
    if isinstance(v, tuple):
        return "/".join(fmt(x) for x in v)
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="?", default="results/synthfer/protocol/runs")
    ap.add_argument("--cost", help="the per-run cost measured by cost.sh (JSON)")
    ap.add_argument("--out", help="also write the table here (Markdown)")
    args = ap.parse_args()
    root = Path(args.runs)
    candidates = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not candidates:
        print(f"no candidate directories in {root}", file=sys.stderr)
        return 2
    cost = json.loads(Path(args.cost).read_text()) if args.cost else {}
    judged = {}
    for name in candidates:
        try:
            judged[name] = judge(root / name)
        except RunError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
    criteria = [k for k in next(iter(judged.values())) if not k.startswith("_")]
    lines = ["| criterion (sym30 / asym30) | " + " | ".join(judged) + " |",
             "|---|" + "---|" * len(judged)]
    for c in criteria:
        cells = []
        for name in judged:
            values, verdict = judged[name][c]
            mark = {True: "pass", False: "FAIL", None: "pending", "reported": ""}[verdict]
            cells.append(f"{' / '.join(fmt(v) for v in values)} {mark}".strip())
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    passes = []
    for name in judged:
        verdicts = [judged[name][c][1] for c in criteria if judged[name][c][1] != "reported"]
        passes.append(f"{sum(v is True for v in verdicts)} of {len(verdicts)}"
                      + (f" ({sum(v is None for v in verdicts)} pending)" if None in verdicts else ""))
    lines.append("| **criteria passed** | " + " | ".join(passes) + " |")
    costs = []
    for name in judged:
        if name in cost:
            costs.append(f"{cost[name]['seconds_per_run']:.0f} s (idle machine)")
        else:
            secs = [s for s in judged[name]["_seconds"].values() if s]
            costs.append(f"{sum(secs) / len(secs):.0f} s (beside other work)" if secs else "pending")
    lines.append("| cost per run, mean of its runs | " + " | ".join(costs) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
