"""Registries of methods, noise models and datasets, and plugin discovery.

Each kind has one :class:`Registry`, filled lazily on first lookup from three
sources, in order:

1. the built-in modules (``fer_bench.methods``, ``fer_bench.noise``, ``fer_bench.datasets``);
2. the entry-point groups ``fer_bench.methods``, ``fer_bench.noise`` and
   ``fer_bench.datasets`` of installed distributions;
3. modules named with ``--plugin module.path`` (or the ``FER_BENCH_PLUGINS``
   environment variable, comma-separated), imported by :func:`load_plugin`.

An entry point may name a module (importing it registers what it defines) or an
object, which is then registered under the entry point's name. A plugin that
fails to import is reported as a warning and never breaks the listing of the
others. Each entry remembers where it came from, for ``fer-bench methods list``.
"""

from __future__ import annotations

import ast
import contextlib
import fnmatch
import importlib
import importlib.util
import os
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

    def __init__(self, kind: str, group: str, builtins: tuple[str, ...]) -> None:
        self.kind = kind
        self.group = group
        self._builtins = builtins
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

        A second registration of the same name is an error unless ``override=True``.
        """

        def add(target: T) -> T:
            key = name.lower()
            if key in self._entries and not override and self._entries[key].obj is not target:
                raise ValueError(
                    f"{self.kind} {key!r} is already registered "
                    f"(from {self._entries[key].source}); pass override=True to replace it"
                )
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
                    self.register(ep.name, loaded)

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


METHODS: Registry = Registry("method", "fer_bench.methods", ("fer_bench.methods",))
NOISE_MODELS: Registry = Registry("noise model", "fer_bench.noise", ("fer_bench.noise",))
DATASETS: Registry = Registry("dataset", "fer_bench.datasets", ("fer_bench.datasets",))

register_method = METHODS.register
register_noise_model = NOISE_MODELS.register
register_dataset = DATASETS.register


def load_plugin(module_path: str) -> None:
    """Import ``module_path`` so that what it registers is available, tagged as a plugin.

    Raises ``ImportError`` naming the module when it cannot be imported.
    """
    for registry in (METHODS, NOISE_MODELS, DATASETS):
        registry._discover()  # built-ins first, so a plugin may not shadow one silently
    with _registering_from(f"plugin {module_path}"):
        try:
            importlib.import_module(module_path)
        except ImportError as exc:
            raise ImportError(f"cannot import plugin module {module_path!r}: {exc}") from exc


def load_env_plugins() -> None:
    """Load the modules listed in ``FER_BENCH_PLUGINS`` (comma-separated)."""
    for module in filter(None, (m.strip() for m in os.environ.get("FER_BENCH_PLUGINS", "").split(","))):
        load_plugin(module)


def list_methods(pattern: str = "*") -> list[str]:
    return METHODS.names(pattern)


def list_datasets(pattern: str = "*") -> list[str]:
    return DATASETS.names(pattern)


def create_dataset(name: str, root: Optional[Any] = None, progress: bool = True, **options: Any) -> Any:
    """Load a registered dataset (a :class:`~fer_bench.datasets.protocol.DatasetLoader`) with its
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
