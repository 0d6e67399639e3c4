"""LA-Net's expression-landmark (EL) contrastive loss.

Expression features of a class should lie near the *landmark* features of the
same class and far from other classes' ones, and the other way round; because
landmarks carry the face's geometry and not its (possibly wrong) label, this
pulls the expression space towards geometry-consistent clusters.

MoCo-style machinery:

* **Projection heads** map u (512e) and v (64e) to 64e-dimensional unit
  vectors: Linear -> ReLU -> Linear, then L2 normalisation.
* **Momentum encoder.** A copy of the two-branch network and of the heads,
  updated before each key computation as ``theta_k <- m theta_k + (1 - m) theta_q``
  (m = 0.999), with its batch-norm running buffers copied from the query side;
  it runs under ``no_grad`` on the *same* augmented images (no second view),
  in train mode (batch statistics).
* **Queues** of the last ``queue_size`` (8192) keys of each modality and their
  pseudo-labels, initialised to random unit vectors with an "empty" label that
  matches nothing, so the initial entries are negatives for everyone.

Pseudo-labels come from the LDE target t: ``pi_i = argmax t_i`` when
``max t_i >= delta`` (0.7); below that the sample is ambiguous and becomes a
class of its own, ``pi_i = -(index_i + 1)``.

For a query i: positives P(i) = {in-batch keys j with pi_j = pi_i} (i itself
always, only i for an ambiguous sample); negatives = the *queue* entries whose
label differs from pi_i (in-batch keys are never negatives, same-label queue
entries are dropped, not used as positives). With s = cos/tau (tau = 0.1),

    l_ij = -log( exp(s(q_i, k_j)) / (exp(s(q_i, k_j)) + sum_{m neg} exp(s(q_i, Q_m))) )
    L^{u->v} = mean_i  mean_{j in P(i)} l_ij        (queries u~, keys v-bar, queue Q^v)

and L_EL = L^{u->v} + L^{v->u}. Gradients reach the query side only.

Choices: the official pseudo-label ``-index`` makes an ambiguous sample at
dataset index 0 collide with class 0 (``-0 == 0``), so that sample counts as
one of class 0's; ``-(index + 1)`` fixes it. The queue is a ring
buffer, so ``queue_size`` need not be a multiple of the batch size. The
momentum encoder copies the query network at the first training step rather
than at construction, so that pretrained weights, which the engine loads after
the model is built, reach it as well (MoCo copies them at initialisation,
which is the same thing when the weights are already in place). The official
key encoder also runs its own copy of LDE, with its own memory, whose output
nothing reads; that is skipped.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .shards import rank_major, shard_ids

EMPTY_LABEL = -(2 ** 62)  # label of never-filled queue slots: equals no class and no singleton
_MASKED = -1e4            # logit of excluded negatives: exp() is exactly 0, yet never NaN


class ProjectionHeads(nn.Module):
    """Expression head 512e -> 64e -> 64e and landmark head 64e -> 64e -> 64e, L2-normalised."""

    def __init__(self, expr_dim: int, landmark_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.expr = nn.Sequential(nn.Linear(expr_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, embed_dim))
        self.landmark = nn.Sequential(nn.Linear(landmark_dim, embed_dim), nn.ReLU(),
                                      nn.Linear(embed_dim, embed_dim))

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.normalize(self.expr(u).float(), dim=1), F.normalize(self.landmark(v).float(), dim=1)


class MomentumEncoder(nn.Module):
    """The key encoder: frozen copies of the network and heads, moved by EMA only."""

    def __init__(self, encoder: nn.Module, heads: nn.Module) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(encoder)
        self.heads = copy.deepcopy(heads)
        for p in self.parameters():
            p.requires_grad_(False)
        self.register_buffer("synced", torch.zeros((), dtype=torch.bool))
        self._synced_on_host: Optional[bool] = None
        self.register_load_state_dict_post_hook(lambda module, _: setattr(module, "_synced_on_host", None))

    @torch.no_grad()
    def momentum_update(self, encoder: nn.Module, heads: nn.Module, m: float) -> None:
        """``theta_k <- m theta_k + (1 - m) theta_q``; a plain copy at the first step; BN buffers copied."""
        q_params = list(encoder.parameters()) + list(heads.parameters())
        k_params = list(self.encoder.parameters()) + list(self.heads.parameters())
        if self._synced_on_host is None:  # read the flag from the device once, not at every step
            self._synced_on_host = bool(self.synced)
        if self._synced_on_host:
            torch._foreach_mul_(k_params, m)
            torch._foreach_add_(k_params, q_params, alpha=1.0 - m)
        else:
            torch._foreach_copy_(k_params, q_params)
            self.synced.fill_(True)
            self._synced_on_host = True
        q_bufs = list(encoder.buffers()) + list(heads.buffers())
        k_bufs = list(self.encoder.buffers()) + list(self.heads.buffers())
        torch._foreach_copy_(k_bufs, q_bufs)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u, v, _ = self.encoder.features(images)
        return self.heads(u, v)


def pseudo_labels(target: torch.Tensor, indices: torch.Tensor, delta: float) -> torch.Tensor:
    """argmax of t where its max reaches ``delta``; the singleton ``-(index + 1)`` below it."""
    confidence, cls = target.detach().max(dim=1)
    return torch.where(confidence < delta, -(indices.long() + 1), cls)


def contrastive_masks(labels: torch.Tensor, queue_labels: torch.Tensor,
                      shards: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Positives ``(B, B)``: same pseudo-label in the batch (in the same shard); negatives ``(B, M)``:
    other label in the queue."""
    positives = labels.unsqueeze(1) == labels.unsqueeze(0)
    if shards > 1:
        shard = shard_ids(labels.numel(), shards, labels.device)
        positives &= shard.unsqueeze(1) == shard.unsqueeze(0)
    negatives = queue_labels.unsqueeze(0) != labels.unsqueeze(1)
    return positives, negatives


def directional_loss(queries: torch.Tensor, keys: torch.Tensor, queue: torch.Tensor,
                     positives: torch.Tensor, negatives: torch.Tensor, tau: float) -> torch.Tensor:
    """One direction, e.g. expression queries against landmark keys and the landmark queue."""
    pos_logits = queries @ keys.t() / tau                                   # (B, B)
    neg_logits = (queries @ queue.t() / tau).masked_fill(~negatives, _MASKED)  # (B, M)
    neg_lse = torch.logsumexp(neg_logits, dim=1, keepdim=True)
    per_pair = F.softplus(neg_lse - pos_logits)  # -log(e^s / (e^s + sum_neg e^n))
    return ((per_pair * positives).sum(1) / positives.sum(1)).mean()


class KeyQueue:
    """The queues Q^u, Q^v of key embeddings and their pseudo-labels (a FIFO ring buffer)."""

    def __init__(self, size: int, dim: int, device: torch.device) -> None:
        self.size = size
        self.u = F.normalize(torch.randn(size, dim), dim=1).to(device)
        self.v = F.normalize(torch.randn(size, dim), dim=1).to(device)
        self.labels = torch.full((size,), EMPTY_LABEL, dtype=torch.long, device=device)
        self.ptr = 0

    def loss(self, query_u: torch.Tensor, query_v: torch.Tensor, key_u: torch.Tensor, key_v: torch.Tensor,
             labels: torch.Tensor, tau: float, shards: int = 1) -> torch.Tensor:
        """L_EL = L^{u->v} + L^{v->u} against the current queues (before this batch is enqueued).

        With ``shards`` > 1 a query's positives are the keys of its own shard only; with
        equal shards the mean over all queries is the mean of the per-shard losses, which
        is what averaging the GPUs' gradients optimises."""
        positives, negatives = contrastive_masks(labels, self.labels, shards)
        # In float32 even under mixed precision: at tau = 0.1 the logits reach 10, where bf16 rounds by 0.06.
        with torch.autocast(query_u.device.type, enabled=False):
            return (directional_loss(query_u.float(), key_v.float(), self.v, positives, negatives, tau)
                    + directional_loss(query_v.float(), key_u.float(), self.u, positives, negatives, tau))

    @torch.no_grad()
    def enqueue(self, key_u: torch.Tensor, key_v: torch.Tensor, labels: torch.Tensor, shards: int = 1) -> None:
        """Append the batch's keys; with ``shards`` > 1 in the order the official gather lists them."""
        if shards > 1:
            order = rank_major(labels.numel(), shards, labels.device)
            key_u, key_v, labels = key_u[order], key_v[order], labels[order]
        n = labels.numel()
        if n > self.size:
            key_u, key_v, labels, n = key_u[-self.size:], key_v[-self.size:], labels[-self.size:], self.size
        slots = (self.ptr + torch.arange(n, device=labels.device)) % self.size
        # Out of place: this step's loss graph still holds the queues it was computed against.
        self.u = self.u.index_copy(0, slots, key_u.float())
        self.v = self.v.index_copy(0, slots, key_v.float())
        self.labels = self.labels.index_copy(0, slots, labels)
        self.ptr = (self.ptr + n) % self.size

    def state_dict(self) -> dict[str, Any]:
        return {"u": self.u.cpu(), "v": self.v.cpu(), "labels": self.labels.cpu(), "ptr": self.ptr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.u.copy_(state["u"])
        self.v.copy_(state["v"])
        self.labels.copy_(state["labels"])
        self.ptr = int(state["ptr"])
