"""LA-Net's Label Distribution Estimation (LDE).

A noisy label says one class; LA-Net estimates each training sample's label
*distribution* from what its neighbours are predicted to be, in two spaces:
the expression feature u and the landmark feature v. Neighbours are searched
inside the current mini-batch (no feature memory):

1. **Neighbours.** Cosine similarity within the batch, self excluded, top-K
   (K = 8) in each space: the sets N^u(i) and N^v(i). No threshold.
2. **Learned pairwise weights.** A small net ``score`` gives an asymmetric
   affinity c_ij in (0, 1) for anchor i and candidate j: a linear map A = Wx,
   whose first half a_i and second half b_j are concatenated and fed to an MLP
   ending in a 2-way softmax; c_ij is its first output. One net per space.
3. **Aggregation.** With p_j = softmax(z_j) the neighbours' *current*
   predictions, ``q^u_i = sum_j w^u_ij p_j`` with
   ``w^u_ij = (c^u_ij [j in N^u(i)] + eps/B) / (sum_j c^u_ij [j in N^u(i)] + eps)``,
   the same in landmark space, and ``q_i = (q^u_i + q^v_i) / 2``.
4. **History.** A per-sample memory D (N x C), initialised to the one-hot
   noisy label, ensembles the estimates over time with momentum omega = 0.9:
   the target is ``t_i = omega D_i + (1 - omega) q_i`` and then
   ``D_i <- stopgrad(t_i)``.

The target enters the loss as KL(t || p) next to the cross-entropy on the noisy
label. As in the official code, t is *not* detached there: the KL term is the
only signal that trains the score nets (through q), and it also reaches the
neighbours' logits and the features.

Choices (vectorisation, not behaviour): the score MLP's first layer acts on the
concatenation [a_i; b_j], so it is split into the parts acting on a_i and on
b_j and only the B x K neighbour pairs are scored, instead of building the
official B x B x dim tensor; pairs outside the top-K get weight 0 either way,
so the result is the same (:meth:`PairwiseScore.forward` keeps the literal
all-pairs form as the reference). When a sample occurs twice in a batch (the
progressive sampler repeats minority samples), the memory keeps the later
occurrence's target; the official scatter leaves that undefined.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .shards import shard_ids

EPS = 1e-8


def topk_neighbours(features: torch.Tensor, k: int) -> torch.Tensor:
    """``(B, min(k, B-1))`` indices of each sample's most cosine-similar others in the batch."""
    f = F.normalize(features.detach().float(), dim=1)
    with torch.autocast(f.device.type, enabled=False):  # bf16 similarities would make ties
        sim = f @ f.t()
    sim.fill_diagonal_(float("-inf"))  # never one's own neighbour, even against a similarity of -1
    k = min(k, f.shape[0] - 1)
    return sim.topk(k, dim=1).indices


def take_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[index]`` for a 2-D ``x``: rows picked by an index table of any shape, with a backward
    that sums repeated rows in a fixed order.

    The backward of ``x[index]`` on the CPU adds repeated rows with atomic float additions
    from several threads once the gradient has 32,768 elements (torch's grain size), so their
    order, and the last bits of the sum, change from run to run; that made LA-Net's two-thread
    runs differ. ``index_select``'s backward adds them serially on the CPU (the same bits as
    one thread's ``x[index]``); on CUDA it is the one with atomics, and indexing the sorted,
    deterministic one."""
    if x.device.type == "cuda":
        return x[index]
    return x.index_select(0, index.reshape(-1)).view(*index.shape, x.shape[1])


def neighbour_mask(neighbours: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The binary ``(B, B)`` mask N_ij of a neighbour index table."""
    mask = torch.zeros(neighbours.shape[0], batch_size, dtype=torch.bool, device=neighbours.device)
    return mask.scatter_(1, neighbours, True)


class PairwiseScore(nn.Module):
    """The official ``score(dim)``: a learned, asymmetric affinity c_ij in (0, 1)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.split = dim // 2
        self.proj = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, max(1, dim // 2)), nn.ReLU(),
            nn.Linear(max(1, dim // 2), max(1, dim // 4)), nn.ReLU(),
            nn.Linear(max(1, dim // 4), 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """All ``(B, B)`` scores, built literally from the ``(B, B, dim)`` pairs [a_i; b_j]."""
        a = self.proj(x)
        first, second = a[:, :self.split], a[:, self.split:]
        b = x.shape[0]
        pairs = torch.cat([first.unsqueeze(1).expand(b, b, -1), second.unsqueeze(0).expand(b, b, -1)], dim=-1)
        return self.mlp(pairs).softmax(-1)[..., 0]

    def pair_scores(self, x: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, K)`` of each anchor i against its candidates ``candidates[i]`` only."""
        a = self.proj(x)
        layer1 = self.mlp[0]
        s = self.split
        anchor = F.linear(a[:, :s], layer1.weight[:, :s], layer1.bias)   # the a_i part, (B, h)
        other = F.linear(a[:, s:], layer1.weight[:, s:])                  # the b_j part, (B, h)
        hidden = torch.relu(anchor.unsqueeze(1) + take_rows(other, candidates))
        return self.mlp[2:](hidden).softmax(-1)[..., 0]


def aggregate(scores: torch.Tensor, neighbours: torch.Tensor, probs: torch.Tensor,
              eps: float = EPS) -> torch.Tensor:
    """``q_i = sum_j w_ij p_j`` with the normalised weights of step 3 (pairs outside the top-K weigh 0)."""
    b = probs.shape[0]
    weighted = (scores.unsqueeze(-1) * take_rows(probs, neighbours)).sum(1)
    numerator = weighted + (eps / b) * probs.sum(0, keepdim=True)
    return numerator / (scores.sum(1, keepdim=True) + eps)


class LabelDistributionEstimator(nn.Module):
    """Neighbour-based label distributions q (steps 1-3) from u, v and the logits."""

    def __init__(self, expr_dim: int, landmark_dim: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.score_u = PairwiseScore(expr_dim)
        self.score_v = PairwiseScore(landmark_dim)

    def forward(self, u: torch.Tensor, v: torch.Tensor, logits: torch.Tensor, shards: int = 1) -> torch.Tensor:
        """q for the batch; with ``shards`` > 1, each shard's rows let gradients reach only its own
        samples (neighbours are still searched in the whole batch), as the official code's
        ``gather_with_grad`` does across GPUs (see :mod:`.method`)."""
        if shards == 1:
            return self._estimate(u, v, logits)
        own = (shard_ids(u.shape[0], shards, u.device).unsqueeze(1) == torch.arange(shards, device=u.device))
        q = None
        for s in range(shards):
            mine = own[:, s:s + 1]
            part = self._estimate(*(torch.where(mine, t, t.detach()) for t in (u, v, logits)))
            q = part if q is None else torch.where(mine, part, q)
        return q

    def _estimate(self, u: torch.Tensor, v: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        probs = logits.float().softmax(1)
        estimates = []
        for score, feats in ((self.score_u, u), (self.score_v, v)):
            neighbours = topk_neighbours(feats, self.k)
            estimates.append(aggregate(score.pair_scores(feats, neighbours).float(), neighbours, probs))
        # The two spaces' estimates, for the mechanism diagnostics (read after the step, never trained through).
        self.last_estimates = (estimates[0].detach(), estimates[1].detach())
        return 0.5 * (estimates[0] + estimates[1])


class LabelDistributionMemory:
    """The per-sample history D (step 4); lives outside the model, like the official code's."""

    def __init__(self, labels: torch.Tensor, num_classes: int, omega: float) -> None:
        self.omega = omega
        self.table = F.one_hot(labels.long(), num_classes).float()
        # Scratch for update_: entries are only read where the current batch wrote them.
        self._last_position = torch.empty(len(labels), dtype=torch.long, device=labels.device)

    def target(self, indices: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
        """``t = omega D[indices] + (1 - omega) q`` (keeps q's gradient)."""
        return self.omega * self.table[indices] + (1 - self.omega) * estimate

    def update_(self, indices: torch.Tensor, target: torch.Tensor) -> None:
        """``D[indices] <- stopgrad(target)``; for a repeated index the last occurrence wins.

        Every occurrence of an index writes its last occurrence's row, so the order in which a
        scatter with repeated indices lands cannot matter; unlike ``torch.unique`` this needs no
        synchronisation with the device."""
        positions = torch.arange(indices.numel(), device=indices.device)
        last = self._last_position.scatter_reduce_(0, indices, positions, reduce="amax", include_self=False)
        self.table[indices] = target.detach().float()[last[indices]]
