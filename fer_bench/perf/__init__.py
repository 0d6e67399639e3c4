"""Performance measurement: how fast the suite trains and feeds its models.

* :mod:`.bench`: ``fer-bench bench``; training throughput and peak memory of
  every method through the engine's own loop, the Baseline fed by either
  pipeline, and the two input pipelines alone, side by side in one process:
  its settings, its run and its printed report.
* :mod:`.contention`: ``fer-bench bench --contention K``; training idle and
  beside K busy processes.
* :mod:`.training`: one training measurement through the engine's loop, fed by
  either pipeline, optionally profiled.
* :mod:`.pipeline`: one input pipeline alone, with no model.
* :mod:`.timing`: how every measurement is timed (warm-up, drained prefetch,
  steady-state window) and the row it becomes.
* :mod:`.probes`: the machine a bench ran on, and a measurement's peak memory.
* :mod:`.reference_pipeline`: the input pipeline the peer FER repositories use
  (one PIL image decoded per item, torchvision per-image transforms, a
  DataLoader with worker processes), configured from the same
  :class:`~fer_bench.augment.AugmentConfig` as the batched on-device
  pipeline, so that the two can be compared op for op.
"""
