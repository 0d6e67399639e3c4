"""What every command module of the command line shares.

* :class:`Group`: a click group that answers user errors (:data:`USER_ERRORS`) and a full disk
  raised anywhere below it with one line and exit code 2 (:class:`UserError`); the ``main`` group
  and every command group are one.
* ``--plugin`` (:data:`plugin_option`) and ``--config`` (:data:`config_option`, with
  :func:`with_config_lists` for its repeatable entries).
* Small option helpers: :func:`option_group` (several option decorators as one) and
  :func:`csv_list` (a comma-separated option's values).

Nothing here imports torch; the commands import what they need when they run.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import click

from ..disk import full_disk_message
from ..runs.lock import RunBusy
from ..registry import UnknownNameError, load_env_plugins, load_plugin

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


def option_group(*decorators: Any) -> Any:
    """One decorator applying ``decorators`` as if stacked in this order above a function."""
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
    from ..config_file import as_pairs, as_text, check_keys, key_name, read_config

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


def with_config_lists(kw: dict[str, Any]) -> dict[str, Any]:
    """The command's keyword arguments with the config file's repeatable entries put first."""
    lists = click.get_current_context().meta.get("config_lists", {})
    return {k: tuple(lists.get(k, ())) + tuple(v) if k in lists else v for k, v in kw.items()}


config_option = click.option(
    "--config", type=click.Path(), is_eager=True, callback=_apply_config, expose_value=False,
    help="A YAML file of this command's options (method: lanet, rate: 0.2, set: {epochs: 5}, ...); "
         "command-line options override it.")


def csv_list(kind: type) -> Any:
    """An option callback reading "a,b,c" as a tuple of ``kind`` (a bad entry is click's usage error)."""
    def convert(ctx: click.Context, param: click.Parameter, value: str) -> tuple[Any, ...]:
        try:
            return tuple(kind(v.strip()) for v in value.split(",") if v.strip())
        except ValueError:
            raise click.BadParameter(f"expected a comma-separated list of {kind.__name__}s, got {value!r}") from None
    return convert

