"""``--config FILE.yaml`` for ``fer-bench run`` and ``sweep``: the command line's options, in a file.

Keys are the long option names without the dashes (``method``, ``noise``, ``rate``,
``noise-seed`` or ``noise_seed``, ``set``, ``data``, ...). A repeatable option (``set``,
``data``, ``grid``, ``slurm``) takes a mapping (``set: {epochs: 5, lr: 0.01}``) or a list of
``KEY=VALUE`` strings; a comma-separated option of ``sweep`` (``methods``, ``rates``, ...) a
list or a string. Options given on the command line override the file's (for ``set`` and the
other repeatable options, key by key). The file is only a way to type options: the run's
``config.json`` stays the record of what ran. PyYAML is read lazily, so nothing else needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping


def key_name(option: str) -> str:
    """``--noise-seed`` -> ``noise_seed``: how a long option is spelled in a config file."""
    return option.lstrip("-").replace("-", "_")


def read_config(path: Path | str) -> dict[str, Any]:
    """The file's top-level mapping, keys normalised with :func:`key_name`; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file not found: {path}")
    try:
        import yaml
    except ImportError:
        raise ValueError(f"--config {path}: reading YAML needs PyYAML: pip install pyyaml") from None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not a text (UTF-8) file; --config takes a YAML file of options") from None
    try:
        data = yaml.load(text, Loader=_unique_key_loader(yaml))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping of option: value, got {type(data).__name__}")
    config: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for k, v in data.items():
        key = key_name(str(k))
        if key in config:  # noise-seed and noise_seed: one option
            raise ValueError(f"{path}: option {key} is given twice (as {spelled[key]} and {k})")
        config[key], spelled[key] = v, str(k)
    return config


def _unique_key_loader(yaml: Any) -> type:
    """PyYAML's safe loader, refusing a key repeated in one mapping (where PyYAML keeps the last)."""
    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *defaults" may be overridden
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in first:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {key!r} (first on line {first[key] + 1})",
                            key_node.start_mark)
                    first[key] = key_node.start_mark.line
                except TypeError:  # an unhashable key: PyYAML's own error follows
                    continue
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader


def check_keys(config: Mapping[str, Any], known: list[str], path: Path | str) -> None:
    """Unknown keys are an error naming them and the known ones."""
    unknown = sorted(k for k in config if k not in known)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")


def as_pairs(value: Any, key: str, path: Path | str) -> list[str]:
    """A repeatable ``KEY=VALUE`` option's value: a mapping or a list of strings, as a list of strings."""
    if isinstance(value, Mapping):
        return [f"{k}={_text(v)}" for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if isinstance(value, str):
        return [value]
    raise ValueError(f"{path}: {key} must be a mapping or a list of KEY=VALUE, got {value!r}")


def as_text(value: Any) -> Any:
    """A single option's value as the command line would give it (lists comma-joined)."""
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    return str(value)
