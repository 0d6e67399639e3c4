"""The training/evaluation loop shared by every method.

:mod:`.run` holds the run (``main(spec)``, ``train_one_epoch``, ``evaluate``);
:mod:`.recipe` resolves protocols, profiles and ``--set`` overrides;
:mod:`.samplers` picks
each epoch's samples; :mod:`.optim` builds optimisers and schedules; :mod:`.metrics` and :mod:`.environment` make the
run record. The batched augmentation lives in :mod:`fer_bench.augment`, which
methods import too.
"""
