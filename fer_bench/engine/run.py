"""One run, start to finish: :func:`main` runs (or resumes, or finds finished) the run a spec names.

Its steps, each a function below: resolve the spec (:mod:`.spec`) and join the processes that train
it; load the data and make the noisy labels (:mod:`.data`); return a finished run of this config,
or build what the run trains with (:mod:`.build`); then, under the run directory's lock, write the
run's records, resume from its checkpoint, train the epochs (:mod:`.loop`), evaluating each on the
clean test set (:mod:`.inference`) and saving a checkpoint, and finish with ``result.json``, the
done marker. A :class:`~fer_bench.methods.Method` supplies the model, the loss and optional hooks;
the engine knows no method by name. The same command resumes an interrupted run and, on a CPU,
ends with the numbers of an uninterrupted one (see :mod:`.loop`).
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Optional

import numpy as np
import torch
from tqdm import tqdm

from ..atomic import remove_stale_temporaries, save_torch, write_csv, write_json, write_text
from ..datasets.split import ValidationSplit, split_file_text, training_view
from ..noise.files import label_file_text
from ..runs import RunDir, RunError
from ..tracking import open_tracker
from . import distributed, mechanism
from .build import Training, build_training
from .data import RunData, draw_split, images_on, load_data
from .distributed import World
from .environment import environment_record
from .inference import TrainPass, check_checkpoint_owner, evaluate, load_checkpoint, memorisation
from .loop import CachedBatches, train_one_epoch
from .metrics import accuracy, mean_class_accuracy, memorisation_subset, relabel_summary, summarise_epochs
from .spec import ResolvedRun, RunSpec, check_world, resolve, select_device

RESTART = "the same command with --force trains this run again from scratch"
# What an epoch's row keeps for the checkpoint and result.json but metrics.csv, one number a column, leaves out.
NOT_IN_CSV = ("confusion", "flagged_by_class")


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says how far the saved progress goes."""


@dataclass
class Progress:
    """How far training has come: the epochs done, their metrics rows (on rank 0) and their wall time."""

    epoch: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0


def main(spec: RunSpec) -> dict[str, Any]:
    """Run (or resume, or find finished) one training run and return its result record.

    Everything that can be checked is checked before the run directory is touched; the directory's
    lock is taken just before the first write. Raises :class:`~fer_bench.runs.RunBusy` if another
    process is running it. Under torchrun every rank calls this; rank 0 alone checks, locks and
    writes the run directory, and tells the others what it found (:func:`.distributed.on_main`).
    """
    run, world = join_processes(resolve(spec))
    data = load_data(run, world)
    run_dir = RunDir(run.run_dir)
    # Read before any rank can write config.json: the hash the saved config.json records for this same run,
    # which its checkpoint carries (a config.json an older fer-bench wrote may hold another hash than today's).
    owners = {data.config["config_hash"], run_dir.recorded_hash() or data.config["config_hash"]}
    done = distributed.on_main(world, lambda: run_dir.finished_result(data.config, run.spec.force))
    if done:
        return done
    split = draw_split(run, data.train_labels)
    # the method sees only the images it trains on: its memories are sized to them
    setup = build_training(run, training_view(data.dataset, split.keep), data.train_labels[split.keep], world)
    with ExitStack() as held:  # rank 0 holds the lock for all ranks; RunBusy is raised on every rank
        def lock_and_look() -> Optional[dict[str, Any]]:
            held.enter_context(run_dir.lock())
            return run_dir.finished_result(data.config, run.spec.force)  # finished meanwhile by another process?

        done = distributed.on_main(world, lock_and_look)
        return done or train(run, data, setup, split, owners, world)


def join_processes(run: ResolvedRun) -> tuple[ResolvedRun, World]:
    """The processes that train the run: this one alone, or torchrun's ranks (the run then records their count)."""
    spec = run.spec
    device_type = select_device(spec.device).type
    if spec.sync_bn and device_type != "cuda":
        raise RunError("--sync-bn needs CUDA devices: torch's SyncBatchNorm does not run on the CPU")
    world = distributed.init(device_type)
    check_world(run.recipe, world)
    if world.distributed:
        run = replace(run, spec=replace(spec, progress=spec.progress and world.is_main, processes=world.size))
    return run, world


def train(run: ResolvedRun, data: RunData, setup: Training, split: ValidationSplit, owners: set[str],
          world: World) -> dict[str, Any]:
    """The run proper, under its directory's lock: records, resume, the epochs, the result."""
    run_dir = RunDir(run.run_dir)
    if world.is_main:  # only rank 0 writes the run directory
        write_records(run, run_dir, data, split, setup.device, world)
    distributed.barrier(world)
    progress = resume(run_dir, setup, owners, world)
    train_epochs(run, run_dir, data, setup, split, progress, world)
    if not world.is_main:
        distributed.barrier(world)  # rank 0 writes result.json
        return json.loads(run_dir.result_file.read_text())
    result = finish(run, run_dir, data, setup, split, progress)
    distributed.barrier(world)
    return result


def write_records(run: ResolvedRun, run_dir: RunDir, data: RunData, split: ValidationSplit,
                  device: torch.device, world: World) -> None:
    """The run's config, noise record, noisy labels, validation split and environment, before training."""
    if run.spec.force:
        run_dir.clear()  # the old run's files and everything derived from its model (user study, a method's files)
    elif run_dir.result_file.is_file():  # an unreadable or invalid record is no finished run: build it again
        how = "from its last checkpoint" if run_dir.checkpoint_file.is_file() else "by training the run"
        print(f"{run_dir.result_problem()}; writing it again {how}", file=sys.stderr, flush=True)
    run_dir.path.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(run_dir.path)  # left by a killed process; this one holds the lock
    dataset = data.dataset
    split_text = split_file_text([dataset.train.names[i] for i in split.held_out]) if split else None
    # A resumed run must hold out the images it held out before (the split is drawn again, not read).
    if (split_text is not None and run_dir.checkpoint_file.is_file() and run_dir.val_split_file.is_file()
            and run_dir.val_split_file.read_text() != split_text):
        raise RunError(f"{run_dir.val_split_file} records another validation split than this run draws; {RESTART}")
    note = run.mapping_note()
    if note:
        print(note, file=sys.stderr, flush=True)
    write_json(run_dir.config_file, data.config)
    write_json(run_dir.noise_file, data.noise.to_dict())
    write_text(run_dir.labels_file, label_file_text(dataset, data.train_labels))
    if split_text is not None:
        write_text(run_dir.val_split_file, split_text)
    env = environment_record(device)
    if world.distributed:
        env["distributed"] = {"world_size": world.size, "backend": torch.distributed.get_backend(),
                              "sync_bn": run.spec.sync_bn}
    write_json(run_dir.env_file, env)


def resume(run_dir: RunDir, setup: Training, owners: set[str], world: World) -> Progress:
    """The state of the last finished epoch, from the run's checkpoint (a fresh start without one)."""
    ckpt_file = run_dir.checkpoint_file
    if not ckpt_file.is_file():
        return Progress()
    ckpt = load_checkpoint(ckpt_file, setup.device, RESTART)
    check_checkpoint_owner(ckpt, ckpt_file, owners, RESTART)
    if ckpt.get("world_size", 1) != world.size:
        raise RunError(f"{ckpt_file} was trained by {ckpt.get('world_size', 1)} process(es) and this run has "
                       f"{world.size}: resume it with the same count, or --force to train it again")
    setup.method.model.load_state_dict(ckpt["model"])
    setup.optimizer.load_state_dict(ckpt["optimizer"])
    setup.scheduler.load_state_dict(ckpt["scheduler"])
    setup.method.load_extra_state(ckpt["method"])
    setup.ctx.train_labels.copy_(ckpt["train_labels"].to(setup.device))
    if world.is_main:
        print(f"resuming from epoch {ckpt['epoch']} of {setup.ctx.epochs} ({run_dir})", file=sys.stderr, flush=True)
    return Progress(ckpt["epoch"], ckpt["metrics"], ckpt["elapsed"])


def train_epochs(run: ResolvedRun, run_dir: RunDir, data: RunData, setup: Training, split: ValidationSplit,
                 progress: Progress, world: World) -> None:
    """Train the remaining epochs; after each, rank 0 evaluates, saves the checkpoint and logs the epoch."""
    spec, recipe, dataset, method, ctx = run.spec, run.recipe, data.dataset, setup.method, setup.ctx
    device, amp, eval_batch = setup.device, setup.device.type == "cuda", recipe["eval_batch_size"]
    noisy = data.train_labels[split.keep]
    clean = np.asarray(dataset.train.labels, dtype=np.int64)[split.keep]
    # The whole training cache (on a CPU a view of the memory-mapped file): a split run gathers the rows it
    # trains on by index, so an AffectNet-sized cache is never copied.
    train_images = images_on(device, dataset.train.images)
    train_rows = torch.as_tensor(split.keep, device=train_images.device) if split else None
    # the training images as evaluation sees them, for a method that passes over them itself (Method docstring)
    ctx.train_pass = TrainPass(train_images, setup.augment, device, eval_batch, amp, train_rows)
    test_images = images_on(device, dataset.test.images)
    val_images = images_on(device, dataset.train.images[split.held_out]) if split else None
    probe = memorisation_subset(noisy, clean, setup.seed)
    probe_images = train_images.index_select(0, torch.as_tensor(split.keep[probe], device=train_images.device))
    # flushed every epoch, so an interrupted run loses nothing it logged
    tracker = open_tracker(spec.log if world.is_main else None, run_dir.path, data.config, data.noise.to_dict())
    saved = progress.epoch
    try:
        for epoch in range(progress.epoch, ctx.epochs):
            t0 = time.perf_counter()
            row = {"epoch": epoch + 1, "lr": setup.optimizer.param_groups[0]["lr"]}
            batches = CachedBatches(method, train_images, setup.augment, setup.seed, epoch, train_rows)
            row.update(train_one_epoch(method, batches, setup.optimizer, setup.scheduler, amp, epoch, spec.progress,
                                       setup.step))
            if not world.is_main:  # rank 0 evaluates and writes; the others wait for its checkpoint
                distributed.barrier(world)
                saved = epoch + 1
                continue
            cm = evaluate(method, setup.augment, test_images, dataset.test.labels, dataset.num_classes, device,
                          eval_batch, amp)
            row.update(test_acc=accuracy(cm), test_mean_class_acc=mean_class_accuracy(cm))
            if val_images is not None:  # against the noisy labels: all a real user has
                row["val_acc"] = accuracy(evaluate(method, setup.augment, val_images, data.train_labels[split.held_out],
                                                   dataset.num_classes, device, eval_batch, amp))
            row["confusion"] = cm.tolist()
            row.update(memorisation(method, setup.augment, probe_images, probe, noisy, clean,
                                    ctx.train_labels.cpu().numpy(), device, eval_batch, amp))
            found = method.mechanism()
            row.update(mechanism.score(found, noisy, clean))
            row["flagged_by_class"] = mechanism.flags_by_class(found, noisy, list(dataset.class_names))
            progress.rows.append(row)
            progress.elapsed += time.perf_counter() - t0
            save_torch(run_dir.checkpoint_file, {
                "epoch": epoch + 1, "model": method.model.state_dict(), "optimizer": setup.optimizer.state_dict(),
                "scheduler": setup.scheduler.state_dict(), "method": method.extra_state(),
                "train_labels": ctx.train_labels.cpu(), "metrics": progress.rows, "elapsed": progress.elapsed,
                "config_hash": data.config["config_hash"], **({"world_size": world.size} if world.distributed else {}),
            })
            saved = epoch + 1
            write_csv(run_dir.metrics_file, [{k: v for k, v in r.items() if k not in NOT_IN_CSV} for r in progress.rows])
            if spec.progress:
                tqdm.write(f"epoch {epoch + 1}/{ctx.epochs}: loss {row['train_loss']:.3f}  "
                           f"test acc {row['test_acc']:.2%}  ({row['images_per_s']:.0f} img/s)")
            tracker.log_epoch(row)
            distributed.barrier(world)
    except KeyboardInterrupt:
        how_far = f"progress saved at epoch {saved} of {ctx.epochs}" if saved else "no epoch had finished yet"
        raise RunInterrupted(f"interrupted: {how_far} ({run_dir}); the same command resumes") from None
    finally:
        tracker.close()


def finish(run: ResolvedRun, run_dir: RunDir, data: RunData, setup: Training, split: ValidationSplit,
           progress: Progress) -> dict[str, Any]:
    """The run's result, written to result.json last: the run is done."""
    config, rows, dataset = data.config, progress.rows, data.dataset
    result: dict[str, Any] = {
        "method": config["method"], "dataset": config["dataset"], "seed": run.spec.seed,
        "noise": config["noise"], "protocol": run.spec.protocol, "profile": run.profile,
        "config_hash": config["config_hash"], "class_names": list(dataset.class_names),
    }
    result.update(summarise_epochs([r["test_acc"] for r in rows], [r["test_mean_class_acc"] for r in rows],
                                   [r["val_acc"] for r in rows] if split else None))
    result["val_split"] = split.sizes(run.recipe["val_split"])
    if data.imbalance is not None:  # the long-tailed training subset: its profile and class counts
        result["imbalance"] = data.imbalance
    train_time = sum(r["train_seconds"] for r in rows)
    result.update(
        confusion_last=rows[-1]["confusion"], epochs=len(rows), train_seconds=train_time,
        wall_seconds=progress.elapsed,
        images_per_second=sum(r["images_per_s"] * r["train_seconds"] for r in rows) / train_time,
        device=str(setup.device), pretrained=setup.pretrained, noise_record=data.noise.to_dict(),
        run_dir=str(run_dir), finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    noisy, final = data.train_labels[split.keep], setup.ctx.train_labels.cpu().numpy()
    if not np.array_equal(final, noisy):
        train_set = training_view(dataset, split.keep)
        result["relabel"] = relabel_summary(noisy, final, np.asarray(train_set.train.labels, dtype=np.int64))
        write_text(run_dir.path / "final_train_labels.txt", label_file_text(train_set, final))
    result["method_info"] = setup.method.on_train_end(run_dir.path)
    result["mapped_constants"] = config.get("mapped_constants", {})
    result["mechanism_off"] = setup.method.mechanism_off(mechanism.last_values(rows))
    if "flagged_by_class" in rows[-1]:  # (a checkpoint of an older fer-bench has none)
        result["flagged_by_class"] = rows[-1]["flagged_by_class"]
    write_json(run_dir.result_file, result)
    return result
