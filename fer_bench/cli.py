"""The ``fer-bench`` command line.

Every command that resolves a method, dataset or noise model takes
``--plugin module.path`` (repeatable) to register out-of-tree code first. Bad
input (an unknown name, a rate outside [0, 1), a malformed label file, a
missing image...) ends with exit code 2 and one line naming the culprit; set
``FER_BENCH_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import click

from . import interrupts, threads
from .disk import full_disk_message
from .runs.lock import RunBusy
from .runs.record import STATS
from .registry import DATASETS, METHODS, NOISE_MODELS, UnknownNameError, load_env_plugins, load_plugin

USER_ERRORS: tuple[type[Exception], ...] = (ValueError, UnknownNameError, ImportError, FileNotFoundError, RunBusy)


class UserError(click.ClickException):
    exit_code = 2


_CLICK_OUTCOMES = (click.ClickException, click.exceptions.Exit, click.exceptions.Abort)  # already answered


class Group(click.Group):
    """Turns user errors raised anywhere below, and a full disk, into a one-line message and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if os.environ.get("FER_BENCH_DEBUG") or isinstance(exc, _CLICK_OUTCOMES):
                raise
            # Whatever type the error surfaced as: torch reports a full disk as a RuntimeError.
            message = full_disk_message(exc)
            if message is None:
                if not isinstance(exc, USER_ERRORS):
                    raise
                message = str(exc).strip()
            raise UserError(message.splitlines()[0] if message else type(exc).__name__) from None


def _load_plugins(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    try:
        load_env_plugins()
        # A file's absolute path: a sweep's workers and Slurm jobs load the same plugins, maybe elsewhere.
        ctx.meta["plugins"] = tuple(load_plugin(plugin) for plugin in value)
    except ImportError as exc:
        raise UserError(str(exc)) from None
    return value


plugin_option = click.option(
    "--plugin", "plugins", multiple=True, is_eager=True, expose_value=False, callback=_load_plugins,
    metavar="MODULE", help="Import MODULE (a module name, found in the current directory too, or a .py file's path) "
                           "first so the methods/datasets/noise models it registers exist (repeatable).",
)


@click.group(cls=Group)
@click.version_option(package_name="fer-bench")
def main() -> None:
    """fer-bench: facial expression recognition under label noise."""
    threads.apply_environment()  # a malformed FER_BENCH_THREADS is a user error (exit 2), before any command


# --- run / eval -------------------------------------------------------------

def _options(*decorators: Any) -> Any:
    def apply(f: Any) -> Any:
        for d in reversed(decorators):
            f = d(f)
        return f
    return apply


def _apply_config(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[str]:
    """Eager: the file's values become the command's defaults, so command-line options override them;
    a repeatable option's entries go first, so the command line's win key by key (see config_file)."""
    if value is None:
        return value
    from .config_file import as_pairs, as_text, check_keys, key_name, read_config

    options = {key_name(max(p.opts, key=len)): p for p in ctx.command.params
               if isinstance(p, click.Option) and p.expose_value and p.name != "config"}
    try:
        config = read_config(value)
        check_keys(config, list(options), value)
        defaults: dict[str, Any] = {}
        for key, v in config.items():
            p = options[key]
            if p.multiple:
                ctx.meta.setdefault("config_lists", {})[p.name] = tuple(as_pairs(v, key, value))
            else:
                defaults[p.name] = as_text(v)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def _with_config_lists(kw: dict[str, Any]) -> dict[str, Any]:
    """The command's keyword arguments with the config file's repeatable entries put first."""
    lists = click.get_current_context().meta.get("config_lists", {})
    return {k: tuple(lists.get(k, ())) + tuple(v) if k in lists else v for k, v in kw.items()}


config_option = click.option(
    "--config", type=click.Path(), is_eager=True, callback=_apply_config, expose_value=False,
    help="A YAML file of this command's options (method: lanet, rate: 0.2, set: {epochs: 5}, ...); "
         "command-line options override it.")


# What a run is trained with, shared by `run` and `sweep`.
training_options = _options(
    click.option("--data", "data_opts", multiple=True, metavar="KEY=VALUE",
                 help="A dataset loader option, e.g. classes=7 or label_mode=probability (repeatable)."),
    click.option("--root", type=click.Path(), help="Dataset directory (default: datasets/<dataset>)."),
    click.option("--exact", is_flag=True, help="Flip exactly round(rate*n) labels (default: per-sample Bernoulli)."),
    click.option("--confusion", type=click.Path(), help="Class-named confusion-matrix CSV for asym/confusion noise."),
    click.option("--protocol", default="official", show_default=True, type=click.Choice(["official", "unified"])),
    click.option("--profile", default=None, help="paper | cpu | cpu-face (default: the dataset's; cpu-face for synthfer, paper for the others)."),
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
    from .engine.recipe import parse_sets
    from .engine.spec import RunSpec

    overrides = parse_sets(sets)
    if pretrained:
        overrides["pretrained"] = pretrained
    if sampler:
        overrides["sampler"] = sampler
    if val_split is not None:
        overrides["val_split"] = val_split
    return RunSpec(overrides=overrides, data_options=parse_sets(data_opts, "--data"), **kw)


@main.command()
@plugin_option
@click.option("--method", default="baseline", show_default=True, help="A registered method (fer-bench methods list).")
@click.option("--dataset", default="synthfer", show_default=True, help="A registered dataset.")
@click.option("--noise", default="none", show_default=True, help="Noise model: sym, asym, confusion, annotator, none, or a plugin's.")
@click.option("--rate", default=None, type=float, help="Noise rate in [0, 1); needed by every noise model but none.")
@click.option("--noise-file", type=click.Path(), help="Train on an existing label file in the dataset's format.")
@click.option("--noise-seed", type=int, help="Seed of the noise (default: the run's seed).")
@click.option("--seed", default=0, type=int, show_default=True, help="Training seed.")
@training_options
@click.option("--force", is_flag=True, help="Re-run even if the run directory holds a finished or different run.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--nproc", type=click.IntRange(min=1), default=None,
              help="Train this one run on N processes: starts torchrun --nproc-per-node N with the same arguments.")
@config_option
def run(quiet: bool, nproc: Optional[int], **kw: Any) -> None:
    """Train one method on one (noisy) dataset and evaluate it on the clean test set."""
    from .engine.checks import check_noise_rate, check_seeds

    check_seeds(kw["seed"], kw["noise_seed"])  # answered before torch is imported
    if kw["rate"] is not None:  # a missing one is the engine's to refuse: it depends on the noise model
        check_noise_rate(kw["rate"])
    from .engine.run import RunInterrupted
    from .engine.run import main as run_main

    spec = _base_spec(progress=not quiet, **_with_config_lists(kw))
    with interrupts.sigterm_as_interrupt():  # a scheduler's stop saves and says where, as Ctrl-C does
        if nproc is not None and "WORLD_SIZE" not in os.environ:  # (in torchrun's processes it is what started them)
            from .engine.launch import torchrun_run

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
    return "\n".join([
        f"{result['method']} on {result['dataset']}, noise {noise['model']} {noise['rate']:g} "
        f"(realised {noise['realised_rate']:.4f}), seed {result['seed']}",
        f"  clean-test accuracy: last {result['acc_last']:.2%}   best {result['acc_best']:.2%} "
        f"(epoch {result['best_epoch']}, optimistic)   {last5} {result['acc_last5']:.2%}",
        f"  {val}",
        f"  mean class accuracy (last epoch): {result['mean_class_acc_last']:.2%}",
        f"  {result['epochs']} epochs in {result['train_seconds']:.0f} s "
        f"({result['images_per_second']:.0f} images/s on {result['device']})",
        f"  run directory: {result['run_dir']}",
    ])


@main.command()
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
    from .datasets.synthfer.identities import IdentitySetConfig
    from .engine.checks import check_seeds
    from .pretrain import default_out, format_summary
    from .pretrain import pretrain as run_pretrain

    check_seeds(seed, None)
    sizes = {"identities": identities, "images_per_identity": images_per_identity,
             "heldout_per_identity": heldout, "seed": data_seed}
    data = IdentitySetConfig(**{k: v for k, v in sizes.items() if v is not None})
    data.check()
    path = Path(out) if out else default_out(seed)
    record = run_pretrain(data, seed=seed, out=path, epochs=epochs, batch_size=batch_size,
                          root=Path(root) if root else None, force=force, progress=not quiet)
    click.echo(format_summary(record, path))


def _csv(kind: type) -> Any:
    def convert(ctx: click.Context, param: click.Parameter, value: str) -> tuple[Any, ...]:
        try:
            return tuple(kind(v.strip()) for v in value.split(",") if v.strip())
        except ValueError:
            raise click.BadParameter(f"expected a comma-separated list of {kind.__name__}s, got {value!r}") from None
    return convert


@main.command()
@plugin_option
@click.option("--methods", default="baseline", show_default=True, callback=_csv(str), help="Comma-separated methods.")
@click.option("--datasets", default="synthfer", show_default=True, callback=_csv(str), help="Comma-separated datasets.")
@click.option("--noise", "noises", default="sym", show_default=True, callback=_csv(str),
              help="Comma-separated noise models.")
@click.option("--rates", default="0.1,0.2,0.3", show_default=True, callback=_csv(float), help="Comma-separated rates.")
@click.option("--seeds", default="0,1,2", show_default=True, callback=_csv(int), help="Comma-separated training seeds.")
@click.option("--clean", is_flag=True, help="Also train every method on the clean labels.")
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
          seeds: tuple[int, ...], clean: bool, grid: tuple[str, ...], jobs: Optional[int], runs_per_gpu: int,
          launcher: str, slurm_opts: tuple[str, ...], wait: bool, dry_run: bool, quiet: bool, nproc: int,
          **kw: Any) -> None:
    """Run methods x datasets x noise x rates x seeds, each run in its own process.

    Finished runs are skipped, interrupted ones resume, and a lock per run
    directory keeps two sweeps on the same results root from running a run twice.
    """
    from .engine.recipe import parse_sets
    from .sweep.plan import Axes, expand, parse_grid, run_state

    lists = _with_config_lists({"grid": grid, "slurm_opts": slurm_opts, **kw})
    grid, slurm_opts = lists.pop("grid"), lists.pop("slurm_opts")
    kw = lists
    if jobs is not None and jobs < 1 or runs_per_gpu < 1:
        raise click.BadParameter("--jobs and --runs-per-gpu must be at least 1")
    plugins = tuple(click.get_current_context().meta.get("plugins", ()))
    axes = Axes(methods=methods, datasets=datasets, noises=noises, rates=rates, seeds=seeds, clean=clean,
                grid=parse_grid(grid))
    specs = expand(axes, _base_spec(progress=False, **kw))
    if nproc > 1:
        specs = [replace(s, processes=nproc) for s in specs]  # their run directories name the count
        from .engine.distributed import World
        from .engine.spec import check_world, resolve

        for spec in specs:
            check_world(resolve(spec).recipe, World(0, nproc))
    if dry_run:
        states = [run_state(s) for s in specs]
        for spec, state in zip(specs, states):
            click.echo(f"{state:<18} {_run_dir(spec)}")
        click.echo(f"{len(specs)} runs, {states.count('finished')} finished")
        return
    if launcher == "slurm":
        from .sweep.slurm import submit
        from .sweep.worker import Outcome

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
        from .sweep.local import run_local

        outcomes = run_local(specs, kw["device"], jobs, runs_per_gpu, plugins, progress=not quiet, nproc=nproc)
    click.echo(_sweep_summary(outcomes))
    if any(o.status == "failed" for o in outcomes):
        sys.exit(1)


def _run_dir(spec: Any) -> Path:
    from .engine.spec import resolve

    return resolve(spec).run_dir


def _sweep_summary(outcomes: list[Any]) -> str:
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "busy", "failed")}
    lines = [f"{len(outcomes)} runs: {counts['done']} trained now, {counts['skipped']} already finished, "
             f"{counts['busy']} running elsewhere, {counts['failed']} failed"]
    lines += [f"  FAILED {o.run_dir}: {o.error}\n    log: {o.log or '(none)'}" for o in outcomes if o.status == "failed"]
    return "\n".join(lines)


@main.command("eval")
@plugin_option
@click.argument("run_dir", type=click.Path())
@click.option("--dataset", help="Evaluate on this dataset's test split (default: the run's).")
@click.option("--root", type=click.Path(), help="Dataset directory.")
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def eval_(run_dir: str, dataset: Optional[str], root: Optional[str], device: str, as_json: bool) -> None:
    """Re-evaluate a trained run's final model on a test split."""
    from .engine.trained import evaluate_run

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


@main.command("export")
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
    from .outputs import check_out
    from .runs import RunDir
    from .engine.export import check_format, export_run

    check_format(fmt)
    path = Path(out)
    check_out(path, (path, path.with_name(path.name + ".json")), [RunDir(Path(run_dir)).config().get("root")],
              what="model file")
    meta = export_run(Path(run_dir), path, fmt)
    click.echo(f"wrote {out} ({fmt}, {meta['method']} epoch {meta['epoch']}, {len(meta['class_names'])} classes: "
               f"{', '.join(meta['class_names'])}) and {out}.json")


# --- report -----------------------------------------------------------------

def _emit(text: str, out: Optional[str]) -> None:
    if out:
        from .atomic import write_text

        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_text(Path(out), text)
        click.echo(f"wrote {out}")
    else:
        click.echo(text, nl=False)


def _runs_root(results: Optional[str]) -> Path:
    from .paths import runs_root

    path = Path(results) if results else runs_root()
    if not path.is_dir():
        raise FileNotFoundError(f"results directory not found: {path}")
    return path


format_option = click.option("--format", "fmt", default="markdown", show_default=True,
                             type=click.Choice(["latex", "markdown", "csv"]))
results_option = click.option("--results", type=click.Path(), help="Runs root to read (default: results/runs).")
label_options = _options(
    click.option("--label", help="LaTeX \\label of the table (default: tab:fer-bench-<kind>[-<statistic>])."),
    click.option("--caption", help="Caption instead of the generated one (special characters are escaped)."),
)


def _emit_table(table: Any, fmt: str, out: Optional[str], label: Optional[str], caption: Optional[str]) -> None:
    from .report.tables import FORMATS

    if label:
        table.label = label
    if caption:
        table.caption = caption
    _emit(FORMATS[fmt](table), out)


significance_options = _options(
    click.option("--significance", default="welch", show_default=True, type=click.Choice(["welch", "none"]),
                 help="Also mark every entry not significantly worse than the best (one-sided Welch's t-test "
                      "over seeds), or only the best mean."),
    click.option("--alpha", default=0.05, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
                 help="Significance level of the marks."),
)


def _say_unavailable(data: Any, stat: str) -> None:
    """Say on stderr how many entries lack the statistic (val without a validation split), rather than drop them."""
    from .report.collect import unavailable_message

    message = unavailable_message(data, stat)
    if message:
        click.echo(message, err=True)


def _alpha(significance: str, alpha: float) -> Optional[float]:
    return None if significance == "none" else alpha


methods_option = click.option(
    "--methods", callback=_csv(str), default="",
    help="Only these run variants, comma-separated (lanet = its default runs, lanet+beta=0.2 a variant).")


@main.command()
@results_option
@click.option("--stat", default="last", show_default=True, type=click.Choice(STATS),
              help="Per run: last epoch, best epoch (optimistic), mean of the last 5, or the epoch chosen on the "
                   "noisy validation split (val).")
@click.option("--metric", default="acc", show_default=True, type=click.Choice(["acc", "mean_class_acc"]))
@format_option
@methods_option
@click.option("--compare-paper", is_flag=True, help="Put LA-Net's published numbers and the difference beside ours.")
@significance_options
@label_options
@click.option("--out", type=click.Path(), help="Write here instead of printing.")
def table(results: Optional[str], stat: str, metric: str, fmt: str, methods: tuple[str, ...],
          compare_paper: bool, significance: str, alpha: float, label: Optional[str], caption: Optional[str],
          out: Optional[str]) -> None:
    """Mean ± std over seeds of every setting, method and dataset (LA-Net's Table 1 layout).

    Each method's default runs only, unless --methods names variants (e.g. a grid's lanet+alpha=0.5).
    """
    from .outputs import check_out
    from .report.collect import aggregate, collect_runs
    from .report.tables import build_table

    if out:
        check_out(out)
    agg = aggregate(collect_runs(_runs_root(results)), stat, metric, list(methods))
    _say_unavailable(agg, stat)
    _emit_table(build_table(agg, stat, metric, compare_paper, _alpha(significance, alpha)), fmt, out, label, caption)


@main.command()
@plugin_option
@results_option
@click.option("--dataset", help="The dataset whose runs to study (needed when the results hold several).")
@click.option("--root", type=click.Path(), help="Dataset directory (default: the runs').")
@click.option("--votes", type=click.Path(), help="Votes CSV (image,<class>,... counts) to use as the reference.")
@click.option("--device", default="auto", show_default=True)
@format_option
@methods_option
@significance_options
@label_options
@click.option("--out", type=click.Path(), help="Write here instead of printing.")
def userstudy(results: Optional[str], dataset: Optional[str], root: Optional[str], votes: Optional[str],
              device: str, fmt: str, methods: tuple[str, ...], significance: str, alpha: float,
              label: Optional[str], caption: Optional[str], out: Optional[str]) -> None:
    """JS divergence of label descriptors (one-hot, predictions, LA-Net's distributions) to human votes."""
    from .outputs import check_out
    from .report.userstudy import build_table, measure

    if out:
        check_out(out, dataset_roots=[root])
    measured = measure(_runs_root(results), dataset, root, Path(votes) if votes else None, device,
                       methods=methods)
    _emit_table(build_table(measured, _alpha(significance, alpha)), fmt, out, label, caption)


# --- registries ---------------------------------------------------------------

def _print_entries(registry: Any) -> None:
    entries = registry.listing()
    width = max([4] + [len(name) for name, _, _ in entries])
    for name, description, source in entries:
        click.echo(f"{name:<{width}}  {description}  [{source}]")


@main.group(cls=Group)
def methods() -> None:
    """Registered methods."""


@methods.command("list")
@plugin_option
def methods_list() -> None:
    """List the registered methods, with where each came from."""
    _print_entries(METHODS)


@methods.command("show")
@plugin_option
@click.argument("name")
def methods_show(name: str) -> None:
    """A method's hyper-parameters (type, default, allowed values, help) and its official recipe."""
    from .methods.card import method_card

    click.echo(method_card(name))


# --- data ---------------------------------------------------------------------

@main.group(cls=Group)
def data() -> None:
    """Datasets: list them, check a real one's layout, generate the synthetic one."""


@data.command("list")
@plugin_option
def data_list() -> None:
    """List the registered datasets."""
    _print_entries(DATASETS)


@data.command("check")
@plugin_option
@click.option("--dataset", required=True, help="A registered real dataset (rafdb, ferplus, affectnet).")
@click.option("--root", type=click.Path(), help="Dataset directory (default: datasets/<dataset>).")
@click.option("--data", "data_opts", multiple=True, metavar="KEY=VALUE",
              help="A loader option, e.g. images=original, classes=8, layout=csv (repeatable).")
@click.option("--quick", is_flag=True, help="Only check that image files exist (no decoding).")
def data_check(dataset: str, root: Optional[str], data_opts: tuple[str, ...], quick: bool) -> None:
    """Validate a dataset's layout and report counts, class mapping and every problem.

    Exits with 0 when no problem was found and 2 otherwise.
    """
    from .datasets.check import check_dataset
    from .engine.recipe import parse_sets

    report = check_dataset(dataset, Path(root) if root else None, deep=not quick, **parse_sets(data_opts, "--data"))
    click.echo(report.format())
    if not report.ok:
        sys.exit(2)


@data.command("synth")
@click.option("--out", type=click.Path(), help="Output directory (default: datasets/synthfer).")
@click.option("--n-train", default=None, type=int, help="Training images (default: the built-in size).")
@click.option("--n-test", default=None, type=int, help="Test images.")
@click.option("--size", default=None, type=int, help="Image side in pixels.")
@click.option("--seed", default=0, type=int, show_default=True)
@click.option("--classes", "num_classes", default=7, type=click.Choice(["7", "8"]), show_default=True,
              help="8 adds contempt.")
@click.option("--workers", default=None, type=int, help="Processes (default: all cores).")
def data_synth(out: Optional[str], num_classes: str, **kw: Any) -> None:
    """Generate the synthetic dataset in RAF-DB's layout (plus votes and landmarks)."""
    from .datasets.synthfer.generate import generate
    from .datasets.synthfer.loader import SynthFER

    kwargs = {k: v for k, v in kw.items() if v is not None}
    summary = generate(Path(out) if out else SynthFER.default_root(), num_classes=int(num_classes), **kwargs)
    click.echo(json.dumps(summary, indent=2, default=str))


# --- noise ----------------------------------------------------------------------

@main.group(cls=Group)
def noise() -> None:
    """Noisy label sets: list models, export, inspect."""


@noise.command("list")
@plugin_option
def noise_list() -> None:
    """List the registered noise models."""
    _print_entries(NOISE_MODELS)


@noise.command("export")
@plugin_option
@click.option("--dataset", default="synthfer", show_default=True)
@click.option("--root", type=click.Path())
@click.option("--data", "data_opts", multiple=True, metavar="KEY=VALUE", help="A dataset loader option (repeatable).")
@click.option("--noise", required=True, help="Noise model.")
@click.option("--rate", type=float, help="Noise rate in [0, 1); needed by every noise model but none.")
@click.option("--noise-seed", default=0, type=int, show_default=True)
@click.option("--exact", is_flag=True)
@click.option("--confusion", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Label file to write (plus FILE.json).")
def noise_export(dataset: str, root: Optional[str], data_opts: tuple[str, ...], noise: str, rate: Optional[float],
                 noise_seed: int, exact: bool, confusion: Optional[str], out: str) -> None:
    """Write noisy train labels in the dataset's own label-file format, with their record."""
    from .engine.recipe import parse_sets
    from .engine.checks import check_noise_rate
    from .noise.files import check_export_path, export_train_labels, generate_train_labels
    from .noise.models import required_rate
    from .registry import create_dataset

    rate = required_rate(noise, rate)
    check_noise_rate(rate)
    check_export_path(Path(out), Path(root) if root else None)
    ds = create_dataset(dataset, root, True, **parse_sets(data_opts, "--data"))
    labels, record = generate_train_labels(ds, noise, rate, noise_seed, exact, Path(confusion) if confusion else None)
    sha = export_train_labels(ds, labels, record, Path(out))
    click.echo(record.summary())
    click.echo(f"wrote {out} (sha256 {sha}) and {out}.json")


@noise.command("inspect")
@plugin_option
@click.argument("file", type=click.Path())
@click.option("--dataset", default="synthfer", show_default=True)
@click.option("--root", type=click.Path())
@click.option("--data", "data_opts", multiple=True, metavar="KEY=VALUE", help="A dataset loader option (repeatable).")
def noise_inspect(file: str, dataset: str, root: Optional[str], data_opts: tuple[str, ...]) -> None:
    """Print the record of a label file measured against the dataset's clean labels."""
    from .engine.recipe import parse_sets
    from .noise.files import import_train_labels
    from .registry import create_dataset

    ds = create_dataset(dataset, root, True, **parse_sets(data_opts, "--data"))
    _, record = import_train_labels(ds, Path(file))
    click.echo(record.summary())


# --- plots ----------------------------------------------------------------------

@main.group(cls=Group)
def plot() -> None:
    """Figures from finished runs, each written as OUT.png and OUT.pdf."""


def _results_dir(results: Optional[str]) -> Path:
    from .paths import runs_root

    return Path(results) if results else runs_root()


def _check_figure_out(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A figure's --out stem, checked as the command line is read: before any run is."""
    from .outputs import check_out
    from .report.plots import figure_paths

    if value is not None and not ctx.resilient_parsing:
        check_out(value, figure_paths(value))
    return value


figure_out_option = click.option("--out", required=True, type=click.Path(), callback=_check_figure_out,
                                 help="Output stem: writes OUT.png and OUT.pdf.")


def _saved(fig: Any, out: str) -> None:
    from .report.plots import save

    paths = save(fig, out)
    click.echo("wrote " + " and ".join(str(p) for p in paths))


plot_stat_options = _options(
    click.option("--results", type=click.Path(), help="Runs root to read (default: results/runs)."),
    click.option("--stat", default="last", show_default=True, type=click.Choice(STATS),
                 help="Per-run accuracy: last epoch, best epoch, mean of the last 5, or the epoch chosen on the "
                      "noisy validation split (val)."),
    click.option("--metric", default="acc", show_default=True, type=click.Choice(["acc", "mean_class_acc"])),
    click.option("--dataset", help="Only this dataset's runs (as in the results table, e.g. synthfer)."),
    figure_out_option,
)


@plot.command("curves")
@plot_stat_options
@click.option("--methods", default="", callback=_csv(str), metavar="A,B,...",
              help="Only these methods or variants (default: all).")
@click.option("--variants", is_flag=True, help="Also plot variants with overrides (default: only the defaults).")
def plot_curves(results: Optional[str], stat: str, metric: str, dataset: Optional[str], out: str,
                methods: tuple[str, ...], variants: bool) -> None:
    """Accuracy vs noise rate per method (mean ± std over seeds).

    One panel per noise type; clean runs are rate 0 of every panel.
    """
    from .report.plots import curves_data, curves_figure, load_runs

    data = curves_data(load_runs(_results_dir(results)), stat, metric, dataset, variants, methods)
    _say_unavailable(data, stat)
    _saved(curves_figure(data, stat, metric), out)


@plot.command("memorisation")
@click.option("--results", type=click.Path(), help="Runs root to read (default: results/runs).")
@click.option("--dataset", help="Only this dataset's runs (as in the results table, e.g. synthfer).")
@click.option("--methods", default="", callback=_csv(str), metavar="A,B,...",
              help="Only these methods or variants (default: all).")
@figure_out_option
def plot_memorisation(results: Optional[str], dataset: Optional[str], methods: tuple[str, ...], out: str) -> None:
    """Memorised and corrected shares of the flipped training images per epoch, per method and noise setting."""
    from .report.plots import load_runs, memorisation_data, memorisation_figure

    data = memorisation_data(load_runs(_results_dir(results)), dataset, methods)
    _saved(memorisation_figure(data), out)


@plot.command("grid")
@plot_stat_options
@click.option("--method", required=True, help="The method whose --set KEY=VALUE variants form the grid.")
def plot_grid(results: Optional[str], stat: str, metric: str, dataset: Optional[str], out: str, method: str) -> None:
    """A method's grid search: accuracy vs each varied hyper-parameter.

    One line per noise setting; the run without the override is the default point.
    """
    from .report.plots import grid_data, grid_figure, load_runs

    data = grid_data(load_runs(_results_dir(results)), method.lower(), stat, metric, dataset)
    _say_unavailable(data, stat)
    _saved(grid_figure(data, method.lower(), stat, metric), out)


@plot.command("gallery")
@plugin_option
@click.argument("run_dir", type=click.Path())
@click.option("--n", "n", default=8, show_default=True, type=int, help="Images to show.")
@click.option("--root", type=click.Path(), help="Dataset directory (default: the run's, else datasets/<dataset>).")
@click.option("--ambiguous", is_flag=True, help="Only images whose largest human vote share is below 0.7.")
@figure_out_option
def plot_gallery(run_dir: str, n: int, root: Optional[str], ambiguous: bool, out: str) -> None:
    """Training images with their label, votes and learned distribution.

    Bars per image: the run's training label, the human votes, and the run's
    label_distributions.csv (LA-Net) when it has one.
    """
    from .outputs import check_out
    from .report.plots import figure_paths, gallery_data, gallery_figure

    check_out(out, figure_paths(out), [root])  # the option checked the rest; --root is known only here
    _saved(gallery_figure(gallery_data(Path(run_dir), n, root, ambiguous)), out)


@plot.command("confusion")
@click.argument("run_dir", type=click.Path())
@click.option("--normalise", is_flag=True, help="Divide each row by its total (per-class recall on the diagonal).")
@figure_out_option
def plot_confusion(run_dir: str, normalise: bool, out: str) -> None:
    """A run's last-epoch confusion matrix on the clean test set."""
    from .report.plots import confusion_data, confusion_figure

    matrix, names, title = confusion_data(Path(run_dir))
    _saved(confusion_figure(matrix, names, normalise, title), out)


@plot.command("transition")
@click.argument("run_dir", type=click.Path())
@figure_out_option
def plot_transition(run_dir: str, out: str) -> None:
    """A run's realised noise transition matrix (from noise.json)."""
    from .report.plots import transition_data, transition_figure, transition_title

    record = transition_data(Path(run_dir))
    _saved(transition_figure(record.transition_matrix, record.class_names, transition_title(record)), out)


@plot.command("ambiguity")
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@figure_out_option
def plot_ambiguity(sources: tuple[str, ...], out: str) -> None:
    """Realised flip rate by the largest annotator vote share, one bar series per SOURCE.

    A SOURCE is a run directory (its noise.json) or a noise record FILE.json written by
    `fer-bench noise export`; datasets with votes only (synthfer, FERPlus).
    """
    from .report.plots import ambiguity_figure, transition_data

    _saved(ambiguity_figure([transition_data(Path(s)) for s in sources]), out)


# --- landmarks ------------------------------------------------------------------

@main.group(cls=Group)
def landmarks() -> None:
    """Facial landmarks: extract them once into a per-dataset cache."""


@landmarks.command("extract")
@plugin_option
@click.option("--dataset", required=True)
@click.option("--root", type=click.Path())
@click.option("--data", "data_opts", multiple=True, metavar="KEY=VALUE", help="A dataset loader option (repeatable).")
@click.option("--backend", default="dlib", show_default=True, type=click.Choice(["dlib", "fan"]))
@click.option("--predictor", type=click.Path(), help="dlib's shape_predictor_68_face_landmarks.dat (default: found).")
@click.option("--device", default="cpu", show_default=True, help="Device for fan.")
@click.option("--detect", is_flag=True, help="Run a face detector first (default: the dataset's face box).")
@click.option("--split", "splits", multiple=True, type=click.Choice(["train", "test"]), help="Default: both.")
@click.option("--force", is_flag=True, help="Extract even when the dataset ships landmarks.")
def landmarks_extract(dataset: str, root: Optional[str], data_opts: tuple[str, ...], backend: str,
                      predictor: Optional[str], device: str, detect: bool, splits: tuple[str, ...], force: bool) -> None:
    """Fit 68 landmarks to every image once; training reads the cache."""
    from .engine.recipe import parse_sets
    from .landmarks.backends import create_backend
    from .landmarks.extract import extract_split
    from .registry import create_dataset

    ds = create_dataset(dataset, root, True, **parse_sets(data_opts, "--data"))
    fitter = create_backend(backend, Path(predictor) if predictor else None, device, detect)
    for split in splits or ("train", "test"):
        if getattr(ds, split).landmarks is not None and not force:
            click.echo(f"{dataset} {split}: the dataset ships landmarks; nothing to extract (--force to do it anyway)")
            continue
        rec = extract_split(ds, split, fitter)
        click.echo(f"{dataset} {split}: {rec['n']} faces, {rec['failures']} failed, "
                   f"{rec['ms_per_face']:.1f} ms per face ({rec['version']}) -> {ds.root / 'landmarks'}")


# --- bench ----------------------------------------------------------------------

@main.command()
@plugin_option
@click.option("--methods", default=None, metavar="A,B,...", help="Methods to time (default: every registered one).")
@click.option("--size", default=224, type=int, show_default=True, help="Image and input size in pixels.")
@click.option("--batch", default=128, type=int, show_default=True, help="Batch size of every measurement.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda[:N]")
@click.option("--steps", default=30, type=int, show_default=True,
              help="Steady-state steps (batches) timed per measurement: the last ones of a timed epoch whose "
                   "first --workers x 2 (what the reference pipeline's workers can prefetch) are not timed; "
                   "rounded up to a multiple of --workers (with --contention: the whole timed epoch).")
@click.option("--warmup", default=5, type=int, show_default=True,
              help="Untimed steps, in an epoch of their own, before each measurement.")
@click.option("--workers", default=None, type=int,
              help="DataLoader workers of the reference pipeline, and torch threads of the batched one "
                   "in the pipeline comparison (default: the usable cores, at most 8).")
@click.option("--n-train", default=12271, type=int, show_default=True,
              help="Training images of the synthetic RAF-DB-shaped set (generated once, then reused).")
@click.option("--profile", default="paper", show_default=True, help="paper (ResNet-18) | cpu (reduced width).")
@click.option("--pipeline-only", is_flag=True, help="Only compare the input pipelines (no model).")
@click.option("--trace", is_flag=True,
              help="Profile one more epoch of each training measurement (torch.profiler) and report the "
                   "operators that take the most time.")
@click.option("--contention", default=None, type=int, metavar="K",
              help="Instead: time training idle and beside K busy competing processes, side by side "
                   "(JSON default: results/bench/contention-<device>-<size>-<thread policy>.json).")
@click.option("--competitor", default="spin", show_default=True, type=click.Choice(["spin", "torch"]),
              help="With --contention: a Python busy loop, or a 1-thread torch matmul loop.")
@click.option("--repeat", default=1, type=int, show_default=True,
              help="With --contention: rounds of idle + contended measurements (medians are reported).")
@click.option("--out", type=click.Path(), help="JSON file (default: results/bench/bench-<device>-<size>[-pipeline].json).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def bench(methods: Optional[str], quiet: bool, contention: Optional[int], competitor: str, repeat: int,
          **kw: Any) -> None:
    """Time training, memory and the input pipeline: batched on-device vs the peers' per-image one."""
    if kw["out"]:
        from .outputs import check_out

        check_out(kw["out"])
    names = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    if contention is not None:
        from .perf.contention import format_contention, run_contention

        if kw.pop("pipeline_only") or kw.pop("trace"):
            raise UserError("--contention times training only; drop --pipeline-only and --trace")
        kw.pop("workers")
        result = run_contention(names, contention, competitor, repeat, progress=not quiet, **kw)
        click.echo(format_contention(result))
        return
    from .perf.bench import format_table, run_bench

    result = run_bench(names, progress=not quiet, **kw)
    click.echo(format_table(result))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
