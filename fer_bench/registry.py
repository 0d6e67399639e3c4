"""Registries of methods, noise models and datasets, and plugin discovery.

Each kind has one :class:`Registry`, filled lazily on first lookup from three
sources, in order:

1. the built-in modules (``fer_bench.methods``, ``fer_bench.noise``, ``fer_bench.datasets``);
2. the entry-point groups ``fer_bench.methods``, ``fer_bench.noise`` and
   ``fer_bench.datasets`` of installed distributions;
3. modules named with ``--plugin module.path`` or ``--plugin path/to/file.py`` (or the
   ``FER_BENCH_PLUGINS`` environment variable, comma-separated), imported by :func:`load_plugin`;
   a module name is looked up in the current directory too, as ``python -m`` would.

An entry point may name a module (importing it registers what it defines) or an
object, which is then registered under the entry point's name. A plugin that
fails to import is reported as a warning and never breaks the listing of the
others. Each entry remembers where it came from, for ``fer-bench methods list``.
"""

from __future__ import annotations

import ast
import contextlib
import fnmatch
import hashlib
import importlib
import importlib.util
import os
import sys
import types
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Generic, Iterator, Optional, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that no registry entry has; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    description: str
    source: str


_source_stack: list[str] = ["built-in"]


@contextlib.contextmanager
def _registering_from(source: str) -> Iterator[None]:
    _source_stack.append(source)
    try:
        yield
    finally:
        _source_stack.pop()


def _first_doc_line(obj: Any) -> str:
    doc = getattr(obj, "description", None) or getattr(obj, "__doc__", None) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry(Generic[T]):
    """A name -> object table for one kind of plugin."""

    def __init__(self, kind: str, group: str, builtins: tuple[str, ...],
                 check: Optional[Callable[[str, Any], None]] = None) -> None:
        self.kind = kind
        self.group = group
        self._builtins = builtins
        self._check = check  # called with (name, object) before an entry is added; raises ValueError to refuse it
        self._entries: dict[str, Entry[T]] = {}
        self._discovered = False

    def register(
        self,
        name: str,
        obj: Optional[T] = None,
        *,
        description: Optional[str] = None,
        override: bool = False,
    ) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted.

        A second registration of the same name is an error unless ``override=True``; so is an object
        that the registry's check refuses (for methods: :func:`fer_bench.methods.hparams.check_method`).
        """

        def add(target: T) -> T:
            key = name.lower()
            if key in self._entries and not override and self._entries[key].obj is not target:
                raise ValueError(
                    f"{self.kind} {key!r} is already registered "
                    f"(from {self._entries[key].source}); pass override=True to replace it"
                )
            if self._check is not None:
                self._check(key, target)
            desc = description if description is not None else _first_doc_line(target)
            self._entries[key] = Entry(key, target, desc, _source_stack[-1])
            return target

        return add if obj is None else add(obj)

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        for module in self._builtins:
            importlib.import_module(module)
        for ep in entry_points(group=self.group):
            dist = ep.dist.name if ep.dist is not None else "?"
            with _registering_from(f"entry point {ep.value} ({dist})"):
                try:
                    loaded = ep.load()
                except Exception as exc:  # a broken plugin must not hide the others
                    warnings.warn(f"{self.kind} plugin {ep.name!r} from {dist} failed to load: {exc}")
                    continue
                if not isinstance(loaded, types.ModuleType) and ep.name.lower() not in self._entries:
                    try:
                        self.register(ep.name, loaded)
                    except ValueError as exc:  # refused (see check): reported, like a plugin that fails to load
                        warnings.warn(f"{self.kind} plugin {ep.name!r} from {dist} was refused: {exc}")

    def get(self, name: str) -> T:
        """The object registered as ``name``; :class:`UnknownNameError` lists the known names."""
        self._discover()
        key = name.lower()
        if key not in self._entries:
            known = ", ".join(sorted(self._entries)) or "none"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; registered: {known}")
        return self._entries[key].obj

    def canonical(self, name: str) -> str:
        """The registered spelling of ``name`` (names are case-insensitive); unknown names raise."""
        self.get(name)
        return name.lower()

    def entries(self, pattern: str = "*") -> list[Entry[T]]:
        self._discover()
        return [self._entries[k] for k in sorted(self._entries) if fnmatch.fnmatch(k, pattern)]

    def listing(self) -> list[tuple[str, str, str]]:
        """``(name, description, source)`` of every entry, for ``fer-bench ... list``.

        When nothing but the built-ins can be registered (no plugin loaded, no entry point
        installed), they are read from their source files instead of imported: importing the
        built-in methods imports torch, seconds for a listing."""
        if self._discovered or self._entries or entry_points(group=self.group):
            return [(e.name, e.description, e.source) for e in self.entries()]
        found = [entry for module in self._builtins for entry in _registered_in_source(module)]
        return sorted(found)

    def names(self, pattern: str = "*") -> list[str]:
        return [e.name for e in self.entries(pattern)]

    def __contains__(self, name: str) -> bool:
        self._discover()
        return name.lower() in self._entries


def _registered_in_source(package: str) -> list[tuple[str, str, str]]:
    """What the modules of ``package`` register with a ``@register_*("name")`` decorator, and the
    description :func:`_first_doc_line` would give, read with :mod:`ast` (nothing is imported)."""
    spec = importlib.util.find_spec(package)
    locations = (spec.submodule_search_locations or []) if spec else []
    found = []
    for path in sorted(p for location in locations for p in Path(location).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                continue
            for deco in node.decorator_list:
                func = deco.func if isinstance(deco, ast.Call) else None
                fname = getattr(func, "id", None) or getattr(func, "attr", "")
                if not (fname.startswith("register_") and deco.args and isinstance(deco.args[0], ast.Constant)):
                    continue
                given = [k.value.value for k in deco.keywords
                         if k.arg == "description" and isinstance(k.value, ast.Constant)]
                description = given[0] if given else next((stmt.value.value for stmt in getattr(node, "body", [])
                                    if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant)
                                    and any(getattr(t, "id", None) == "description" for t in stmt.targets)), "")
                doc = description or ast.get_docstring(node) or ""
                first = doc.strip().splitlines()[0] if doc.strip() else ""
                found.append((str(deco.args[0].value).lower(), first, "built-in"))
    return found


def _check_method(name: str, obj: Any) -> None:
    from .methods.hparams import check_method

    check_method(name, obj)


METHODS: Registry = Registry("method", "fer_bench.methods", ("fer_bench.methods",), check=_check_method)
NOISE_MODELS: Registry = Registry("noise model", "fer_bench.noise", ("fer_bench.noise",))
DATASETS: Registry = Registry("dataset", "fer_bench.datasets", ("fer_bench.datasets",))

register_method = METHODS.register
register_noise_model = NOISE_MODELS.register
register_dataset = DATASETS.register


class PluginError(ImportError):
    """A plugin that cannot be found or fails while it is imported; the message names it and the error."""


@contextlib.contextmanager
def _importable_from(directory: Path) -> Iterator[None]:
    """``directory`` first on the import path, as ``python -m`` (the current directory) or ``python
    FILE.py`` (the file's) would put it; only while the plugin loads, so that a file there cannot
    shadow a module imported later."""
    entry = str(directory)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        sys.path.remove(entry)


def _is_file_plugin(plugin: str) -> bool:
    return plugin.endswith(".py") or "/" in plugin or os.sep in plugin


def _module_name(path: Path) -> str:
    """The module name of a plugin file: the same in every process that loads this path (its
    workers included), and no other module's."""
    stem = "".join(c if c.isalnum() or c == "_" else "_" for c in path.stem)
    return f"fer_bench_plugin_{stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"


def _import_file(path: Path) -> None:
    if not path.is_file():
        raise PluginError(f"plugin file not found: {path}")
    name = _module_name(path)
    if name in sys.modules:  # loaded before: running it again would register everything twice
        return
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as import does: dataclasses and pickle look the module up by name
    try:
        with _importable_from(path.parent):
            spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def load_plugin(plugin: str) -> str:
    """Import ``plugin`` (a module name, looked up in the current directory too, or the path of a
    ``.py`` file) so that what it registers is available, tagged as a plugin; return how another
    process names it (a file by its absolute path).

    Raises :class:`PluginError` (an ``ImportError``) naming the plugin when it cannot be found or
    raises anything while it is imported.
    """
    for registry in (METHODS, NOISE_MODELS, DATASETS):
        registry._discover()  # built-ins first, so a plugin may not shadow one silently
    reference = str(Path(plugin).expanduser().resolve()) if _is_file_plugin(plugin) else plugin
    with _registering_from(f"plugin {plugin}"):
        try:
            if _is_file_plugin(plugin):
                _import_file(Path(reference))
            else:
                importlib.invalidate_caches()  # a file written a moment ago (same mtime as its directory's)
                with _importable_from(Path.cwd()):
                    importlib.import_module(plugin)
        except PluginError:
            raise
        except ModuleNotFoundError as exc:
            if exc.name is None or not (plugin == exc.name or plugin.startswith(exc.name + ".")):
                raise PluginError(f"plugin {plugin!r} failed to import: {exc}") from exc  # one of its imports
            raise PluginError(f"cannot import plugin module {plugin!r}: {exc} (a module is looked up on the "
                              f"import path and in the current directory; or give a .py file's path)") from exc
        except Exception as exc:  # a plugin's own error, of any kind: one line, not a traceback
            reason = (str(exc).strip().splitlines() or [""])[0]
            raise PluginError(f"plugin {plugin!r} failed to import: {type(exc).__name__}"
                              f"{': ' + reason if reason else ''}") from exc
    return reference


def load_env_plugins() -> None:
    """Load the modules listed in ``FER_BENCH_PLUGINS`` (comma-separated)."""
    for module in filter(None, (m.strip() for m in os.environ.get("FER_BENCH_PLUGINS", "").split(","))):
        load_plugin(module)


def list_methods(pattern: str = "*") -> list[str]:
    return METHODS.names(pattern)


def list_datasets(pattern: str = "*") -> list[str]:
    return DATASETS.names(pattern)


def create_dataset(name: str, root: Optional[Any] = None, progress: bool = True, **options: Any) -> Any:
    """Load a registered dataset (a :class:`~fer_bench.datasets.contract.DatasetLoader`) with its
    keyword options, checked by name first, and its cached landmarks attached.

    ``root`` is the dataset directory (default: the loader's ``default_root()``).
    """
    import inspect
    from pathlib import Path

    from .landmarks.extract import attach_cached_landmarks

    loader = DATASETS.get(name)
    params = inspect.signature(loader.load).parameters
    accepted = [n for n, p in params.items()
                if n not in ("root", "progress") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [k for k in options if k not in accepted]
    if unknown:
        raise ValueError(f"dataset option(s) {', '.join(unknown)} not understood; "
                         f"this dataset takes: {', '.join(accepted) or 'none'}")
    dataset = loader.load(Path(root) if root else None, progress=progress, **options)
    for split_name, split in (("training", dataset.train), ("test", dataset.test)):
        if len(split.labels) == 0:
            raise ValueError(f"dataset {dataset.name} at {dataset.root} has no {split_name} images")
    attach_cached_landmarks(dataset)
    return dataset


def list_noise_models(pattern: str = "*") -> list[str]:
    return NOISE_MODELS.names(pattern)
