"""Schedule-aware time constants: a method's momenta and epoch points carried over to a run's schedule.

A method's official constants were tuned for its official schedule (LA-Net: 80 epochs at batch 128).
A run on another schedule (a CPU profile's 15 epochs at batch 64, or ``--set epochs=...``) that kept
them would change what they do: a per-step momentum of 0.999 leaves 0.999^7600 of its start after the
official run, 0.999^1680 (0.19) after a 15-epoch one. A hyper-parameter declared with a ``unit``
(:class:`~fer_bench.methods.hparams.HParam`) is mapped so that its effect over the whole run is the
one the official recipe has on the same data:

* ``"visit"``: a momentum applied each time a sample is visited (once an epoch), ``m ** (E0 / E)``;
  the same fraction of a sample's first value is left at the end;
* ``"step"``: a momentum applied every optimisation step, ``m ** (S0 / S)``, where the step counts
  are in the ratio ``(E0 / B0) / (E / B)`` on the same training set; the same fraction of the start
  is left at the end;
* ``"epoch"``: a (1-based) epoch at which something starts, ``1 + round((e - 1) * E / E0)``: the same
  fraction of training is done before it (SCN relabels from epoch 10 of 70, after 13% of training;
  from epoch 3 of 15, after 13%);
* ``"epochs"``: a number of epochs (a warm-up), ``round(e * E / E0)``, at least 1 when ``e`` is: the same
  fraction of training.

``E0, B0`` are the method's official epochs and batch size (its ``recipe``, else the engine's
defaults), ``E, B`` the run's. On the official schedule every mapping is the identity, so the official
recipe is untouched. A value the user sets (``--set omega=0.8``) is never mapped, and the recipe key
``time_constants: fixed`` turns the mapping off (the historical ``cpu`` and ``cpu-face`` profiles keep
their constants, so that their runs stay what they were).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # the methods package imports the engine's recipe, which imports this module
    from ..methods.hparams import HParam

MODES = ("mapped", "fixed")


@dataclass(frozen=True)
class Schedule:
    """How long a run trains: its epochs and (global) batch size."""

    epochs: int
    batch_size: int

    @classmethod
    def of(cls, recipe: Mapping[str, Any]) -> "Schedule":
        return cls(int(recipe["epochs"]), int(recipe["batch_size"]))

    def describe(self) -> str:
        return f"{self.epochs} epochs at batch {self.batch_size}"


@dataclass(frozen=True)
class Mapped:
    """One hyper-parameter carried from the official schedule to the run's."""

    name: str
    unit: str
    official: Any
    value: Any

    def describe(self) -> str:
        per = {"visit": "per visit", "step": "per step", "epoch": "epoch", "epochs": "epochs"}[self.unit]
        return f"{self.name} {_fmt(self.official)} -> {_fmt(self.value)} ({per})"

    def record(self) -> dict[str, Any]:
        return {"unit": self.unit, "official": self.official, "value": self.value}


def _fmt(x: Any) -> str:
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def map_value(value: Any, unit: str, official: Schedule, run: Schedule) -> Any:
    """``value`` (declared in ``unit``) on the ``run`` schedule; the identity when the schedules agree."""
    if official == run:
        return value
    if unit == "visit":
        return float(value) ** (official.epochs / run.epochs)
    if unit == "step":
        ratio = (official.epochs / official.batch_size) / (run.epochs / run.batch_size)
        return float(value) ** ratio
    if unit == "epoch":
        return 1 + round((value - 1) * run.epochs / official.epochs)
    if unit == "epochs":
        return max(min(1, value), round(value * run.epochs / official.epochs))
    raise ValueError(f"unknown time unit {unit!r}")


def map_constants(specs: Mapping[str, "HParam"], hparams: dict[str, Any], official: Schedule, run: Schedule,
                  keep: frozenset[str] | set[str] = frozenset()) -> list[Mapped]:
    """Map, in place, every hyper-parameter of ``hparams`` whose declaration has a unit, except those in
    ``keep`` (set by the user); return what changed, in declaration order."""
    changed = []
    for name, spec in specs.items():
        if spec.unit is None or name in keep or name not in hparams:
            continue
        before = hparams[name]
        after = map_value(before, spec.unit, official, run)
        if after != before:
            hparams[name] = after
            changed.append(Mapped(name, spec.unit, before, after))
    return changed
