"""LA-Net: Landmark-Aware Learning for reliable FER under label noise (Wu and Cui, ICCV 2023).

Landmarks are a label-free view of an expression: a face's geometry does not
change when its annotation is wrong. LA-Net uses them in three ways, one module
each, following the reference notes ``spec/lanet.md`` (reconstructed from the
official code ``hw-tony/LA-Net``; the paper's body text was not available):

* :mod:`.model` (section 3.3): a ResNet whose stem is shared by an expression
  branch and a landmark branch that predicts landmark heatmaps through an
  FPN-style merge, supervised by :mod:`.landmark_loss` (sections 3.1-3.4);
* :mod:`.lde` (section 4): label distribution estimation from the batch
  neighbours in expression and landmark space, ensembled over time in a
  per-sample memory, used as a KL target next to the noisy label's CE;
* :mod:`.contrastive` (section 5): the expression-landmark contrastive loss
  with a momentum encoder, queues and confidence-thresholded pseudo-labels.

:mod:`.method` puts them together into one training step (section 6) and
registers the method as ``lanet``.
"""

from .method import LANet, LANetModel

__all__ = ["LANet", "LANetModel"]
