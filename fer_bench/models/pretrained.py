"""Loading pretrained backbone weights so that a wrong file can never load silently.

A checkpoint's tensors are matched to the backbone by name and shape (after
unwrapping ``state_dict``/``model`` containers and stripping ``module.``-style
prefixes); if fewer than 95% of the backbone's tensors find a match, loading
fails with the names that did not match. SCN's released loader matched none
of its keys and trained from ImageNet weights without a word; here that is an
error. The file's sha256 goes into the run record.

Sources: ``none``; ``imagenet`` (torchvision's file, which must already be in
the torch hub cache: nothing is downloaded); or a path to a checkpoint. The
formats the peers use all carry torchvision ResNet names once unwrapped:

* ``resnet18_msceleb.pth`` (DACL/RUL/EAC): ``{"state_dict": {...}}``;
* ``ijba_res18_naive.pth.tar`` (RAN/SCN): ``{"state_dict": {"module.conv1.weight": ...}}``
  with extra ``feature``/``fc`` heads, which are not part of the backbone and are ignored;
* EAC's VGGFace2 ``resnet50_ft_weight.pkl``: a pickled dict of numpy arrays. Unpickling
  can run arbitrary code, so it is read only when the caller passes ``trust_pickle``
  (``--trust-pickle`` on the command line); everything else loads with ``weights_only``.
  Its names are torchvision's, but its network is the Caffe-style ResNet-50
  (``resnet50_caffe``, see :mod:`.resnet`): in torchvision's layout every tensor fits and
  the network computes something else, so this format loads only into ``resnet50_caffe``
  and ``resnet50_caffe`` takes only this format. A checkpoint without batch-norm
  ``num_batches_tracked`` counters (a Caffe conversion need not have them) loads: they are
  not weights, and keep the backbone's own values;
* a plain torchvision state dict;
* ``synthfer-id``: the CPU-sized backbone pretrained on synthfer's identities
  (:mod:`fer_bench.pretrain`), shipped in the package (:data:`SYNTHFER_ID_FILE`); a
  checkpoint that ``fer-bench pretrain`` wrote can also be named by its file.

**Checkpoint kinds.** What a source is follows from how it is named, before anything is
read (:func:`checkpoint_kind`): ``none``, ``imagenet`` (the word, or one of torchvision's
file names), ``vggface2`` (a ``.pkl``) or ``msceleb`` (any other file: the peers' face
recognition ResNets), except ``synthfer-id`` (the word, or a file whose record beside it,
``FILE.json``, says so: the only thing read). A kind carries the input normalisation that goes with its weights
(:data:`NORMALISATIONS`: LA-Net's MS-Celeb statistics for ``msceleb``, ImageNet's
otherwise, which EAC's code also uses with its VGGFace2 weights, and synthfer-id
pretraining uses so that it matches SCN/RUL/EAC's fine-tuning) and, for ``vggface2`` and
``synthfer-id``, the backbone layout the weights require. The recipe keys ``pretrained_kind`` and
``normalize`` (both ``auto`` by default) record and override them
(:mod:`fer_bench.engine.recipe`).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from .resnet import CPU_BACKBONE

MIN_MATCHED = 0.95

# torchvision's ImageNet weight files (IMAGENET1K_V1), as named in its hub cache.
IMAGENET_FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-0676ba61.pth",
}
CONTAINER_KEYS = ("state_dict", "model", "model_state_dict", "net")
PREFIXES = ("module.", "backbone.", "model.", "encoder.")

# Input normalisation statistics (mean, std of RGB in [0, 1]) by name.
NORMALISATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # LA-Net dataloader.py: "calculated based on MS-Celeb 1M", used with its MS-Celeb ResNet-18.
    "msceleb": ((0.5412, 0.4324, 0.3795), (0.2485, 0.2182, 0.2066)),
    # NLA main_rafdb.py (train and eval transforms), used with its MS-Celeb ResNet-18; their origin is not stated.
    "nla": ((0.577, 0.4494, 0.4001), (0.2628, 0.2395, 0.2383)),
}


@dataclass(frozen=True)
class CheckpointKind:
    """What a family of pretrained weights implies for the run that uses them."""

    normalize: str                                         # a key of NORMALISATIONS
    layout: dict[str, Any] = field(default_factory=dict)   # recipe keys the weights fix (arch, width, stem)


CHECKPOINT_KINDS: dict[str, CheckpointKind] = {
    "none": CheckpointKind("imagenet"),
    "imagenet": CheckpointKind("imagenet"),
    "msceleb": CheckpointKind("msceleb"),
    "vggface2": CheckpointKind("imagenet", {"arch": "resnet50_caffe", "width": 64, "stem": "imagenet"}),
    "synthfer-id": CheckpointKind("imagenet", dict(CPU_BACKBONE)),
}
SYNTHFER_ID = "synthfer-id"  # the source and kind name of the synthfer-id backbone
assert SYNTHFER_ID in CHECKPOINT_KINDS
# The shipped synthfer-id backbone, and its record (seed, recipe, identity accuracy, sha256).
SYNTHFER_ID_FILE = Path(__file__).resolve().parent / "weights" / "synthfer-id.pth"
CAFFE_ARCH = CHECKPOINT_KINDS["vggface2"].layout["arch"]


class PretrainedError(ValueError):
    """A checkpoint that is missing, unreadable, or does not fit the backbone."""


def checkpoint_kind(source: Optional[str]) -> str:
    """The kind of a ``pretrained`` source, from its name (and a synthfer-id record beside a file)."""
    if source in (None, "", "none"):
        return "none"
    if source == "imagenet" or Path(source).name in IMAGENET_FILES.values():
        return "imagenet"
    if source == SYNTHFER_ID or checkpoint_record(Path(source)).get("kind") == SYNTHFER_ID:
        return SYNTHFER_ID
    return "vggface2" if Path(source).suffix == ".pkl" else "msceleb"


def record_path(checkpoint: Path) -> Path:
    """Where a pretrained checkpoint's record is: ``FILE.json`` beside ``FILE.pth``."""
    return Path(checkpoint).with_suffix(".json")


def checkpoint_record(checkpoint: Path) -> dict[str, Any]:
    """The record beside a checkpoint, or ``{}`` when there is none (or it is unreadable)."""
    try:
        rec = json.loads(record_path(checkpoint).read_text())
    except (OSError, ValueError):
        return {}
    return rec if isinstance(rec, dict) else {}


def source_path(source: str, arch: str) -> Path:
    """The file a ``pretrained`` source names."""
    if source == "imagenet":
        return imagenet_path(arch)
    return SYNTHFER_ID_FILE if source == SYNTHFER_ID else Path(source)


def check_layout(source: str, arch: str) -> None:
    """Refuse the VGGFace2 Caffe-layout weights for any other architecture, and the other way round."""
    caffe_file = checkpoint_kind(source) == "vggface2"
    if caffe_file and arch != CAFFE_ARCH:
        raise PretrainedError(
            f"{source} is EAC's VGGFace2 ResNet-50 in the Caffe layout (stride in the first 1x1 convolution, "
            f"max-pool without padding); in {arch}'s layout it would load and compute something else: "
            f"use --set arch={CAFFE_ARCH}")
    if arch == CAFFE_ARCH and not caffe_file and checkpoint_kind(source) != "none":
        raise PretrainedError(f"{arch} takes only the VGGFace2 pickle (resnet50_ft_weight.pkl); {source} is in "
                              f"torchvision's layout: use --set arch=resnet50")


def imagenet_path(arch: str) -> Path:
    if arch not in IMAGENET_FILES:
        raise PretrainedError(f"no ImageNet weights known for {arch}")
    return Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_FILES[arch]


def _state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    while isinstance(obj, dict):
        inner = next((obj[k] for k in CONTAINER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict) or not obj:
        raise PretrainedError(f"{path} holds no state dict")
    out = {}
    for key, value in obj.items():
        for prefix in PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        if isinstance(value, torch.Tensor):
            out[key] = value
    return out


def _read_pickle(path: Path) -> dict[str, torch.Tensor]:
    with open(path, "rb") as f:
        obj = pickle.load(f, encoding="latin1")
    if not isinstance(obj, dict):
        raise PretrainedError(f"{path} is a pickle of {type(obj).__name__}, not a dict of arrays")
    return {k: torch.as_tensor(np.asarray(v)) for k, v in obj.items() if isinstance(v, (np.ndarray, np.generic))}


def load_pretrained(backbone: nn.Module, source: Optional[str], arch: str,
                    trust_pickle: bool = False) -> Optional[dict[str, Any]]:
    """Load ``source`` into ``backbone``; return ``{file, sha256, matched, total}`` or None for ``none``."""
    if source in (None, "", "none"):
        return None
    check_layout(source, arch)
    path = source_path(source, arch)
    if not path.is_file():
        hint = (f"; torchvision's {arch} ImageNet file must be placed there by hand (nothing is downloaded)"
                if source == "imagenet" else
                "; the package was installed without it: make one with `fer-bench pretrain --out FILE.pth` "
                "and pass --pretrained FILE.pth" if source == SYNTHFER_ID else "")
        raise PretrainedError(f"pretrained weights not found: {path}{hint}")
    if path.suffix == ".pkl":
        if not trust_pickle:
            raise PretrainedError(f"{path} is a pickle, which can run code when read; "
                                  f"pass --trust-pickle if you trust its source")
        raw: Any = _read_pickle(path)
    else:
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise PretrainedError(
                f"cannot read {path} as a tensor checkpoint: {str(exc).strip().splitlines()[0]}") from None
    state = _state_dict(raw, path)
    target = backbone.state_dict()
    if not any(k.endswith("num_batches_tracked") for k in state):  # counters, not weights (Caffe conversions)
        state.update({k: v for k, v in target.items() if k.endswith("num_batches_tracked")})
    matched = {k: v for k, v in state.items() if k in target and v.shape == target[k].shape}
    if len(matched) < MIN_MATCHED * len(target):
        unmatched = [k for k in target if k not in matched]
        raise PretrainedError(
            f"{path} matches only {len(matched)} of {len(target)} backbone tensors "
            f"(need {MIN_MATCHED:.0%}); unmatched: {', '.join(unmatched[:6])}"
            + (f" and {len(unmatched) - 6} more" if len(unmatched) > 6 else "")
        )
    backbone.load_state_dict(matched, strict=False)
    return {"file": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "matched": len(matched), "total": len(target)}
