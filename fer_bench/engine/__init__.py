"""The training and evaluation engine shared by every method, in the order a run uses it.

* :mod:`.spec`: :class:`~.spec.RunSpec`, resolved into a run (recipe, run directory) and its config record;
* :mod:`.data`: the dataset, the noisy training labels and the image cache as tensors;
* :mod:`.build`: the method, its context, pretrained weights, optimiser, schedule and augmentation;
* :mod:`.loop`: an epoch's batches and :func:`~.loop.train_one_epoch`;
* :mod:`.inference`: predictions, evaluation and reading a checkpoint back;
* :mod:`.run`: :func:`~.run.main`, one run start to finish;
* :mod:`.trained` and :mod:`.export`: a finished run's model, re-evaluated or exported;
* :mod:`.recipe` (protocols, profiles, ``--set``), :mod:`.samplers`, :mod:`.optim`, :mod:`.metrics`,
  :mod:`.environment`, :mod:`.distributed` and :mod:`.launch` (torchrun), :mod:`.checks` (torch-free).

The batched augmentation lives in :mod:`fer_bench.augment`, which methods import too.
"""
