"""Batched augmentation: geometry that landmarks follow, erasing, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fer_bench.augment import AugmentConfig, BatchAugment


def _dot_images(n: int, size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Black images, each with one bright 3x3 dot, and the dot centres as landmarks."""
    images = np.zeros((n, size, size, 3), dtype=np.uint8)
    points = rng.integers(8, size - 8, size=(n, 2))
    for img, (x, y) in zip(images, points):
        img[y - 1:y + 2, x - 1:x + 2] = 255
    return torch.from_numpy(images), torch.from_numpy(points.astype(np.float32)).unsqueeze(1)


def test_landmarks_follow_flip_crop_and_resize() -> None:
    cfg = AugmentConfig(image_size=48, flip=0.5, crop_scale=(0.6, 1.0), erase=0.0,
                        mean=(0, 0, 0), std=(1, 1, 1))
    raw, landmarks = _dot_images(64, 64, np.random.default_rng(0))
    out = BatchAugment(cfg)(raw, torch.Generator().manual_seed(1), landmarks=landmarks)
    assert 0 < out.flipped.sum() < 64
    brightness = out.images.sum(1)  # (B, S, S)
    visible = 0
    for b in range(64):
        x, y = out.landmarks[b, 0].tolist()
        if not (2 <= x <= 45 and 2 <= y <= 45):
            continue  # the crop cut the dot away
        visible += 1
        peak_y, peak_x = np.unravel_index(int(brightness[b].argmax()), brightness[b].shape)
        assert abs(peak_x - x) <= 1.0 and abs(peak_y - y) <= 1.0, (b, (x, y), (peak_x, peak_y))
    assert visible > 40


def test_flip_mirrors_the_image_and_the_landmark_x() -> None:
    cfg = AugmentConfig(image_size=32, flip=1.0, mean=(0, 0, 0), std=(1, 1, 1))
    raw, landmarks = _dot_images(4, 32, np.random.default_rng(2))
    out = BatchAugment(cfg)(raw, torch.Generator().manual_seed(0), landmarks=landmarks)
    assert out.flipped.all()
    expected = raw.permute(0, 3, 1, 2).float().div(255).flip(-1)
    assert torch.allclose(out.images, expected, atol=1e-5)
    assert torch.allclose(out.landmarks[..., 0], 31 - landmarks[..., 0], atol=1e-4)
    assert torch.allclose(out.landmarks[..., 1], landmarks[..., 1], atol=1e-4)


def test_eval_transform_is_a_plain_normalisation_at_the_input_size() -> None:
    cfg = AugmentConfig(image_size=16)
    raw = torch.randint(0, 256, (3, 16, 16, 3), dtype=torch.uint8)
    mean = torch.tensor(cfg.mean).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std).view(1, 3, 1, 1)
    expected = (raw.permute(0, 3, 1, 2).float() / 255 - mean) / std
    assert torch.allclose(BatchAugment(cfg).eval(raw), expected, atol=1e-5)


def test_erasing_rate_and_area_match_the_configuration() -> None:
    cfg = AugmentConfig(image_size=32, flip=0.0, erase=0.5, erase_scale=(0.02, 0.25),
                        mean=(0, 0, 0), std=(1, 1, 1))
    raw = torch.full((400, 32, 32, 3), 200, dtype=torch.uint8)
    out = BatchAugment(cfg)(raw, torch.Generator().manual_seed(3))
    erased_fraction = (out.images[:, 0] == 0).float().mean(dim=(1, 2))
    erased = erased_fraction > 0
    assert erased.float().mean().item() == pytest.approx(0.5, abs=0.08)
    assert erased_fraction[erased].min() >= 0.01 and erased_fraction[erased].max() <= 0.30


def test_same_generator_seed_same_batch() -> None:
    cfg = AugmentConfig(image_size=24, crop_scale=(0.5, 1.0), brightness=0.3, contrast=0.3, erase=0.5)
    raw = torch.randint(0, 256, (8, 32, 32, 3), dtype=torch.uint8)
    aug = BatchAugment(cfg)
    a = aug(raw, torch.Generator().manual_seed(5)).images
    b = aug(raw, torch.Generator().manual_seed(5)).images
    c = aug(raw, torch.Generator().manual_seed(6)).images
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_crop_distribution_matches_torchvision_random_resized_crop() -> None:
    from torchvision.transforms import RandomResizedCrop

    from fer_bench.augment import _crop_boxes

    scale, ratio, n = (0.3, 1.0), (3 / 4, 4 / 3), 4000
    cfg = AugmentConfig(image_size=100, crop_scale=scale, crop_ratio=ratio)
    _, _, w, h = _crop_boxes(n, cfg, torch.Generator().manual_seed(0))
    ours_area, ours_aspect = (w * h).numpy(), (w / h).numpy()
    torch.manual_seed(0)
    img = torch.zeros(3, 100, 100)
    boxes = [RandomResizedCrop.get_params(img, scale, ratio) for _ in range(n)]
    tv_area = np.array([bh * bw / 1e4 for _, _, bh, bw in boxes])
    tv_aspect = np.array([bw / bh for _, _, bh, bw in boxes])
    for q in (0.1, 0.5, 0.9):
        assert np.quantile(ours_area, q) == pytest.approx(np.quantile(tv_area, q), abs=0.03)
        assert np.quantile(ours_aspect, q) == pytest.approx(np.quantile(tv_aspect, q), abs=0.04)


def test_training_without_augmentation_is_the_eval_transform() -> None:
    """Both paths share one normalisation: an identity crop and no jitter give the eval tensor exactly."""
    cfg = AugmentConfig(image_size=24, flip=0.0, erase=0.0)
    raw = torch.randint(0, 256, (5, 24, 24, 3), dtype=torch.uint8)
    aug = BatchAugment(cfg)
    assert torch.equal(aug(raw, torch.Generator().manual_seed(0)).images, aug.eval(raw))


def test_resampling_is_grid_sample_on_the_returned_theta() -> None:
    """The separable resampling equals grid_sample's bilinear/border sampling of the same map,
    also when the input is not square and not the output size."""
    import torch.nn.functional as F

    cfg = AugmentConfig(image_size=20, flip=0.5, crop_scale=(0.3, 1.0), erase=0.0,
                        mean=(0, 0, 0), std=(1, 1, 1))
    raw = torch.randint(0, 256, (16, 27, 35, 3), dtype=torch.uint8)
    out = BatchAugment(cfg)(raw, torch.Generator().manual_seed(4))
    grid = F.affine_grid(out.theta, [16, 3, 20, 20], align_corners=False)
    expected = F.grid_sample(raw.permute(0, 3, 1, 2).double() / 255, grid, mode="bilinear",
                             padding_mode="border", align_corners=False)
    assert torch.allclose(out.images.double(), expected, atol=1e-5)


def test_colour_jitter_is_clamped_to_the_normalised_unit_range() -> None:
    cfg = AugmentConfig(image_size=16, brightness=0.9, contrast=0.9, saturation=0.9, erase=0.0)
    raw = torch.randint(0, 256, (64, 16, 16, 3), dtype=torch.uint8)
    x = BatchAugment(cfg)(raw, torch.Generator().manual_seed(2)).images
    pixels = x * torch.tensor(cfg.std).view(1, 3, 1, 1) + torch.tensor(cfg.mean).view(1, 3, 1, 1)
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    assert (pixels <= 1e-5).any() and (pixels >= 1 - 1e-5).any()  # the clamp was needed


def test_the_result_does_not_depend_on_the_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the CPU the batch is cut into chunks that worker threads share; chunks, threads and
    where the cuts fall must not change a pixel."""
    from fer_bench import augment

    cfg = AugmentConfig(image_size=32, crop_scale=(0.5, 1.0), brightness=0.4, contrast=0.4, saturation=0.4,
                        erase=0.5)
    raw = torch.randint(0, 256, (400, 32, 32, 3), dtype=torch.uint8)  # several chunks
    assert 400 > augment._CHUNK_ELEMENTS // (3 * 32 * 32) > 1
    aug, before = BatchAugment(cfg), torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = aug(raw, torch.Generator().manual_seed(9)).images
        torch.set_num_threads(2)
        two = aug(raw, torch.Generator().manual_seed(9)).images
        assert torch.get_num_threads() == 2  # the worker pool leaves the caller's setting alone
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)
    monkeypatch.setattr(augment, "_CHUNK_ELEMENTS", 1 << 40)  # the whole batch as one chunk
    assert torch.equal(one, aug(raw, torch.Generator().manual_seed(9)).images)


def _peers_gaussian_noise(image: np.ndarray, rng: np.random.Generator, var: float = 30.0) -> np.ndarray:
    """The per-image original (SCN src/image_utils.py, RUL/EAC src/utils.py): clip, then cast to uint8."""
    return np.clip(image + rng.normal(0.0, var ** 0.5, image.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("value", [100, 3, 252])  # mid-range, and near both clipping bounds
def test_gaussian_noise_has_the_per_image_originals_distribution(value: int) -> None:
    cfg = AugmentConfig(image_size=16, flip=0.0, noise=1.0, mean=(0, 0, 0), std=(1, 1, 1))
    raw = torch.full((200, 16, 16, 3), value, dtype=torch.uint8)
    out = BatchAugment(cfg)(raw, torch.Generator().manual_seed(0))
    assert out.noisy.all()
    ours = torch.round(out.images * 255).to(torch.int64).flatten().numpy()
    theirs = _peers_gaussian_noise(raw.numpy(), np.random.default_rng(0)).astype(np.int64).flatten()
    assert ours.mean() == pytest.approx(theirs.mean(), abs=0.05)
    assert ours.var() == pytest.approx(theirs.var(), rel=0.02)
    hist = [np.bincount(v, minlength=256) / v.size for v in (ours, theirs)]
    assert 0.5 * np.abs(hist[0] - hist[1]).sum() < 0.01  # total variation distance


def test_flip_or_noise_picks_one_of_them_with_the_peers_rates() -> None:
    cfg = AugmentConfig(image_size=8, flip=0.25, noise=0.25, flip_or_noise=True)
    raw = torch.full((4000, 8, 8, 3), 100, dtype=torch.uint8)
    out = BatchAugment(cfg)(raw, torch.Generator().manual_seed(1))
    flipped, noisy = out.flipped, out.noisy
    assert not (flipped & noisy).any()
    assert flipped.float().mean().item() == pytest.approx(0.25, abs=0.03)
    assert noisy.float().mean().item() == pytest.approx(0.25, abs=0.03)
    changed = (out.images != BatchAugment(cfg).eval(raw)).flatten(1).any(1)
    assert torch.equal(changed, noisy)  # a flat image changes only where noise was added


def test_independent_noise_and_the_noiseless_twin() -> None:
    cfg = AugmentConfig(image_size=24, flip=0.5, crop_scale=(0.5, 1.0), erase=0.5, noise=0.5)
    raw = torch.randint(0, 256, (400, 32, 32, 3), dtype=torch.uint8)
    out = BatchAugment(cfg)(raw, torch.Generator().manual_seed(2), noiseless=True)
    both = (out.flipped & out.noisy).float().mean().item()
    assert out.noisy.float().mean().item() == pytest.approx(0.5, abs=0.08) and both == pytest.approx(0.25, abs=0.06)
    # the twin has the same geometry and erasing, and differs exactly on the noisy samples
    differs = (out.images != out.noiseless).flatten(1).any(1)
    assert torch.equal(differs, out.noisy)
    plain = BatchAugment(AugmentConfig(image_size=24, flip=0.5, crop_scale=(0.5, 1.0), erase=0.5))
    draws_before_noise = plain(raw, torch.Generator().manual_seed(2)).images  # noise is drawn last
    assert torch.equal(out.noiseless, draws_before_noise)
