"""What a method may report about its mechanism, for the engine to score against the truth.

A method never sees the clean labels. After every epoch the engine asks it
(:meth:`fer_bench.methods.base.Method.mechanism`) what its mechanism is doing, as a dict of named
values, and scores each against the flipped set it alone knows (:mod:`fer_bench.engine.mechanism`);
the numbers go into ``metrics.csv`` as ``mech_<name>...`` columns beside the memorisation shares:

* a plain number (a share of samples below a threshold, a map's side): written as it is,
  ``mech_<name>``;
* :class:`LabelGuess`, a label per training sample that the mechanism believes (LA-Net's memory
  peak, its neighbours' majority): ``mech_<name>_clean`` and ``mech_<name>_noisy``, the shares of the
  flipped samples where it is the clean label and where it is the noisy one, and
  ``mech_<name>_agree``, its agreement with the clean label over all samples; with ``among``, the
  name of another guess, also ``mech_<name>_clean_among_<among>``: the share of the flipped samples
  where that other guess is the clean label for which this one is too;
* :class:`NoiseScore`, a number per sample that should be higher for flipped samples (RUL's
  uncertainty): ``mech_<name>_auroc``, the area under the ROC curve separating flipped from unflipped;
* :class:`NoiseFlag`, the samples a mechanism singles out as noisy (SCN's low-importance group, its
  relabelled samples): ``mech_<name>_share`` of all samples, and its ``_precision`` and ``_recall``
  against the flipped set.

Each tensor has one row per training sample, in the order of ``ctx.train_labels``; a sample the
method has not visited yet may carry any value (``valid`` masks it out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import torch


@dataclass
class LabelGuess:
    """A label per sample, ``(N,)`` long; ``among``: another guess's name to condition on."""

    labels: torch.Tensor
    among: Optional[str] = None
    valid: Optional[torch.Tensor] = None


@dataclass
class NoiseScore:
    """A score per sample, ``(N,)`` float, meant to be higher where the label was flipped."""

    scores: torch.Tensor
    valid: Optional[torch.Tensor] = None


@dataclass
class NoiseFlag:
    """The samples singled out as noisy, ``(N,)`` bool."""

    mask: torch.Tensor
    valid: Optional[torch.Tensor] = None


Probe = Union[float, int, LabelGuess, NoiseScore, NoiseFlag]


class SampleTrace:
    """Per-sample values a method keeps only to report its mechanism: for each sample, what its last visit
    wrote. Nothing in training reads them. ``shared_rows()`` lists them for a multi-process run and
    ``state_dict`` / ``load_state_dict`` carry them through a resume (a checkpoint without them, from an
    older fer-bench, leaves them unvisited: their columns are then NaN until each sample is seen again)."""

    def __init__(self, num_samples: int, device: torch.device, **columns: torch.dtype) -> None:
        self.columns = {name: torch.zeros(num_samples, dtype=dtype, device=device) for name, dtype in columns.items()}
        self.visited = torch.zeros(num_samples, dtype=torch.float32, device=device)  # float: any backend gathers it

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.columns[name]

    @torch.no_grad()
    def write(self, indices: torch.Tensor, **values: torch.Tensor) -> None:
        for name, value in values.items():
            column = self.columns[name]
            column[indices] = value.detach().reshape(-1).to(column.dtype)
        self.visited[indices] = 1.0

    def seen(self) -> torch.Tensor:
        """Which samples have been visited, ``(N,)`` bool (the ``valid`` of a probe)."""
        return self.visited > 0

    def rows(self) -> list[torch.Tensor]:
        return [*self.columns.values(), self.visited]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**{name: t.cpu() for name, t in self.columns.items()}, "visited": self.visited.cpu()}

    def load_state_dict(self, state: Optional[dict[str, torch.Tensor]]) -> None:
        if not state or any(name not in state for name in (*self.columns, "visited")):
            self.visited.zero_()
            return
        for name, column in self.columns.items():
            column.copy_(state[name])
        self.visited.copy_(state["visited"])
