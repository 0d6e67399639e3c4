"""Epoch samplers: instance-balanced, class-balanced and LA-Net's progressive schedule."""

from __future__ import annotations

from pathlib import Path

import torch

from fer_bench.engine.run import main
from fer_bench.engine.samplers import epoch_order, progressive_counts

from .conftest import tiny_spec

LABELS = torch.tensor([0] * 70 + [1] * 20 + [2] * 10)


def test_random_visits_every_sample_once() -> None:
    order = epoch_order("random", LABELS, 0, 10, torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == list(range(100))


def test_balanced_draws_classes_equally() -> None:
    order = epoch_order("balanced", LABELS.repeat(50), 0, 10, torch.Generator().manual_seed(0))
    share = torch.bincount(LABELS.repeat(50)[order], minlength=3).double() / order.numel()
    assert torch.allclose(share, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.02)


def test_progressive_moves_from_natural_to_balanced() -> None:
    counts = torch.bincount(LABELS)
    assert progressive_counts(counts, 0, 10).tolist() == [70, 20, 10]
    halfway = progressive_counts(counts, 5, 10)  # shares 0.5*natural + 0.5/3
    assert halfway.tolist() == [52, 27, 21] and int(halfway.sum()) == 100
    order = epoch_order("progressive", LABELS, 5, 10, torch.Generator().manual_seed(1))
    drawn = torch.bincount(LABELS[order], minlength=3).tolist()
    assert drawn == [52, 27, 21]
    # Class 2 (10 samples, 21 draws): every sample twice, one once more, none three times.
    per_sample = torch.bincount(order, minlength=100)[90:]
    assert per_sample.min() == 2 and per_sample.max() == 3 and int(per_sample.sum()) == 21


def test_progressive_last_epoch_is_nearly_balanced_and_deterministic() -> None:
    counts = progressive_counts(torch.bincount(LABELS), 9, 10)
    assert max(counts.tolist()) - min(counts.tolist()) <= 8
    a = epoch_order("progressive", LABELS, 9, 10, torch.Generator().manual_seed(3))
    b = epoch_order("progressive", LABELS, 9, 10, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_any_method_can_use_a_sampler(tiny_synth: Path, tmp_path: Path) -> None:
    res = main(tiny_spec(tiny_synth, tmp_path, noise="sym", rate=0.2, overrides={"sampler": "progressive"}))
    assert "sampler=progressive" in res["run_dir"] and res["epochs"] == 2
