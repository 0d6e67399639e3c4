"""LA-Net's training step and registration.

One iteration, in the official code's order, with p = softmax(z):

1. the query network gives logits z, raw heatmaps, u and v; LDE turns the
   batch into targets t and updates the label-distribution memory;
2. the projection heads embed u and v;
3. without gradient, the momentum encoder takes its EMA step and embeds the
   same images into keys;
4. pseudo-labels from t give the EL contrastive loss against the queues,
   and then the keys are enqueued;
5. ``L = CE(z, y~) + lam * L_lm + alpha * KL(t || p) + beta * L_EL``.

Inference is the plain expression ResNet and classifier: no
landmark branch, no LDE, no heads, no momentum encoder, no landmarks.

Hyper-parameters (official defaults, ``--set name=value``): ``K`` = 8
neighbours, ``omega`` = 0.9 (memory momentum, the code's ``dis_momentum``),
``tau`` = 0.1 (temperature, ``con_T``), ``delta`` = 0.7 (pseudo-label
confidence; 0.5 in the first official commit), ``alpha`` = 1 and ``beta`` = 0.1
(weights of the KL and EL terms, ``lam_kl`` and ``lam_cl``), ``lam`` = 1
(landmark loss, ``lam_lm``), ``queue_size`` = 8192 (``banksize``), ``moco_m`` =
0.999, ``num_landmarks`` = 19 (or 68), ``sigma`` = 1.5 (heatmap Gaussian) and
``swap_flipped_landmarks`` = true. The paper's text could not be read, so
``alpha``/``beta`` are the names this suite gives the KL and EL weights.

Code-vs-paper choices, besides those in the section modules:

* ``swap_flipped_landmarks=true`` (default; the unified protocol) re-indexes the
  landmark channels of mirrored images so each channel keeps its image-side
  meaning; the official code does not swap, and neither does the official
  recipe (``swap_flipped_landmarks=false``).
* Pseudo-label singletons are ``-(index + 1)``, fixing the official ``-index``
  collision of sample 0 with class 0.
* The official recipe (``--protocol official`` on real data): Adam 1e-3,
  weight decay 0, per-iteration linear decay to 0, 80 epochs, batch 128, the
  progressive class-balanced sampler, random-resized crops of area 0.75-1,
  colour jitter 0.4 and erasing p = 0.2 of area 0.02-0.2. Its MS-Celeb
  normalisation statistics belong with the pretrained weights: an MS-Celeb
  checkpoint brings them (``normalize: auto``, see
  :mod:`fer_bench.models.pretrained`); ``--set normalize=imagenet`` overrides.
* ``shards`` (official recipe: 2; default 1): the published run is two GPUs x 64
  images, and the official code (``resnet.py``, ``MoCo_ResNet.forward``/``_cal``)
  finds the contrastive positives among each GPU's own 64 images, and its
  label distribution estimation, though it searches neighbours in the batch
  gathered from both GPUs, passes gradients only into each GPU's own samples
  (``gather_with_grad``). ``shards=S`` reproduces that on one device: shard s
  holds the batch's samples s, s + S, s + 2S, ... (what rank s of the official
  sampler, ``indices[rank::world]``, gets), positives are restricted to a
  shard, and each shard's LDE targets see the other shards' features, logits
  and scores detached. The keys, the queue and the memory use the whole batch,
  as the gathered keys do; batch norm already spans both GPUs there
  (SyncBatchNorm). The unified protocol keeps 1: one batch, one device.
* Several real processes (torchrun, ``fer-bench run --nproc N``): each rank's
  batch is its shard, and the official semantics hold across ranks as they do
  across ``shards`` on one device (``shards`` is then not used): LDE searches
  neighbours in the batch gathered from all ranks (the others' features, logits
  and scores without gradient) and keeps its own rows; positives are the rank's
  own keys; the keys of all ranks, gathered without gradient in rank order, are
  enqueued on every rank; the memory's updated rows are gathered by the engine
  (:meth:`shared_rows`). Batch norm is per rank unless ``--sync-bn``.
* ``heatmap_peak`` (official recipe: ``official``; default ``centre``): where the
  landmark heatmaps put their peaks, see :mod:`fer_bench.landmarks.heatmaps`.
  The suite's pixel-centre convention is the one its augmentation's landmark
  coordinates are in; the official rounding puts most peaks one heatmap pixel
  elsewhere.

What still differs from the official code under the official recipe: the
singleton pseudo-labels above; landmarks are 68 points mapped to 19 (the code
ships HRNet's 19 for RAF-DB only) and keep their sub-pixel positions through the
crop (the code truncates them to integers); each image is resampled once from
the cache to the crop (the code first resizes to 224 with PIL, then crops); the
jitter ops run in a fixed order (torchvision's are shuffled); the key encoder's
own discarded LDE pass is skipped (it changes nothing).

At the end of a run the memory, LA-Net's estimate of each training image's
label distribution, is written to ``label_distributions.csv`` (``image,<class
names...>``, the form of synthfer's ``EmoLabel/distribution.csv``) for the
user study.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...atomic import write_text
from ...engine import distributed
from ...landmarks import HEATMAP_CONVENTIONS, heatmap_size
from ...registry import register_method
from ..base import Batch, Method, MethodContext, StepOutput
from ..hparams import HParam
from .contrastive import KeyQueue, MomentumEncoder, ProjectionHeads, pseudo_labels
from .landmark_loss import landmark_loss, landmark_points
from .lde import LabelDistributionEstimator, LabelDistributionMemory
from .model import LandmarkResNet

DISTRIBUTION_FILE = "label_distributions.csv"


class LANetModel(nn.Module):
    """Everything LA-Net trains or carries: the query network, LDE score nets, heads, key encoder.

    ``forward`` is inference only (expression branch and classifier).
    """

    def __init__(self, arch: str, width: int, stem: str, num_classes: int, num_landmarks: int, k: int) -> None:
        super().__init__()
        self.encoder = LandmarkResNet(arch, width, stem, num_classes, num_landmarks)
        dims = (self.encoder.expr_dim, self.encoder.landmark_dim)
        self.lde = LabelDistributionEstimator(*dims, k)
        self.heads = ProjectionHeads(*dims, embed_dim=self.encoder.landmark_dim)
        self.key = MomentumEncoder(self.encoder, self.heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


@register_method("lanet")
class LANet(Method):
    """Landmark-aware learning: landmark branch, label distribution estimation, EL contrastive loss."""

    needs_landmarks = True
    backbone_modules = ("encoder.backbone", "encoder.landmark")  # their conv1/bn1/layer1 are one shared stem
    hparams = {
        "K": HParam(8, range=(1, None), help="neighbours per space inside the batch"),
        "omega": HParam(0.9, range=(0, 1), unit="visit", help="momentum of the label-distribution memory"),
        "tau": HParam(0.1, range="(0, inf)", help="contrastive temperature"),
        "delta": HParam(0.7, range=(0, 1), help="pseudo-label confidence; below it a sample is its own class"),
        "alpha": HParam(1.0, range=(0, None), help="weight of KL(t || p)"),
        "beta": HParam(0.1, range=(0, None), help="weight of the EL contrastive loss"),
        "lam": HParam(1.0, range=(0, None), help="weight of the landmark (heatmap) loss"),
        "queue_size": HParam(8192, range=(1, None), help="keys in each contrastive queue"),
        "moco_m": HParam(0.999, range=(0, 1), unit="step", help="momentum of the key encoder"),
        "num_landmarks": HParam(19, choices=(19, 68), help="19 (LA-Net's layout, mapped from 68) or 68"),
        "sigma": HParam(1.5, range="(0, inf)", help="heatmap Gaussian, in heatmap pixels"),
        "swap_flipped_landmarks": HParam(True, help="swap left/right landmark channels of mirrored images "
                                                    "(false: the official code's un-swapped channels)"),
        "shards": HParam(1, range=(1, None), help="per-device batches the official multi-GPU semantics are "
                                                  "emulated with; must divide batch_size"),
        "heatmap_peak": HParam("centre", choices=HEATMAP_CONVENTIONS,
                               help="centre (pixel centres) or official (int(x/4 + 0.5), offsets -5..+4)"),
    }
    recipe = {
        "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "schedule": "linear", "warmup_epochs": 0,
        "epochs": 80, "batch_size": 128, "sampler": "progressive",
        "aug_flip": 0.5, "aug_crop_scale": [0.75, 1.0],
        "aug_brightness": 0.4, "aug_contrast": 0.4, "aug_saturation": 0.4,
        "aug_erase": 0.2, "aug_erase_scale": [0.02, 0.2],
        # the official code's choices where the suite's defaults differ (hyper-parameters, see above)
        "shards": 2, "heatmap_peak": "official", "swap_flipped_landmarks": False,
    }

    def __init__(self, ctx: MethodContext, hparams: dict[str, Any]) -> None:
        super().__init__(ctx, hparams)
        self.memory = LabelDistributionMemory(ctx.train_labels, ctx.num_classes, self.hp.omega)
        self.queue = KeyQueue(self.hp.queue_size, self.model.encoder.landmark_dim, ctx.device)

    def check_hparams(self, hparams: dict[str, Any]) -> None:
        super().check_hparams(hparams)
        shards, batch = hparams["shards"], self.ctx.recipe.get("batch_size", 1)
        if batch % shards:
            raise ValueError(f"lanet: shards must be a whole divisor of the batch size {batch}, got {shards!r}")

    def build_model(self) -> nn.Module:
        return LANetModel(**self.backbone_kwargs(), num_classes=self.ctx.num_classes,
                          num_landmarks=self.hp.num_landmarks, k=self.hp.K)

    def inference_network(self) -> nn.Module:
        """The expression trunk and classifier, as the encoder's forward runs them: the landmark branch,
        LDE, projection heads and momentum encoder only serve training."""
        from ..baseline import Classifier

        net = Classifier(self.model.encoder.backbone, self.ctx.num_classes)
        net.fc = self.model.encoder.fc
        return net

    def training_step(self, batch: Batch) -> StepOutput:
        if batch.landmarks is None:
            raise ValueError("lanet: the training batch carries no landmarks")
        hp, model = self.hp, self.model
        images, size = batch.images, batch.images.shape[-1]

        u, v, merged = model.encoder.features(images)
        logits = model.encoder.fc(u)
        heatmaps = model.encoder.fpn.heatmaps(merged, heatmap_size(size))

        # Label distribution estimation (.lde).
        target = self.memory.target(batch.indices, self._estimate(u, v, logits))
        self.memory.update_(batch.indices, target)
        log_p = F.log_softmax(logits.float(), dim=1)
        ce = F.nll_loss(log_p, batch.labels)
        kl = F.kl_div(log_p, target, reduction="batchmean")

        # Expression-landmark contrastive loss (.contrastive).
        query_u, query_v = model.heads(u, v)
        model.key.momentum_update(model.encoder, model.heads, hp.moco_m)
        key_u, key_v = model.key(images)
        labels = pseudo_labels(target, batch.indices, hp.delta)
        world = self.ctx.world
        shards = 1 if world.distributed else hp.shards
        el = self.queue.loss(query_u, query_v, key_u, key_v, labels, hp.tau, shards)
        self.queue.enqueue(*(distributed.gather_rows(world, t) for t in (key_u, key_v, labels)), shards)

        # Landmark heatmaps (.landmark_loss).
        points = landmark_points(batch.landmarks, batch.flipped, hp.num_landmarks, hp.swap_flipped_landmarks)
        lm = landmark_loss(heatmaps, points, size, hp.sigma, hp.heatmap_peak)

        loss = ce + hp.lam * lm + hp.alpha * kl + hp.beta * el
        logs = {"ce": ce.detach(), "kl": kl.detach(), "el": el.detach(), "lm": lm.detach(),
                "ambiguous": (labels < 0).float().mean()}
        return StepOutput(loss, logits, logs)

    def _estimate(self, u: torch.Tensor, v: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """LDE's q for this rank's samples; across ranks, from the gathered batch with gradient into its own rows."""
        world = self.ctx.world
        if not world.distributed:
            return self.model.lde(u, v, logits, self.hp.shards)
        b = u.shape[0]
        mine = slice(world.rank * b, (world.rank + 1) * b)

        def gathered(t: torch.Tensor) -> torch.Tensor:
            every = distributed.gather_rows(world, t)
            return torch.cat([every[:mine.start], t, every[mine.stop:]])

        q = self.model.lde(gathered(u), gathered(v), gathered(logits), 1)
        return q[mine]

    def shared_rows(self) -> list[torch.Tensor]:
        return [self.ctx.train_labels, self.memory.table]

    def extra_state(self) -> dict[str, Any]:
        return {"memory": self.memory.table.cpu(), "queue": self.queue.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.memory.table.copy_(state["memory"])
        self.queue.load_state_dict(state["queue"])

    def label_distributions(self) -> torch.Tensor:
        """The memory D: LA-Net's current label distribution of every training sample ``(N, C)``."""
        return self.memory.table.detach().cpu()

    def on_train_end(self, run_dir: Path) -> dict[str, Any]:
        dist = self.label_distributions()
        names = list(self.ctx.train_names) or [str(i) for i in range(dist.shape[0])]
        lines = ["image," + ",".join(self.ctx.class_names)]
        lines += [name + "," + ",".join(f"{x:.6f}" for x in row) for name, row in zip(names, dist.tolist())]
        write_text(Path(run_dir) / DISTRIBUTION_FILE, "\n".join(lines) + "\n")
        noisy = self.ctx.train_labels.cpu()
        return {
            "label_distributions": DISTRIBUTION_FILE,
            "memory_argmax_differs_from_label": int((dist.argmax(1) != noisy).sum()),
            "memory_mean_confidence": float(dist.max(1).values.mean()),
        }
