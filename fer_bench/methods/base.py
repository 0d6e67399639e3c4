"""The interface a training method implements, built-in or plugin.

A method owns its model and its loss; the engine owns everything else (data,
augmentation, optimiser, schedule, evaluation, checkpoints). The contract:

* ``hparams``: the method's hyper-parameters under the paper's names, each declared
  once with :class:`~fer_bench.methods.hparams.HParam` (default, type, range or
  choices, help); ``--set name=value`` overrides them, converted and checked by
  the declaration, and ``fer-bench methods show NAME`` lists them. A plain value
  (``{"smoothing": 0.1}``) is still accepted, as an undeclared hyper-parameter
  checked only against its default's type. A name that is also a recipe key
  (``momentum``, ``gamma``, ``lr``...) is refused when the method is registered.
  Where the official code defaults a hyper-parameter to a setting of the run
  (Co-teaching's forget rate: the nominal noise rate), declare it with
  ``HParam(None, type=float, default_from="noise_rate")``: the engine gives it
  the run's nominal ``--rate`` when the run's recipe is resolved (never the
  realised rate, nor anything else of the clean labels), config.json records
  it, and a run on a label file, which has no nominal rate, must ``--set`` it.
* ``recipe``: the method's official training recipe (optimiser, lr, epochs,
  batch, schedule, backbone...), as overrides of the engine's defaults; used
  with ``--protocol official``. ``--protocol unified`` ignores it.
* :meth:`build_model` returns the network; :meth:`training_step` returns the
  loss for one augmented :class:`Batch`; :meth:`predict` returns test logits.
* ``backbone_modules``: the paths in the model (``model.get_submodule``) of the
  modules that pretrained weights load into; by default ``("backbone",)``, the
  common ``self.model.backbone``; ``()`` when the method has none.
* Optional hooks: :meth:`check_hparams` (checks the declarations cannot express,
  such as a value that must divide the recipe's batch size), :meth:`param_groups`
  (per-group lr scales), :meth:`backbones` (the modules of ``backbone_modules``),
  :meth:`on_epoch_start` / :meth:`on_epoch_end`, :meth:`epoch_indices`
  (a custom sampler), :meth:`extra_state` / :meth:`load_extra_state` (anything
  besides the model that must survive a resume), :meth:`on_train_end`
  (artefacts for the run directory and numbers for ``result.json``), and
  :meth:`mechanism` / :meth:`mechanism_off` (what the method's mechanism is doing,
  scored every epoch against the flipped set the method never sees, and which of
  its parts stayed off: :mod:`fer_bench.methods.probes`).
* Several processes (torchrun, :mod:`fer_bench.engine.distributed`): each rank's
  :meth:`training_step` sees its shard of the global batch, and ``ctx.world`` says
  which rank of how many it is. :meth:`shared_rows` names the per-sample memories
  the engine keeps identical on every rank (the rows a step changed are gathered
  from all ranks after it); anything else a method needs from the other ranks it
  gathers itself (e.g. LA-Net's keys), without gradient. What each built-in
  method does per rank is tabled in docs/how-to/gpus.md.

What a batch carries covers the peers: sample indices (per-sample memories),
the current training labels (``ctx.train_labels``, which a method may rewrite,
as SCN's relabelling does), landmarks transformed with the image (LA-Net), the
raw uint8 images and the batch's generator (extra views, as EAC needs), and,
for a method that asks, the images without the Gaussian-noise op (EAC's mirror).

Beside the batches, ``ctx.train_pass`` lets a method pass over its whole training
set as evaluation sees it (resized and normalised, never augmented), as DivideMix
does at the start of every epoch to fit its mixture model to per-sample losses:
iterating it yields ``(indices, images)`` in index order, in batches of the
recipe's ``eval_batch_size``, and no label (a method has ``ctx.train_labels``);
its ``amp`` says whether evaluation runs under bf16 autocast. The engine sets it
before the first epoch (:class:`fer_bench.engine.inference.TrainPass`); it is
``None`` where nothing trains (a finished run rebuilt for evaluation). A pass
draws no random number; the method puts its networks in eval mode for it itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar, Iterable, Optional

import torch
from torch import nn

from ..engine.distributed import SINGLE, World
from .hparams import HParam, check_values, declare, defaults
from .probes import Probe, SampleTrace


@dataclass
class MethodContext:
    """What a method may know about the run it is part of.

    The clean training labels are deliberately absent: a method sees only the
    (noisy) labels it is trained on, in ``train_labels``, a long tensor on the
    training device that the method may modify in place.
    """

    num_classes: int
    class_names: tuple[str, ...]
    train_labels: torch.Tensor
    device: torch.device
    recipe: dict[str, Any]
    epochs: int
    train_landmarks: Optional[torch.Tensor] = None
    train_names: list[str] = field(default_factory=list)
    world: World = SINGLE  # this process's rank and the number of processes training the run
    # the training images as evaluation sees them, (indices, images) batches (engine.inference.TrainPass);
    # set by the engine before the first epoch, None where nothing trains
    train_pass: Optional[Iterable[tuple[torch.Tensor, torch.Tensor]]] = None

    @property
    def num_train(self) -> int:
        return int(self.train_labels.numel())


@dataclass
class Batch:
    """One augmented training batch.

    Attributes:
        images: normalised float ``(B, 3, S, S)`` on the device.
        labels: the current training labels of these samples ``(B,)``.
        indices: their dataset indices ``(B,)`` (long, on the device).
        raw: the un-augmented uint8 images ``(B, H, W, 3)`` on the device.
        gen: the CPU generator this batch's augmentation drew from; draw extra
            views from it so that they are reproducible too.
        flipped: bool ``(B,)``, which samples were mirrored.
        landmarks: ``(B, K, 2)`` in pixels of ``images`` when the method needs them.
        noiseless: ``images`` without the Gaussian-noise op (same geometry, colour
            and erasing), for a method that sets ``needs_noiseless``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    raw: torch.Tensor
    gen: torch.Generator
    flipped: torch.Tensor
    landmarks: Optional[torch.Tensor] = None
    noiseless: Optional[torch.Tensor] = None


@dataclass
class StepOutput:
    """The loss to minimise, optionally the logits (for train accuracy) and scalars to log.

    ``logs`` holds 0-d tensors; the engine averages them over the epoch into
    metrics.csv without reading them every step (which would stall a GPU).
    """

    loss: torch.Tensor
    logits: Optional[torch.Tensor] = None
    logs: dict[str, torch.Tensor] = field(default_factory=dict)


class Method:
    """Base class of every method; subclass it and register with ``register_method``."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    hparams: ClassVar[dict[str, Any]] = {}  # name -> HParam(default, range=..., choices=..., help=...)
    recipe: ClassVar[dict[str, Any]] = {}
    backbone_modules: ClassVar[tuple[str, ...]] = ("backbone",)  # where pretrained weights load (model paths)
    # Per-sample values kept only for the mechanism diagnostics (set one in __init__): the default
    # shared_rows, extra_state and load_extra_state carry it across ranks and through a resume.
    trace: Optional[SampleTrace] = None
    needs_landmarks: ClassVar[bool] = False
    needs_noiseless: ClassVar[bool] = False  # batches also carry the images without the Gaussian noise

    def __init__(self, ctx: MethodContext, hparams: dict[str, Any]) -> None:
        self.ctx = ctx
        self.check_hparams(hparams)
        self.hp = SimpleNamespace(**hparams)
        self.model = self.build_model().to(ctx.device)

    @classmethod
    def hparam_specs(cls) -> dict[str, HParam]:
        """The declarations of ``hparams`` (a plain value becomes an undeclared :class:`HParam`)."""
        return declare(cls.hparams)

    @classmethod
    def hparam_defaults(cls) -> dict[str, Any]:
        """The hyper-parameters' default values, by name."""
        return defaults(cls.hparam_specs())

    @classmethod
    def display_name(cls) -> str:
        """How messages name the method: its ``name``, else its class's name in lower case."""
        return cls.name or cls.__name__.lower()

    def check_hparams(self, hparams: dict[str, Any]) -> None:
        """Refuse (``ValueError``) values that the declarations do not allow, before the model is built.
        Override it, calling this one, for checks a declaration cannot express (``self.ctx`` is set)."""
        check_values(self.display_name(), self.hparam_specs(), hparams)

    # --- required -------------------------------------------------------
    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def training_step(self, batch: Batch) -> StepOutput:
        raise NotImplementedError

    # --- optional, with defaults ----------------------------------------
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of test images (the model is in eval mode)."""
        return self.model(images)

    def inference_network(self) -> nn.Module:
        """The module that maps normalised test images to logits, as :meth:`predict` does, without the
        parts only training uses (what ``fer-bench export`` writes). Override when ``predict`` is more
        than ``self.model(images)`` or the model holds training-only heads."""
        return self.model

    def param_groups(self) -> list[dict[str, Any]]:
        """Parameter groups; a group may carry ``lr_scale`` (multiplies the recipe's lr)."""
        return [{"params": [p for p in self.model.parameters() if p.requires_grad]}]

    def backbones(self) -> list[nn.Module]:
        """The modules that ``--set pretrained=...`` weights load into (torchvision ResNet names): those
        that ``backbone_modules`` names, in its order."""
        found = []
        for path in self.backbone_modules:
            try:
                found.append(self.model.get_submodule(path))
            except AttributeError:
                raise ValueError(f"{self.display_name()}: backbone_modules names {path!r}, which its model "
                                 f"({type(self.model).__name__}) does not have; set backbone_modules to the paths "
                                 f"of the modules pretrained weights load into, or () for none") from None
        return found

    def on_epoch_start(self, epoch: int) -> None:
        pass

    def on_epoch_end(self, epoch: int) -> dict[str, float]:
        """Called after the epoch's training steps; returned scalars go into metrics.csv."""
        return {}

    def epoch_indices(self, epoch: int, gen: torch.Generator) -> Optional[torch.Tensor]:
        """The epoch's sample order, or ``None`` for the engine's uniform shuffle."""
        return None

    def shared_rows(self) -> list[torch.Tensor]:
        """Per-sample memories (sample index along dim 0) that every rank must hold alike; a step may
        change the rows of its batch. By default the training labels, which a relabelling method rewrites, and
        the rows of its :attr:`trace`."""
        return [self.ctx.train_labels, *(self.trace.rows() if self.trace is not None else ())]

    def extra_state(self) -> dict[str, Any]:
        """State beyond the model's parameters that a resume needs (tensors and plain values); by default its
        :attr:`trace`. An override adds its own to ``super().extra_state()``."""
        return {"trace": self.trace.state_dict()} if self.trace is not None else {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if self.trace is not None:
            self.trace.load_state_dict(state.get("trace"))

    def on_train_end(self, run_dir: Path) -> dict[str, Any]:
        """Write method artefacts into ``run_dir``; return numbers for ``result.json``."""
        return {}

    def mechanism(self) -> dict[str, Probe]:
        """What the method's mechanism is doing after an epoch, by name: numbers, and per-sample guesses,
        scores or flags that the engine scores against the flipped set (:mod:`fer_bench.methods.probes`);
        written to metrics.csv as ``mech_*`` columns. Per-sample state kept only for this must not change
        what the method computes, and must be in :meth:`extra_state` so that a resumed run reports alike."""
        return {}

    def mechanism_off(self, last: dict[str, float]) -> list[str]:
        """The parts of the method's mechanism that stayed off in this run, one sentence each, from its
        settings and ``last``, the last epoch's mechanism columns (names without ``mech_``). Empty: all
        engaged, or nothing to say. The run's summary, result.json and tables report them."""
        return []

    # --- helpers for subclasses -------------------------------------------
    def backbone_kwargs(self) -> dict[str, Any]:
        r = self.ctx.recipe
        return {"arch": r["arch"], "width": r["width"], "stem": r["stem"], "last_stride": r.get("last_stride", 2)}
