"""Performance tooling: the batched augmentation draws what torchvision draws, the reference
pipeline is the same transform, and ``fer-bench bench`` runs end to end.

(The random-resized-crop distribution is checked in test_augment.py.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from scipy.stats import ks_2samp

from fer_bench.cli import main
from fer_bench.datasets import raf_layout
from fer_bench.datasets.synthfer.loader import SynthFER
from fer_bench.engine.run import RunSpec, resolve
from fer_bench.augment import AugmentConfig, BatchAugment, random_erase
from fer_bench.perf.reference_pipeline import build_transform, reference_loader

N = 3000
PLAIN = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}


def _box_stats(erased: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sample: erased or not, then the area fraction and log aspect (h/w) of the erased boxes."""
    rows, cols = erased.any(2), erased.any(1)  # (B, H), (B, W)
    hit = rows.any(1)
    h, w, count = rows.sum(1)[hit], cols.sum(1)[hit], erased.sum((1, 2))[hit]
    assert torch.equal(count, h * w)  # one solid box each
    area = count.double() / (erased.shape[1] * erased.shape[2])
    return hit.numpy(), area.numpy(), torch.log(h.double() / w).numpy()


@pytest.mark.parametrize("scale", [(0.02, 0.25), (0.02, 0.33)])  # the recipe's and torchvision's default
def test_random_erasing_matches_torchvision(scale: tuple[float, float]) -> None:
    from torchvision.transforms import RandomErasing

    p, ratio, side = 0.5, (0.3, 3.3), 40
    ones = torch.ones(N, 1, side, side)
    ours = random_erase(ones, torch.Generator().manual_seed(0), p, scale, ratio)[:, 0] == 0
    torch.manual_seed(0)
    tv_erase = RandomErasing(p=p, scale=scale, ratio=ratio, value=0)
    theirs = torch.stack([tv_erase(torch.ones(1, side, side))[0] == 0 for _ in range(N)])

    (hit_a, area_a, aspect_a), (hit_b, area_b, aspect_b) = _box_stats(ours), _box_stats(theirs)
    tolerance = 4 * np.sqrt(p * (1 - p) / N)  # four standard errors of a rate
    assert hit_a.mean() == pytest.approx(p, abs=tolerance)
    assert hit_b.mean() == pytest.approx(p, abs=tolerance)
    assert ks_2samp(area_a, area_b).pvalue > 0.01
    assert ks_2samp(aspect_a, aspect_b).pvalue > 0.01
    for q in (0.05, 0.5, 0.95):
        assert np.quantile(area_a, q) == pytest.approx(np.quantile(area_b, q), abs=0.015)


def _jitter_factor(kind: str, images: torch.Tensor, before: torch.Tensor) -> np.ndarray:
    """Estimate each sample's jitter factor from an image built so that the op is linear in it."""
    if kind == "brightness":    # a mid-grey image: the mean scales by the factor
        return (images.mean((1, 2, 3)) / before.mean()).numpy()
    if kind == "contrast":      # two grey halves around 0.5: the spread scales by the factor
        return (images.std((1, 2, 3)) / before.std()).numpy()
    # a coloured image: the distance from its grey scales by the factor
    return ((images[:, 0] - images[:, 1]).mean((1, 2)) / (before[0] - before[1]).mean()).numpy()


def _jitter_image(kind: str) -> np.ndarray:
    img = np.full((8, 8, 3), 128, dtype=np.uint8)
    if kind == "contrast":
        img[:, :4], img[:, 4:] = 90, 166
    elif kind == "saturation":
        img[:] = (150, 110, 100)
    return img


@pytest.mark.parametrize("kind", ["brightness", "contrast", "saturation"])
def test_colour_jitter_factors_match_torchvision(kind: str) -> None:
    from torchvision.transforms import ColorJitter

    strength = 0.4
    img = _jitter_image(kind)
    raw = torch.from_numpy(img).expand(N, 8, 8, 3).contiguous()
    cfg = AugmentConfig(image_size=8, flip=0.0, **{kind: strength}, **PLAIN)
    ours = BatchAugment(cfg)(raw, torch.Generator().manual_seed(0)).images
    x = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    torch.manual_seed(0)
    jitter = ColorJitter(**{kind: strength})
    theirs = torch.stack([jitter(x) for _ in range(N)])

    a, b = _jitter_factor(kind, ours, x), _jitter_factor(kind, theirs, x)
    assert a.min() >= 1 - strength - 0.01 and a.max() <= 1 + strength + 0.01
    assert ks_2samp(a, b).pvalue > 0.01
    for q in (0.1, 0.5, 0.9):
        assert np.quantile(a, q) == pytest.approx(np.quantile(b, q), abs=0.03)


def test_combined_colour_jitter_is_close_to_torchvision_despite_the_fixed_order() -> None:
    """torchvision shuffles the three ops per image; the batched pipeline does not. The effect is small."""
    from torchvision.transforms import ColorJitter

    img = np.zeros((8, 8, 3), np.uint8)
    img[:, :4], img[:, 4:] = (200, 120, 60), (60, 140, 200)
    raw = torch.from_numpy(img).expand(N, 8, 8, 3).contiguous()
    cfg = AugmentConfig(image_size=8, flip=0.0, brightness=0.4, contrast=0.4, saturation=0.4, **PLAIN)
    ours = BatchAugment(cfg)(raw, torch.Generator().manual_seed(0)).images
    x = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    torch.manual_seed(0)
    jitter = ColorJitter(0.4, 0.4, 0.4)
    theirs = torch.stack([jitter(x) for _ in range(N)])
    for stat in (lambda t: t.mean((1, 2, 3)), lambda t: t.std((1, 2, 3)),
                 lambda t: (t[:, 0, :, :4] - t[:, 2, :, :4]).mean((1, 2))):
        a, b = stat(ours).numpy(), stat(theirs).numpy()
        for q in (0.1, 0.5, 0.9):
            assert np.quantile(a, q) == pytest.approx(np.quantile(b, q), abs=0.02)


# --- the reference pipeline -----------------------------------------------------------

def _files(root: Path):
    ds = SynthFER.load(root, progress=False)
    return ds, [raf_layout.aligned_path(ds.root, n) for n in ds.train.names]


@pytest.mark.parametrize("workers", [0, 1])
def test_reference_loader_yields_normalised_batches(tiny_synth: Path, workers: int) -> None:
    ds, paths = _files(tiny_synth)
    cfg = AugmentConfig(image_size=24, crop_scale=(0.75, 1.0), brightness=0.4, contrast=0.4,
                        saturation=0.4, erase=0.5)
    transform = build_transform(cfg)
    names = [type(t).__name__ for t in transform.transforms]
    assert names == ["RandomResizedCrop", "RandomHorizontalFlip", "ColorJitter", "ToTensor", "Normalize",
                     "RandomErasing"]
    loader = reference_loader(paths, ds.train.labels, cfg, workers, batch_size=16)
    assert len(loader) == len(paths) // 16
    x, y, idx = next(iter(loader))
    assert x.shape == (16, 3, 24, 24) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and torch.equal(y, torch.as_tensor(ds.train.labels[idx.numpy()]))
    mean, std = torch.tensor(cfg.mean).view(1, 3, 1, 1), torch.tensor(cfg.std).view(1, 3, 1, 1)
    pixels = x * std + mean  # back to [0, 1]; erased pixels are 0 after normalisation, i.e. the mean
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5


def test_reference_without_augmentation_equals_the_batched_pipeline(tiny_synth: Path) -> None:
    ds, paths = _files(tiny_synth)
    native = ds.train.images.shape[1]
    off = {"flip": 0.0, "crop_scale": (1.0, 1.0), "erase": 0.0}
    assert [type(t).__name__ for t in build_transform(AugmentConfig(image_size=native, **off)).transforms] == [
        "Resize", "ToTensor", "Normalize"]
    for size, atol, mean_tol in ((native, 1e-5, 1e-6), (24, 0.05, 0.01), (48, 0.05, 0.01)):
        cfg = AugmentConfig(image_size=size, **off)
        x, _, idx = next(iter(reference_loader(paths, ds.train.labels, cfg, 0, batch_size=16, seed=1)))
        raw = torch.from_numpy(ds.train.images[idx.numpy()])
        batched = BatchAugment(cfg)
        diff = (x - batched.eval(raw)).abs()
        assert diff.max() <= atol and diff.mean() <= mean_tol, (size, diff.max(), diff.mean())
        if size >= native:  # the training path (one grid_sample) does not antialias, so not for shrinking
            diff = (x - batched(raw, torch.Generator().manual_seed(0)).images).abs()
            assert diff.max() <= atol and diff.mean() <= mean_tol, (size, diff.max(), diff.mean())


# --- fer-bench bench ----------------------------------------------------------------

def test_reference_pipeline_flips_or_adds_noise_at_the_batched_rates() -> None:
    """The per-image reference applies the peers' flip-or-noise rule with the rates the batched op draws."""
    from PIL import Image

    cfg = AugmentConfig(image_size=8, flip=0.25, noise=0.25, flip_or_noise=True, mean=(0, 0, 0), std=(1, 1, 1))
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, :4] = 100  # left half bright: a flip shows
    transform, pil = build_transform(cfg), Image.fromarray(image)
    torch.manual_seed(0)
    outs = torch.stack([transform(pil) for _ in range(1000)]) * 255
    values = outs.round()
    noisy = ~((values == 0) | (values == 100)).flatten(1).all(1)
    flipped = outs[:, :, :, 4:].mean(dim=(1, 2, 3)) > 50
    assert not (flipped & noisy).any()
    assert flipped.float().mean().item() == pytest.approx(0.25, abs=0.04)
    assert noisy.float().mean().item() == pytest.approx(0.25, abs=0.04)


def test_bench_command_writes_its_record(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    res = CliRunner().invoke(main, [
        "bench", "--n-train", "64", "--size", "32", "--batch", "16", "--steps", "2", "--warmup", "1",
        "--methods", "baseline", "--workers", "0", "--device", "cpu", "--out", str(out), "--quiet", "--trace"])
    assert res.exit_code == 0, res.output
    record = json.loads(out.read_text())
    keys = {"device", "environment", "dataset", "settings", "pipeline_augment", "rows", "notes", "speedup"}
    assert keys <= set(record)
    assert set(record["speedup"]) == {"input_pipeline", "baseline_training"}
    assert record["dataset"]["n_train"] == 64 and record["settings"]["workers"] == 0
    parts = [(r["part"], r["method"], r["pipeline"]) for r in record["rows"]]
    assert parts == [("pipeline", None, "batched"), ("pipeline", None, "reference"),
                     ("training", "baseline", "reference"), ("training", "baseline", "batched")]
    for row in record["rows"]:
        assert row["images_per_s"] > 0 and row["batches_per_s"] > 0 and row["seconds"] > 0
        assert row["memory_kind"].startswith("cpu_") and row["peak_memory_mib"] >= 0
        assert row["ratio_to_reference"] > 0
    assert [r["ratio_to_reference"] for r in record["rows"] if r["pipeline"] == "reference"] == [1.0, 1.0]
    assert "images/s" in res.output and "vs reference" in res.output and "RSS" in res.output
    # how it was timed: no workers, so nothing to drain, and the whole timed epoch is the window
    assert record["timing"] | {"clock": None, "method": None} == {
        "method": None, "clock": None, "warmup_steps": 1, "drain_steps": 0, "window_steps": 2, "epoch_steps": 2,
        "requested_steps": 2, "prefetch_factor": 2}
    for row in record["rows"]:
        assert row["images"] == 2 * 16 and row["epoch_images"] == 2 * 16 and row["epoch_images_per_s"] > 0
    assert "epoch images/s" in res.output and "steady state" in res.output

    # --trace: every training row says where its time went, measured in an extra, untimed epoch
    for row in record["rows"]:
        if row["part"] == "pipeline":
            assert "trace" not in row
            continue
        ops = row["trace"]["operators"]
        assert row["trace"]["clock"] == "self CPU time" and 0 < len(ops) <= 15
        assert [op["self_ms"] for op in ops] == sorted((op["self_ms"] for op in ops), reverse=True)
        assert 0 < sum(op["share"] for op in ops) <= 1 + 1e-9
        assert any("conv" in op["name"] for op in ops)
    assert res.output.count("where the time goes") == 2


def test_bench_rejects_an_unknown_method_and_a_tiny_size(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["bench", "--methods", "baseline,nosuchmethod", "--device", "cpu",
                                    "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "nosuchmethod" in res.output
    res = CliRunner().invoke(main, ["bench", "--size", "8", "--device", "cpu"])
    assert res.exit_code == 2 and "--size 8" in res.output
    assert not (tmp_path / "x.json").exists()


# --- what the bench times: the steady state, not batches prefetched before the clock started --------



class FakeWorkersLoader:
    """A stand-in for the reference DataLoader that times batches as DataLoader's workers do,
    without decoding anything: ``workers`` processes start when the loader is iterated, worker
    ``k % workers`` makes batch ``k`` in ``workers * delay`` seconds, and at most ``workers * 2``
    batches (DataLoader's default prefetch_factor) are dispatched and not yet taken."""

    made: list["FakeWorkersLoader"] = []
    delay = 0.05  # seconds per batch, all workers together

    def __init__(self, paths, labels, cfg, workers, batches=None, pin_memory=False, **kw) -> None:
        self.batches = [list(map(int, b)) for b in batches]
        self.labels, self.size, self.workers = np.asarray(labels), cfg.image_size, workers
        self.made.append(self)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return self._batches(time.perf_counter())  # the workers start now, not at the first next()

    def _batches(self, started: float):
        w, depth = self.workers, 2 * self.workers
        ready: list[float] = []
        taken: list[float] = []
        for k, b in enumerate(self.batches):
            free = started if k < w else ready[k - w]          # the worker finished its previous batch
            slot = started if k < depth else taken[k - depth]  # and the batch has been dispatched
            ready.append(max(free, slot) + w * self.delay)
            time.sleep(max(0.0, ready[-1] - time.perf_counter()))
            taken.append(time.perf_counter())
            yield torch.zeros(len(b), 3, self.size, self.size), torch.as_tensor(self.labels[b]), torch.tensor(b)


@pytest.fixture
def fake_workers(monkeypatch: pytest.MonkeyPatch):
    """The reference pipeline's loader replaced, in the pipeline and the training measurements; the latter."""
    import fer_bench.perf.pipeline as pipeline
    import fer_bench.perf.training as training

    FakeWorkersLoader.made = []
    monkeypatch.setattr(pipeline, "reference_loader", FakeWorkersLoader)
    monkeypatch.setattr(training, "reference_loader", FakeWorkersLoader)
    return training


def test_bench_times_the_reference_pipeline_in_its_steady_state(fake_workers, tmp_path: Path) -> None:
    """Workers deliver their batches in bursts; the old bench (timing from its 2nd batch to its 7th,
    here) counted one burst without the time it took, and reported 1.5x the pipeline's rate."""
    out = tmp_path / "bench.json"
    batch, workers = 4, 4
    res = CliRunner().invoke(main, [
        "bench", "--pipeline-only", "--n-train", "64", "--size", "16", "--batch", str(batch), "--steps", "6",
        "--warmup", "1", "--workers", str(workers), "--device", "cpu", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    row = next(r for r in json.loads(out.read_text())["rows"] if r["pipeline"] == "reference")
    assert row["images_per_s"] == pytest.approx(batch / FakeWorkersLoader.delay, rel=0.15), row


def test_training_on_the_reference_pipeline_is_timed_in_its_steady_state(tiny_synth: Path, fake_workers,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow warm-up (cuDNN autotuning, compilation) let the old bench's workers fill their queue
    before the clock started, and it reported those batches as training speed (on an H100: 3,853
    images/s trained on a pipeline that delivers 1,592)."""
    real_epoch = fake_workers.train_one_epoch

    def slow_warmup(*args, **kwargs):
        row = real_epoch(*args, **kwargs)
        if args[5] == 0:
            time.sleep(1.5)  # long enough for the workers to fill their queue
        return row

    monkeypatch.setattr(fake_workers, "train_one_epoch", slow_warmup)
    monkeypatch.setattr(FakeWorkersLoader, "delay", 0.25)  # a pipeline well below the model's speed
    ds = SynthFER.load(tiny_synth, progress=False)
    batch, workers = 8, 2
    rate = batch / FakeWorkersLoader.delay
    run = resolve(RunSpec(method="baseline", profile="cpu", device="cpu",
                          overrides={"image_size": 16, "batch_size": batch}))
    row = fake_workers.measure_training(run, ds, torch.device("cpu"), 8, 1, workers, progress=False)
    assert row["pipeline"] == "reference" and row["images"] == 8 * batch
    assert row["images_per_s"] < 1.15 * rate, row   # slower if the machine is busy, never faster
    assert 0 < row["epoch_images_per_s"] < 1.15 * rate
    # each epoch (warm-up, timed) iterates a loader of its own, whose workers start with it, as a run's do
    assert [len(loader) for loader in FakeWorkersLoader.made] == [1, 2 * workers + 8]


def test_timing_drains_what_the_workers_prefetch_and_times_whole_rounds() -> None:
    from fer_bench.perf.timing import Timing

    assert Timing.of(30, 5, 8) == Timing(warmup=5, drain=16, window=32)
    assert Timing.of(30, 5, 8).epoch == 48
    assert Timing.of(2, 1, 0) == Timing(warmup=1, drain=0, window=2)
    assert Timing.of(6, 0, 3) == Timing(warmup=0, drain=6, window=6)


def test_step_clock_times_only_the_steps_after_the_drained_ones() -> None:
    from fer_bench.perf.timing import StepClock

    clock = StepClock(torch.device("cpu"), drain=2, total=5)
    sizes = [4, 4, 4, 4, 3]
    for k, n in enumerate(clock(iter(sizes), lambda n: n)):
        time.sleep(0.3 if k < 2 else 0.02)  # slow steps before the window, fast ones in it
    out = clock.result()
    assert out["images"] == 11 and out["epoch_images"] == 19
    assert 0.06 <= out["seconds"] < 0.5 <= out["epoch_seconds"]
    with pytest.raises(RuntimeError, match="ended before its 5 steps"):
        short = StepClock(torch.device("cpu"), drain=0, total=5)
        list(short(iter(sizes[:3]), lambda n: n))
        short.result()
    with pytest.raises(ValueError, match="cannot drain 3"):
        StepClock(torch.device("cpu"), drain=3, total=3)
