"""LA-Net: Landmark-Aware Learning for reliable FER under label noise (Wu and Cui, ICCV 2023).

Landmarks are a label-free view of an expression: a face's geometry does not
change when its annotation is wrong. LA-Net uses them in three ways, one module
each, as the official code (``hw-tony/LA-Net``) does; the paper's body text was
not available, so the code is the reference for every detail:

* :mod:`.model`: a ResNet whose stem is shared by an expression branch and a
  landmark branch that predicts landmark heatmaps through an FPN-style merge,
  supervised by :mod:`.landmark_loss`;
* :mod:`.lde`: label distribution estimation from the batch neighbours in
  expression and landmark space, ensembled over time in a per-sample memory,
  used as a KL target next to the noisy label's CE;
* :mod:`.contrastive`: the expression-landmark contrastive loss with a momentum
  encoder, queues and confidence-thresholded pseudo-labels.

:mod:`.method` puts them together into one training step and registers the
method as ``lanet``.
"""

from .method import LANet, LANetModel

__all__ = ["LANet", "LANetModel"]
