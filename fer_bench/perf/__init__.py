"""Performance measurement: how fast the suite trains and feeds its models.

* :mod:`.reference_pipeline`: the input pipeline the peer FER repositories use
  (one PIL image decoded per item, torchvision per-image transforms, a
  DataLoader with worker processes), configured from the same
  :class:`~fer_bench.augment.AugmentConfig` as the batched on-device
  pipeline, so that the two can be compared op for op.
* :mod:`.bench`: ``fer-bench bench``; training throughput and peak memory of
  every method through the engine's own loop, the Baseline fed by either
  pipeline, and the two input pipelines alone, side by side in one process.
"""
