"""``fer-bench methods show NAME``: a method's hyper-parameters and its official recipe, as text."""

from __future__ import annotations

import json
import textwrap
from typing import Any, Sequence

from .hparams import HParam


def default_text(spec: HParam) -> str:
    """A declared default as the card shows it: its value, or the run value it is taken from
    (``run's noise_rate``), or its value for each of that run value's (``0.7 (asymmetric_noise false), ...``)."""
    if spec.default_from is None:
        return value_text(spec.default)
    if spec.by is None:
        return f"run's {spec.default_from}"
    return ", ".join(f"{value_text(v)} ({spec.default_from} {value_text(k)})" for k, v in spec.by.items())


def value_text(value: Any) -> str:
    """A value as ``--set`` takes it: ``true``, ``none``, ``0.001``, ``[0.02, 0.25]``, ``adam``."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value).replace("null", "none")
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    return str(value)


def allowed_text(spec: HParam) -> str:
    """The values a hyper-parameter takes, short: ``[0, 1]``, ``all, low``, ``true, false``."""
    if not spec.declared:
        return "(undeclared)"
    if spec.choices is not None:
        return ", ".join(value_text(c) for c in spec.choices)
    if spec.type is bool:
        return "true, false"
    if spec.interval is not None:
        return f"each in {spec.interval}" if spec.type is list else str(spec.interval)
    return "any"


def _table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1]).rstrip() for r in rows]


def _changes(base: dict[str, Any], other: dict[str, Any]) -> str:
    """``key=value`` for each key ``other`` sets otherwise, then the keys it lacks (a schedule's own keys go
    with the schedule): ``schedule=cosine (without decay_start, decay_beta1)``."""
    changed = " ".join(f"{k}={value_text(v)}" for k, v in other.items() if k not in base or base[k] != v)
    dropped = [k for k in base if k not in other]
    return " ".join(filter(None, [changed, f"(without {', '.join(dropped)})" if dropped else ""])) or "nothing"


def _wrapped(label: str, text: str, width: int = 100) -> list[str]:
    return textwrap.wrap(text, width=width, initial_indent=f"  {label}", subsequent_indent=" " * (2 + len(label)),
                         break_on_hyphens=False)


def method_card(name: str) -> str:
    """What ``fer-bench methods show NAME`` prints."""
    from ..engine import recipe as recipes
    from ..registry import DATASETS, METHODS

    key = METHODS.canonical(name)
    entry = next(e for e in METHODS.entries() if e.name == key)
    cls = entry.obj
    specs = cls.hparam_specs()
    official, official_hp = recipes.layered(cls.recipe, cls.hparams, "official", "paper")
    lines = [f"{key}: {entry.description}  [{entry.source}]"]
    facts = ["needs landmarks"] if cls.needs_landmarks else []
    facts.append("pretrained weights (--pretrained) load into: "
                 + (", ".join(f"model.{m}" for m in cls.backbone_modules) or "nothing (backbone_modules is empty)"))
    lines += ["; ".join(facts), ""]

    if specs:
        lines.append("Hyper-parameters (--set NAME=VALUE; 'official': where the official recipe sets another value):")
        rows = [("name", "type", "default", "official", "allowed", "help")]
        for n, s in specs.items():
            differs = official_hp[n] != s.default or type(official_hp[n]) is not type(s.default)
            help_text = s.help + (f" [unit: {s.unit}]" if s.unit else "")
            rows.append((n, s.type_name(), default_text(s), value_text(official_hp[n]) if differs else "",
                         allowed_text(s), help_text))
        lines += _table(rows)
    else:
        lines.append("Hyper-parameters: none")
    lines.append("")

    lines.append(f"Recipe under --protocol official --profile paper (--set KEY=VALUE; * set by {key}'s own recipe, "
                 f"the rest are the engine's defaults):")
    rows = [("key", "", "value", "help")]
    rows += [(k, "*" if k in cls.recipe else "", value_text(v), recipes.RECIPE_HELP.get(k, ""))
             for k, v in official.items()]
    lines += _table(rows)
    lines += ["", "What the other profiles and the unified protocol change in it:"]
    shown: dict[str, dict[str, Any]] = {}
    for profile in recipes.PROFILES:
        if profile == "paper":
            continue
        recipe = recipes.layered(cls.recipe, cls.hparams, "official", profile)[0]
        text = _changes(official, recipe)
        for earlier, before in shown.items():  # cpu-face: "as --profile cpu, and pretrained=synthfer-id"
            if all(recipe[k] == v for k, v in before.items() if v != official[k]):
                text = f"as --profile {earlier}, and {_changes(before, recipe)}"
                break
        shown[profile] = recipe
        lines += _wrapped(f"--profile {profile}: ", text + _mapped_text(cls, "official", profile))
    unified, unified_hp = recipes.layered(cls.recipe, cls.hparams, "unified", "paper")
    changed_hp = _changes(official_hp, unified_hp)
    lines += _wrapped("--protocol unified: ", _changes(official, unified)
                      + ("" if changed_hp == "nothing" else f"; hyper-parameters {changed_hp}")
                      + _mapped_text(cls, "unified", "paper"))
    defaults = ", ".join(f"{name}'s {DATASETS.get(name).default_profile}" for name in DATASETS.names())
    lines.append(f"(default profiles: {defaults}; a dataset also sets val_split; pretrained_kind and normalize "
                 "'auto' follow the weights)")
    return "\n".join(lines)


def _mapped_text(cls: type, protocol: str, profile: str) -> str:
    """``; time constants mapped: omega 0.9 -> 0.57 (per visit)`` where the schedule maps any."""
    from ..engine import recipe as recipes

    mapped = recipes.resolve_mapped(cls.recipe, cls.hparams, protocol, profile, {})[2]
    return "; time constants mapped: " + ", ".join(m.describe() for m in mapped) if mapped else ""
