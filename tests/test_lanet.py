"""LA-Net's parts, each against the official code's definition.

Small widths and images keep the whole file to a few seconds on two cores; the
train/evaluate/checkpoint/resume path is covered by tests/test_method_contract.py.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fer_bench.datasets.synthfer.face import MIRROR
from fer_bench.augment import AugmentConfig, BatchAugment
from fer_bench.engine.run import evaluate
from fer_bench.landmarks import (FLIP_19, FLIP_68, heatmap_targets, map_68_to_19, swap_mirrored,
                                 to_heatmap_coords)
from fer_bench.methods.base import Batch, MethodContext
from fer_bench.methods.lanet import LANet
from fer_bench.methods.lanet.contrastive import (EMPTY_LABEL, KeyQueue, contrastive_masks, directional_loss,
                                                 pseudo_labels)
from fer_bench.methods.lanet.landmark_loss import adaptive_wing_loss, landmark_points
from fer_bench.methods.lanet.lde import (EPS, LabelDistributionMemory, PairwiseScore, aggregate,
                                         neighbour_mask, topk_neighbours)
from fer_bench.methods.lanet.model import LandmarkResNet
from fer_bench.registry import DATASETS

CLASSES = ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger")
N_TRAIN, SIZE = 40, 32


def make_method(landmarks: torch.Tensor | None = None, **hp) -> LANet:
    torch.manual_seed(0)
    labels = torch.arange(N_TRAIN) % len(CLASSES)
    recipe = {"arch": "resnet18", "width": 8, "stem": "small", "image_size": SIZE}
    ctx = MethodContext(
        num_classes=len(CLASSES), class_names=CLASSES, train_labels=labels, device=torch.device("cpu"),
        recipe=recipe, epochs=1, train_landmarks=landmarks, train_names=[f"train_{i + 1:05d}.jpg" for i in range(N_TRAIN)],
    )
    hparams = LANet.hparam_defaults()
    hparams.update(hp)
    return LANet(ctx, hparams)


def make_batch(method: LANet, b: int = 16, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(N_TRAIN, generator=g)[:b]
    return Batch(images=torch.randn(b, 3, SIZE, SIZE, generator=g), labels=method.ctx.train_labels[idx],
                 indices=idx, raw=torch.zeros(b, SIZE, SIZE, 3, dtype=torch.uint8), gen=g,
                 flipped=torch.rand(b, generator=g) < 0.5, landmarks=torch.rand(b, 68, 2, generator=g) * SIZE)


# --- label distribution estimation ------------------------------------------------------

def test_topk_excludes_self_and_finds_planted_neighbours() -> None:
    g = torch.Generator().manual_seed(1)
    centres = F.normalize(torch.randn(4, 32, generator=g), dim=1)
    cluster = torch.arange(4).repeat_interleave(9)          # 9 per cluster: exactly 8 planted neighbours
    perm = torch.randperm(36, generator=g)
    cluster = cluster[perm]
    feats = (centres[cluster] + 0.05 * torch.randn(36, 32, generator=g)) * torch.rand(36, 1, generator=g).add(0.5)
    nb = topk_neighbours(feats, 8)
    assert nb.shape == (36, 8)
    assert not (nb == torch.arange(36).unsqueeze(1)).any()
    assert (cluster[nb] == cluster.unsqueeze(1)).all()
    # A duplicate is found, self is not, even next to a similarity of -1 (the official fill value).
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert set(topk_neighbours(x, 1)[0].tolist()) == {3}
    assert set(topk_neighbours(x[:3], 8)[0].tolist()) == {1, 2}   # K clipped to B - 1


def test_pairwise_weights_and_aggregation_match_the_dense_definition() -> None:
    torch.manual_seed(0)
    b, c = 10, 7
    score = PairwiseScore(16)
    x = torch.randn(b, 16)
    nb = topk_neighbours(x, 3)
    dense = score(x)                                            # c_ij over all (i, j) pairs
    assert torch.allclose(score.pair_scores(x, nb), dense.gather(1, nb), atol=1e-6)
    assert ((dense > 0) & (dense < 1)).all()
    p = torch.randn(b, c).softmax(1)
    w = dense * neighbour_mask(nb, b)
    w_hat = (w + EPS / b) / (w.sum(1, keepdim=True) + EPS)
    q = aggregate(dense.gather(1, nb), nb, p)
    assert torch.allclose(q, w_hat @ p, atol=1e-6)
    assert torch.allclose(q.sum(1), torch.ones(b), atol=1e-6)


def test_pairwise_score_gradients_do_not_depend_on_thread_scheduling() -> None:
    """The neighbour gather's backward adds repeated rows; on two threads that sum must keep one
    order (it used to be atomic adds once the gradient reached torch's 32,768-element grain)."""
    torch.manual_seed(0)
    b, dim = 64, 128                        # 64 anchors x 8 neighbours x 64 hidden = the grain
    score = PairwiseScore(dim)
    x = torch.randn(b, dim)
    nb = topk_neighbours(x, 8)
    weights = torch.randn(b, 8)

    def grads() -> list[torch.Tensor]:
        score.zero_grad(set_to_none=True)
        xg = x.clone().requires_grad_()
        (score.pair_scores(xg, nb) * weights).sum().backward()
        return [xg.grad] + [p.grad.clone() for p in score.parameters()]

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = grads()
        torch.set_num_threads(2)
        for _ in range(20):
            assert all(torch.equal(a, b_) for a, b_ in zip(grads(), serial))
    finally:
        torch.set_num_threads(before)


def test_memory_starts_one_hot_and_updates_as_the_spec_ema() -> None:
    labels = torch.tensor([2, 0, 1, 2])
    omega = 0.9
    mem = LabelDistributionMemory(labels, 3, omega)
    one_hot = F.one_hot(labels, 3).float()
    assert torch.equal(mem.table, one_hot)
    idx = torch.tensor([3, 1])
    q = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]], requires_grad=True)
    t = mem.target(idx, q)
    expected = omega * one_hot[idx] + (1 - omega) * q.detach()
    assert torch.allclose(t, expected)
    assert t.requires_grad                                  # the KL target is not detached (as in the official code)
    mem.update_(idx, t)
    assert not mem.table.requires_grad
    assert torch.allclose(mem.table[idx], expected)
    assert torch.equal(mem.table[[0, 2]], one_hot[[0, 2]])
    q2 = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert torch.allclose(mem.target(idx, q2), omega * expected + (1 - omega) * q2)
    # A sample twice in a batch: the later occurrence's target is kept.
    mem.update_(torch.tensor([0, 2, 0]), torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 1.0, 0.0]]))
    assert mem.table[0].tolist() == [0.0, 1.0, 0.0] and mem.table[2].tolist() == [0.5, 0.5, 0.0]


# --- expression-landmark contrastive loss ------------------------------------------------

def test_pseudo_labels_below_delta_are_singletons_and_index_zero_does_not_collide() -> None:
    t = torch.tensor([[0.8, 0.1, 0.1], [0.5, 0.3, 0.2], [0.1, 0.75, 0.15], [0.69, 0.3, 0.01], [0.7, 0.2, 0.1]])
    idx = torch.tensor([5, 0, 7, 3, 9])
    pl = pseudo_labels(t, idx, delta=0.7)
    assert pl.tolist() == [0, -1, 1, -4, 0]
    pos, _ = contrastive_masks(pl, torch.tensor([0]))
    assert not pos[0, 1] and not pos[1, 0]                   # ambiguous sample 0 is not "class 0"
    assert pos[1].tolist() == [False, True, False, False, False]


def _brute_force(queries, keys, queue, labels, queue_labels, tau) -> torch.Tensor:
    total = 0.0
    for i in range(len(labels)):
        positives = [j for j in range(len(labels)) if labels[j] == labels[i]]
        negatives = [m for m in range(len(queue_labels)) if queue_labels[m] != labels[i]]
        neg = sum(torch.exp(queries[i] @ queue[m] / tau) for m in negatives)
        terms = [-torch.log(torch.exp(queries[i] @ keys[j] / tau) / (torch.exp(queries[i] @ keys[j] / tau) + neg))
                 for j in positives]
        total = total + sum(terms) / len(terms)
    return total / len(labels)


def test_contrastive_positives_from_batch_negatives_from_queue() -> None:
    labels = torch.tensor([0, 0, 1, -3])
    queue_labels = torch.tensor([0, 1, EMPTY_LABEL, -3, 2])
    pos, neg = contrastive_masks(labels, queue_labels)
    assert [set(torch.nonzero(r).flatten().tolist()) for r in pos] == [{0, 1}, {0, 1}, {2}, {3}]
    assert [set(torch.nonzero(r).flatten().tolist()) for r in neg] == [
        {1, 2, 3, 4}, {1, 2, 3, 4}, {0, 2, 3, 4}, {0, 1, 2, 4}]

    g = torch.Generator().manual_seed(0)
    unit = lambda *s: F.normalize(torch.randn(*s, generator=g), dim=-1)  # noqa: E731
    qu, qv, ku, kv = unit(4, 8), unit(4, 8), unit(4, 8), unit(4, 8)
    queue = KeyQueue(5, 8, torch.device("cpu"))
    queue.labels = queue_labels.clone()
    tau = 0.1
    got = directional_loss(qu, kv, queue.v, pos, neg, tau)
    assert torch.allclose(got, _brute_force(qu, kv, queue.v, labels, queue_labels, tau), rtol=1e-5)
    both = queue.loss(qu, qv, ku, kv, labels, tau)
    want = (_brute_force(qu, kv, queue.v, labels, queue_labels, tau)
            + _brute_force(qv, ku, queue.u, labels, queue_labels, tau))
    assert torch.allclose(both, want, rtol=1e-5)


def test_queue_is_a_fifo_ring() -> None:
    queue = KeyQueue(5, 2, torch.device("cpu"))
    assert (queue.labels == EMPTY_LABEL).all()
    for start in (0, 3):
        labels = torch.arange(start, start + 3)
        queue.enqueue(torch.ones(3, 2), torch.ones(3, 2), labels)
    assert queue.labels.tolist() == [5, 1, 2, 3, 4] and queue.ptr == 1


# --- landmarks ---------------------------------------------------------------------------

def test_68_to_19_mapping_picks_the_documented_points() -> None:
    pts = torch.stack([torch.arange(68.0), 1000 + torch.arange(68.0)], dim=-1)
    mapped = map_68_to_19(pts)
    expected_x = [17, 19, 21, 22, 24, 26, 36, 38.5, 39, 42, 44.5, 45, 31, 30, 35, 48, 59, 54, 8]
    assert mapped[:, 0].tolist() == expected_x
    assert mapped[:, 1].tolist() == [1000 + x for x in expected_x]
    # Mirror permutations: involutions, LA-Net's 19-point pairs, synthfer's own 68-point mirror.
    assert list(FLIP_68) == MIRROR.tolist()
    assert FLIP_19 == (5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 14, 13, 12, 17, 16, 15, 18)
    batch = torch.rand(3, 68, 2)
    assert torch.allclose(map_68_to_19(batch[:, list(FLIP_68)]), map_68_to_19(batch)[:, list(FLIP_19)])


def test_heatmap_peak_at_the_landmark_and_weight_map() -> None:
    # Input pixel 4j + 1.5 is the centre of heatmap pixel j at a quarter of the size.
    pts = torch.tensor([[[4 * 3 + 1.5, 4 * 7 + 1.5], [13.0, 30.0], [500.0, 5.0]]])
    heat, weight = heatmap_targets(pts, 48, 12, sigma=1.5)
    assert heat.shape == weight.shape == (1, 3, 12, 12)
    for k, (x, y) in enumerate([(3, 7), (3, 7)]):
        assert heat[0, k].max() == 1.0
        assert divmod(int(heat[0, k].argmax()), 12) == (y, x)
    assert to_heatmap_coords(pts, 48, 12)[0, 1].tolist() == [2.875, 7.125]
    assert weight[0, 0, 7, 3] == 10 and weight[0, 0, 0, 11] == 1
    assert set(weight.unique().tolist()) == {1.0, 10.0}
    assert 20 <= int((weight[0, 0] == 10).sum()) <= 50
    assert heat[0, 2].abs().sum() == 0 and (weight[0, 2] == 1).all()   # cropped-away point


def test_adaptive_wing_loss_is_zero_at_target_and_continuous_at_theta() -> None:
    h = torch.tensor([0.0, 0.3, 1.0])
    assert torch.equal(adaptive_wing_loss(h, h), torch.zeros(3))
    below = adaptive_wing_loss(h + 0.5 - 1e-4, h)
    above = adaptive_wing_loss(h + 0.5 + 1e-4, h)
    assert torch.allclose(below, above, atol=1e-2)
    assert (above > below).all()


def _synth_faces(root: Path, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    data = DATASETS.get("synthfer").load(root, progress=False)
    return (torch.from_numpy(np.ascontiguousarray(data.train.images[:n])),
            torch.from_numpy(np.asarray(data.train.landmarks[:n], dtype=np.float32)))


def test_flipped_landmarks_swap_channels_unless_official(tiny_synth: Path) -> None:
    raw, lm68 = _synth_faces(tiny_synth)
    aug = BatchAugment(AugmentConfig(image_size=SIZE))
    out = aug(raw, torch.Generator().manual_seed(0), landmarks=lm68, flip=torch.ones(len(raw), dtype=torch.bool))
    swapped = landmark_points(out.landmarks, out.flipped, 19, swap_flipped=True)
    official = landmark_points(out.landmarks, out.flipped, 19, swap_flipped=False)
    # Channel 0 / 15 mean the image-left brow end / mouth corner: left of channel 5 / 17 after the swap.
    assert (swapped[:, 0, 0] < swapped[:, 5, 0]).all() and (swapped[:, 15, 0] < swapped[:, 17, 0]).all()
    assert (official[:, 0, 0] > official[:, 5, 0]).all() and (official[:, 15, 0] > official[:, 17, 0]).all()
    assert torch.equal(swapped, official[:, list(FLIP_19)])
    assert torch.equal(landmark_points(out.landmarks, out.flipped, 68, True), out.landmarks[:, list(FLIP_68)])
    unflipped = torch.zeros(len(raw), dtype=torch.bool)
    assert torch.equal(swap_mirrored(out.landmarks, unflipped), out.landmarks)
    mixed = torch.arange(len(raw)) % 2 == 0
    got = swap_mirrored(out.landmarks, mixed)
    assert torch.equal(got[mixed], out.landmarks[mixed][:, list(FLIP_68)])
    assert torch.equal(got[~mixed], out.landmarks[~mixed])


# --- network, training step, inference -------------------------------------------------

@pytest.mark.parametrize("stem,size", [("small", 48), ("small", 40), ("imagenet", 64)])
def test_two_branch_network_shapes(stem: str, size: int) -> None:
    net = LandmarkResNet("resnet18", 8, stem, num_classes=7, num_landmarks=19)
    u, v, m = net.features(torch.randn(2, 3, size, size))
    assert u.shape == (2, 64) and v.shape == (2, 8)
    assert net.fpn.heatmaps(m, size // 4).shape == (2, 19, size // 4, size // 4)
    assert net.landmark.layer1 is net.backbone.layer1 and net.landmark.conv1 is net.backbone.conv1
    assert net.landmark.layer2 is not net.backbone.layer2


def test_training_step_trains_every_part_and_resume_state_round_trips(tmp_path: Path) -> None:
    method = make_method()
    bb = method.backbones()
    assert bb[0].conv1 is bb[1].conv1 and bb[0].layer4 is not bb[1].layer4
    before = method.memory.table.clone()
    batch = make_batch(method)
    out = method.training_step(batch)
    out.loss.backward()
    assert torch.isfinite(out.loss) and set(out.logs) >= {"ce", "kl", "el", "lm", "ambiguous"}
    model = method.model
    for name, module in [("score nets (via the KL target)", model.lde), ("heads", model.heads),
                         ("landmark branch", model.encoder.landmark.layer4), ("fpn", model.encoder.fpn)]:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters()), name
    assert all(p.grad is None for p in model.key.parameters())
    changed = (method.memory.table != before).any(1)
    assert set(torch.nonzero(changed).flatten().tolist()) == set(batch.indices.tolist())
    assert method.queue.ptr == 16 and bool(model.key.synced)
    # The key encoder starts as a copy of the query network, then follows it by EMA.
    q_w, k_w = model.encoder.fc.weight, model.key.encoder.fc.weight
    assert torch.equal(q_w, k_w)
    k_before = k_w.detach().clone()
    with torch.no_grad():
        q_w.add_(1.0)
    model.key.momentum_update(model.encoder, model.heads, 0.999)
    assert torch.allclose(k_w, 0.999 * k_before + 0.001 * q_w)

    other = make_method()
    other.load_extra_state(method.extra_state())
    assert torch.equal(other.memory.table, method.memory.table)
    assert torch.equal(other.queue.v, method.queue.v) and other.queue.ptr == method.queue.ptr

    info = method.on_train_end(tmp_path)
    with open(tmp_path / info["label_distributions"]) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["image", *CLASSES] and len(rows) == N_TRAIN + 1
    assert rows[1][0] == "train_00001.jpg"
    assert np.allclose(np.array(rows[1:])[:, 1:].astype(float), method.memory.table.numpy(), atol=1e-6)


def test_evaluation_never_touches_landmarks_or_the_landmark_branch() -> None:
    method = make_method(landmarks=None)              # no landmarks anywhere in the context
    model = method.model
    calls: list[str] = []
    watched = {"landmark.layer2": model.encoder.landmark.layer2, "landmark.layer3": model.encoder.landmark.layer3,
               "landmark.layer4": model.encoder.landmark.layer4, "fpn.lateral": model.encoder.fpn.lateral[0],
               "fpn.head": model.encoder.fpn.head, "lde": model.lde, "heads": model.heads, "key": model.key}
    for name, module in watched.items():
        module.register_forward_hook(lambda *_, name=name: calls.append(name))
    raw = torch.randint(0, 255, (12, SIZE, SIZE, 3), dtype=torch.uint8)
    labels = np.arange(12) % len(CLASSES)
    cm = evaluate(method, BatchAugment(AugmentConfig(image_size=SIZE)), raw, labels, len(CLASSES), torch.device("cpu"), 5, False)
    assert cm.sum() == 12 and calls == []
    assert method.predict(torch.randn(3, 3, SIZE, SIZE)).shape == (3, len(CLASSES)) and calls == []
    # The hooks do fire when the landmark branch runs: a training step calls every one of them.
    method.model.train()
    method.training_step(make_batch(method, b=8))
    assert set(calls) == set(watched)


def test_hyperparameters_have_the_official_defaults_and_are_checked() -> None:
    hp = LANet.hparam_defaults()
    assert (hp["K"], hp["omega"], hp["tau"], hp["delta"], hp["alpha"], hp["beta"], hp["lam"]) == (
        8, 0.9, 0.1, 0.7, 1.0, 0.1, 1.0)
    assert (hp["queue_size"], hp["moco_m"], hp["num_landmarks"], hp["swap_flipped_landmarks"]) == (
        8192, 0.999, 19, True)
    assert LANet.recipe["sampler"] == "progressive" and LANet.needs_landmarks
    with pytest.raises(ValueError, match="num_landmarks"):
        make_method(num_landmarks=21)
    m68 = make_method(num_landmarks=68)
    out = m68.training_step(make_batch(m68, b=8))
    assert torch.isfinite(out.loss)


# --- the published two-GPU launch on one device (shards) ----------------------------------

def _two_ranks(b: int, shards: int) -> list[torch.Tensor]:
    """What each rank of the official sampler gets of a global batch (indices[rank::world])."""
    return [torch.arange(r, b, shards) for r in range(shards)]


def test_sharded_lde_gives_each_shard_gradients_only_into_its_own_samples() -> None:
    """Oracle: two 'processes', each with its own samples live and the other's gathered without
    gradient (rank-major, as all_gather lists them), LDE on the gathered batch, its own rows'
    KL; DDP averages the gradients."""
    from fer_bench.methods.lanet.lde import LabelDistributionEstimator

    torch.manual_seed(0)
    b, c = 16, 7
    lde = LabelDistributionEstimator(12, 6, k=3)
    u, v, z = torch.randn(b, 12), torch.randn(b, 6), torch.randn(b, c)
    memory = torch.softmax(torch.randn(b, c), 1)

    def kl(target: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return F.kl_div(F.log_softmax(logits, 1), 0.9 * memory_rows + 0.1 * target, reduction="batchmean")

    leaves = [t.clone().requires_grad_() for t in (u, v, z)]
    memory_rows = memory
    kl(lde(*leaves, shards=2), leaves[2]).backward()
    ours = [t.grad for t in leaves] + [p.grad.clone() for p in lde.parameters()]

    lde.zero_grad()
    grads = [torch.zeros_like(t) for t in (u, v, z)]
    order = torch.cat(_two_ranks(b, 2))
    for rank, own in enumerate(_two_ranks(b, 2)):
        live = [t[own].clone().requires_grad_() for t in (u, v, z)]
        gathered = [torch.cat([l if r == rank else t[o] for r, o in enumerate(_two_ranks(b, 2))])
                    for l, t in zip(live, (u, v, z))]
        target = lde(*gathered)[rank * (b // 2):(rank + 1) * (b // 2)]
        memory_rows = memory[own]
        (kl(target, live[2]) / 2).backward()  # DDP: the mean of the ranks' gradients
        for g, l in zip(grads, live):
            g[own] += l.grad
    assert torch.equal(order.sort().values, torch.arange(b))
    want = grads + [p.grad for p in lde.parameters()]
    for got, expected in zip(ours, want):
        assert torch.allclose(got, expected, atol=1e-6)

    leaves = [t.clone().requires_grad_() for t in (u, v, z)]
    memory_rows = memory
    kl(lde(*leaves), leaves[2]).backward()  # one device, one batch: another objective
    for got, sharded in zip(leaves[:2], ours[:2]):  # the features: reached only through the LDE
        assert (got.grad - sharded).norm() > 0.05 * sharded.norm()


def test_sharded_contrastive_loss_is_the_mean_of_the_ranks_losses_and_enqueues_rank_major() -> None:
    g = torch.Generator().manual_seed(1)
    unit = lambda *s: F.normalize(torch.randn(*s, generator=g), dim=-1)  # noqa: E731
    b = 8
    qu, qv, ku, kv = unit(b, 4), unit(b, 4), unit(b, 4), unit(b, 4)
    labels = torch.tensor([0, 0, 1, 0, 1, 1, -3, 0])
    queue = KeyQueue(16, 4, torch.device("cpu"))
    queue.labels = torch.tensor([0, 1, 2] * 5 + [EMPTY_LABEL])
    per_rank = [queue.loss(qu[o], qv[o], ku[o], kv[o], labels[o], 0.1) for o in _two_ranks(b, 2)]
    sharded = queue.loss(qu, qv, ku, kv, labels, 0.1, shards=2)
    assert torch.allclose(sharded, sum(per_rank) / 2, atol=1e-6)
    assert not torch.allclose(sharded, queue.loss(qu, qv, ku, kv, labels, 0.1), atol=1e-4)
    queue.enqueue(ku, kv, labels, shards=2)
    assert queue.labels[:b].tolist() == labels[torch.cat(_two_ranks(b, 2))].tolist()


def test_official_recipe_uses_two_shards_and_the_official_heatmap_peaks() -> None:
    from fer_bench.engine.recipe import resolve

    for profile in ("paper", "cpu"):
        _, hp = resolve(LANet.recipe, LANet.hparams, "official", profile, {})
        assert (hp["shards"], hp["heatmap_peak"], hp["swap_flipped_landmarks"]) == (2, "official", False)
    _, hp = resolve(LANet.recipe, LANet.hparams, "unified", "paper", {})
    assert (hp["shards"], hp["heatmap_peak"], hp["swap_flipped_landmarks"]) == (1, "centre", True)
    _, hp = resolve(LANet.recipe, LANet.hparams, "official", "paper", {"shards": 1})
    assert hp["shards"] == 1
    with pytest.raises(ValueError, match="shards must be a whole divisor"):
        make_method(shards=3)  # batch 1 in make_method's recipe: any shard count above 1 is refused
    with pytest.raises(ValueError, match="heatmap_peak"):
        make_method(heatmap_peak="corner")
    method = make_method()
    method.ctx.recipe["batch_size"] = 16
    method.hp.shards, method.hp.heatmap_peak = 2, "official"
    assert torch.isfinite(method.training_step(make_batch(method, b=16)).loss)


def _generate_target_loop(x: float, y: float, size: int, sigma: float = 1.5) -> torch.Tensor:
    """A per-point re-creation of the official target: peak int(p / 4 + 0.5), the (2*3sigma+1)-wide
    patch from int(peak - 3 sigma) to int(peak + 3 sigma + 1), clipped to the map."""
    out = torch.zeros(size, size)
    px, py = int(x / 4 + 0.5), int(y / 4 + 0.5)
    tmp = 3 * sigma
    ux, uy, bx, by = int(px - tmp), int(py - tmp), int(px + tmp + 1), int(py + tmp + 1)
    if ux >= size or uy >= size or bx < 0 or by < 0:
        return out
    mid = (2 * tmp + 1) // 2
    for row in range(max(0, uy), min(by, size)):
        for col in range(max(0, ux), min(bx, size)):
            out[row, col] = np.exp(-((col - ux - mid) ** 2 + (row - uy - mid) ** 2) / (2 * sigma ** 2))
    return out


def test_official_heatmap_peaks_and_patch_match_the_official_target() -> None:
    coords = [(0.0, 0.0), (3.9, 13.0), (17.2, 2.0), (101.6, 150.1), (222.0, 223.9), (-9.0, 40.0),
              (230.0, 100.0), (14.0, 250.0), (1.0, 18.5)]
    pts = torch.tensor([coords])
    heat, weight = heatmap_targets(pts, 224, 56, sigma=1.5, convention="official")
    for k, (x, y) in enumerate(coords):
        assert torch.allclose(heat[0, k], _generate_target_loop(x, y, 56), atol=1e-6), (x, y)
    row = heat[0, 3, int(150.1 / 4 + 0.5)]
    peak = int(101.6 / 4 + 0.5)
    assert (row[peak - 5:peak + 5] > 0).all() and row[peak + 5] == 0 and row[peak - 6] == 0  # offsets -5..+4
    centre, _ = heatmap_targets(pts, 224, 56, sigma=1.5)
    assert not torch.equal(centre[0, 3], heat[0, 3])  # the suite's convention puts this peak elsewhere
    assert (weight[0, 7] == 1).all() and heat[0, 7].abs().sum() == 0  # cropped away
    assert heat[0, 6].max() < 1 and heat[0, 6].sum() > 0  # a peak off the map still reaches into it
