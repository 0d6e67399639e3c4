"""A method's hyper-parameters: declared once, typed, validated, listed.

A method declares each hyper-parameter with :class:`HParam`::

    hparams = {
        "delta": HParam(0.7, range=(0, 1), help="pseudo-label confidence"),
        "heatmap_peak": HParam("centre", choices=("centre", "official"), help="where heatmaps peak"),
    }

The declaration says everything the suite needs to know about a hyper-parameter:

* its **default** (what the run records when nothing overrides it; its JSON type is the one
  recorded, so a float default is written as a float, ``1.0``, not ``1``);
* its **type**: ``bool``, ``int``, ``float``, ``str`` or ``list``, inferred from the default when
  not given. ``--set`` values are converted to it as the recipe's keys are (an integer may stand
  for a float and becomes one; a tuple becomes a list) and anything else is refused;
* the values it may take: a **range** ``(low, high)``, both ends included and ``None`` for no
  bound, or, where an end is excluded, an interval written as text, ``"(0, inf)"`` or
  ``"(0, 1]"`` (for a list, every element must lie in it), or **choices**, a tuple of the values
  allowed; ``check``, a function of the value that returns what is wrong with it (or ``None``),
  covers what a range or choices cannot say (see :func:`ascending_pair`);
* its **help**, one line for ``fer-bench methods show``;
* optionally its **unit** when it is a time constant or a schedule point: ``"epoch"`` (a 1-based
  epoch at which something starts), ``"epochs"`` (a number of epochs, such as a warm-up), ``"step"``
  (per optimisation step, such as an EMA momentum applied every step) or ``"visit"`` (per visit of a
  sample, such as a per-sample memory's momentum). A run on another schedule than the method's
  official one maps the value by it (:mod:`fer_bench.engine.timescale`);
* optionally **default_from**, the name of a run value (:data:`RUN_VALUES`) that the default is taken
  from when a run's recipe is resolved, for a method whose official code defaults a hyper-parameter
  to a setting of the run (Co-teaching's forget rate is the run's nominal noise rate). Its declared
  default is ``None`` (give ``type=``); the run's ``config.json`` records the value the method was
  given; a run without that value (a label-file run has no nominal noise rate) must give it with
  ``--set`` and is refused with a message that says so (:func:`run_defaults`). The value is the run's
  *nominal* setting, never anything measured on its labels. With **by**, a mapping from the run value's
  values to defaults, the default is the one for the run's value (ELR's official beta and lambda are
  one pair for symmetric and another for asymmetric noise).

A plain value (``hparams = {"smoothing": 0.1}``) is accepted too, so a plugin need not declare
anything: it is an *undeclared* hyper-parameter whose overrides are checked only for the default's
type (an integer may stand for a float).

Checks happen in three places: a declaration is checked when it is made (its default must be
allowed), a method's declarations when the method is registered (names that are also recipe keys
are refused, see :func:`check_method`), and values when a run's recipe is resolved
(:func:`fer_bench.engine.recipe.resolve`, for ``--set``) and when a method is built
(:meth:`fer_bench.methods.base.Method.check_hparams`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Union

from ..errors import excerpt

TYPES: tuple[type, ...] = (bool, int, float, str, list)
UNITS: tuple[str, ...] = ("epoch", "epochs", "step", "visit")
# The run values a default may be taken from (``default_from``): what each is, and which runs have none.
RUN_VALUES: dict[str, str] = {
    "noise_rate": "the run's nominal noise rate (--rate; 0 without noise)",
    # the CIFAR scripts' noise_mode == 'asym': flips that are not uniform over the other classes
    "asymmetric_noise": "whether the run's noise model flips other than uniformly (--noise asym, confusion, "
                        "annotator ...: true; sym or clean labels: false)",
}
_WITHOUT: dict[str, str] = {
    "noise_rate": "a run on a label file (--noise-file) has no nominal noise rate",
    "asymmetric_noise": "a run on a label file (--noise-file) has no noise model",
}

Bound = Optional[float]
RangeSpec = Union[tuple[Bound, Bound], str]

_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list"}
_INTERVAL = re.compile(r"^\s*([\[(])\s*([^,\s]+)\s*,\s*([^,\s]+)\s*([\])])\s*$")


class HParamError(ValueError):
    """A declaration that cannot be right (its default not allowed, an unknown type or unit...)."""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bound(text: str, where: str) -> Bound:
    if text.lstrip("+-").lower() in ("inf", "infinity"):
        if (text.startswith("-")) != (where == "low"):
            raise HParamError(f"range bound {text!r}: -inf can only be a low bound and inf a high one")
        return None
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        raise HParamError(f"range bound {text!r} is not a number") from None


def _fmt(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclass(frozen=True)
class Interval:
    """``low``..``high`` (``None``: unbounded), each end included unless it is open."""

    low: Bound = None
    high: Bound = None
    low_open: bool = False
    high_open: bool = False

    @classmethod
    def of(cls, spec: RangeSpec) -> "Interval":
        if isinstance(spec, str):
            m = _INTERVAL.match(spec)
            if not m:
                raise HParamError(f"range {spec!r}: write it as an interval such as '[0, 1]' or '(0, inf)'")
            interval = cls(_bound(m[2], "low"), _bound(m[3], "high"), m[1] == "(", m[4] == ")")
        elif isinstance(spec, (tuple, list)) and len(spec) == 2:
            low, high = (None if _number(b) and math.isinf(b) else b for b in spec)  # inf: no bound
            interval = cls(low, high)
        else:
            raise HParamError(f"range {spec!r}: expected (low, high), or an interval such as '(0, 1]'")
        for b in (interval.low, interval.high):
            if b is not None and not (_number(b) and math.isfinite(b)):
                raise HParamError(f"range {spec!r}: a bound must be a finite number or None")
        if interval.low is not None and interval.high is not None and interval.low > interval.high:
            raise HParamError(f"range {spec!r}: the low bound is above the high one")
        return interval

    def __contains__(self, value: Any) -> bool:
        if not _number(value) or math.isnan(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))

    def __str__(self) -> str:
        low = "-inf" if self.low is None else _fmt(self.low)
        high = "inf" if self.high is None else _fmt(self.high)
        return f"{'(' if self.low_open or self.low is None else '['}{low}, {high}" \
               f"{')' if self.high_open or self.high is None else ']'}"


@dataclass(frozen=True)
class HParam:
    """One hyper-parameter: default, type, allowed values, help (see the module's docstring)."""

    default: Any
    type: Optional[type] = None
    range: Optional[RangeSpec] = None
    choices: Optional[tuple[Any, ...]] = None
    help: str = ""
    unit: Optional[str] = None
    check: Optional[Callable[[Any], Optional[str]]] = None
    default_from: Optional[str] = None  # a name in RUN_VALUES: the default is that run value
    by: Optional[Mapping[Any, Any]] = None  # with default_from: the default for each of the run value's values
    declared: bool = True  # False: a plain value from a plugin (only its type is checked)
    interval: Optional[Interval] = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kind = self.type if self.type is not None else type(self.default)
        if kind is tuple:
            kind = list
        if kind not in TYPES:
            if self.declared:
                raise HParamError(f"HParam({self.default!r}): type must be one of "
                                  f"{', '.join(t.__name__ for t in TYPES)}, not {kind.__name__} (give type=...)")
            kind = None  # an undeclared value of another kind (None, a dict...): not checked
        object.__setattr__(self, "type", kind)
        if not self.declared:
            return
        if kind is float and _number(self.default):
            object.__setattr__(self, "default", float(self.default))  # recorded as a float, as --set makes it
        if self.range is not None:
            if kind not in (int, float, list):
                raise HParamError(f"HParam({self.default!r}): a range needs a number (or a list of numbers)")
            object.__setattr__(self, "interval", Interval.of(self.range))
        if self.choices is not None:
            if isinstance(self.choices, (str, bytes)) or not self.choices:
                raise HParamError(f"HParam({self.default!r}): choices must be a non-empty tuple of values")
            object.__setattr__(self, "choices", tuple(self.choices))
            if self.range is not None:
                raise HParamError(f"HParam({self.default!r}): give a range or choices, not both")
        if self.unit is not None and self.unit not in UNITS:
            raise HParamError(f"HParam({self.default!r}): unit {self.unit!r} is not one of {', '.join(UNITS)}")
        if not isinstance(self.help, str):
            raise HParamError(f"HParam({self.default!r}): help must be a string")
        if self.default_from is not None:
            if self.default_from not in RUN_VALUES:
                raise HParamError(f"HParam(default_from={self.default_from!r}): not a run value; known: "
                                  f"{', '.join(RUN_VALUES)}")
            if self.default is not None:
                raise HParamError(f"HParam({self.default!r}, default_from={self.default_from!r}): a default taken "
                                  f"from the run has none of its own: declare it as None")
        if self.by is not None:
            if self.default_from is None or not self.by:
                raise HParamError(f"HParam(by={self.by!r}): by= gives a default per value of a run value: name "
                                  f"it with default_from=, and give at least one value")
            object.__setattr__(self, "by", dict(self.by))
        if self.choices is not None:
            wrong = [c for c in self.choices if self._type_problem(c)]
            if wrong:
                raise HParamError(f"HParam({self.default!r}): choice {wrong[0]!r} is not {_TYPE_WORDS[kind]}")
        problem = None if self.default_from is not None else self.problem(self.default)
        if problem:
            raise HParamError(f"HParam({self.default!r}): the default {problem}")
        for key, value in (self.by or {}).items():
            problem = self.problem(value)
            if problem:
                raise HParamError(f"HParam(by=...): the default for {self.default_from} = {key!r}, {value!r}, "
                                  f"{problem}")

    # --- what values it takes ----------------------------------------------------------
    def describe(self) -> str:
        """The values allowed, as a phrase: ``a number in [0, 1]``, ``one of all, low``..."""
        if not self.declared or self.type is None:
            return f"a value like {self.default!r}"
        if self.choices is not None:
            return "one of " + ", ".join(_fmt(c) if not isinstance(c, bool) else str(c).lower()
                                         for c in self.choices)
        if self.type is list:
            return "a list" + (f" of numbers in {self.interval}" if self.interval else "")
        return _TYPE_WORDS[self.type] + (f" in {self.interval}" if self.interval else "")

    def type_name(self) -> str:
        return self.type.__name__ if self.type is not None else "any"

    def _type_problem(self, value: Any) -> bool:
        kind = self.type
        if kind is bool:
            return not isinstance(value, bool)
        if kind is int:
            return not (isinstance(value, int) and not isinstance(value, bool))
        if kind is float:
            return not _number(value)
        if kind is str:
            return not isinstance(value, str)
        if kind is list:
            return not isinstance(value, (list, tuple))
        return False

    def problem(self, value: Any) -> Optional[str]:
        """What is wrong with ``value`` (``must be ...``), or ``None``. Undeclared values are not checked."""
        if not self.declared or self.type is None:
            return None
        if self._type_problem(value):
            return f"must be {self.describe()}"
        if self.choices is not None and value not in self.choices:  # (the type is checked: True is no 1)
            return f"must be {self.describe()}"
        if self.interval is not None:
            items = list(value) if self.type is list else [value]
            if not all(x in self.interval for x in items):
                return f"must be {self.describe()}"
        if self.check is not None:
            return self.check(value)
        return None

    def convert(self, value: Any) -> Any:
        """A ``--set`` value as this hyper-parameter records it (an integer for a float becomes a float,
        a tuple a list); :class:`ValueError` with ``must be ...`` when it is not allowed."""
        if self.type is float and _number(value):
            value = float(value)
        elif self.type is list and isinstance(value, tuple):
            value = list(value)
        problem = self.problem(value)
        if problem:
            raise ValueError(problem)
        return value


def ascending_pair(value: Any) -> Optional[str]:
    """A ``check`` for ``[low, high]`` with ``low <= high`` (a range of areas, of scales...)."""
    if len(value) != 2 or not all(map(_number, value)) or not value[0] <= value[1]:
        return "must be [low, high] with low <= high"
    return None


def declare(hparams: Mapping[str, Any]) -> dict[str, HParam]:
    """Every hyper-parameter as an :class:`HParam`; a plain value becomes an undeclared one."""
    return {name: spec if isinstance(spec, HParam) else HParam(spec, declared=False)
            for name, spec in hparams.items()}


def defaults(specs: Mapping[str, HParam]) -> dict[str, Any]:
    """The default values (a list default is copied, so a run cannot change the declaration)."""
    return {name: list(s.default) if isinstance(s.default, list) else s.default for name, s in specs.items()}


def unresolved(spec: HParam, value: Any) -> bool:
    """Whether ``value`` is the placeholder of a default still to be taken from a run (``default_from``):
    what the declarations, ``fer-bench methods show`` and a recipe resolved without a run hold."""
    return spec.default_from is not None and value is None


def run_defaults(specs: Mapping[str, HParam], hparams: dict[str, Any], run_values: Mapping[str, Any],
                 given: frozenset[str] | set[str] = frozenset()) -> None:
    """Give, in place, every hyper-parameter whose default is a run value (``default_from``) that value from
    ``run_values``, converted and checked by its declaration; those in ``given`` (set by the user) and those
    the protocol's recipe set keep theirs. A run without the value (``None``: a label-file run has no nominal
    noise rate) is a :class:`ValueError` that says to give it with ``--set``."""
    for name, spec in specs.items():
        if spec.default_from is None or name in given or not unresolved(spec, hparams.get(name)):
            continue
        value = run_values.get(spec.default_from)
        what = RUN_VALUES[spec.default_from]
        if value is None:
            raise ValueError(f"{name} defaults to {what}, and {_WITHOUT[spec.default_from]}: "
                             f"give it with --set {name}=VALUE ({spec.describe()})")
        if spec.by is not None:
            value = spec.by[value]
        try:
            hparams[name] = spec.convert(value)
        except ValueError as exc:
            raise ValueError(f"{name} defaults to {what}, {excerpt(value)} in this run, which {exc}: "
                             f"give another with --set {name}=VALUE") from None


def check_values(owner: str, specs: Mapping[str, HParam], values: Mapping[str, Any]) -> None:
    """A :class:`ValueError` naming the first value that its declaration does not allow."""
    for name, value in values.items():
        spec = specs.get(name)
        if spec is not None and unresolved(spec, value):
            raise ValueError(f"{owner}: {name} defaults to {RUN_VALUES[spec.default_from]}, which it was not "
                             f"given (a recipe resolved without the run's values; give {name} with --set)")
        problem = spec.problem(value) if spec is not None else None
        if problem:
            raise ValueError(f"{owner}: {name}={excerpt(value)} {problem}")


def check_method(name: str, cls: Any) -> None:
    """What registration refuses (a :class:`ValueError` naming the method and the culprit): a hyper-parameter
    that is also a recipe key (``--set`` and the official recipe would set the recipe's, never it), one whose
    name is not an identifier (``self.hp.NAME``), a value the method's own recipe gives a hyper-parameter that
    its declaration does not allow, and ``backbone_modules`` that is not a tuple of module paths."""
    hparams = getattr(cls, "hparams", None)
    if hparams is None:  # not a Method (a registry of other things, a test double)
        return
    from ..engine.recipe import RECIPE_HELP, recipe_keys

    if not isinstance(hparams, Mapping):
        raise ValueError(f"method {name!r}: hparams must be a dict of name -> HParam(...)")
    specs = declare(hparams)
    taken = recipe_keys()
    for key in specs:
        if not (isinstance(key, str) and key.isidentifier()):
            raise ValueError(f"method {name!r}: hyper-parameter name {key!r} is not a Python identifier")
        if key in taken:
            what = RECIPE_HELP.get(key, "a recipe key")
            raise ValueError(f"method {name!r}: hyper-parameter {key!r} has the name of a recipe key ({key}: {what}); "
                             f"`--set {key}=...` would set the recipe's, never the hyper-parameter: rename it")
    for key, value in dict(getattr(cls, "recipe", {}) or {}).items():
        problem = specs[key].problem(value) if key in specs else None
        if problem:
            raise ValueError(f"method {name!r}: its recipe sets {key}={excerpt(value)}, which {problem}")
    modules = getattr(cls, "backbone_modules", ())
    if isinstance(modules, str) or not all(isinstance(m, str) and m for m in modules):
        raise ValueError(f"method {name!r}: backbone_modules must be a tuple of module paths "
                         f"(such as ('backbone',)), not {modules!r}")
