"""The commands that train and what is done with a trained run.

* ``fer-bench run``: one method on one (noisy) dataset; :func:`run_summary` is what it says at the
  end (a sweep's log says it too).
* ``fer-bench pretrain``: the CPU-sized backbone on face identities, for ``--pretrained``.
* ``fer-bench sweep``: methods x datasets x noise x rates x seeds (and a ``--grid``), locally or on Slurm.
* ``fer-bench eval``: a trained run's final model on a test split.
* ``fer-bench export``: a trained run's inference network as a model file.

``run`` and ``sweep`` share the options of what a run is trained with (:data:`training_options`);
``--imbalance`` is one ratio in ``run`` and a comma-separated list (an axis) in ``sweep``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import click

from .. import interrupts
from ..runs import unpredicted_classes, whole_classes_flagged
from .common import config_option, csv_list, option_group, plugin_option, with_config_lists

class Ratio(click.ParamType):
    """``--imbalance RHO``: a number from 1 (:func:`fer_bench.datasets.imbalance.check_rho`), or ``none`` (the full
    training split); a bad value is a usage error (exit code 2) that names it."""

    name = "RHO"

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Optional[float]:
        from ..datasets.imbalance import check_rho

        if value is None or isinstance(value, str) and value.strip().lower() == "none":
            return None
        try:
            return check_rho(value, option="")  # click names the option
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _ratios(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> tuple[Optional[float], ...]:
    """``sweep --imbalance none,10,100``: the ratios, in order, once each; ``none`` is the full training split."""
    ratios = [Ratio().convert(v, param, ctx) for v in (value or "none").split(",") if v.strip()]
    return tuple(dict.fromkeys(ratios)) or (None,)


def _imbalance_seed(ctx: click.Context, param: click.Parameter, value: Optional[int]) -> Optional[int]:
    from ..datasets.imbalance import check_seed

    try:
        return None if value is None else check_seed(value, option="")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


IMBALANCE_HELP = ("A long-tailed training subset: class sizes fall exponentially from the largest class to one RHO "
                  "times smaller (classes ranked by their size in the training split; RHO 1: balanced), drawn before "
                  "the noise; the test split is untouched. none (the default): the full training split.")

# What a run is trained with, shared by `run` and `sweep`.
training_options = option_group(
    click.option("--data", "data_opts", multiple=True, metavar="KEY=VALUE",
                 help="A dataset loader option, e.g. classes=7 or label_mode=probability (repeatable)."),
    click.option("--root", type=click.Path(), help="Dataset directory (default: datasets/<dataset>)."),
    click.option("--exact", is_flag=True, help="Flip exactly round(rate*n) labels (default: per-sample Bernoulli)."),
    click.option("--confusion", type=click.Path(), help="Class-named confusion-matrix CSV for asym/confusion noise."),
    click.option("--imbalance-seed", type=int, callback=_imbalance_seed,
                 help="Seed of the --imbalance subset's images (default: the noise seed; with --noise-file, the "
                      "training seed)."),
    click.option("--protocol", default="official", show_default=True, type=click.Choice(["official", "unified"])),
    click.option("--profile", default=None, help="paper | cpu | cpu-face | cpu-face-56 (default: the dataset's, "
                                                  "which `fer-bench data list` shows)."),
    click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a recipe key or hyper-parameter."),
    click.option("--sampler", type=click.Choice(["random", "balanced", "progressive"]),
                 help="Epoch sampler for any method (default: the recipe's; random)."),
    click.option("--val-split", type=float, metavar="F",
                 help="Hold out this fraction of the noisy training labels (stratified) as a noisy validation "
                      "split for --stat val (default: the dataset's: 0.1 on synthfer, 0 on the real datasets; "
                      "same as --set val_split=F)."),
    click.option("--pretrained",
                 help="Backbone weights: a checkpoint FILE, imagenet, synthfer-id (the shipped face-identity "
                      "backbone), or none (same as --set pretrained=...)."),
    click.option("--trust-pickle", is_flag=True, help="Allow reading a pickled (.pkl) checkpoint, which can run code."),
    click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda[:N]"),
    click.option("--compile", is_flag=True, help="torch.compile the backbones (faster steps on a GPU after a warm-up)."),
    click.option("--sync-bn", is_flag=True,
                 help="With several processes per run: SyncBatchNorm across them (default: each rank's own BN)."),
    click.option("--log", type=click.Choice(["tensorboard", "wandb"]),
                 help="Also log per-epoch scalars, the config and the noise record to TensorBoard "
                      "(<run dir>/tensorboard) or Weights & Biases (optional extras); metrics.csv stays the record."),
    click.option("--out", type=click.Path(), help="Runs root (default: results/runs)."),
)


def _base_spec(sets: tuple[str, ...], data_opts: tuple[str, ...], sampler: Optional[str],
               pretrained: Optional[str], val_split: Optional[float] = None, **kw: Any) -> Any:
    from ..engine.recipe import parse_sets
    from ..engine.spec import RunSpec

    overrides = parse_sets(sets)
    if pretrained:
        overrides["pretrained"] = pretrained
    if sampler:
        overrides["sampler"] = sampler
    if val_split is not None:
        overrides["val_split"] = val_split
    return RunSpec(overrides=overrides, data_options=parse_sets(data_opts, "--data"), **kw)


@click.command()
@plugin_option
@click.option("--method", default="baseline", show_default=True, help="A registered method (fer-bench methods list).")
@click.option("--dataset", default="synthfer", show_default=True, help="A registered dataset.")
@click.option("--noise", default="none", show_default=True, help="Noise model: sym, asym, confusion, annotator, none, or a plugin's.")
@click.option("--rate", default=None, type=float, help="Noise rate in [0, 1); needed by every noise model but none.")
@click.option("--noise-file", type=click.Path(), help="Train on an existing label file in the dataset's format.")
@click.option("--noise-seed", type=int, help="Seed of the noise (default: the run's seed).")
@click.option("--seed", default=0, type=int, show_default=True, help="Training seed.")
@click.option("--imbalance", type=Ratio(), help=IMBALANCE_HELP)
@training_options
@click.option("--force", is_flag=True, help="Re-run even if the run directory holds a finished or different run.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--nproc", type=click.IntRange(min=1), default=None,
              help="Train this one run on N processes: starts torchrun --nproc-per-node N with the same arguments.")
@config_option
def run(quiet: bool, nproc: Optional[int], **kw: Any) -> None:
    """Train one method on one (noisy) dataset and evaluate it on the clean test set."""
    from ..engine.checks import check_noise_rate, check_seeds

    check_seeds(kw["seed"], kw["noise_seed"])  # answered before torch is imported
    if kw["rate"] is not None:  # a missing one is the engine's to refuse: it depends on the noise model
        check_noise_rate(kw["rate"])
    from ..engine.run import RunInterrupted
    from ..engine.run import main as run_main

    spec = _base_spec(progress=not quiet, **with_config_lists(kw))
    with interrupts.sigterm_as_interrupt():  # a scheduler's stop saves and says where, as Ctrl-C does
        if nproc is not None and "WORLD_SIZE" not in os.environ:  # (in torchrun's processes it is what started them)
            from ..engine.launch import torchrun_run

            sys.exit(torchrun_run(spec, nproc, sys.argv[1:]))
        try:
            result = run_main(spec)
        except RunInterrupted as exc:  # instead of click's bare "Aborted!"
            if os.environ.get("RANK", "0") == "0":  # under torchrun every rank is interrupted; one says so
                click.echo(str(exc), err=True)
            sys.exit(interrupts.exit_status())
        except KeyboardInterrupt:
            if interrupts.received() is None:
                raise  # Ctrl-C before or after training: click's "Aborted!", as ever
            click.echo("terminated before training began or after it ended; the same command resumes from the "
                       "last saved epoch, if any", err=True)
            sys.exit(interrupts.exit_status())
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun, rank 0 reports
    if result.get("already_done"):
        click.echo(f"already finished (use --force to re-run): {result['run_dir']}")
    click.echo(run_summary(result))


def run_summary(result: dict[str, Any]) -> str:
    """What ``fer-bench run`` (and a sweep's log) says about a finished run."""
    noise = result["noise_record"]
    n = result["epochs"]  # acc_last5 is over fewer epochs in a shorter run
    last5 = "mean of last 5" if n >= 5 else ("mean of its 1 epoch" if n == 1 else f"mean of all {n} epochs")
    split = result.get("val_split") or {}
    val = ("val: unavailable (no noisy validation split; --val-split F holds one out)" if result.get("acc_val") is None
           else f"val {result['acc_val']:.2%} (clean-test accuracy at epoch {result['val_epoch']}, the best on "
                f"{split.get('held_out')} held-out noisy labels: {result['val_acc_best']:.2%})")
    mapped = result.get("mapped_constants") or {}
    off = result.get("mechanism_off") or []
    imbalance = result.get("imbalance")
    counts = [k for k in (imbalance or {}).get("class_counts", {}).values() if k]
    subset = ([f"  long-tailed training subset: ratio {imbalance['rho']:g} (realised {imbalance['realised_ratio']:g}), "
               f"seed {imbalance['seed']}: {imbalance['train_images']} of {imbalance['of']} images, "
               f"{max(counts)} to {min(counts)} per class"] if imbalance else [])
    notes = ([f"  time constants mapped to this schedule: " + ", ".join(
                 f"{name} {m['official']:.6g} -> {m['value']:.6g}" for name, m in mapped.items())] if mapped else [])
    notes += [f"  mechanism off: {line}" for line in off]
    lost = unpredicted_classes(result)
    if lost:
        notes.append(f"  never predicted on the test set (last epoch): {', '.join(lost)}")
    notes += [f"  flags most of a class's training images (last epoch): {line}"
              for line in whole_classes_flagged(result)]
    return "\n".join([
        f"{result['method']} on {result['dataset']}, noise {noise['model']} {noise['rate']:g} "
        f"(realised {noise['realised_rate']:.4f}), seed {result['seed']}",
        *subset,
        f"  clean-test accuracy: last {result['acc_last']:.2%}   best {result['acc_best']:.2%} "
        f"(epoch {result['best_epoch']}, optimistic)   {last5} {result['acc_last5']:.2%}",
        f"  {val}",
        f"  mean class accuracy (last epoch): {result['mean_class_acc_last']:.2%}",
        f"  {result['epochs']} epochs in {result['train_seconds']:.0f} s "
        f"({result['images_per_second']:.0f} images/s on {result['device']})",
        *notes,
        f"  run directory: {result['run_dir']}",
    ])


@click.command()
@click.option("--dataset", default="synthfer-id", show_default=True, type=click.Choice(["synthfer-id"]),
              help="The face-recognition set to pretrain on.")
@click.option("--seed", default=0, type=int, show_default=True, help="Training seed.")
@click.option("--out", type=click.Path(), help="The checkpoint (.pth; its record goes to .json beside it) "
                                                "[default: results/pretrained/synthfer-id-seed<seed>.pth].")
@click.option("--root", type=click.Path(),
              help="Where synthfer-id is (generated there first) [default: <data root>/synthfer-id].")
@click.option("--identities", type=int, help="Identities in synthfer-id (default 400).")
@click.option("--images-per-identity", type=int, help="Pictures of each identity (default 15).")
@click.option("--heldout", type=int,
              help="Pictures of each identity held out to measure identity accuracy (default 3).")
@click.option("--data-seed", type=int, help="Seed of synthfer-id (default 0).")
@click.option("--epochs", type=int, help="Override the recipe's epochs (default 15).")
@click.option("--batch-size", type=int, help="Override the recipe's batch size (default 64).")
@click.option("--force", is_flag=True, help="Pretrain again even if OUT holds this pretraining's result.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def pretrain(dataset: str, seed: int, out: Optional[str], root: Optional[str], identities: Optional[int],
             images_per_identity: Optional[int], heldout: Optional[int], data_seed: Optional[int],
             epochs: Optional[int], batch_size: Optional[int], force: bool, quiet: bool) -> None:
    """Pretrain the CPU-sized backbone on face identities (the papers' MS-Celeb step) for --pretrained."""
    from ..datasets.synthfer.identities import IdentitySetConfig
    from ..engine.checks import check_seeds
    from ..pretrain import default_out, format_summary
    from ..pretrain import pretrain as run_pretrain

    check_seeds(seed, None)
    sizes = {"identities": identities, "images_per_identity": images_per_identity,
             "heldout_per_identity": heldout, "seed": data_seed}
    data = IdentitySetConfig(**{k: v for k, v in sizes.items() if v is not None})
    data.check()
    path = Path(out) if out else default_out(seed)
    record = run_pretrain(data, seed=seed, out=path, epochs=epochs, batch_size=batch_size,
                          root=Path(root) if root else None, force=force, progress=not quiet)
    click.echo(format_summary(record, path))


@click.command()
@plugin_option
@click.option("--methods", default="baseline", show_default=True, callback=csv_list(str),
              help="Comma-separated methods.")
@click.option("--datasets", default="synthfer", show_default=True, callback=csv_list(str),
              help="Comma-separated datasets.")
@click.option("--noise", "noises", default="sym", show_default=True, callback=csv_list(str),
              help="Comma-separated noise models.")
@click.option("--rates", default="0.1,0.2,0.3", show_default=True, callback=csv_list(float),
              help="Comma-separated rates.")
@click.option("--seeds", default="0,1,2", show_default=True, callback=csv_list(int),
              help="Comma-separated training seeds.")
@click.option("--clean", is_flag=True, help="Also train every method on the clean labels.")
@click.option("--imbalance", "imbalances", default=None, callback=_ratios, metavar="RHO,...",
              help="Comma-separated ratios RHO of long-tailed training subsets (see fer-bench run --help), an axis "
                   "crossed with the noise settings, e.g. none,10,100 (none: the full training split; the default).")
@click.option("--grid", multiple=True, metavar="KEY=V1,V2,...",
              help="Sweep a recipe key or hyper-parameter over values (repeatable; the grid is their product).")
@training_options
@click.option("--jobs", type=int, help="Runs at a time (default: 1 on CPU, one per GPU slot on CUDA).")
@click.option("--runs-per-gpu", default=1, show_default=True, type=int, help="Runs sharing each GPU at once.")
@click.option("--nproc", default=1, show_default=True, type=click.IntRange(min=1),
              help="Processes (GPUs) per run: torchrun locally, tasks_per_node and gpus_per_node on Slurm.")
@click.option("--launcher", default="local", show_default=True, type=click.Choice(["local", "slurm"]))
@click.option("--slurm", "slurm_opts", multiple=True, metavar="KEY=VALUE",
              help="submitit parameter for --launcher slurm, e.g. slurm_partition=gpu or timeout_min=240 (repeatable).")
@click.option("--wait/--no-wait", default=False, help="With --launcher slurm: wait for the jobs and summarise.")
@click.option("--dry-run", is_flag=True, help="List the runs and their state; run nothing.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@config_option
def sweep(methods: tuple[str, ...], datasets: tuple[str, ...], noises: tuple[str, ...], rates: tuple[float, ...],
          seeds: tuple[int, ...], clean: bool, imbalances: tuple[Optional[float], ...], grid: tuple[str, ...],
          jobs: Optional[int], runs_per_gpu: int,
          launcher: str, slurm_opts: tuple[str, ...], wait: bool, dry_run: bool, quiet: bool, nproc: int,
          **kw: Any) -> None:
    """Run methods x datasets x noise x rates x seeds, each run in its own process.

    Finished runs are skipped, interrupted ones resume, and a lock per run
    directory keeps two sweeps on the same results root from running a run twice.
    """
    from ..engine.recipe import parse_sets
    from ..sweep.plan import Axes, expand, parse_grid, run_state

    lists = with_config_lists({"grid": grid, "slurm_opts": slurm_opts, **kw})
    grid, slurm_opts = lists.pop("grid"), lists.pop("slurm_opts")
    kw = lists
    if jobs is not None and jobs < 1 or runs_per_gpu < 1:
        raise click.BadParameter("--jobs and --runs-per-gpu must be at least 1")
    plugins = tuple(click.get_current_context().meta.get("plugins", ()))
    axes = Axes(methods=methods, datasets=datasets, noises=noises, rates=rates, seeds=seeds, clean=clean,
                grid=parse_grid(grid), imbalances=imbalances)
    specs = expand(axes, _base_spec(progress=False, **kw))
    if nproc > 1:
        specs = [replace(s, processes=nproc) for s in specs]  # their run directories name the count
        from ..engine.distributed import World
        from ..engine.spec import check_world, resolve

        for spec in specs:
            check_world(resolve(spec).recipe, World(0, nproc))
    if dry_run:
        states = [run_state(s) for s in specs]
        for spec, state in zip(specs, states):
            click.echo(f"{state:<18} {_run_dir(spec)}")
        older = states.count("finished, older recipe")
        click.echo(f"{len(specs)} runs, {states.count('finished')} finished"
                   + (f", {older} finished with an older recipe (kept; --force or another --out trains today's)"
                      if older else ""))
        return
    if launcher == "slurm":
        from ..sweep.slurm import submit
        from ..sweep.worker import Outcome

        # as the local launcher does, but before submission: on a cluster each task costs an allocation
        finished = [s for s in specs if run_state(s) == "finished"]
        todo = [s for s in specs if s not in finished]
        jobs_ = submit(todo, parse_sets(slurm_opts, "--slurm"), plugins, nproc)
        click.echo(f"{len(finished)} of {len(specs)} runs already finished; " + (
            f"submitted {len(jobs_)} runs as a job array ({jobs_[0].job_id.split('_')[0]})" if jobs_
            else "nothing to submit"))
        if not wait:
            return
        outcomes = [Outcome(s, Path(_run_dir(s)), "skipped") for s in finished] + [j.results()[0] for j in jobs_]
    else:
        from ..sweep.local import run_local

        outcomes = run_local(specs, kw["device"], jobs, runs_per_gpu, plugins, progress=not quiet, nproc=nproc)
    click.echo(_sweep_summary(outcomes))
    if any(o.status == "failed" for o in outcomes):
        sys.exit(1)


def _run_dir(spec: Any) -> Path:
    from ..engine.spec import resolve

    return resolve(spec).run_dir


def _sweep_summary(outcomes: list[Any]) -> str:
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "busy", "failed")}
    lines = [f"{len(outcomes)} runs: {counts['done']} trained now, {counts['skipped']} already finished, "
             f"{counts['busy']} running elsewhere, {counts['failed']} failed"]
    lines += [f"  FAILED {o.run_dir}: {o.error}\n    log: {o.log or '(none)'}" for o in outcomes if o.status == "failed"]
    return "\n".join(lines)


@click.command("eval")
@plugin_option
@click.argument("run_dir", type=click.Path())
@click.option("--dataset", help="Evaluate on this dataset's test split (default: the run's).")
@click.option("--root", type=click.Path(), help="Dataset directory.")
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def eval_(run_dir: str, dataset: Optional[str], root: Optional[str], device: str, as_json: bool) -> None:
    """Re-evaluate a trained run's final model on a test split."""
    from ..engine.trained import evaluate_run

    res = evaluate_run(Path(run_dir), dataset, root, device)
    if as_json:
        click.echo(json.dumps(res, indent=2))
        return
    names = res["class_names"]
    click.echo(f"{res['run_dir']} (epoch {res['epoch']}) on {res['dataset']} test:")
    click.echo(f"  accuracy {res['acc']:.2%}   mean class accuracy {res['mean_class_acc']:.2%}")
    width = max(len(n) for n in names)
    click.echo("  confusion matrix (rows: true class, columns: predicted)")
    click.echo("  " + " " * width + " " + " ".join(f"{n[:5]:>5}" for n in names))
    for name, row in zip(names, res["confusion"]):
        click.echo(f"  {name:>{width}} " + " ".join(f"{v:>5}" for v in row))


@click.command("export")
@plugin_option
@click.argument("run_dir", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="The model file; its description goes to OUT.json.")
@click.option("--format", "fmt", default="state_dict", show_default=True,
              type=click.Choice(["state_dict", "torchscript", "onnx"]),
              help="A torch state_dict, a TorchScript module, or an ONNX graph (the onnx extra).")
def export(run_dir: str, out: str, fmt: str) -> None:
    """Write a trained run's inference network (backbone and classifier, no training heads).

    Beside it, OUT.json records the class names in logit order and the input size and
    normalisation the network expects.
    """
    from ..outputs import check_out
    from ..runs import RunDir
    from ..engine.export import check_format, export_run

    check_format(fmt)
    path = Path(out)
    check_out(path, (path, path.with_name(path.name + ".json")), [RunDir(Path(run_dir)).config().get("root")],
              what="model file")
    meta = export_run(Path(run_dir), path, fmt)
    click.echo(f"wrote {out} ({fmt}, {meta['method']} epoch {meta['epoch']}, {len(meta['class_names'])} classes: "
               f"{', '.join(meta['class_names'])}) and {out}.json")

