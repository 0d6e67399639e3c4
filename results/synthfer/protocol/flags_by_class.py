"""Each run's noise flags per label at its last epoch, for runs recorded before ``flagged_by_class``.

A run made since records, for each noise flag its method reports (Co-teaching's dropped samples, NLA's
off-label flag, ...), the share of each class's training images the flag takes at the last epoch
(``result.json``'s ``flagged_by_class``). This script gives the same numbers for older runs, from the
per-sample trace their ``checkpoint.pt`` keeps: it rebuilds the method from the run's config, loads the
trace and asks the method's own ``mechanism()``, which the engine's ``flags_by_class`` then counts, as a
run does. Checkpoints are not committed, so it reads a local run tree (``make-cpu-face-56.sh`` makes one).
A method that keeps its flags out of its checkpoint (DivideMix recomputes its division every epoch) and a
run that rewrote its labels (SCN) are listed as such.

    FER_BENCH_DATA=datasets python results/synthfer/protocol/flags_by_class.py results/synthfer/cpu-face-56/runs coteaching,nla
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from fer_bench.datasets.split import training_view
from fer_bench.engine.build import build_context
from fer_bench.engine.data import run_dataset
from fer_bench.engine.inference import load_checkpoint
from fer_bench.engine.mechanism import flags_by_class
from fer_bench.registry import METHODS
from fer_bench.runs import RunRecord, collect, whole_classes_flagged


def from_checkpoint(record: RunRecord) -> dict[str, dict[str, float]] | str:
    """The run's flags per label, or why they cannot be had."""
    if "relabel" in record.result:
        return "rewrote its training labels: the checkpoint no longer holds the noisy ones"
    if not record.dir.checkpoint_file.is_file():
        return "no checkpoint"
    config, cpu = record.config, torch.device("cpu")
    dataset = run_dataset(config, None, progress=False)
    held_out = record.dir.held_out()
    view = training_view(dataset, np.array([i for i, n in enumerate(dataset.train.names) if n not in held_out]))
    ckpt = load_checkpoint(record.dir.checkpoint_file, cpu, "train the run again")
    noisy = ckpt["train_labels"].numpy()
    cls = METHODS.get(config["method"])
    method = cls(build_context(cls, config["recipe"], view, noisy, cpu, training=False), config["hparams"])
    method.load_extra_state(ckpt["method"])
    found = flags_by_class(method.mechanism(), noisy, list(dataset.class_names))
    return found or "keeps no noise flag in its checkpoint"


def main(root: str, methods: str) -> None:
    wanted = methods.split(",")
    for record in sorted(collect(Path(root)), key=lambda r: (r.setting, r.id.method, r.id.seed)):
        if record.id.method not in wanted:
            continue
        found = record.result.get("flagged_by_class")
        source = "result.json" if found is not None else "checkpoint"
        found = found if found is not None else from_checkpoint(record)
        print(f"{record.setting} {record.id.variant} seed {record.id.seed} ({source}):")
        if isinstance(found, str):
            print(f"  {found}")
            continue
        for name, shares in found.items():
            print(f"  {name}: " + ", ".join(f"{c} {s:.2f}" for c, s in shares.items()))
        whole = whole_classes_flagged({"flagged_by_class": found})
        print(f"  taken (nearly) whole: {'; '.join(whole) if whole else 'no class'}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
