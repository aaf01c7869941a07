"""Latent-space analyses of trained models that are neither models nor metrics.

``traversal_images`` (traversals ordered by each dimension's KL),
``find_subclasses`` (k-means inside one class of an RD-VAE), and out-of-domain scores
(``ood_score``, ``evaluate_ood``). They sit above
``infer``, ``metrics`` and ``plots`` and may use all three.
"""

from ppl_vae.analysis.ood import evaluate_ood, ood_score
from ppl_vae.analysis.subclasses import Subclasses, find_subclasses
from ppl_vae.analysis.traversals import Traversal, dimension_kl, traversal_images
from ppl_vae.plots.subclasses import subclass_figure

__all__ = [
    "Subclasses",
    "Traversal",
    "dimension_kl",
    "evaluate_ood",
    "find_subclasses",
    "ood_score",
    "subclass_figure",
    "traversal_images",
]
