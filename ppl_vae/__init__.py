"""ppl_vae: latent variable models as probabilistic programs.

Define a model with a spec, train it by stochastic variational inference,
compare its ELBO with importance-sampled log p(x), and use its latent space::

    import ppl_vae as pv
    data = pv.data.load("digits", binarize=True)
    model = pv.build("vae", latent_dim=8)
    result = pv.fit(model, data.x_train, steps=2000, seed=0)
    est = pv.infer.log_likelihood(result.model, data.x_test, num_samples=1000, seed=0)
"""

from ppl_vae import analysis, data, infer, metrics, plots, spec, study, training
from ppl_vae._version import __version__
from ppl_vae.checkpoint import load, save
from ppl_vae.models import build
from ppl_vae.registry import register
from ppl_vae.training import DivergenceWarning, FitResult, TrainingError, fit

__all__ = [
    "DivergenceWarning",
    "FitResult",
    "TrainingError",
    "__version__",
    "analysis",
    "build",
    "data",
    "fit",
    "infer",
    "load",
    "metrics",
    "plots",
    "register",
    "save",
    "spec",
    "study",
    "training",
]
